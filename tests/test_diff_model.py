"""The two-run comparator against a naive model of its rules, on random stores, on both backends.

The comparator merges two streams of per-term states and, on PostgreSQL, lets the server pick
the candidate terms (``CANDIDATES`` at most per group, else it streams); both are shortcuts.
Here random pairs of runs (terms with several rows, failures, counts that fall or not, terms in
one run only, odd Unicode) are diffed, and every change must be the one the written rules give,
computed the slow and obvious way: a term's state is its last answer that is not a failure.
"""

from __future__ import annotations

import datetime as dt
import gc
import random

import pytest

from harness.analysis import diff as diff_mod
from harness.analysis.diff import CENSORED, UNKNOWN, Filters, classify_transition, diff_runs
from harness.models import Measurement, Run, Verdict
from harness.models import TestKeys as Keys  # not a test class
from harness.store import Store

TERMS = ["六四", "六四事件", "六", "a", "A", "ab", "é", "e\u0301", "😀", "z", "刘晓波", "Z9", "天安门", "法轮功", "藏"]
PLATFORMS = ["baidu", "weibo"]
VERDICTS = ["not_censored", "not_censored", "hard", "soft", "no_results", "failure"]
T0 = dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)


def _rows_for(rng: random.Random) -> list[tuple[str, int | None, int | None]]:
    """One to three answers for a term in a run: (verdict, result_count, result_items)."""
    out = []
    for _ in range(rng.choice([1, 1, 1, 2, 3, 4])):
        verdict = rng.choice(VERDICTS)
        count = rng.choice([None, 0, 5, 9, 10, 100, 51, 49, 1000]) if verdict in ("not_censored", "no_results") else None
        items = rng.choice([None, 0, 4, 5, 10]) if verdict in ("not_censored", "no_results") else None
        out.append((verdict, count, items))
    return out


def _world(rng: random.Random) -> dict[str, dict[tuple[str, str], list[tuple[str, int | None, int | None]]]]:
    a: dict[tuple[str, str], list] = {}
    b: dict[tuple[str, str], list] = {}
    for platform in PLATFORMS:
        for term in TERMS:
            where = rng.random()
            if where < 0.85:
                a[(platform, term)] = _rows_for(rng)
            if where > 0.1:
                b[(platform, term)] = list(a[(platform, term)]) if (platform, term) in a and rng.random() < 0.5 \
                    else _rows_for(rng)
    return {"A": a, "B": b}


def _store_run(store: Store, run_id: str, start: dt.datetime, rows: dict, vantage: str) -> None:
    """A complete run; each pair of runs has its own vantage, so no key has history before run A."""
    store.create_run(Run(run_id=run_id, probe_set="model", started_at=start, status="complete", vantage=vantage))
    batch = []
    for i, ((platform, term), answers) in enumerate(sorted(rows.items())):
        for j, (verdict, count, items) in enumerate(answers):
            batch.append((Measurement(
                measurement_id=f"{run_id}-{i}-{j}", run_id=run_id, probe_set="model",
                task_key=f"{platform}|{term}|{j}", measurement_start_time=start + dt.timedelta(seconds=i * 10 + j),
                platform=platform, input=term, query=term, vantage=vantage, verdict=Verdict(verdict),
                list_name=_list_of(term), tags=["odd"] if TERMS.index(term) % 3 == 0 else [],
                failure="timeout" if verdict == "failure" else None,
                test_keys=Keys(result_count=count, result_items=items)), None, ()))
    store.add_measurements(batch)


def _list_of(term: str) -> str:
    return "L1" if TERMS.index(term) % 2 else "L2"


def _state(answers):
    known = [a for a in answers if a[0] != "failure"]
    return known[-1] if known else (UNKNOWN, None, None)


def _expected(world, threshold, keep=lambda term: True):
    out = {}
    compared = 0
    for key in {k for k in set(world["A"]) | set(world["B"]) if keep(k[1])}:
        sa = _state(world["A"][key]) if key in world["A"] else None
        sb = _state(world["B"][key]) if key in world["B"] else None
        compared += sa is not None and sb is not None
        t = classify_transition(sa[0] if sa else None, sb[0] if sb else None)
        if sa and sb and threshold is not None and sa[0] != UNKNOWN and sb[0] != UNKNOWN \
                and (t is None or t.value == "newly_uncensored") and sb[0] not in CENSORED:
            falls = []
            for before, after in ((sa[1], sb[1]), (sa[2], sb[2])):
                if before is None or before <= 0:
                    continue
                if after is None:
                    if sb[0] != "no_results":
                        continue
                    after = 0
                falls.append(1 - after / before)
            if falls and max(falls) >= threshold - 1e-12 and t is None:
                t = diff_mod.Transition.results_dropped
        if t is not None:
            out[(key[0], key[1])] = (t.value, sa[0] if sa else None, sb[0] if sb else None)
    return out, compared


@pytest.mark.parametrize("candidates", [2, 50_000])
def test_random_run_pairs_match_the_written_rules(store_target, monkeypatch, candidates):
    monkeypatch.setattr(diff_mod, "CANDIDATES", candidates)  # PostgreSQL: a group above it is streamed
    rng = random.Random(f"model-{candidates}")
    with Store(store_target) as store:
        worlds = []
        for n in range(12):
            world = _world(rng)
            start = T0 + dt.timedelta(days=2 * n)
            _store_run(store, f"m{n}-a", start, world["A"], f"v{n}")
            _store_run(store, f"m{n}-b", start + dt.timedelta(days=1), world["B"], f"v{n}")
            worlds.append(world)
        seen_kinds: set[str] = set()
        for n, world in enumerate(worlds):
            for threshold in (0.5, None, 1.0):
                result = diff_runs(store, f"m{n}-a", f"m{n}-b", drop_threshold=threshold, confirm=False)
                got = {(c.platform, c.term): (c.transition.value, c.before, c.after) for c in result.changes}
                want, compared = _expected(world, threshold)
                assert got == want, (n, threshold)
                assert result.compared == compared
                assert gc.isenabled()  # paused during the comparison only
                seen_kinds |= {v[0] for v in got.values()}
        # the filters of `harness diff --list/--tag` apply on both backends' paths
        for n, world in enumerate(worlds[:4]):
            for filters, keep in ((Filters(lists=("L1",)), lambda term: _list_of(term) == "L1"),
                                  (Filters(tags=("odd",)), lambda term: TERMS.index(term) % 3 == 0)):
                result = diff_runs(store, f"m{n}-a", f"m{n}-b", filters=filters, confirm=False)
                got = {(c.platform, c.term): (c.transition.value, c.before, c.after) for c in result.changes}
                want, compared = _expected(world, 0.5, keep)
                assert got == want, (n, filters)
                assert result.compared == compared
        assert {"newly_censored", "newly_uncensored", "results_dropped", "new_term", "dropped_term",
                "became_unknown", "first_observation"} <= seen_kinds
