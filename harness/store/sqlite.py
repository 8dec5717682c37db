"""The embedded store: one SQLite file (WAL), schema versioned with migrations (``PRAGMA user_version``).

:class:`SQLiteStore` is what ``Store(path)`` opens; the queries it shares with the PostgreSQL
backend live in :mod:`harness.store.base`. ``MIGRATIONS`` here and in
:mod:`harness.store.postgres` go step for step: version N is the same logical schema on both
(``tests/test_pgstore.py`` compares them), so a new migration adds one entry to each.

The names other modules used to import from here (``Store``, ``iso``, ``utcnow``, ...) are
still importable from this module.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from pathlib import Path
from typing import ClassVar
from urllib.parse import quote

from ..errors import StoreError, StoreMissingError, StoreWriteError
from .base import DEFAULT_STORE_PATH, Store, immediate_transaction, iso, parse_iso, register_backend, utcnow
from .target import StoreTarget

__all__ = ["APPLICATION_ID", "DEFAULT_STORE_PATH", "MIGRATIONS", "SCHEMA_VERSION", "SQLiteStore", "Store",
           "damaged_message", "immediate_transaction", "iso", "last_opened_store", "parse_iso", "utcnow"]

APPLICATION_ID = 0x48524E53  # "HRNS": marks a file as a harness store

MIGRATIONS: list[str] = [
    # 1: runs, measurements, bodies
    """
    CREATE TABLE runs (
        run_id TEXT PRIMARY KEY,
        probe_set TEXT NOT NULL,
        probe_set_sha256 TEXT NOT NULL DEFAULT '',
        started_at TEXT NOT NULL,
        finished_at TEXT,
        status TEXT NOT NULL,
        probe_cc TEXT NOT NULL DEFAULT 'ZZ',
        probe_asn TEXT NOT NULL DEFAULT 'AS0',
        vantage TEXT NOT NULL DEFAULT '',
        software_version TEXT NOT NULL DEFAULT '',
        planned INTEGER NOT NULL DEFAULT 0,
        sessions INTEGER NOT NULL DEFAULT 1,
        pid INTEGER,
        hostname TEXT,
        doc TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX runs_by_probe_set ON runs (probe_set, started_at);
    CREATE TABLE bodies (
        sha256 TEXT PRIMARY KEY,
        size INTEGER NOT NULL,
        compression TEXT NOT NULL,
        data BLOB NOT NULL
    );
    CREATE TABLE measurements (
        measurement_id TEXT PRIMARY KEY,
        run_id TEXT NOT NULL REFERENCES runs (run_id),
        task_key TEXT NOT NULL,
        measurement_start_time TEXT NOT NULL,
        platform TEXT NOT NULL,
        role TEXT NOT NULL,
        input TEXT NOT NULL,
        query TEXT NOT NULL,
        list_name TEXT,
        category TEXT,
        variant TEXT,
        vantage TEXT NOT NULL DEFAULT '',
        probe_cc TEXT NOT NULL DEFAULT 'ZZ',
        probe_asn TEXT NOT NULL DEFAULT 'AS0',
        verdict TEXT NOT NULL,
        failure TEXT,
        result_count INTEGER,
        result_items INTEGER,
        status_code INTEGER,
        body_sha256 TEXT,
        doc TEXT NOT NULL,
        UNIQUE (run_id, task_key)
    );
    CREATE INDEX measurements_by_term ON measurements (platform, input, measurement_start_time);
    CREATE INDEX measurements_by_run ON measurements (run_id, platform, input);
    """,
    # 2: evidence retention: bodies pruned by `harness store prune` (the hash stays on the measurement)
    """
    CREATE TABLE pruned_bodies (
        sha256 TEXT PRIMARY KEY,
        size INTEGER NOT NULL,
        pruned_at TEXT NOT NULL
    );
    CREATE INDEX measurements_by_body ON measurements (body_sha256);
    """,
    # 3: re-classifications (never rewrite a measurement) and the authorized-domain profile
    """
    CREATE TABLE reclassifications (
        batch_id TEXT NOT NULL,
        created_at TEXT NOT NULL,
        run_id TEXT NOT NULL REFERENCES runs (run_id),
        measurement_id TEXT NOT NULL REFERENCES measurements (measurement_id),
        spec_sha256 TEXT NOT NULL,
        old_verdict TEXT NOT NULL,
        old_failure TEXT,
        new_verdict TEXT NOT NULL,
        new_failure TEXT,
        changed INTEGER NOT NULL,
        doc TEXT NOT NULL,
        PRIMARY KEY (batch_id, measurement_id)
    );
    CREATE INDEX reclassifications_by_run ON reclassifications (run_id, created_at);
    CREATE TABLE domain_profile (
        run_id TEXT NOT NULL REFERENCES runs (run_id),
        platform TEXT NOT NULL,
        input TEXT NOT NULL,
        domain TEXT NOT NULL,
        state TEXT NOT NULL,
        query TEXT NOT NULL,
        body_sha256 TEXT,
        measured_at TEXT NOT NULL,
        PRIMARY KEY (run_id, platform, input, domain)
    );
    """,
    # 4: the comparator: one term's history (timeline) and a run's per-key state (diff) from indexes
    """
    CREATE INDEX IF NOT EXISTS measurements_by_input
        ON measurements (input, platform, vantage, measurement_start_time, role, verdict, run_id);
    CREATE INDEX IF NOT EXISTS measurements_by_run_key
        ON measurements (run_id, platform, vantage, role, input, measurement_start_time, verdict, result_count, result_items)
    """,
    # 5: isolations (harness.isolation.after_runs): rules found behind newly censored phrases
    """
    CREATE TABLE isolations (
        run_id TEXT NOT NULL REFERENCES runs (run_id),
        platform TEXT NOT NULL,
        input TEXT NOT NULL,
        vantage TEXT NOT NULL DEFAULT '',
        finished_at TEXT NOT NULL,
        queries INTEGER NOT NULL,
        complete INTEGER NOT NULL,
        error TEXT,
        rules TEXT NOT NULL,
        PRIMARY KEY (run_id, platform, input)
    );
    """,
    # 6: which measurements refer to which stored bodies (the page, a capped prefix, the soft probe's
    # page, the first answer of a retest), so retention, checks and exports see every one of them
    """
    CREATE TABLE body_refs (
        sha256 TEXT NOT NULL,
        measurement_id TEXT NOT NULL REFERENCES measurements (measurement_id),
        PRIMARY KEY (sha256, measurement_id)
    ) WITHOUT ROWID;
    CREATE INDEX body_refs_by_measurement ON body_refs (measurement_id);
    INSERT OR IGNORE INTO body_refs (sha256, measurement_id)
        SELECT k, measurement_id FROM (
            SELECT CASE WHEN json_extract(doc, '$.evidence.body_truncated')
                        THEN json_extract(doc, '$.evidence.stored_body_sha256')
                        ELSE json_extract(doc, '$.evidence.body_sha256') END AS k, measurement_id FROM measurements
            UNION ALL SELECT json_extract(doc, '$.test_keys.soft_probe.stored_body_sha256'), measurement_id FROM measurements
            UNION ALL SELECT json_extract(doc, '$.test_keys.retest_of.stored_body_sha256'), measurement_id FROM measurements
        ) WHERE k IS NOT NULL;
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)



def _is_write_refusal(exc: sqlite3.OperationalError, path: Path) -> bool:
    text = str(exc).lower()
    return "readonly" in text or "read-only" in text or (
        "unable to open" in text and path.exists() and not os.access(path.parent, os.W_OK))


def _check_file(path: Path) -> None:
    if not path.exists():
        return
    if path.is_dir():
        raise StoreError(f"{path}: is a directory, not a store file")
    if not path.is_file():
        raise StoreError(f"{path}: is not a regular file (a FIFO, a device or a socket), not a store file")
    try:
        with path.open("rb") as fh:
            head = fh.read(16)
    except OSError as exc:
        raise StoreError(f"{path}: cannot read the store: {exc.strerror}") from None
    if head and head != b"SQLite format 3\x00":
        raise StoreError(f"{path}: not a harness store (not an SQLite database)")


_OPENED: list[Path] = []


def last_opened_store() -> Path | None:
    """The store this process opened last: what a damaged-database error met later (while
    reading rows) is about, so the one line on stderr can name the file."""
    return _OPENED[-1] if _OPENED else None


def damaged_message(path: Path | None, exc: BaseException) -> str:
    where = f"{path}: " if path else ""
    hint = f" --store {path}" if path else ""
    return f"{where}the store is damaged or unreadable ({exc}); run `harness store check{hint}`"


class SQLiteStore(Store):
    """A store in one SQLite file (WAL mode, a local disk)."""

    backend: ClassVar[str] = "sqlite"
    write_errors = (sqlite3.OperationalError,)

    def __init__(self, path: StoreTarget = DEFAULT_STORE_PATH, *, readonly: bool = False):
        self.target = self.path = Path(path)
        _OPENED.append(self.path)
        del _OPENED[:-4]
        _check_file(self.path)
        if readonly and not self.path.exists():
            raise StoreMissingError(f"{self.path}: no store here (run a probe set first)")
        self._scratch: Path | None = None
        if not readonly:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreWriteError(f"{self.path.parent}: cannot create the store's folder: "
                                      f"{exc.strerror or exc}") from None
        try:
            if readonly:
                self._open_readonly()
            else:
                self.conn = self._connect(f"file:{quote(str(self.path))}")
                self._prepare(False)
        except sqlite3.OperationalError as exc:
            if not readonly and _is_write_refusal(exc, self.path):
                raise StoreWriteError(f"{self.path}: the store cannot be written ({exc}): its file or folder is "
                                      f"read-only; read-only commands (diff, export, report ...) still read it") from None
            raise StoreError(damaged_message(self.path, exc)) from None
        except sqlite3.DatabaseError as exc:
            raise StoreError(damaged_message(self.path, exc)) from None

    @staticmethod
    def _connect(uri: str) -> sqlite3.Connection:
        # check_same_thread=False: the engine hands its writes to one store thread (never two at once)
        conn = sqlite3.connect(uri, uri=True, timeout=30.0, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        return conn

    def _open_readonly(self) -> None:
        """Open for reading only, also on read-only media and from an older schema.

        ``mode=ro`` first. A store in WAL mode cannot be opened that way where its folder is not
        writable (SQLite needs its ``-shm`` file): then ``immutable=1``, which reads the main file
        only and is exact when no ``-wal`` file holds recent writes. A store of an older schema is
        copied to a temporary file and migrated there; the store itself is never written.
        """
        path = quote(str(self.path))
        try:
            self.conn = self._connect(f"file:{path}?mode=ro")
            version = self._prepare(True)
        except sqlite3.OperationalError as exc:
            wal = self.path.with_name(self.path.name + "-wal")
            if os.access(self.path.parent, os.W_OK) or (wal.exists() and wal.stat().st_size > 0):
                if wal.exists() and wal.stat().st_size > 0 and not os.access(self.path.parent, os.W_OK):
                    raise StoreError(f"{self.path}: cannot read the store on read-only media while {wal.name} holds "
                                     f"recent writes ({exc}); copy the store and its -wal file to a writable "
                                     f"folder") from None
                raise
            self.conn = self._connect(f"file:{path}?mode=ro&immutable=1")
            version = self._prepare(True)
        if version < SCHEMA_VERSION:
            self._migrate_a_copy()

    def _migrate_a_copy(self) -> None:
        fd, name = tempfile.mkstemp(prefix="harness-readonly-", suffix=".db")
        os.close(fd)
        scratch = sqlite3.connect(name, isolation_level=None)
        try:
            self.conn.backup(scratch)
        finally:
            scratch.close()
            self.conn.close()
        self._scratch = Path(name)
        self.conn = self._connect(f"file:{quote(name)}")
        self._prepare(False)

    def _prepare(self, readonly: bool) -> int:
        c = self.conn
        app_id = c.execute("PRAGMA application_id").fetchone()[0]
        version = c.execute("PRAGMA user_version").fetchone()[0]
        tables = [r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        if app_id != APPLICATION_ID and (tables or app_id):
            raise StoreError(f"{self.path}: not a harness store (a foreign SQLite database)")
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: store schema version {version} is newer than this harness ({SCHEMA_VERSION}); upgrade the harness"
            )
        if not readonly:
            c.execute("PRAGMA journal_mode=WAL")
            c.execute("PRAGMA synchronous=NORMAL")
        c.execute("PRAGMA foreign_keys=ON")
        if version < SCHEMA_VERSION and not readonly:
            self._migrate(version)
        return version

    def _migrate(self, version: int) -> None:
        c = self.conn
        with immediate_transaction(c):
            current = c.execute("PRAGMA user_version").fetchone()[0]
            for i in range(current, SCHEMA_VERSION):
                for statement in MIGRATIONS[i].split(";"):
                    if statement.strip():
                        c.execute(statement)
            c.execute(f"PRAGMA application_id={APPLICATION_ID}")
            c.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    @property
    def schema_version(self) -> int:
        return self.conn.execute("PRAGMA user_version").fetchone()[0]

    def defer_foreign_keys(self) -> None:
        self.conn.execute("PRAGMA defer_foreign_keys = ON")

    def close(self) -> None:
        self.conn.close()
        if self._scratch is not None:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(str(self._scratch) + suffix).unlink(missing_ok=True)
            self._scratch = None


register_backend("sqlite", SQLiteStore)
