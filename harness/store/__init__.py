"""The measurement store and everything that keeps it (the pipeline's memory).

- :mod:`harness.store.base`: :class:`Store`, the backend-neutral queries; ``Store(target)``
  opens the backend its target names (:mod:`harness.store.target`: a path or a
  ``postgresql://`` URL);
- :mod:`harness.store.sqlite`: the embedded backend, one SQLite file (WAL) with versioned migrations;
- :mod:`harness.store.postgres`: the team backend, one PostgreSQL schema many vantage points write to;
- :mod:`harness.store.writer`: the run's single store thread (group commits);
- :mod:`harness.store.locking`: one run per (probe set, vantage) at a time, and whether a run is alive;
- :mod:`harness.store.upkeep`: evidence retention, checks and vacuum;
- :mod:`harness.store.domain_profile`: rows of the authorized-domain profile.

Depends on :mod:`harness.models` and :mod:`harness.errors` only (psycopg only when a
``postgresql://`` store is opened): measuring, comparing and isolating all build on it.
"""

from . import postgres, sqlite  # noqa: F401 - each registers its backend with Store
from .base import DEFAULT_STORE_PATH, Store, iso, parse_iso, utcnow
from .target import StoreTarget, is_postgres, redact

__all__ = ["DEFAULT_STORE_PATH", "Store", "StoreTarget", "is_postgres", "iso", "parse_iso", "redact", "utcnow"]
