"""Douyin videos as watched items through the browser transport, against a loopback replay.

The loopback page stands in for www.douyin.com/video/<id>: its script calls the detail API path
(as crawlers that drive a browser wait for), and the API answers the fixture of that video. This
proves the mechanism (a run of items through the shared engine and browser, the API answer kept as
evidence, each state as the spec reads it), not Douyin: the spec stays unverified against the site.
"""

from __future__ import annotations

import textwrap

import pytest

from harness.operations.runs import RunRequest, execute, prepare
from harness.store.sqlite import Store

from .conftest import FIXTURES, fast_options
from .platform_replay import Replay, Request

pytestmark = pytest.mark.xdist_group("chromium")

PAGES = FIXTURES / "items" / "douyin"
API = "/aweme/v1/web/aweme/detail/"
VIDEOS = {  # aweme id -> the detail API's answer for it
    "7000000000000000001": "detail_available.json",  # the control
    "7000000000000000002": "detail_available.json",
    "7000000000000000003": "detail_removed_self_see.json",
    "7000000000000000004": "detail_removed_audit.json",
    "7000000000000000005": "blocked.txt",
}
PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>抖音</title></head><body><div id="root"></div>
<script>
  var id = location.pathname.split("/").pop();
  fetch("%s?device_platform=webapp&aid=6383&aweme_id=" + id + "&a_bogus=" + btoa(id).split("").reverse().join(""))
    .then(function (r) { return r.text(); }).then(function (t) { document.getElementById("root").textContent = t.length; });
</script></body></html>""" % API


def douyin(req: Request) -> tuple[int, dict[str, str], bytes]:
    if req.path.startswith("/video/"):
        return 200, {"Content-Type": "text/html; charset=utf-8"}, PAGE.encode()
    if req.path == API and req.params.get("aweme_id") in VIDEOS:
        name = VIDEOS[req.params["aweme_id"]]
        ctype = "application/json; charset=utf-8" if name.endswith(".json") else "text/plain; charset=utf-8"
        return 200, {"Content-Type": ctype}, (PAGES / name).read_bytes()
    return 404, {"Content-Type": "text/plain"}, b""


def test_douyin_items_through_the_browser_transport(browser, tmp_path):
    urls = [f"https://www.douyin.com/video/{i}" for i in VIDEOS]
    (tmp_path / "watch").mkdir()
    (tmp_path / "watch" / "dy.yaml").write_text(
        "name: dy\nitems:\n" + f"  - {{url: '{urls[0]}', control: true}}\n" + "".join(f"  - {u}\n" for u in urls[1:]))
    (tmp_path / "probes").mkdir()
    ps = tmp_path / "probes" / "dy.yaml"
    ps.write_text(textwrap.dedent("""\
        name: dy
        items: [{list: dy}]
        rate_limit: {interval_s: 0, jitter: 0, concurrency: 2}
        timeout_s: 10
        retries: 0
        """))
    db = tmp_path / "dy.db"
    with Replay(douyin) as server:
        req = RunRequest(ps, db, base_urls={"douyin": server.url}, new=True, options=fast_options(browser=browser))
        summary = execute(req, prepare(req))
        api_calls = [r for r in server.requests if r.path == API]
    assert summary.status == "complete"
    with Store(db, readonly=True) as st:
        got = {m.input: m for m in st.measurements() if m.role == "item"}
        truisms = [m for m in st.measurements() if m.role == "truism"]
        body = st.get_body(got[urls[2]].evidence.body_sha256)
    assert truisms and all(t.verdict.value == "available" for t in truisms)  # the control item
    assert (got[urls[1]].verdict.value, got[urls[1]].test_keys.signals) == ("available", ["aweme_detail"])
    assert got[urls[2]].verdict.value == "removed_other" and "private_self_see" in got[urls[2]].test_keys.signals
    # an undocumented reason is stored, never read as a removal
    assert (got[urls[3]].verdict.value, got[urls[3]].failure) == ("failure", "unexpected_page")
    assert "unverified:filter_reason" in got[urls[3]].test_keys.signals
    assert (got[urls[4]].failure, got[urls[4]].test_keys.signals) == ("session_invalid", ["blocked_or_empty"])
    # the page made its own signed call; the evidence is that API answer, its token redacted from the URL
    assert all(r.params.get("a_bogus") for r in api_calls)
    assert b'"status_self_see"' in body and API in got[urls[2]].evidence.final_url
    assert "a_bogus=REDACTED" in got[urls[2]].evidence.final_url
    assert all(m.platform == "douyin" and m.test_keys.item_spec == "douyin_video" for m in got.values())
