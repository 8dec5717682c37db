"""Reading inputs and writing outputs safely: the one place every reader and writer goes through.

**Inputs** are checked before they are parsed: a folder, a FIFO, a device or a socket is
refused (a FIFO would block, ``/dev/zero`` never ends), and a file larger than the caller's
bound is refused without being read. After parsing, :func:`check_depth` bounds nesting
(deeply nested YAML/JSON/TOML is refused with one line, not a ``RecursionError``).

**Outputs** are written to a temporary file in the target's folder and renamed over the
target, so a reader (or a crash) sees the old file or the new one, never half of one. The
temporary is named ``.NAME.PID.RANDOM.part``: it is removed when the write fails or is
interrupted, and temporaries left by a killed process (whose pid is gone) are removed by the
next write to the same target. Errors become :class:`~harness.errors.OutputError` naming the
file (disk full, read-only, a folder in the way), whose exit code is "cannot write".
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from .errors import InputError, OutputError

MAX_NESTING = 64
"""Deepest nesting accepted in any structured input (no real file comes near it)."""

MAX_SMALL_INPUT = 1 << 20
"""Bound for small configuration inputs: probe sets, platform specs, harness.toml, cookie files (1 MiB)."""

MAX_LARGE_INPUT = 256 << 20
"""Bound for data inputs such as keyword lists (256 MiB)."""

_SPECIAL = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
            (stat.S_ISSOCK, "a socket"))


def check_input_file(path: Path, cls: type[InputError] = InputError, max_bytes: int | None = None) -> os.stat_result:
    """Refuse what must not be opened as an input file; returns its ``stat``."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise cls("file not found", path) from None
    except OSError as exc:
        raise cls(f"cannot read: {exc.strerror}", path) from None
    if stat.S_ISDIR(st.st_mode):
        raise cls("is a directory, not a file", path)
    for test, what in _SPECIAL:
        if test(st.st_mode):
            raise cls(f"is {what}, not a regular file", path)
    if max_bytes is not None and st.st_size > max_bytes:
        raise cls(f"is {st.st_size:,} bytes, more than the {max_bytes:,} this input may have", path)
    return st


def read_input_bytes(path: Path, cls: type[InputError] = InputError, max_bytes: int = MAX_LARGE_INPUT) -> bytes:
    """The bytes of a regular file of at most ``max_bytes`` (checked before and while reading)."""
    check_input_file(path, cls, max_bytes)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(max_bytes + 1)
    except IsADirectoryError:
        raise cls("is a directory, not a file", path) from None
    except OSError as exc:
        raise cls(f"cannot read: {exc.strerror}", path) from None
    if len(raw) > max_bytes:
        raise cls(f"is more than the {max_bytes:,} bytes this input may have", path)
    return raw


def depth_of(data: Any, limit: int = MAX_NESTING) -> int:
    """How deeply ``data`` (dicts and lists) nests, counted without recursion; stops past ``limit``."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, (list, tuple)):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list, tuple)))
    return deepest


def check_depth(data: Any, path: str | Path | None, cls: type[InputError] = InputError, line: int | None = None,
                limit: int = MAX_NESTING) -> None:
    if depth_of(data, limit) > limit:
        raise cls(f"nested more than {limit} levels deep", path, line)


def too_deep(path: str | Path | None, cls: type[InputError] = InputError, line: int | None = None) -> InputError:
    """The error for a parser that gave up with ``RecursionError``."""
    return cls(f"nested more than {MAX_NESTING} levels deep", path, line)


# --------------------------------------------------------------------------- outputs

_PART = ".part"


def _tmp_prefix(path: Path) -> str:
    return f".{path.name}."


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stray_temporaries(path: Path) -> list[Path]:
    """Remove temporaries of ``path`` left by processes that no longer exist; returns what was removed."""
    removed: list[Path] = []
    prefix = _tmp_prefix(path)
    try:
        names = os.listdir(path.parent if str(path.parent) else ".")
    except OSError:
        return removed
    for name in names:
        if not (name.startswith(prefix) and name.endswith(_PART)):
            continue
        middle = name[len(prefix):-len(_PART)]
        pid_text = middle.split(".", 1)[0]
        if pid_text.isdigit() and not _pid_alive(int(pid_text)):
            stray = path.parent / name
            try:
                stray.unlink()
                removed.append(stray)
            except OSError:
                pass
    # the old exporter's name for its temporary (before this module): TARGET.part
    legacy = path.with_name(path.name + _PART)
    if legacy.is_file():
        try:
            legacy.unlink()
            removed.append(legacy)
        except OSError:
            pass
    return removed


def _mode_for(path: Path) -> int:
    """The replaced file's permissions, or what a plain ``open()`` would give (0666 less the umask)."""
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        return 0o666 & ~_umask()


def _umask() -> int:
    try:  # Linux: read it without changing it (os.umask would, briefly, for every thread)
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def output_error(exc: OSError, path: Path) -> OutputError:
    """One line for an OSError met while writing ``path``."""
    if exc.errno == errno.ENOSPC or exc.errno == errno.EDQUOT:
        why = "the disk is full"
    elif exc.errno == errno.EROFS:
        why = "read-only file system"
    elif exc.errno in (errno.EACCES, errno.EPERM):
        why = "permission denied"
    elif exc.errno == errno.EISDIR:
        why = "is a folder; give a file name"
    elif exc.errno in (errno.ENOENT, errno.ENOTDIR):
        why = "its folder does not exist"
    elif exc.errno == errno.EEXIST:
        why = "a file stands where one of its folders should be"
    else:
        why = exc.strerror or str(exc)
    return OutputError(f"{path}: cannot write: {why}; nothing was written")


def _check_target(path: Path) -> bool:
    """True when ``path`` is a regular file or absent (write by rename); False for a device or FIFO
    the user named on purpose (``-o /dev/null``), written in place. A folder is refused."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return True
    except OSError as exc:
        raise output_error(exc, path) from None
    if stat.S_ISDIR(st.st_mode):
        raise OutputError(f"{path}: is a folder; give a file name (nothing was written)")
    return stat.S_ISREG(st.st_mode)


@contextmanager
def atomic_path(path: str | Path, *, make_parents: bool = True) -> Iterator[Path]:
    """A temporary path beside ``path`` for a writer that wants a file name (Parquet); renamed over
    ``path`` when the block ends normally, removed otherwise."""
    path = Path(path)
    by_rename = _check_target(path)
    if not by_rename:
        yield path
        return
    try:
        if make_parents:
            path.parent.mkdir(parents=True, exist_ok=True)
        clean_stray_temporaries(path)
        fd, tmp_name = tempfile.mkstemp(prefix=f"{_tmp_prefix(path)}{os.getpid()}.", suffix=_PART, dir=path.parent)
        os.close(fd)
    except OSError as exc:
        raise output_error(exc, path) from None
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, _mode_for(path))
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise output_error(exc, path) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_output(path: str | Path, *, binary: bool = False, make_parents: bool = True) -> Iterator[IO[Any]]:
    """An open file whose content replaces ``path`` only when the block ends normally."""
    with atomic_path(path, make_parents=make_parents) as tmp:
        try:
            fh = open(tmp, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8", "newline": ""}))
        except OSError as exc:
            raise output_error(exc, Path(path)) from None
        try:
            with fh:
                yield fh
                fh.flush()
        except OSError as exc:
            raise output_error(exc, Path(path)) from None


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write a file so that readers see either the old or the new content, never half.

    The file keeps its permissions (a new one gets the usual ones, not mkstemp's 0600).
    """
    with atomic_output(path) as fh:
        fh.write(text)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_output(path, binary=True) as fh:
        fh.write(data)
