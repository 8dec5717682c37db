"""Operating the harness: whole runs, schedules, configuration and logs (the top of the library).

- :mod:`harness.operations.runs`: run a probe set end to end (plan, lock, resume, execute);
- :mod:`harness.operations.schedule`: when a probe set is due, the scheduler loop, cron/systemd output;
- :mod:`harness.operations.config`: ``harness.toml`` plus ``HARNESS_*`` variables;
- :mod:`harness.operations.logs`: structured JSON-lines logs next to the store.

The CLI (:mod:`harness.cli`) and the demo are thin layers over these.
"""

from typing import TYPE_CHECKING, Any

__all__ = ["RunRequest", "execute", "prepare"]

if TYPE_CHECKING:
    from .runs import RunRequest, execute, prepare


def __getattr__(name: str) -> Any:
    """The public names, imported on first use: ``harness init`` or ``keywords validate`` need
    :mod:`.workspace` without the measuring engine (a faster start of the command line)."""
    if name in __all__:
        from . import runs

        return getattr(runs, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
