"""One run per probe set at a time: an ``flock`` on a lock file next to the store.

The kernel releases an ``flock`` when its holder dies (even by SIGKILL), so a lock
can never outlive its process; the JSON the holder writes into the file (pid, host,
run id, start time) only serves to name it in the refusal message. A file that still
holds a dead holder's details when the lock is free is a stale lock: it is taken over
and reported as such.

:func:`effective_status` says whether a run marked ``running`` really is: only while its
process holds the lock.

The lock is per host: ``flock`` on network file systems is not reliable, and the store
itself (SQLite in WAL mode) must live on a local disk anyway.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import re
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import RunLockedError
from ..models import Run


def lock_dir_for(store_path: Path) -> Path:
    """``results/harness.db`` → ``results/harness.db.locks/``."""
    return store_path.parent / (store_path.name + ".locks")


def _safe_name(probe_set: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", probe_set) or "_"


def pid_alive(pid: int | None) -> bool:
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class LockHolder:
    pid: int
    host: str
    probe_set: str
    run_id: str | None = None
    since: str | None = None

    def describe(self) -> str:
        run = f" as run {self.run_id}" if self.run_id else ""
        since = f" since {self.since}" if self.since else ""
        return f"pid {self.pid} on {self.host}{run}{since}"

    @classmethod
    def parse(cls, text: str) -> "LockHolder | None":
        try:
            data = json.loads(text)
            return cls(int(data["pid"]), str(data["host"]), str(data["probe_set"]), data.get("run_id"), data.get("since"))
        except (ValueError, KeyError, TypeError):
            return None


class ProbeSetLock:
    """An exclusive, non-blocking lock on one probe set of one store.

    ``acquire()`` raises :class:`RunLockedError` naming the holder when another process
    has it. Use as a context manager.
    """

    def __init__(self, store_path: Path, probe_set: str):
        self.probe_set = probe_set
        self.path = lock_dir_for(Path(store_path)) / f"{_safe_name(probe_set)}.lock"
        self._fd: int | None = None
        self.took_over: LockHolder | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> "ProbeSetLock":
        if self._fd is not None:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        for attempt in range(5):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = LockHolder.parse(_read_fd(fd))
                if holder is None and attempt < 4:
                    time.sleep(0.02)  # an empty file: most likely a status check holding it for a moment
                    continue
                os.close(fd)
                who = holder.describe() if holder else "another process"
                raise RunLockedError(
                    f"probe set {self.probe_set!r} is already running ({who}); lock file {self.path}"
                ) from None
        previous = LockHolder.parse(_read_fd(fd))
        if previous is not None and not (previous.pid == os.getpid() and previous.host == socket.gethostname()):
            self.took_over = previous
        self._fd = fd
        self._write({})
        return self

    def update(self, **info: Any) -> None:
        """Add details (e.g. the run id once it is known) to what the lock file says."""
        if self._fd is not None:
            self._write(info)

    def _write(self, extra: dict[str, Any]) -> None:
        assert self._fd is not None
        current = LockHolder.parse(_read_fd(self._fd)) if extra else None
        data = {
            "pid": os.getpid(), "host": socket.gethostname(), "probe_set": self.probe_set,
            "since": current.since if current and current.since else dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "run_id": current.run_id if current else None,
        }
        data.update(extra)
        raw = json.dumps(data).encode()
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, raw, 0)

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "ProbeSetLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_fd(fd: int) -> str:
    try:
        return os.pread(fd, 4096, 0).decode("utf-8", "replace")
    except OSError:
        return ""


def current_holder(store_path: Path, probe_set: str) -> LockHolder | None:
    """Who holds the probe set's lock right now (None when nobody does). Does not keep the lock."""
    path = lock_dir_for(Path(store_path)) / f"{_safe_name(probe_set)}.lock"
    if not path.exists():
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return LockHolder.parse(_read_fd(fd)) or LockHolder(0, "?", probe_set)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def all_holders(store_path: Path) -> list[LockHolder]:
    """Every probe-set lock currently held on this store."""
    d = lock_dir_for(Path(store_path))
    out = []
    if d.is_dir():
        for f in sorted(d.glob("*.lock")):
            fd = os.open(f, os.O_RDONLY)
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                except BlockingIOError:
                    out.append(LockHolder.parse(_read_fd(fd)) or LockHolder(0, "?", f.stem))
                    continue
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)
    return out


def effective_status(run: Run, store_path: Path) -> str:
    """The run's status as it really is: ``running`` only while its process holds the lock."""
    if run.status != "running":
        return run.status
    holder = current_holder(store_path, run.probe_set)
    if holder is not None:
        alive = holder.pid == run.pid and holder.host == run.hostname
        return "running" if alive else "interrupted"
    locked_before = lock_dir_for(Path(store_path)).is_dir()  # exists once any run of this store took a lock
    if not locked_before and run.hostname == socket.gethostname() and pid_alive(run.pid):
        return "running"  # a store written without locks (library use): trust a live pid on this host
    return "interrupted"
