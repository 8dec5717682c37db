"""The comparator for watched items: removals, restorations, their time windows, and time to removal.

**State.** The state of an item (platform, URL, vantage) in a run is its latest measurement
that is not a failure: ``available``, ``removed_censored``, ``removed_by_author`` or
``removed_other``. An item that only failed in a run is ``unknown`` there; failures never
erase what is known (as for search terms).

**Transitions** between two runs A and B (``diff_items``), the state before being A's, or the
last one known before A when A only failed:

- ``removed_censored`` / ``removed_by_author`` / ``removed_other``: available before, removed after;
- ``restored``: removed before, available after; ``reason_changed``: removed for another reason;
- ``first_observation``: nothing was known before B. **An item first seen already removed is a
  first observation, never a removal** (we did not see it go);
- ``became_unknown``: known before, only failures in B (``last_known`` stays);
- ``dropped_item``: measured in A, not in B (B complete).

**Time window.** A change happened after the last measurement that still showed the state
before (``window_start``) and no later than the first measurement that showed the new state
(``window_end``); ``harness timeline URL`` shows the same windows for every change of an item.

**Time to removal** (``survival``): for each item first seen available, the hours from that
first sighting to the first measurement that showed it removed (an upper bound: the removal
happened inside the window before it). Items never seen removed are censored at their last
sighting as available. The share still available N hours after first seen is the
Kaplan-Meier estimate, per platform (the report's survival chart) and per platform and
category (the report's table). Items first seen already removed are counted apart.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterable
from enum import Enum

from pydantic import BaseModel, Field

from ..errors import NotFoundError
from ..models import ITEM_VERDICTS, REMOVED_VERDICTS, Run
from ..store.sqlite import Store, parse_iso

UNKNOWN = "unknown"
AVAILABLE = "available"
REMOVED = frozenset(v.value for v in REMOVED_VERDICTS)
ITEM_STATES = tuple(v.value for v in ITEM_VERDICTS)
SURVIVAL_HOURS = (1, 6, 24, 72, 168)

Key = tuple[str, str, str]  # (platform, url, vantage)


class ItemTransition(str, Enum):
    removed_censored = "removed_censored"
    removed_by_author = "removed_by_author"
    removed_other = "removed_other"
    restored = "restored"
    reason_changed = "reason_changed"
    first_observation = "first_observation"
    became_unknown = "became_unknown"
    dropped_item = "dropped_item"


REMOVALS = frozenset({ItemTransition.removed_censored, ItemTransition.removed_by_author, ItemTransition.removed_other})


class Observation(BaseModel):
    """One measurement of an item (what a state rests on)."""

    state: str
    seen: dt.datetime
    measurement_id: str
    run_id: str
    signals: list[str] = Field(default_factory=list)
    confirmed: bool | None = None


class ItemChange(BaseModel):
    platform: str
    url: str
    vantage: str = ""
    list_name: str | None = None
    category: str | None = None
    transition: ItemTransition
    before: str | None = None
    after: str | None = None
    window_start: dt.datetime | None = Field(default=None, description="last measurement still showing `before`")
    window_end: dt.datetime | None = Field(default=None, description="first measurement showing `after`")
    window_hours: float | None = None
    measurement_id: str | None = Field(default=None, description="the measurement the new state rests on")
    before_measurement_id: str | None = None
    signals: list[str] = Field(default_factory=list, description="signals of the new state (which notice)")
    confirmed: bool | None = Field(default=None, description="the same-run retest agreed (True) or not (False)")
    last_known: str | None = Field(default=None, description="became_unknown: the state that still stands")


class ItemDiff(BaseModel):
    run_a: str
    run_b: str
    probe_set: str
    changes: list[ItemChange] = Field(default_factory=list)
    counts: dict[str, int] = Field(default_factory=dict)
    compared: int = 0
    not_reached: int = 0


# --------------------------------------------------------------------------- reading the store


def _rows(store: Store, where: str, args: Iterable[object]) -> list[tuple]:
    """Item measurements (plain SQL over the measurements table's columns; the signals and the retest
    come from the stored document, parsed here, so no backend-specific JSON function is needed)."""
    cur = store.conn.execute(
        "SELECT platform, input, vantage, run_id, verdict, measurement_start_time, measurement_id, list_name,"
        f" category, doc FROM measurements WHERE role = 'item' AND {where} ORDER BY measurement_start_time, rowid",
        list(args))
    cur.row_factory = None
    return cur.fetchall()


def _observation(row: tuple) -> Observation:
    import json

    state = UNKNOWN if row[4] == "failure" else row[4]
    keys = (json.loads(row[9]) if row[9] else {}).get("test_keys") or {}
    confirmed = keys.get("confirmed")
    return Observation(state=state, seen=parse_iso(row[5]), measurement_id=row[6], run_id=row[3],
                       signals=list(keys.get("signals") or []), confirmed=None if confirmed is None else bool(confirmed))


def run_item_states(store: Store, run_id: str) -> dict[Key, tuple[Observation, str | None, str | None]]:
    """Every item of a run: its state there (the last known one, else its last failure) and its list/category."""
    out: dict[Key, tuple[Observation, str | None, str | None]] = {}
    for row in _rows(store, "run_id = ?", [run_id]):
        key = (row[0], row[1], row[2])
        obs = _observation(row)
        prev = out.get(key)
        if prev is None or obs.state != UNKNOWN or prev[0].state == UNKNOWN:
            out[key] = (obs, row[7], row[8])
    return out


def _last_known_before(store: Store, key: Key, before: dt.datetime) -> Observation | None:
    rows = _rows(store, "platform = ? AND input = ? AND vantage = ? AND verdict <> 'failure'"
                        " AND measurement_start_time < ?", [*key, _iso(before)])
    return _observation(rows[-1]) if rows else None


def _iso(ts: dt.datetime) -> str:
    from ..store.sqlite import iso

    return iso(ts)


def _window(store: Store, key: Key, before: str, after: Observation) -> tuple[dt.datetime | None, dt.datetime]:
    """(last measurement showing ``before`` ahead of ``after``, first measurement showing ``after`` since then)."""
    rows = _rows(store, "platform = ? AND input = ? AND vantage = ? AND measurement_start_time <= ?",
                 [*key, _iso(after.seen)])
    start: dt.datetime | None = None
    end = after.seen
    for row in rows:
        obs = _observation(row)
        if obs.state == before:
            start, end = obs.seen, after.seen
        elif obs.state == after.state and start is not None and obs.seen < end:
            end = obs.seen
    return start, end


def _hours(a: dt.datetime | None, b: dt.datetime | None) -> float | None:
    if a is None or b is None:
        return None
    return round((b - a).total_seconds() / 3600, 6)


# --------------------------------------------------------------------------- two runs


def classify_item_transition(before: str | None, after: str | None) -> ItemTransition | None:
    if before is None:
        return ItemTransition.first_observation if after not in (None, UNKNOWN) else None
    if after is None:
        return ItemTransition.dropped_item
    if before == after:
        return None
    if after == UNKNOWN:
        return ItemTransition.became_unknown
    if before == UNKNOWN:
        return None
    if before == AVAILABLE:
        return ItemTransition(after)
    if after == AVAILABLE:
        return ItemTransition.restored
    return ItemTransition.reason_changed


def diff_items(store: Store, run_a: str, run_b: str) -> ItemDiff:
    """Every change of state of a watched item between run A and run B (same vantage point keys)."""
    a, b = store.get_run(run_a), store.get_run(run_b)
    states_a, states_b = run_item_states(store, a.run_id), run_item_states(store, b.run_id)
    changes: list[ItemChange] = []
    compared = not_reached = 0
    for key in sorted(set(states_a) | set(states_b)):
        in_a, in_b = states_a.get(key), states_b.get(key)
        if in_b is None and b.status != "complete":
            not_reached += 1
            continue
        if in_a is None and a.status != "complete" and a.run_id != b.run_id:
            not_reached += 1
            continue
        before: Observation | None = in_a[0] if in_a else None
        after = in_b[0] if in_b else None
        if after is not None and after.state != UNKNOWN and (before is None or before.state == UNKNOWN):
            # failures never erase, and an item new to this probe set may be known from earlier runs;
            # with nothing known before, B is the item's first observation
            before = _last_known_before(store, key, before.seen if before is not None else after.seen)
        if in_a and in_b:
            compared += 1
        t = classify_item_transition(before.state if before else None, after.state if after else None)
        if t is None:
            continue
        ref = in_b or in_a
        change = ItemChange(platform=key[0], url=key[1], vantage=key[2], list_name=ref[1] if ref else None,
                            category=ref[2] if ref else None, transition=t,
                            before=before.state if before else None, after=after.state if after else None,
                            measurement_id=after.measurement_id if after else None,
                            before_measurement_id=before.measurement_id if before else None,
                            signals=list(after.signals) if after else [],
                            confirmed=after.confirmed if after else None)
        if t is ItemTransition.became_unknown and before is not None:
            change.last_known = before.state
        if before is not None and after is not None and after.state != UNKNOWN:
            change.window_start, change.window_end = _window(store, key, before.state, after)
            change.window_hours = _hours(change.window_start, change.window_end)
        elif after is not None and t is ItemTransition.first_observation:
            change.window_end = after.seen
        changes.append(change)
    counts = Counter(c.transition.value for c in changes)
    return ItemDiff(run_a=a.run_id, run_b=b.run_id, probe_set=b.probe_set, changes=changes,
                    counts=dict(sorted(counts.items())), compared=compared, not_reached=not_reached)


# --------------------------------------------------------------------------- one item through time


class ItemPeriod(BaseModel):
    state: str
    first_seen: dt.datetime
    last_seen: dt.datetime
    first_run: str
    last_run: str
    runs: int = 0
    unknown_runs: int = Field(default=0, description="runs in this period where the item only failed")
    first_measurement: str
    last_measurement: str
    signals: list[str] = Field(default_factory=list, description="signals of the period's first measurement")


class ItemTrack(BaseModel):
    platform: str
    vantage: str
    periods: list[ItemPeriod] = Field(default_factory=list)
    changes: list[ItemChange] = Field(default_factory=list)
    first_state: str | None = Field(default=None, description="the state the item was first seen in")
    current: str | None = None
    last_seen: dt.datetime | None = None


class ItemTimeline(BaseModel):
    url: str
    tracks: list[ItemTrack] = Field(default_factory=list)


def item_timeline(store: Store, url: str, *, platforms: list[str] | None = None,
                  vantages: list[str] | None = None) -> ItemTimeline:
    """The periods of each state of one item per (platform, vantage), and every change with its window."""
    from ..models import normalise_item_url

    try:
        url = normalise_item_url(url)
    except ValueError:
        pass
    rows = _rows(store, "input = ?", [url])
    rows = [r for r in rows if (not platforms or r[0] in platforms) and (not vantages or r[2] in vantages)]
    if not rows:
        raise NotFoundError(f"no measurement of the item {url} in {store.path}"
                            + (" with these filters" if platforms or vantages else ""))
    by_track: dict[tuple[str, str], list[tuple]] = defaultdict(list)
    for row in rows:
        by_track[(row[0], row[2])].append(row)
    tl = ItemTimeline(url=url)
    for (platform, vantage), track_rows in sorted(by_track.items()):
        track = ItemTrack(platform=platform, vantage=vantage)
        per_run: dict[str, list[Observation]] = {}
        meta: dict[str, tuple[str | None, str | None]] = {}
        for row in track_rows:
            per_run.setdefault(row[3], []).append(_observation(row))
            meta[row[3]] = (row[7], row[8])
        cur: ItemPeriod | None = None
        for run_id, observations in per_run.items():
            known = [o for o in observations if o.state != UNKNOWN]
            if not known:
                if cur is not None:
                    cur.unknown_runs += 1
                continue
            for obs in known:  # a flip retest may show two states in one run: keep both, in order
                if cur is None or cur.state != obs.state:
                    if cur is not None:
                        t = classify_item_transition(cur.state, obs.state)
                        assert t is not None
                        track.changes.append(ItemChange(
                            platform=platform, url=url, vantage=vantage, list_name=meta[run_id][0],
                            category=meta[run_id][1], transition=t, before=cur.state, after=obs.state,
                            window_start=cur.last_seen, window_end=obs.seen, window_hours=_hours(cur.last_seen, obs.seen),
                            measurement_id=obs.measurement_id, before_measurement_id=cur.last_measurement,
                            signals=list(obs.signals), confirmed=obs.confirmed))
                    cur = ItemPeriod(state=obs.state, first_seen=obs.seen, last_seen=obs.seen, first_run=run_id,
                                     last_run=run_id, first_measurement=obs.measurement_id,
                                     last_measurement=obs.measurement_id, signals=list(obs.signals))
                    track.periods.append(cur)
                cur.last_seen, cur.last_run, cur.last_measurement = obs.seen, run_id, obs.measurement_id
            assert cur is not None
            cur.runs += 1
        if track.periods:
            first = track.periods[0]
            track.first_state = first.state
            track.current = track.periods[-1].state
            track.last_seen = track.periods[-1].last_seen
            track.changes.insert(0, ItemChange(
                platform=platform, url=url, vantage=vantage, transition=ItemTransition.first_observation,
                after=first.state, window_end=first.first_seen, measurement_id=first.first_measurement,
                signals=list(first.signals)))
        tl.tracks.append(track)
    return tl


# --------------------------------------------------------------------------- time to removal


class SurvivalPoint(BaseModel):
    hours: float
    share: float = Field(description="share of items still available this many hours after first seen")
    at_risk: int
    removed: int


class SurvivalCurve(BaseModel):
    group: str = Field(description="platform, or platform / category")
    items: int = Field(description="items first seen available")
    removed: int
    removed_by: dict[str, int] = Field(default_factory=dict, description="removals by state")
    first_seen_removed: int = Field(default=0, description="items first seen already removed (not in the curve)")
    points: list[SurvivalPoint] = Field(default_factory=list, description="the step curve: (0, 1) then one point "
                                                                          "per time at which removals were seen")
    at_hours: dict[str, float | None] = Field(default_factory=dict, description="share still available N hours "
                                                                                "after first seen (None: not followed that long)")
    median_hours: float | None = Field(default=None, description="hours until half were removed (None: not reached)")
    followed_hours: float = Field(default=0.0, description="the longest time an item was followed")


class Survival(BaseModel):
    by_platform: list[SurvivalCurve] = Field(default_factory=list)
    by_category: list[SurvivalCurve] = Field(default_factory=list)


def _item_lives(store: Store, run_ids: list[str], vantage: str | None) -> dict[Key, tuple[str, list[Observation]]]:
    """(category, known observations in time order) of every item measured in these runs."""
    if not run_ids:
        return {}
    out: dict[Key, tuple[str, list[Observation]]] = {}
    for i in range(0, len(run_ids), 500):
        chunk = run_ids[i:i + 500]
        cond = f"run_id IN ({','.join('?' * len(chunk))}) AND verdict <> 'failure'"
        args: list[object] = list(chunk)
        if vantage is not None:
            cond += " AND vantage = ?"
            args.append(vantage)
        for row in _rows(store, cond, args):
            key = (row[0], row[1], row[2])
            entry = out.setdefault(key, (row[8] or "", []))
            entry[1].append(_observation(row))
    for _, obs in out.values():
        obs.sort(key=lambda o: o.seen)
    return out


def kaplan_meier(times: list[tuple[float, bool]]) -> list[SurvivalPoint]:
    """The Kaplan-Meier step curve of (time, removed?) pairs: (0, 1.0), then one point per removal time.

    A censored time equal to a removal time counts as still at risk at that time."""
    points = [SurvivalPoint(hours=0.0, share=1.0, at_risk=len(times), removed=0)]
    share = 1.0
    for t in sorted({t for t, event in times if event}):
        at_risk = sum(1 for u, _ in times if u >= t)
        removed = sum(1 for u, event in times if event and u == t)
        if at_risk:
            share *= 1 - removed / at_risk
        points.append(SurvivalPoint(hours=round(t, 6), share=round(share, 6), at_risk=at_risk, removed=removed))
    return points


def share_at(points: list[SurvivalPoint], hours: float) -> float:
    share = 1.0
    for p in points:
        if p.hours <= hours:
            share = p.share
    return share


def _curve(group: str, lives: list[tuple[float, bool, str | None]], first_removed: int) -> SurvivalCurve:
    points = kaplan_meier([(t, e) for t, e, _ in lives])
    followed = max((t for t, _, _ in lives), default=0.0)
    median = next((p.hours for p in points if p.share <= 0.5), None)
    removed_by = Counter(state for _, e, state in lives if e and state)
    return SurvivalCurve(group=group, items=len(lives), removed=sum(removed_by.values()),
                         removed_by=dict(sorted(removed_by.items())), first_seen_removed=first_removed, points=points,
                         at_hours={str(h): (round(share_at(points, h), 6) if h <= followed else None)
                                   for h in SURVIVAL_HOURS},
                         median_hours=median, followed_hours=round(followed, 6))


def survival(store: Store, run_ids: list[str], vantage: str | None = None) -> Survival:
    """Time to removal of the items measured in these runs, per platform and per platform / category."""
    per_platform: dict[str, list[tuple[float, bool, str | None]]] = defaultdict(list)
    per_category: dict[tuple[str, str], list[tuple[float, bool, str | None]]] = defaultdict(list)
    removed_first: Counter[str] = Counter()
    removed_first_cat: Counter[tuple[str, str]] = Counter()
    for (platform, _url, _v), (category, obs) in sorted(_item_lives(store, run_ids, vantage).items()):
        if not obs:
            continue
        cat = category or "(none)"
        if obs[0].state != AVAILABLE:
            removed_first[platform] += 1
            removed_first_cat[(platform, cat)] += 1
            continue
        t0 = obs[0].seen
        gone = next((o for o in obs if o.state in REMOVED), None)
        # hours to 6 decimals (3.6 ms) before the estimate, so the curve's points are the figures shown
        if gone is not None:
            life = (round((gone.seen - t0).total_seconds() / 3600, 6), True, gone.state)
        else:
            last = [o for o in obs if o.state == AVAILABLE][-1]
            life = (round((last.seen - t0).total_seconds() / 3600, 6), False, None)
        per_platform[platform].append(life)
        per_category[(platform, cat)].append(life)
    result = Survival()
    for platform in sorted(set(per_platform) | set(removed_first)):
        result.by_platform.append(_curve(platform, per_platform.get(platform, []), removed_first[platform]))
    for key in sorted(set(per_category) | set(removed_first_cat)):
        result.by_category.append(_curve(f"{key[0]} / {key[1]}", per_category.get(key, []), removed_first_cat[key]))
    return result


def runs_with_items(store: Store, runs: list[Run]) -> list[str]:
    """The ids of those runs that measured watched items."""
    return [r.run_id for r in runs if store.conn.execute(
        "SELECT 1 FROM measurements WHERE run_id = ? AND role = 'item' LIMIT 1", (r.run_id,)).fetchone()]
