"""Time to removal: the Kaplan-Meier figures, the report's survival chart (checked in a real headless Chromium),
item changes in the report and in exports."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import uuid
from pathlib import Path

import pytest

from harness.analysis.export import export_store, import_file
from harness.analysis.items import diff_items, item_timeline, kaplan_meier, survival
from harness.analysis.report import build_report, collect, render_html
from harness.models import Evidence, Measurement, Run, Verdict
from harness.models import TestKeys as Keys
from harness.store.sqlite import Store

from .platform_replay import Replay

T0 = dt.datetime(2026, 11, 1, 8, 0, tzinfo=dt.timezone.utc)
HOURS = [0, 6, 24, 72]  # four runs
HOSTILE = 'http://sandbox.invalid/item/"><script>document.title="PWNED"</script>'
NOTICE = '<div class="weui-msg__title warn">{}</div>'
# item -> (platform, category, state in each run; None = only a failure in that run)
WORLD = {
    "http://sandbox.invalid/item/w1": ("wechat", "leaders", ["available", "removed_censored", "removed_censored", "removed_censored"]),
    "http://sandbox.invalid/item/w2": ("wechat", "leaders", ["available", "available", "removed_by_author", "removed_by_author"]),
    "http://sandbox.invalid/item/w3": ("wechat", "xinjiang", ["available", "available", "available", "available"]),
    "http://sandbox.invalid/item/w4": ("wechat", "xinjiang", ["removed_censored"] * 4),
    "http://sandbox.invalid/item/b1": ("weibo", "leaders", ["available", "available", "removed_other", "available"]),
    "http://sandbox.invalid/item/b2": ("weibo", "leaders", ["available", "available", None, None]),
    HOSTILE: ("weibo", '<img src=x onerror="document.title=1">', ["available", "available", "available", "removed_other"]),
}


def _store(path: Path | str) -> Path | str:
    with Store(path) as st:
        for r, hours in enumerate(HOURS):
            started = T0 + dt.timedelta(hours=hours)
            run_id = f"run{r}"
            st.create_run(Run(run_id=run_id, probe_set="watch", started_at=started, status="complete",
                              planned=len(WORLD), finished_at=started + dt.timedelta(minutes=5)))
            for i, (url, (platform, category, states)) in enumerate(WORLD.items()):
                state = states[r]
                verdict = Verdict.failure if state is None else Verdict(state)
                body = (f"<html><body>{NOTICE.format(state)}</body></html>" if state and state != "available"
                        else '<html><body><div id="js_content">正文</div></body></html>').encode()
                m = Measurement(
                    measurement_id=uuid.uuid4().hex, run_id=run_id, probe_set="watch", task_key=f"{platform}\x1fitem\x1f{url}",
                    measurement_start_time=started + dt.timedelta(seconds=i), test_name="content_removal",
                    platform=platform, role="item", input=url, components=[url], list_name="w", category=category,
                    query=url, verdict=verdict, failure="timeout" if state is None else None,
                    test_keys=Keys(signals=[] if state is None else [state], item_spec=f"{platform}_spec"),
                    evidence=Evidence(status_code=None if state is None else 200))
                st.add_measurement(m, None if state is None else body)
    return path


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def store(request, tmp_path_factory) -> Path | str:
    """The same four runs on each backend (PostgreSQL: a schema of the session's server; skipped without one)."""
    if request.param == "sqlite":
        return _store(tmp_path_factory.mktemp("items-report") / "items.db")
    return _store(request.getfixturevalue("pg_server").new_schema())


def test_kaplan_meier_by_hand():
    pts = kaplan_meier([(6, True), (24, True), (72, False)])
    assert [(p.hours, round(p.share, 4), p.at_risk, p.removed) for p in pts] == [
        (0, 1.0, 3, 0), (6, 0.6667, 3, 1), (24, 0.3333, 2, 1)]
    # a censored time equal to a removal time is still at risk then
    assert [round(p.share, 4) for p in kaplan_meier([(6, True), (6, False), (24, True)])] == [1.0, 0.6667, 0.0]


def test_survival_from_the_store(store):
    with Store(store, readonly=True) as st:
        s = survival(st, [f"run{r}" for r in range(len(HOURS))])
    wechat, weibo = s.by_platform
    # wechat: w1 removed at 6 h, w2 at 24 h, w3 followed 72 h; w4 first seen removed: not in the curve
    assert (wechat.group, wechat.items, wechat.removed, wechat.first_seen_removed) == ("wechat", 3, 2, 1)
    assert [(p.hours, round(p.share, 4)) for p in wechat.points] == [(0, 1.0), (6.0, 0.6667), (24.0, 0.3333)]
    assert wechat.median_hours == 24.0 and wechat.removed_by == {"removed_by_author": 1, "removed_censored": 1}
    assert wechat.at_hours == {"1": 1.0, "6": 0.666667, "24": 0.333333, "72": 0.333333, "168": None}
    # weibo: b1 removed at 24 h, b2 censored at 6 h (then only failures), the third removed at 72 h
    assert [(p.hours, p.share, p.at_risk) for p in weibo.points] == [(0, 1.0, 3), (24.0, 0.5, 2), (72.0, 0.0, 1)]
    assert weibo.median_hours == 24.0 and weibo.followed_hours == 72.0
    cats = {c.group: c for c in s.by_category}
    assert cats["wechat / leaders"].median_hours == 6.0 and cats["wechat / xinjiang"].first_seen_removed == 1


def test_item_changes_have_windows_and_first_observations(store):
    with Store(store, readonly=True) as st:
        d01 = diff_items(st, "run0", "run1")
        d12 = diff_items(st, "run1", "run2")
        d23 = diff_items(st, "run2", "run3")
    c = {x.url.rsplit("/", 1)[-1]: x for x in d01.changes}
    assert set(c) == {"w1"} and c["w1"].transition.value == "removed_censored"
    assert c["w1"].window_start == T0 and c["w1"].window_end == T0 + dt.timedelta(hours=6) and c["w1"].window_hours == 6
    c = {x.url.rsplit("/", 1)[-1]: x.transition.value for x in d12.changes}
    assert c == {"w2": "removed_by_author", "b1": "removed_other", "b2": "became_unknown"}
    # b2 only failed in runs 2 and 3: nothing changed between them, and what was known stands; b1 came back
    assert {x.url.rsplit("/", 1)[-1]: x.transition.value for x in d23.changes} == {
        "b1": "restored", HOSTILE.rsplit("/", 1)[-1]: "removed_other"}
    with Store(store, readonly=True) as st:
        (track,) = item_timeline(st, "http://sandbox.invalid/item/b1").tracks
        (w4,) = item_timeline(st, "http://sandbox.invalid/item/w4").tracks
    assert [(c.transition.value, c.window_hours) for c in track.changes] == [
        ("first_observation", None), ("removed_other", 18.0), ("restored", 48.0)]
    assert [c.transition.value for c in w4.changes] == ["first_observation"] and w4.first_state == "removed_censored"


def test_report_shows_items_and_the_survival_table(store):
    with Store(store, readonly=True) as st:
        page, md = build_report(st)
    for section in ('id="items"', 'id="chart-survival"', 'id="survival"', 'id="item-changes"', 'id="item-evidence"'):
        assert section in page
    assert 'id="chart-censored"' not in page  # no search probes: no search sections
    assert "&lt;script&gt;" in page and "&lt;img src=x onerror" in page and "<script" not in page
    assert "| wechat | 3 | 2 | 1 | 24 | 100% | 67% | 33% | 33% | – |" in md
    # time to removal per platform and category too: leaders' articles went in 6 h (median), xinjiang's one was
    # first seen removed and is counted apart
    assert "| wechat / leaders | 2 | 2 | 0 | 6 | 100% | 50% | 0% | – | – |" in md
    assert "| wechat / xinjiang | 1 | 0 | 1 | not reached |" in md
    assert "<h4>Per platform and category</h4>" in page and "<td>wechat / leaders</td>" in page
    assert '<tr><td>wechat</td><td class="num">3</td><td class="num">2</td>' in page and "built-in method" not in page
    assert "removed_other" in md and "## Item changes since the previous run" in md


@pytest.mark.xdist_group("chromium")
def test_survival_chart_points_in_headless_chromium_match_the_store(store, browser):
    """The session's one Chromium (tests/conftest.py) renders the report; its DOM carries the store's figures."""
    with Store(store, readonly=True) as st:
        data = collect(st)
        expected = {(c.group, p.hours, p.share) for c in data.survival.by_platform for p in c.points}
        page = render_html(data).encode("utf-8")
    with Replay(lambda req: (200, {"Content-Type": "text/html; charset=utf-8"}, page)) as server:
        answer = asyncio.run(browser.load(server.url + "/report.html", wait_for="#chart-survival", timeout_s=30))
    assert answer.failure is None and answer.status == 200, (answer.failure, answer.signal)
    dom = answer.body.decode("utf-8")
    chart = re.search(r'<svg[^>]*id="chart-survival".*?</svg>', dom, re.S).group(0)
    shown = {(m.group(1), float(m.group(2)), float(m.group(3))) for m in re.finditer(
        r'<circle class="km"[^>]*data-platform="([^"]*)" data-hours="([^"]*)" data-share="([^"]*)"', chart)}
    assert shown == expected and len(shown) == 6  # 3 points per platform
    assert len(re.findall(r'<polyline class="survival"', chart)) == 2
    # the hostile URL and category stay text: nothing ran, no element or handler was injected
    assert "<script" not in dom.lower() and not re.search(r"<[^>]+\son[a-z]+\s*=", dom, re.I)
    assert not re.search(r"<img\b", dom, re.I)
    assert re.search(r"<title>(.*?)</title>", dom, re.S).group(1) == "Censorship report: watch"


def test_item_measurements_export_and_import_losslessly(store, tmp_path):
    out = tmp_path / "items.jsonl"
    with Store(store, readonly=True) as st:
        n = export_store(st, out, "jsonl", bodies=True)
    assert n == len(WORLD) * len(HOURS)
    rec = json.loads(out.read_text(encoding="utf-8").splitlines()[0])
    assert rec["test_name"] == "content_removal" and rec["test_keys"]["role"] == "item"
    assert rec["test_keys"]["item_spec"] and rec["input"].startswith("http://sandbox.invalid/item/")
    with Store(tmp_path / "copy.db") as st:
        summary = import_file(st, out)
        assert summary.added == n
        assert [c.model_dump() for c in diff_items(st, "run0", "run1").changes] == [
            c.model_dump() for c in diff_items(Store(store, readonly=True), "run0", "run1").changes]
