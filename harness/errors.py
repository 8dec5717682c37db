"""The exception tree of the harness, each class with its exit code.

Every error a user can cause derives from :class:`HarnessError`. The CLI turns any
``HarnessError`` into one line on stderr and the class's ``exit_code`` (the table of
codes is :mod:`harness.exitcodes`); anything else is a bug (exit 70).

    HarnessError                       exit code
    ├── InputError                     2  bad input file: names the file and, where known, the line
    │   ├── KeywordListError
    │   ├── ProbeSetError
    │   ├── WatchListError
    │   └── PlatformSpecError
    ├── NotFoundError                  2  an unknown list, platform, run or term was named
    ├── StoreError                     4  the store is corrupt, foreign, newer than this code, or cannot be opened
    │   ├── StoreMissingError          2  no store at the path given (nothing has been run into it)
    │   └── StoreWriteError            5  the store cannot be written (disk full, read-only)
    ├── OutputError                    5  an output file cannot be written (disk full, read-only, no folder ...)
    └── RunLockedError                 6  another process is already running the same probe set
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from .exitcodes import ExitCode


class HarnessError(Exception):
    """Base class of every error the harness raises on purpose."""

    exit_code: ClassVar[ExitCode] = ExitCode.BAD_INPUT


class InputError(HarnessError):
    """A file the user gave us is malformed. ``str()`` is ``file:line: problem``."""

    exit_code = ExitCode.BAD_INPUT

    def __init__(self, message: str, path: str | Path | None = None, line: int | None = None):
        self.message = message
        self.path = str(path) if path is not None else None
        self.line = line
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = ""
        if self.path:
            where = self.path
            if self.line:
                where += f":{self.line}"
            where += ": "
        return f"{where}{self.message}"


class KeywordListError(InputError):
    pass


class ProbeSetError(InputError):
    pass


class PlatformSpecError(InputError):
    pass


class WatchListError(InputError):
    pass


class NotFoundError(HarnessError):
    exit_code = ExitCode.BAD_INPUT


class StoreError(HarnessError):
    """The store cannot be used. Messages name the file, and for damage, ``harness store check``."""

    exit_code = ExitCode.STORE_UNUSABLE


class StoreMissingError(StoreError):
    """No store at the path given (a read-only command on a store that was never written)."""

    exit_code = ExitCode.BAD_INPUT


class StoreWriteError(StoreError):
    """The store is fine but cannot be written now: the disk is full, or the file or its folder is read-only."""

    exit_code = ExitCode.CANNOT_WRITE


class OutputError(HarnessError):
    """An output (export, report, list, log) cannot be written: the target is left as it was."""

    exit_code = ExitCode.CANNOT_WRITE


class RunLockedError(HarnessError):
    exit_code = ExitCode.LOCKED


def exception_exit_codes() -> dict[type[HarnessError], ExitCode]:
    """Every exception class defined so far (this module's and subclasses elsewhere) with its exit code."""
    out: dict[type[HarnessError], ExitCode] = {}
    todo: list[type[HarnessError]] = [HarnessError]
    while todo:
        cls = todo.pop()
        out[cls] = cls.exit_code
        todo.extend(cls.__subclasses__())
    return out
