"""The store's backend-neutral part: :class:`Store`, the queries every backend shares, and time helpers.

``Store(target)`` opens the backend the target names (:mod:`harness.store.target`): a path
gives :class:`~harness.store.sqlite.SQLiteStore`, a ``postgresql://`` URL gives
:class:`~harness.store.postgres.PostgresStore`. Code above the store stage types against
:class:`Store` and never needs to know which one it has.

**Writing SQL that runs on both.** ``store.conn`` is an ``sqlite3.Connection`` on SQLite and a
small adapter with the same calls (``execute``, ``executemany``, ``in_transaction``) on
PostgreSQL. Write SQLite's dialect, restricted to what the adapter translates
(:mod:`harness.store.postgres`, ``translate``): ``?`` placeholders; ``INSERT OR IGNORE`` and
``INSERT OR REPLACE`` (tables with a primary key); ``INDEXED BY`` (a hint, dropped);
``json_extract(col, '$.a.b')`` and ``json_each(col, '$.a')``; ``IFNULL``; ``BEGIN IMMEDIATE``.
Every table but ``body_refs`` has an integer ``rowid`` on both. Wrap ``SUM`` in
``CAST(... AS INTEGER)``; no ``PRAGMA`` (use a :class:`Store` method); big scans go through
:meth:`Store.scan`, which streams on both. The suite runs the store, engine, diff, timeline,
report, export and locking tests on both backends.

Bodies are stored once per distinct SHA-256 (zlib-compressed), so a thousand identical
"no results" pages cost one row, whatever vantage point they came from. Every measurement
is also kept whole as JSON (``doc``) so that exports reproduce it exactly; the columns
beside it are for queries.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

from ..errors import NotFoundError, StoreError, StoreWriteError
from ..models import Measurement, Run
from .target import StoreTarget, is_postgres, normalize, redact

DEFAULT_STORE_PATH = Path("results") / "harness.db"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def iso(ts: dt.datetime) -> str:
    return ts.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


@contextmanager
def immediate_transaction(conn: Any) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` … ``COMMIT``, or ``ROLLBACK`` on any exception. The block may roll
    back itself (a dry run); after an error such as ``SQLITE_FULL`` SQLite has already rolled
    back, and a second ``ROLLBACK`` would raise and hide the cause. (On PostgreSQL the
    adapter sends ``BEGIN``.)"""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        if conn.in_transaction:
            conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


_BACKENDS: dict[str, type["Store"]] = {}


def register_backend(name: str, cls: type["Store"]) -> None:
    """Called by each backend module (``sqlite``, ``postgresql``) when it is imported."""
    _BACKENDS[name] = cls


class Store:
    """A harness store. Use as a context manager or call :meth:`close`.

    ``Store(target, readonly=False)`` picks the backend from the target (see the module
    docstring); ``store.location`` is the target with any password masked, safe to show.
    """

    backend: ClassVar[str] = ""
    write_errors: ClassVar[tuple[type[BaseException], ...]] = ()  # the driver's errors a write can meet
    conn: Any
    target: StoreTarget
    path: Any  # SQLite: the file's Path; PostgreSQL: the redacted URL (for messages)

    def __new__(cls, target: StoreTarget = DEFAULT_STORE_PATH, *args: Any, **kwargs: Any) -> "Store":
        if cls is Store:
            name = "postgresql" if is_postgres(target) else "sqlite"
            if name not in _BACKENDS:  # pragma: no cover - harness.store imports both
                raise StoreError(f"no {name} store backend is loaded")
            cls = _BACKENDS[name]
        return super().__new__(cls)

    def __init__(self, target: StoreTarget = DEFAULT_STORE_PATH, *, readonly: bool = False):  # pragma: no cover
        raise NotImplementedError

    @property
    def location(self) -> str:
        """Where the store is, safe to print (a URL's password masked)."""
        return redact(self.target)

    @property
    def schema_version(self) -> int:
        raise NotImplementedError

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ backend hooks

    def transaction(self) -> Any:
        """A write transaction (``with store.transaction(): ...``): all or nothing."""
        return immediate_transaction(self.conn)

    def scan(self, sql: str, args: Sequence[Any] = (), *, size: int = 10_000) -> Iterator[tuple[Any, ...]]:
        """Stream a large result as plain tuples (no row objects, bounded memory on both backends).

        SQLite: the cursor itself, a lazy iterator (no Python frame per row)."""
        cur = self.conn.execute(sql, args)
        cur.row_factory = None
        return cur  # type: ignore[no-any-return]

    def defer_foreign_keys(self) -> None:
        """Inside a transaction: check foreign keys at commit, not per statement."""
        raise NotImplementedError


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

    def _run_from_row(self, row: Any) -> Run:
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
            raise NotFoundError(f"no run {run_id!r} in {self.location}")
        return self._run_from_row(row)

    def list_runs(self, probe_set: str | None = None, limit: int | None = None, *,
                  vantage: str | None = None) -> list[Run]:
        """Runs, newest first; only those of ``probe_set`` and/or of ``vantage`` (its label) when given."""
        sql = "SELECT * FROM runs"
        cond: list[str] = []
        args: list[Any] = []
        if probe_set:
            cond.append("probe_set=?")
            args.append(probe_set)
        if vantage is not None:
            cond.append("vantage=?")
            args.append(vantage)
        if cond:
            sql += " WHERE " + " AND ".join(cond)
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
        return self.add_body(body)[0]

    def add_body(self, body: bytes) -> tuple[str, bool]:
        """Store a body under its SHA-256 (once, whoever sent it); (hash, whether it was new)."""
        sha = hashlib.sha256(body).hexdigest()
        cur = self.conn.execute(
            "INSERT OR IGNORE INTO bodies (sha256, size, compression, data) VALUES (?,?,?,?)",
            (sha, len(body), "zlib", zlib.compress(body, 6)),
        )
        return sha, cur.rowcount == 1

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
        except self.write_errors as exc:  # disk full, I/O error, locked past the timeout, server gone
            raise StoreWriteError(f"{self.location}: cannot write a measurement: {exc}; nothing was lost, the run "
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
        for (doc,) in self.scan(sql, args):
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

    def verdict_rows(self, run_ids: Iterable[str]) -> Iterator[Any]:
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


_STORE_FILE_SUFFIXES = ("", "-wal", "-shm", "-journal")


@contextmanager
def new_store_or_nothing(target: StoreTarget) -> Iterator[Store]:
    """Open the store at ``target`` for writing (creating it if needed) for one all-or-nothing job
    (an import): if the block fails and the store did not exist before, everything opening it created
    (the SQLite file, its ``-wal``/``-shm`` files, the folders made for it) is removed again, so a
    failed first write leaves no empty store behind. An existing store, or a PostgreSQL one, is only
    closed: the job's own transaction keeps it as it was."""
    target = normalize(target)
    if is_postgres(target) or Path(target).exists():
        with Store(target) as store:
            yield store
        return
    path = Path(target)
    made: list[Path] = []
    parent = path.parent
    while not parent.exists():  # the folders opening the store will create, deepest first
        made.append(parent)
        parent = parent.parent
    try:
        with Store(path) as store:
            yield store
    except BaseException:
        for suffix in _STORE_FILE_SUFFIXES:
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        for folder in made:
            try:
                folder.rmdir()
            except OSError:  # not empty: something else lives there now
                break
        raise
