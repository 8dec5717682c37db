"""Platform health: a page layout that changed stops the platform with one line; the back-off
of a failing truism is logged; what a given-up platform did not send is resumed."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from harness.measure.health import PlatformHealth, duration
from harness.operations.runs import RunRequest, execute, prepare
from harness.platforms.registry import BUILTIN_DIR
from harness.sandbox import Sandbox
from harness.store.sqlite import Store

from .conftest import FIXTURES, fast_options

NEW_LAYOUT = b"<!DOCTYPE html><html><body><main id='app'><article class='hit'>...</article></main></body></html>"


def probe_set(tmp_path: Path, concurrency: int = 1) -> Path:
    path = tmp_path / "ps.yaml"
    path.write_text(textwrap.dedent(f"""\
        name: health
        keywords: [{{list: {FIXTURES / 'keywords' / 'mini.yaml'}}}]
        platforms:
          - name: sandbox
            rate_limit: {{interval_s: 0, jitter: 0, concurrency: {concurrency}}}
            soft_test: false
        controls: {{every: 50, lists: [], positive: {{lists: []}}}}
        timeout_s: 5
        retries: 0
        flip_retest: false
        """))
    return path


def run(sb: Sandbox, ps: Path, store: Path, platform_dirs=(), **opts):
    notices: list = []
    req = RunRequest(ps, store, tuple(platform_dirs), base_urls={"sandbox": sb.url},
                     options=fast_options(on_notice=notices.append, **opts))
    return execute(req, prepare(req)), notices


def test_pages_that_match_no_marker_stop_the_platform_saying_the_layout_changed(tmp_path):
    store = tmp_path / "s.db"
    with Sandbox() as sb:
        # the truism still has its old page; every other query gets the new layout
        sb.responder = lambda h, q: (h.send_body(200, NEW_LAYOUT, "text/html; charset=utf-8") or True) if q != "的" \
            else False
        summary, notices = run(sb, probe_set(tmp_path), store)
        sent = sum(n for q, n in sb.queries.items() if q != "的")
    assert sent == 5  # controls.drift_after pages, then nothing more
    line = summary.stopped["sandbox"]
    assert line == ("sandbox: 5 of the last 5 pages matched none of the spec's markers: the page layout has probably "
                    "changed (check: harness platforms check sandbox; after repairing the spec, harness reclassify "
                    f"RUN); {summary.planned - 5} probes not sent, run resumes them")
    assert [n.kind for n in notices] == ["layout_changed"] and summary.status == "interrupted"
    with Store(store, readonly=True) as st:
        assert [m.failure for m in st.measurements(summary.run_id, role="probe")] == ["unexpected_page"] * 5


def test_a_truism_whose_page_matches_no_marker_stops_the_platform_at_once(tmp_path):
    d = tmp_path / "platforms"
    d.mkdir()
    text = (BUILTIN_DIR / "sandbox.yaml").read_text().replace('result_item: {css: "div.result"}',
                                                             'result_item: {css: "li.moved"}')
    (d / "sandbox.yaml").write_text(text)
    with Sandbox() as sb:
        summary, notices = run(sb, probe_set(tmp_path), tmp_path / "s.db", [d])
        assert set(sb.queries) == {"的"} and sb.queries["的"] == 3  # control_attempts, no back-off to the deadline
    assert "the truism's last 3 pages matched none of the spec's markers" in summary.stopped["sandbox"]
    assert [n.kind for n in notices] == ["unhealthy", "layout_changed"]


def test_every_back_off_of_a_failing_truism_is_logged(tmp_path):
    from harness.operations.logs import setup_logging

    log = tmp_path / "log.jsonl"
    setup_logging(log, "json")
    try:
        with Sandbox() as sb:
            sb.responder = lambda h, q: (h.send_body(503, b"down", "text/plain") or True) if q == "的" else False
            summary, notices = run(sb, probe_set(tmp_path), tmp_path / "s.db", give_up_after_s=0.3)
    finally:
        setup_logging(None)
    events = [json.loads(line) for line in log.read_text().splitlines()]
    backoffs = [e for e in events if e.get("event") in ("unhealthy", "control_backoff")]
    assert len(backoffs) >= 2 and all(e["platform"] == "sandbox" and e["failure"] == "http_5xx" for e in backoffs)
    assert [e["event"] for e in events if e.get("event") == "unreachable"] == ["unreachable"]
    assert [n.kind for n in notices] == ["unhealthy", "unreachable"]  # printed: the first back-off and the end
    assert summary.stopped["sandbox"].startswith("sandbox: unreachable since ")


def test_the_health_bookkeeping():
    h = PlatformHealth("x", give_up_after_s=10, drift_after=3, control_attempts=2)
    assert [h.page(u) for u in (True, True, False, True, True)] == [None] * 5
    assert (h.page(True) or "").startswith("3 of the last 3 pages")
    h2 = PlatformHealth("x", give_up_after_s=10, drift_after=50, control_attempts=2)
    verdicts = [h2.page(u) for u in (True, False, True, False, True, True, True, True, True, True)]
    assert verdicts[-1] is not None and verdicts[-1].startswith("8 of the last 10 pages") and not any(verdicts[:-1])
    h.truism_failed(now=100.0)
    h.truism_failed(now=104.0)
    assert h.elapsed(now=111.0) == 11.0 and h.failed_truisms == 2
    assert h.truism_ok(now=112.0) == 12.0 and h.truism_ok() is None and h.failed_truisms == 0
    assert h.stop_line("unreachable since 12:03 (dns_error)", 48) == (
        "x: unreachable since 12:03 (dns_error); 48 probes not sent, run resumes them")
    assert h.stop_line("gone", 1).endswith("1 probe not sent, run resumes them")
    assert [duration(s) for s in (0.4, 5, 30, 300, 9000)] == ["0.4 s", "5 s", "30 s", "5 min", "2.5 h"]
