"""The exception tree of the harness.

Every error a user can cause derives from :class:`HarnessError`. The CLI turns any
``HarnessError`` into one line on stderr and exit code 2; anything else is a bug.

    HarnessError
    ├── InputError            bad input file: names the file and, where known, the line
    │   ├── KeywordListError
    │   ├── ProbeSetError
    │   ├── WatchListError
    │   └── PlatformSpecError
    ├── NotFoundError         an unknown list, platform, run or term was named
    ├── StoreError            the store cannot be opened, is foreign, or is newer than this code
    └── RunLockedError        another process is already running the same probe set
"""

from __future__ import annotations

from pathlib import Path


class HarnessError(Exception):
    """Base class of every error the harness raises on purpose."""


class InputError(HarnessError):
    """A file the user gave us is malformed. ``str()`` is ``file:line: problem``."""

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
    pass


class StoreError(HarnessError):
    pass


class RunLockedError(HarnessError):
    pass
