"""Helpers for the operations tests: run the CLI in this process (no interpreter start-up per call)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest

from harness.operations.logs import setup_logging


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str


def cli_inprocess(capsys: pytest.CaptureFixture[str], *args: str) -> CliResult:
    """``harness ARGS`` through the real entry point (``harness.cli.main``), output captured."""
    from harness.cli import main

    capsys.readouterr()
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("HARNESS_")}
    code = 0
    try:
        main(list(args))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        os.environ.update(saved)
        setup_logging(None)  # do not leave a handler on a test's temporary folder
    out, err = capsys.readouterr()
    return CliResult(code, out, err)
