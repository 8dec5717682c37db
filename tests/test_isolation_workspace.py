"""Isolation in a workspace: priors by default (and --no-priors), the rule store growing,
progress while isolating, and every query stored as evidence (--store)."""

from __future__ import annotations

import asyncio
import json

import pytest

from harness.isolation.evidence import IsolationEvidence
from harness.isolation.oracle import isolate_on_platform
from harness.keywords.lists import load_keyword_list
from harness.models import is_isolation_run
from harness.sandbox import Sandbox
from harness.store.sqlite import Store

from .test_isolate_cli import EXPECTED, RULES, TEXT, _as_sets, cli, fast, sandbox_spec
from .test_isolate_cli import workspace  # noqa: F401  (autouse: each test in its own folder)

KNOWN = "name: known\nentries:\n  - {components: [新疆, 集中营]}\n  - 法轮功\n  - {components: [香港, 自由]}\n" \
        "  - {term: 天气, category: control}\n"


@pytest.fixture
def rules_sandbox():
    with Sandbox(rules=RULES) as sb:
        yield sb


def _isolate(sb: Sandbox, *args: str) -> dict:
    res = cli("isolate", "-p", "sandbox", "--base-url", f"sandbox={sb.url}", "--json", *args)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def test_the_workspace_lists_are_priors_by_default_and_no_priors_turns_them_off(rules_sandbox, workspace):
    (workspace / "keywords").mkdir()
    (workspace / "keywords" / "known.yaml").write_text(KNOWN, encoding="utf-8")
    plain = _isolate(rules_sandbox, "--no-priors", "--keywords-dir", "elsewhere", TEXT)
    hinted = _isolate(rules_sandbox, TEXT)
    assert plain["priors"] is None
    # three rules from the list; the benign control entry is never a prior
    assert hinted["priors"]["rules"] == 3 and hinted["priors"]["files"] == ["keywords/known.yaml"]
    assert _as_sets(hinted["rules"]) == _as_sets(plain["rules"]) == _as_sets(EXPECTED)
    assert hinted["queries"] < plain["queries"]
    again = _isolate(rules_sandbox, "--no-priors", TEXT)  # the workspace now has discovered rules too
    assert again["priors"] is None and again["queries"] == plain["queries"]

    res = cli("isolate", "-p", "sandbox", "--no-priors", "--priors", "keywords/known.yaml", "文本")
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1 and "--no-priors" in res.stderr


def test_every_isolation_grows_the_rule_store_that_the_next_one_guesses_first(rules_sandbox, workspace):
    first = _isolate(rules_sandbox, "香港学者呼吁成立独立调查委员会")
    assert first["rules"] == [["香港", "独立"]] and first["new_rules"] == [["香港", "独立"]]
    lst = load_keyword_list(workspace / "keywords" / "discovered-sandbox.yaml").keyword_list
    assert [e.components for e in lst.entries] == [["香港", "独立"]]
    assert "harness isolate" in lst.entries[0].source and first["run_id"] in lst.entries[0].source

    text = "多名香港议员再次要求独立调查此事"
    blind = _isolate(rules_sandbox, "--no-priors", text)
    known = _isolate(rules_sandbox, text)
    assert known["priors"]["rules"] == 1
    assert known["rules"] == blind["rules"] == [["香港", "独立"]]
    assert known["new_rules"] == [] and known["queries"] < blind["queries"]


def test_every_query_is_stored_as_evidence_in_the_given_store(rules_sandbox, workspace, store_target):
    db = store_target  # a SQLite file, then a postgresql:// store
    out = _isolate(rules_sandbox, "--store", str(db), "--no-priors", TEXT)
    assert not (workspace / "results").exists()  # --store was honoured
    with Store(db) as st:
        run = st.get_run(out["run_id"])
        assert run.probe_set == "isolation:isolate:sandbox" and is_isolation_run(run.probe_set)
        assert run.status == "complete"
        ms = list(st.measurements(run.run_id))
    queries = [m for m in ms if m.role == "isolation"]
    truisms = [m for m in ms if m.role == "truism"]
    assert len(queries) == out["queries"] and len(truisms) >= 1
    assert all(m.test_keys.control_ok for m in truisms)
    assert queries[0].input == TEXT and queries[0].verdict.is_censored
    # each answer keeps its evidence: the stored page, its hash, status and the soft test's page
    with Store(db) as st:
        for m in queries:
            assert m.evidence.status_code == 200 and m.evidence.body_sha256
            assert st.get_body(m.evidence.body_sha256)
            assert "isolation" in m.tags and any(t.startswith("text:") for t in m.tags)
            if m.test_keys.soft_probe is not None:
                assert st.get_body(m.test_keys.soft_probe["stored_body_sha256"])
    soft = [m for m in queries if m.verdict.value == "soft"]
    assert soft and all(m.test_keys.soft_probe["verdict"] in ("no_results", "hard") for m in soft)


def test_isolation_runs_never_become_the_latest_run_of_a_comparison(rules_sandbox, workspace, tmp_path):
    from harness.analysis.diff import resolve_run
    from harness.models import Run
    from harness.store.sqlite import utcnow

    db = tmp_path / "s.db"
    with Store(db) as st:
        st.create_run(Run(run_id="r1", probe_set="ps", started_at=utcnow(), status="complete"))
    _isolate(rules_sandbox, "--store", str(db), "法轮功")
    with Store(db) as st:
        assert resolve_run(st, "latest").run_id == "r1"
        assert [r.run_id for r in st.list_runs()][1] == "r1"  # the isolation run is newer


def test_a_query_that_keeps_failing_is_stored_as_a_failure(rules_sandbox, tmp_path):
    def busy(handler, query: str) -> bool:
        if "法轮功" in query and "site:" not in query:
            handler.send_body(503, b"busy", "text/plain")
            return True
        return False

    rules_sandbox.responder = busy
    with Store(tmp_path / "s.db") as st:
        ev = IsolationEvidence(st, "isolate", "sandbox")
        res = asyncio.run(isolate_on_platform(sandbox_spec(rules_sandbox), TEXT, None, fast(retries=1), evidence=ev))
        assert res.complete is False and res.error
        ms = list(st.measurements(ev.run_id))
        assert st.get_run(ev.run_id).status == "complete"
    failed = [m for m in ms if m.verdict.value == "failure"]
    assert len(failed) == 1 and failed[0].failure == "http_5xx" and failed[0].test_keys.attempts == 2
    assert len([m for m in ms if m.role == "isolation"]) == res.queries + 1


def test_progress_reports_queries_so_far_and_rules_found(rules_sandbox):
    seen: list[tuple[int, int]] = []
    res = asyncio.run(isolate_on_platform(sandbox_spec(rules_sandbox), TEXT, None, fast(),
                                          progress=lambda q, r: seen.append((q, r))))
    assert seen[0] == (1, 0) and seen[-1] == (res.queries, 3)
    assert sorted({q for q, _ in seen}) == list(range(1, res.queries + 1))  # after every answer
    assert all(b[1] >= a[1] for a, b in zip(seen, seen[1:]))  # rules only ever grow


def test_the_cli_shows_progress_on_stderr_and_keeps_stdout_clean(rules_sandbox):
    res = cli("isolate", "-p", "sandbox", "--base-url", f"sandbox={rules_sandbox.url}", "--no-priors", TEXT)
    assert res.returncode == 0, res.stderr
    assert "isolating on sandbox" in res.stderr and "3 rule(s) found" in res.stderr
    assert "found" not in res.stdout and "evidence: run" in res.stdout


def test_discover_stores_evidence_shows_progress_and_learns_as_it_goes(rules_sandbox, workspace, tmp_path):
    texts = tmp_path / "t.txt"
    texts.write_text("新疆棉花产业报道：外媒称当地存在集中营\n今日股市小幅上涨\n集中营历史纪录片在新疆首映\n",
                     encoding="utf-8")
    res = cli("discover", "-p", "sandbox", "--base-url", f"sandbox={rules_sandbox.url}", "--texts", str(texts))
    assert res.returncode == 0, res.stderr
    assert "discover on sandbox" in res.stderr and "rule(s) found" in res.stderr
    with Store(workspace / "results" / "harness.db") as st:
        runs = [r for r in st.list_runs() if r.probe_set == "isolation:discover:sandbox"]
        assert len(runs) == 1 and runs[0].status == "complete"
        digests = {t for m in st.measurements(runs[0].run_id) for t in m.tags if t.startswith("text:")}
        assert len(digests) == 3
        queries = [m for m in st.measurements(runs[0].run_id) if m.role == "isolation"]
    state = json.loads((workspace / "keywords" / ".discovered-sandbox.state.json").read_text(encoding="utf-8"))
    done = sorted(state["done"].values(), key=lambda r: r["text_id"])
    assert [[sorted(x) for x in r["rules"]] for r in done] == [[["新疆", "集中营"]], [], [["新疆", "集中营"]]]
    assert len(queries) == sum(r["queries"] for r in done)
    # the third text's rule was learnt from the first: guessed first, proved in a few queries
    assert done[2]["queries"] < done[0]["queries"]
