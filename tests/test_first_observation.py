"""The comparator's first-observation rule: a change needs a known state on both sides.

A key with no known verdict before run B (only failures in run A and before) is
``first_observation``, never ``newly_censored``/``newly_uncensored``, never confirmed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from harness.analysis.diff import CHANGES, UNKNOWN, Transition, diff_runs, to_markdown
from harness.analysis.report import build_report
from harness.sandbox import Sandbox
from harness.sandbox.faults import FaultInjector, parse_fault_spec
from harness.store.sqlite import Store

from .conftest import FIXTURES, run_probe_set
from .test_schedule_support import cli_inprocess

COMPAT = FIXTURES / "compat"
MANIFEST = json.loads((COMPAT / "MANIFEST.json").read_text(encoding="utf-8"))


def test_a_term_that_only_failed_before_is_a_first_observation_not_newly_censored(tmp_path, capsys):
    # the pinned store reproduces the case: 彭帅 and 李克强 only failed in run 1 (no earlier run), hard in run 2
    db = tmp_path / "s.db"
    shutil.copyfile(COMPAT / "store-v1.db", db)
    first, second = MANIFEST["runs"]
    with Store(db) as st:
        result = diff_runs(st, first, second)
    by_term = {c.term: c for c in result.changes}
    for term in ("彭帅", "李克强"):
        c = by_term[term]
        assert (c.transition, c.before, c.after) == (Transition.first_observation, UNKNOWN, "hard")
        assert c.confirmed is None and c.confirmed_by is None
    assert by_term["白纸"].transition is Transition.newly_censored  # a real change stays one
    assert not [c for c in result.changes if c.before == UNKNOWN and c.transition in CHANGES]
    assert "| first_observation | sandbox | 彭帅 | compat | unknown | hard | – |" in to_markdown(result)
    res = cli_inprocess(capsys, "diff", first, second, "--store", str(db), "--json")
    rows = {c["term"]: c for c in json.loads(res.stdout)["changes"]}
    assert rows["彭帅"]["transition"] == "first_observation" and rows["彭帅"]["confirmed"] is None
    text = cli_inprocess(capsys, "diff", first, second, "--store", str(db)).stdout
    assert "first_observation" in " ".join(text.split()) or "first_obs" in text
    with Store(db, readonly=True) as st:
        page, md = build_report(st)
    assert "first_observation" in page and "first_observation" in md


def _probe_set(root: Path) -> Path:
    """Concurrency 1: the faults are chosen per query and per how many times it was sent before, and with
    four workers the controls' interleaving (so each query's count) depended on timing; on a loaded
    machine the seed then sometimes made no term unknown. One worker sends in the same order every time."""
    (root / "keywords").mkdir()
    shutil.copyfile(FIXTURES / "keywords" / "mini.yaml", root / "keywords" / "mini.yaml")
    shutil.copyfile(FIXTURES / "keywords" / "controls.yaml", root / "keywords" / "controls.yaml")
    (root / "probes").mkdir()
    ps = root / "probes" / "faulty.yaml"
    ps.write_text("name: faulty\nkeywords:\n  - list: mini\nplatforms:\n  - name: sandbox\n"
                  "    rate_limit: {interval_s: 0, jitter: 0, concurrency: 1}\n"
                  "controls: {every: 5, lists: [controls]}\ntimeout_s: 5\nretries: 0\nflip_retest: true\n",
                  encoding="utf-8")
    return ps


def test_three_epochs_at_20_percent_faults_report_no_change_from_unknown(tmp_path):
    ps = _probe_set(tmp_path)
    db = tmp_path / "s.db"
    runs = []
    with Sandbox() as sb:
        faults = FaultInjector(parse_fault_spec("rate=0.2,seed=11,kinds=reset+http_503+captcha+truncated+http_429"))
        faults.install(sb)
        for epoch in (0, 1, 0):
            sb.set_epoch(epoch)
            runs.append(run_probe_set(ps, db, sb, new=True).run_id)
        faults.close()
    assert sum(faults.counts.values()) > 0
    seen_first = 0
    with Store(db, readonly=True) as st:
        for a, b in zip(runs, runs[1:]):
            result = diff_runs(st, a, b)
            for c in result.changes:
                if c.before == UNKNOWN:
                    assert c.transition not in (Transition.newly_censored, Transition.newly_uncensored), c
                    assert c.transition in (Transition.first_observation, Transition.new_term), c
                if c.transition in (Transition.newly_censored, Transition.newly_uncensored):
                    assert c.before not in (None, UNKNOWN) and c.after not in (None, UNKNOWN), c
            seen_first += result.counts.get("first_observation", 0)
    assert seen_first >= 1, "the fault plan no longer makes a term unknown in a run: pick another seed"
