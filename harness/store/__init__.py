"""The measurement store and everything that keeps it (the pipeline's memory).

- :mod:`harness.store.sqlite`: :class:`Store`, one SQLite file (WAL) with versioned migrations;
- :mod:`harness.store.writer`: the run's single store thread (group commits);
- :mod:`harness.store.locking`: one run per probe set at a time, and whether a run is alive;
- :mod:`harness.store.upkeep`: evidence retention, checks and vacuum;
- :mod:`harness.store.domain_profile`: rows of the authorized-domain profile.

Depends on :mod:`harness.models` and :mod:`harness.errors` only: measuring, comparing and
isolating all build on it.
"""

from .sqlite import DEFAULT_STORE_PATH, Store, iso, parse_iso, utcnow

__all__ = ["DEFAULT_STORE_PATH", "Store", "iso", "parse_iso", "utcnow"]
