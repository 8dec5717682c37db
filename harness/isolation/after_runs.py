"""After a scheduled run: isolate the phrases that became censored.

A probe term that is a phrase (one component, at least ``min_length`` characters,
e.g. a slogan or a headline fragment) and whose verdict in this run is censored (hard
or soft) while its previous known verdict was not, hides a shorter rule that the
platform added. :func:`isolate_new_censorship` isolates each such phrase through the
platform oracle under a query budget, appends the rules to
``keywords/discovered-<platform>.yaml`` and records every attempt in the store's
``isolations`` table, so that a second call for the same run does nothing twice.

By default the isolation guesses the workspace's keyword lists and discovered rules (all
platforms) first, and each rule found joins those priors for the next phrase; the probe
set's ``isolate: {priors: false}`` turns that off. Every query is stored as evidence in a
run of its own (``isolation:after-run:<platform>``, :mod:`harness.isolation.evidence`).

The probe-set option (``isolate: {enabled: true, budget: 40}``) says whether the runner
calls it; this module does not touch the run loop.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..measure.engine import Vantage
from ..measure.plan import RunPlan
from ..models import Verdict
from ..store import Store, iso, utcnow
from .discovery import DiscoveredList, add_rules_to_priors, discovered_path, workspace_priors
from .evidence import IsolationEvidence
from .oracle import OracleOptions, PlatformIsolation, PlatformOracle, isolate_with

CENSORED = (Verdict.hard.value, Verdict.soft.value)


@dataclass(frozen=True)
class NewlyCensored:
    platform: str
    term: str
    vantage: str
    verdict: str
    previous: str | None


@dataclass
class AutoIsolation:
    """The outcome for one phrase."""

    candidate: NewlyCensored
    result: PlatformIsolation
    new_rules: list[tuple[str, ...]]

    def to_dict(self) -> dict[str, Any]:
        return {"platform": self.candidate.platform, "term": self.candidate.term, "verdict": self.candidate.verdict,
                "previous": self.candidate.previous, **{k: v for k, v in self.result.to_dict().items() if k != "text"},
                "new_rules": [list(r) for r in self.new_rules]}


def find_newly_censored(store: Store, run_id: str, min_length: int = 4,
                        include_first_seen: bool = False) -> list[NewlyCensored]:
    """Phrase probes censored in ``run_id`` whose previous known verdict was not censored.

    A term seen for the first time counts only with ``include_first_seen``.
    """
    out: list[NewlyCensored] = []
    seen: set[tuple[str, str, str]] = set()
    for m in store.measurements(run_id, role="probe"):
        if m.verdict.value not in CENSORED or len(m.components) != 1 or len(m.input) < min_length:
            continue
        key = (m.platform, m.input, m.vantage)
        if key in seen:
            continue
        seen.add(key)
        previous = store.last_known_verdict(m.platform, m.input, m.vantage, run_id)
        if previous in CENSORED or (previous is None and not include_first_seen):
            continue
        out.append(NewlyCensored(m.platform, m.input, m.vantage, m.verdict.value, previous))
    return out


def _already_isolated(store: Store, run_id: str) -> set[tuple[str, str]]:
    rows = store.conn.execute("SELECT platform, input FROM isolations WHERE run_id=? AND error IS NULL", (run_id,))
    return {(r[0], r[1]) for r in rows}


def _record(store: Store, run_id: str, c: NewlyCensored, res: PlatformIsolation) -> None:
    """One attempt's row (a retry replaces the failed one), in SQL both store backends speak."""
    with store.transaction():
        store.conn.execute("DELETE FROM isolations WHERE run_id=? AND platform=? AND input=?",
                           (run_id, c.platform, c.term))
        store.conn.execute(
            "INSERT INTO isolations (run_id, platform, input, vantage, finished_at, queries, complete, error,"
            " rules) VALUES (?,?,?,?,?,?,?,?,?)",
            (run_id, c.platform, c.term, c.vantage, iso(utcnow()), res.queries, int(res.complete), res.error,
             json.dumps([list(r) for r in res.rules], ensure_ascii=False)),
        )


async def aisolate_new_censorship(
    store: Store,
    run_id: str,
    plan: RunPlan,
    budget: int | None = None,
    *,
    keywords_dir: Path | None = None,
    options: OracleOptions | None = None,
    include_first_seen: bool = False,
) -> list[AutoIsolation]:
    """Async form of :func:`isolate_new_censorship`."""
    opt = plan.probe_set.isolate
    budget = budget or opt.budget
    keywords_dir = Path(keywords_dir) if keywords_dir is not None else Path("keywords")
    done = _already_isolated(store, run_id)
    candidates = [c for c in find_newly_censored(store, run_id, opt.min_length, include_first_seen)
                  if c.platform in plan.specs and (c.platform, c.term) not in done]
    results: list[AutoIsolation] = []
    if not candidates:
        return results
    priors = workspace_priors(keywords_dir, enabled=opt.priors)
    run = store.get_run(run_id)
    vantage = Vantage(run.probe_cc, run.probe_asn, run.vantage)
    for platform in sorted({c.platform for c in candidates}):
        spec = plan.specs[platform]
        base = options or OracleOptions()
        popt = OracleOptions(**{**base.__dict__, "rate_limit": base.rate_limit or plan.rate_limits.get(platform),
                                "timeout_s": plan.probe_set.timeout_s})
        lst = DiscoveredList(discovered_path(keywords_dir, platform), platform)
        evidence = IsolationEvidence(store, "after-run", platform, vantage,
                                     {"after_run": run_id, "probe_set": plan.probe_set.name, "budget": budget,
                                      "priors": priors.describe() if priors else None})
        finished = False
        try:
            async with PlatformOracle(spec, popt, evidence) as oracle:
                for c in (c for c in candidates if c.platform == platform):
                    res = await isolate_with(oracle, c.term, budget, priors)
                    added = [r for r in res.rules
                             if lst.add(r, text_id=f"run {run_id} probe {c.term!r}", queries=res.queries,
                                        complete=res.complete, origin="auto-isolation", run_id=res.run_id)]
                    if added:
                        lst.save()
                    add_rules_to_priors(priors, res.rules)
                    _record(store, run_id, c, res)
                    results.append(AutoIsolation(c, res, added))
            finished = True
        finally:
            evidence.close(finished)
    return results


def isolate_new_censorship(
    store: Store,
    run_id: str,
    plan: RunPlan,
    budget: int | None = None,
    *,
    keywords_dir: Path | None = None,
    options: OracleOptions | None = None,
    include_first_seen: bool = False,
) -> list[AutoIsolation]:
    """Isolate every phrase probe of ``run_id`` that became censored; see the module docstring.

    ``budget`` defaults to the probe set's ``isolate.budget``. Whether to call this at
    all (``plan.probe_set.isolate.enabled``) is the caller's decision. A phrase whose
    isolation stopped on a failure is recorded with its error and tried again on the
    next call; the others are not isolated twice for the same run.
    """
    return asyncio.run(aisolate_new_censorship(store, run_id, plan, budget, keywords_dir=keywords_dir,
                                               options=options, include_first_seen=include_first_seen))
