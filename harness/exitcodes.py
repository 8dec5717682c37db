"""The exit codes of every ``harness`` command: one table, the single source of truth.

Every command ends with one of these codes, and nothing else decides an exit status:
the CLI maps each exception class of :mod:`harness.errors` to its code
(:attr:`harness.errors.HarnessError.exit_code`), signals to :attr:`ExitCode.INTERRUPTED`,
and a command that finished reports :attr:`ExitCode.OK` or one of the "it worked, and the
answer is ..." codes (:attr:`ExitCode.FOUND`, :attr:`ExitCode.PLATFORM_GIVEN_UP`).
``docs/operations.md`` ("Exit codes") is tested against :data:`EXIT_CODES`.
"""

from __future__ import annotations

from enum import IntEnum
from typing import NamedTuple


class ExitCode(IntEnum):
    OK = 0
    FOUND = 1
    BAD_INPUT = 2
    PLATFORM_GIVEN_UP = 3
    STORE_UNUSABLE = 4
    CANNOT_WRITE = 5
    LOCKED = 6
    INTERNAL_ERROR = 70
    INTERRUPTED = 130


class ExitInfo(NamedTuple):
    outcome: str
    meaning: str


EXIT_CODES: dict[ExitCode, ExitInfo] = {
    ExitCode.OK: ExitInfo("ok", "done; nothing to report. Also when the reader of its output went away "
                                "(`harness export` piped into `head -1`): the command stops quietly, whatever it would have "
                                "found"),
    ExitCode.FOUND: ExitInfo(
        "found", "the command worked and found what it looks for: changes (`diff --exit-code`), a problem in the "
                 "store (`store check`), a failing platform (`platforms check`); a scheduled run crashed"),
    ExitCode.BAD_INPUT: ExitInfo(
        "bad input", "a malformed file (`file:line: problem` on stderr), a bad option or argument, an unknown "
                     "run, list, platform or term, a special file (FIFO, device, folder) where a file was expected"),
    ExitCode.PLATFORM_GIVEN_UP: ExitInfo(
        "platform given up", "the run gave a platform up (unreachable for `controls.give_up_after_s`, a login "
                             "wall, a changed page layout: one line says which; the next run resumes its probes), "
                             "or it finished but the share of failed probes is above `failure_threshold` "
                             "(default 0.5): the platform or the network is in trouble and the verdicts are "
                             "mostly `failure`"),
    ExitCode.STORE_UNUSABLE: ExitInfo(
        "bad store", "the store is corrupt, not a harness store, newer than this harness, or cannot be opened; "
                     "the message names the file (run `harness store check`)"),
    ExitCode.CANNOT_WRITE: ExitInfo(
        "cannot write", "an output or the store cannot be written: disk full, read-only file system or store, "
                        "no such folder, a folder where a file was expected; nothing half-written is left"),
    ExitCode.LOCKED: ExitInfo("locked", "the probe set is already being run by another process (or a maintenance "
                                        "command holds the store); try again later"),
    ExitCode.INTERNAL_ERROR: ExitInfo(
        "internal error", "a bug in the harness: one line on stderr (`HARNESS_DEBUG=1` prints the traceback); "
                          "please report it"),
    ExitCode.INTERRUPTED: ExitInfo("interrupted", "SIGINT (Ctrl-C) or SIGTERM: a run stops cleanly, is marked "
                                                  "interrupted and resumes next time"),
}
