"""Douyin through the browser transport, against a loopback replay of the fixture answers.

The loopback page stands in for www.douyin.com/search/<q>: its script calls the search API path
(as the real page does, with a token only the page knows) and the API answers a fixture file per
term. This proves the mechanism (capture of the API's JSON answer, classification by the built-in
spec, scrubbing), not Douyin: the spec stays unverified against the real site.
"""

from __future__ import annotations

import asyncio
from urllib.parse import unquote

import pytest

from harness.measure.request import fetch
from harness.measure.transport import Sender
from harness.models import Verdict
from harness.platforms.registry import PlatformRegistry

from .conftest import FIXTURES
from .platform_replay import Replay, Request, run_builtin

pytestmark = pytest.mark.xdist_group("chromium")

PAGES = FIXTURES / "platforms" / "douyin"
PAGE_COOKIE = "ttwid=1%7CPageSetSessionValue0123456789abcdef"
API = "/aweme/v1/web/general/search/single/"

ANSWER_FOR = {
    "结果": "not_censored.json", "脏词": "hit_dirt_words.json", "联邦": "federation_empty.json",
    "静默": "silent_empty.json", "验证": "verify_check.json", "鲨鱼": "antispam_hit_shark.json",
    "登录": "login_required.json", "失效": "invalid_login.json", "参数": "params_check.json", "会话": "empty_session.json",
    "空体": "empty_body.txt", "封禁": "blocked_body.txt", "未知": "unexpected_page.json",
}
EXPECTED = {
    "结果": ("not_censored", None, "results"),
    "脏词": ("hard", None, "hit_dirt_words"),
    "联邦": ("hard", None, "federation_empty"),  # contested value: hard only through the truism method
    "静默": ("hard", None, "silent_empty_with_truism"),
    "验证": ("failure", "captcha", "verify_check"),
    "鲨鱼": ("failure", "captcha", "antispam_check"),
    "登录": ("failure", "session_required", "login"),
    "失效": ("failure", "session_required", "invalid_login"),
    "参数": ("failure", "session_invalid", "params_check"),
    "会话": ("failure", "session_invalid", "empty_session"),
    "空体": ("failure", "session_invalid", "empty_body"),
    "封禁": ("failure", "session_invalid", "blocked"),
    "未知": ("failure", "unexpected_page", None),
    "天气": ("not_censored", None, "results"),
}

SEARCH_PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>搜索</title></head><body><div id="root"></div>
<script>
  var q = decodeURIComponent(location.pathname.split("/").pop());
  var token = btoa(unescape(encodeURIComponent(q))).split("").reverse().join("");
  if (q !== "不调用") {
    fetch("%s?device_platform=webapp&aid=6383&keyword=" + encodeURIComponent(q) + "&msToken=" + token)
      .then(function (r) { return r.text(); })
      .then(function (t) { document.getElementById("root").textContent = t.length; });
  }
</script></body></html>""" % API


def douyin_server(req: Request) -> tuple[int, dict[str, str], bytes]:
    if req.path.startswith("/search/"):
        return 200, {"Content-Type": "text/html; charset=utf-8", "Set-Cookie": PAGE_COOKIE + "; Path=/"}, \
            SEARCH_PAGE.encode()
    if req.path != API:
        return 404, {"Content-Type": "text/plain"}, b""
    keyword = req.params.get("keyword", "")
    term = keyword.removesuffix("+的")
    name = "not_censored.json" if keyword == "的" or term == "天气" else ANSWER_FOR[term]
    body = (PAGES / name).read_bytes()
    if name == "not_censored.json":  # an answer that echoes the session cookie the page set
        body = body.replace(b'"fatal_item_ids"', b'"echo": "%s", "fatal_item_ids"' % unquote(PAGE_COOKIE).encode())
    ctype = "application/json; charset=utf-8" if name.endswith(".json") else "text/plain; charset=utf-8"
    return 200, {"Content-Type": ctype}, body


def test_a_run_of_the_builtin_douyin_spec_through_the_browser(browser, tmp_path):
    with Replay(douyin_server) as server:
        probes, truisms, st = run_builtin("douyin", server.url, list(ANSWER_FOR), tmp_path, concurrency=2,
                                            browser=browser)
        api_calls = [r for r in server.requests if r.path == API]
    assert truisms and all(t.verdict is Verdict.not_censored for t in truisms)
    for term, (verdict, code, signal) in EXPECTED.items():
        m = probes[term]
        assert (m.verdict.value, m.failure) == (verdict, code), (term, m.verdict, m.failure, m.test_keys.signals)
        if signal:
            assert signal in m.test_keys.signals, (term, m.test_keys.signals)
    assert probes["结果"].test_keys.result_items == 3
    # the page computed the token and sent its own request; the run sent term + truism
    assert all(r.params.get("msToken") for r in api_calls)
    assert {r.params["keyword"] for r in api_calls} >= {"脏词+的", "的"}
    # the evidence is the captured API answer, with the cookie the page set scrubbed from the body
    # and the page's token redacted from the URL
    m = probes["结果"]
    body = st.get_body(m.evidence.stored_key)  # the stored form: the page-set cookie redacted
    st.close()
    assert b'"aweme_id"' in body and b"PageSetSessionValue" not in body and b"REDACTED" in body
    assert API in (m.evidence.final_url or "") and "msToken=REDACTED" in m.evidence.final_url
    stored = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and "replay.db" in p.name)
    assert b"PageSetSessionValue" not in stored


def test_a_page_that_never_calls_the_api_is_a_timeout_not_a_verdict(browser):
    spec = PlatformRegistry.default(include_cwd=False).get("douyin")

    async def one(url: str):
        async with Sender.open(2.0) as sender:
            sender.browser = browser
            return await fetch(sender, spec.model_copy(update={"base_url": url}), "不调用")

    with Replay(douyin_server) as server:
        got = asyncio.run(one(server.url))
    assert got.classification.verdict is Verdict.failure and got.classification.failure == "timeout"
    # normally the capture wait ends it; on a machine too loaded to even load the page, the deadline does
    assert {"browser:no_capture", "deadline"} & set(got.classification.signals)
