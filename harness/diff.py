"""The comparator: which terms changed verdict between two runs.

The state of (platform, term, vantage) in a run is its latest verdict that is not a
failure; a key with only failures is ``unknown``. Failures never erase what is known:
a term that was censored and now only failed is ``became_unknown``, not uncensored.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from enum import Enum

from pydantic import BaseModel, Field

from .errors import NotFoundError
from .models import Run
from .store import Store

UNKNOWN = "unknown"
CENSORED = {"hard", "soft"}


class Transition(str, Enum):
    newly_censored = "newly_censored"
    newly_uncensored = "newly_uncensored"
    hard_to_soft = "hard_to_soft"
    soft_to_hard = "soft_to_hard"
    became_unknown = "became_unknown"
    new_term = "new_term"
    dropped_term = "dropped_term"


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
    measurement_id: str | None = None


class DiffResult(BaseModel):
    run_a: str
    run_b: str
    probe_set: str
    changes: list[Change] = Field(default_factory=list)
    counts: dict[str, int] = Field(default_factory=dict)
    compared: int = 0


@dataclass
class _State:
    verdict: str
    list_name: str | None
    category: str | None
    confirmed: bool | None
    measurement_id: str


def run_states(store: Store, run_id: str) -> dict[tuple[str, str, str], _State]:
    import json

    states: dict[tuple[str, str, str], _State] = {}
    for row in store.verdict_rows([run_id]):
        key = (row["platform"], row["input"], row["vantage"])
        verdict = row["verdict"]
        prev = states.get(key)
        if verdict == "failure":
            if prev is None:
                states[key] = _State(UNKNOWN, row["list_name"], row["category"], None, row["measurement_id"])
            continue
        confirmed = json.loads(row["doc"]).get("test_keys", {}).get("confirmed")
        states[key] = _State(verdict, row["list_name"], row["category"], confirmed, row["measurement_id"])
    return states


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


def diff_runs(store: Store, run_a: str, run_b: str) -> DiffResult:
    a, b = store.get_run(run_a), store.get_run(run_b)
    sa, sb = run_states(store, a.run_id), run_states(store, b.run_id)
    changes: list[Change] = []
    for key in sorted(set(sa) | set(sb)):
        before, after = sa.get(key), sb.get(key)
        t = classify_transition(before.verdict if before else None, after.verdict if after else None)
        if t is None:
            continue
        ref = after or before
        assert ref is not None
        changes.append(
            Change(platform=key[0], term=key[1], vantage=key[2], list_name=ref.list_name, category=ref.category,
                   transition=t, before=before.verdict if before else None, after=after.verdict if after else None,
                   confirmed=after.confirmed if after else None, measurement_id=ref.measurement_id)
        )
    counts = Counter(c.transition.value for c in changes)
    return DiffResult(run_a=a.run_id, run_b=b.run_id, probe_set=b.probe_set, changes=changes, counts=dict(counts),
                      compared=len(set(sa) & set(sb)))


def resolve_run(store: Store, ref: str, probe_set: str | None = None) -> Run:
    """A run id (or unique prefix), ``latest`` or ``latest~N`` (within ``probe_set`` if given)."""
    if ref == "latest" or ref.startswith("latest~"):
        n = int(ref.split("~", 1)[1]) if "~" in ref else 0
        runs = store.list_runs(probe_set)
        if len(runs) <= n:
            raise NotFoundError(f"there is no run {ref!r}" + (f" of probe set {probe_set!r}" if probe_set else ""))
        return runs[n]
    return store.get_run(ref)


def default_pair(store: Store, a: str | None, b: str | None) -> tuple[Run, Run]:
    """Fill in missing run references: B defaults to the latest run, A to the run before B of the same probe set."""
    run_b = resolve_run(store, b) if b else resolve_run(store, "latest")
    if a:
        return resolve_run(store, a), run_b
    earlier = [r for r in store.list_runs(run_b.probe_set) if r.started_at < run_b.started_at]
    if not earlier:
        raise NotFoundError(f"probe set {run_b.probe_set!r} has only one run; nothing to compare it with")
    return earlier[0], run_b
