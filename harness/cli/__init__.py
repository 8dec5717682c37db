"""The ``harness`` command: a thin Typer layer over the library.

Every user error (:class:`harness.errors.HarnessError`) becomes one line on stderr and
exit code 2, without a traceback.
"""

from __future__ import annotations

import sys

from ..errors import HarnessError
from ._app import app
from ._common import err_console

__all__ = ["app", "main"]


def _register() -> None:
    from . import (  # noqa: F401  # noqa: F401 - operations (scheduler, resume, maintenance)
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
        store,
        timeline,
        watch,
    )


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
