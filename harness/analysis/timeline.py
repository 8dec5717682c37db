"""One term through time (periods of each verdict) and the list of runs with their counts.

A term's timeline is built per (platform, vantage) from its state in each run: the latest
verdict that is not a failure. A run in which the term only failed does not end a period
(failures never erase what is known); it is counted in the period's ``unknown_runs`` and
the period's ``last_attempt`` shows how stale ``last_seen`` is.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, Field

from ..errors import NotFoundError
from ..store.sqlite import Store, parse_iso, utcnow


class Period(BaseModel):
    verdict: str
    first_seen: dt.datetime
    last_seen: dt.datetime
    first_run: str
    last_run: str
    runs: int = Field(description="runs in which this verdict was measured")
    unknown_runs: int = Field(default=0, description="runs in this period where the term only failed")
    last_attempt: dt.datetime | None = Field(default=None, description="latest measurement of any kind in the period")
    confirmed: bool | None = None


class Track(BaseModel):
    platform: str
    vantage: str
    periods: list[Period] = Field(default_factory=list)
    current: str | None = Field(default=None, description="the state now: the last known verdict")
    last_seen: dt.datetime | None = None
    age_days: float | None = Field(default=None, description="how stale the current state is")


class Timeline(BaseModel):
    term: str
    tracks: list[Track] = Field(default_factory=list)


def term_timeline(store: Store, term: str, *, platforms: list[str] | None = None, vantages: list[str] | None = None,
                  now: dt.datetime | None = None) -> Timeline:
    """The periods of each verdict of ``term`` per (platform, vantage), oldest first."""
    # covered by the index: no table row is read until the few periods fetch their retest result
    sql = ("SELECT platform, vantage, run_id, verdict, measurement_start_time, rowid"
           " FROM measurements INDEXED BY measurements_by_input WHERE input = ? AND role = 'probe'")
    args: list[Any] = [term]
    if platforms:
        sql += f" AND platform IN ({','.join('?' * len(platforms))})"
        args += platforms
    if vantages:
        sql += f" AND vantage IN ({','.join('?' * len(vantages))})"
        args += vantages
    sql += " ORDER BY platform, vantage, measurement_start_time"
    rows = store.conn.execute(sql, args).fetchall()
    if not rows:
        raise NotFoundError(f"no measurement of {term!r} in {store.path}" + (" with these filters" if platforms or vantages else ""))
    now = now or utcnow()
    tracks: list[Track] = []
    by_track: dict[tuple[str, str], list[tuple[str, str, str, Any]]] = {}
    for platform, vantage, run_id, verdict, ts, rowid in rows:
        by_track.setdefault((platform, vantage), []).append((run_id, verdict, ts, rowid))
    first_rows: dict[int, Period] = {}
    for (platform, vantage), ms in by_track.items():
        # collapse to one state per run, in the order runs were measured
        per_run: dict[str, list[Any]] = {}
        for run_id, verdict, ts, rowid in ms:
            st = per_run.get(run_id)
            if st is None:
                per_run[run_id] = st = [None, None, ts, None]  # verdict, seen, last_attempt, rowid of the state
            st[2] = max(st[2], ts)
            if verdict != "failure" and (st[1] is None or ts >= st[1]):
                st[0], st[1], st[3] = verdict, ts, rowid
        track = Track(platform=platform, vantage=vantage)
        cur: Period | None = None
        for run_id, (verdict, seen, attempt, state_rowid) in per_run.items():
            attempt_ts = parse_iso(attempt)
            if verdict is None:
                if cur is None:
                    cur = Period(verdict="unknown", first_seen=attempt_ts, last_seen=attempt_ts, first_run=run_id,
                                 last_run=run_id, runs=0, unknown_runs=1, last_attempt=attempt_ts)
                    track.periods.append(cur)
                else:
                    cur.unknown_runs += 1
                    cur.last_attempt = attempt_ts
                continue
            seen_ts = parse_iso(seen)
            if cur is None or cur.verdict != verdict:
                cur = Period(verdict=verdict, first_seen=seen_ts, last_seen=seen_ts, first_run=run_id, last_run=run_id,
                             runs=0, last_attempt=attempt_ts)
                first_rows[state_rowid] = cur
                track.periods.append(cur)
            cur.runs += 1
            cur.last_seen, cur.last_run, cur.last_attempt = seen_ts, run_id, attempt_ts
            if cur.runs > 1 and cur.confirmed is not True:
                cur.confirmed = True  # a later run agreed with the first of the period
        known = [p for p in track.periods if p.runs]
        if known:
            track.current = known[-1].verdict
            track.last_seen = known[-1].last_seen
            track.age_days = round((now - known[-1].last_seen).total_seconds() / 86400, 3)
        tracks.append(track)
    ids = list(first_rows)
    for i in range(0, len(ids), 500):
        chunk = ids[i:i + 500]
        for rowid, conf in store.conn.execute(
            f"SELECT rowid, json_extract(doc, '$.test_keys.confirmed') FROM measurements"
            f" WHERE rowid IN ({','.join('?' * len(chunk))})", chunk):
            period = first_rows[rowid]
            if period.confirmed is None and conf is not None:
                period.confirmed = bool(conf)
    return Timeline(term=term, tracks=tracks)


class HistoryRow(BaseModel):
    run_id: str
    probe_set: str
    started_at: dt.datetime
    finished_at: dt.datetime | None
    status: str
    vantage: str
    probe_cc: str
    probe_asn: str
    measurements: int
    counts: dict[str, int] = Field(default_factory=dict, description="probe verdicts, and watched items' states "
                                                                     "(item failures as item_failure)")
    censored: int = 0


def run_history(store: Store, *, probe_set: str | None = None, vantage: str | None = None,
                limit: int | None = None) -> list[HistoryRow]:
    """Runs, newest first, with their per-verdict counts of probe measurements."""
    runs = store.list_runs(probe_set)
    if vantage is not None:
        runs = [r for r in runs if r.vantage == vantage]
    if limit:
        runs = runs[:limit]
    out: list[HistoryRow] = []
    for r in runs:
        counts: dict[str, int] = {}
        total = 0
        for verdict, role, n in store.conn.execute(
            "SELECT verdict, role, COUNT(*) FROM measurements INDEXED BY measurements_by_run_key"
            " WHERE run_id=? GROUP BY verdict, role", (r.run_id,)
        ):
            total += n
            if role == "probe":
                counts[verdict] = counts.get(verdict, 0) + n
            elif role == "item":  # watched items: their own states (available, removed_...); failures apart
                key = "item_failure" if verdict == "failure" else verdict
                counts[key] = counts.get(key, 0) + n
        out.append(HistoryRow(run_id=r.run_id, probe_set=r.probe_set, started_at=r.started_at,
                              finished_at=r.finished_at, status=r.status, vantage=r.vantage, probe_cc=r.probe_cc,
                              probe_asn=r.probe_asn, measurements=total, counts=dict(sorted(counts.items())),
                              censored=counts.get("hard", 0) + counts.get("soft", 0)))
    return out
