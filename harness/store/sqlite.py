"""The measurement store: one SQLite file (WAL), schema versioned with migrations.

Bodies are stored once per distinct SHA-256 (zlib-compressed), so a thousand identical
"no results" pages cost one row. Every measurement is also kept whole as JSON
(``doc``) so that exports reproduce it exactly; the columns beside it are for queries.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import tempfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..errors import NotFoundError, StoreError, StoreMissingError, StoreWriteError
from ..models import Measurement, Run

APPLICATION_ID = 0x48524E53  # "HRNS": marks a file as a harness store
DEFAULT_STORE_PATH = Path("results") / "harness.db"

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


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def iso(ts: dt.datetime) -> str:
    return ts.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


@contextmanager
def immediate_transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` … ``COMMIT``, or ``ROLLBACK`` on any exception. The block may roll
    back itself (a dry run); after an error such as ``SQLITE_FULL`` SQLite has already rolled
    back, and a second ``ROLLBACK`` would raise and hide the cause."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        if conn.in_transaction:
            conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


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


class Store:
    """A harness store. Use as a context manager or call :meth:`close`."""

    def __init__(self, path: str | Path = DEFAULT_STORE_PATH, *, readonly: bool = False):
        self.path = Path(path)
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

    def close(self) -> None:
        self.conn.close()
        if self._scratch is not None:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(str(self._scratch) + suffix).unlink(missing_ok=True)
            self._scratch = None

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ runs

    def create_run(self, run: Run, doc: dict[str, Any] | None = None) -> None:
        self.conn.execute(
            "INSERT INTO runs (run_id, probe_set, probe_set_sha256, started_at, finished_at, status, probe_cc,"
            " probe_asn, vantage, software_version, planned, pid, hostname, doc)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (run.run_id, run.probe_set, run.probe_set_sha256, iso(run.started_at),
             iso(run.finished_at) if run.finished_at else None, run.status, run.probe_cc, run.probe_asn,
             run.vantage, run.software_version, run.planned, run.pid, run.hostname,
             json.dumps(doc or {}, ensure_ascii=False)),
        )

    def set_run_status(self, run_id: str, status: str, *, finished: bool = False) -> None:
        self.conn.execute(
            "UPDATE runs SET status=?, finished_at=? WHERE run_id=?",
            (status, iso(utcnow()) if finished else None, run_id),
        )

    def reopen_run(self, run_id: str, pid: int | None, hostname: str | None) -> int:
        """Mark a run as running again (resume); returns the new session number."""
        self.conn.execute(
            "UPDATE runs SET status='running', finished_at=NULL, sessions=sessions+1, pid=?, hostname=? WHERE run_id=?",
            (pid, hostname, run_id),
        )
        return self.conn.execute("SELECT sessions FROM runs WHERE run_id=?", (run_id,)).fetchone()[0]

    def _run_from_row(self, row: sqlite3.Row) -> Run:
        return Run(
            run_id=row["run_id"], probe_set=row["probe_set"], probe_set_sha256=row["probe_set_sha256"],
            started_at=parse_iso(row["started_at"]),
            finished_at=parse_iso(row["finished_at"]) if row["finished_at"] else None,
            status=row["status"], probe_cc=row["probe_cc"], probe_asn=row["probe_asn"], vantage=row["vantage"],
            software_version=row["software_version"], planned=row["planned"], pid=row["pid"],
            hostname=row["hostname"],
        )

    def get_run(self, run_id: str) -> Run:
        row = self.conn.execute("SELECT * FROM runs WHERE run_id=?", (run_id,)).fetchone()
        if row is None:
            row = self.conn.execute(
                "SELECT * FROM runs WHERE run_id LIKE ? ORDER BY started_at", (run_id + "%",)
            ).fetchall()
            if len(row) == 1:
                return self._run_from_row(row[0])
            if len(row) > 1:
                raise NotFoundError(f"run id prefix {run_id!r} is ambiguous ({len(row)} runs)")
            raise NotFoundError(f"no run {run_id!r} in {self.path}")
        return self._run_from_row(row)

    def list_runs(self, probe_set: str | None = None, limit: int | None = None) -> list[Run]:
        sql = "SELECT * FROM runs"
        args: list[Any] = []
        if probe_set:
            sql += " WHERE probe_set=?"
            args.append(probe_set)
        sql += " ORDER BY started_at DESC, rowid DESC"
        if limit:
            sql += f" LIMIT {int(limit)}"
        return [self._run_from_row(r) for r in self.conn.execute(sql, args)]

    def run_counts(self, run_id: str) -> dict[str, int]:
        return {
            r[0]: r[1]
            for r in self.conn.execute(
                "SELECT verdict, COUNT(*) FROM measurements WHERE run_id=? AND role IN ('probe', 'item')"
                " GROUP BY verdict", (run_id,)
            )
        }

    # ------------------------------------------------------------------ measurements

    def put_body(self, body: bytes) -> str:
        import hashlib

        sha = hashlib.sha256(body).hexdigest()
        self.conn.execute(
            "INSERT OR IGNORE INTO bodies (sha256, size, compression, data) VALUES (?,?,?,?)",
            (sha, len(body), "zlib", zlib.compress(body, 6)),
        )
        return sha

    def get_body(self, sha256: str) -> bytes:
        row = self.conn.execute("SELECT compression, data FROM bodies WHERE sha256=?", (sha256,)).fetchone()
        if row is None:
            pruned = self.conn.execute("SELECT pruned_at FROM pruned_bodies WHERE sha256=?", (sha256,)).fetchone()
            if pruned is not None:
                raise NotFoundError(f"body {sha256} was pruned on {pruned[0]} (evidence retention); its verdict and hash are kept")
            raise NotFoundError(f"no stored body {sha256}")
        return zlib.decompress(row["data"]) if row["compression"] == "zlib" else bytes(row["data"])

    def add_measurement(self, m: Measurement, body: bytes | None = None, extra_bodies: Iterable[bytes] = ()) -> bool:
        """Store one measurement (and its body, and bodies its test keys refer to) atomically;
        False if its task was already stored."""
        return self.add_measurements([(m, body, extra_bodies)])[0]

    def add_measurements(self, items: Sequence[tuple[Measurement, bytes | None, Iterable[bytes]]]) -> list[bool]:
        """Store several measurements in one transaction (a group commit): all or none.

        Each item is (measurement, body, extra bodies); the answer says, per item, whether it
        was inserted (False: its task was already stored)."""
        try:
            with immediate_transaction(self.conn):
                return [self._insert_measurement(m, body, extra) for m, body, extra in items]
        except sqlite3.OperationalError as exc:  # disk full, I/O error, locked past the timeout
            raise StoreWriteError(f"{self.path}: cannot write a measurement: {exc}; nothing was lost, the run "
                             f"resumes where it stopped once this is fixed") from exc

    def _insert_measurement(self, m: Measurement, body: bytes | None, extra_bodies: Iterable[bytes]) -> bool:
        for extra in extra_bodies:
            self.put_body(extra)
        if body is not None:
            sha = self.put_body(body)
            if m.evidence.body_truncated or m.evidence.redacted:
                # a capped prefix or a redacted copy: the evidence keeps the hash of what was received
                m.evidence.stored_body_sha256 = sha
            else:
                m.evidence.body_sha256 = sha
        return self.insert_measurement_row(m)

    def insert_measurement_row(self, m: Measurement) -> bool:
        """The measurement's row and its body references (inside the caller's transaction; bodies
        already stored); False if its task, or its id, was already stored."""
        cur = self.conn.execute(
            "INSERT OR IGNORE INTO measurements (measurement_id, run_id, task_key, measurement_start_time, platform,"
            " role, input, query, list_name, category, variant, vantage, probe_cc, probe_asn, verdict, failure,"
            " result_count, result_items, status_code, body_sha256, doc)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            self._row(m),
        )
        if cur.rowcount != 1:
            return False
        self.add_body_refs(m)
        return True

    @staticmethod
    def body_keys(m: Measurement) -> list[str]:
        """Keys in the bodies table that a measurement refers to: its page (or capped prefix),
        the soft probe's page and the first answer of a retest."""
        keys = [m.evidence.stored_key]
        for extra in (m.test_keys.soft_probe, m.test_keys.retest_of):
            if isinstance(extra, dict):
                keys.append(extra.get("stored_body_sha256"))
        return [k for k in dict.fromkeys(keys) if k]

    def add_body_refs(self, m: Measurement) -> None:
        """Record which bodies ``m`` refers to (inside the caller's transaction)."""
        self.conn.executemany("INSERT OR IGNORE INTO body_refs (sha256, measurement_id) VALUES (?, ?)",
                              [(k, m.measurement_id) for k in self.body_keys(m)])

    @staticmethod
    def _row(m: Measurement) -> tuple[Any, ...]:
        return (
            m.measurement_id, m.run_id, m.task_key, iso(m.measurement_start_time), m.platform, m.role, m.input,
            m.query, m.list_name, m.category, m.variant, m.vantage, m.probe_cc, m.probe_asn, m.verdict.value,
            m.failure, m.test_keys.result_count, m.test_keys.result_items, m.evidence.status_code,
            m.evidence.body_sha256, m.model_dump_json(),
        )

    def done_task_keys(self, run_id: str) -> set[str]:
        return {r[0] for r in self.conn.execute("SELECT task_key FROM measurements WHERE run_id=?", (run_id,))}

    def measurements(self, run_id: str | None = None, *, role: str | None = None) -> Iterator[Measurement]:
        sql = "SELECT doc FROM measurements"
        cond, args = [], []
        if run_id:
            cond.append("run_id=?")
            args.append(run_id)
        if role:
            cond.append("role=?")
            args.append(role)
        if cond:
            sql += " WHERE " + " AND ".join(cond)
        sql += " ORDER BY measurement_start_time, rowid"
        for (doc,) in self.conn.execute(sql, args):
            yield Measurement.model_validate_json(doc)

    def count_measurements(self, run_id: str) -> int:
        return self.conn.execute("SELECT COUNT(*) FROM measurements WHERE run_id=?", (run_id,)).fetchone()[0]

    def last_known_verdict(self, platform: str, term: str, vantage: str, before_run: str,
                           role: str = "probe") -> str | None:
        """Latest non-failure verdict for (platform, term, vantage) in runs other than ``before_run``
        (``role``: ``probe`` for a search term, ``item`` for a watched item's URL)."""
        row = self.conn.execute(
            "SELECT verdict FROM measurements WHERE platform=? AND input=? AND vantage=? AND role=?"
            " AND verdict != 'failure' AND run_id != ? ORDER BY measurement_start_time DESC, rowid DESC LIMIT 1",
            (platform, term, vantage, role, before_run),
        ).fetchone()
        return row[0] if row else None

    def last_known_verdicts(self, platform: str, terms: Iterable[str], vantage: str, before_run: str,
                            role: str = "probe") -> dict[str, str]:
        """:meth:`last_known_verdict` for many terms in one call (the engine's flip retest, at run start).

        One indexed lookup per term (``measurements_by_term``): the cost follows the number of
        terms asked for, not the size of the store's history.
        """
        out: dict[str, str] = {}
        for term in dict.fromkeys(terms):
            verdict = self.last_known_verdict(platform, term, vantage, before_run, role)
            if verdict is not None:
                out[term] = verdict
        return out

    def verdict_rows(self, run_ids: Iterable[str]) -> Iterator[sqlite3.Row]:
        ids = list(run_ids)
        marks = ",".join("?" * len(ids))
        yield from self.conn.execute(
            f"SELECT run_id, platform, input, vantage, list_name, category, verdict, failure, result_count,"
            f" result_items, measurement_start_time, measurement_id, doc FROM measurements"
            f" WHERE run_id IN ({marks}) AND role='probe' ORDER BY measurement_start_time, rowid",
            ids,
        )

    # ------------------------------------------------------------------ run totals (whole run, every session)

    def platform_counts(self, run_id: str) -> dict[str, dict[str, int]]:
        """Probe (and watched item) verdicts per platform over the whole run, resumed sessions included."""
        out: dict[str, dict[str, int]] = {}
        for platform, verdict, n in self.conn.execute(
            "SELECT platform, verdict, COUNT(*) FROM measurements WHERE run_id=? AND role IN ('probe', 'item')"
            " GROUP BY platform, verdict", (run_id,)
        ):
            out.setdefault(platform, {})[verdict] = n
        return out

    def failure_counts(self, run_id: str) -> dict[str, int]:
        return {
            r[0]: r[1]
            for r in self.conn.execute(
                "SELECT failure, COUNT(*) FROM measurements WHERE run_id=? AND role IN ('probe', 'item')"
                " AND failure IS NOT NULL"
                " GROUP BY failure", (run_id,)
            )
        }

    def run_sessions(self, run_id: str) -> int:
        row = self.conn.execute("SELECT sessions FROM runs WHERE run_id=?", (run_id,)).fetchone()
        return int(row[0]) if row else 0
