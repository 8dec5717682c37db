"""Keeping a long-lived store healthy: evidence retention, checks, vacuum (both backends).

On PostgreSQL, ``check`` asks the server (data checksum failures, when the cluster counts
them) instead of ``PRAGMA integrity_check``, and the foreign keys are the server's to
enforce; ``vacuum`` is ``VACUUM (FULL, ANALYZE)`` of the store's tables (the space goes back to
the disk), refused while any run lock is held; sizes are the tables' sizes on the server.

Retention prunes *bodies* only: a body is deleted when no measurement newer than the
cut-off refers to it. Measurements (verdict, failure code, status, headers, the body's
SHA-256 and size) are never deleted, so every verdict stays, and its hash still
proves what the page was if a copy turns up elsewhere. Each pruned body is recorded
in ``pruned_bodies`` so that "pruned by retention" is never confused with "lost".
"""

from __future__ import annotations

import datetime as dt
import hashlib
import sqlite3
import zlib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from ..errors import RunLockedError, StoreError
from .base import Store, immediate_transaction, iso, utcnow
from .locking import all_holders, effective_status
from .sqlite import APPLICATION_ID, SCHEMA_VERSION
from .target import StoreTarget, is_postgres, normalize, redact


class PruneReport(BaseModel):
    cutoff: dt.datetime
    dry_run: bool = False
    bodies_deleted: int = 0
    compressed_bytes_freed: int = 0
    measurements_affected: int = Field(0, description="older measurements whose body is gone (verdict and hash kept)")
    bodies_kept: int = 0


def prune_evidence(store: Store, keep: dt.timedelta, *, now: dt.datetime | None = None, dry_run: bool = False) -> PruneReport:
    """Delete bodies no measurement started at or after ``now - keep`` refers to."""
    cutoff = (now or utcnow()) - keep
    cut = iso(cutoff)
    c = store.conn
    doomed_sql = (
        "SELECT b.sha256, b.size, length(b.data) AS stored FROM bodies b WHERE NOT EXISTS ("
        " SELECT 1 FROM body_refs r JOIN measurements m ON m.measurement_id = r.measurement_id"
        " WHERE r.sha256 = b.sha256 AND m.measurement_start_time >= ?)"
        " AND NOT EXISTS (SELECT 1 FROM domain_profile d WHERE d.body_sha256 = b.sha256 AND d.measured_at >= ?)"
    )
    with immediate_transaction(c):
        doomed = c.execute(doomed_sql, (cut, cut)).fetchall()
        shas = [r["sha256"] for r in doomed]
        # one count over every doomed body: a measurement whose page and soft-probe page fall in two
        # chunks below is one measurement, not two
        affected = c.execute("SELECT COUNT(DISTINCT x.measurement_id) FROM body_refs x WHERE x.sha256 IN"
                             f" (SELECT d.sha256 FROM ({doomed_sql}) d)", (cut, cut)).fetchone()[0]
        for i in range(0, len(shas), 500):
            chunk = shas[i:i + 500]
            marks = ",".join("?" * len(chunk))
            if not dry_run:
                stamp = iso(utcnow())
                c.executemany(
                    "INSERT OR REPLACE INTO pruned_bodies (sha256, size, pruned_at) VALUES (?,?,?)",
                    [(r["sha256"], r["size"], stamp) for r in doomed[i:i + 500]],
                )
                c.execute(f"DELETE FROM bodies WHERE sha256 IN ({marks})", chunk)
        kept = c.execute("SELECT COUNT(*) FROM bodies").fetchone()[0]
        if dry_run:
            c.execute("ROLLBACK")
    if dry_run:
        kept -= len(shas)
    return PruneReport(cutoff=cutoff, dry_run=dry_run, bodies_deleted=len(shas),
                       compressed_bytes_freed=sum(r["stored"] for r in doomed), measurements_affected=affected,
                       bodies_kept=kept)


class CheckReport(BaseModel):
    path: str
    ok: bool
    integrity: str
    schema_version: int
    expected_schema_version: int = SCHEMA_VERSION
    mode: Literal["full", "no-bodies"] = Field(
        "full", description="full: every stored body decompressed and hashed again; no-bodies: structural checks "
        "only (integrity, foreign keys, schema, body references, runs), no body data decompressed or hashed")
    runs: int = 0
    measurements: int = 0
    bodies: int = 0
    pruned_bodies: int = 0
    orphan_bodies: int = Field(0, description="bodies no measurement refers to (harmless; `store prune` removes them)")
    missing_bodies: int = Field(0, description="bodies measurements refer to that are neither stored nor pruned")
    bodies_rehashed: int = Field(0, description="stored bodies decompressed and hashed again")
    body_mismatches: list[str] = Field(
        default_factory=list, description="stored bodies whose bytes no longer hash to the key they are stored under "
        "(the body_sha256 of a measurement, or the stored_body_sha256 of its redacted or capped copy), or that do not "
        "decompress: altered after they were stored")
    interrupted_runs: list[str] = Field(default_factory=list)
    running_runs: list[str] = Field(default_factory=list)
    size_bytes: int = 0
    problems: list[str] = Field(default_factory=list)


def _pg_integrity(store: Store) -> str:
    row = store.conn.execute("SELECT checksum_failures FROM pg_stat_database WHERE datname = current_database()"
                             ).fetchone()
    failures = row[0] if row else None
    return "ok" if not failures else f"{failures} data checksum failures reported by the server"


def _pg_size(store: Store) -> int:
    row = store.conn.execute(
        "SELECT CAST(COALESCE(SUM(pg_total_relation_size(c.oid)), 0) AS BIGINT) FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relkind = 'r'"
    ).fetchone()
    return int(row[0])


def check_store(path: StoreTarget, *, bodies: bool = True) -> CheckReport:
    """Integrity, schema version, bodies and runs of a store; ``ok`` is False when something is wrong.

    ``bodies=False`` (``--no-bodies``) skips decompressing and hashing every stored body again, the
    part whose time grows with the bytes stored; the body *references* (missing, unreferenced) are
    still counted from the keys alone."""
    mode: Literal["full", "no-bodies"] = "full" if bodies else "no-bodies"
    target = normalize(path)
    pg = is_postgres(target)
    where = redact(target)
    problems: list[str] = []
    with Store(target, readonly=True) as store:
        c = store.conn
        if pg:
            integrity = _pg_integrity(store)
        else:
            try:
                rows = [r[0] for r in c.execute("PRAGMA integrity_check")]
            except sqlite3.DatabaseError as exc:
                rows = [str(exc)]
            integrity = "ok" if rows == ["ok"] else "; ".join(rows[:5])
        size = _pg_size(store) if pg else _size(Path(target))
        if integrity != "ok":
            problems.append(f"integrity check failed: {integrity}")
            version = store.schema_version
            return CheckReport(path=where, ok=False, integrity=integrity, schema_version=version, mode=mode,
                               size_bytes=size, problems=problems)
        if not pg:  # PostgreSQL enforces foreign keys itself
            fk = c.execute("PRAGMA foreign_key_check").fetchall()
            if fk:
                problems.append(f"{len(fk)} rows break a foreign key (e.g. a measurement of an unknown run)")
        version = store.schema_version
        if version != SCHEMA_VERSION:
            problems.append(f"schema version {version}, this harness expects {SCHEMA_VERSION}")
        if not pg and c.execute("PRAGMA application_id").fetchone()[0] != APPLICATION_ID:
            problems.append("application id is not the harness's")
        count = lambda sql: c.execute(sql).fetchone()[0]  # noqa: E731
        orphan = count("SELECT COUNT(*) FROM bodies b WHERE NOT EXISTS (SELECT 1 FROM body_refs r WHERE r.sha256=b.sha256)"
                       " AND NOT EXISTS (SELECT 1 FROM domain_profile d WHERE d.body_sha256=b.sha256)")
        missing = count(
            "SELECT COUNT(DISTINCT r.sha256) FROM body_refs r"
            " WHERE NOT EXISTS (SELECT 1 FROM bodies b WHERE b.sha256=r.sha256)"
            " AND NOT EXISTS (SELECT 1 FROM pruned_bodies p WHERE p.sha256=r.sha256)"
        )
        if missing:
            problems.append(f"{missing} bodies referenced by measurements are missing (not pruned by retention)")
        rehashed, mismatches = _rehash_bodies(store) if bodies else (0, [])
        if mismatches:
            problems.append(f"{len(mismatches)} stored bodies do not match their SHA-256 (altered after they were "
                            f"stored): {', '.join(m[:16] for m in mismatches[:5])}")
        runs = store.list_runs()
        status = {r.run_id: effective_status(r, store if pg else Path(target)) for r in runs}
        interrupted = [r.run_id for r in runs if status[r.run_id] == "interrupted"]
        running = [r.run_id for r in runs if status[r.run_id] == "running"]
        report = CheckReport(
            path=where, ok=not problems, integrity=integrity, schema_version=version, mode=mode, runs=len(runs),
            measurements=count("SELECT COUNT(*) FROM measurements"), bodies=count("SELECT COUNT(*) FROM bodies"),
            pruned_bodies=count("SELECT COUNT(*) FROM pruned_bodies"), orphan_bodies=orphan, missing_bodies=missing,
            bodies_rehashed=rehashed, body_mismatches=mismatches,
            interrupted_runs=interrupted, running_runs=running, size_bytes=size, problems=problems,
        )
    return report


def _rehash_bodies(store: Store) -> tuple[int, list[str]]:
    """Decompress every stored body and hash it again: a body is stored under the SHA-256 of the bytes
    stored (for a redacted or capped copy that is the measurement's ``stored_body_sha256``, otherwise
    its ``body_sha256``), so any other hash, a size that disagrees or data that does not decompress
    means the body was altered after it was stored. Streams the bodies (bounded memory)."""
    checked, bad = 0, []
    for sha, size, compression, data in store.scan("SELECT sha256, size, compression, data FROM bodies"):
        checked += 1
        try:
            raw = zlib.decompress(data) if compression == "zlib" else bytes(data)
        except zlib.error:
            bad.append(sha)
            continue
        if hashlib.sha256(raw).hexdigest() != sha or (size is not None and len(raw) != size):
            bad.append(sha)
    return checked, sorted(bad)


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())


class VacuumReport(BaseModel):
    path: str
    size_before: int
    size_after: int


def vacuum_store(path: StoreTarget) -> VacuumReport:
    """Rebuild the store to return freed space to the disk. Refused while a run is in progress."""
    target = normalize(path)
    holders = all_holders(target)
    if holders:
        raise RunLockedError(
            f"{redact(target)}: cannot vacuum while a run is in progress (probe set {holders[0].probe_set!r}, "
            f"{holders[0].describe()})"
        )
    if is_postgres(target):
        return _vacuum_pg(target)
    path = Path(target)
    before = _size(path)
    with Store(path) as store:
        try:
            store.conn.execute("VACUUM")
            store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.OperationalError as exc:
            raise StoreError(f"{path}: vacuum failed: {exc}") from None
    return VacuumReport(path=str(path), size_before=before, size_after=_size(path))


def _vacuum_pg(target: StoreTarget) -> VacuumReport:
    with Store(target) as store:
        before = _pg_size(store)
        tables = [r[0] for r in store.conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
            " AND table_type = 'BASE TABLE' ORDER BY table_name")]
        for table in tables:
            store.conn.execute(f'VACUUM (FULL, ANALYZE) "{table}"')
        after = _pg_size(store)
    return VacuumReport(path=redact(target), size_before=before, size_after=after)
