"""A platform as an isolation oracle: ``await oracle(query) -> censored?``.

:func:`harness.isolation.aisolate` needs a yes/no answer per query. Against a platform
"yes" means a **hard or soft verdict** under the same method as a run (see
:mod:`harness.measure.engine`): the truism must work before the first query; a platform that
censors silently gets the truism appended; a page with results is soft-tested with the
spec's restricted-truism templates. ``no_results`` is not censorship.

A failure (timeout, reset, 429, 5xx, CAPTCHA, an unreadable page) is **never** an
answer: it is retried with exponential backoff (honouring ``Retry-After``), and when a
query keeps failing :class:`OracleFailure` is raised, so the isolation stops with a
partial result marked incomplete instead of guessing.

Built only from the engine's public pieces (``fetch``, ``RateLimiter``, ``fill``); the
small retry loop duplicates ``Engine._send`` on purpose so the engine stays untouched.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pathlib import Path

import httpx

from ..errors import HarnessError
from ..measure.pacing import RateLimiter, send_with_retries
from ..measure.request import Fetched, fill
from ..measure.sessions import PlatformSession
from ..measure.transport import Sender
from ..models import RateLimit, Verdict
from ..platforms.spec import PlatformSpec

if TYPE_CHECKING:
    from .evidence import IsolationEvidence


class OracleFailure(HarnessError):
    """A query kept failing (or the platform's control failed): no verdict could be had."""

    def __init__(self, message: str, query: str | None = None, code: str | None = None, attempts: int = 0):
        self.query = query
        self.code = code
        self.attempts = attempts
        super().__init__(message)


@dataclass
class OracleOptions:
    """How hard the oracle tries. Defaults are conservative for real platforms."""

    retries: int = 4
    retry_backoff_s: float = 5.0
    max_retry_after_s: float = 600.0
    timeout_s: float = 20.0
    soft_test: bool = True
    control_every: int = 25  # re-check the truism every this many answers (0: only at start)
    rate_limit: RateLimit | None = None  # None: the spec's own rate limit
    proxy: str | None = None
    transport: httpx.AsyncBaseTransport | None = None
    seed: int | None = None
    cookies_file: Path | None = None  # the platform's cookies (Netscape cookies.txt or JSON); never stored


@dataclass
class OracleAnswer:
    """One answered query, with what the verdict rests on."""

    query: str
    sent: str
    verdict: Verdict
    signals: list[str]
    status_code: int | None
    attempts: int
    soft: dict[str, Any] | None = None

    @property
    def censored(self) -> bool:
        return self.verdict.is_censored


@dataclass
class OracleStats:
    requests: int = 0
    failed_attempts: int = 0
    failures: dict[str, int] = field(default_factory=dict)


def check_isolatable(spec: PlatformSpec) -> None:
    """Isolation sends plain HTTP requests: a spec that needs the browser transport is refused
    (one line, before anything is sent or stored)."""
    if spec.transport == "browser":
        raise HarnessError(f"{spec.name}: isolate and discover send plain HTTP requests and this spec needs the "
                           "browser transport (transport: browser); measure its terms with `harness run` instead")


class PlatformOracle:
    """``async with PlatformOracle(spec) as oracle: censored = await oracle("新疆 集中营")``."""

    def __init__(self, spec: PlatformSpec, options: OracleOptions | None = None,
                 evidence: IsolationEvidence | None = None):
        check_isolatable(spec)
        self.spec = spec
        self.opt = options or OracleOptions()
        self.evidence = evidence  # where every answer is stored (None: nowhere)
        self.rng = random.Random(self.opt.seed)
        self.limiter = RateLimiter(self.opt.rate_limit or spec.rate_limit, self.rng)
        self.answers: list[OracleAnswer] = []
        self.stats = OracleStats()
        self._sender: Sender | None = None
        # what a priming adapter learns lasts the oracle's life; cookies and secrets are scrubbed from evidence
        self._session = (PlatformSession.build(cookies_file=self.opt.cookies_file, proxy=self.opt.proxy,
                                               platform=spec.name) if self.opt.cookies_file else PlatformSession())
        self._control_ok = False
        self._checked_at = -1
        self._soft_domain: str | None = None

    @property
    def separator(self) -> str:
        return self.spec.combination_separator

    async def __aenter__(self) -> "PlatformOracle":
        self._sender = Sender.open(self.opt.timeout_s, proxy=self.opt.proxy, transport=self.opt.transport)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._sender is not None:
            await self._sender.aclose()
            self._sender = None

    async def _send(self, query: str, *, role: str = "isolation", asked: str | None = None) -> Fetched:
        """One classified answer that is not a failure, or :class:`OracleFailure`.

        A query that keeps failing is stored as a failure (``asked``: the isolation query it
        served, when ``query`` is a soft-test probe) before the exception is raised."""
        assert self._sender is not None, "use PlatformOracle as an async context manager"

        def count(fetched: Fetched) -> None:
            self.stats.requests += 1
            code = fetched.classification.failure
            if code is not None:
                self.stats.failed_attempts += 1
                self.stats.failures[code] = self.stats.failures.get(code, 0) + 1

        last = await send_with_retries(self._sender, self.spec, query, self.limiter, self.rng,
                                       retries=self.opt.retries, backoff_s=self.opt.retry_backoff_s,
                                       max_retry_after_s=self.opt.max_retry_after_s, retry_all=True,
                                       on_attempt=count, session=self._session)
        if last.classification.failure is None:
            return last
        code = last.classification.failure
        if self.evidence is not None:
            self.evidence.record("truism" if role == "truism" else "isolation", asked or query, query, last,
                                 separator=self.separator, control_ok=False if role == "truism" else None)
        raise OracleFailure(
            f"{self.spec.name}: query {query!r} failed {last.attempts} time(s) (last: {code}); "
            "no verdict taken", query, code, last.attempts,
        )

    async def check_control(self) -> None:
        """The truism must return results before any verdict is believed."""
        t0 = time.time()
        fetched = await self._send(self.spec.truism, role="truism")
        ok = fetched.classification.verdict is Verdict.not_censored
        if self.evidence is not None:
            self.evidence.record("truism", self.spec.truism, self.spec.truism, fetched, t0=t0,
                                 runtime=time.time() - t0, control_ok=ok)
        if not ok:
            raise OracleFailure(
                f"{self.spec.name}: the control query (truism {self.spec.truism!r}) returned "
                f"{fetched.classification.verdict.value}, not results; the platform cannot be measured now",
                self.spec.truism, "control_failed", fetched.attempts,
            )
        self._control_ok = True

    async def _soft(self, query: str) -> tuple[dict[str, Any], bytes | None]:
        st = self.spec.soft_test
        assert st is not None
        if self._soft_domain is None:
            for domain in st.domains:
                ctrl = await self._send(fill(st.control, {"truism": self.spec.truism, "domain": domain}),
                                        asked=query)
                if ctrl.classification.verdict is Verdict.not_censored:
                    self._soft_domain = domain
                    break
            if self._soft_domain is None:
                raise OracleFailure(f"{self.spec.name}: no soft-test domain has results for the truism",
                                    None, "soft_control_failed")
        sent = fill(st.probe, {"query": query, "truism": self.spec.truism, "domain": self._soft_domain})
        res = await self._send(sent, asked=query)
        c = res.classification
        return ({"domain": self._soft_domain, "query": sent, "verdict": c.verdict.value, "signals": list(c.signals),
                 "result_items": c.result_items, "status_code": res.status}, res.body)

    def query_room(self) -> int | None:
        """How many characters of a text fit in every query this oracle sends for it (the hard query, with
        the truism when the spec needs it, and the soft-test query), under ``request.max_query_chars``;
        None when the spec sets no limit."""
        spec = self.spec
        limit = spec.request.max_query_chars
        if limit is None:
            return None
        extra = len(spec.combination_separator + spec.truism) if spec.hard_needs_truism else 0
        if self.opt.soft_test and spec.soft_test is not None:
            extra = max(extra, *(len(fill(spec.soft_test.probe, {"query": "", "truism": spec.truism, "domain": d}))
                                 for d in spec.soft_test.domains))
        return max(limit - extra - QUERY_SLACK, 1)

    async def answer(self, query: str) -> OracleAnswer:
        """Classify one query like a run does (hard test, then soft test)."""
        every = self.opt.control_every
        if not self._control_ok or (every and self.answers and len(self.answers) % every == 0
                                    and self._checked_at != len(self.answers)):
            self._checked_at = len(self.answers)
            await self.check_control()
        spec = self.spec
        t0 = time.time()
        sent = query + spec.combination_separator + spec.truism if spec.hard_needs_truism else query
        fetched = await self._send(sent, asked=query)
        c = fetched.classification
        verdict = c.verdict
        signals = list(c.signals)
        soft_info = None
        soft_body = None
        if spec.hard_needs_truism and verdict is Verdict.no_results:
            verdict = Verdict.hard
            signals.append("silent_empty_with_truism")
        if verdict is Verdict.not_censored and self.opt.soft_test and spec.soft_test is not None:
            soft_info, soft_body = await self._soft(query)
            if soft_info["verdict"] in (Verdict.no_results.value, Verdict.hard.value):
                verdict = Verdict.soft
                signals.append("soft_restricted_truism_empty")
        ans = OracleAnswer(query, sent, verdict, signals, fetched.status, fetched.attempts, soft_info)
        self.answers.append(ans)
        if self.evidence is not None:
            self.evidence.record("isolation", query, sent, fetched, separator=self.separator, verdict=verdict,
                                 signals=signals, t0=t0, runtime=time.time() - t0, control_ok=self._control_ok,
                                 soft_probe=soft_info, soft_body=soft_body)
        return ans

    async def __call__(self, query: str) -> bool:
        return (await self.answer(query)).censored


@dataclass
class PlatformIsolation:
    """The outcome of isolating one text against one platform."""

    platform: str
    text: str
    rules: list[tuple[str, ...]]
    queries: int
    requests: int
    complete: bool
    budget: int | None
    error: str | None = None
    censored: bool | None = None  # the whole text's verdict (None if even that failed)
    run_id: str | None = None  # the store run holding the queries as evidence (None: not stored)
    read_chars: int | None = None  # set when the platform reads only this many characters: the text's head was isolated

    def to_dict(self) -> dict[str, Any]:
        return {"platform": self.platform, "text": self.text, "read_chars": self.read_chars, "censored": self.censored,
                "rules": [list(r) for r in self.rules], "queries": self.queries, "requests": self.requests,
                "complete": self.complete, "budget": self.budget, "error": self.error, "run_id": self.run_id}


@dataclass
class Priors:
    """Known rules and how many of them use each component (see ``harness.isolation.algorithm``)."""

    rules: list[tuple[str, ...]] = field(default_factory=list)
    components: dict[str, int] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)  # the keyword lists they came from

    def describe(self) -> dict[str, Any]:
        return {"rules": len(self.rules), "components": len(self.components), "files": list(self.files)}


QUERY_SLACK = 8
"""Characters kept free under ``max_query_chars`` for what the algorithm's queries add to a text's
length (separators between pieces, a component's characters repeated in two overlapping pieces):
at most 6 seen over 300 random texts of 20-50 characters with 1-2 rules."""

ProgressFn = Callable[[int, int], None]
"""``progress(queries, rules)``: isolation queries answered so far, rules certified so far."""


async def isolate_with(oracle: PlatformOracle, text: str, budget: int | None = None,
                       priors: Priors | None = None, progress: ProgressFn | None = None) -> PlatformIsolation:
    """Isolate ``text`` through an open oracle; an :class:`OracleFailure` ends it incomplete.

    A platform whose spec sets ``request.max_query_chars`` reads only that many characters of a
    query (Baidu: 38), and a longer query is refused as ``query_too_long``. So only the text's head
    is isolated: as many characters as fit in every query sent for it, the truism and the soft
    test's ``site:`` restriction included (:meth:`PlatformOracle.query_room`); the outcome says how
    many in ``read_chars``."""
    from .algorithm import InconsistentOracle, aisolate

    room = oracle.query_room()
    read_chars = None
    if room is not None and len(text) > room:
        text, read_chars = text[:room], room
    before = oracle.stats.requests
    if oracle.evidence is not None:
        oracle.evidence.text = text
    result = await aisolate(text, oracle, separator=oracle.separator, budget=budget,
                            known_rules=priors.rules if priors else None,
                            known_components=priors.components if priors else None,
                            stop_on=(OracleFailure, InconsistentOracle), progress=progress)
    censored = result.trace[0][1] if result.trace else None
    return PlatformIsolation(
        oracle.spec.name, text, result.rules, result.queries, oracle.stats.requests - before, result.complete,
        budget, str(result.error) if result.error else None, censored,
        run_id=oracle.evidence.run_id if oracle.evidence is not None else None, read_chars=read_chars,
    )


async def isolate_on_platform(spec: PlatformSpec, text: str, budget: int | None = None,
                              options: OracleOptions | None = None, priors: Priors | None = None,
                              evidence: IsolationEvidence | None = None,
                              progress: ProgressFn | None = None) -> PlatformIsolation:
    """Isolate one text; with ``evidence``, every answer is stored in its run (closed at the end)."""
    complete = False
    try:
        async with PlatformOracle(spec, options, evidence) as oracle:
            res = await isolate_with(oracle, text, budget, priors, progress)
        complete = True
        return res
    finally:
        if evidence is not None:
            evidence.close(complete)
