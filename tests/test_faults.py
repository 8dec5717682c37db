"""The harness under a misbehaving platform: faults are failures, never censorship verdicts."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import httpx
import pytest
import yaml

from harness.errors import InputError
from harness.failures import FailureCode
from harness.models import Verdict
from harness.sandbox import Sandbox
from harness.sandbox.faults import CAPTCHA_TEXT, FaultInjector, FaultKind, FaultPlan, gzip_bomb, parse_fault_spec
from harness.store.sqlite import Store

from .conftest import FIXTURES, run_cli, run_probe_set

FAILURE_CODES = {c.value for c in FailureCode}

# Terms around every sandbox rule (hard, soft, combinations, empty) and plenty of benign ones.
TERMS = [
    "六四", "六四事件", "天安门 + 坦克", "天安门", "坦克", "法轮功", "新疆 + 集中营", "新疆", "刘晓波", "达赖喇嘛",
    "习近平", "近平讲话", "新疆 + 再教育", "彭帅", "香港 + 独立", "香港", "李克强", "白纸", "zzqxw", "无此词条测试",
    "天气", "北京 天气", "足球", "电影", "高考", "春节", "熊猫", "火锅", "地铁", "长城", "故宫", "上海 美食",
    "股票", "手机", "旅游", "音乐", "大学", "医院", "疫苗", "新闻",
]


def _write_probe_set(tmp_path: Path, *, terms: list[str] = TERMS, timeout_s: float = 1.0, retries: int = 2,
                     controls: bool = True, concurrency: int = 8) -> Path:
    entries = []
    for t in terms:
        if " + " in t:
            entries.append({"components": t.split(" + ")})
        else:
            entries.append({"term": t})
    kw = tmp_path / "faultterms.yaml"
    kw.write_text(yaml.safe_dump({"name": "faultterms", "entries": entries}, allow_unicode=True), encoding="utf-8")
    ps = {
        "name": "faults",
        "keywords": [{"list": str(kw)}],
        "platforms": [{"name": "sandbox", "rate_limit": {"interval_s": 0, "jitter": 0, "concurrency": concurrency}}],
        "controls": ({"truism": True, "every": 10, "lists": [str(FIXTURES / "keywords" / "controls.yaml")]}
                     if controls else {"truism": False, "lists": []}),
        "timeout_s": timeout_s,
        "retries": retries,
    }
    path = tmp_path / "faults.yaml"
    path.write_text(yaml.safe_dump(ps, allow_unicode=True), encoding="utf-8")
    return path


def truth(sb: Sandbox, query: str) -> str:
    out = sb.engine.search(query)
    if out.kind == "hard":
        return "hard"
    if out.kind == "empty":
        return "no_results"
    return "soft" if out.rule else "not_censored"


def probes(store_path: Path, run_id: str):
    with Store(store_path, readonly=True) as st:
        return [m for m in st.measurements(run_id) if m.role == "probe"]


class RssSampler:
    """Peak resident memory of this process while the block runs (Linux /proc)."""

    def __init__(self, every_s: float = 0.005):
        self.every_s = every_s
        self.baseline = self.peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            self.peak = max(self.peak, self._rss())

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.baseline) / 2**20


# --------------------------------------------------------------------------- the plan itself


def test_fault_choice_is_seeded_and_close_to_its_rate():
    plan = FaultPlan(rate=0.2, seed=7)
    picks = [plan.choose(f"q{i}", 0) for i in range(5000)]
    assert picks == [FaultPlan(rate=0.2, seed=7).choose(f"q{i}", 0) for i in range(5000)]
    assert picks != [FaultPlan(rate=0.2, seed=8).choose(f"q{i}", 0) for i in range(5000)]
    share = sum(p is not None for p in picks) / len(picks)
    assert 0.18 < share < 0.22
    assert {p for p in picks if p is not None} == set(FaultKind)
    assert FaultPlan(rate=0.0).choose("x", 0) is None
    assert FaultPlan(rates={FaultKind.reset: 1.0}).choose("x", 3) is FaultKind.reset


def test_fault_specs_parse_or_fail_with_one_clear_error(tmp_path):
    plan = parse_fault_spec("rate=0.2,seed=7,stall=0.05,slow_s=2")
    assert plan.seed == 7 and plan.rates[FaultKind.stall] == 0.05 and plan.slow_s == 2
    assert parse_fault_spec("kinds=reset+stall,rate=0.5").per_kind() == {FaultKind.stall: 0.25, FaultKind.reset: 0.25}
    f = tmp_path / "f.yaml"
    f.write_text("seed: 3\nrates: {captcha: 0.5}\n")
    assert parse_fault_spec(str(f)).per_kind() == {FaultKind.captcha: 0.5}
    for bad in ("rate=2", "bogus=1", "rate=x", "reset", "reset=0.8,stall=0.8", "kinds=nope", str(tmp_path / "no.yaml")):
        with pytest.raises(InputError):
            parse_fault_spec(bad)
    f.write_text("seed: 3\nrats: {captcha: 0.5}\n")
    with pytest.raises(InputError, match=r"f\.yaml:2"):
        parse_fault_spec(str(f))


def test_cli_rejects_a_bad_fault_spec_with_exit_2():
    res = run_cli("sandbox", "serve", "--faults", "rate=7")
    assert res.returncode == 2
    assert "Traceback" not in res.stderr and "--faults" in res.stderr


def test_gzip_bomb_is_small_compressed_and_huge_inflated():
    bomb = gzip_bomb(64 * 2**20)
    assert len(bomb) < 200_000
    import zlib

    assert len(zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(bomb, 10 * 2**20 + 1)) > 10 * 2**20


# --------------------------------------------------------------------------- each fault, alone

EXPECTED_FAILURE: dict[FaultKind, str | None] = {
    FaultKind.stall: "timeout",
    FaultKind.reset: "connection_reset",
    FaultKind.http_429: "http_429",
    FaultKind.http_429_retry_after: "http_429",
    FaultKind.http_503: "http_5xx",
    FaultKind.captcha: "captcha",
    FaultKind.truncated: "truncated_body",
    FaultKind.malformed_html: "unexpected_page",  # or the true verdict where the notice text survives
    FaultKind.gbk: None,  # a correctly labelled GBK page is read like any other
    FaultKind.invalid_utf8: "decode_error",
    FaultKind.gzip_bomb: "body_too_large",
    FaultKind.huge_body: "body_too_large",
    FaultKind.redirect_loop: "too_many_redirects",
    FaultKind.trickle: "timeout",  # every read is quick, the whole answer is not
}

EACH_TERMS = ["六四", "天安门 + 坦克", "彭帅", "天气", "zzqxw"]


@pytest.mark.parametrize("kind", list(FaultKind), ids=lambda k: k.value)
def test_each_fault_becomes_its_failure_code_never_a_verdict(kind, tmp_path, store_path):
    slow = kind in (FaultKind.stall, FaultKind.trickle)
    # generous timeouts: a loaded CI machine must not turn a capped body into a timeout
    ps = _write_probe_set(tmp_path, terms=EACH_TERMS, timeout_s=2.0 if slow else 15.0, retries=0, controls=False,
                          concurrency=5)
    # Stalls and trickles last far longer than the 2 s timeout (the sandbox wakes them when it stops):
    # only the client's own deadline can turn them into "timeout", however slow the machine.
    plan = FaultPlan(rates={kind: 1.0}, slow_s=60.0, retry_after_s=0, bomb_bytes=64 * 2**20,
                     huge_body_bytes=50 * 2**20)
    with Sandbox() as sb:
        injector = FaultInjector(plan).install(sb)
        t0 = time.monotonic()
        summary = run_probe_set(ps, store_path, sb)
        elapsed = time.monotonic() - t0
        ms = probes(store_path, summary.run_id)
        assert summary.status == "complete" and len(ms) == len(EACH_TERMS)
        assert injector.counts[kind] >= len(EACH_TERMS)
        for m in ms:
            expected = EXPECTED_FAILURE[kind]
            if m.verdict is Verdict.failure:
                assert m.failure == expected, (m.input, m.failure, m.test_keys.signals)
            else:
                assert kind in (FaultKind.gbk, FaultKind.malformed_html), (m.input, m.verdict)
                assert m.verdict.value == truth(sb, m.query), (m.input, m.verdict)
    # No fault hangs the run. The failure codes above are the real check (a timeout that did not fire
    # gives a verdict or another failure); this wall bound only catches a run that waited for the
    # server: about 2 s expected, and the stalled answers would end by themselves after 60 s.
    assert elapsed < plan.slow_s, elapsed
    if kind is FaultKind.gbk:
        assert all(m.verdict is not Verdict.failure for m in ms)
        assert {m.input: m.verdict for m in ms}["彭帅"] is Verdict.soft


# --------------------------------------------------------------------------- 20 % faulty answers


def test_twenty_percent_faulty_answers_never_make_a_censorship_verdict(tmp_path, store_path):
    ps = _write_probe_set(tmp_path, timeout_s=2.0, retries=2)
    plan = FaultPlan(rate=0.2, seed=7, slow_s=2.5, retry_after_s=1, bomb_bytes=128 * 2**20,
                     huge_body_bytes=50 * 2**20)
    with Sandbox() as sb:
        injector = FaultInjector(plan).install(sb)
        with RssSampler() as rss:
            summary = run_probe_set(ps, store_path, sb)
        ms = probes(store_path, summary.run_id)
        truths = {m.input: truth(sb, m.query) for m in ms}
        events = list(injector.events)

    assert summary.status == "complete"
    assert sorted(m.input for m in ms) == sorted(TERMS)  # one measurement per term, none lost
    faulty = sum(e.kind is not None for e in events)
    assert 0.12 < faulty / len(events) < 0.3, (faulty, len(events))
    assert len({e.kind for e in events if e.kind is not None}) >= 10  # most kinds were actually served

    censored = [m for m in ms if truths[m.input] in ("hard", "soft")]
    assert len(censored) >= 12
    for m in ms:
        if m.verdict is Verdict.failure:
            assert m.failure in FAILURE_CODES, m.failure  # a failure always says why
        else:
            # not one hard/soft for an uncensored term, and no censored term reported as uncensored
            assert m.verdict.value == truths[m.input], (m.input, m.verdict, m.test_keys)
    found = sum(m.verdict.value == truths[m.input] for m in censored)
    assert found >= 0.75 * len(censored)  # retries recover most censored terms

    # Retry-After honoured: a query answered 429 + Retry-After is not asked again sooner.
    last_429: dict[str, float] = {}
    for e in sorted(events, key=lambda e: e.at):
        if e.query in last_429:
            assert e.at - last_429.pop(e.query) >= plan.retry_after_s - 0.05, e.query
        if e.kind is FaultKind.http_429_retry_after:
            last_429[e.query] = e.at

    assert rss.growth_mb < 150, rss.growth_mb


def test_gzip_bombs_and_huge_bodies_stay_capped_in_memory(tmp_path, store_path):
    """Eight concurrent 512 MB gzip bombs and 50 MB bodies: each stops at max_body_bytes while streaming."""
    ps = _write_probe_set(tmp_path, terms=TERMS[:16], timeout_s=5.0, retries=0, controls=False, concurrency=8)
    plan = FaultPlan(rates={FaultKind.gzip_bomb: 0.5, FaultKind.huge_body: 0.5}, seed=1, bomb_bytes=512 * 2**20)
    gzip_bomb(plan.bomb_bytes)  # built before the baseline: the server's cost, not the client's
    with Sandbox() as sb:
        FaultInjector(plan).install(sb)
        with RssSampler(0.002) as rss:
            summary = run_probe_set(ps, store_path, sb)
    ms = probes(store_path, summary.run_id)
    assert len(ms) == 16 and all(m.failure == "body_too_large" for m in ms)
    with Store(store_path, readonly=True) as st:
        assert st.conn.execute("SELECT COALESCE(MAX(size), 0) FROM bodies").fetchone()[0] <= 5_000_000
    assert rss.growth_mb < 150, rss.growth_mb


def test_sandbox_serve_with_faults_serves_them_over_http():
    """`harness sandbox serve --faults` in its own process answers with the planned faults."""
    import subprocess
    import sys

    from .conftest import REPO

    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "sandbox", "serve", "--port", "0", "--faults", "captcha=1.0,seed=3"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "COLUMNS": "400"},
    )
    try:
        line = proc.stdout.readline()
        url = line.split("listening on ")[1].split()[0]
        r = httpx.get(f"{url}/s", params={"wd": "天气"}, timeout=10)
        assert r.status_code == 200 and CAPTCHA_TEXT in r.text
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_a_soft_test_that_cannot_run_is_a_failure_not_an_uncensored_verdict(sandbox, tmp_path, store_path):
    """彭帅 is soft-censored; when every restricted (site:) query fails, the engine must not say not_censored."""

    def responder(h, q):
        if "site:" in q and "彭帅" in q:
            h.send_body(503, b"busy", "text/plain")
            return True
        return False

    sandbox.responder = responder
    ps = _write_probe_set(tmp_path, terms=["彭帅", "足球"], controls=False, retries=1)
    summary = run_probe_set(ps, store_path, sandbox)
    ms = {m.input: m for m in probes(store_path, summary.run_id)}
    assert ms["彭帅"].verdict is Verdict.failure and ms["彭帅"].failure == "http_5xx"
    assert "soft_probe:http_5xx" in ms["彭帅"].test_keys.signals  # the soft test could not run
    assert ms["足球"].verdict is Verdict.not_censored


def test_a_soft_control_that_never_works_fails_the_probe_with_soft_control_failed(sandbox, tmp_path, store_path):
    sandbox.responder = lambda h, q: ("site:" in q and h.send_body(503, b"busy", "text/plain")) is None
    ps = _write_probe_set(tmp_path, terms=["彭帅", "足球"], controls=False, retries=0)
    summary = run_probe_set(ps, store_path, sandbox)
    ms = probes(store_path, summary.run_id)
    assert ms and all(m.verdict is Verdict.failure and m.failure == "soft_control_failed" for m in ms)
