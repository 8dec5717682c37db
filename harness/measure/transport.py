"""How the harness sends a request: straight through an httpx transport.

Probes do not go through ``httpx.AsyncClient``. The harness needs none of what the client
adds on top of its transport, and two of those things would be wrong for a measurement:

- the client's **cookie jar** would carry cookies a platform sets from one probe into the
  next (the verdict of one term could then depend on the term probed before it);
  the only cookies sent are a session's configured ones (:mod:`harness.measure.sessions`);
- its **redirect handling**: the engine follows redirects by hand, on the spec's origin only;
- its auth flows and event hooks are unused.

Leaving the client out also makes each request about a third cheaper (``bench/engine``).
A request carries :data:`DEFAULT_HEADERS` overridden by the spec's headers, and nothing else.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import certifi
import httpx

# What the harness can decode (``engine._read_capped``): never advertise br or zstd.
DEFAULT_HEADERS: dict[str, str] = {
    "Accept": "*/*",
    "Accept-Encoding": "gzip, deflate",
    "User-Agent": f"python-httpx/{httpx.__version__}",
}


@functools.lru_cache(maxsize=1)
def tls_context() -> ssl.SSLContext:
    """One TLS context for every sender of the process: loading the CA bundle costs ~50 ms."""
    return ssl.create_default_context(cafile=certifi.where())


def merge_headers(headers: dict[str, str]) -> dict[str, str]:
    """:data:`DEFAULT_HEADERS` with ``headers`` on top (names compared case-insensitively)."""
    given = {k.lower() for k in headers}
    out = {k: v for k, v in DEFAULT_HEADERS.items() if k.lower() not in given}
    out.update(headers)
    return out


class Sender:
    """Sends requests through one httpx transport (a connection pool, a proxy, or a test's
    ``httpx.MockTransport``). Use as an async context manager or call :meth:`aclose`."""

    browser: Any = None
    """The run's :class:`harness.measure.browser.Browser`, for specs with ``transport: browser`` (else None)."""

    def __init__(self, transport: httpx.AsyncBaseTransport, timeout: httpx.Timeout, *, owns_transport: bool = True):
        self.transport = transport
        self.timeout = timeout
        self._timeout_ext = timeout.as_dict()
        self._owns_transport = owns_transport

    @classmethod
    def open(cls, timeout: float | httpx.Timeout, *, proxy: str | None = None,
             transport: httpx.AsyncBaseTransport | None = None, limits: httpx.Limits | None = None,
             verify: ssl.SSLContext | None = None) -> "Sender":
        """A sender over ``transport`` (shared, not closed by this sender), or over a new
        connection pool, through ``proxy`` if one is given (HTTP(S) or SOCKS5)."""
        t = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        if transport is not None:
            return cls(transport, t, owns_transport=False)
        pool = httpx.AsyncHTTPTransport(verify=verify or tls_context(), trust_env=False, proxy=proxy,
                                        limits=limits or httpx.Limits(max_connections=2, max_keepalive_connections=1))
        return cls(pool, t)

    @asynccontextmanager
    async def stream(self, method: str, url: str, *, headers: dict[str, str] | None = None, json: Any = None,
                     data: dict[str, str] | None = None) -> AsyncIterator[httpx.Response]:
        """The response, its body not read yet; it is closed when the block ends."""
        request = httpx.Request(method, url, headers=merge_headers(headers or {}), json=json, data=data,
                                extensions={"timeout": self._timeout_ext})
        response = await self.transport.handle_async_request(request)
        response.request = request
        try:
            yield response
        finally:
            await response.aclose()

    async def aclose(self) -> None:
        if self._owns_transport:
            await self.transport.aclose()

    async def __aenter__(self) -> "Sender":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
