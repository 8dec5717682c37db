"""The ``harness`` command: a thin Typer layer over the library.

One rule for every command: whatever goes wrong ends in one line on stderr (what, where,
what to do) and the exit code of :mod:`harness.exitcodes`, never a traceback. A
:class:`harness.errors.HarnessError` carries its own code; a few other exceptions that
reach the top are classified here (a full disk, a damaged SQLite file, a signal); anything
else is a bug (exit 70, ``HARNESS_DEBUG=1`` shows the traceback).
"""

from __future__ import annotations

import errno
import os
import sqlite3
import sys

import typer

try:  # typer >= 0.20 carries its own copy of click (typer._click) and no longer installs click
    from typer._click import exceptions as _click_exceptions
except ImportError:  # older typer depends on click
    from click import exceptions as _click_exceptions

_ABORT = tuple({c for c in (getattr(_click_exceptions, "Abort", None), getattr(typer, "Abort", None)) if c})
_EXIT = tuple({c for c in (getattr(_click_exceptions, "Exit", None), getattr(typer, "Exit", None)) if c})
_USAGE = _click_exceptions.ClickException

from ..errors import HarnessError
from ..exitcodes import ExitCode
from ._app import app, build_command
from ._common import err_console, neutralise

__all__ = ["app", "main"]

COMMAND_MODULES = {
    "run": "run", "demo": "demo", "diff": "diff", "export": "export", "import": "export", "isolate": "isolate",
    "discover": "isolate", "keywords": "keywords", "platforms": "platforms", "reclassify": "reclassify",
    "report": "report", "runs": "runs", "sandbox": "sandbox", "schedule": "schedule", "store": "store",
    "timeline": "timeline", "history": "timeline", "config": "config", "init": "workspace", "show": "show",
    "watch": "watch",
}
"""First argument → the module that registers it: a command imports only its own module (a
faster start: `harness keywords validate` does not import the engine). Anything else (help,
completion, a command not listed here) registers every module."""


def _register(argv: list[str] | None = None) -> None:
    import importlib

    args = list(argv or [])
    first = args[0] if args else ""
    if first in ("--version", "-V"):  # answered by the root callback: no command module needed
        return
    wanted = COMMAND_MODULES.get(first)
    if wanted and not any(k.startswith("_HARNESS_COMPLETE") for k in os.environ):
        importlib.import_module(f"{__name__}.{wanted}")
        return
    from . import (  # noqa: F401 - each module registers its commands on the app
        config,
        demo,
        diff,
        export,
        isolate,  # noqa: F401 - isolate, discover
        keywords,
        platforms,
        reclassify,
        report,
        run,
        runs,
        sandbox,
        schedule,
        show,
        store,
        timeline,
        workspace,
        watch,
    )


_WRITE_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EFBIG, errno.EACCES, errno.EPERM, errno.EISDIR,
                 errno.ENOTDIR, errno.ENOENT}


def _say(text: str) -> None:
    err_console.print(neutralise(text), markup=False, highlight=False, soft_wrap=True)


def classify_exception(exc: BaseException) -> tuple[ExitCode, str]:
    """The exit code and the one line for an exception that reached the top of a command."""
    if isinstance(exc, HarnessError):
        return exc.exit_code, f"error: {exc}"
    if isinstance(exc, (KeyboardInterrupt, *_ABORT)):
        return ExitCode.INTERRUPTED, "interrupted"
    if isinstance(exc, sqlite3.DatabaseError):
        full = "full" in str(exc).lower()
        if full or isinstance(exc, sqlite3.OperationalError) and "readonly" in str(exc).lower():
            return ExitCode.CANNOT_WRITE, f"error: the store cannot be written: {exc}"
        from ..store.sqlite import damaged_message, last_opened_store

        return ExitCode.STORE_UNUSABLE, f"error: {damaged_message(last_opened_store(), exc)}"
    if type(exc).__module__.split(".")[0] == "psycopg":  # a PostgreSQL store's server said no
        detail = " ".join(str(exc).split()) or type(exc).__name__
        return ExitCode.STORE_UNUSABLE, f"error: the PostgreSQL store refused the operation: {detail}"
    if isinstance(exc, MemoryError):
        return ExitCode.BAD_INPUT, "error: out of memory (an input is too large)"
    if isinstance(exc, OSError) and exc.errno in _WRITE_ERRNOS:
        where = f"{exc.filename}: " if exc.filename else ""
        return ExitCode.CANNOT_WRITE, f"error: {where}{exc.strerror or exc}"
    detail = str(exc).splitlines()[0] if str(exc) else ""
    return ExitCode.INTERNAL_ERROR, (f"internal error: {type(exc).__name__}{': ' + detail if detail else ''} "
                                     f"(a bug; HARNESS_DEBUG=1 prints the traceback; please report it)")


DEPRECATED_SPELLINGS = {"--platforms": "--specs"}
"""Old option names still accepted (``--platforms DIR`` became ``--specs DIR``, one letter away from
``--platform NAME``); docs and help show only the new name."""


def _respell(argv: list[str]) -> list[str]:
    out = []
    for a in argv:
        if a == "--":
            out.extend(argv[len(out):])
            break
        name, eq, value = a.partition("=")
        out.append(DEPRECATED_SPELLINGS.get(name, name) + eq + value if name in DEPRECATED_SPELLINGS else a)
    return out


def main(argv: list[str] | None = None) -> None:
    """Run the CLI and exit with the documented code."""
    argv = _respell(list(sys.argv[1:] if argv is None else argv))
    _register(argv)
    try:
        code = build_command().main(args=argv, prog_name="harness", standalone_mode=False)
    except _USAGE as exc:  # usage errors: click's own message, exit 2
        exc.show()
        code = ExitCode.BAD_INPUT
    except _EXIT as exc:
        code = exc.exit_code
    except BrokenPipeError:  # `harness export | head`: the reader went away; not an error
        _silence_stdout()
        code = ExitCode.OK
    except BaseException as exc:  # noqa: BLE001 - the one place every failure becomes a line and a code
        if isinstance(exc, SystemExit):
            if _reader_went_away(exc):  # Typer turns EPIPE on stdout into a silent sys.exit(1)
                _silence_stdout()
                sys.exit(ExitCode.OK)
            raise
        code, line = classify_exception(exc)
        if code == ExitCode.INTERNAL_ERROR and os.environ.get("HARNESS_DEBUG"):
            raise
        _say(line)
    code = int(code) if isinstance(code, int) else 0
    if code == ExitCode.INTERRUPTED:  # Typer turns KeyboardInterrupt into a silent exit 130
        _say("interrupted (a run is marked interrupted and resumes next time)")
    try:  # what is still buffered: a reader that went away now is no error either
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
    except (OSError, ValueError):
        pass
    sys.exit(code)


def _reader_went_away(exc: SystemExit) -> bool:
    """A ``SystemExit`` raised while handling EPIPE on stdout (the reader of a pipe exited)."""
    cause = exc.__context__
    return (exc.code == 1 and isinstance(cause, OSError) and cause.errno == errno.EPIPE)


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
