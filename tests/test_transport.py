"""The harness's HTTP layer: what a request carries, and what it must not carry over."""

from __future__ import annotations

import asyncio

import httpx

from harness.measure.request import fetch
from harness.measure.transport import DEFAULT_HEADERS, Sender, merge_headers
from harness.platforms.registry import PlatformRegistry

from .conftest import FIXTURES, run_probe_set


def test_spec_headers_override_the_defaults_whatever_their_case():
    out = merge_headers({"user-agent": "Mozilla/5.0 test", "Accept-Language": "zh-CN"})
    assert out["user-agent"] == "Mozilla/5.0 test"
    assert "User-Agent" not in out
    assert out["Accept-Encoding"] == "gzip, deflate"  # only codings the harness can decode
    assert out["Accept-Language"] == "zh-CN"
    assert merge_headers({}) == DEFAULT_HEADERS


def test_cookies_a_platform_sets_are_not_sent_with_the_next_probe(sandbox, store_path):
    """Each probe stands alone: a cookie set by one answer must not colour the next verdict."""
    seen: list[tuple[str, str | None]] = []

    def answer_with_a_cookie(handler, query):
        seen.append((query, handler.headers.get("Cookie")))
        body, ctype = handler.real_answer(query)
        handler.send_body(200, body, ctype, {"Set-Cookie": "tracking=abc123; Path=/"})
        return True

    sandbox.responder = answer_with_a_cookie
    summary = run_probe_set(FIXTURES / "probes" / "mini.yaml", store_path, sandbox)
    assert summary.status == "complete" and sum(summary.failures.values()) == 0
    assert len(seen) > 10
    assert [q for q, cookie in seen if cookie is not None] == []


def test_a_sender_over_an_injected_transport_leaves_it_open():
    calls = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, html="<div class='result'>x</div>")

    transport = httpx.MockTransport(answer)
    spec = PlatformRegistry.default(include_cwd=False).get("sandbox").model_copy(update={"base_url": "http://sb.test"})

    async def go():
        async with Sender.open(5, transport=transport) as sender:
            first = await fetch(sender, spec, "天气")
        async with Sender.open(5, transport=transport) as sender:  # the shared transport still works
            second = await fetch(sender, spec, "天气")
        return first, second

    first, second = asyncio.run(go())
    assert first.status == 200 and second.status == 200
    assert calls[0].headers["accept-encoding"] == "gzip, deflate"
    assert calls[0].extensions["timeout"]["read"] == 5
