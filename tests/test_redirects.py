"""Redirects and status codes read through the spec; login walls; platforms given up.

A spec's ``location`` matchers decide what a redirect means before it is followed (a
CAPTCHA host is ``captcha``, retried; a login wall is ``session_required``, not retried,
said once); only a redirect no signal explains is ``redirect_offsite``. ``status``
matchers read a non-2xx answer's body. A platform whose truism keeps failing is given
up after ``controls.give_up_after_s`` with one line.
"""

from __future__ import annotations

import json
import textwrap
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from harness.errors import PlatformSpecError
from harness.models import Verdict
from harness.operations.runs import RunRequest, execute, prepare
from harness.platforms.classify import classify_http, classify_redirect
from harness.platforms.registry import load_spec
from harness.store.sqlite import Store

from .comparator_helpers import cli
from .conftest import fast_options, run_cli
from .platform_replay import Replay, Request


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "text/html; charset=utf-8"})

    @classmethod
    def redirect(cls, location: str, status: int = 302) -> "Answer":
        return cls(status, b"", {"Location": location, "Content-Type": "text/html"})


@contextmanager
def replay_server(route):
    """A loopback server answering ``route(path, params)`` with an :class:`Answer` (``.url``, ``.requests``)."""
    def handler(req: Request) -> tuple[int, dict[str, str], bytes]:
        a = route(req.path, req.params)
        return a.status, a.headers, a.body

    with Replay(handler) as server:
        yield server

SPEC = """\
name: walled
base_url: https://walled.example
request: {url: "{base_url}/s", params: {q: "{query}"}}
truism: "的"
signals:
  captcha:
    - {location: "^https?://captcha\\\\.example/", name: captcha_host}
    - {location: "^https?://[^/]+/antispider/", name: antispider_path}
  login_wall:
    - {location: "^https?://passport\\\\.example/", name: passport_redirect}
    - {css: title, contains: "请登录", name: login_page}
  session_invalid:
    - {status: [412], text: "请求被拦截", name: intercepted_412}
  rate_limited:
    - {status: [418], name: teapot}
  no_results:
    - {css: div.none, name: none_box}
  result_item: {css: "li.r"}
"""

RESULTS = '<html><body><ul><li class="r">a</li><li class="r">b</li></ul></body></html>'.encode()


def write_spec(tmp_path: Path, text: str = SPEC, base_url: str | None = None) -> Path:
    d = tmp_path / "platforms"
    d.mkdir(exist_ok=True)
    if base_url:
        text = text.replace("https://walled.example", base_url)
    (d / "walled.yaml").write_text(text)
    return d


def probe_set(tmp_path: Path, terms: list[str], extra: str = "", name: str = "walled") -> Path:
    kw = tmp_path / "kw.yaml"
    kw.write_text(yaml.safe_dump({"name": "kw", "entries": [{"term": t, "category": "other"} for t in terms]},
                                 allow_unicode=True))
    path = tmp_path / "ps.yaml"
    path.write_text(textwrap.dedent(f"""\
        name: redirects
        keywords: [{{list: {kw}}}]
        platforms:
          - name: {name}
            rate_limit: {{interval_s: 0, jitter: 0, concurrency: 1}}
            soft_test: false
        controls: {{every: 50, lists: [], positive: {{lists: []}}}}
        timeout_s: 5
        retries: 2
        flip_retest: false
        {extra}
        """))
    return path


# --------------------------------------------------------------------------- the spec language


@pytest.mark.parametrize("matcher,problem", [
    ({"location": "(unclosed"}, "invalid regular expression"),
    ({"location": "^https://x/", "status": [200]}, "must be 3xx"),
    ({"location": "^https://x/", "text": "y"}, "exactly one of"),
    ({"status": []}, "at least one HTTP status"),
    ({"status": [99]}, "100-599"),
    ({}, "exactly one of"),
])
def test_bad_redirect_and_status_matchers_are_refused_with_the_file(tmp_path, matcher, problem):
    doc = yaml.safe_load(SPEC)
    doc["signals"]["captcha"] = [matcher]
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    with pytest.raises(PlatformSpecError) as exc:
        load_spec(path)
    assert problem in str(exc.value) and str(path) in str(exc.value)


def test_a_redirect_cannot_be_a_results_page(tmp_path):
    doc = yaml.safe_load(SPEC)
    doc["signals"]["page_ok"] = [{"location": "^https://x/"}]
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    with pytest.raises(PlatformSpecError, match="page_ok"):
        load_spec(path)


def test_location_signals_read_the_whole_target_scheme_included(tmp_path):
    spec = load_spec(write_spec(tmp_path) / "walled.yaml")
    c = classify_redirect(spec, 302, "https://captcha.example/static/tuxing.html?x=1")
    assert c.verdict is Verdict.failure and c.failure == "captcha"
    assert c.signals == ["captcha_host", "location:captcha.example"]
    # Sogou's anti-spider redirect can be http:// on an https origin: the signal still explains it
    c = classify_redirect(spec, 302, "http://walled.example/antispider/?from=%2Fs")
    assert c.failure == "captcha" and c.signals[0] == "antispider_path"
    assert classify_redirect(spec, 301, "https://passport.example/visitor?u=1").failure == "session_required"
    assert classify_redirect(spec, 302, "https://elsewhere.example/") is None
    assert spec.possible_outcomes() >= {"failure:captcha", "failure:session_required", "failure:session_invalid"}


def test_status_matchers_read_a_non_2xx_body_and_others_keep_the_status_rule(tmp_path):
    spec = load_spec(write_spec(tmp_path) / "walled.yaml")
    c = classify_http(spec, 412, {"content-type": "text/html; charset=utf-8"}, "<p>请求被拦截</p>".encode())
    assert (c.failure, c.signals) == ("session_invalid", ["intercepted_412", "status:412"])
    assert classify_http(spec, 412, {}, b"<p>other</p>").failure == "http_4xx"  # the body decides
    assert classify_http(spec, 418, {}, b"").failure == "rate_limited"  # status alone
    assert classify_http(spec, 404, {}, "请求被拦截".encode()).failure == "http_4xx"  # scoped to 412 only
    # a 2xx page never matches a matcher scoped to another status
    assert classify_http(spec, 200, {}, "<p>请求被拦截</p><div class=none></div>".encode()).verdict is Verdict.no_results


# --------------------------------------------------------------------------- the engine


def route_for(origin: list[str]):
    def route(path: str, params: dict[str, str]) -> Answer:
        q = params.get("q", "")
        if q.startswith("captcha"):
            return Answer.redirect("http://captcha.example/static/tuxing_v2.html?logid=1")
        if q.startswith("wall"):
            return Answer.redirect("https://passport.example/visitor/visitor?entry=miniblog&a=enter")
        if q.startswith("away"):
            return Answer.redirect("https://unrelated.example/landing")
        if q.startswith("spider"):  # same host, other path: read through the spec before it is followed
            return Answer.redirect(origin[0] + "/antispider/?from=%2Fs")
        if q.startswith("blocked"):
            return Answer(412, "<p>请求被拦截</p>".encode())
        return Answer(200, RESULTS)
    return route


def run_walled(tmp_path: Path, terms: list[str], *, truism_wall: bool = False, notices: list | None = None):
    origin: list[str] = []
    route = route_for(origin)

    def wrapped(path: str, params: dict[str, str]) -> Answer:
        if truism_wall and params.get("q") == "的":
            return Answer.redirect("https://passport.example/visitor/visitor")
        return route(path, params)

    with replay_server(wrapped) as server:
        origin.append(server.url)
        d = write_spec(tmp_path, base_url=server.url)
        req = RunRequest(probe_set(tmp_path, terms), tmp_path / "store.db", (d,),
                         options=fast_options(on_notice=(notices.append if notices is not None else None)))
        summary = execute(req, prepare(req))
        return summary, server.requests


def test_redirects_are_read_through_the_spec_before_anything_is_followed(tmp_path):
    notices: list = []
    summary, requests = run_walled(tmp_path, ["captcha1", "wall1", "wall2", "away1", "spider1", "blocked1", "fine"],
                                   notices=notices)
    with Store(tmp_path / "store.db", readonly=True) as st:
        by = {m.input: m for m in st.measurements(summary.run_id, role="probe")}
    assert (by["captcha1"].failure, by["captcha1"].test_keys.attempts) == ("captcha", 3)  # retried with back-off
    assert by["captcha1"].test_keys.signals == ["captcha_host", "location:captcha.example"]
    assert by["captcha1"].evidence.status_code == 302
    assert by["captcha1"].evidence.headers["location"].startswith("http://captcha.example/static/tuxing_v2.html")
    assert (by["wall1"].failure, by["wall1"].test_keys.attempts) == ("session_required", 1)  # never retried
    assert by["away1"].failure == "redirect_offsite" and by["away1"].test_keys.attempts == 1
    assert by["spider1"].failure == "captcha" and by["spider1"].test_keys.signals[0] == "antispider_path"
    assert by["blocked1"].failure == "session_invalid"
    assert by["fine"].verdict is Verdict.not_censored
    paths = {r.path for r in requests}
    assert paths == {"/s"}  # no redirect target was ever requested, not even the same-host one
    walls = [n for n in notices if n.kind == "session_required"]
    assert len(walls) == 1  # said once for two walled probes
    assert "--cookies walled=cookies.txt" in walls[0].message and "passport_redirect" in walls[0].message
    assert summary.status == "complete"


def test_a_login_wall_on_the_truism_gives_the_platform_up_at_once_saying_how(tmp_path, monkeypatch):
    """"At once": one request and no back-off before giving up. Every wait of a run (retry back-off,
    control back-off, Retry-After) is a RateLimiter.push_back, so counting them is load-independent."""
    from harness.measure.pacing import RateLimiter

    backoffs: list[float] = []
    push_back = RateLimiter.push_back
    monkeypatch.setattr(RateLimiter, "push_back", lambda self, s: backoffs.append(s) or push_back(self, s))
    notices: list = []
    summary, requests = run_walled(tmp_path, ["a", "b", "c"], truism_wall=True, notices=notices)
    assert backoffs == []  # nothing waited for: not retried, not backed off until give_up_after_s
    assert [r.params["q"] for r in requests] == ["的"]  # one truism, not retried, nothing else sent
    assert summary.status == "interrupted"
    line = summary.stopped["walled"]
    assert line.startswith("walled: needs a logged-in session") and "--cookies walled=cookies.txt" in line
    assert line.endswith("3 probes not sent, run resumes them")
    assert [n.kind for n in notices] == ["session_required"]  # one message, not a notice per probe


def test_a_resumed_run_sends_what_the_given_up_platform_did_not(tmp_path):
    summary, _ = run_walled(tmp_path, ["a", "b", "c"], truism_wall=True)
    again, requests = run_walled(tmp_path, ["a", "b", "c"])
    assert again.run_id == summary.run_id and again.status == "complete"
    assert sorted(r.params["q"] for r in requests if r.params["q"] != "的") == ["a", "b", "c"]


def test_an_unreachable_platform_ends_within_the_bounded_time_with_one_line(tmp_path):
    """The platform's host does not resolve: the run says so within controls.give_up_after_s."""
    d = write_spec(tmp_path, base_url="http://unreachable.invalid")
    ps = probe_set(tmp_path, [f"t{i}" for i in range(52)],
                   extra="").read_text().replace("controls: {", "controls: {give_up_after_s: 2, ")
    (tmp_path / "ps.yaml").write_text(ps)
    # The bound is read from the run's own log (what it chose to wait, how many truisms it sent),
    # not from the wall clock, which a loaded machine stretches. The timeout only guards against a
    # run that never gives up (about 3 s here; 60 s is 20 times that).
    res = run_cli("run", str(tmp_path / "ps.yaml"), "--specs", str(d), "--store", str(tmp_path / "s.db"),
                  "--log-file", str(tmp_path / "log.jsonl"), "--quiet", timeout=60)
    assert res.returncode == 3, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("walled: unreachable since ")]
    assert len(lines) == 1 and lines[0].endswith("(dns_error); 52 probes not sent, run resumes them"), res.stderr
    assert "Traceback" not in res.stderr
    events = [json.loads(ln) for ln in (tmp_path / "log.jsonl").read_text().splitlines()]
    backoffs = [e["backoff_s"] for e in events if e["event"] in ("unhealthy", "control_backoff")]
    [gave_up] = [e for e in events if e["event"] == "unreachable"]  # the back-off is logged, then the give-up
    assert backoffs and sum(backoffs) <= 2.0 + 1e-6, backoffs  # never waits past give_up_after_s
    assert gave_up["truisms"] <= 3 and gave_up["not_sent"] == 52, gave_up  # the truism is not hammered


def test_platforms_check_says_a_host_that_does_not_resolve_is_unreachable(tmp_path):
    d = write_spec(tmp_path, base_url="http://unreachable.invalid")
    res = cli("platforms", "check", "walled", "--specs", str(d))
    assert res.returncode == 1
    out = " ".join(res.stdout.split())
    assert "unreachable: dns_error" in out and "the truism has no results" not in out


def test_reclassify_reads_stored_redirects_through_the_current_spec(tmp_path):
    """A spec that learns a CAPTCHA host turns an old redirect_offsite into captcha, without probing."""
    from harness.analysis.reclassify import reclassify_run
    from harness.platforms.registry import PlatformRegistry

    bare = SPEC.replace('    - {location: "^https?://captcha\\\\.example/", name: captcha_host}\n', "")
    origin: list[str] = []
    with replay_server(route_for(origin)) as server:
        origin.append(server.url)
        d = write_spec(tmp_path, bare, base_url=server.url)
        req = RunRequest(probe_set(tmp_path, ["captcha1", "away1"]), tmp_path / "store.db", (d,), options=fast_options())
        summary = execute(req, prepare(req))
        write_spec(tmp_path, SPEC, base_url=server.url)  # the repaired spec
    with Store(tmp_path / "store.db") as st:
        by = {m.input: m for m in st.measurements(summary.run_id, role="probe")}
        assert by["captcha1"].failure == "redirect_offsite"
        res = reclassify_run(st, summary.run_id, PlatformRegistry.default([d], include_cwd=False))
    changed = {c.input: (c.new_verdict, c.new_failure) for c in res.changes if c.changed}
    assert changed == {"captcha1": ("failure", "captcha")}
