"""Auto-isolation of phrase probes that became censored between two runs."""

from __future__ import annotations

import json

from harness.isolation.after_runs import find_newly_censored, isolate_new_censorship
from harness.keywords.lists import load_keyword_list
from harness.models import ProbeSet
from harness.operations.runs import RunRequest, prepare
from harness.store.sqlite import Store

from .conftest import run_probe_set

PHRASES = """\
name: phrases
entries:
  - {term: 白纸运动抗议现场, category: collective_action}   # epoch 2026-11 adds the rule 白纸
  - {term: 乌鲁木齐高楼火灾遇难者, category: xinjiang}      # epoch 2026-11 adds 乌鲁木齐 + 火灾 (soft)
  - {term: 六四天安门, category: june4}                     # censored in both epochs: not new
  - {term: 李克强, category: leaders}                       # newly censored but too short for a phrase
  - {term: 今天天气很好, category: control}                 # never censored
"""


def _write_probe_set(tmp_path, enabled: bool = True) -> object:
    (tmp_path / "keywords").mkdir()
    (tmp_path / "keywords" / "phrases.yaml").write_text(PHRASES, encoding="utf-8")
    (tmp_path / "probes").mkdir()
    ps = tmp_path / "probes" / "phr.yaml"
    ps.write_text(
        "name: phr\nkeywords: [{list: phrases}]\nplatforms: [{name: sandbox}]\n"
        "rate_limit: {interval_s: 0, jitter: 0, concurrency: 2}\n"
        "controls: {truism: true, lists: []}\n"
        f"isolate: {{enabled: {str(enabled).lower()}, budget: 30, min_length: 4}}\n",
        encoding="utf-8",
    )
    return ps


def test_probe_set_isolate_option_is_additive():
    ps = ProbeSet.model_validate({"name": "x", "keywords": [{"list": "a"}], "platforms": [{"name": "sandbox"}]})
    assert ps.isolate.enabled is False and ps.isolate.budget == 40
    ps = ProbeSet.model_validate({"name": "x", "keywords": [{"list": "a"}], "platforms": [{"name": "sandbox"}],
                                  "isolate": {"enabled": True, "budget": 12}})
    assert ps.isolate.enabled and ps.isolate.budget == 12


def test_newly_censored_phrases_are_isolated_recorded_and_not_redone(sandbox, tmp_path, store_path):
    ps = _write_probe_set(tmp_path)
    first = run_probe_set(ps, store_path, sandbox)
    sandbox.set_epoch(1)
    second = run_probe_set(ps, store_path, sandbox)
    assert first.status == second.status == "complete"

    req = RunRequest(ps, store_path, base_urls={"sandbox": sandbox.url})
    plan = prepare(req)
    assert plan.probe_set.isolate.enabled
    kw = tmp_path / "keywords"
    with Store(store_path) as store:
        assert find_newly_censored(store, first.run_id) == []  # first sight is not "newly" censored
        found = {c.term: c for c in find_newly_censored(store, second.run_id)}
        assert set(found) == {"白纸运动抗议现场", "乌鲁木齐高楼火灾遇难者"}
        assert found["乌鲁木齐高楼火灾遇难者"].verdict == "soft"
        assert found["白纸运动抗议现场"].previous == "not_censored"

        # The run itself isolated them (the probe set's `isolate` option, wired in harness.operations.runs).
        rules = {r["term"]: r["rules"] for r in second.isolations}
        assert rules == {"白纸运动抗议现场": [["白纸"]], "乌鲁木齐高楼火灾遇难者": [["乌鲁木齐", "火灾"]]}
        assert all(r["complete"] and r["queries"] <= 30 for r in second.isolations)
        assert first.isolations == []

        rows = store.conn.execute("SELECT input, rules, complete FROM isolations WHERE run_id=?",
                                  (second.run_id,)).fetchall()
        assert {r["input"]: json.loads(r["rules"]) for r in rows} == {
            "白纸运动抗议现场": [["白纸"]], "乌鲁木齐高楼火灾遇难者": [["乌鲁木齐", "火灾"]]}

        entries = load_keyword_list(kw / "discovered-sandbox.yaml").keyword_list.entries
        assert sorted(e.term for e in entries) == ["乌鲁木齐 + 火灾", "白纸"]
        assert all("auto-isolation" in (e.source or "") and second.run_id in (e.source or "") for e in entries)

        before = sum(sandbox.queries.values())
        assert isolate_new_censorship(store, second.run_id, plan, keywords_dir=kw) == []
        assert sum(sandbox.queries.values()) == before


def test_after_run_isolation_stores_every_query_as_evidence_in_a_run_of_its_own(sandbox, tmp_path, store_target):
    store_path = store_target  # a SQLite file, then a postgresql:// store
    ps = _write_probe_set(tmp_path)
    run_probe_set(ps, store_path, sandbox)
    sandbox.set_epoch(1)
    second = run_probe_set(ps, store_path, sandbox)
    with Store(store_path) as st:
        iso_runs = [r for r in st.list_runs() if r.probe_set == "isolation:after-run:sandbox"]
        assert len(iso_runs) == 1 and iso_runs[0].status == "complete"
        assert iso_runs[0].vantage == st.get_run(second.run_id).vantage
        stored = [m for m in st.measurements(iso_runs[0].run_id) if m.role == "isolation"]
        # the run's own probe verdicts are untouched: isolation queries never count as probes
        assert sum(st.run_counts(second.run_id).values()) == len(list(st.measurements(second.run_id, role="probe")))
    assert len(stored) == sum(r["queries"] for r in second.isolations)
    assert {m.input for m in stored} >= {"白纸运动抗议现场", "乌鲁木齐高楼火灾遇难者"}
    assert all(m.evidence.body_sha256 for m in stored)


def test_after_run_priors_come_from_the_workspace_lists(tmp_path, store_path):
    from harness.sandbox import Sandbox

    used = {}
    for priors in (True, False):
        root = tmp_path / str(priors)
        root.mkdir()
        ps = _write_probe_set(root)
        (root / "keywords" / "known.yaml").write_text(
            "name: known\nentries:\n  - 白纸\n  - {components: [乌鲁木齐, 火灾]}\n", encoding="utf-8")
        if not priors:
            ps.write_text(ps.read_text(encoding="utf-8").replace("min_length: 4}", "min_length: 4, priors: false}"),
                          encoding="utf-8")
        with Sandbox() as sb:
            run_probe_set(ps, root / "s.db", sb)
            sb.set_epoch(1)
            second = run_probe_set(ps, root / "s.db", sb)
        used[priors] = {r["term"]: (r["rules"], r["queries"]) for r in second.isolations}
    for term, (rules, q) in used[True].items():
        assert rules == used[False][term][0]
        assert q < used[False][term][1], term
