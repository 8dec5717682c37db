"""WeChat search through Sogou (weixin.sogou.com): the built-in spec against pages from public evidence."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import yaml

from harness.measure.request import fetch
from harness.measure.transport import Sender
from harness.platforms.classify import classify_http
from harness.platforms.fixtures import FixtureCase, classify_case
from harness.platforms.registry import PlatformRegistry

from .conftest import FIXTURES

PAGES = FIXTURES / "platforms" / "weixin_sogou"


@pytest.fixture(scope="module")
def spec():
    return PlatformRegistry.default(include_cwd=False).get("weixin_sogou")


@pytest.mark.parametrize("case", yaml.safe_load((PAGES / "expected.yaml").read_text(encoding="utf-8")),
                         ids=lambda c: c["file"] + ("+truism" if c.get("sent_with_truism") else ""))
def test_fixture_page_gives_the_expected_verdict(spec, case):
    c = classify_case(spec, PAGES, FixtureCase.model_validate(case))  # a redirect through the spec's location signals
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


def test_the_antispider_redirect_is_a_captcha_read_from_its_location_never_followed(spec):
    doc = yaml.safe_load((PAGES / "antispider.redirect.yaml").read_text(encoding="utf-8"))
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        if request.url.path == "/weixin":
            return httpx.Response(doc["status"], headers={"location": doc["location"]})
        return httpx.Response(200, headers={"content-type": "text/html; charset=utf-8"},
                              content=(PAGES / "antispider.html").read_bytes())

    async def go():
        async with Sender.open(5.0, transport=httpx.MockTransport(handler)) as sender:
            return await fetch(sender, spec, "高考")

    got = asyncio.run(go())
    assert got.classification.failure == "captcha" and "antispider_redirect" in got.classification.signals
    assert seen == ["/weixin"], "the anti-spider page is not requested: sources say stop at the first one"
    # a page served in place (no redirect) is still read as the anti-spider page
    page = classify_http(spec, 200, {}, (PAGES / "antispider.html").read_bytes())
    assert page.failure == "captcha" and "antispider_notice" in page.signals
