"""The team store: one PostgreSQL schema that many vantage points write to at once (psycopg 3).

``Store("postgresql://user@host/db")`` opens a :class:`PostgresStore`: the same logical
schema as the SQLite store (``MIGRATIONS`` here go step for step with
:mod:`harness.store.sqlite`'s, recorded in ``harness_meta``, applied on first use under a
transaction-level advisory lock so that several processes starting at once migrate once),
the same queries (:mod:`harness.store.base`), and:

- **SQL**: callers write SQLite's dialect; :func:`translate` turns it into PostgreSQL's
  (placeholders, ``INSERT OR IGNORE/REPLACE`` → ``ON CONFLICT``, ``INDEXED BY`` dropped,
  ``json_extract``/``json_each`` → ``json`` operators). Text columns use the ``"C"`` collation,
  so ``ORDER BY`` and comparisons are code-point order, as in SQLite and in Python (the
  comparator merges sorted streams and relies on it).
- **Many writers**: a group commit is one transaction of pipelined ``executemany`` calls;
  bodies are inserted in hash order, so two runs storing the same pages never deadlock, and
  a body stored by any vantage point is stored once. A deadlock or serialization failure
  (which should not happen) is retried.
- **Run locks**: one session-level advisory lock per (schema, probe set, vantage) held on a
  connection of its own (:class:`PgRunLock`); the server drops it when the holder's
  connection ends, however the process died, so the lock holds across machines. The
  holder's details (pid, host, run id) are in ``run_locks``, read only while the advisory
  lock is granted (``pg_locks``).
- **Reading**: a read-only store works in one ``REPEATABLE READ READ ONLY`` transaction
  (one consistent snapshot while runs keep writing); :meth:`PostgresStore.scan` streams
  through a server-side cursor.

Credentials: the URL's password, if any, is never printed, logged or stored
(:func:`harness.store.target.redact`); prefer ``$PGPASSWORD`` or ``~/.pgpass``.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import os
import re
import socket
import uuid
import zlib
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

from ..errors import RunLockedError, StoreError, StoreMissingError, StoreWriteError
from ..models import Measurement
from .base import Store, iso, register_backend, utcnow
from .holder import LockHolder
from .target import StoreTarget, normalize, redact, scrub

APPLICATION = "censorship-harness"
_T = 'TEXT COLLATE "C"'

# Version N here is the same logical schema as version N of harness.store.sqlite.MIGRATIONS:
# same tables, columns, keys and indexes (types mapped: TEXT -> TEXT COLLATE "C", INTEGER -> BIGINT,
# BLOB -> BYTEA); every table SQLite gives a rowid has a `rowid` identity column here.
MIGRATIONS: list[str] = [
    # 1: runs, measurements, bodies (+ PostgreSQL's own: who holds which run lock)
    f"""
    CREATE TABLE runs (
        rowid BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
        run_id {_T} PRIMARY KEY,
        probe_set {_T} NOT NULL,
        probe_set_sha256 {_T} NOT NULL DEFAULT '',
        started_at {_T} NOT NULL,
        finished_at {_T},
        status {_T} NOT NULL,
        probe_cc {_T} NOT NULL DEFAULT 'ZZ',
        probe_asn {_T} NOT NULL DEFAULT 'AS0',
        vantage {_T} NOT NULL DEFAULT '',
        software_version {_T} NOT NULL DEFAULT '',
        planned BIGINT NOT NULL DEFAULT 0,
        sessions BIGINT NOT NULL DEFAULT 1,
        pid BIGINT,
        hostname {_T},
        doc {_T} NOT NULL DEFAULT '{{}}'
    );
    CREATE INDEX runs_by_probe_set ON runs (probe_set, started_at);
    CREATE TABLE bodies (
        rowid BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
        sha256 {_T} PRIMARY KEY,
        size BIGINT NOT NULL,
        compression {_T} NOT NULL,
        data BYTEA NOT NULL
    );
    ALTER TABLE bodies ALTER COLUMN data SET STORAGE EXTERNAL;
    CREATE TABLE measurements (
        rowid BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
        measurement_id {_T} PRIMARY KEY,
        run_id {_T} NOT NULL REFERENCES runs (run_id) DEFERRABLE INITIALLY IMMEDIATE,
        task_key {_T} NOT NULL,
        measurement_start_time {_T} NOT NULL,
        platform {_T} NOT NULL,
        role {_T} NOT NULL,
        input {_T} NOT NULL,
        query {_T} NOT NULL,
        list_name {_T},
        category {_T},
        variant {_T},
        vantage {_T} NOT NULL DEFAULT '',
        probe_cc {_T} NOT NULL DEFAULT 'ZZ',
        probe_asn {_T} NOT NULL DEFAULT 'AS0',
        verdict {_T} NOT NULL,
        failure {_T},
        result_count BIGINT,
        result_items BIGINT,
        status_code BIGINT,
        body_sha256 {_T},
        doc {_T} NOT NULL,
        UNIQUE (run_id, task_key)
    );
    CREATE INDEX measurements_by_term ON measurements (platform, input, measurement_start_time);
    CREATE INDEX measurements_by_run ON measurements (run_id, platform, input);
    CREATE TABLE run_locks (
        lock_key BIGINT PRIMARY KEY,
        probe_set {_T} NOT NULL,
        vantage {_T} NOT NULL,
        pid BIGINT NOT NULL,
        host {_T} NOT NULL,
        run_id {_T},
        since {_T} NOT NULL
    )
    """,
    # 2: evidence retention
    f"""
    CREATE TABLE pruned_bodies (
        rowid BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
        sha256 {_T} PRIMARY KEY,
        size BIGINT NOT NULL,
        pruned_at {_T} NOT NULL
    );
    CREATE INDEX measurements_by_body ON measurements (body_sha256)
    """,
    # 3: re-classifications and the authorized-domain profile
    f"""
    CREATE TABLE reclassifications (
        rowid BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
        batch_id {_T} NOT NULL,
        created_at {_T} NOT NULL,
        run_id {_T} NOT NULL REFERENCES runs (run_id) DEFERRABLE INITIALLY IMMEDIATE,
        measurement_id {_T} NOT NULL REFERENCES measurements (measurement_id) DEFERRABLE INITIALLY IMMEDIATE,
        spec_sha256 {_T} NOT NULL,
        old_verdict {_T} NOT NULL,
        old_failure {_T},
        new_verdict {_T} NOT NULL,
        new_failure {_T},
        changed BIGINT NOT NULL,
        doc {_T} NOT NULL,
        PRIMARY KEY (batch_id, measurement_id)
    );
    CREATE INDEX reclassifications_by_run ON reclassifications (run_id, created_at);
    CREATE TABLE domain_profile (
        rowid BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
        run_id {_T} NOT NULL REFERENCES runs (run_id) DEFERRABLE INITIALLY IMMEDIATE,
        platform {_T} NOT NULL,
        input {_T} NOT NULL,
        domain {_T} NOT NULL,
        state {_T} NOT NULL,
        query {_T} NOT NULL,
        body_sha256 {_T},
        measured_at {_T} NOT NULL,
        PRIMARY KEY (run_id, platform, input, domain)
    )
    """,
    # 4: the comparator's covering indexes (INCLUDE rowid: SQLite's index entries carry it)
    """
    CREATE INDEX IF NOT EXISTS measurements_by_input
        ON measurements (input, platform, vantage, measurement_start_time, role, verdict, run_id) INCLUDE (rowid);
    CREATE INDEX IF NOT EXISTS measurements_by_run_key
        ON measurements (run_id, platform, vantage, role, input, measurement_start_time, verdict, result_count, result_items)
        INCLUDE (rowid)
    """,
    # 5: isolations
    f"""
    CREATE TABLE isolations (
        rowid BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
        run_id {_T} NOT NULL REFERENCES runs (run_id) DEFERRABLE INITIALLY IMMEDIATE,
        platform {_T} NOT NULL,
        input {_T} NOT NULL,
        vantage {_T} NOT NULL DEFAULT '',
        finished_at {_T} NOT NULL,
        queries BIGINT NOT NULL,
        complete BIGINT NOT NULL,
        error {_T},
        rules {_T} NOT NULL,
        PRIMARY KEY (run_id, platform, input)
    )
    """,
    # 6: which measurements refer to which stored bodies
    f"""
    CREATE TABLE body_refs (
        sha256 {_T} NOT NULL,
        measurement_id {_T} NOT NULL REFERENCES measurements (measurement_id) DEFERRABLE INITIALLY IMMEDIATE,
        PRIMARY KEY (sha256, measurement_id)
    );
    CREATE INDEX body_refs_by_measurement ON body_refs (measurement_id);
    INSERT INTO body_refs (sha256, measurement_id)
        SELECT k, measurement_id FROM (
            SELECT CASE WHEN (doc::json #>> '{{evidence,body_truncated}}') = 'true'
                        THEN doc::json #>> '{{evidence,stored_body_sha256}}'
                        ELSE doc::json #>> '{{evidence,body_sha256}}' END AS k, measurement_id FROM measurements
            UNION ALL SELECT doc::json #>> '{{test_keys,soft_probe,stored_body_sha256}}', measurement_id FROM measurements
            UNION ALL SELECT doc::json #>> '{{test_keys,retest_of,stored_body_sha256}}', measurement_id FROM measurements
        ) AS refs WHERE k IS NOT NULL
        ON CONFLICT DO NOTHING
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)
BACKEND_TABLES = frozenset({"harness_meta", "run_locks"})
"""PostgreSQL-only bookkeeping (SQLite keeps these in PRAGMAs and lock files)."""


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        raise StoreError("a postgresql:// store needs psycopg: pip install 'censorship-harness[postgresql]'") from None
    return psycopg


# --------------------------------------------------------------------------- SQLite's dialect -> PostgreSQL's

_INDEXED = re.compile(r"\s+(?:INDEXED\s+BY\s+\w+|NOT\s+INDEXED)\b", re.I)
_BEGIN = re.compile(r"^\s*BEGIN\s+(?:IMMEDIATE|EXCLUSIVE|DEFERRED)(?:\s+TRANSACTION)?\s*$", re.I)
_INSERT_OR = re.compile(r"^\s*INSERT\s+OR\s+(IGNORE|REPLACE)\s+INTO\s+(\w+)\s*\(([^)]*)\)", re.I | re.S)
_JSON_EXTRACT = re.compile(r"json_extract\(\s*([\w.]+)\s*,\s*'\$\.([\w.]+)'\s*\)", re.I)
_JSON_EACH = re.compile(r"json_each\(\s*([\w.]+)\s*,\s*'\$\.([\w.]+)'\s*\)", re.I)
_IFNULL = re.compile(r"\bIFNULL\s*\(", re.I)
_RETURNING = re.compile(r"\sRETURNING\s", re.I)


def _placeholders(sql: str) -> str:
    """``?`` outside string literals → ``%s``; a literal ``%`` → ``%%`` (psycopg's paramstyle)."""
    out: list[str] = []
    quote: str | None = None
    for ch in sql:
        if quote:
            if ch == quote:
                quote = None
        elif ch in ("'", '"'):
            quote = ch
        elif ch == "?":
            out.append("%s")
            continue
        out.append("%%" if ch == "%" else ch)
    return "".join(out)


def _json_path(path: str) -> str:
    return "'{" + ",".join(path.split(".")) + "}'"


@functools.lru_cache(maxsize=1024)
def translate(sql: str, primary_keys: tuple[tuple[str, tuple[str, ...]], ...] = ()) -> str:
    """One statement in the store's SQLite dialect, as PostgreSQL runs it.

    ``primary_keys`` ((table, columns), ...) is what ``INSERT OR REPLACE`` needs to name its
    conflict target. Raises :class:`StoreError` for what has no translation (``PRAGMA``).
    """
    if re.match(r"^\s*PRAGMA\b", sql, re.I):
        raise StoreError(f"PRAGMA is SQLite-only ({sql.strip()[:60]!r}); use a Store method")
    if _BEGIN.match(sql):
        return "BEGIN"
    s = _INDEXED.sub("", sql)
    s = _JSON_EXTRACT.sub(lambda m: f"({m.group(1)}::json #> {_json_path(m.group(2))})", s)
    s = _JSON_EACH.sub(lambda m: f"json_array_elements_text({m.group(1)}::json #> {_json_path(m.group(2))})"
                                 f" AS json_each(value)", s)
    s = _IFNULL.sub("COALESCE(", s)
    m = _INSERT_OR.match(s)
    if m:
        action, table, cols = m.group(1).upper(), m.group(2), [c.strip() for c in m.group(3).split(",")]
        s = f"INSERT INTO {table} ({', '.join(cols)})" + s[m.end():]
        if action == "IGNORE":
            clause = " ON CONFLICT DO NOTHING"
        else:
            keys = dict(primary_keys).get(table)
            if not keys:
                raise StoreError(f"INSERT OR REPLACE INTO {table}: the table has no primary key to replace on")
            rest = [c for c in cols if c not in keys]
            clause = (f" ON CONFLICT ({', '.join(keys)}) DO "
                      + ("UPDATE SET " + ", ".join(f"{c} = EXCLUDED.{c}" for c in rest) if rest else "NOTHING"))
        r = _RETURNING.search(s)
        s = (s[:r.start()] + clause + s[r.start():]) if r else s.rstrip().rstrip(";") + clause
    return _placeholders(s)


class _Row(tuple):  # type: ignore[type-arg]
    """A result row read by position or by column name, like ``sqlite3.Row``."""

    _index: dict[str, int]

    def __new__(cls, values: Sequence[Any], index: dict[str, int]) -> "_Row":
        row = super().__new__(cls, values)
        row._index = index
        return row

    def __getitem__(self, key: Any) -> Any:  # type: ignore[override]
        if isinstance(key, str):
            return tuple.__getitem__(self, self._index[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._index)


class PgCursor:
    """The part of ``sqlite3.Cursor`` the store's callers use."""

    def __init__(self, cur: Any):
        self._cur = cur
        self.row_factory: Any = _Row  # set to None for plain tuples, as on sqlite3
        desc = cur.description
        self._index = {d.name: i for i, d in enumerate(desc)} if desc else {}

    @property
    def rowcount(self) -> int:
        return self._cur.rowcount

    def _wrap(self, row: Any) -> Any:
        if row is None or self.row_factory is None:
            return row
        return _Row(row, self._index)

    def fetchone(self) -> Any:
        return self._wrap(self._cur.fetchone())

    def fetchall(self) -> list[Any]:
        rows = self._cur.fetchall()
        return rows if self.row_factory is None else [_Row(r, self._index) for r in rows]

    def __iter__(self) -> Iterator[Any]:
        if self.row_factory is None:
            return iter(self._cur)
        return (_Row(r, self._index) for r in self._cur)


class PgConnection:
    """What the store's callers use of ``sqlite3.Connection``, over a psycopg connection."""

    def __init__(self, raw: Any, location: str, target: StoreTarget):
        self.raw = raw
        self.location = location
        self._target = target
        self._pkeys: tuple[tuple[str, tuple[str, ...]], ...] | None = None

    def primary_keys(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        if self._pkeys is None:
            keys: dict[str, list[str]] = {}
            for table, col in self.raw.execute(
                "SELECT c.relname, a.attname FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid"
                " JOIN pg_namespace n ON n.oid = c.relnamespace"
                " JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) ON true"
                " JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum"
                " WHERE i.indisprimary AND n.nspname = current_schema() ORDER BY c.relname, k.ord"
            ):
                keys.setdefault(table, []).append(col)
            self._pkeys = tuple((t, tuple(c)) for t, c in sorted(keys.items()))
        return self._pkeys

    def _sql(self, sql: str) -> str:
        needs_keys = "REPLACE" in sql.upper()
        return translate(sql, self.primary_keys() if needs_keys else ())

    def execute(self, sql: str, params: Sequence[Any] = ()) -> PgCursor:
        q = self._sql(sql)
        try:
            return PgCursor(self.raw.execute(q, tuple(params)))
        except _psycopg().Error as exc:
            self._recover()
            raise _store_error(exc, self.location, self._target) from exc

    def executemany(self, sql: str, seq: Any) -> PgCursor:
        q = self._sql(sql)
        cur = self.raw.cursor()
        try:
            cur.executemany(q, [tuple(p) for p in seq])
        except _psycopg().Error as exc:
            self._recover()
            raise _store_error(exc, self.location, self._target) from exc
        return PgCursor(cur)

    def _recover(self) -> None:
        """After an error outside an explicit transaction (a read-only store's snapshot), start afresh."""
        if not self.raw.autocommit and not self.raw.closed:
            self.raw.rollback()

    @property
    def in_transaction(self) -> bool:
        return self.raw.info.transaction_status != _psycopg().pq.TransactionStatus.IDLE

    @property
    def total_changes(self) -> int:  # pragma: no cover - sqlite3-only; use Store.add_body's answer
        raise StoreError("total_changes is SQLite-only")

    def close(self) -> None:
        self.raw.close()


def _store_error(exc: Exception, location: str, target: StoreTarget) -> Exception:
    """Driver errors keep their type (callers catch IntegrityError etc.); connection loss becomes a StoreError."""
    psycopg = _psycopg()
    if isinstance(exc, psycopg.OperationalError) and not isinstance(exc, psycopg.errors.QueryCanceled):
        first = scrub(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__, target)
        return StoreError(f"{location}: {first}")
    return exc


def _numeric_loader(psycopg: Any) -> Any:
    from psycopg.adapt import Loader

    class IntOrFloat(Loader):
        """``SUM``/``AVG`` give ``numeric``: integers stay ``int`` (as in SQLite), not ``Decimal``."""

        def load(self, data: Any) -> Any:
            text = bytes(data).decode()
            try:
                return int(text)
            except ValueError:
                return float(text)

    return IntOrFloat


_JSON_NUL = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")
"""The JSON escape of U+0000 (an odd number of backslashes before ``u0000``; ``\\\\u0000`` is a
literal backslash followed by text)."""


def _nul_safe_str_dumper() -> Any:
    """PostgreSQL text cannot hold U+0000 (SQLite's can), and its JSON functions refuse the escape
    ``\\u0000`` in a document: every text parameter has U+0000 replaced by U+FFFD (the replacement
    character), in plain text and, in a JSON document (a measurement's or run's ``doc``),
    as the escape. A term or page text with a NUL is stored instead of failing the whole write, and a
    lookup by such a term is translated the same way, so it still finds it; what is read back from
    PostgreSQL has U+FFFD where the SQLite store keeps the NUL (docs/deploy.md)."""
    from psycopg.types.string import StrDumperUnknown

    class NulSafeStrDumper(StrDumperUnknown):
        def dump(self, obj: str) -> Any:
            if "\x00" in obj:
                obj = obj.replace("\x00", "\ufffd")
            if "\\u0000" in obj and obj.startswith("{"):
                obj = _JSON_NUL.sub(r"\1\\ufffd", obj)
            return super().dump(obj)

    return NulSafeStrDumper


def connect(target: StoreTarget, *, readonly: bool = False) -> Any:
    """A psycopg connection to the target (autocommit; read-only: one REPEATABLE READ snapshot)."""
    psycopg = _psycopg()
    url = str(normalize(target))
    try:
        raw = psycopg.connect(url, autocommit=not readonly, connect_timeout=15,
                              application_name="censorship-harness")
    except psycopg.Error as exc:
        msg = scrub(" ".join(str(exc).split()) or type(exc).__name__, target)
        raise StoreError(f"{redact(target)}: cannot connect to the store: {msg}") from None
    raw.adapters.register_loader("numeric", _numeric_loader(psycopg))
    raw.adapters.register_dumper(str, _nul_safe_str_dumper())
    if readonly:
        raw.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        raw.read_only = True
    return raw


def _lock_key(schema: str, probe_set: str, vantage: str) -> int:
    digest = hashlib.sha256(f"{APPLICATION}\x1f{schema}\x1f{probe_set}\x1f{vantage}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _migrate_key(schema: str) -> int:
    return _lock_key(schema, "\x00migrate", "")


class PostgresStore(Store):
    """A store in one schema of a PostgreSQL database (see the module docstring)."""

    backend: ClassVar[str] = "postgresql"

    def __init__(self, target: StoreTarget, *, readonly: bool = False):
        psycopg = _psycopg()
        self.write_errors = (psycopg.OperationalError,)
        self.target = normalize(target)
        self.path = redact(self.target)
        self.readonly = readonly
        raw = connect(self.target, readonly=readonly)
        self.conn = PgConnection(raw, self.path, self.target)
        try:
            self._prepare(readonly)
        except BaseException:
            raw.close()
            raise

    # -- opening and migrating

    def _tables(self) -> set[str]:
        return {r[0] for r in self.conn.raw.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()")}

    def _meta_version(self) -> int | None:
        row = self.conn.raw.execute("SELECT value FROM harness_meta WHERE key = 'schema_version'").fetchone()
        return int(row[0]) if row else None

    def _prepare(self, readonly: bool) -> None:
        raw = self.conn.raw
        schema = raw.execute("SELECT current_schema()").fetchone()[0]
        if schema is None:
            raise StoreError(f"{self.path}: no schema to use (the search_path names none that exists; CREATE SCHEMA it)")
        self.schema = schema
        tables = self._tables()
        version = 0
        if "harness_meta" in tables:
            app = raw.execute("SELECT value FROM harness_meta WHERE key = 'application'").fetchone()
            if app is None or app[0] != APPLICATION:
                raise StoreError(f"{self.path}: not a harness store (schema {schema!r} holds another application's tables)")
            version = self._meta_version() or 0
        elif tables:
            raise StoreError(f"{self.path}: not a harness store (schema {schema!r} holds other tables; "
                             f"choose another database or schema)")
        if version > SCHEMA_VERSION:
            raise StoreError(f"{self.path}: store schema version {version} is newer than this harness "
                             f"({SCHEMA_VERSION}); upgrade the harness")
        if version < SCHEMA_VERSION:
            if readonly and version == 0:
                raise StoreMissingError(f"{self.path}: no harness store here yet (run a probe set first)")
            if readonly:
                raise StoreError(f"{self.path}: store needs migrating; open it once read-write")
            self._migrate()

    def _migrate(self) -> None:
        c = self.conn
        with self.transaction():
            c.raw.execute("SELECT pg_advisory_xact_lock(%s)", (_migrate_key(self.schema),))
            c.raw.execute(f"CREATE TABLE IF NOT EXISTS harness_meta (key {_T} PRIMARY KEY, value {_T} NOT NULL)")
            current = self._meta_version() or 0  # another process may have migrated while we waited
            for i in range(current, SCHEMA_VERSION):
                for statement in MIGRATIONS[i].split(";\n"):
                    if statement.strip():
                        c.raw.execute(statement)
            c.raw.execute("INSERT INTO harness_meta (key, value) VALUES ('application', %s), ('schema_version', %s)"
                          " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value", (APPLICATION, str(SCHEMA_VERSION)))
        c._pkeys = None

    @property
    def schema_version(self) -> int:
        return self._meta_version() or 0

    def defer_foreign_keys(self) -> None:
        self.conn.raw.execute("SET CONSTRAINTS ALL DEFERRED")

    # -- reading

    def scan(self, sql: str, args: Sequence[Any] = (), *, size: int = 10_000) -> Iterator[tuple[Any, ...]]:
        raw = self.conn.raw
        hold = raw.autocommit and not self.conn.in_transaction  # outside a transaction a cursor must be WITH HOLD
        cur = raw.cursor(name=f"harness_{uuid.uuid4().hex[:12]}", withhold=hold)
        cur.itersize = size
        try:
            try:
                cur.execute(self.conn._sql(sql), tuple(args))
            except _psycopg().Error as exc:
                self.conn._recover()
                raise _store_error(exc, self.path, self.target) from exc
            yield from cur
        finally:
            if not raw.closed:
                try:
                    cur.close()
                except _psycopg().Error:
                    pass

    # -- writing: a group commit as three pipelined statements

    def add_measurements(self, items: Sequence[tuple[Measurement, bytes | None, Any]]) -> list[bool]:
        psycopg = _psycopg()
        for attempt in range(5):
            try:
                with self.transaction():
                    return self._insert_batch(items)
            except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure):
                if attempt == 4:
                    raise
            except (psycopg.OperationalError, StoreError) as exc:
                msg = scrub(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__, self.target)
                raise StoreWriteError(f"{self.path}: cannot write a measurement: {msg}; nothing was lost, the run "
                                 f"resumes where it stopped once this is fixed") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _insert_batch(self, items: Sequence[tuple[Measurement, bytes | None, Any]]) -> list[bool]:
        bodies: dict[str, bytes] = {}
        rows = []
        for m, body, extras in items:
            for extra in extras:
                bodies.setdefault(hashlib.sha256(extra).hexdigest(), extra)
            if body is not None:
                sha = hashlib.sha256(body).hexdigest()
                bodies.setdefault(sha, body)
                if m.evidence.body_truncated or m.evidence.redacted:  # the stored form's hash (issue 15)
                    m.evidence.stored_body_sha256 = sha
                else:
                    m.evidence.body_sha256 = sha
            rows.append(self._row(m))
        raw = self.conn.raw
        cur = raw.cursor()
        if bodies:  # in hash order: concurrent writers take the same keys in the same order, never a deadlock
            cur.executemany("INSERT INTO bodies (sha256, size, compression, data) VALUES (%s, %s, %s, %s)"
                            " ON CONFLICT DO NOTHING",
                            [(sha, len(b), "zlib", zlib.compress(b, 6)) for sha, b in sorted(bodies.items())])
        cur.executemany(
            "INSERT INTO measurements (measurement_id, run_id, task_key, measurement_start_time, platform,"
            " role, input, query, list_name, category, variant, vantage, probe_cc, probe_asn, verdict, failure,"
            " result_count, result_items, status_code, body_sha256, doc)"
            " VALUES (" + ", ".join(["%s"] * 21) + ") ON CONFLICT DO NOTHING RETURNING 1", rows, returning=True)
        inserted = []
        while True:
            inserted.append(cur.fetchone() is not None)
            if not cur.nextset():
                break
        refs = [(k, m.measurement_id) for (m, _, _), ok in zip(items, inserted) if ok for k in self.body_keys(m)]
        if refs:
            cur.executemany("INSERT INTO body_refs (sha256, measurement_id) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                            refs)
        return inserted

    # -- run locks (see PgRunLock)

    def lock_key(self, probe_set: str, vantage: str) -> int:
        return _lock_key(self.schema, probe_set, vantage)

    def _held_clause(self) -> str:
        return ("EXISTS (SELECT 1 FROM pg_locks p WHERE p.locktype = 'advisory' AND p.granted"
                " AND p.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                " AND p.objsubid = 1 AND p.classid::bigint = ((l.lock_key >> 32) & 4294967295)"
                " AND p.objid::bigint = (l.lock_key & 4294967295))")

    def lock_holder(self, probe_set: str, vantage: str = "") -> Any:
        """Who holds the run lock of (probe set, vantage) now (None: nobody)."""
        key = self.lock_key(probe_set, vantage)
        row = self.conn.raw.execute(
            f"SELECT l.pid, l.host, l.probe_set, l.run_id, l.since, l.vantage FROM run_locks l"
            f" WHERE l.lock_key = %s AND {self._held_clause()}", (key,)).fetchone()
        if row is not None:
            return LockHolder(int(row[0]), row[1], row[2], row[3], row[4], row[5])
        hi, lo = (key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF
        held = self.conn.raw.execute(
            "SELECT 1 FROM pg_locks p WHERE p.locktype = 'advisory' AND p.granted AND p.objsubid = 1"
            " AND p.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " AND p.classid::bigint = %s AND p.objid::bigint = %s", (hi, lo)).fetchone()
        return LockHolder(0, "?", probe_set, vantage=vantage) if held else None

    def lock_holders(self) -> list[Any]:
        return [LockHolder(int(r[0]), r[1], r[2], r[3], r[4], r[5]) for r in self.conn.raw.execute(
            f"SELECT l.pid, l.host, l.probe_set, l.run_id, l.since, l.vantage FROM run_locks l"
            f" WHERE {self._held_clause()} ORDER BY l.probe_set, l.vantage")]


class PgRunLock:
    """One run of a probe set at one vantage point at a time, across machines: an advisory lock.

    Held on a connection of its own for the length of the run; the server releases it when
    that connection ends (the process exited or was killed). Same interface as
    :class:`harness.store.locking.ProbeSetLock`.
    """

    def __init__(self, target: StoreTarget, probe_set: str, vantage: str = ""):
        self.target = target
        self.probe_set = probe_set
        self.vantage = vantage
        self.took_over: Any = None
        self._store: PostgresStore | None = None
        self._key: int | None = None

    @property
    def held(self) -> bool:
        return self._store is not None

    @property
    def path(self) -> str:
        return redact(self.target)

    def acquire(self) -> "PgRunLock":
        if self._store is not None:
            return self
        store = PostgresStore(self.target)
        try:
            raw = store.conn.raw
            key = store.lock_key(self.probe_set, self.vantage)
            if not raw.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0]:
                holder = store.lock_holder(self.probe_set, self.vantage)
                who = holder.describe() if holder else "another process"
                at = f" at vantage {self.vantage!r}" if self.vantage else ""
                raise RunLockedError(f"probe set {self.probe_set!r}{at} is already running ({who}); "
                                     f"advisory lock in {store.path}")
            row = raw.execute("SELECT pid, host, probe_set, run_id, since, vantage FROM run_locks WHERE lock_key = %s",
                              (key,)).fetchone()
            if row is not None and not (int(row[0]) == os.getpid() and row[1] == socket.gethostname()):
                self.took_over = LockHolder(int(row[0]), row[1], row[2], row[3], row[4], row[5])
            since = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
            raw.execute("INSERT INTO run_locks (lock_key, probe_set, vantage, pid, host, run_id, since)"
                        " VALUES (%s, %s, %s, %s, %s, NULL, %s) ON CONFLICT (lock_key) DO UPDATE SET"
                        " probe_set = EXCLUDED.probe_set, vantage = EXCLUDED.vantage, pid = EXCLUDED.pid,"
                        " host = EXCLUDED.host, run_id = NULL, since = EXCLUDED.since",
                        (key, self.probe_set, self.vantage, os.getpid(), socket.gethostname(), since))
        except BaseException:
            store.close()
            raise
        self._store, self._key = store, key
        return self

    def update(self, **info: Any) -> None:
        if self._store is not None and "run_id" in info:
            self._store.conn.raw.execute("UPDATE run_locks SET run_id = %s WHERE lock_key = %s", (info["run_id"], self._key))

    def release(self) -> None:
        store, self._store = self._store, None
        if store is None:
            return
        try:
            raw = store.conn.raw
            if not raw.closed and not raw.broken:
                raw.execute("DELETE FROM run_locks WHERE lock_key = %s AND pid = %s AND host = %s",
                            (self._key, os.getpid(), socket.gethostname()))
                raw.execute("SELECT pg_advisory_unlock(%s)", (self._key,))
        except _psycopg().Error:
            pass  # the connection is gone: the server has released the lock already
        finally:
            store.close()

    def __enter__(self) -> "PgRunLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


register_backend("postgresql", PostgresStore)

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "PgConnection", "PgRunLock", "PostgresStore", "connect", "translate",
           "iso", "utcnow"]
