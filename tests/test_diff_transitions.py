"""The comparator on stores built by real runs against loopback sandboxes (tailored rule epochs)."""

from __future__ import annotations

import csv
import io
import json

import pytest

from harness.analysis.diff import (
    Difference,
    Filters,
    RunScope,
    Transition,
    cross_diff,
    default_pair,
    diff_runs,
    resolve_run,
    to_csv,
    to_markdown,
)
from harness.errors import InputError, NotFoundError
from harness.store.sqlite import Store

from .comparator_helpers import (
    DROPPED_TERM,
    NEW_TERM,
    OUTAGE_TERM,
    PURGED_TERM,
    build_three_runs,
    cli,
    make_world,
    run,
    sandboxes,
)
from .conftest import run_cli

EXPECTED = {
    "甲一": Transition.newly_censored,
    "乙二": Transition.newly_uncensored,
    "丙三": Transition.hard_to_soft,
    "丁四": Transition.soft_to_hard,
    OUTAGE_TERM: Transition.became_unknown,
    PURGED_TERM: Transition.results_dropped,
    DROPPED_TERM: Transition.dropped_term,
    NEW_TERM: Transition.new_term,
}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Three runs at vantage 'lab': epoch before; epoch after with an outage and a purge; epoch after again."""
    root = tmp_path_factory.mktemp("world")
    db, runs = build_three_runs(root)
    return {"root": root, "db": db, "runs": runs}


def _diff(world, a=0, b=1, **kw):
    with Store(world["db"], readonly=True) as st:
        return diff_runs(st, world["runs"][a], world["runs"][b], **kw)


def test_every_transition_kind_between_two_real_runs(world):
    result = _diff(world)
    got = {c.term: c.transition for c in result.changes}
    assert got == EXPECTED
    # first_observation needs a key with no verdict before B: tests/test_hostile.py covers it
    assert set(result.counts) == {t.value for t in Transition} - {Transition.first_observation.value}
    assert result.compared == 7  # the nine terms but the new and the dropped one


def test_verdict_changes_are_confirmed_by_the_flip_retest(world):
    by_term = {c.term: c for c in _diff(world).changes}
    for term in ("甲一", "乙二", "丙三", "丁四"):
        assert by_term[term].confirmed is True and by_term[term].confirmed_by == "retest"
    assert by_term[NEW_TERM].confirmed is True and by_term[NEW_TERM].confirmed_by == "next_run"


def test_became_unknown_keeps_the_known_verdict_and_its_age(world):
    c = {c.term: c for c in _diff(world).changes}[OUTAGE_TERM]
    assert (c.before, c.after, c.last_known) == ("hard", "unknown", "hard")
    assert c.stale_days is not None and c.stale_days >= 0
    assert c.before_seen is not None and c.after_seen is not None and c.before_seen < c.after_seen


def test_a_failure_in_the_earlier_run_does_not_fake_a_change(world):
    # run 2 only failed for the outage term; run 3 sees it hard again, as run 1 did: no change
    terms = {c.term for c in _diff(world, 1, 2).changes}
    assert OUTAGE_TERM not in terms
    assert PURGED_TERM not in terms or {c.term: c for c in _diff(world, 1, 2).changes}[PURGED_TERM].transition is not (
        Transition.results_dropped)


def test_results_dropped_threshold(world):
    c = {c.term: c for c in _diff(world).changes}[PURGED_TERM]
    assert c.result_count_before > 1000 and c.result_count_after == 7 and c.drop > 0.99
    assert PURGED_TERM not in {c.term for c in _diff(world, drop_threshold=None).changes}
    with pytest.raises(InputError):
        _diff(world, drop_threshold=1.5)


def test_filters_by_list_category_tag_platform(world):
    alpha = _diff(world, filters=Filters(categories=("alpha",)))
    assert {c.term for c in alpha.changes} == {"甲一", "乙二", "丙三", "丁四"}
    watch = _diff(world, filters=Filters(tags=("watch",)))
    assert {c.term for c in watch.changes} == {"甲一", "丙三", OUTAGE_TERM, DROPPED_TERM}
    assert _diff(world, filters=Filters(lists=("nope",))).changes == []
    assert len(_diff(world, filters=Filters(lists=("cmp",), platforms=("sandbox",))).changes) == len(EXPECTED)


def test_run_references_dates_ages_and_vantage(world):
    r1, r2, r3 = world["runs"]
    with Store(world["db"], readonly=True) as st:
        runs = {r.run_id: r for r in st.list_runs()}
        day = runs[r3].started_at.date().isoformat()
        assert resolve_run(st, day).run_id == r3
        assert resolve_run(st, "latest@lab").run_id == r3
        assert resolve_run(st, "latest~2@lab").run_id == r1
        with pytest.raises(NotFoundError):
            resolve_run(st, "latest@elsewhere")
        with pytest.raises(NotFoundError):
            resolve_run(st, "2000-01-01")
        later = runs[r3].started_at.replace(year=runs[r3].started_at.year + 1)
        assert resolve_run(st, "7d", scope=RunScope(now=later)).run_id == r3
        with pytest.raises(NotFoundError):
            resolve_run(st, "7d")  # nothing is a week old
        assert [r.run_id for r in default_pair(st, None, None)] == [r2, r3]
        assert [r.run_id for r in default_pair(st, "latest~2", None)] == [r1, r3]


def test_unconfirmed_changes_are_shown_then_confirmed_by_the_next_run(tmp_path):
    ps = make_world(tmp_path, flip_retest=False)
    [sb] = sandboxes()
    db = tmp_path / "s.db"
    try:
        r1 = run(ps, db, {"sandbox": sb.url})
        sb.set_epoch("after")
        r2 = run(ps, db, {"sandbox": sb.url})
        with Store(db, readonly=True) as st:
            before = {c.term: c for c in diff_runs(st, r1.run_id, r2.run_id).changes}
        assert before["甲一"].transition is Transition.newly_censored and before["甲一"].confirmed is None
        assert "unconfirmed" in to_markdown(diff_runs(Store(db, readonly=True), r1.run_id, r2.run_id))
        sb.set_epoch("before")  # the next run disagrees for every change
        r3 = run(ps, db, {"sandbox": sb.url})
        with Store(db, readonly=True) as st:
            after = {c.term: c for c in diff_runs(st, r1.run_id, r2.run_id).changes}
            assert after["甲一"].confirmed is False
            sb.set_epoch("after")
        r4 = run(ps, db, {"sandbox": sb.url})
        with Store(db, readonly=True) as st:
            again = {c.term: c for c in diff_runs(st, r3.run_id, r4.run_id).changes}
        assert again["甲一"].confirmed is None  # r4 is the newest run: nothing later to agree yet
        r5 = run(ps, db, {"sandbox": sb.url})
        with Store(db, readonly=True) as st:
            again = {c.term: c for c in diff_runs(st, r3.run_id, r4.run_id).changes}
        assert again["甲一"].confirmed is True and again["甲一"].confirmed_by == "next_run"
        assert r5.run_id
    finally:
        sb.stop()


def test_by_vantage_compares_two_vantage_points(tmp_path):
    ps = make_world(tmp_path)
    sb_bj, sb_sh = sandboxes(2)
    sb_sh.set_epoch("after")  # the other vantage point sees the other rule set
    db = tmp_path / "s.db"
    try:
        bj = run(ps, db, {"sandbox": sb_bj.url}, vantage="bj")
        sh = run(ps, db, {"sandbox": sb_sh.url}, vantage="sh")
    finally:
        sb_bj.stop()
        sb_sh.stop()
    with Store(db, readonly=True) as st:
        result = cross_diff(st, "vantage", bj.run_id, sh.run_id)
        a, b = default_pair(st, None, None, across_vantage=True)
        assert (a.run_id, b.run_id) == (bj.run_id, sh.run_id)
    got = {r.term: r.difference for r in result.rows}
    assert got == {"甲一": Difference.censored_only_b, "乙二": Difference.censored_only_a,
                   "丙三": Difference.hard_a_soft_b, "丁四": Difference.soft_a_hard_b}
    assert (result.side_a, result.side_b) == ("bj", "sh")
    res = cli("diff", "--by", "vantage", "--store", str(db), "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["by"] == "vantage" and out["counts"] == {"censored_only_a": 1, "censored_only_b": 1,
                                                         "hard_a_soft_b": 1, "soft_a_hard_b": 1}


def test_by_platform_compares_two_platforms_in_one_run(tmp_path):
    ps = make_world(tmp_path, two_platforms=True)
    sb1, sb2 = sandboxes(2)
    sb2.set_epoch("after")  # sandbox2 censors what sandbox will censor later
    db = tmp_path / "s.db"
    try:
        r = run(ps, db, {"sandbox": sb1.url, "sandbox2": sb2.url})
    finally:
        sb1.stop()
        sb2.stop()
    with Store(db, readonly=True) as st:
        result = cross_diff(st, "platform", r.run_id, r.run_id, side_a="sandbox2", side_b="sandbox")
        with pytest.raises(InputError):
            cross_diff(st, "platform", r.run_id, r.run_id, side_a="sandbox")
    got = {r.term: r.difference for r in result.rows}
    # "which terms sandbox2 censors that sandbox does not"
    assert {t for t, d in got.items() if d is Difference.censored_only_a} == {"甲一"}
    assert got == {"甲一": Difference.censored_only_a, "乙二": Difference.censored_only_b,
                   "丙三": Difference.soft_a_hard_b, "丁四": Difference.hard_a_soft_b}
    res = cli("diff", "--by", "platform", "-p", "sandbox2", "-p", "sandbox", "--store", str(db), "--csv")
    assert res.returncode == 0, res.stderr
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert {(r["term"], r["difference"]) for r in rows} == {(t, d.value) for t, d in got.items()}
    bad = cli("diff", "--by", "platform", "-p", "sandbox", "--store", str(db))
    assert isinstance(bad.exception, InputError) and "two --platform" in str(bad.exception)


def test_cli_outputs(world):
    db = str(world["db"])
    r1, r2, _ = world["runs"]
    js = cli("diff", r1, r2, "--store", db, "--json")
    assert js.returncode == 0, js.stderr
    data = json.loads(js.stdout)
    assert {c["term"]: c["transition"] for c in data["changes"]} == {k: v.value for k, v in EXPECTED.items()}
    md = cli("diff", r1[:-3], r2[:-3], "--store", db, "--markdown")
    assert md.returncode == 0 and "| newly_censored | sandbox | 甲一 |" in md.stdout
    cs = cli("diff", r1, r2, "--store", db, "--csv", "--category", "alpha")
    rows = list(csv.DictReader(io.StringIO(cs.stdout)))
    assert {r["term"] for r in rows} == {"甲一", "乙二", "丙三", "丁四"} and rows[0]["confirmed"] == "True"
    table = cli("diff", r1, r2, "--store", db, "--tag", "watch")
    assert table.returncode == 0 and "became_unknown" in table.stdout and "乙二" not in table.stdout
    both = cli("diff", r1, r2, "--store", db, "--json", "--csv")
    assert isinstance(both.exception, InputError) and "one of" in str(both.exception)
    single = run_cli("diff", "--store", db, "latest~5")
    assert single.returncode == 2 and single.stderr.startswith("error: ") and "Traceback" not in single.stderr


def test_csv_and_markdown_escape_hostile_terms():
    from harness.analysis.diff import Change, DiffResult, md_escape

    evil = "a|b<script>`x`</script>[l](javascript:alert(1))"
    result = DiffResult(run_a="a", run_b="b", probe_set="p", changes=[
        Change(platform="p", term=evil, transition=Transition.new_term, before=None, after="hard")])
    md = to_markdown(result)
    assert "<script>" not in md and "a\\|b" in md and "](javascript" not in md
    assert md_escape("x\ny") == "x y"
    assert list(csv.DictReader(io.StringIO(to_csv(result))))[0]["term"] == evil
