"""Run a probe set end to end: plan it, lock it, pick up an interrupted run, execute it.

This is the library entry point the CLI, the demo and the scheduler share.

Run status. A run is ``running`` while its process holds the probe set's lock
(:mod:`harness.store.locking`), ``complete`` when every planned task is stored, and
``interrupted`` when it stopped before that: the engine writes ``interrupted`` when it
is stopped (Ctrl-C, SIGTERM, an error), and a run still marked ``running`` whose
process is gone (SIGKILL, power loss) is *shown* as interrupted by
:func:`effective_status` and *recorded* as such by the next run of its probe set.

Resume. The next run of the same probe set *at the same vantage point* continues that
vantage point's latest interrupted run (same run id, its task keys already stored are
skipped) when nothing that shapes the run has changed: the probe set's content, the
planned task list (keyword lists can change under an unchanged probe set), and the
vantage point's country and ASN. Otherwise a new run starts and the old one stays
interrupted. Locks, resume and the "running but its lock is free, so dead" rule are all
per (probe set, vantage label): in a store that several vantage points share (PostgreSQL),
vantage B neither takes over nor waits for vantage A's run.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..measure.engine import Engine, ProgressCallback, RunOptions, RunSummary
from ..measure.plan import RunPlan, load_probe_set, plan_run
from ..measure.signals import run_interruptibly
from ..models import RateLimit, Run
from ..platforms.items import ItemRegistry
from ..platforms.registry import PlatformRegistry
from ..store.base import Store
from ..store.locking import RunLock, effective_status, pid_alive, run_lock
from ..store.target import StoreTarget
from .enrol import enrol_search_results
from .logs import event, get_logger

log = get_logger("run")

__all__ = [
    "RunRequest", "prepare", "execute", "find_resumable", "effective_status", "record_dead_runs", "pid_alive",
    "resume_refusal",
]


# --------------------------------------------------------------------------- status


def record_dead_runs(store: Store, store_path: StoreTarget | None = None, probe_set: str | None = None,
                     vantage: str | None = None) -> list[str]:
    """Write ``interrupted`` for runs marked ``running`` whose process is gone (the lock of their
    own (probe set, vantage) is free, or held by another process); returns their ids."""
    dead = []
    for run in store.list_runs(probe_set, vantage=vantage):
        if run.status == "running" and effective_status(run, store) == "interrupted":
            store.conn.execute("UPDATE runs SET status='interrupted' WHERE run_id=? AND status='running'", (run.run_id,))
            dead.append(run.run_id)
    return dead


# --------------------------------------------------------------------------- resume


def resume_refusal(store: Store, plan: RunPlan, run: Run, options: RunOptions | None) -> str | None:
    """Why ``run`` cannot be continued by ``plan`` (None: it can)."""
    if run.status == "complete":
        return "the latest run is complete"
    if run.probe_set_sha256 != plan.probe_set_sha256:
        return "the probe set changed since the interrupted run"
    if run.planned != len(plan.tasks):
        return f"the plan changed since the interrupted run ({run.planned} → {len(plan.tasks)} tasks; keyword lists edited?)"
    planned_keys = {t.key for t in plan.tasks}
    stray = [k for k in store.done_task_keys(run.run_id) if "\x1ftruism\x1f" not in k and k not in planned_keys]
    if stray:
        return f"the plan changed since the interrupted run ({len(stray)} stored tasks are no longer planned)"
    if options is not None:
        v = options.vantage
        if (run.probe_cc, run.probe_asn, run.vantage) != (v.probe_cc, v.probe_asn, v.label):
            return (f"the vantage point differs from the interrupted run's ({run.probe_cc}/{run.probe_asn}/{run.vantage!r}"
                    f" → {v.probe_cc}/{v.probe_asn}/{v.label!r})")
    return None


def find_resumable(store: Store, plan: RunPlan, options: RunOptions | None = None) -> Run | None:
    """The latest run of this probe set at this vantage point, if it is unfinished and can be
    continued by ``plan``.

    Call it while holding the lock of (probe set, vantage): a run then marked ``running`` is dead.
    """
    for run in store.list_runs(plan.probe_set.name, limit=1, vantage=_vantage_label(options)):
        return run if resume_refusal(store, plan, run, options) is None else None
    return None


def _vantage_label(options: RunOptions | None) -> str:
    return (options or RunOptions()).vantage.label


# --------------------------------------------------------------------------- requests


@dataclass
class RunRequest:
    probe_set_path: Path
    store_path: StoreTarget
    """a SQLite file or a ``postgresql://`` URL (:mod:`harness.store.target`)"""
    platform_dirs: tuple[Path, ...] = ()
    keyword_dirs: tuple[Path, ...] = ()
    base_urls: dict[str, str] | None = None
    new: bool = False
    options: RunOptions | None = None
    cookie_files: dict[str, Path] = field(default_factory=dict)
    """platform → cookie file (its contents go into that platform's requests only, never into the store or logs)."""
    default_rate_limits: dict[str, RateLimit] = field(default_factory=dict)
    """platform → pace used when the probe set gives none for it (from the configuration)."""
    default_rate_limit: RateLimit | None = None
    lock: bool = True
    retry_backoff_s: float | None = None
    """From the command line: first retry wait (wins over the probe set's ``retry_backoff_s``)."""
    default_retry_backoff_s: float | None = None
    """From the configuration: used when neither the command line nor the probe set sets one."""


def prepare(req: RunRequest) -> RunPlan:
    probe_set, doc = load_probe_set(req.probe_set_path)
    registry = PlatformRegistry.default(req.platform_dirs)
    plan = plan_run(probe_set, registry, doc=doc, keyword_dirs=list(req.keyword_dirs), base_urls=req.base_urls,
                    items=ItemRegistry.default(req.platform_dirs))
    if probe_set.notify is not None:
        from ..errors import ProbeSetError
        from .notify import check_notify

        try:
            check_notify(probe_set.notify)
        except ProbeSetError as exc:
            raise ProbeSetError(exc.message, req.probe_set_path, doc.line_of(("notify",)) if doc else None) from None
    backoff = next((v for v in (req.retry_backoff_s, probe_set.retry_backoff_s, req.default_retry_backoff_s)
                    if v is not None), None)
    if backoff is not None:
        req.options = req.options or RunOptions()
        req.options.retry_backoff_s = backoff
    explicit_top = "rate_limit" in probe_set.model_fields_set
    selected = {sel.name: sel for sel in probe_set.platforms}
    for name in plan.specs:
        sel = selected.get(name)
        if (sel is None or sel.rate_limit is None) and not explicit_top:
            default = (req.default_rate_limits.get(name) or req.default_rate_limits.get(plan.platform_of(name))
                       if name in plan.item_specs else req.default_rate_limits.get(name)) or req.default_rate_limit
            if default is not None:
                plan.rate_limits[name] = default
    browser_specs = sorted(n for n, s in plan.specs.items() if s.transport == "browser")
    if browser_specs and (req.options is None or req.options.browser is None):
        from ..measure.browser import INSTALL_HINT, BrowserUnavailable, browser_problem

        problem = browser_problem()
        if problem is not None:  # before anything is written or shown: one line naming the specs
            raise BrowserUnavailable(f"{', '.join(browser_specs)}: needs a headless Chromium (transport: browser) "
                                     f"but {problem}; {INSTALL_HINT}; or leave it out of the probe set")
    if req.cookie_files:
        # Configured cookie files go through the engine's sessions (scrubbed from evidence), for the
        # platforms this probe set probes; a file given on the command line wins.
        req.options = req.options or RunOptions()
        for name, cookie_file in req.cookie_files.items():
            if name in plan.specs:
                req.options.cookies.setdefault(name, cookie_file)
    return plan


def _isolate_new_censorship(store: Store, run_id: str, plan: RunPlan, req: RunRequest) -> list[dict[str, Any]]:
    """The probe set's ``isolate`` option: find the rule behind each phrase that became censored."""
    from ..isolation.after_runs import isolate_new_censorship
    from ..isolation.oracle import OracleOptions

    opts = req.options or RunOptions()
    keywords_dir = (plan.source.resolve().parent.parent / "keywords") if plan.source is not None else Path("keywords")
    oracle_opts = OracleOptions(retries=plan.probe_set.retries, retry_backoff_s=opts.retry_backoff_s,
                                timeout_s=plan.probe_set.timeout_s, proxy=opts.proxy, transport=opts.transport)
    results = [r.to_dict() for r in isolate_new_censorship(store, run_id, plan, keywords_dir=keywords_dir,
                                                            options=oracle_opts)]
    for r in results:
        event(log, "isolated", f"{r['platform']}: {r['term']!r} -> {r['new_rules'] or r.get('rules')}",
              run_id=run_id, platform=r["platform"], queries=r.get("queries"))
    return results


class _LockedEngine(Engine):
    """An engine that writes the run id into the run lock's holder details once it is known."""

    def __init__(self, store: Store, options: RunOptions | None, lock: RunLock | None):
        super().__init__(store, options)
        self._probe_lock = lock

    def start_run(self, plan: RunPlan, run_id: str | None = None) -> str:
        run_id = super().start_run(plan, run_id)
        if self._probe_lock is not None:
            self._probe_lock.update(run_id=run_id)
        return run_id


def _done_planned(store: Store, run_id: str, plan: RunPlan) -> int:
    planned = {t.key for t in plan.tasks}
    return sum(1 for k in store.done_task_keys(run_id) if k in planned)


def execute(req: RunRequest, plan: RunPlan, progress: ProgressCallback | None = None,
            on_start: Callable[[RunPlan, Run | None, int], None] | None = None) -> RunSummary:
    """Run (or resume) the plan under the probe set's lock.

    Raises :class:`~harness.errors.RunLockedError` naming the running process when the
    probe set is already running against this store. The summary's counts cover the
    whole run, sessions before a resume included.
    """
    name = plan.probe_set.name
    vantage = _vantage_label(req.options)
    lock = run_lock(req.store_path, name, vantage) if req.lock else None
    try:
        if lock is not None:
            lock.acquire()
    except Exception as exc:
        event(log, "run_refused", str(exc), logging.WARNING, probe_set=name)
        raise
    try:
        if lock is not None and lock.took_over is not None:
            event(log, "stale_lock", f"took over the stale lock of {name!r} left by {lock.took_over.describe()}",
                  logging.WARNING, probe_set=name, stale_pid=lock.took_over.pid)
        with Store(req.store_path) as store:
            if lock is not None:
                for run_id in record_dead_runs(store, req.store_path, name, vantage):
                    event(log, "run_died", f"run {run_id} of {name!r} had stopped without notice: now interrupted",
                          logging.WARNING, probe_set=name, run_id=run_id)
            resume = None
            if not req.new:
                latest = store.list_runs(name, limit=1, vantage=vantage)
                if latest and latest[0].status != "complete":
                    why = resume_refusal(store, plan, latest[0], req.options)
                    if why is None:
                        resume = latest[0]
                    else:
                        event(log, "resume_declined", f"not resuming run {latest[0].run_id}: {why}",
                              probe_set=name, run_id=latest[0].run_id, reason=why)
            already = _done_planned(store, resume.run_id, plan) if resume else 0
            engine = _LockedEngine(store, req.options, lock)
            if on_start:
                on_start(plan, resume, already)
            if resume:
                event(log, "run_resumed", f"resuming run {resume.run_id} of {name!r} ({already}/{len(plan.tasks)} done)",
                      probe_set=name, run_id=resume.run_id, done=already, planned=len(plan.tasks))
            else:
                event(log, "run_started", f"starting a run of {name!r} ({len(plan.tasks)} tasks)",
                      probe_set=name, planned=len(plan.tasks))
            try:
                summary = run_interruptibly(engine.run(plan, resume.run_id if resume else None, progress))
            except BaseException as exc:
                run_id = getattr(engine, "_run_id", None)
                event(log, "run_interrupted", f"run {run_id} of {name!r} interrupted ({type(exc).__name__})",
                      logging.WARNING, probe_set=name, run_id=run_id)
                raise
            whole = store.platform_counts(summary.run_id)
            summary.counts = {p: Counter(whole.get(p, {})) for p in plan.measured_platforms()}
            summary.failures = Counter(store.failure_counts(summary.run_id))
            event(log, "run_finished", f"run {summary.run_id} of {name!r} {summary.status}",
                  probe_set=name, run_id=summary.run_id, status=summary.status, planned=summary.planned,
                  stored=summary.stored, resumed_with=summary.skipped, elapsed_s=round(summary.elapsed_s, 3),
                  failure_share=round(summary.failure_share, 4),
                  counts={p: dict(c) for p, c in summary.counts.items()}, failures=dict(summary.failures))
            if summary.status == "complete" and plan.probe_set.isolate.enabled:
                summary.isolations = _isolate_new_censorship(store, summary.run_id, plan, req)
            if summary.status == "complete" and plan.probe_set.notify is not None:
                from .notify import notify_after_run

                summary.notifications = notify_after_run(store, summary.run_id, plan.probe_set.notify, name)
            if summary.status == "complete" and plan.probe_set.watch_results is not None:
                enrolled = enrol_search_results(store, summary.run_id, plan, ItemRegistry.default(req.platform_dirs))
                if enrolled is not None:
                    summary.enrolled = enrolled.to_dict()
                    event(log, "results_enrolled",
                          f"{enrolled.added} new result items of {enrolled.terms} searches enrolled in "
                          f"{enrolled.path} ({enrolled.already} already watched, {enrolled.not_items} links no item "
                          f"spec reads)", probe_set=name, run_id=summary.run_id, **enrolled.to_dict())
            return summary
    finally:
        if lock is not None:
            lock.release()
