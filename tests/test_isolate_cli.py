"""`harness isolate` end to end: the sandbox over real sockets, faults, budget."""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
from collections import Counter

import pytest

from harness.isolation.oracle import OracleFailure, OracleOptions, PlatformOracle, isolate_on_platform
from harness.platforms.registry import PlatformRegistry
from harness.sandbox import Sandbox
from harness.sandbox.server import Epoch, SandboxRules

from .conftest import run_cli

RULES = SandboxRules(
    authorized_domains=["people.com.cn", "xinhuanet.com"],
    other_domains=["sohu.com", "zhihu.com", "163.com"],
    epochs=[Epoch(name="t", hard=[["新疆", "集中营"], ["法轮功"]], soft=[["香港", "独立"]])],
)
# Two hard rules and one soft rule, embedded in ordinary text.
TEXT = "记者昨日报道新疆地区多处设施被外界称为集中营，另有香港团体呼吁独立调查，与法轮功无关的市民也表示关注"
EXPECTED = [["新疆", "集中营"], ["香港", "独立"], ["法轮功"]]


@pytest.fixture
def rules_sandbox():
    with Sandbox(rules=RULES) as sb:
        yield sb


@pytest.fixture(autouse=True)
def workspace(tmp_path, monkeypatch):
    """Each test in its own workspace: the store, the keywords folder (priors, discovered rules)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HARNESS_STORE", raising=False)
    return tmp_path


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the ``harness`` command in this process (the CLI is thin; saves a start-up per call)."""
    import contextlib
    import io

    from harness.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return subprocess.CompletedProcess(["harness", *args], code, out.getvalue(), err.getvalue())


def sandbox_spec(sb: Sandbox):
    return PlatformRegistry.default().get("sandbox").model_copy(update={"base_url": sb.url})


def fast(**kw) -> OracleOptions:
    return OracleOptions(**{"retry_backoff_s": 0.001, "seed": 1, **kw})


def _as_sets(rules) -> set[frozenset[str]]:
    return {frozenset(r) for r in rules}


def test_isolate_cli_finds_hard_and_soft_rules_over_real_sockets(rules_sandbox, workspace):
    res = run_cli("isolate", "--platform", "sandbox", "--base-url", f"sandbox={rules_sandbox.url}", "--json", TEXT,
                  cwd=workspace)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert _as_sets(out["rules"]) == _as_sets(EXPECTED)
    assert out["complete"] is True and out["censored"] is True and out["error"] is None
    # every isolation query reached the platform (soft tests add requests, not queries)
    assert out["queries"] > 3 and out["requests"] >= out["queries"] + 1
    assert TEXT in rules_sandbox.queries


def test_isolate_cli_prints_rules_and_query_count_for_people(rules_sandbox):
    res = cli("isolate", "-p", "sandbox", "--base-url", f"sandbox={rules_sandbox.url}", "香港民众呼吁独立")
    assert res.returncode == 0, res.stderr
    assert "香港 + 独立" in res.stdout and "queries" in res.stdout and "complete" in res.stdout


def test_uncensored_text_costs_one_query(rules_sandbox, tmp_path):
    f = tmp_path / "t.txt"
    f.write_text("今天天气很好，我们去公园散步\n", encoding="utf-8")
    res = cli("isolate", "-p", "sandbox", "--base-url", f"sandbox={rules_sandbox.url}", "--file", str(f), "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out == {**out, "censored": False, "rules": [], "queries": 1, "complete": True}


def test_first_attempt_failures_are_retried_and_never_taken_as_answers(rules_sandbox):
    once = fast(control_every=0)  # the truism only at start: every request string is sent once
    clean = asyncio.run(isolate_on_platform(sandbox_spec(rules_sandbox), TEXT, None, once))
    rules_sandbox.queries.clear()
    attempts: Counter[str] = Counter()
    lock = threading.Lock()

    def first_attempt_503(handler, query: str) -> bool:
        with lock:
            attempts[query] += 1
            first = attempts[query] == 1
        if first:
            handler.send_body(503, b"busy", "text/plain")
        return first

    rules_sandbox.responder = first_attempt_503
    faulty = asyncio.run(isolate_on_platform(sandbox_spec(rules_sandbox), TEXT, None, once))
    assert _as_sets(faulty.rules) == _as_sets(EXPECTED) == _as_sets(clean.rules)
    assert faulty.complete and faulty.error is None
    # same decisions, same number of isolation queries; each request was sent exactly twice
    assert faulty.queries == clean.queries
    assert faulty.requests == 2 * clean.requests
    assert set(rules_sandbox.queries.values()) == {2}


def test_a_query_that_keeps_failing_stops_with_a_partial_result(rules_sandbox):
    def fail_with_falungong(handler, query: str) -> bool:
        if "法轮功" in query and "site:" not in query and len(query) < 20:
            handler.send_body(503, b"busy", "text/plain")
            return True
        return False

    rules_sandbox.responder = fail_with_falungong
    res = cli("isolate", "-p", "sandbox", "--base-url", f"sandbox={rules_sandbox.url}", "--retries", "2",
                  "--retry-backoff", "0.001", "--json", TEXT)
    assert res.returncode == 2
    err = res.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: isolation stopped:") and "http_5xx" in err[0]
    assert "Traceback" not in res.stderr
    out = json.loads(res.stdout)
    assert out["complete"] is False and "failed 3 time(s)" in out["error"]
    # what was certified before the failure is exact; the failing rule was not guessed
    assert _as_sets(out["rules"]) <= _as_sets(EXPECTED)
    assert ("法轮功",) not in {tuple(r) for r in out["rules"]}


def test_control_failure_is_an_error_not_a_verdict(rules_sandbox):
    def truism_down(handler, query: str) -> bool:
        if query == "的":
            handler.send_body(200, "<html><body>请完成安全验证</body></html>".encode(), "text/html; charset=utf-8")
            return True
        return False

    rules_sandbox.responder = truism_down
    res = asyncio.run(isolate_on_platform(sandbox_spec(rules_sandbox), TEXT, None, fast(retries=1)))
    assert res.complete is False and res.queries == 0 and res.rules == [] and res.censored is None
    assert "captcha" in (res.error or "")
    assert TEXT not in rules_sandbox.queries


def test_budget_stops_early_and_marks_incomplete(rules_sandbox):
    res = cli("isolate", "-p", "sandbox", "--base-url", f"sandbox={rules_sandbox.url}", "--budget", "4",
                  "--json", TEXT)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["queries"] == 4 and out["complete"] is False and out["budget"] == 4
    assert "budget of 4 queries ran out" in res.stderr


def test_soft_verdict_counts_as_censored_and_no_results_does_not(rules_sandbox):
    async def go():
        async with PlatformOracle(sandbox_spec(rules_sandbox), fast()) as oracle:
            soft = await oracle.answer("香港 独立")
            hard = await oracle.answer("法轮功")
            empty = await oracle.answer("zzqxw")  # not in these rules' empty list: results
            return soft, hard, empty, oracle.stats.requests

    soft, hard, plain, requests = asyncio.run(go())
    assert soft.verdict.value == "soft" and soft.censored and soft.soft["domain"] == "sohu.com"
    assert hard.verdict.value == "hard" and hard.censored and hard.soft is None
    assert not plain.censored
    # control + (probe + soft control + soft probe) + probe + (probe + soft probe)
    assert requests == 1 + 3 + 1 + 2


def test_isolate_cli_rejects_bad_input_with_one_line(rules_sandbox, tmp_path):
    url = f"sandbox={rules_sandbox.url}"
    for args, needle in [
        (["isolate", "-p", "sandbox", "--base-url", url], "either as an argument or with --file"),
        (["isolate", "-p", "nosuch", "文本"], "unknown platform 'nosuch'"),
        (["isolate", "-p", "sandbox", "--base-url", url, "--budget", "0", "文本"], "--budget"),
        (["isolate", "-p", "sandbox", "--file", str(tmp_path / "missing.txt")], "file not found"),
    ]:
        res = cli(*args)
        assert res.returncode == 2, (args, res.stderr)
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0], (args, res.stderr)


def test_oracle_failure_is_a_harness_error():
    from harness.errors import HarnessError

    assert issubclass(OracleFailure, HarnessError)


def test_priors_from_keyword_lists_cut_queries_not_exactness(rules_sandbox, tmp_path):
    lst = tmp_path / "known.yaml"
    lst.write_text("name: known\nentries:\n  - {components: [新疆, 集中营]}\n  - 法轮功\n  - {components: [香港, 自由]}\n",
                   encoding="utf-8")
    res = cli("isolate", "-p", "sandbox", "--base-url", f"sandbox={rules_sandbox.url}", "--priors", str(lst),
                  "--json", TEXT)
    assert res.returncode == 0, res.stderr
    hinted = json.loads(res.stdout)
    plain = asyncio.run(isolate_on_platform(sandbox_spec(rules_sandbox), TEXT, None, fast()))
    assert _as_sets(hinted["rules"]) == _as_sets(plain.rules) == _as_sets(EXPECTED)
    assert hinted["queries"] < plain.queries
    res = cli("isolate", "-p", "sandbox", "--priors", str(tmp_path / "nope.yaml"), "文本")
    assert res.returncode == 2 and "priors not found" in res.stderr


def test_the_control_is_rechecked_and_a_lost_control_stops_the_isolation(rules_sandbox):
    res = asyncio.run(isolate_on_platform(sandbox_spec(rules_sandbox), TEXT, None, fast(control_every=5)))
    assert res.complete and rules_sandbox.queries["的"] == 1 + (res.queries - 1) // 5

    rules_sandbox.queries.clear()
    seen = {"truism": 0}

    def truism_breaks_after_start(handler, query: str) -> bool:
        if query == "的":
            seen["truism"] += 1
            if seen["truism"] > 1:
                handler.send_body(200, "<html><body>请完成安全验证</body></html>".encode(), "text/html; charset=utf-8")
                return True
        return False

    rules_sandbox.responder = truism_breaks_after_start
    broken = asyncio.run(isolate_on_platform(sandbox_spec(rules_sandbox), TEXT, None, fast(control_every=5, retries=1)))
    assert not broken.complete and broken.queries == 5 and "captcha" in (broken.error or "")


def test_a_query_too_long_for_the_platform_fails_at_once_without_retries(rules_sandbox):
    spec = sandbox_spec(rules_sandbox)
    spec = spec.model_copy(update={"request": spec.request.model_copy(update={"max_query_chars": 8})})

    async def go():
        async with PlatformOracle(spec, fast(retries=3)) as oracle:
            with pytest.raises(OracleFailure, match="query_too_long") as info:
                await oracle.answer("新疆 集中营 和 香港 自由")
            return info.value, oracle.stats

    failure, stats = asyncio.run(go())
    assert failure.code == "query_too_long" and failure.attempts == 1
    assert stats.failures == {"query_too_long": 1}  # the control (2 chars) passed; the long query was tried once


def test_a_query_length_limit_isolates_the_head_that_fits_every_query(rules_sandbox):
    """Baidu reads 38 characters: a longer query is refused (query_too_long), so isolation works on the text's
    head, short enough that the truism and the soft test's ``site:`` restriction still fit."""
    base = sandbox_spec(rules_sandbox)
    spec = base.model_copy(update={"request": base.request.model_copy(update={"max_query_chars": 50})})
    # room = 50 - len(" 的 site:zhihu.com") - QUERY_SLACK = 25 characters: the 新疆…集中营 rule (ends at 22),
    # not 香港…独立 (ends at 33)
    res = asyncio.run(isolate_on_platform(spec, TEXT, options=fast()))
    assert res.error is None and res.complete, res.error
    assert res.read_chars == 25 and res.to_dict()["read_chars"] == 25
    assert _as_sets(res.rules) == {frozenset({"新疆", "集中营"})}
    unlimited = asyncio.run(isolate_on_platform(base, TEXT, options=fast()))
    assert unlimited.read_chars is None and _as_sets(unlimited.rules) == _as_sets(EXPECTED)
