"""Timeline of one term and the run history, on a store built by real sandbox runs."""

from __future__ import annotations

import json

import pytest

from harness.analysis.timeline import run_history, term_timeline
from harness.errors import NotFoundError
from harness.store.sqlite import Store

from .comparator_helpers import OUTAGE_TERM, build_three_runs, cli
from .conftest import run_cli


@pytest.fixture(scope="module")
def three_runs(tmp_path_factory):
    return build_three_runs(tmp_path_factory.mktemp("tl"))


def test_periods_with_first_and_last_seen(three_runs):
    db, (r1, r2, r3) = three_runs
    with Store(db, readonly=True) as st:
        tl = term_timeline(st, "甲一")
    [track] = tl.tracks
    assert (track.platform, track.vantage) == ("sandbox", "lab")
    assert [(p.verdict, p.first_run, p.last_run, p.runs) for p in track.periods] == [
        ("not_censored", r1, r1, 1), ("hard", r2, r3, 2)]
    assert track.periods[1].first_seen < track.periods[1].last_seen
    assert track.current == "hard" and track.age_days is not None and track.age_days >= 0


def test_failures_do_not_end_a_period(three_runs):
    db, (r1, r2, r3) = three_runs
    with Store(db, readonly=True) as st:
        [track] = term_timeline(st, OUTAGE_TERM).tracks
    [period] = track.periods
    assert (period.verdict, period.first_run, period.last_run, period.runs, period.unknown_runs) == ("hard", r1, r3, 2, 1)


def test_unknown_term_is_a_clear_error(three_runs):
    db, _ = three_runs
    with Store(db, readonly=True) as st, pytest.raises(NotFoundError):
        term_timeline(st, "没有这个词")
    res = run_cli("timeline", "没有这个词", "--store", str(db))
    assert res.returncode == 2 and "no measurement" in res.stderr and "Traceback" not in res.stderr


def test_history_lists_runs_with_counts(three_runs):
    db, (r1, r2, r3) = three_runs
    with Store(db, readonly=True) as st:
        rows = run_history(st)
    assert [r.run_id for r in rows] == [r3, r2, r1]
    assert rows[1].counts.get("failure") == 1  # the outage term in run 2
    assert rows[2].censored == 5 and rows[0].censored == 5  # 3 hard + 2 soft in both epochs
    assert all(r.measurements > sum(r.counts.values()) for r in rows)  # truism and controls are counted too


def test_cli_timeline_and_history(three_runs):
    db, (r1, r2, r3) = three_runs
    res = cli("timeline", "甲一", "--store", str(db), "--json")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert [p["verdict"] for p in data["tracks"][0]["periods"]] == ["not_censored", "hard"]
    table = cli("timeline", "甲一", "--store", str(db), "--format", "table")
    assert table.returncode == 0 and "甲一" in table.stdout and "now hard" in table.stdout
    hist = cli("history", "--store", str(db), "--json")
    assert hist.returncode == 0 and [r["run_id"] for r in json.loads(hist.stdout)] == [r3, r2, r1]
    assert cli("history", "--store", str(db)).returncode == 0
