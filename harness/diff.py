"""The comparator: which terms changed verdict between two runs, or differ across a dimension.

**State.** The state of (platform, term, vantage) in a run is its latest verdict that is not a
failure; a key that only failed in a run is ``unknown`` there. Failures never erase what is
known: a term that was censored and now only failed is ``became_unknown`` (its last known
verdict and when it was last seen stay in the change), and a term that was unknown in run A
is compared against its last known verdict before A, with that verdict's age shown.

**Confirmation.** A change is confirmed when the engine's flip retest in the same run agreed
(``test_keys.confirmed``) or, failing that, when the next run of the same probe set at the
same vantage point has the same verdict. Unconfirmed changes are listed, marked as such.

**Removal before rules.** A term whose result count or number of result items falls by at
least ``drop_threshold`` (a fraction) while it is not newly censored is ``results_dropped``.

**Scale.** A run's states are read in key order from one covering index
(``measurements_by_run_key``) and merged in a single streaming pass; Pydantic objects are
built only for changes. Two runs of a million measurements each diff in a few seconds.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import sqlite3
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, Field

from .errors import InputError, NotFoundError
from .models import Run
from .store import Store, iso, parse_iso, utcnow

UNKNOWN = "unknown"
CENSORED = frozenset({"hard", "soft"})
DEFAULT_DROP_THRESHOLD = 0.5


class Transition(str, Enum):
    newly_censored = "newly_censored"
    newly_uncensored = "newly_uncensored"
    hard_to_soft = "hard_to_soft"
    soft_to_hard = "soft_to_hard"
    became_unknown = "became_unknown"
    new_term = "new_term"
    dropped_term = "dropped_term"
    results_dropped = "results_dropped"


class Difference(str, Enum):
    """How one (term, …) differs between two sides of a cross-dimension comparison."""

    censored_only_a = "censored_only_a"
    censored_only_b = "censored_only_b"
    hard_a_soft_b = "hard_a_soft_b"
    soft_a_hard_b = "soft_a_hard_b"
    unknown_a = "unknown_a"
    unknown_b = "unknown_b"
    only_a = "only_a"
    only_b = "only_b"


class Change(BaseModel):
    platform: str
    term: str
    vantage: str = ""
    list_name: str | None = None
    category: str | None = None
    transition: Transition
    before: str | None
    after: str | None
    confirmed: bool | None = None
    confirmed_by: Literal["retest", "next_run"] | None = None
    measurement_id: str | None = Field(default=None, description="the measurement the new state rests on")
    before_measurement_id: str | None = None
    before_seen: dt.datetime | None = Field(default=None, description="when the earlier state was measured")
    after_seen: dt.datetime | None = None
    last_known: str | None = Field(default=None, description="for became_unknown: the verdict that still stands")
    stale_days: float | None = Field(default=None, description="age of the known state at run B's start")
    result_count_before: int | None = None
    result_count_after: int | None = None
    result_items_before: int | None = None
    result_items_after: int | None = None
    drop: float | None = Field(default=None, description="fraction of results lost (results_dropped)")


class DiffResult(BaseModel):
    run_a: str
    run_b: str
    probe_set: str
    started_a: dt.datetime | None = None
    started_b: dt.datetime | None = None
    vantage_a: str = ""
    vantage_b: str = ""
    drop_threshold: float | None = DEFAULT_DROP_THRESHOLD
    filters: dict[str, Any] = Field(default_factory=dict)
    changes: list[Change] = Field(default_factory=list)
    counts: dict[str, int] = Field(default_factory=dict)
    compared: int = 0


class CrossRow(BaseModel):
    term: str
    platform: str | None = None
    vantage: str | None = None
    list_name: str | None = None
    category: str | None = None
    difference: Difference
    verdict_a: str | None
    verdict_b: str | None
    measurement_a: str | None = None
    measurement_b: str | None = None


class CrossDiff(BaseModel):
    by: Literal["vantage", "platform"]
    side_a: str
    side_b: str
    run_a: str
    run_b: str
    filters: dict[str, Any] = Field(default_factory=dict)
    rows: list[CrossRow] = Field(default_factory=list)
    counts: dict[str, int] = Field(default_factory=dict)
    compared: int = 0


@dataclass(frozen=True)
class Filters:
    platforms: tuple[str, ...] = ()
    lists: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()

    def sql(self) -> tuple[str, list[Any]]:
        cond: list[str] = []
        args: list[Any] = []
        for col, values in (("platform", self.platforms), ("list_name", self.lists), ("category", self.categories)):
            if values:
                cond.append(f"{col} IN ({','.join('?' * len(values))})")
                args.extend(values)
        if self.tags:
            cond.append(f"EXISTS (SELECT 1 FROM json_each(doc, '$.tags') WHERE value IN ({','.join('?' * len(self.tags))}))")
            args.extend(self.tags)
        return "".join(" AND " + c for c in cond), args

    def as_dict(self) -> dict[str, Any]:
        return {k: list(v) for k, v in (("platform", self.platforms), ("list", self.lists),
                                        ("category", self.categories), ("tag", self.tags)) if v}


# --------------------------------------------------------------------------- states


@dataclass(slots=True)
class _State:
    """The state of one key in one run (built in the hot loop: keep it small)."""

    verdict: str  # a verdict value, or UNKNOWN when the key only failed
    seen: str  # ISO time of the measurement the state rests on
    result_count: int | None
    result_items: int | None
    rowid: int
    n: int = 1


_KEY_COLUMNS = {"run": ("platform", "input", "vantage"), "vantage": ("platform", "input"), "platform": ("input", "vantage")}


def iter_states(store: Store, run_id: str, *, key: Sequence[str] = _KEY_COLUMNS["run"], filters: Filters = Filters(),
                platform: str | None = None, vantage: str | None = None) -> Iterator[tuple[tuple[str, ...], _State]]:
    """Yield (key, state) for every key of one run, in key order, streaming."""
    where, args = filters.sql()
    if platform is not None:
        where += " AND platform = ?"
        args.append(platform)
    if vantage is not None:
        where += " AND vantage = ?"
        args.append(vantage)
    cols = ", ".join(key)
    sql = (f"SELECT {cols}, verdict, measurement_start_time, result_count, result_items, rowid"
           f" FROM measurements INDEXED BY measurements_by_run_key"
           f" WHERE run_id = ? AND role = 'probe'{where} ORDER BY {cols}")
    nk = len(key)
    cur = store.conn.execute(sql, [run_id, *args])
    cur.row_factory = None  # plain tuples: no sqlite3.Row per measurement
    prev: tuple[str, ...] | None = None
    best: _State | None = None
    for row in cur:
        k = row[:nk]
        verdict, seen = row[nk], row[nk + 1]
        if k != prev:
            if best is not None:
                yield prev, best  # type: ignore[misc]
            prev = k
            best = _State(UNKNOWN if verdict == "failure" else verdict, seen, row[nk + 2], row[nk + 3], row[nk + 4])
            continue
        assert best is not None
        best.n += 1
        if verdict == "failure":
            if best.verdict == UNKNOWN and seen > best.seen:
                best.seen, best.rowid = seen, row[nk + 4]
        elif best.verdict == UNKNOWN or seen > best.seen:
            best.verdict, best.seen, best.result_count, best.result_items, best.rowid = (
                verdict, seen, row[nk + 2], row[nk + 3], row[nk + 4])
    if best is not None:
        yield prev, best  # type: ignore[misc]


def _merge(a: Iterator[tuple[tuple[str, ...], _State]], b: Iterator[tuple[tuple[str, ...], _State]]
           ) -> Iterator[tuple[tuple[str, ...], _State | None, _State | None]]:
    """Full outer merge of two key-ordered state streams."""
    end = (None, None)
    ka, sa = next(a, end)
    kb, sb = next(b, end)
    while ka is not None or kb is not None:
        if kb is None or (ka is not None and ka < kb):
            yield ka, sa, None
            ka, sa = next(a, end)
        elif ka is None or kb < ka:
            yield kb, None, sb
            kb, sb = next(b, end)
        else:
            yield ka, sa, sb
            ka, sa = next(a, end)
            kb, sb = next(b, end)


def classify_transition(before: str | None, after: str | None) -> Transition | None:
    if before is None:
        return Transition.new_term if after is not None else None
    if after is None:
        return Transition.dropped_term
    if before == after:
        return None
    if after == UNKNOWN:
        return Transition.became_unknown if before != UNKNOWN else None
    if before == UNKNOWN:
        return Transition.newly_censored if after in CENSORED else None
    if before in CENSORED and after in CENSORED:
        return Transition.hard_to_soft if before == "hard" else Transition.soft_to_hard
    if after in CENSORED:
        return Transition.newly_censored
    if before in CENSORED:
        return Transition.newly_uncensored
    return None


def results_drop(before: _State, after: _State) -> float | None:
    """The larger fractional fall of result count or result items from ``before`` to ``after``."""
    if after.verdict == UNKNOWN or before.verdict == UNKNOWN:
        return None
    worst: float | None = None
    for b, a in ((before.result_count, after.result_count), (before.result_items, after.result_items)):
        if b is None or b <= 0:
            continue
        if a is None:
            if after.verdict != "no_results":
                continue
            a = 0
        fall = 1.0 - a / b
        if worst is None or fall > worst:
            worst = fall
    return worst


# --------------------------------------------------------------------------- diff of two runs


def _last_known_before(conn: sqlite3.Connection, platform: str, term: str, vantage: str, before: str
                       ) -> tuple[str, str, int] | None:
    row = conn.execute(
        "SELECT verdict, measurement_start_time, rowid FROM measurements INDEXED BY measurements_by_input"
        " WHERE input=? AND platform=? AND vantage=? AND measurement_start_time < ? AND role='probe'"
        " AND verdict <> 'failure' ORDER BY measurement_start_time DESC LIMIT 1",
        (term, platform, vantage, before),
    ).fetchone()
    return (row[0], row[1], row[2]) if row else None


def _rows_by_rowid(conn: sqlite3.Connection, rowids: list[int]) -> dict[int, tuple[str, str | None, str | None, Any]]:
    out: dict[int, tuple[str, str | None, str | None, Any]] = {}
    for i in range(0, len(rowids), 500):
        chunk = rowids[i:i + 500]
        for rid, mid, lname, cat, conf in conn.execute(
            f"SELECT rowid, measurement_id, list_name, category, json_extract(doc, '$.test_keys.confirmed')"
            f" FROM measurements WHERE rowid IN ({','.join('?' * len(chunk))})", chunk,
        ):
            out[rid] = (mid, lname, cat, conf)
    return out


def next_run(store: Store, run: Run) -> Run | None:
    row = store.conn.execute(
        "SELECT run_id FROM runs WHERE probe_set=? AND vantage=? AND (started_at > ? OR (started_at = ? AND run_id > ?))"
        " ORDER BY started_at, run_id LIMIT 1",
        (run.probe_set, run.vantage, iso(run.started_at), iso(run.started_at), run.run_id),
    ).fetchone()
    return store.get_run(row[0]) if row else None


def _states_for_keys(store: Store, run_id: str, keys: set[tuple[str, str, str]]) -> dict[tuple[str, ...], _State]:
    """States of only ``keys`` in ``run_id`` (few keys: index seeks; many: one streaming pass)."""
    if len(keys) > 2000:
        return {k: s for k, s in iter_states(store, run_id) if k in keys}
    out: dict[tuple[str, ...], _State] = {}
    for platform, term, vantage in keys:
        rows = store.conn.execute(
            "SELECT verdict, measurement_start_time, result_count, result_items, rowid FROM measurements"
            " INDEXED BY measurements_by_run_key WHERE run_id=? AND platform=? AND input=? AND vantage=? AND role='probe'",
            (run_id, platform, term, vantage),
        ).fetchall()
        known = [r for r in rows if r[0] != "failure"]
        if known:
            v = max(known, key=lambda r: r[1])
            out[(platform, term, vantage)] = _State(v[0], v[1], v[2], v[3], v[4], len(rows))
        elif rows:
            v = max(rows, key=lambda r: r[1])
            out[(platform, term, vantage)] = _State(UNKNOWN, v[1], None, None, v[4], len(rows))
    return out


def _age_days(seen: str | None, at: dt.datetime) -> float | None:
    if not seen:
        return None
    return round((at - parse_iso(seen)).total_seconds() / 86400, 3)


def diff_runs(store: Store, run_a: str, run_b: str, *, filters: Filters = Filters(),
              drop_threshold: float | None = DEFAULT_DROP_THRESHOLD, confirm: bool = True) -> DiffResult:
    """Every change of state between run A and run B (same vantage point keys)."""
    if drop_threshold is not None and not 0 < drop_threshold <= 1:
        raise InputError(f"drop threshold must be a fraction in (0, 1], not {drop_threshold}")
    a, b = store.get_run(run_a), store.get_run(run_b)
    conn = store.conn
    pending: list[tuple[tuple[str, ...], Transition, _State | None, _State | None, float | None]] = []
    compared = 0
    for key, sa, sb in _merge(iter_states(store, a.run_id, filters=filters), iter_states(store, b.run_id, filters=filters)):
        if sa is not None and sb is not None:
            compared += 1
            if sa.verdict == sb.verdict and (
                sa.verdict == UNKNOWN or drop_threshold is None
                or (sa.result_count == sb.result_count and sa.result_items == sb.result_items)
            ):
                continue  # the common case, kept cheap
            if sa.verdict == UNKNOWN and sb.verdict != UNKNOWN:
                # failures never erase: compare against the last verdict known before A
                known = _last_known_before(conn, key[0], key[1], key[2], sa.seen)
                if known is not None:
                    sa = _State(known[0], known[1], None, None, known[2], 0)
        t = classify_transition(sa.verdict if sa else None, sb.verdict if sb else None)
        drop = None
        if sa is not None and sb is not None and drop_threshold is not None and (t is None or t is Transition.newly_uncensored):
            drop = results_drop(sa, sb)
            if drop is not None and drop >= drop_threshold - 1e-12 and sb.verdict not in CENSORED:
                t = Transition.results_dropped if t is None else t
            else:
                drop = None
        if t is None:
            continue
        pending.append((key, t, sa, sb, drop))

    info = _rows_by_rowid(conn, [s.rowid for _, _, sa, sb, _ in pending for s in (sa, sb) if s is not None])
    # confirmation by the next run, for changes the retest did not confirm
    later = next_run(store, b) if confirm else None
    need = {key for key, t, sa, sb, _ in pending
            if sb is not None and sb.verdict != UNKNOWN and t is not Transition.results_dropped
            and info.get(sb.rowid, (None, None, None, None))[3] not in (1, True)}
    next_states = _states_for_keys(store, later.run_id, need) if later is not None and need else {}

    changes: list[Change] = []
    for key, t, sa, sb, drop in pending:
        ia = info.get(sa.rowid) if sa else None
        ib = info.get(sb.rowid) if sb else None
        ref = ib or ia
        confirmed: bool | None = None
        confirmed_by = None
        if sb is not None and sb.verdict != UNKNOWN and t is not Transition.results_dropped:
            retest = ib[3] if ib else None
            if retest in (1, True):
                confirmed, confirmed_by = True, "retest"
            else:
                nxt = next_states.get(key)
                if nxt is not None and nxt.verdict != UNKNOWN:
                    confirmed = nxt.verdict == sb.verdict
                    confirmed_by = "next_run" if confirmed else None
                elif retest in (0, False):
                    confirmed = False
        last_known = sa.verdict if t is Transition.became_unknown and sa is not None else None
        stale_from = sa.seen if t is Transition.became_unknown and sa is not None else (sb.seen if sb else None)
        changes.append(Change(
            platform=key[0], term=key[1], vantage=key[2],
            list_name=ref[1] if ref else None, category=ref[2] if ref else None,
            transition=t, before=sa.verdict if sa else None, after=sb.verdict if sb else None,
            confirmed=confirmed, confirmed_by=confirmed_by,
            measurement_id=ib[0] if ib else None, before_measurement_id=ia[0] if ia else None,
            before_seen=parse_iso(sa.seen) if sa else None, after_seen=parse_iso(sb.seen) if sb else None,
            last_known=last_known, stale_days=_age_days(stale_from, b.started_at) if last_known else None,
            result_count_before=sa.result_count if sa else None, result_count_after=sb.result_count if sb else None,
            result_items_before=sa.result_items if sa else None, result_items_after=sb.result_items if sb else None,
            drop=round(drop, 4) if drop is not None else None,
        ))
    counts = Counter(c.transition.value for c in changes)
    return DiffResult(run_a=a.run_id, run_b=b.run_id, probe_set=b.probe_set, started_a=a.started_at,
                      started_b=b.started_at, vantage_a=a.vantage, vantage_b=b.vantage, drop_threshold=drop_threshold,
                      filters=filters.as_dict(), changes=changes, counts=dict(sorted(counts.items())), compared=compared)


# --------------------------------------------------------------------------- across dimensions


def _difference(va: str | None, vb: str | None) -> Difference | None:
    if va is None:
        return Difference.only_b if vb is not None else None
    if vb is None:
        return Difference.only_a
    if va == vb:
        return None
    if va == UNKNOWN:
        return Difference.unknown_a
    if vb == UNKNOWN:
        return Difference.unknown_b
    if va in CENSORED and vb in CENSORED:
        return Difference.hard_a_soft_b if va == "hard" else Difference.soft_a_hard_b
    if va in CENSORED:
        return Difference.censored_only_a
    if vb in CENSORED:
        return Difference.censored_only_b
    return None


def cross_diff(store: Store, by: Literal["vantage", "platform"], run_a: str, run_b: str, *,
               side_a: str | None = None, side_b: str | None = None, filters: Filters = Filters()) -> CrossDiff:
    """Compare two sides along one dimension: vantage points (two runs) or platforms (one run or two).

    ``by="vantage"``: key (platform, term); side A is run A (optionally only vantage ``side_a``),
    side B is run B. ``by="platform"``: key (term, vantage); side A is platform ``side_a`` in
    run A, side B is platform ``side_b`` in run B (A and B may be the same run).
    """
    a, b = store.get_run(run_a), store.get_run(run_b)
    key = _KEY_COLUMNS[by]
    if by == "platform":
        if not side_a or not side_b:
            raise InputError("--by platform needs two platforms (e.g. --platform douyin --platform toutiao)")
        fil = Filters((), filters.lists, filters.categories, filters.tags)
        sa_it = iter_states(store, a.run_id, key=key, filters=fil, platform=side_a)
        sb_it = iter_states(store, b.run_id, key=key, filters=fil, platform=side_b)
        label_a, label_b = side_a, side_b
    else:
        label_a, label_b = side_a or a.vantage, side_b or b.vantage
        sa_it = iter_states(store, a.run_id, key=key, filters=filters, vantage=label_a)
        sb_it = iter_states(store, b.run_id, key=key, filters=filters, vantage=label_b)
        if a.run_id == b.run_id and label_a == label_b:
            raise InputError("--by vantage compares two vantage points: give two runs from different vantage points")
    pending: list[tuple[tuple[str, ...], Difference, _State | None, _State | None]] = []
    compared = 0
    for k, sa, sb in _merge(sa_it, sb_it):
        if sa is not None and sb is not None:
            compared += 1
        d = _difference(sa.verdict if sa else None, sb.verdict if sb else None)
        if d is not None:
            pending.append((k, d, sa, sb))
    info = _rows_by_rowid(store.conn, [s.rowid for _, _, sa, sb in pending for s in (sa, sb) if s is not None])
    rows: list[CrossRow] = []
    for k, d, sa, sb in pending:
        ia = info.get(sa.rowid) if sa else None
        ib = info.get(sb.rowid) if sb else None
        ref = ia or ib
        if by == "platform":
            term, platform, vantage = k[0], None, k[1]
        else:
            platform, term, vantage = k[0], k[1], None
        rows.append(CrossRow(term=term, platform=platform, vantage=vantage, list_name=ref[1] if ref else None,
                             category=ref[2] if ref else None, difference=d,
                             verdict_a=sa.verdict if sa else None, verdict_b=sb.verdict if sb else None,
                             measurement_a=ia[0] if ia else None, measurement_b=ib[0] if ib else None))
    counts = Counter(r.difference.value for r in rows)
    return CrossDiff(by=by, side_a=label_a, side_b=label_b, run_a=a.run_id, run_b=b.run_id,
                     filters=filters.as_dict(), rows=rows, counts=dict(sorted(counts.items())), compared=compared)


# --------------------------------------------------------------------------- run references

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_AGO = re.compile(r"^(\d+)([dhw])$")
_LATEST = re.compile(r"^latest(?:~(\d+))?$")


@dataclass
class RunScope:
    probe_set: str | None = None
    vantage: str | None = None
    exclude_vantage: str | None = None
    now: dt.datetime = field(default_factory=utcnow)


def _runs_in_scope(store: Store, scope: RunScope, vantage: str | None) -> list[Run]:
    runs = store.list_runs(scope.probe_set)
    want = vantage if vantage is not None else scope.vantage
    if want is not None:
        runs = [r for r in runs if r.vantage == want]
    if scope.exclude_vantage is not None:
        runs = [r for r in runs if r.vantage != scope.exclude_vantage]
    return runs


def resolve_run(store: Store, ref: str, probe_set: str | None = None, *, scope: RunScope | None = None) -> Run:
    """Resolve a run reference.

    ``latest``, ``latest~N`` (N runs before the latest); a date ``2026-11-01`` (the latest run
    that started on or before that day, UTC); an age ``7d``/``12h``/``2w`` (the latest run that
    started at least that long before ``scope.now``); any of these with ``@VANTAGE`` to pick
    only runs from that vantage point; or a run id or unique prefix.
    """
    scope = scope or RunScope(probe_set=probe_set)
    if probe_set is not None:
        scope.probe_set = probe_set
    ref = ref.strip()
    base, _, vantage_part = ref.partition("@")
    vantage = vantage_part if "@" in ref else None
    where = (f" of probe set {scope.probe_set!r}" if scope.probe_set else "") + (
        f" at vantage {vantage!r}" if vantage is not None else "")
    m = _LATEST.match(base)
    if m:
        n = int(m.group(1) or 0)
        runs = _runs_in_scope(store, scope, vantage)
        if len(runs) <= n:
            raise NotFoundError(f"there is no run {ref!r}{where}")
        return runs[n]
    if _DATE.match(base):
        try:
            day = dt.date.fromisoformat(base)
        except ValueError:
            raise InputError(f"{ref!r} is not a valid date (YYYY-MM-DD)") from None
        cutoff = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.timezone.utc)
        runs = [r for r in _runs_in_scope(store, scope, vantage) if r.started_at < cutoff]
        if not runs:
            raise NotFoundError(f"no run started on or before {base}{where}")
        return runs[0]
    m = _AGO.match(base)
    if m:
        unit = {"d": dt.timedelta(days=1), "h": dt.timedelta(hours=1), "w": dt.timedelta(weeks=1)}[m.group(2)]
        cutoff = scope.now - int(m.group(1)) * unit
        runs = [r for r in _runs_in_scope(store, scope, vantage) if r.started_at <= cutoff]
        if not runs:
            raise NotFoundError(f"no run started {base} or more before {iso(scope.now)[:19]}Z{where}")
        return runs[0]
    if "@" in ref:
        raise InputError(f"{ref!r}: '@VANTAGE' goes with latest, latest~N, a date or an age (7d)")
    return store.get_run(ref)


def default_pair(store: Store, a: str | None, b: str | None, *, across_vantage: bool = False) -> tuple[Run, Run]:
    """Fill in missing run references.

    B defaults to the latest run; A to the run before B of the same probe set at the same
    vantage point (or, ``across_vantage``, the latest run of that probe set at another one).
    A relative A (``latest~1``, ``7d``, a date) is resolved within B's probe set, relative to B.
    """
    run_b = resolve_run(store, b) if b else resolve_run(store, "latest")
    scope = RunScope(probe_set=run_b.probe_set, now=run_b.started_at)
    if across_vantage:
        scope.exclude_vantage = run_b.vantage
    else:
        scope.vantage = run_b.vantage
    if a:
        if _AGO.match(a.partition("@")[0]) or _DATE.match(a.partition("@")[0]):
            return resolve_run(store, a, scope=scope), run_b
        return resolve_run(store, a), run_b
    earlier = [r for r in _runs_in_scope(store, scope, None)
               if r.run_id != run_b.run_id and (across_vantage or r.started_at <= run_b.started_at)]
    if not earlier:
        if across_vantage:
            raise NotFoundError(f"probe set {run_b.probe_set!r} has no run at a vantage point other than "
                                f"{run_b.vantage!r}; nothing to compare run {run_b.run_id} with")
        raise NotFoundError(f"probe set {run_b.probe_set!r} has only one run (at vantage {run_b.vantage!r});"
                            f" nothing to compare it with")
    return earlier[0], run_b


# --------------------------------------------------------------------------- output formats

CHANGE_COLUMNS = ["transition", "platform", "term", "vantage", "list_name", "category", "before", "after",
                  "confirmed", "confirmed_by", "last_known", "stale_days", "result_count_before",
                  "result_count_after", "result_items_before", "result_items_after", "drop", "before_seen",
                  "after_seen", "measurement_id", "before_measurement_id"]
CROSS_COLUMNS = ["difference", "term", "platform", "vantage", "list_name", "category", "verdict_a", "verdict_b",
                 "measurement_a", "measurement_b"]


def _csv(rows: list[dict[str, Any]], columns: list[str]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if v is None else v) for k, v in r.items()})
    return buf.getvalue()


def to_csv(result: DiffResult | CrossDiff) -> str:
    if isinstance(result, CrossDiff):
        return _csv([r.model_dump(mode="json") for r in result.rows], CROSS_COLUMNS)
    return _csv([c.model_dump(mode="json") for c in result.changes], CHANGE_COLUMNS)


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|~>-])")


def md_escape(text: object) -> str:
    """Text from a platform or a list, safe inside a Markdown table cell (no HTML, no markup)."""
    s = "" if text is None else str(text)
    s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    s = _MD_SPECIAL.sub(r"\\\1", s)
    return " ".join(s.split())


def _confirmed_text(c: Change) -> str:
    if c.confirmed is None:
        return "unconfirmed"
    if c.confirmed:
        return f"confirmed ({c.confirmed_by})" if c.confirmed_by else "confirmed"
    return "not confirmed"


def to_markdown(result: DiffResult | CrossDiff) -> str:
    out: list[str] = []
    if isinstance(result, CrossDiff):
        out.append(f"### Across {result.by}: {md_escape(result.side_a)} (A) vs {md_escape(result.side_b)} (B)\n")
        out.append(f"Runs {md_escape(result.run_a)} and {md_escape(result.run_b)}; {result.compared} keys on both sides.\n")
        out.append("| difference | term | platform | vantage | A | B |")
        out.append("| --- | --- | --- | --- | --- | --- |")
        for r in result.rows:
            out.append(f"| {r.difference.value} | {md_escape(r.term)} | {md_escape(r.platform or '')} | "
                       f"{md_escape(r.vantage or '')} | {r.verdict_a or '–'} | {r.verdict_b or '–'} |")
        return "\n".join(out) + "\n"
    out.append(f"### {md_escape(result.probe_set)}: {md_escape(result.run_a)} → {md_escape(result.run_b)}\n")
    summary = ", ".join(f"{k}: {v}" for k, v in result.counts.items()) or "no changes"
    out.append(f"{result.compared} keys compared; {summary}.\n")
    if result.changes:
        out.append("| change | platform | term | vantage | before | after | confirmation |")
        out.append("| --- | --- | --- | --- | --- | --- | --- |")
        for c in result.changes:
            after = c.after or "–"
            if c.transition is Transition.results_dropped and c.drop is not None:
                after = f"{after} (−{c.drop:.0%} results)"
            if c.last_known:
                after = f"{after} (still {c.last_known}, {c.stale_days} d old)"
            out.append(f"| {c.transition.value} | {md_escape(c.platform)} | {md_escape(c.term)} | "
                       f"{md_escape(c.vantage)} | {c.before or '–'} | {md_escape(after)} | {_confirmed_text(c)} |")
    return "\n".join(out) + "\n"


def to_json(result: DiffResult | CrossDiff) -> str:
    return json.dumps(result.model_dump(mode="json"), ensure_ascii=False, indent=2)
