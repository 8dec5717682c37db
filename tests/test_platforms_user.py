"""A user-written spec for a site the project has never seen, served from a loopback server."""

from __future__ import annotations

import html
import json
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from harness.store.sqlite import Store

from .conftest import FIXTURES, run_cli

USER = FIXTURES / "platforms" / "_user"
PAGES = USER / "zhaosou"
HARD = ("六四", "法轮功", "天安门")
SOFT = ("近平",)
DOMAINS = ["people.com.cn", "sohu.com", "blog.example.cn", "xinhuanet.com"]


class ZhaosouHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    captcha_for: set[str] = set()

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        parts = urlsplit(self.path)
        q = (parse_qs(parts.query).get("kw") or [""])[0]
        self.server.queries.append(q)  # type: ignore[attr-defined]
        words = [w for w in q.split() if not w.startswith("site:")]
        site = next((w[5:] for w in q.split() if w.startswith("site:")), None)
        text = " ".join(words)
        if text in self.captcha_for:
            page = "verify.html"
        elif any(h in text for h in HARD):
            page = "notice.html"
        elif "zzqxw" in text:
            page = "empty.html"
        else:
            pool = DOMAINS[:1] + DOMAINS[3:] if any(s in text for s in SOFT) else DOMAINS
            if site:
                pool = [d for d in pool if d == site]
            page = "results.html" if pool else "empty.html"
        body = (PAGES / page).read_text()
        items = "".join(f'<li class="hit"><a class="src" href="https://{d}/p/{i}">{html.escape(text)} {i}</a></li>'
                        for i, d in enumerate(pool if page == "results.html" else []))
        body = body.replace("$QUERY", html.escape(q)).replace("$ITEMS", items).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def zhaosou() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), ZhaosouHandler)
    server.queries = []  # type: ignore[attr-defined]
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def url(server: ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def test_platforms_check_reports_the_signals_of_the_live_truism(zhaosou):
    res = run_cli("platforms", "check", "zhaosou", "--specs", str(USER), "--base-url", url(zhaosou), "--json")
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["healthy"] and report["truism"]["verdict"] == "not_censored"
    assert report["truism"]["result_items"] == 4 and report["truism"]["result_count"] == 1234
    assert set(report["truism"]["result_domains"]) == set(DOMAINS)
    assert "hard" in report["truism"]["missing"] and "hard" not in report["truism"]["matched"]
    assert report["soft_control"]["query"] == "的 site:blog.example.cn"
    assert report["soft_control"]["verdict"] == "not_censored"
    assert zhaosou.queries[:2] == ["的", "的 site:blog.example.cn"]


def test_platforms_check_on_a_captcha_is_unhealthy_and_says_why(zhaosou, monkeypatch):
    from harness.measure.check import check_platform_sync
    from harness.platforms.registry import PlatformRegistry

    monkeypatch.setattr(ZhaosouHandler, "captcha_for", {"的"})
    spec = PlatformRegistry.default([USER], include_cwd=False).get("zhaosou").model_copy(update={"base_url": url(zhaosou)})
    report = check_platform_sync(spec)
    assert not report.healthy
    assert report.truism.failure == "captcha" and report.truism.matched == {"captcha": ["verify_box"]}


def test_harness_run_with_the_user_spec(zhaosou, tmp_path):
    ps = tmp_path / "zhaosou.yaml"
    ps.write_text(textwrap.dedent(f"""\
        name: zhaosou-test
        keywords:
          - list: {FIXTURES / 'keywords' / 'mini.yaml'}
        platforms:
          - name: zhaosou
            spec: {USER / 'zhaosou.yaml'}
            base_url: {url(zhaosou)}
            options: {{domain_profile: true}}
        controls: {{every: 4, lists: [{FIXTURES / 'keywords' / 'controls.yaml'}]}}
        timeout_s: 5
        retries: 0
        """))
    db = tmp_path / "z.db"
    res = run_cli("run", str(ps), "--store", str(db), "--json")
    assert res.returncode == 0, res.stderr
    counts = json.loads(res.stdout)["counts"]["zhaosou"]
    with Store(db, readonly=True) as st:
        ms = {m.input: m for m in st.measurements() if m.role == "probe"}
    assert ms["六四"].verdict.value == "hard" and ms["六四"].test_keys.signals == ["policy_tip"]
    assert ms["天安门 + 坦克"].verdict.value == "hard"
    assert ms["习近平"].verdict.value == "soft"
    assert ms["zzqxw"].verdict.value == "no_results"
    assert ms["天气"].verdict.value == "not_censored"
    assert counts == {"hard": 3, "soft": 1, "no_results": 1, "not_censored": 7}
    prof = run_cli("platforms", "profile", ms["习近平"].run_id, "--store", str(db), "--json")
    [matrix] = json.loads(prof.stdout)
    assert matrix["cells"]["习近平"] == {"people.com.cn": "allowed", "sohu.com": "withheld"}


class JsonApiHandler(BaseHTTPRequestHandler):
    """A JSON search API answering POST /api/search {"keyword": ..., "page": 1}."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.bodies.append((self.path, self.headers.get("Content-Type"), body))  # type: ignore[attr-defined]
        kw = body["keyword"]
        if any(h in kw for h in HARD):
            answer = {"code": 0, "data": {"total": 0, "items": []}, "filter": {"hit": True, "reason": "policy"}}
        elif "zzqxw" in kw:
            answer = {"code": 0, "data": {"total": 0, "items": []}}
        elif kw == "CAPTCHA":
            answer = {"code": 10001, "msg": "need verify"}
        else:
            answer = {"code": 0, "data": {"total": 42, "items": [{"id": i, "url": f"https://{d}/{i}"}
                                                                 for i, d in enumerate(DOMAINS)]}}
        raw = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)


def test_a_json_post_api_spec_over_a_real_socket(tmp_path):
    from harness.measure.check import check_platform_sync
    from harness.operations.runs import RunRequest, execute, prepare
    from harness.platforms.registry import PlatformRegistry

    from .conftest import fast_options

    server = ThreadingHTTPServer(("127.0.0.1", 0), JsonApiHandler)
    server.bodies = []  # type: ignore[attr-defined]
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        d = tmp_path / "platforms"
        d.mkdir()
        (d / "jsonapi.yaml").write_text(textwrap.dedent("""\
            name: jsonapi
            kind: other
            base_url: http://jsonapi.invalid
            request:
              method: POST
              url: "{base_url}/api/search"
              json_body: {keyword: "{query}", page: 1, filters: {safe: false}}
            response_format: json
            truism: 的
            signals:
              captcha: [{json: code, values: [10001], name: need_verify}]
              hard: [{json: filter.hit, values: [true], name: filter_hit}]
              no_results: [{json: data.total, values: [0], name: zero_total}]
              result_item: {json: "data.items.*.id"}
              result_count: {json: data.total}
              result_domain: {json: "data.items.*.url"}
            """))
        spec = PlatformRegistry.default([d], include_cwd=False).get("jsonapi").model_copy(update={"base_url": url(server)})
        report = check_platform_sync(spec)
        assert report.healthy and report.truism.result_count == 42 and set(report.truism.result_domains) == set(DOMAINS)
        assert server.bodies[0] == ("/api/search", "application/json",
                                    {"keyword": "的", "page": 1, "filters": {"safe": False}})
        assert check_platform_sync(spec, query="CAPTCHA").truism.failure == "captcha"
        ps = tmp_path / "ps.yaml"
        ps.write_text(textwrap.dedent(f"""\
            name: jsonapi-run
            keywords: [{{list: {FIXTURES / 'keywords' / 'mini.yaml'}}}]
            platforms: [{{name: jsonapi, rate_limit: {{interval_s: 0, jitter: 0, concurrency: 2}}}}]
            controls: {{every: 6, lists: []}}
            timeout_s: 5
            """))
        req = RunRequest(ps, tmp_path / "j.db", (d,), base_urls={"jsonapi": url(server)}, options=fast_options())
        summary = execute(req, prepare(req))
        assert dict(summary.counts["jsonapi"]) == {"hard": 3, "no_results": 1, "not_censored": 8}
    finally:
        server.shutdown()
        server.server_close()
