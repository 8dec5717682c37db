"""``harness platforms check``: send a platform's truism once and show what its answer shows.

A researcher writing or repairing a spec runs this first: it says whether the truism
has results (the platform is usable), which of the spec's signals the live page showed
and which it did not, and (with a soft test) whether the restricted truism works.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import httpx

from ..platforms.classification import Classification
from ..platforms.classify import decode_page, evaluate_signals
from ..platforms.spec import PlatformSpec
from .sessions import PlatformSession, check_proxy
from .signals import run_interruptibly
from .transport import Sender


@dataclass
class QueryCheck:
    query: str
    url: str | None
    status: int | None
    verdict: str
    failure: str | None
    signals: list[str]
    matched: dict[str, list[str]] = field(default_factory=dict)
    missing: dict[str, list[str]] = field(default_factory=dict)
    result_items: int = 0
    result_count: int | None = None
    result_domains: list[str] = field(default_factory=list)
    body_bytes: int | None = None


@dataclass
class CheckReport:
    platform: str
    base_url: str
    truism: QueryCheck
    soft_control: QueryCheck | None = None
    undocumented: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return self.truism.verdict == "not_censored"

    def as_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return {**asdict(self), "healthy": self.healthy}


async def _check_query(client: Sender, spec: PlatformSpec, query: str,
                       session: PlatformSession) -> QueryCheck:
    from .request import fetch

    fetched = await fetch(client, spec, query, session=session)
    c: Classification = fetched.classification
    qc = QueryCheck(query, fetched.final_url, fetched.status, c.verdict.value, c.failure, list(c.signals),
                    result_items=c.result_items or 0, result_count=c.result_count, result_domains=c.result_domains[:20],
                    body_bytes=fetched.body_size)
    if fetched.body is not None and not fetched.truncated and fetched.status and 200 <= fetched.status < 300:
        page = decode_page(spec, fetched.headers, fetched.body)
        if not isinstance(page, Classification):
            report = evaluate_signals(spec, page)
            qc.matched, qc.missing = report.matched, report.missing
    return qc


async def check_platform(spec: PlatformSpec, *, query: str | None = None, proxy: str | None = None,
                         session: PlatformSession | None = None, timeout_s: float = 20.0,
                         transport: httpx.AsyncBaseTransport | None = None, browser: Any = None) -> CheckReport:
    """``browser``: a started :class:`harness.measure.browser.Browser` to use for a browser spec
    (else one is launched for the check and closed after it)."""
    session = session or PlatformSession.build(env_names=spec.request.env_names(), proxy=proxy, platform=spec.name)
    owned = None
    if spec.transport == "browser" and browser is None:
        from .browser import Browser

        browser = owned = Browser.launch(proxy=proxy, needed_by=spec.name)
    try:
        return await _check(spec, query, proxy, session, timeout_s, transport, browser)
    finally:
        if owned is not None:
            await asyncio.get_running_loop().run_in_executor(None, owned.close)


async def _check(spec: PlatformSpec, query: str | None, proxy: str | None, session: PlatformSession,
                 timeout_s: float, transport: httpx.AsyncBaseTransport | None, browser: Any) -> CheckReport:
    async with Sender.open(timeout_s, proxy=check_proxy(proxy) if proxy and transport is None else None,
                           transport=transport) as client:
        client.browser = browser
        truism = await _check_query(client, spec, query or spec.truism, session)
        soft = None
        # a failed truism says the platform cannot be checked now: the restricted truism is not sent
        if spec.soft_test is not None and query is None and truism.failure is None:
            from .request import fill

            q = fill(spec.soft_test.control, {"truism": spec.truism, "domain": spec.soft_test.domains[0]})
            soft = await _check_query(client, spec, q, session)
    return CheckReport(spec.name, spec.base_url, truism, soft, list(spec.undocumented))


def check_platform_sync(spec: PlatformSpec, **kwargs: Any) -> CheckReport:
    return run_interruptibly(check_platform(spec, **kwargs))
