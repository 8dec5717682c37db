"""WeChat search through Sogou (weixin.sogou.com): the built-in spec against pages from public evidence."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import yaml

from harness.measure.request import fetch
from harness.measure.transport import Sender
from harness.platforms.classify import apply_truism_method, classify_http
from harness.platforms.registry import PlatformRegistry

from .conftest import FIXTURES

PAGES = FIXTURES / "platforms" / "weixin_sogou"


@pytest.fixture(scope="module")
def spec():
    return PlatformRegistry.default(include_cwd=False).get("weixin_sogou")


@pytest.mark.parametrize("case", yaml.safe_load((PAGES / "expected.yaml").read_text(encoding="utf-8")),
                         ids=lambda c: c["file"] + ("+truism" if c.get("sent_with_truism") else ""))
def test_fixture_page_gives_the_expected_verdict(spec, case):
    c = classify_http(spec, 200, {"content-type": "text/html"}, (PAGES / case["file"]).read_bytes())
    c = apply_truism_method(spec, c, sent_with_truism=case.get("sent_with_truism", False), control_ok=True)
    assert c.verdict.value == case["verdict"], (c.verdict, c.failure, c.signals)
    assert c.failure == case.get("failure")
    assert set(case.get("signals", [])) <= set(c.signals)
    for key in ("result_items", "result_count"):
        if key in case:
            assert getattr(c, key) == case[key]


def test_every_outcome_the_spec_can_give_has_a_fixture(spec):
    covered = set()
    for case in yaml.safe_load((PAGES / "expected.yaml").read_text(encoding="utf-8")):
        covered.add(case["verdict"] if case["verdict"] != "failure" else f"failure:{case['failure']}")
    assert spec.possible_outcomes() <= covered


def test_result_links_are_kept_in_page_order(spec):
    c = classify_http(spec, 200, {}, (PAGES / "results_current.html").read_bytes())
    assert c.result_urls == ["/link?url=URL_TOKEN_0&type=2&query=QUERY&token=TOKEN"]
    old = classify_http(spec, 200, {}, (PAGES / "results_2017.html").read_bytes())
    assert len(old.result_urls) == 2 and old.result_urls[0].startswith("http://mp.weixin.qq.com/s?src=3&timestamp=")


def test_the_antispider_redirect_is_a_captcha_not_a_verdict(spec):
    doc = yaml.safe_load((PAGES / "antispider.redirect.yaml").read_text(encoding="utf-8"))
    page = (PAGES / "antispider.html").read_bytes()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/weixin":
            return httpx.Response(doc["status"], headers={"location": doc["location"]})
        if request.url.path == "/antispider/":
            return httpx.Response(200, headers={"content-type": "text/html; charset=utf-8"}, content=page)
        return httpx.Response(404)

    async def go():
        async with Sender.open(5.0, transport=httpx.MockTransport(handler)) as sender:
            return await fetch(sender, spec, "高考")

    got = asyncio.run(go())
    assert got.classification.failure == "captcha" and "antispider_notice" in got.classification.signals
    assert "/antispider/" in (got.final_url or "")
