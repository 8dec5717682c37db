"""Keeping a long-lived store healthy: evidence retention, checks, vacuum.

Retention prunes *bodies* only: a body is deleted when no measurement newer than the
cut-off refers to it. Measurements (verdict, failure code, status, headers, the body's
SHA-256 and size) are never deleted, so every verdict stays, and its hash still
proves what the page was if a copy turns up elsewhere. Each pruned body is recorded
in ``pruned_bodies`` so that "pruned by retention" is never confused with "lost".
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

from pydantic import BaseModel, Field

from ..errors import RunLockedError, StoreError
from .locking import all_holders, effective_status
from .sqlite import APPLICATION_ID, SCHEMA_VERSION, Store, immediate_transaction, iso, utcnow


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
        affected = 0
        for i in range(0, len(shas), 500):
            chunk = shas[i:i + 500]
            marks = ",".join("?" * len(chunk))
            affected += c.execute(f"SELECT COUNT(DISTINCT measurement_id) FROM body_refs WHERE sha256 IN ({marks})",
                                  chunk).fetchone()[0]
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
    runs: int = 0
    measurements: int = 0
    bodies: int = 0
    pruned_bodies: int = 0
    orphan_bodies: int = Field(0, description="bodies no measurement refers to (harmless; `store prune` removes them)")
    missing_bodies: int = Field(0, description="bodies measurements refer to that are neither stored nor pruned")
    interrupted_runs: list[str] = Field(default_factory=list)
    running_runs: list[str] = Field(default_factory=list)
    size_bytes: int = 0
    problems: list[str] = Field(default_factory=list)


def check_store(path: Path) -> CheckReport:
    """Integrity, schema version, bodies and runs of a store; ``ok`` is False when something is wrong."""
    path = Path(path)
    problems: list[str] = []
    with Store(path, readonly=True) as store:
        c = store.conn
        try:
            rows = [r[0] for r in c.execute("PRAGMA integrity_check")]
        except sqlite3.DatabaseError as exc:
            rows = [str(exc)]
        integrity = "ok" if rows == ["ok"] else "; ".join(rows[:5])
        if integrity != "ok":
            problems.append(f"integrity check failed: {integrity}")
            version = store.schema_version
            return CheckReport(path=str(path), ok=False, integrity=integrity, schema_version=version,
                               size_bytes=_size(path), problems=problems)
        fk = c.execute("PRAGMA foreign_key_check").fetchall()
        if fk:
            problems.append(f"{len(fk)} rows break a foreign key (e.g. a measurement of an unknown run)")
        version = store.schema_version
        if version != SCHEMA_VERSION:
            problems.append(f"schema version {version}, this harness expects {SCHEMA_VERSION}")
        if c.execute("PRAGMA application_id").fetchone()[0] != APPLICATION_ID:
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
        runs = store.list_runs()
        interrupted = [r.run_id for r in runs if effective_status(r, path) == "interrupted"]
        running = [r.run_id for r in runs if effective_status(r, path) == "running"]
        report = CheckReport(
            path=str(path), ok=not problems, integrity=integrity, schema_version=version, runs=len(runs),
            measurements=count("SELECT COUNT(*) FROM measurements"), bodies=count("SELECT COUNT(*) FROM bodies"),
            pruned_bodies=count("SELECT COUNT(*) FROM pruned_bodies"), orphan_bodies=orphan, missing_bodies=missing,
            interrupted_runs=interrupted, running_runs=running, size_bytes=_size(path), problems=problems,
        )
    return report


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())


class VacuumReport(BaseModel):
    path: str
    size_before: int
    size_after: int


def vacuum_store(path: Path) -> VacuumReport:
    """Rebuild the store file to return freed pages to the disk. Refused while a run is in progress."""
    path = Path(path)
    holders = all_holders(path)
    if holders:
        raise RunLockedError(
            f"{path}: cannot vacuum while a run is in progress (probe set {holders[0].probe_set!r}, {holders[0].describe()})"
        )
    before = _size(path)
    with Store(path) as store:
        try:
            store.conn.execute("VACUUM")
            store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.OperationalError as exc:
            raise StoreError(f"{path}: vacuum failed: {exc}") from None
    return VacuumReport(path=str(path), size_before=before, size_after=_size(path))
