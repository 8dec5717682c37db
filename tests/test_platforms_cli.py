"""``harness platforms check`` through the CLI, output piped as a script or cron would read it.

A truism whose answer is a failure leaves nothing to compare the spec's signals with: one line
says so (no table, no restricted truism sent) and the exit code is 1 ("found": a failing
platform, docs/operations.md). Summary lines never end in a dangling separator.
"""

from __future__ import annotations

from harness.exitcodes import ExitCode

from .conftest import run_cli
from .test_hostile import invoke

TABLE_MARKS = ("┃", "│", "signal\tmatched", "matched")


def check(*args: str):
    """In this process (the real entry point, output captured): fast; the first test uses a real pipe."""
    return invoke("platforms", "check", "sandbox", *args)


def test_an_unreachable_platform_is_one_line_and_exit_1_without_a_table():
    res = run_cli("platforms", "check", "sandbox", "--base-url", "http://127.0.0.1:9")  # nothing listens there
    assert res.returncode == ExitCode.FOUND, res.stderr
    lines = res.stdout.splitlines()
    assert len(lines) == 1, res.stdout  # one line even at the 80 columns of a pipe
    assert lines[0].startswith("unreachable: connection_refused (") and "no signals checked" in lines[0]
    assert not any(mark in res.stdout for mark in TABLE_MARKS) and "restricted truism" not in res.stdout
    assert not lines[0].rstrip().endswith(";") and res.stderr == ""


def test_a_failed_truism_answer_is_one_line_and_the_soft_test_is_not_sent(sandbox):
    def busy(handler, query: str) -> bool:
        handler.send_body(503, b"busy", "text/plain")
        return True

    sandbox.responder = busy
    res = check("--base-url", sandbox.url)
    assert res.code == ExitCode.FOUND, res.err
    assert res.out.splitlines() == [res.out.strip()], res.out
    assert res.out.startswith("unhealthy: the truism's answer (HTTP 503) is a failure, http_5xx (")
    assert "no signals checked" in res.out and not any(mark in res.out for mark in TABLE_MARKS)
    assert dict(sandbox.queries) == {"的": 1}  # the restricted truism (的 site:...) was not sent

    as_json = check("--base-url", sandbox.url, "--json")
    assert as_json.code == ExitCode.FOUND
    assert '"soft_control": null' in as_json.out and '"failure": "http_5xx"' in as_json.out


def test_a_healthy_truism_prints_its_tables_and_no_summary_ends_in_a_separator(sandbox):
    def soft_test_drops(handler, query: str) -> bool:
        if "site:" in query:  # the restricted truism: the connection closes without an answer (no URL)
            handler.close_connection = True
            return True
        return False

    sandbox.responder = soft_test_drops
    res = check("--base-url", sandbox.url)
    assert res.code == ExitCode.OK, res.out + res.err
    lines = res.out.splitlines()
    summaries = [ln for ln in lines if ln.startswith(("truism ", "restricted truism (soft test) "))]
    assert len(summaries) == 2, res.out
    assert summaries[0].startswith("truism 的 → HTTP 200, not_censored; http://")
    assert summaries[1].startswith("restricted truism (soft test) 的 site:") and "HTTP -, failure (" in summaries[1]
    assert not any(ln.rstrip().endswith(";") for ln in lines), res.out  # was "...(remote_protocol); "
    assert "matched" in res.out and lines[-1] == "healthy: the truism has results"


def test_a_query_without_results_is_not_a_failure_its_signals_are_shown():
    """No results is an answer (the no-results markers are worth seeing): the table stays, exit 1."""
    from harness.sandbox import Sandbox

    with Sandbox() as sb:
        res = check("--base-url", sb.url, "--query", "无此词条测试")
    assert res.code == ExitCode.FOUND, res.err
    assert "matched" in res.out and "unhealthy: the truism has no results (no_results)" in res.out
