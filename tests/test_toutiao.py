"""Toutiao: results read from the JSON payloads inside the page (``within``), the empty bootstrap
shell retried (``empty_shell``), and the built-in spec run against a loopback server replaying
the fixture pages."""

from __future__ import annotations

import textwrap

import pytest
import yaml

from harness.errors import PlatformSpecError
from harness.models import Verdict
from harness.platforms.classify import Page, extract, matches
from harness.platforms.registry import load_spec
from harness.platforms.spec import Extractor, Matcher

from .conftest import FIXTURES
from .platform_replay import Replay, Request, run_builtin

PAGES = FIXTURES / "platforms" / "toutiao"
CARDS = "script[data-druid-card-data-id][type='application/json']"


def test_json_inside_script_elements_is_read_card_by_card():
    page = Page((PAGES / "not_censored.html").read_text(), "html")
    keys = Extractor.model_validate({"json": "data.template_key", "within": CARDS})
    assert extract(page, keys) == ["SearchBar", "undefined-default", "67-toutiao_web", "undefined-default", "LoadMore"]
    results = keys.model_copy(update={"exclude": ["SearchBar", "LoadMore"]})
    assert len(extract(page, results)) == 3
    urls = Extractor.model_validate({"json": "data.(article_url|url|display.info.url)", "within": CARDS})
    assert extract(page, urls) == ["https://www.toutiao.com/article/7000000000000000001/",
                                   "https://weather.example.cn/fuzhou", "https://www.sohu.com/a/000000003"]
    # a JSON string inside the JSON is read into; the plain page text is not JSON
    captcha = Page((PAGES / "captcha_card.html").read_text(), "html")
    verify = Matcher.model_validate({"json": "data.decision_conf.type", "values": ["verify"], "within": CARDS})
    assert matches(captcha, verify) and not matches(page, verify)
    as_object = Page('<script data-druid-card-data-id="x" type="application/json">'
                     '{"data":{"decision_conf":{"type":"verify"}}}</script><script data-druid-card-data-id="y" '
                     'type="application/json">not json</script>', "html")
    assert matches(as_object, verify)


@pytest.mark.parametrize("signals,problem", [
    ({"no_results": [{"text": "x", "within": "script"}], "result_item": {"css": "div"}}, "`within` only goes with `json`"),
    ({"no_results": ["x"], "result_item": {"css": "div", "within": "script"}}, "`within` only goes with `json`"),
    ({"no_results": [{"json": "a", "within": "div[["}], "result_item": {"css": "div"}}, "invalid CSS selector"),
])
def test_within_is_checked_when_the_spec_loads(tmp_path, signals, problem):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"name": "x", "base_url": "http://127.0.0.1:1", "truism": "的",
                                    "request": {"params": {"q": "{query}"}}, "signals": signals}))
    with pytest.raises(PlatformSpecError, match=problem.replace("[", r"\[")):
        load_spec(path)


def test_a_json_platform_cannot_use_within(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(textwrap.dedent("""\
        name: x
        base_url: http://127.0.0.1:1
        truism: 的
        request: {params: {q: "{query}"}}
        response_format: json
        signals: {no_results: [{json: a, within: script}], result_item: {json: b}}
        """))
    with pytest.raises(PlatformSpecError, match="cannot use css matchers or `within`"):
        load_spec(path)


# --------------------------------------------------------------------------- the loopback platform

PAGE_FOR = {"结果": "not_censored.html", "引用": "quoted_notice_not_censored.html", "骨架": "only_chrome_cards.html",
            "无结果": "no_results_card.html", "验证": "captcha_card.html", "空壳": "empty_shell.html",
            "改版": "unexpected_page.html"}
EXPECTED = {
    "结果": ("not_censored", None, 3),
    "引用": ("not_censored", None, 1),  # the abstract quotes 根据相关法律法规和政策: not a notice
    "骨架": ("hard", None, 0),  # furniture only: empty, and the truism works
    "无结果": ("hard", None, 0),
    "验证": ("failure", "captcha", None),
    "空壳": ("failure", "empty_shell", None),
    "改版": ("failure", "unexpected_page", None),
    "一次空壳": ("not_censored", None, 3),  # the shell once, then the page: recovered by the retry
    "跳转": ("failure", "captcha", None),  # a 302 to a verify page (searxng's rule; placeholder host)
    "天气": ("not_censored", None, 3),
}


def toutiao_server():
    shells_served: dict[str, int] = {}

    def handle(req: Request) -> tuple[int, dict[str, str], bytes]:
        if req.path != "/search":
            return 404, {}, b""
        term = req.params["keyword"].removesuffix(" 的")
        if req.params["keyword"] == "的" or term == "天气":
            name = "not_censored.html"
        elif term == "跳转":
            return 302, {"Location": "http://verify.invalid/captcha/?from=search"}, b""
        elif term == "一次空壳":
            shells_served[term] = shells_served.get(term, 0) + 1
            name = "empty_shell.html" if shells_served[term] == 1 else "not_censored.html"
        else:
            name = PAGE_FOR[term]
        return 200, {"Content-Type": "text/html; charset=utf-8"}, (PAGES / name).read_bytes()

    return handle


def test_a_run_of_the_builtin_spec_gives_the_right_verdict_for_every_page(tmp_path):
    with Replay(toutiao_server()) as server:
        probes, truisms, st = run_builtin("toutiao", server.url, [*PAGE_FOR, "一次空壳", "跳转"], tmp_path,
                                            retries=2)
        st.close()
        sent = [r.params["keyword"] for r in server.requests]
    assert truisms and all(t.verdict is Verdict.not_censored for t in truisms)
    for term, (verdict, code, items) in EXPECTED.items():
        m = probes[term]
        assert (m.verdict.value, m.failure) == (verdict, code), (term, m.verdict, m.failure, m.test_keys.signals)
        if items is not None:
            assert m.test_keys.result_items == items, term
    assert probes["一次空壳"].test_keys.attempts == 2
    assert probes["空壳"].test_keys.attempts == 3, "the shell is retried (retries: 2), then a failure"
    assert probes["改版"].test_keys.attempts == 1, "an unknown layout is not retried"
    assert sent.count("空壳 的") == 3
    assert probes["跳转"].test_keys.attempts == 3 and "verify_redirect" in probes["跳转"].test_keys.signals
