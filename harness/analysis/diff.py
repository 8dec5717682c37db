"""The comparator: which terms changed verdict between two runs, or differ across a dimension.

**State.** The state of (platform, term, vantage) in a run is its latest verdict that is not a
failure; a key that only failed in a run is ``unknown`` there. Failures never erase what is
known: a term that was censored and now only failed is ``became_unknown`` (its last known
verdict and when it was last seen stay in the change), and a term that was unknown in run A
is compared against its last known verdict before A, with that verdict's age shown.

**First observation.** A key with no known state before run B (only failures in A and before)
is ``first_observation``: never ``newly_censored``/``newly_uncensored``, never confirmed. The rule
is :func:`classify_transition`'s, for any state vocabulary (watched items use it too).

**Confirmation.** A change is confirmed when the engine's flip retest in the same run agreed
(``test_keys.confirmed``) or, failing that, when the next run of the same probe set at the
same vantage point has the same verdict. Unconfirmed changes are listed, marked as such.

**Removal before rules.** A term whose result count or number of result items falls by at
least ``drop_threshold`` (a fraction) while it is not newly censored is ``results_dropped``.

**Scale.** A run's states are read in key order from one covering index
(``measurements_by_run_key``) and merged in a single streaming pass; Pydantic objects are
built only for changes. On PostgreSQL the server first merges both runs' per-term aggregates
(a full join of two index-only scans) and sends only the terms whose state may differ, so a
million unchanged terms never cross the network. Two runs of a million measurements each diff
in a few seconds on either backend.

It is one piece on purpose: the run resolution, the one-pass comparison and the output forms share
the same state model and transition rules, and splitting them would spread one definition over
several modules.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import gc
import io
import itertools
import json
import operator
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, Field, computed_field

from ..errors import InputError, NotFoundError
from ..models import Run, is_isolation_run
from ..store.sqlite import Store, iso, parse_iso, utcnow

UNKNOWN = "unknown"
CENSORED = frozenset({"hard", "soft"})
DEFAULT_DROP_THRESHOLD = 0.5


class Transition(str, Enum):
    newly_censored = "newly_censored"
    newly_uncensored = "newly_uncensored"
    hard_to_soft = "hard_to_soft"
    soft_to_hard = "soft_to_hard"
    became_unknown = "became_unknown"
    first_observation = "first_observation"
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
    status_a: str = "complete"
    status_b: str = "complete"
    not_reached: int = Field(default=0, description="keys measured in one run that the other, unfinished run "
                                                    "never reached: not reported as new_term or dropped_term")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def notes(self) -> list[str]:
        """What a reader must know before trusting the changes (an unfinished run)."""
        out = []
        for side, run_id, status in (("A", self.run_a, self.status_a), ("B", self.run_b, self.status_b)):
            if status != "complete":
                out.append(f"run {side} ({run_id}) is {status}, not complete: {self.not_reached} terms it (or the other "
                           f"run) did not reach are left out, not reported as new or dropped")
        return out


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
    """The state of one key in one run (built only for changes)."""

    verdict: str  # a verdict value, or UNKNOWN when the key only failed
    seen: str  # ISO time of the measurement the state rests on
    result_count: int | None
    result_items: int | None
    rowid: int


# Verdicts travel through the hot loop as small integers (no string per row); 0 = only failures.
VERDICT_CODES = {"not_censored": 1, "no_results": 2, "hard": 3, "soft": 4}
CODE_NAMES = [UNKNOWN, "not_censored", "no_results", "hard", "soft"]
_VERDICT_CASE = ("CASE verdict WHEN 'not_censored' THEN 1 WHEN 'no_results' THEN 2 WHEN 'hard' THEN 3"
                 " WHEN 'soft' THEN 4 ELSE 0 END")

Row = tuple  # (term, verdict code, result_count, result_items, rowid): one key's state in one run


def run_groups(store: Store, run_id: str, filters: Filters = Filters()) -> list[tuple[str, str]]:
    """The (platform, vantage) pairs a run measured, sorted: one index seek per pair, not a scan."""
    groups: list[tuple[str, str]] = []
    last: tuple[str, str] | None = None
    head = "SELECT platform, vantage FROM measurements INDEXED BY measurements_by_run_key WHERE run_id = ?"
    while True:
        if last is None:
            row = store.conn.execute(head + " ORDER BY platform, vantage LIMIT 1", (run_id,)).fetchone()
        else:  # two plain range seeks (a row-value comparison would scan the whole group)
            row = store.conn.execute(head + " AND platform = ? AND vantage > ? ORDER BY vantage LIMIT 1",
                                     (run_id, *last)).fetchone() or store.conn.execute(
                head + " AND platform > ? ORDER BY platform, vantage LIMIT 1", (run_id, last[0])).fetchone()
        if row is None:
            break
        last = (row[0], row[1])
        if not filters.platforms or last[0] in filters.platforms:
            groups.append(last)
    # a group may hold only truism and control measurements
    return [g for g in groups if store.conn.execute(
        "SELECT 1 FROM measurements INDEXED BY measurements_by_run_key WHERE run_id=? AND platform=? AND vantage=?"
        " AND role='probe' LIMIT 1", (run_id, *g)).fetchone()]


def iter_group(store: Store, run_id: str, platform: str, vantage: str, filters: Filters = Filters(), *,
               rowid: bool = True) -> Iterator[Row]:
    """Each term's state in one (run, platform, vantage), in term order, streamed from a covering index.

    Rows come ordered by (term, time), so a term's state is its last row that is not a
    failure, or its last row when it only failed. ``rowid=False``: rows without their rowid
    (one column less per row; the two-run comparison reads only its changes again).
    """
    where, args = Filters((), filters.lists, filters.categories, filters.tags).sql()
    cur = store.scan(  # plain tuples, streamed: no row object per measurement
        f"SELECT input, {_VERDICT_CASE}, result_count, result_items{', rowid' if rowid else ''}"
        f" FROM measurements INDEXED BY measurements_by_run_key"
        f" WHERE run_id = ? AND platform = ? AND vantage = ? AND role = 'probe'{where}"
        f" ORDER BY input, measurement_start_time",
        [run_id, platform, vantage, *args],
    )
    prev = None
    best: Row | None = None
    for row in cur:
        if row[0] != prev:
            if best is not None:
                yield best
            prev, best = row[0], row
        elif row[1] or not best[1]:  # type: ignore[index]
            best = row
    if best is not None:
        yield best


_STATE_SQL = (f"SELECT input, {_VERDICT_CASE}, result_count, result_items"
              " FROM measurements INDEXED BY measurements_by_run_key"
              " WHERE run_id = ? AND platform = ? AND vantage = ? AND role = 'probe'")
_ORDER = " ORDER BY input, measurement_start_time"
CANDIDATES = 50_000
"""PostgreSQL: above this many candidate terms in a group, stream the group's rows instead."""
_TERM = operator.itemgetter(0)
_STATE = operator.itemgetter(1, 2, 3)  # verdict code, result count, result items


def _rows_of_terms(store: Store, run_id: str, platform: str, vantage: str, filters: Filters,
                   terms: Sequence[str]) -> list[Row]:
    """The rows of a few ``terms`` in one (run, platform, vantage), in (term, time) order."""
    where, args = Filters((), filters.lists, filters.categories, filters.tags).sql()
    cur = store.conn.execute(_STATE_SQL + where + f" AND input IN ({','.join('?' * len(terms))})" + _ORDER,
                             [run_id, platform, vantage, *args, *terms])
    cur.row_factory = None
    return cur.fetchall()


def _one_per_term(rows: list[Row]) -> list[Row]:
    """Each term's state row: its last row that is not a failure, else its last row (rows in (term, time) order)."""
    if len(set(map(_TERM, rows))) == len(rows):  # one row per term (the common case): nothing to do
        return rows
    out: list[Row] = []
    for row in rows:
        if out and out[-1][0] == row[0]:
            if row[1] or not out[-1][1]:
                out[-1] = row
        else:
            out.append(row)
    return out


def _merged_candidates(store: Store, run_a: str | None, run_b: str | None, platform: str, vantage: str,
                       filters: Filters, threshold: float | None) -> tuple[list[str], int]:
    """The terms of one group whose state may differ, by one merge of both runs' row streams (in
    term order), and how many terms both runs hold.

    A superset, decided again on the terms' full rows: a term with one row in each run is a
    candidate when its verdict differs or its counts fell; a term with several rows in a run
    always is. Written out for speed: this loop runs once per row, on the driver's tuples."""
    where, args = Filters((), filters.lists, filters.categories, filters.tags).sql()
    sql = _STATE_SQL + where + _ORDER
    it_a = iter(store.scan(sql, [run_a, platform, vantage, *args])) if run_a is not None else iter(())
    it_b = iter(store.scan(sql, [run_b, platform, vantage, *args])) if run_b is not None else iter(())
    out: list[str] = []
    compared = 0
    ra, rb = next(it_a, None), next(it_b, None)
    while ra is not None and rb is not None:
        term = ra[0]
        if term == rb[0]:
            compared += 1
            na, nb = next(it_a, None), next(it_b, None)
            if (na is not None and na[0] == term) or (nb is not None and nb[0] == term):
                out.append(term)
                while na is not None and na[0] == term:
                    na = next(it_a, None)
                while nb is not None and nb[0] == term:
                    nb = next(it_b, None)
            elif ra[1] != rb[1] or (ra[1] and ra[1] < 3 and threshold is not None
                                    and (ra[2] != rb[2] or ra[3] != rb[3]) and _fell(ra, rb, threshold)):
                out.append(term)
            ra, rb = na, nb
        elif term < rb[0]:
            out.append(term)
            while ra is not None and ra[0] == term:
                ra = next(it_a, None)
        else:
            term = rb[0]
            out.append(term)
            while rb is not None and rb[0] == term:
                rb = next(it_b, None)
    for row, rest in ((ra, it_a), (rb, it_b)):
        while row is not None:
            if not out or out[-1] != row[0]:
                out.append(row[0])
            row = next(rest, None)
    out.sort()  # the two tails interleave
    return out, compared


def _changed_pairs(rows_a: list[Row], rows_b: list[Row], threshold: float | None
                   ) -> tuple[list[tuple[Row | None, Row | None]], int]:
    """The state rows that differ between two term-ordered lists of one row per term (a term in one
    list only: ``None`` on the other side), and how many terms both hold.

    Most terms are in both lists with the same state: the lists are cut down to their common terms
    and their (verdict, count, items) compared pairwise with C-level iterators only, so no Python
    code runs for an unchanged term.
    """
    keys_a, keys_b = list(map(_TERM, rows_a)), list(map(_TERM, rows_b))
    out: list[tuple[Row | None, Row | None]] = []
    if keys_a != keys_b:
        common = set(keys_a).intersection(keys_b)
        out.extend((ra, None) for ra in rows_a if ra[0] not in common)
        out.extend((None, rb) for rb in rows_b if rb[0] not in common)
        if len(common) < len(rows_a):
            rows_a = list(itertools.compress(rows_a, map(common.__contains__, keys_a)))
        if len(common) < len(rows_b):
            rows_b = list(itertools.compress(rows_b, map(common.__contains__, keys_b)))
    differ = itertools.compress(zip(rows_a, rows_b), map(operator.ne, map(_STATE, rows_a), map(_STATE, rows_b)))
    out.extend((ra, rb) for ra, rb in differ
               if ra[1] != rb[1] or (ra[1] and ra[1] < 3 and threshold is not None and _fell(ra, rb, threshold)))
    if keys_a != keys_b:
        out.sort(key=lambda pair: (pair[0] or pair[1])[0])  # type: ignore[index]
    return out, len(rows_a)


def _pg_candidates(store: Store, run_a: str, run_b: str, platform: str, vantage: str, filters: Filters,
                   threshold: float | None) -> tuple[list[str], int]:
    """PostgreSQL: the terms of one group whose state may differ, found by the server (a merge of
    both runs' per-term aggregates), and how many terms both runs hold. Only these terms' rows
    travel; :func:`_changed_pairs` decides on them. A superset: a term with one row in each run
    and the same verdict is left out only when its counts cannot have fallen by the threshold."""
    where, args = Filters((), filters.lists, filters.categories, filters.tags).sql()
    side = (f"SELECT input, count(*) AS n, max({_VERDICT_CASE}) AS c, max(result_count) AS rc,"
            f" max(result_items) AS ri FROM measurements WHERE run_id = ? AND platform = ? AND vantage = ?"
            f" AND role = 'probe'{where} GROUP BY input")
    cond = "a.n IS NULL OR b.n IS NULL OR a.n <> 1 OR b.n <> 1 OR a.c <> b.c"
    if threshold is not None:
        at = repr(float(threshold) - 1e-9)  # looser than the exact test: never misses a fall
        fell = [f"(a.{x} <> 0 AND ((b.{x} IS NULL AND b.c = 2) OR 1.0::float8 - b.{x}::float8 / a.{x} >= {at}))"
                for x in ("rc", "ri")]
        cond += f" OR (a.c IN (1, 2) AND ({fell[0]} OR {fell[1]}))"
    sql = (f"SELECT count(*) FILTER (WHERE a.n IS NOT NULL AND b.n IS NOT NULL),"
           f" array_agg(coalesce(a.input, b.input)) FILTER (WHERE {cond})"
           f" FROM ({side}) a FULL JOIN ({side}) b ON a.input = b.input")
    # both sides come out of the index sorted by term: a merge join (no hash table) is about 30 % faster
    store.conn.execute("SET enable_hashjoin = off")
    try:
        both, terms = store.conn.execute(sql, [run_a, platform, vantage, *args, run_b, platform, vantage, *args]
                                         ).fetchone()
    finally:
        store.conn.execute("RESET enable_hashjoin")
    return sorted(terms or []), both


_Info = dict[int, tuple[str, "str | None", "str | None", Any, str]]


def _rows_with_info(store: Store, run_a: str | None, run_b: str | None, platform: str, vantage: str,
                    filters: Filters, terms: list[str]) -> tuple[list[Row], list[Row], _Info]:
    """Both runs' state rows of a few ``terms`` (one row per term, with its rowid), and what a
    change shows of each row read (rowid → measurement id, list, category, confirmed, time)."""
    where, args = Filters((), filters.lists, filters.categories, filters.tags).sql()
    head = (f"SELECT run_id, input, {_VERDICT_CASE}, result_count, result_items, rowid, measurement_id, list_name,"
            f" category, json_extract(doc, '$.test_keys.confirmed'), measurement_start_time"
            f" FROM measurements INDEXED BY measurements_by_run_key"  # not by term: a term has a row in every run
            f" WHERE run_id IN (?, ?) AND platform = ? AND vantage = ? AND role = 'probe'{where}")
    runs = [run_a or run_b, run_b or run_a]
    if store.backend == "postgresql":  # one query, the terms as one array
        queries = [(head + " AND input = ANY(?) ORDER BY input, measurement_start_time",
                    [*runs, platform, vantage, *args, terms])]
    else:
        queries = [(head + f" AND input IN ({','.join('?' * len(chunk))}) ORDER BY input, measurement_start_time",
                    [*runs, platform, vantage, *args, *chunk]) for chunk in (terms[i:i + 500]
                                                                            for i in range(0, len(terms), 500))]
    rows_a: list[Row] = []
    rows_b: list[Row] = []
    info: _Info = {}
    for sql, params in queries:
        cur = store.conn.execute(sql, params)
        cur.row_factory = None
        for run_id, term, code, count, items, rowid, mid, lname, cat, conf, ts in cur:
            (rows_a if run_id == run_a else rows_b).append((term, code, count, items, rowid))
            info[rowid] = (mid, lname, cat, conf, ts if isinstance(ts, str) else iso(ts))
    return _one_per_term(rows_a), _one_per_term(rows_b), info


def _group_changes(store: Store, run_a: str | None, run_b: str | None, platform: str, vantage: str,
                   filters: Filters, threshold: float | None
                   ) -> tuple[list[tuple[Row | None, Row | None]], int, _Info]:
    """One group's differing state rows, how many terms both runs hold, and the rows read (rowid →
    what a change shows of it).

    The comparison runs on (term, verdict, counts) only: on PostgreSQL in the server, which sends
    the candidate terms; on SQLite as a merge of both runs' streams. Only the terms found are read
    again in full, and compared again on those rows."""
    terms: list[str] | None = None
    both = 0
    if store.backend == "postgresql" and run_a is not None and run_b is not None:
        terms, both = _pg_candidates(store, run_a, run_b, platform, vantage, filters, threshold)
        if len(terms) > CANDIDATES:
            terms = None
    if terms is None:
        terms, both = _merged_candidates(store, run_a, run_b, platform, vantage, filters, threshold)
    if not terms:
        return [], both, {}
    rows_a, rows_b, info = _rows_with_info(store, run_a, run_b, platform, vantage, filters, terms)
    return _changed_pairs(rows_a, rows_b, threshold)[0], both, info


def _fell(ra: Row, rb: Row, threshold: float) -> bool:
    """Did result count or result items fall by at least ``threshold`` from row A to row B?"""
    for i in (2, 3):
        before = ra[i]
        if before:
            after = rb[i]
            if after is None:
                if rb[1] != VERDICT_CODES["no_results"]:
                    continue
                after = 0
            if 1.0 - after / before >= threshold - 1e-12:
                return True
    return False


def _merge(a: Iterator[Row], b: Iterator[Row]) -> Iterator[tuple[Row | None, Row | None]]:
    """Full outer merge of two term-ordered row streams."""
    ra = next(a, None)
    rb = next(b, None)
    while ra is not None or rb is not None:
        if rb is None or (ra is not None and ra[0] < rb[0]):
            yield ra, None
            ra = next(a, None)
        elif ra is None or rb[0] < ra[0]:
            yield None, rb
            rb = next(b, None)
        else:
            yield ra, rb
            ra = next(a, None)
            rb = next(b, None)


def classify_transition(before: str | None, after: str | None,
                        censored: frozenset[str] = CENSORED) -> Transition | None:
    """From ``before`` (run A, or last known before A) to ``after`` (run B). ``None``: absent from
    that run; :data:`UNKNOWN`: no known state. A change needs a known state on both sides."""
    if before is None:
        return Transition.new_term if after is not None else None
    if after is None:
        return Transition.dropped_term
    if before == after:
        return None
    if after == UNKNOWN:
        return Transition.became_unknown
    if before == UNKNOWN:
        return Transition.first_observation
    if before in censored and after in censored:
        return Transition.hard_to_soft if before == "hard" else Transition.soft_to_hard
    if after in censored:
        return Transition.newly_censored
    if before in censored:
        return Transition.newly_uncensored
    return None


CHANGES = frozenset({Transition.newly_censored, Transition.newly_uncensored, Transition.hard_to_soft,
                     Transition.soft_to_hard, Transition.results_dropped})
"""Transitions that change a known state (both sides observed)."""


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


def _last_known_before(conn: Any, platform: str, term: str, vantage: str, before: str
                       ) -> tuple[str, str, int] | None:
    row = conn.execute(
        "SELECT verdict, measurement_start_time, rowid FROM measurements INDEXED BY measurements_by_input"
        " WHERE input=? AND platform=? AND vantage=? AND measurement_start_time < ? AND role='probe'"
        " AND verdict <> 'failure' ORDER BY measurement_start_time DESC LIMIT 1",
        (term, platform, vantage, before),
    ).fetchone()
    return (row[0], row[1], row[2]) if row else None


def _rows_by_rowid(conn: Any, rowids: list[int], *, confirmed: bool = True
                   ) -> dict[int, tuple[str, str | None, str | None, Any, str]]:
    """rowid → (measurement_id, list_name, category, test_keys.confirmed, measurement_start_time).

    ``confirmed=False``: not read (``None``), which spares parsing each row's document."""
    out: dict[int, tuple[str, str | None, str | None, Any, str]] = {}
    conf = "json_extract(doc, '$.test_keys.confirmed')" if confirmed else "NULL"
    for i in range(0, len(rowids), 500):
        chunk = rowids[i:i + 500]
        for rid, mid, lname, cat, conf_value, ts in conn.execute(
            f"SELECT rowid, measurement_id, list_name, category, {conf},"
            f" measurement_start_time FROM measurements WHERE rowid IN ({','.join('?' * len(chunk))})", chunk,
        ):
            out[rid] = (mid, lname, cat, conf_value, ts)
    return out


def _state(row: Row, info: dict[int, tuple[str, str | None, str | None, Any, str]]) -> _State:
    return _State(CODE_NAMES[row[1]], info[row[4]][4], row[2], row[3], row[4])


def next_run(store: Store, run: Run) -> Run | None:
    row = store.conn.execute(
        "SELECT run_id FROM runs WHERE probe_set=? AND vantage=? AND (started_at > ? OR (started_at = ? AND run_id > ?))"
        " ORDER BY started_at, run_id LIMIT 1",
        (run.probe_set, run.vantage, iso(run.started_at), iso(run.started_at), run.run_id),
    ).fetchone()
    return store.get_run(row[0]) if row else None


def _states_for_keys(store: Store, run_id: str, keys: set[tuple[str, str, str]]) -> dict[tuple[str, str, str], str]:
    """The verdict (or UNKNOWN) of only ``keys`` in ``run_id``: index seeks, 500 terms per query."""
    by_group: dict[tuple[str, str], list[str]] = {}
    for platform, term, vantage in keys:
        by_group.setdefault((platform, vantage), []).append(term)
    out: dict[tuple[str, str, str], str] = {}
    for (platform, vantage), terms in sorted(by_group.items()):
        terms.sort()
        for i in range(0, len(terms), 500):
            for row in _one_per_term(_rows_of_terms(store, run_id, platform, vantage, Filters(), terms[i:i + 500])):
                out[(platform, row[0], vantage)] = CODE_NAMES[row[1]]
    return out


def _age_days(seen: str | None, at: dt.datetime) -> float | None:
    if not seen:
        return None
    return round((at - parse_iso(seen)).total_seconds() / 86400, 3)


_NO_CONFIRMATION = frozenset({Transition.results_dropped, Transition.first_observation})


def diff_runs(store: Store, run_a: str, run_b: str, *, filters: Filters = Filters(),
              drop_threshold: float | None = DEFAULT_DROP_THRESHOLD, confirm: bool = True) -> DiffResult:
    """Every change of state between run A and run B (same vantage point keys).

    Runs with the cyclic garbage collector paused: millions of short-lived row tuples, no cycles,
    and a collection pass over them costs about a tenth of the comparison."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _diff_runs(store, run_a, run_b, filters=filters, drop_threshold=drop_threshold, confirm=confirm)
    finally:
        if enabled:
            gc.enable()


def _diff_runs(store: Store, run_a: str, run_b: str, *, filters: Filters = Filters(),
               drop_threshold: float | None = DEFAULT_DROP_THRESHOLD, confirm: bool = True) -> DiffResult:
    """Every change of state between run A and run B (same vantage point keys)."""
    if drop_threshold is not None and not 0 < drop_threshold <= 1:
        raise InputError(f"drop threshold must be a fraction in (0, 1], not {drop_threshold}")
    a, b = store.get_run(run_a), store.get_run(run_b)
    conn = store.conn
    raw: list[tuple[tuple[str, str, str], Row | None, Row | None]] = []
    compared = 0
    # An unfinished run has not measured every term: a key it lacks is "not reached", not dropped or new.
    a_done, b_done = a.status == "complete", b.status == "complete"
    groups_a, groups_b = run_groups(store, a.run_id, filters), run_groups(store, b.run_id, filters)
    prefetched: _Info = {}
    for platform, vantage in sorted(set(groups_a) | set(groups_b)):
        pairs, both, read = _group_changes(store, a.run_id if (platform, vantage) in groups_a else None,
                                           b.run_id if (platform, vantage) in groups_b else None,
                                           platform, vantage, filters, drop_threshold)
        compared += both
        prefetched.update(read)
        raw.extend(((platform, (ra or rb)[0], vantage), ra, rb) for ra, rb in pairs)  # type: ignore[index]

    not_reached = 0
    if not (a_done and b_done):
        kept = [(key, ra, rb) for key, ra, rb in raw
                if not ((rb is None and not b_done) or (ra is None and not a_done))]
        not_reached = len(raw) - len(kept)
        raw = kept
    # the retest's confirmation is read for run B's rows only
    info = {rid: prefetched[rid] for _, ra, rb in raw for r in (ra, rb) if r is not None and (rid := r[4]) in prefetched}
    info.update(_rows_by_rowid(conn, [ra[4] for _, ra, _ in raw if ra is not None and ra[4] not in info],
                               confirmed=False))
    info.update(_rows_by_rowid(conn, [rb[4] for _, _, rb in raw if rb is not None and rb[4] not in info]))
    pending: list[tuple[tuple[str, str, str], Transition, _State | None, _State | None, float | None]] = []
    for key, ra, rb in raw:
        sa = _state(ra, info) if ra is not None else None
        sb = _state(rb, info) if rb is not None else None
        if sa is not None and sb is not None and sa.verdict == UNKNOWN and sb.verdict != UNKNOWN:
            # failures never erase: compare against the last verdict known before A
            known = _last_known_before(conn, key[0], key[1], key[2], sa.seen)
            if known is not None:
                sa = _State(known[0], known[1], None, None, known[2])
        t = classify_transition(sa.verdict if sa else None, sb.verdict if sb else None)
        drop = None
        if sa is not None and sb is not None and drop_threshold is not None and (t is None or t is Transition.newly_uncensored):
            drop = results_drop(sa, sb)
            if drop is not None and drop >= drop_threshold - 1e-12 and sb.verdict not in CENSORED:
                t = Transition.results_dropped if t is None else t
            else:
                drop = None
        if t is not None:
            pending.append((key, t, sa, sb, drop))
    missing = [s.rowid for _, _, sa, sb, _ in pending for s in (sa, sb) if s is not None and s.rowid not in info]
    info.update(_rows_by_rowid(conn, missing, confirmed=False))

    # confirmation by the next run, for changes the retest did not confirm
    later = next_run(store, b) if confirm else None
    need = {key for key, t, sa, sb, _ in pending
            if sb is not None and sb.verdict != UNKNOWN and t not in _NO_CONFIRMATION
            and info[sb.rowid][3] not in (1, True)}
    next_states = _states_for_keys(store, later.run_id, need) if later is not None and need else {}

    changes: list[Change] = []
    for key, t, sa, sb, drop in pending:
        ia = info.get(sa.rowid) if sa else None
        ib = info.get(sb.rowid) if sb else None
        ref = ib or ia
        confirmed: bool | None = None
        confirmed_by = None
        if sb is not None and sb.verdict != UNKNOWN and t not in _NO_CONFIRMATION:
            retest = ib[3] if ib else None
            if retest in (1, True):
                confirmed, confirmed_by = True, "retest"
            else:
                nxt = next_states.get(key)
                if nxt is not None and nxt != UNKNOWN:
                    confirmed = nxt == sb.verdict
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
                      filters=filters.as_dict(), changes=changes, counts=dict(sorted(counts.items())), compared=compared,
                      status_a=a.status, status_b=b.status, not_reached=not_reached)


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
    groups_a, groups_b = run_groups(store, a.run_id, filters), run_groups(store, b.run_id, filters)
    pairs: list[tuple[tuple[str, str] | None, tuple[str, str] | None]] = []
    if by == "platform":
        if not side_a or not side_b:
            raise InputError("--by platform needs two platforms (e.g. --platform douyin --platform toutiao)")
        filters = Filters((), filters.lists, filters.categories, filters.tags)
        groups_a, groups_b = run_groups(store, a.run_id), run_groups(store, b.run_id)
        label_a, label_b = side_a, side_b
        for v in sorted({v for p, v in groups_a if p == side_a} | {v for p, v in groups_b if p == side_b}):
            pairs.append(((side_a, v) if (side_a, v) in groups_a else None, (side_b, v) if (side_b, v) in groups_b else None))
    else:
        label_a, label_b = side_a or a.vantage, side_b or b.vantage
        if a.run_id == b.run_id and label_a == label_b:
            raise InputError("--by vantage compares two vantage points: give two runs from different vantage points")
        for p in sorted({p for p, v in groups_a if v == label_a} | {p for p, v in groups_b if v == label_b}):
            pairs.append(((p, label_a) if (p, label_a) in groups_a else None, (p, label_b) if (p, label_b) in groups_b else None))
    raw: list[tuple[tuple[str, str, str], Difference, Row | None, Row | None]] = []
    compared = 0
    for ga, gb in pairs:
        it_a = iter_group(store, a.run_id, *ga, filters) if ga else iter(())
        it_b = iter_group(store, b.run_id, *gb, filters) if gb else iter(())
        for ra, rb in _merge(it_a, it_b):
            if ra is not None and rb is not None:
                compared += 1
                if ra[1] == rb[1]:
                    continue
            d = _difference(CODE_NAMES[ra[1]] if ra else None, CODE_NAMES[rb[1]] if rb else None)
            if d is not None:
                g = ga or gb
                assert g is not None
                raw.append(((g[0], (ra or rb)[0], g[1]), d, ra, rb))  # type: ignore[index]
    info = _rows_by_rowid(store.conn, [r[4] for _, _, ra, rb in raw for r in (ra, rb) if r is not None])
    pending = [(k, d, _state(ra, info) if ra else None, _state(rb, info) if rb else None) for k, d, ra, rb in raw]
    rows: list[CrossRow] = []
    for k, d, sa, sb in pending:
        ia = info.get(sa.rowid) if sa else None
        ib = info.get(sb.rowid) if sb else None
        ref = ia or ib
        if by == "platform":
            term, platform, vantage = k[1], None, k[2]
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
    include_unfinished: bool = False  # relative references (latest, dates, ages) skip running/interrupted runs


def _runs_in_scope(store: Store, scope: RunScope, vantage: str | None) -> list[Run]:
    runs = store.list_runs(scope.probe_set)
    if scope.probe_set is None:  # isolation runs hold isolation queries, never a probe set's verdicts
        runs = [r for r in runs if not is_isolation_run(r.probe_set)]
    if not scope.include_unfinished:
        runs = [r for r in runs if r.status == "complete"]
    want = vantage if vantage is not None else scope.vantage
    if want is not None:
        runs = [r for r in runs if r.vantage == want]
    if scope.exclude_vantage is not None:
        runs = [r for r in runs if r.vantage != scope.exclude_vantage]
    return runs


def _unfinished_hint(store: Store, scope: RunScope, vantage: str | None, exclude: str | None = None) -> str:
    if scope.include_unfinished:
        return ""
    wide = dataclasses.replace(scope, include_unfinished=True)
    unfinished = [r for r in _runs_in_scope(store, wide, vantage) if r.status != "complete" and r.run_id != exclude]
    if not unfinished:
        return ""
    r = unfinished[0]
    return (f" ({len(unfinished)} unfinished run(s) left out, the latest {r.run_id}, {r.status}; "
            f"name a run by its id to compare it anyway)")


def resolve_run(store: Store, ref: str, probe_set: str | None = None, *, scope: RunScope | None = None) -> Run:
    """Resolve a run reference.

    ``latest``, ``latest~N`` (N runs before the latest); a date ``2026-11-01`` (the latest run
    that started on or before that day, UTC); an age ``7d``/``12h``/``2w`` (the latest run that
    started at least that long before ``scope.now``); any of these with ``@VANTAGE`` to pick
    only runs from that vantage point; or a run id or unique prefix. The relative forms count
    complete runs only (a running or interrupted run has not measured every term); a run id
    names any run.
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
            raise NotFoundError(f"there is no complete run {ref!r}{where}{_unfinished_hint(store, scope, vantage)}")
        return runs[n]
    if _DATE.match(base):
        try:
            day = dt.date.fromisoformat(base)
        except ValueError:
            raise InputError(f"{ref!r} is not a valid date (YYYY-MM-DD)") from None
        cutoff = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.timezone.utc)
        # counted back from scope.now too: as diff's A, a date never names a run later than B
        runs = [r for r in _runs_in_scope(store, scope, vantage) if r.started_at < cutoff and r.started_at <= scope.now]
        if not runs:
            raise NotFoundError(f"no complete run started on or before {base}{where}"
                                f"{_unfinished_hint(store, scope, vantage)}")
        return runs[0]
    m = _AGO.match(base)
    if m:
        unit = {"d": dt.timedelta(days=1), "h": dt.timedelta(hours=1), "w": dt.timedelta(weeks=1)}[m.group(2)]
        cutoff = scope.now - int(m.group(1)) * unit
        runs = [r for r in _runs_in_scope(store, scope, vantage) if r.started_at <= cutoff]
        if not runs:
            raise NotFoundError(f"no complete run started {base} or more before {iso(scope.now)[:19]}Z{where}"
                                f"{_unfinished_hint(store, scope, vantage)}")
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
            run_a = resolve_run(store, a, scope=scope)
        else:
            run_a = resolve_run(store, a)
        if run_a.run_id == run_b.run_id:
            raise InputError(f"{a!r} and {b or 'latest'!r} both name run {run_b.run_id}: nothing to compare "
                             f"(a date or an age names the latest complete run started by then)")
        return run_a, run_b
    earlier = [r for r in _runs_in_scope(store, scope, None)
               if r.run_id != run_b.run_id and (across_vantage or r.started_at <= run_b.started_at)]
    if not earlier:
        if across_vantage:
            raise NotFoundError(f"probe set {run_b.probe_set!r} has no run at a vantage point other than "
                                f"{run_b.vantage!r}; nothing to compare run {run_b.run_id} with")
        raise NotFoundError(f"probe set {run_b.probe_set!r} has only one complete run (at vantage {run_b.vantage!r});"
                            f" nothing to compare it with{_unfinished_hint(store, scope, None, exclude=run_b.run_id)}")
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


NOT_CONFIRMABLE = frozenset({Transition.became_unknown, Transition.dropped_term, Transition.first_observation})


def _confirmed_text(c: Change) -> str:
    if c.transition in NOT_CONFIRMABLE:
        return "–"
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
    out.extend(f"> **Note:** {md_escape(note)}\n" for note in result.notes)
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
