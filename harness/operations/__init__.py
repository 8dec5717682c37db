"""Operating the harness: whole runs, schedules, configuration and logs (the top of the library).

- :mod:`harness.operations.runs`: run a probe set end to end (plan, lock, resume, execute);
- :mod:`harness.operations.schedule`: when a probe set is due, the scheduler loop, cron/systemd output;
- :mod:`harness.operations.config`: ``harness.toml`` plus ``HARNESS_*`` variables;
- :mod:`harness.operations.logs`: structured JSON-lines logs next to the store.

The CLI (:mod:`harness.cli`) and the demo are thin layers over these.
"""

from .runs import RunRequest, execute, prepare

__all__ = ["RunRequest", "execute", "prepare"]
