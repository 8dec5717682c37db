"""The browser transport against the sandbox's JavaScript search page, with a real headless Chromium.

The page's results appear only after its script computes a token and fetches them: a plain HTTP
client gets an empty shell (a failure, never ``not_censored``); the browser gets the results and
the right verdicts. Without Chromium the harness says, in one line, which specs need it.
"""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path

import pytest

from harness.models import Verdict
from harness.operations.runs import RunRequest, execute, prepare
from harness.platforms.registry import BUILTIN_DIR
from harness.sandbox import Sandbox
from harness.store.sqlite import Store

from .conftest import fast_options

pytestmark = pytest.mark.xdist_group("chromium")

TERMS = ["六四", "近平", "zzqxw", "天气"]


def probe_set(tmp_path: Path, platform: str, spec: Path | None = None) -> Path:
    kw = tmp_path / "kw.yaml"
    kw.write_text("name: kw\nentries:\n" + "".join(f"  - {{term: '{t}', category: test}}\n" for t in TERMS))
    ps = tmp_path / f"{platform}.yaml"
    where = f", spec: {spec}" if spec else ""
    ps.write_text(textwrap.dedent(f"""\
        name: js-{platform}
        keywords: [{{list: {kw}}}]
        platforms: [{{name: {platform}{where}}}]
        controls: {{every: 100, lists: []}}
        rate_limit: {{interval_s: 0, jitter: 0, concurrency: 2}}
        timeout_s: 15
        retries: 0
        flip_retest: false
        """))
    return ps


def run(ps: Path, db: Path, platform: str, url: str, **opts):
    req = RunRequest(ps, db, base_urls={platform: url}, new=True, options=fast_options(**opts))
    summary = execute(req, prepare(req))
    with Store(db, readonly=True) as st:
        ms = list(st.measurements())
    return summary, ms


def test_the_browser_reads_the_javascript_page_and_gets_the_sandbox_verdicts(browser, tmp_path):
    with Sandbox() as sb:
        _, ms = run(probe_set(tmp_path, "sandbox_browser"), tmp_path / "b.db", "sandbox_browser", sb.url,
                    browser=browser)
        truth = {t: sb.engine.search(t).kind for t in TERMS}
        api_queries = sum(sb.queries.values())
    probes = {m.input: m for m in ms if m.role == "probe"}
    assert truth == {"六四": "hard", "近平": "results", "zzqxw": "empty", "天气": "results"}
    assert probes["六四"].verdict is Verdict.hard and "legal_notice" in probes["六四"].test_keys.signals
    assert probes["近平"].verdict is Verdict.soft  # authorized sources only: the restricted probe comes back empty
    assert probes["zzqxw"].verdict is Verdict.no_results
    assert probes["天气"].verdict is Verdict.not_censored and probes["天气"].test_keys.result_items >= 3
    assert api_queries > 0, "the results came from the page's own API call"
    # the evidence is the rendered DOM, kept like any other page
    with Store(tmp_path / "b.db", readonly=True) as st:
        body = st.get_body(probes["六四"].evidence.body_sha256)
    assert "根据相关法律法规和政策".encode() in body and b'class="hint_boldline"' in body


def test_a_plain_http_client_gets_the_empty_shell_and_no_verdict(tmp_path):
    text = (BUILTIN_DIR / "sandbox_browser.yaml").read_text()
    text = text.replace("transport: browser\n", "").replace('browser: {wait_for: "#content_left[data-state]"}\n', "")
    spec = tmp_path / "plain.yaml"
    spec.write_text(text.replace("name: sandbox_browser", "name: sandbox_plain"))
    with Sandbox() as sb:
        _, ms = run(probe_set(tmp_path, "sandbox_plain", spec), tmp_path / "p.db", "sandbox_plain", sb.url)
        assert sum(sb.queries.values()) == 0, "the plain client never reached the search API"
    assert ms and all(m.verdict is Verdict.failure for m in ms)
    truisms = [m for m in ms if m.role == "truism"]
    assert truisms and {m.failure for m in truisms} == {"unexpected_page"}
    assert not [m for m in ms if m.role != "truism"]  # the platform is given up: no probe is sent (issue 12a)


def test_without_chromium_a_run_says_in_one_line_which_spec_needs_it(tmp_path, monkeypatch, capsys):
    from harness.cli import classify_exception, main
    from harness.measure.browser import BrowserUnavailable

    monkeypatch.setenv("HARNESS_CHROMIUM", "/nonexistent/chromium")
    ps = probe_set(tmp_path, "sandbox_browser")
    db = tmp_path / "none.db"
    req = RunRequest(ps, db, base_urls={"sandbox_browser": "http://127.0.0.1:9"}, new=True, options=fast_options())
    with pytest.raises(BrowserUnavailable) as exc:
        prepare(req)
    code, line = classify_exception(exc.value)
    assert code == 2 and "\n" not in line and "sandbox_browser" in line and "Chromium" in line, line
    assert not db.exists(), "nothing is written"
    capsys.readouterr()
    with pytest.raises(SystemExit) as done:
        main(["platforms", "list", "--json"])
    assert done.value.code == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["douyin"]["transport"] == "browser" and rows["douyin"]["browser_ready"] is False
    assert rows["baidu"]["transport"] == "http" and rows["baidu"]["browser_ready"] is None


def test_platforms_check_reads_a_browser_spec(browser):
    from harness.measure.check import check_platform_sync
    from harness.platforms.registry import PlatformRegistry

    with Sandbox() as sb:
        spec = PlatformRegistry.default(include_cwd=False).get("sandbox_browser").model_copy(update={"base_url": sb.url})
        report = check_platform_sync(spec, browser=browser)
    assert report.healthy and report.truism.result_items >= 3
    assert report.truism.matched.get("no_results") is None and "hard" in report.truism.missing
    assert report.soft_control is not None and report.soft_control.verdict == "not_censored"


# --------------------------------------------------------------------------- redirects seen in the browser

REDIRECT_SPEC = """\
name: jsredirect
base_url: http://127.0.0.1:1
transport: browser
browser: {capture: "/api/search"}
request: {url: "{base_url}/search/{query}"}
response_format: json
truism: 的
signals:
  captcha:
    - {location: "^http://localhost:[0-9]+/verify/", name: verify_host}
  login_wall:
    - {location: "^https?://passport\\\\.invalid/", name: passport_host}
  no_results: [{json: total, values: [0]}]
  result_item: {json: "items.*.id"}
"""

JS_PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"></head><body><script>
  var q = decodeURIComponent(location.pathname.split("/").pop());
  var port = location.port;
  if (q === "脚本验证") { location.href = "http://localhost:" + port + "/verify/slide?from=search"; }
  else if (q === "脚本别处") { location.href = "http://localhost:" + port + "/elsewhere"; }
  else { fetch("/api/search?q=" + encodeURIComponent(q)).catch(function () {}); }
</script></body></html>"""


DEADLINE_S = 120.0


def test_a_redirect_seen_in_the_browser_is_read_through_the_specs_location_signals(browser, tmp_path):
    """A page sent to a CAPTCHA or login host (by the server or by its script) is captcha or
    session_required, as over HTTP; only a redirect no signal explains is redirect_offsite; and
    the capture is not waited for once the page has left."""
    import asyncio

    from harness.measure.request import fetch
    from harness.measure.transport import Sender
    from harness.platforms.registry import load_spec

    from .platform_replay import Replay, Request

    (tmp_path / "jsredirect.yaml").write_text(REDIRECT_SPEC)
    spec = load_spec(tmp_path / "jsredirect.yaml")

    def handler(req: Request) -> tuple[int, dict[str, str], bytes]:
        port = req.headers["host"].rsplit(":", 1)[1]
        html = {"Content-Type": "text/html; charset=utf-8"}
        if req.path == "/search/302验证":
            return 302, {"Location": f"http://localhost:{port}/verify/captcha.html?from=%2Fsearch"}, b""
        if req.path == "/search/302登录":
            return 302, {"Location": "https://passport.invalid/login?redirect=search"}, b""
        if req.path.startswith("/search/"):
            return 200, html, JS_PAGE.encode()
        if req.path == "/api/search" and req.params.get("q") == "接口验证":  # the API call is sent away
            return 302, {"Location": f"http://localhost:{port}/verify/api?from=search"}, b""
        if req.path == "/api/search":
            return 200, {"Content-Type": "application/json"}, b'{"total": 1, "items": [{"id": 7}]}'
        return 200, html, b"<html><body>somewhere else</body></html>"

    async def all_of(base: str):
        async with Sender.open(DEADLINE_S) as sender:
            sender.browser = browser
            s = spec.model_copy(update={"base_url": base})
            return await asyncio.gather(*(fetch(sender, s, q) for q in ("正常", "302验证", "302登录", "脚本验证", "脚本别处",
                                                                        "接口验证")))

    with Replay(handler) as server:
        started = time.monotonic()
        ok, server_captcha, server_login, script_captcha, script_elsewhere, api_captcha = asyncio.run(all_of(server.url))
        took = time.monotonic() - started
    got = {k: (f.classification.verdict.value, f.classification.failure, f.classification.signals) for k, f in
           {"ok": ok, "302": server_captcha, "login": server_login, "js": script_captcha, "else": script_elsewhere,
            "api": api_captcha}.items()}
    assert got["ok"][:2] == ("not_censored", None), got
    assert got["302"][:2] == ("failure", "captcha") and {"verify_host", "location:localhost"} <= set(got["302"][2]), got
    assert got["login"][:2] == ("failure", "session_required") and "passport_host" in got["login"][2], got
    assert got["js"][:2] == ("failure", "captcha") and "browser:script_navigation" in got["js"][2], got
    # not a `timeout` (browser:no_capture): a page that left is not waited for until the deadline
    assert got["else"][:2] == ("failure", "redirect_offsite"), got
    assert server_captcha.headers["location"].startswith("http://localhost:") and server_captcha.status == 302
    # the captured API call sent to a CAPTCHA host: captcha at once, not after waiting out the capture
    # (the answers are the same either way: only the time tells; ≈ 3 s here against a 120 s deadline,
    # so the bound is half the deadline, far from any load)
    assert took < DEADLINE_S / 2, f"{took:.0f} s: an answer waited for the capture deadline"
    assert got["api"][:2] == ("failure", "captcha") and "verify_host" in got["api"][2], got
    assert "browser:no_capture" not in got["api"][2] and api_captcha.headers["location"].endswith("/verify/api?from=search")


def test_isolate_and_discover_refuse_a_browser_spec_in_one_line_before_anything_is_stored(tmp_path):
    from harness.errors import HarnessError
    from harness.isolation.oracle import PlatformOracle
    from harness.platforms.registry import PlatformRegistry

    from .conftest import run_cli

    res = run_cli("isolate", "-p", "douyin", "六四 天安门", "--store", str(tmp_path / "s.db"), "--keywords-dir",
                  str(tmp_path / "kw"), cwd=tmp_path)
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr.splitlines() == ["error: douyin: isolate and discover send plain HTTP requests and this spec "
                                       "needs the browser transport (transport: browser); measure its terms with "
                                       "`harness run` instead"], res.stderr
    assert not (tmp_path / "s.db").exists() and not (tmp_path / "kw").exists()
    with pytest.raises(HarnessError, match="sandbox_browser: isolate and discover send plain HTTP"):
        PlatformOracle(PlatformRegistry.default(include_cwd=False).get("sandbox_browser"))
