"""Positive controls: terms known to be censored, probed every run; one that stops being
detected while the truism works is flagged (tested on the sandbox across rule epochs)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from harness.models import Verdict
from harness.operations.runs import RunRequest, execute, prepare
from harness.sandbox import Sandbox, load_rules
from harness.store.sqlite import Store

from .conftest import FIXTURES, fast_options


def rules_lifting(term: str):
    """The default sandbox rules, with a last epoch in which ``term`` is no longer censored."""
    rules = load_rules()
    last = rules.epochs[-1]
    lifted = last.model_copy(update={"name": "lifted", "hard": [r for r in last.hard if r != [term]],
                                     "soft": [r for r in last.soft if r != [term]]})
    return rules.model_copy(update={"epochs": [*rules.epochs, lifted]})


def probe_set(tmp_path: Path, positives: str) -> Path:
    path = tmp_path / "ps.yaml"
    path.write_text(textwrap.dedent(f"""\
        name: positives
        keywords: [{{list: {FIXTURES / 'keywords' / 'mini.yaml'}}}]
        platforms:
          - name: sandbox
            rate_limit: {{interval_s: 0, jitter: 0, concurrency: 2}}
        controls:
          every: 25
          lists: []
          positive: {{terms: {{sandbox: [{positives}]}}, lists: []}}
        timeout_s: 5
        retries: 1
        """))
    return path


def run(sb: Sandbox, ps: Path, store: Path, notices: list):
    req = RunRequest(ps, store, base_urls={"sandbox": sb.url}, new=True, options=fast_options(on_notice=notices.append))
    return execute(req, prepare(req))


def test_a_positive_control_that_stops_being_detected_is_flagged_across_epochs(tmp_path):
    store = tmp_path / "s.db"
    ps = probe_set(tmp_path, "六四, 彭帅")
    with Sandbox(rules_lifting("彭帅")) as sb:
        first_notices: list = []
        first = run(sb, ps, store, first_notices)
        assert first.positive_controls["sandbox"] == {"sent": 2, "detected": 2, "missed": [], "failed": 0, "rate": 1.0}
        assert not [n for n in first_notices if n.kind == "positive_control_missed"]
        sb.set_epoch("lifted")
        notices: list = []
        second = run(sb, ps, store, notices)
    row = second.positive_controls["sandbox"]
    assert (row["detected"], row["missed"], row["rate"]) == (1, ["彭帅"], 0.5)
    missed = [n for n in notices if n.kind == "positive_control_missed"]
    assert len(missed) == 1 and "'彭帅' not detected (not_censored) while the truism works" in missed[0].message
    assert "(it was soft in the previous run)" in missed[0].message  # epoch 2026-10: soft
    with Store(store, readonly=True) as st:
        pcs = {m.input: m for m in st.measurements(second.run_id, role="positive_control")}
        probes = list(st.measurements(second.run_id, role="probe"))
    assert pcs["彭帅"].verdict is Verdict.not_censored and "positive_control_missed" in pcs["彭帅"].test_keys.signals
    assert pcs["六四"].verdict is Verdict.hard and "positive_control_missed" not in pcs["六四"].test_keys.signals
    assert all(m.input not in ("彭帅", "六四") or m.role == "probe" for m in probes)  # roles kept apart
    assert "六四" not in second.counts["sandbox"]  # positive controls are not counted among the verdicts


def test_a_failed_positive_control_is_not_a_miss(tmp_path):
    ps = probe_set(tmp_path, "六四")
    with Sandbox() as sb:
        sb.responder = lambda h, q: (h.send_body(503, b"down", "text/plain") or True) if q == "六四" else False
        summary = run(sb, ps, tmp_path / "s.db", [])
    assert summary.positive_controls["sandbox"] == {"sent": 1, "detected": 0, "missed": [], "failed": 1, "rate": None}


def test_the_report_shows_each_runs_positive_control_detection_rate(tmp_path):
    from harness.analysis.report import build_report

    store = tmp_path / "s.db"
    ps = probe_set(tmp_path, "六四, 彭帅")
    with Sandbox(rules_lifting("彭帅")) as sb:
        first = run(sb, ps, store, [])
        sb.set_epoch("lifted")
        second = run(sb, ps, store, [])
    with Store(store, readonly=True) as st:
        html, md = build_report(st)
    section = md[md.index("## Positive controls"):md.index("## Changes since")]
    assert f"| {first.run_id.replace('-', chr(92) + '-')} | 2/2 (100%) |" in section
    assert f"| {second.run_id.replace('-', chr(92) + '-')} | 1/2 (50%) missed: 彭帅 |" in section
    assert "sandbox 2/2" in html and 'class="missed" title="not detected: 彭帅"' in html
    assert "sandbox 1/2 (missed: 彭帅)" in html
