"""The run engine: one controller owns the loop, the pacing, the controls and storage.

A run is planned first (:mod:`harness.measure.plan`: a deterministic, ordered list of
tasks with stable keys), then executed here: per platform, workers take tasks, wait for
the platform's rate limit, send the query (:mod:`harness.measure.request` through
:mod:`harness.measure.pacing`), classify the answer and store the measurement as soon
as it exists. A run that is killed resumes from the store: finished task keys are
skipped, so no measurement is lost or duplicated.

Method, per probe (Citizen Lab style):

1. **Control.** The platform's truism must return results at run start and every
   ``controls.every`` probes. While it fails the platform backs off (each back-off is
   logged) and no probe is sent; if it has not recovered after ``controls.give_up_after_s``
   the platform is given up with one line (``baidu: unreachable since 12:03 (dns_error);
   48 probes not sent, run resumes them``): the run ends ``interrupted`` and the next run
   of the probe set sends what is missing. A truism answered by a login wall
   (``session_required``) gives the platform up at once, saying how to give it cookies.
2. **Hard test.** The query (term, or term + truism where the platform censors
   silently) shows a notice, or no results while the control works.
3. **Soft test.** Where the spec has one: term + truism restricted to a non-authorized
   domain whose truism-only query has results. Results vanish only for the term: soft.
4. **Flip retest.** A verdict that differs from the last known one is retested once
   before it is stored as confirmed.

Watched items go through the same loop: an item spec is one more platform of the plan
(:mod:`harness.measure.plan`), its truism is the platform's control item (it must be
``available``), its probes (role ``item``) are fetched, read with the item spec, flip-retested
and stored like search probes, under the item's platform with ``test_name`` ``content_removal``.
A removal is only stored as one while the control item is still available: after a removal
verdict the control item is fetched again (a closing control, as after a silent-empty search
verdict), and when it is not available the item's measurement is the failure ``control_failed``
(signal ``closing_control_failed``), never a removal: a platform that answers every page with a
notice, or stopped answering, has not removed the item.

Health, besides the truism: when ``controls.drift_after`` answers in a row (or 8 of the
last 10) match none of the spec's markers, the platform is stopped (the page layout has
probably changed). **Positive controls** (terms known to be censored on the platform,
role ``positive_control``) are probed first each run; one that is not detected while the
truism works is flagged (signal ``positive_control_missed``) and reported. Such events
reach the caller as :class:`Notice` objects (``RunOptions.on_notice``) and the
``harness.engine`` log.
"""


from __future__ import annotations

import asyncio
import contextvars
import datetime as dt
import functools
import hashlib
import logging
import os
import random
import socket
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from .. import __version__
from ..errors import InputError
from ..failures import FailureCode
from ..models import Evidence, Keyword, Measurement, ProbeSet, Run, TestKeys, Verdict
from ..platforms.classification import Classification, failure
from ..platforms.classify import SILENT_EMPTY, apply_soft_test, apply_truism_method
from ..platforms.spec import PlatformSpec
from ..store.domain_profile import save_profile_cell
from ..store.sqlite import Store, utcnow
from ..store.writer import StoreWriter
from .health import POSITIVE_MISSED, Notice, NoticeCallback, PlatformHealth, duration, positive_control_summary, \
    session_help
from .pacing import RateLimiter, send_with_retries
from .plan import ProbeTask, RunPlan
from .request import Fetched, fill
from .sessions import PlatformSession, check_proxy, redact_userinfo
from .signals import run_interruptibly
from .transport import Sender

MAX_UNCOMMITTED = 1024  # measurements handed to the store thread and not yet committed (backpressure)

log = logging.getLogger("harness.engine")

_worker_sender: contextvars.ContextVar[Sender] = contextvars.ContextVar("worker_sender")


@dataclass(frozen=True)
class Vantage:
    probe_cc: str = "ZZ"
    probe_asn: str = "AS0"
    label: str = ""


@dataclass
class RunOptions:
    vantage: Vantage = field(default_factory=Vantage)
    retry_backoff_s: float = 5.0
    max_retry_after_s: float = 600.0
    control_backoff_s: float = 30.0
    control_attempts: int = 3
    keep_bodies: bool = True
    proxy: str | None = None  # http://, https://, socks5:// or socks5h:// URL; credentials are never stored
    transport: httpx.AsyncBaseTransport | None = None
    seed: int | None = None
    cookies: dict[str, Path] = field(default_factory=dict)  # platform -> cookies.txt or JSON file
    # platform (or "*") -> the account's identifiers (uid, nickname) that a logged-in page embeds: redacted
    account_identifiers: dict[str, list[str]] = field(default_factory=dict)
    max_stored_body_bytes: int = 2_000_000  # bodies over this are stored as a prefix (evidence.body_truncated)
    domain_profile: bool = False  # profile authorized domains for every soft-censored term
    confirm_silent_empty: bool = True  # re-check the truism after a silent-empty hard verdict
    confirm_removals: bool = True  # re-check the control item after an item is read as removed
    on_notice: NoticeCallback | None = None  # platform health, login walls, missed positive controls
    give_up_after_s: float | None = None  # overrides the probe set's controls.give_up_after_s
    browser: Any = None  # a started harness.measure.browser.Browser to share (tests); else one per run if needed

    def __repr__(self) -> str:  # never print a proxy password
        return (f"RunOptions(vantage={self.vantage!r}, proxy={redact_userinfo(self.proxy) if self.proxy else None!r}, "
                f"cookies={sorted(self.cookies)!r}, account_identifiers={sorted(self.account_identifiers)!r})")


@dataclass
class RunSummary:
    run_id: str
    status: str
    planned: int
    stored: int
    skipped: int
    counts: dict[str, Counter[str]]
    failures: Counter[str]
    elapsed_s: float
    isolations: list[dict[str, Any]] = field(default_factory=list)  # filled by harness.operations.runs (probe-set `isolate`)
    notifications: list[dict[str, Any]] = field(default_factory=list)  # filled by harness.operations.runs (probe-set `notify`)
    enrolled: dict[str, Any] | None = None  # filled by harness.operations.runs (probe-set `watch_results`)
    notices: list[Notice] = field(default_factory=list)
    stopped: dict[str, str] = field(default_factory=dict)  # platform -> the line saying why it was given up
    positive_controls: dict[str, dict[str, Any]] = field(default_factory=dict)  # platform -> sent/detected/missed

    @property
    def failure_share(self) -> float:
        total = sum(sum(c.values()) for c in self.counts.values())
        return (sum(c["failure"] for c in self.counts.values()) / total) if total else 0.0


ProgressCallback = Callable[[Measurement | None], None]


ITEM_TEST_NAME = "content_removal"
CLOSING_CONTROL_FAILED = "closing_control_failed"  # an item read as removed while the control item was not available


class _PlatformState:
    def __init__(self, spec: PlatformSpec, limiter: RateLimiter, soft: bool, session: PlatformSession,
                 profile_domains: list[str], platform: str | None = None, items: bool = False):
        self.spec = spec
        self.platform = platform or spec.name  # what measurements are stored under (an item spec's platform)
        self.items = items  # an item spec: the truism is the control item, which must be available
        self.control_verdict = Verdict.available if items else Verdict.not_censored
        self.control_name = "control item" if items else "truism"
        self.limiter = limiter
        self.soft = soft
        self.session = session
        self.profile_domains = profile_domains
        self.since_control = 10**9  # probes since the last truism: a control is due at the start
        self.control_ok: bool | None = None
        self.control_id: str | None = None
        self.control_lock = asyncio.Lock()
        self.soft_domain: str | None = None
        self.domain_controls: dict[str, bool] = {}  # restricted truism per domain, this control window
        self.truism_seq = 0
        self.last_known: dict[str, str] = {}  # term -> latest non-failure verdict before this run (flip retest)
        self.queue: asyncio.Queue[ProbeTask] | None = None
        self.in_hand = 0  # tasks taken from the queue and not stored yet
        self.sending = 0  # of those, the ones being sent (they will be stored)
        self.health: PlatformHealth | None = None  # set when the run starts (it needs the probe set's controls)
        self.noticed: set[str] = set()
        self.positive_last: dict[str, str] = {}  # positive-control term -> its verdict in the previous run


def _redacted_probe_set(probe_set: ProbeSet) -> dict[str, Any]:
    doc = probe_set.model_dump(mode="json")
    for sel in doc.get("platforms", []):
        if sel.get("base_url"):
            sel["base_url"] = redact_userinfo(sel["base_url"])
    return doc


def _selection_options(plan: RunPlan, name: str) -> dict[str, Any]:
    for sel in plan.probe_set.platforms:
        if sel.name == name:
            return dict(sel.options)
    return {}


class Engine:
    """Runs a :class:`RunPlan` into a :class:`Store`."""

    def __init__(self, store: Store, options: RunOptions | None = None):
        self.store = store
        self.opt = options or RunOptions()
        self.rng = random.Random(self.opt.seed)
        self._session = 1
        if self.opt.proxy:
            check_proxy(self.opt.proxy)

    def start_run(self, plan: RunPlan, run_id: str | None = None) -> str:
        if run_id is not None:
            self._session = self.store.reopen_run(run_id, os.getpid(), socket.gethostname())
            return run_id
        run_id = utcnow().strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8]
        v = self.opt.vantage
        self.store.create_run(
            Run(run_id=run_id, probe_set=plan.probe_set.name, probe_set_sha256=plan.probe_set_sha256,
                started_at=utcnow(), probe_cc=v.probe_cc, probe_asn=v.probe_asn, vantage=v.label,
                software_version=__version__, planned=len(plan.tasks), pid=os.getpid(),
                hostname=socket.gethostname()),
            {"probe_set": _redacted_probe_set(plan.probe_set),
             "platforms": {n: redact_userinfo(s.base_url) for n, s in plan.specs.items()},
             # how the requests went out, without any credential: the proxy's scheme only, cookie *names* only
             "session": {"proxy": urlsplit(self.opt.proxy).scheme if self.opt.proxy else None,
                         "cookies": {n: sorted({c.name for c in ps.cookies}) for n, ps in self._sessions.items()
                                     if ps.cookies} if hasattr(self, "_sessions") else {}}},
        )
        return run_id

    def _build_sessions(self, plan: RunPlan) -> dict[str, PlatformSession]:
        unknown = sorted(set(self.opt.cookies) - set(plan.specs))
        if unknown:
            raise InputError(f"cookies given for {', '.join(unknown)}, which the probe set does not probe "
                             f"(it probes {', '.join(plan.specs)})")
        sessions = {}
        for name, spec in plan.specs.items():
            opts = _selection_options(plan, name)
            cookies_file: Path | None = self.opt.cookies.get(name)
            if cookies_file is None and opts.get("cookies_file"):
                cookies_file = Path(str(opts["cookies_file"]))
                if not cookies_file.is_absolute() and plan.source is not None:
                    cookies_file = plan.source.parent / cookies_file
            identifiers = [*self.opt.account_identifiers.get("*", []), *self.opt.account_identifiers.get(name, [])]
            sessions[name] = PlatformSession.build(cookies_file=cookies_file, env_names=spec.request.env_names(),
                                                   proxy=self.opt.proxy, platform=name, identifiers=identifiers)
        return sessions

    def _profile_domains(self, plan: RunPlan, spec: PlatformSpec) -> list[str]:
        if spec.soft_test is None:
            return []
        wanted = _selection_options(plan, spec.name).get("domain_profile", self.opt.domain_profile)
        if isinstance(wanted, list):
            return [str(d) for d in wanted]
        return list(spec.soft_test.profile_domains) if wanted else []

    def _previous_positive_controls(self, plan: RunPlan, run_id: str) -> dict[str, dict[str, str]]:
        """platform -> positive-control term -> its verdict in the previous run of this probe set and vantage."""
        if not any(t.role == "positive_control" for t in plan.tasks):
            return {}
        for run in self.store.list_runs(plan.probe_set.name, limit=20):
            if run.run_id == run_id or run.vantage != self.opt.vantage.label:
                continue
            out: dict[str, dict[str, str]] = {}
            for m in self.store.measurements(run.run_id, role="positive_control"):
                if m.verdict is not Verdict.failure:
                    out.setdefault(m.platform, {})[m.input] = m.verdict.value
            return out
        return {}

    def _open_browser(self, plan: RunPlan) -> tuple[Any, bool]:
        """The browser for specs with ``transport: browser``: the injected one, or one launched for
        this run (raises :class:`BrowserUnavailable`, one line naming the specs, before anything is written)."""
        needs = sorted(n for n, s in plan.specs.items() if s.transport == "browser")
        if not needs:
            return None, False
        if self.opt.browser is not None:
            return self.opt.browser, False
        from .browser import Browser

        return Browser.launch(proxy=self.opt.proxy, needed_by=", ".join(needs)), True

    async def run(self, plan: RunPlan, run_id: str | None = None, progress: ProgressCallback | None = None) -> RunSummary:
        t0 = time.monotonic()
        self._sessions = self._build_sessions(plan)  # before the run exists: a bad cookies file writes nothing
        self._browser, owns_browser = self._open_browser(plan)
        try:
            return await self._run(plan, run_id, progress, t0)
        finally:
            if owns_browser:
                await asyncio.get_running_loop().run_in_executor(None, self._browser.close)

    async def _run(self, plan: RunPlan, run_id: str | None, progress: ProgressCallback | None,
                   t0: float) -> RunSummary:
        run_id = self.start_run(plan, run_id)
        done = self.store.done_task_keys(run_id)
        todo = [t for t in plan.tasks if t.key not in done]
        counts: dict[str, Counter[str]] = {p: Counter() for p in plan.measured_platforms()}
        failures: Counter[str] = Counter()
        stored = 0
        self._run_id = run_id
        self._plan = plan
        self._notices: list[Notice] = []
        self._stopped: dict[str, str] = {}
        previous_positive = self._previous_positive_controls(plan, run_id)

        def record(m: Measurement) -> None:
            nonlocal stored
            stored += 1
            if m.role in ("probe", "item"):
                counts[m.platform][m.verdict.value] += 1
                if m.failure:
                    failures[m.failure] += 1
            if progress:
                progress(m)

        self._timeout = httpx.Timeout(plan.probe_set.timeout_s)
        status = "interrupted"
        # One thread does every store call of the run, in order: a commit (or a WAL checkpoint's
        # fsync, 10-200 ms on a busy disk) then waits there instead of freezing every worker.
        # Workers hand a finished measurement over and go on; it is counted once committed.
        self._writer = StoreWriter(self.store)
        self._unsettled: set[asyncio.Future[bool]] = set()
        self._in_flight = asyncio.Semaphore(MAX_UNCOMMITTED)
        self._write_error: BaseException | None = None
        self._record = record
        try:
            jobs = []
            for pname, spec in plan.specs.items():
                is_items = pname in plan.item_specs
                state = _PlatformState(spec, RateLimiter(plan.rate_limits[pname], self.rng), plan.soft_test[pname],
                                       self._sessions[pname], self._profile_domains(plan, spec),
                                       plan.platform_of(pname), is_items)
                if plan.probe_set.flip_retest:
                    role = "item" if is_items else "probe"
                    terms = [t.keyword.term for t in todo if t.platform == pname and t.role == role]
                    state.last_known = await self._db(self.store.last_known_verdicts, state.platform, terms,
                                                      self.opt.vantage.label, run_id, role)
                state.positive_last = previous_positive.get(pname, {})
                state.health = PlatformHealth(pname, give_up_after_s=self._give_up_after(),
                                              drift_after=plan.probe_set.controls.drift_after,
                                              control_attempts=self.opt.control_attempts)
                queue: asyncio.Queue[ProbeTask] = asyncio.Queue()
                state.queue = queue
                for t in todo:
                    if t.platform == pname:
                        queue.put_nowait(t)
                for _ in range(plan.rate_limits[pname].concurrency):
                    jobs.append(asyncio.ensure_future(self._worker(state, queue)))
            try:
                await asyncio.gather(*jobs)
            except BaseException:
                for job in jobs:  # one worker failed (or the run was cancelled): stop the others first
                    job.cancel()
                await asyncio.gather(*jobs, return_exceptions=True)
                raise
            await self._writer.aclose()
            if self._unsettled:
                await asyncio.wait(self._unsettled)
            if self._write_error is not None:
                raise self._write_error
            # a platform given up leaves tasks unsent: the run is not complete, and the next run resumes it
            status = "interrupted" if self._stopped else "complete"
        finally:
            self._writer.close()  # after an error or a cancellation: still writes what was handed over
            self.store.set_run_status(run_id, status, finished=status == "complete")
        return RunSummary(run_id, status, len(plan.tasks), stored, len(done), counts, failures, time.monotonic() - t0,
                          notices=list(self._notices), stopped=dict(self._stopped),
                          positive_controls=positive_control_summary(self.store, run_id))

    # ------------------------------------------------------------------ workers

    async def _db(self, call: Callable[..., Any], *args: Any) -> Any:
        """Run a store call on the store thread; it has returned (committed) when this returns."""
        return await self._writer.call(call, *args)

    async def _hand_over(self, m: Measurement, body: bytes | None = None, extra: list[bytes] | None = None) -> None:
        """Queue a finished measurement for the store thread and go on; it is counted
        (``record``) only once its transaction has committed."""
        if self._write_error is not None:
            raise self._write_error
        await self._in_flight.acquire()
        fut = self._writer.add(m, body, extra or ())
        self._unsettled.add(fut)
        fut.add_done_callback(functools.partial(self._settled, m))

    def _settled(self, m: Measurement, fut: asyncio.Future[bool]) -> None:
        self._unsettled.discard(fut)
        self._in_flight.release()
        if fut.cancelled():
            return
        exc = fut.exception()
        if exc is not None:
            if self._write_error is None:
                self._write_error = exc
            return
        if fut.result():
            try:
                self._record(m)
            except Exception as exc:  # a progress callback's error stops the run, as it would in a worker
                if self._write_error is None:
                    self._write_error = exc

    async def _worker(self, st: _PlatformState, queue: asyncio.Queue[ProbeTask]) -> None:
        # A connection pool per worker, with one connection: httpcore checks every idle pooled
        # connection each time a request is placed, and a shared pool of workers that spend
        # time classifying and storing is mostly idle connections (see bench/engine).
        # An injected transport (tests) is shared and not closed here.
        async with Sender.open(self._timeout, proxy=self.opt.proxy, transport=self.opt.transport) as sender:
            sender.browser = self._browser
            _worker_sender.set(sender)
            await self._work(st, queue)

    async def _work(self, st: _PlatformState, queue: asyncio.Queue[ProbeTask]) -> None:
        assert st.health is not None
        while not st.health.stopped:
            try:
                task = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            st.in_hand += 1
            try:
                ok = await self._ensure_control(st)
                if st.health.stopped:
                    return  # the task in hand stays unsent: the next run of the probe set resumes it
                st.since_control += 1  # every task of the window counts
                if not ok:  # no truism (controls.truism off never gets here); kept as a safety net
                    m = self._measurement(st, task, task.keyword.query(st.spec.combination_separator), time.time(),
                                          0.0, Fetched(failure(FailureCode.control_failed, "truism_failed")), 0)
                    await self._hand_over(m)
                    continue
                st.sending += 1  # from here on the task is measured and stored, whatever happens to the platform
                try:
                    m, body, extra = await self._probe(st, task)
                    await self._hand_over(m, self._stored_body(body), extra)
                finally:
                    st.sending -= 1
            finally:
                st.in_hand -= 1

    def _stored_body(self, body: bytes | None) -> bytes | None:
        if body is None or not self.opt.keep_bodies:
            return None
        return body[: self.opt.max_stored_body_bytes]

    # ------------------------------------------------------------------ notices and health

    def _notice(self, st: _PlatformState, kind: str, message: str, level: int = logging.WARNING,
                once: str | None = None, **fields: Any) -> None:
        """Tell the person running the harness (``on_notice``) and the log; with ``once``, at most once per run."""
        if once is not None:
            if once in st.noticed:
                return
            st.noticed.add(once)
        notice = Notice(st.spec.name, kind, message, fields)
        self._notices.append(notice)
        log.log(level, message, extra={"event": kind, "fields": {"platform": st.spec.name, "run_id": self._run_id,
                                                                  **fields}})
        if self.opt.on_notice is not None:
            self.opt.on_notice(notice)

    def _not_sent(self, st: _PlatformState) -> int:
        """Tasks still queued or held by a worker that has not started sending them."""
        return (st.queue.qsize() if st.queue is not None else 0) + st.in_hand - st.sending

    def _stop(self, st: _PlatformState, kind: str, why: str, **fields: Any) -> None:
        """Give the platform up for this run: no further task is taken; the next run resumes them."""
        assert st.health is not None
        if st.health.stopped:
            return
        n = self._not_sent(st)
        line = st.health.stop_line(why, n)
        self._stopped[st.spec.name] = line
        self._notice(st, kind, line, logging.ERROR, not_sent=n, **fields)

    def _after_answer(self, st: _PlatformState, fetched: Fetched, role: str) -> None:
        """Watch every answer of a platform: login walls, and pages that match no marker (layout drift)."""
        c = fetched.classification
        if c.failure == FailureCode.session_required.value and role != "truism":
            self._notice(st, "session_required", f"{st.spec.name}: answered with a login wall "
                         f"({', '.join(c.signals[:2])}): it needs a logged-in session; "
                         f"{session_help(st.spec.name, bool(st.session.cookies))}", once="session_required",
                         signals=c.signals)
        if fetched.status is None or not 200 <= fetched.status < 300 or st.health is None:
            return  # a network failure or an HTTP error says nothing about the layout
        # an item page recognised but of undocumented meaning (signal unverified:...) is not a changed layout
        drift = st.health.page(c.failure == FailureCode.unexpected_page.value
                               and not any(sig.startswith("unverified:") for sig in c.signals))
        if drift:
            self._stop(st, "layout_changed", drift)

    async def _truism(self, st: _PlatformState) -> Fetched:
        """Send the truism alone and store it (role ``truism``); its classification says whether it had results."""
        fetched = await self._send(st, st.spec.truism, "truism")
        st.truism_seq += 1
        kw = Keyword.model_construct(term=st.spec.truism, components=[st.spec.truism], category="control", tags=[],
                                     variants=[]) if st.items else Keyword(term=st.spec.truism, category="control")
        task = ProbeTask(f"{st.spec.name}\x1ftruism\x1f{self._session}\x1f{st.truism_seq}", st.spec.name,
                         "truism", kw, None, st.truism_seq)
        ok = fetched.classification.verdict is st.control_verdict
        m = self._measurement(st, task, st.spec.truism, time.time(), 0.0, fetched, fetched.attempts)
        m.test_keys.control_ok = ok
        await self._db(self.store.add_measurement, m, self._stored_body(fetched.body))
        if ok:
            st.control_id = m.measurement_id
        return fetched

    def _give_up_after(self) -> float:
        if self.opt.give_up_after_s is not None:
            return self.opt.give_up_after_s
        return self._plan.probe_set.controls.give_up_after_s

    async def _ensure_control(self, st: _PlatformState) -> bool:
        """The truism must have results at the start of every window of ``controls.every`` tasks.

        While it fails, no task is sent: the truism is sent again after an exponential
        back-off (logged), until it works or ``controls.give_up_after_s`` have passed since
        its first failure; then the platform is given up (:meth:`_stop`) and this returns False.
        A login wall, or a truism page that matches none of the spec's markers on every
        attempt, gives it up at once (:mod:`harness.measure.health`).
        """
        ps = self._plan.probe_set
        health = st.health
        assert health is not None
        if not ps.controls.truism:
            return not health.stopped
        async with st.control_lock:
            if health.stopped:
                return False
            if st.since_control < ps.controls.every and st.control_ok:
                return True
            st.soft_domain = None
            st.domain_controls = {}
            while not health.stopped:
                c = (await self._truism(st)).classification
                if c.verdict is st.control_verdict:
                    down = health.truism_ok()
                    if down is not None:
                        self._notice(st, "recovered", f"{st.spec.name}: the {st.control_name} works again after "
                                     f"{duration(down)}", logging.INFO, down_s=round(down, 1))
                    st.control_ok = True
                    st.since_control = 0
                    return True
                st.control_ok = False
                st.control_id = None
                why = c.failure or c.verdict.value  # e.g. dns_error, captcha, or no_results for an empty truism
                health.truism_failed()
                if c.failure == FailureCode.session_required.value:
                    st.noticed.add("session_required")
                    self._stop(st, "session_required",
                               f"needs a logged-in session (its {st.control_name} answered with a login wall: "
                               f"{', '.join(c.signals[:2])}). To measure it, "
                               f"{session_help(st.spec.name, bool(st.session.cookies))}", signals=c.signals)
                    break
                if health.stopped:  # _after_answer saw the layout drift on this answer
                    break
                unreadable = health.truism_unreadable() if c.failure == FailureCode.unexpected_page.value else None
                if unreadable:
                    self._stop(st, "layout_changed", unreadable)
                    break
                limit, elapsed = self._give_up_after(), health.elapsed()
                if elapsed >= limit:
                    self._stop(st, "unreachable", f"unreachable since {health.since} ({why})", failure=why,
                               since=_utc(health.unhealthy_wall or time.time()).isoformat(timespec="seconds"),
                               truisms=health.failed_truisms)
                    break
                wait = min(self._control_backoff(health.failed_truisms - 1), limit - elapsed)
                state = f"fails ({why})" if c.failure else (f"is not available ({why})" if st.items
                                                            else f"has no results ({why})")
                message = (f"{st.spec.name}: the {st.control_name} {state} since {health.since}; backing off "
                           f"{duration(wait)}, giving up after {duration(limit)} without results")
                if health.failed_truisms == 1:
                    self._notice(st, "unhealthy", message, failure=why, backoff_s=round(wait, 2))
                else:
                    log.warning(message, extra={"event": "control_backoff", "fields": {
                        "platform": st.spec.name, "run_id": self._run_id, "failure": why, "backoff_s": round(wait, 2),
                        "attempt": health.failed_truisms}})
                st.limiter.push_back(wait)
            return False

    def _control_backoff(self, exponent: int) -> float:
        return min(self.opt.control_backoff_s * (2 ** min(exponent, 20)), self._plan.probe_set.controls.max_backoff_s)

    async def _confirm_control(self, st: _PlatformState) -> bool:
        """A closing control after a silent-empty verdict (the truism must still have results) or after an item
        read as removed (the control item must still be available)."""
        async with st.control_lock:
            ok = (await self._truism(st)).classification.verdict is st.control_verdict
            if not ok:
                st.since_control = self._plan.probe_set.controls.every  # the next task re-opens the window
            return ok

    async def _send(self, st: _PlatformState, query: str, role: str = "probe") -> Fetched:
        """Send one query with retries and backoff for retryable failures."""
        fetched = await send_with_retries(
            _worker_sender.get(), st.spec, query, st.limiter, self.rng, session=st.session,
            retries=self._plan.probe_set.retries, backoff_s=self.opt.retry_backoff_s,
            max_retry_after_s=self.opt.max_retry_after_s)
        self._after_answer(st, fetched, role)
        return fetched

    def _keep(self, fetched: Fetched, pending: list[bytes] | None = None) -> str | None:
        """Keep an extra answer's body (soft probe, first answer of a retest); its key in the bodies table.

        With ``pending``, the body is stored later, in the same transaction as its measurement.
        """
        body = self._stored_body(fetched.body)
        if body is None:
            return None
        if pending is None:
            return self.store.put_body(body)
        pending.append(body)
        return hashlib.sha256(body).hexdigest()

    async def _domain_control(self, st: _PlatformState, domain: str) -> bool:
        if domain not in st.domain_controls:
            assert st.spec.soft_test is not None
            ctrl = await self._send(st, fill(st.spec.soft_test.control, {"truism": st.spec.truism, "domain": domain}))
            st.domain_controls[domain] = ctrl.classification.verdict is Verdict.not_censored
        return st.domain_controls[domain]

    async def _soft_check(self, st: _PlatformState, query: str,
                          pending: list[bytes]) -> tuple[Classification | None, dict[str, Any]]:
        spec = st.spec
        assert spec.soft_test is not None
        if st.soft_domain is None:
            for domain in spec.soft_test.domains:
                if await self._domain_control(st, domain):
                    st.soft_domain = domain
                    break
        if st.soft_domain is None:
            info = {"failure": FailureCode.soft_control_failed.value, "domains": list(spec.soft_test.domains)}
            return failure(FailureCode.soft_control_failed), info
        q = fill(spec.soft_test.probe, {"query": query, "truism": spec.truism, "domain": st.soft_domain})
        res = await self._send(st, q)
        c = res.classification
        info = {"domain": st.soft_domain, "query": q, "verdict": c.verdict.value, "failure": c.failure,
                "signals": list(c.signals), "result_items": c.result_items, "status_code": res.status,
                "body_sha256": res.body_hash, "redacted": res.redactions,
                "body_truncated": len(res.body or b"") > self.opt.max_stored_body_bytes,
                "stored_body_sha256": self._keep(res, pending)}
        return c, info

    async def _classify_once(self, st: _PlatformState, task: ProbeTask,
                             pending: list[bytes]) -> tuple[Fetched, str, dict[str, Any] | None]:
        spec = st.spec
        query = task.keyword.query(spec.combination_separator)
        with_truism = spec.hard_needs_truism
        sent = query + spec.combination_separator + spec.truism if with_truism else query
        fetched = await self._send(st, sent)
        c = apply_truism_method(spec, fetched.classification, sent_with_truism=with_truism, control_ok=st.control_ok)
        if SILENT_EMPTY in c.signals and self.opt.confirm_silent_empty and self._plan.probe_set.controls.truism:
            if not await self._confirm_control(st):
                c = failure(FailureCode.control_failed, "closing_truism_failed", *c.signals)
        soft_info = None
        if st.soft and c.verdict is Verdict.not_censored:
            soft_c, soft_info = await self._soft_check(st, query, pending)
            c = apply_soft_test(c, soft_c)
        fetched.classification = c
        return fetched, sent, soft_info

    async def _probe(self, st: _PlatformState, task: ProbeTask) -> tuple[Measurement, bytes | None, list[bytes]]:
        t0 = time.time()
        pending: list[bytes] = []  # extra bodies, stored with the measurement in one transaction
        fetched, sent, soft_info = await self._classify_once(st, task, pending)
        verdict = fetched.classification.verdict
        retested = False
        confirmed: bool | None = None
        retest_of: dict[str, Any] | None = None
        if task.role in ("probe", "item") and self._plan.probe_set.flip_retest and verdict is not Verdict.failure:
            last = st.last_known.get(task.keyword.term)
            if last is not None and last != verdict.value:
                again, sent2, soft2 = await self._classify_once(st, task, pending)
                retested = True
                v2 = again.classification.verdict
                first = fetched.classification
                retest_of = {"last_known": last, "verdict": first.verdict.value, "signals": list(first.signals),
                             "status_code": fetched.status,
                             "body_sha256": fetched.body_hash, "redacted": fetched.redactions}
                if v2 is verdict:
                    confirmed = True
                elif v2 is Verdict.failure:
                    retest_of.update(retest_failure=again.classification.failure)
                else:
                    confirmed = False
                if v2 is not verdict and v2 is not Verdict.failure:
                    # the retest disagrees: keep its answer as the verdict, the first one as retest_of
                    retest_of["stored_body_sha256"] = self._keep(fetched, pending)
                    fetched, sent, soft_info = again, sent2, soft2
        if (st.items and fetched.classification.verdict.is_removed and self.opt.confirm_removals
                and self._plan.probe_set.controls.truism and not await self._confirm_control(st)):
            removal = fetched.classification
            fetched.classification = failure(FailureCode.control_failed, CLOSING_CONTROL_FAILED, *removal.signals)
        m = self._measurement(st, task, sent, t0, time.time() - t0, fetched, fetched.attempts)
        m.test_keys.soft_probe = soft_info
        m.test_keys.retested = retested
        m.test_keys.confirmed = confirmed
        m.test_keys.retest_of = retest_of
        m.test_keys.sent_with_truism = st.spec.hard_needs_truism
        watched = self._plan.watch_terms.get(st.spec.name)
        if watched and task.role == "probe" and task.keyword.term in watched and fetched.classification.result_urls:
            wr = self._plan.probe_set.watch_results
            m.test_keys.result_urls = fetched.classification.result_urls[: wr.top if wr else 10]
        if retested and confirmed is False:
            m.test_keys.signals.append(f"flip_unconfirmed:{verdict.value}")
        if task.role == "control" and m.verdict in (Verdict.hard, Verdict.soft, Verdict.no_results):
            m.test_keys.signals.append("control_term_unexpected")  # a benign term should never look censored
        if task.role == "positive_control" and m.verdict in (Verdict.not_censored, Verdict.no_results) and st.control_ok:
            m.test_keys.signals.append(POSITIVE_MISSED)  # a term known to be censored here is not detected
            before = st.positive_last.get(task.keyword.term)
            was = f" (it was {before} in the previous run)" if before in ("hard", "soft") else ""
            self._notice(st, "positive_control_missed",
                         f"{st.spec.name}: positive control {task.keyword.term!r} not detected ({m.verdict.value}) while "
                         f"the truism works{was}: either {st.spec.name} lifted it (news: confirm by hand) or the spec no "
                         f"longer sees its notice (check: harness platforms check {st.spec.name} --query "
                         f"{task.keyword.query(st.spec.combination_separator)!r})",
                         term=task.keyword.term, verdict=m.verdict.value, previous=before)
        if m.verdict is Verdict.soft and st.profile_domains and task.role == "probe":
            await self._profile(st, task)
        return m, fetched.body, pending

    async def _profile(self, st: _PlatformState, task: ProbeTask) -> None:
        """Authorized-domain profile of a soft-censored term: which domains still show results for it."""
        spec = st.spec
        assert spec.soft_test is not None
        query = task.keyword.query(spec.combination_separator)
        for domain in st.profile_domains:
            q = fill(spec.soft_test.probe, {"query": query, "truism": spec.truism, "domain": domain})
            if not await self._domain_control(st, domain):
                await self._db(save_profile_cell, self.store, self._run_id, spec.name, task.keyword.term, domain,
                               "no_control", q, None)
                continue
            res = await self._send(st, q)
            v = res.classification.verdict
            state = {Verdict.not_censored: "allowed", Verdict.no_results: "withheld", Verdict.hard: "withheld",
                     Verdict.soft: "allowed"}.get(v, f"failure:{res.classification.failure}")
            await self._db(lambda: save_profile_cell(self.store, self._run_id, spec.name, task.keyword.term, domain,
                                                     state, q, self._keep(res)))

    def _measurement(self, st: _PlatformState, task: ProbeTask, sent: str, t0: float, runtime: float,
                     fetched: Fetched, attempts: int) -> Measurement:
        c = fetched.classification
        v = self.opt.vantage
        body = fetched.body
        size = fetched.body_size if fetched.body_size is not None else (len(body) if body is not None else None)
        truncated = fetched.truncated or (body is not None and len(body) > self.opt.max_stored_body_bytes)
        return Measurement(
            measurement_id=uuid.uuid4().hex,
            run_id=self._run_id,
            probe_set=self._plan.probe_set.name,
            task_key=task.key,
            measurement_start_time=_utc(t0),
            test_runtime=round(runtime, 4),
            test_name=ITEM_TEST_NAME if st.items else "search_censorship",
            software_version=__version__,
            probe_cc=v.probe_cc,
            probe_asn=v.probe_asn,
            vantage=v.label,
            platform=st.platform,
            role=task.role,
            input=task.keyword.term,
            components=task.keyword.components,
            list_name=task.list_name,
            category=task.keyword.category or None,
            tags=list(task.keyword.tags),
            variant=task.variant,
            query=sent,
            repeat=task.repeat,
            verdict=c.verdict,
            failure=c.failure,
            test_keys=TestKeys(
                signals=list(c.signals), result_count=c.result_count, result_items=c.result_items,
                result_domains=c.result_domains[:50], control_ok=st.control_ok, attempts=attempts,
                control_id=st.control_id if task.role != "truism" else None,
                item_spec=st.spec.name if st.items else None,
            ),
            evidence=Evidence(
                status_code=fetched.status, final_url=fetched.final_url, headers=fetched.headers,
                # the hash of the whole body as received, even when only a prefix or a redacted copy is stored
                body_sha256=fetched.body_hash if body is not None and not fetched.truncated else None,
                body_size=size, body_truncated=truncated, redacted=fetched.redactions,
            ),
        )


def _utc(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc)


def run_sync(engine: Engine, plan: RunPlan, run_id: str | None = None, progress: ProgressCallback | None = None) -> RunSummary:
    return run_interruptibly(engine.run(plan, run_id, progress))
