import hashlib
import time

import pytest

from harness.models import Verdict
from harness.sandbox.server import SandboxHandler
from harness.store.sqlite import Store

from .conftest import FIXTURES, run_probe_set

MINI = FIXTURES / "probes" / "mini.yaml"


def truth(sb, term_query: str) -> str:
    out = sb.engine.search(term_query)
    if out.kind == "hard":
        return "hard"
    if out.kind == "empty":
        return "no_results"
    return "soft" if out.rule else "not_censored"


def probes(store_path, run_id):
    with Store(store_path, readonly=True) as st:
        return [m for m in st.measurements(run_id) if m.role == "probe"]


def test_run_classifies_every_term_like_the_sandbox_rules(sandbox, store_target):
    summary = run_probe_set(MINI, store_target, sandbox)
    assert summary.status == "complete"
    ms = probes(store_target, summary.run_id)
    assert len(ms) == 12
    for m in ms:
        assert m.verdict.value == truth(sandbox, m.query), m.input
        assert m.failure is None
    verdicts = {m.input: m.verdict for m in ms}
    assert verdicts["六四"] is Verdict.hard
    assert verdicts["天安门 + 坦克"] is Verdict.hard
    assert verdicts["习近平"] is Verdict.soft
    assert verdicts["zzqxw"] is Verdict.no_results
    assert verdicts["天气"] is Verdict.not_censored


def test_every_measurement_keeps_its_evidence(sandbox, store_target):
    summary = run_probe_set(MINI, store_target, sandbox)
    with Store(store_target, readonly=True) as st:
        for m in st.measurements(summary.run_id):
            ev = m.evidence
            assert ev.status_code == 200
            assert ev.final_url.startswith(sandbox.url)
            body = st.get_body(ev.body_sha256)
            assert hashlib.sha256(body).hexdigest() == ev.body_sha256
            assert "set-cookie" not in ev.headers


def test_controls_and_truism_are_probed_and_stored(sandbox, store_path):
    summary = run_probe_set(MINI, store_path, sandbox)
    with Store(store_path, readonly=True) as st:
        roles = [m.role for m in st.measurements(summary.run_id)]
    assert roles.count("truism") >= 2  # at start and every 5 probes
    assert roles.count("control") == 3  # one benign control per batch of 5
    assert sandbox.queries["的"] >= 2


def fail_when(predicate, status=503, headers=None):
    def responder(handler: SandboxHandler, query: str) -> bool:
        if predicate(query):
            handler.send_body(status, b"unavailable", "text/plain", headers)
            return True
        return False

    return responder


def test_a_failing_truism_gives_the_platform_up_never_censored(sandbox, store_path):
    sandbox.responder = fail_when(lambda q: q == "的")
    summary = run_probe_set(MINI, store_path, sandbox)
    assert probes(store_path, summary.run_id) == []  # nothing sent, nothing stored: a resumed run sends them
    assert summary.counts["sandbox"]["hard"] == 0 and summary.status == "interrupted"
    line = summary.stopped["sandbox"]
    assert line.startswith("sandbox: unreachable since ") and "(http_5xx)" in line
    assert line.endswith(f"{summary.planned} probes not sent, run resumes them")
    assert set(sandbox.queries) == {"的"}


def test_outages_are_retried_then_classified(sandbox, store_path):
    seen: set[str] = set()

    def first_time(q: str) -> bool:
        if q in seen:
            return False
        seen.add(q)
        return True

    sandbox.responder = fail_when(first_time)
    summary = run_probe_set(MINI, store_path, sandbox)
    ms = probes(store_path, summary.run_id)
    assert all(m.failure is None for m in ms)
    assert all(m.test_keys.attempts == 2 for m in ms if m.input != "习近平")
    assert {m.input: m.verdict for m in ms}["六四"] is Verdict.hard


def test_persistent_outage_is_a_failure_with_a_reason(sandbox, store_path):
    sandbox.responder = fail_when(lambda q: q == "六四", status=500)
    summary = run_probe_set(MINI, store_path, sandbox)
    m = {m.input: m for m in probes(store_path, summary.run_id)}["六四"]
    assert m.verdict is Verdict.failure and m.failure == "http_5xx"
    assert m.test_keys.attempts == 2  # retries: 1 in the fixture


def test_retry_after_is_honoured(sandbox, store_path):
    times: dict[str, list[float]] = {}
    orig = sandbox.engine.search

    def responder(handler, query):
        times.setdefault(query, []).append(time.monotonic())
        if query == "六四" and len(times[query]) == 1:
            handler.send_body(429, b"too many", "text/plain", {"Retry-After": "1"})
            return True
        return False

    sandbox.responder = responder
    run_probe_set(MINI, store_path, sandbox)
    t = times["六四"]
    assert len(t) == 2 and t[1] - t[0] >= 0.95
    assert orig  # the engine itself was untouched


def test_redirect_to_another_host_is_a_failure_not_followed(sandbox, store_path):
    sandbox.responder = fail_when(lambda q: q == "白纸", status=302, headers={"Location": "http://evil.example/x"})
    summary = run_probe_set(MINI, store_path, sandbox)
    m = {m.input: m for m in probes(store_path, summary.run_id)}["白纸"]
    assert m.failure == "redirect_offsite"


def test_rate_limit_spaces_requests(sandbox, store_path, tmp_path):
    ps = tmp_path / "paced.yaml"
    ps.write_text(MINI.read_text().replace("interval_s: 0, jitter: 0, concurrency: 4", "interval_s: 0.05, jitter: 0.2, concurrency: 4")
                  .replace("list: mini", f"list: {FIXTURES / 'keywords' / 'mini.yaml'}")
                  .replace("lists: [controls]", "lists: []"))
    stamps = []
    sandbox.responder = lambda h, q: stamps.append(time.monotonic()) and False
    run_probe_set(ps, store_path, sandbox)
    assert len(stamps) > 12
    # Transit delays on a loaded machine can bunch two arrivals together, but they cannot
    # shorten the whole span: n requests paced at >= 40 ms need >= (n - 1) * 40 ms.
    stamps.sort()
    assert stamps[-1] - stamps[0] >= (len(stamps) - 1) * 0.05 * 0.8 - 0.01


def test_rate_limiter_gaps_stay_within_the_jitter():
    import asyncio
    import random

    from harness.measure.pacing import RateLimiter
    from harness.models import RateLimit

    now = [0.0]
    slept: list[float] = []

    async def fake_sleep(d: float) -> None:
        slept.append(d)
        now[0] += d

    async def go() -> list[float]:
        limiter = RateLimiter(RateLimit(interval_s=10, jitter=0.3), random.Random(3), clock=lambda: now[0])
        stamps = []
        for _ in range(50):
            await limiter.wait()
            stamps.append(now[0])
        return stamps

    orig = asyncio.sleep
    asyncio.sleep = fake_sleep
    try:
        stamps = asyncio.run(go())
    finally:
        asyncio.sleep = orig
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    assert min(gaps) >= 7.0 - 1e-9 and max(gaps) <= 13.0 + 1e-9
    assert max(gaps) - min(gaps) > 2  # jitter really varies the pace


def test_flipped_verdicts_are_retested_and_confirmed(sandbox, store_target):
    run_probe_set(MINI, store_target, sandbox)
    sandbox.set_epoch(1)
    second = run_probe_set(MINI, store_target, sandbox)
    by_term = {m.input: m for m in probes(store_target, second.run_id)}
    assert by_term["李克强"].verdict is Verdict.hard
    assert by_term["李克强"].test_keys.retested and by_term["李克强"].test_keys.confirmed is True
    assert not by_term["六四"].test_keys.retested
    assert sandbox.queries["李克强"] == 3  # once in run 1, twice in run 2


def test_an_unconfirmed_flip_keeps_the_retest_verdict(sandbox, store_path):
    run_probe_set(MINI, store_path, sandbox)
    calls = {"n": 0}

    def hard_once(handler, query):
        if query == "天气":
            calls["n"] += 1
            if calls["n"] == 1:
                handler.send_body(200, "<div class='hint_boldline'>根据相关法律法规和政策</div>".encode(), "text/html; charset=utf-8")
                return True
        return False

    sandbox.responder = hard_once
    second = run_probe_set(MINI, store_path, sandbox)
    m = {m.input: m for m in probes(store_path, second.run_id)}["天气"]
    assert m.verdict is Verdict.not_censored
    assert m.test_keys.confirmed is False
    assert "flip_unconfirmed:hard" in m.test_keys.signals


def test_an_interrupted_run_resumes_without_loss_or_duplicates(sandbox, store_target):
    import asyncio

    from harness.measure.engine import Engine, RunOptions
    from harness.operations.runs import RunRequest, execute, prepare

    req = RunRequest(MINI, store_target, base_urls={"sandbox": sandbox.url},
                     options=RunOptions(retry_backoff_s=0.01, control_backoff_s=0.01))
    plan = prepare(req)
    stored = []

    def crash_after_five(m):
        stored.append(m)
        if len(stored) == 5:
            raise KeyboardInterrupt

    with Store(store_target) as st, pytest.raises(KeyboardInterrupt):
        asyncio.run(Engine(st, req.options).run(plan, progress=crash_after_five))
    with Store(store_target, readonly=True) as st:
        [run] = st.list_runs()
        assert run.status == "interrupted"
    summary = execute(req, plan)
    assert summary.run_id == run.run_id and summary.status == "complete"
    with Store(store_target, readonly=True) as st:
        keys = [m.task_key for m in st.measurements(run.run_id) if m.role != "truism"]
    assert sorted(keys) == sorted(t.key for t in plan.tasks)


def test_a_full_disk_stops_the_run_and_every_counted_measurement_is_in_the_store(sandbox, store_path, tmp_path):
    """SQLite's own "database or disk is full" (a page cap on the connection), mid-run: the run
    stops with the error, is marked interrupted, and counts only what was committed."""
    import asyncio

    from harness.errors import StoreError
    from harness.measure.engine import Engine
    from harness.operations.runs import RunRequest, prepare

    from .conftest import fast_options

    terms = tmp_path / "many.yaml"
    terms.write_text("name: many\nentries:\n" + "".join(f"  - term: 词{i}\n" for i in range(400)), encoding="utf-8")
    ps = tmp_path / "many-ps.yaml"
    ps.write_text(f"name: many\nkeywords:\n  - list: {terms}\nplatforms:\n  - name: sandbox\n"
                  "    rate_limit: {interval_s: 0, jitter: 0, concurrency: 4}\n"
                  "controls: {truism: false, lists: []}\n", encoding="utf-8")
    req = RunRequest(ps, store_path, base_urls={"sandbox": sandbox.url}, new=True, options=fast_options())
    plan = prepare(req)
    counted = []
    with Store(store_path) as st:
        pages = st.conn.execute("PRAGMA page_count").fetchone()[0]
        st.conn.execute(f"PRAGMA max_page_count = {pages + 40}")
        with pytest.raises(StoreError, match="full.*resumes"):
            asyncio.run(Engine(st, req.options).run(plan, progress=counted.append))
        st.conn.execute("PRAGMA max_page_count = 1000000")
    with Store(store_path, readonly=True) as st:
        [run] = st.list_runs()
        assert run.status == "interrupted"
        stored = {m.measurement_id for m in st.measurements(run.run_id)}
    assert 0 < len(counted) < 400
    assert {m.measurement_id for m in counted} == stored
    # room again: the run resumes and ends with exactly one measurement per task
    from harness.operations.runs import execute

    summary = execute(RunRequest(ps, store_path, base_urls={"sandbox": sandbox.url}, options=fast_options()), plan)
    assert summary.run_id == run.run_id and summary.status == "complete"
    with Store(store_path, readonly=True) as st:
        keys = [m.task_key for m in st.measurements(run.run_id)]
    assert sorted(keys) == sorted(t.key for t in plan.tasks)


def test_a_query_longer_than_the_platform_takes_is_a_failure_and_is_not_sent(sandbox, tmp_path):
    """A search box that silently cuts a long query would answer for another query."""
    import asyncio

    from harness.measure.request import fetch
    from harness.measure.transport import Sender
    from harness.platforms.registry import PlatformRegistry

    spec = PlatformRegistry.default(include_cwd=False).get("sandbox")
    spec = spec.model_copy(update={"base_url": sandbox.url,
                                   "request": spec.request.model_copy(update={"max_query_chars": 6})})

    async def go(q):
        async with Sender.open(5) as sender:
            return await fetch(sender, spec, q)

    long_one = asyncio.run(go("六四天安门事件"))
    assert long_one.classification.failure == "query_too_long"
    assert long_one.classification.signals == ["chars:7>6"]
    assert "六四天安门事件" not in sandbox.queries
    assert asyncio.run(go("六四天安门")).classification.verdict is Verdict.hard
