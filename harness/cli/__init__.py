"""The ``harness`` command: a thin Typer layer over the library.

Every user error (:class:`harness.errors.HarnessError`) becomes one line on stderr and
exit code 2, without a traceback.
"""

from __future__ import annotations

import sys

import typer

from ..errors import HarnessError
from ._common import err_console

app = typer.Typer(
    name="harness",
    help="Measure keyword censorship on Chinese search platforms.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _register() -> None:
    from . import demo, diff, export, keywords, platforms, reclassify, report, run, sandbox, timeline  # noqa: F401
    from . import config, runs, schedule, store  # noqa: F401 - operations (scheduler, resume, maintenance)
    from . import isolate  # noqa: F401 - isolate, discover


def main(argv: list[str] | None = None) -> None:
    _register()
    try:
        app(args=argv, prog_name="harness")
    except HarnessError as exc:
        err_console.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
