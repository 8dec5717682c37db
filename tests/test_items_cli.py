"""Watched items through the CLI against the sandbox: three rule epochs, a SIGKILL mid-run, the right transitions
and removal windows, with evidence."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import yaml

from harness.sandbox import Sandbox
from harness.sandbox.server import result_item_id
from harness.store.sqlite import Store, parse_iso

from .comparator_helpers import cli
from .conftest import REPO, run_cli

N_RESULT_ITEMS = 40  # sandbox result items: 白纸's removed from epoch 2 on, 乌鲁木齐 火灾's from epoch 3 on, 的's never
NAMED = ["control", "weather", "likeqiang", "diary", "baizhi", "urumqi", "oldnews"]


def _item(name: str) -> str:
    return f"http://sandbox.invalid/item/{name}"


def _world(tmp: Path, with_june4: bool) -> Path:
    queries = ["白纸", "乌鲁木齐 火灾", "的"]
    items = [{"url": _item(n), **({"control": True} if n == "control" else {"category": "named"})} for n in NAMED]
    items += [{"url": _item(result_item_id(queries[i % 3], i)), "category": f"results-{i % 3}"}
              for i in range(N_RESULT_ITEMS)]
    if with_june4:
        items.append({"url": _item("june4"), "category": "named"})  # new in run 3, and already removed
    (tmp / "watch").mkdir(exist_ok=True)
    (tmp / "watch" / "w.yaml").write_text(yaml.safe_dump({"name": "w", "items": items}, allow_unicode=True),
                                          encoding="utf-8")
    (tmp / "probes").mkdir(exist_ok=True)
    ps = tmp / "probes" / "items.yaml"
    ps.write_text(yaml.safe_dump({
        "name": "items", "items": [{"list": "w"}],
        "controls": {"truism": True, "every": 10, "lists": []}, "timeout_s": 5, "retries": 1}), encoding="utf-8")
    return ps


def _items_stored(db: Path) -> int:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute("SELECT COUNT(*) FROM measurements WHERE role='item'").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return 0


def _run(ps: Path, db: Path, url: str, in_process: bool = True) -> dict:
    args = ("run", str(ps), "--store", str(db), "--base-url", f"sandbox={url}", "--json")
    if in_process:
        res = cli(*args)
        assert res.returncode == 0, res.exception
        return json.loads(res.stdout)
    proc = run_cli(*args)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_watch_list_across_three_epochs_through_the_cli(tmp_path):
    ps = _world(tmp_path, with_june4=False)
    db = tmp_path / "items.db"
    with Sandbox() as sb:
        # run 1, paced slowly by the configuration (not the probe set: the resumed run must be the same plan),
        # killed with SIGKILL mid-run, then resumed by running the probe set again
        slow = tmp_path / "slow.toml"
        slow.write_text("[rate_limits.sandbox_item]\ninterval_s = 0.05\njitter = 0\nconcurrency = 1\n")
        env = {k: v for k, v in os.environ.items() if k != "HARNESS_STORE"}
        proc = subprocess.Popen([sys.executable, "-m", "harness", "run", str(ps), "--store", str(db), "--config",
                                 str(slow), "--base-url", f"sandbox={sb.url}", "-q"], cwd=REPO, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while _items_stored(db) < 12 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert proc.poll() is None, "the run ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        killed_at = _items_stored(db)
        assert 0 < killed_at < N_RESULT_ITEMS + len(NAMED) - 1
        first = _run(ps, db, sb.url, in_process=False)
        assert first["status"] == "complete" and first["resumed_with"] >= killed_at
        sb.set_epoch(1)
        second = _run(ps, db, sb.url)
        sb.set_epoch(2)
        _world(tmp_path, with_june4=True)
        third = _run(ps, db, sb.url)

    with Store(db, readonly=True) as st:
        runs = st.list_runs("items")
        assert len(runs) == 3 and all(r.status == "complete" for r in runs)
        assert st.run_sessions(first["run_id"]) == 2  # resumed, not restarted
        per_item = st.conn.execute("SELECT input, COUNT(*) FROM measurements WHERE run_id=? AND role='item'"
                                   " GROUP BY input", (first["run_id"],)).fetchall()
        assert len(per_item) == N_RESULT_ITEMS + len(NAMED) - 1 and all(n == 1 for _, n in per_item)
        seen = {(r[0], r[1]): parse_iso(r[2]) for r in st.conn.execute(
            "SELECT run_id, input, measurement_start_time FROM measurements WHERE role='item'")}

    def changes(a: dict, b: dict) -> dict[str, dict]:
        res = cli("diff", a["run_id"], b["run_id"], "--store", str(db), "--json")
        assert res.returncode == 0, res.exception
        return {c["url"]: c for c in json.loads(res.stdout)["items"]["changes"]}

    c12 = changes(first, second)
    removed_2 = {_item(result_item_id("白纸", i)) for i in range(0, N_RESULT_ITEMS, 3)}
    assert {u: c["transition"] for u, c in c12.items()} == {
        _item("likeqiang"): "removed_censored", _item("diary"): "removed_by_author",
        _item("baizhi"): "removed_censored", **{u: "removed_censored" for u in removed_2}}
    for url, c in c12.items():  # the window: last seen available (run 1) .. first seen removed (run 2)
        assert parse_iso(c["window_start"]) == seen[(first["run_id"], url)]
        assert parse_iso(c["window_end"]) == seen[(second["run_id"], url)]
    assert c12[_item("likeqiang")]["signals"] == ["violation"]
    assert c12[_item("diary")]["signals"] == ["deleted_by_publisher"]

    c23 = changes(second, third)
    removed_3 = {_item(result_item_id("乌鲁木齐 火灾", i)) for i in range(1, N_RESULT_ITEMS, 3)}
    assert {u: c["transition"] for u, c in c23.items()} == {
        _item("baizhi"): "restored", _item("urumqi"): "removed_censored", _item("oldnews"): "removed_other",
        _item("june4"): "first_observation", **{u: "removed_censored" for u in removed_3}}
    # an item first seen already removed is a first observation, not a removal
    assert c23[_item("june4")]["before"] is None and c23[_item("june4")]["after"] == "removed_censored"

    # the timeline of one item: every change with its window, and the evidence of the removal
    res = cli("timeline", _item("baizhi"), "--store", str(db), "--json")
    assert res.returncode == 0, res.exception
    (track,) = json.loads(res.stdout)["tracks"]
    assert [p["state"] for p in track["periods"]] == ["available", "removed_censored", "available"]
    assert [c["transition"] for c in track["changes"]] == ["first_observation", "removed_censored", "restored"]
    removal = track["changes"][1]
    assert parse_iso(removal["window_start"]) == seen[(first["run_id"], _item("baizhi"))]
    assert parse_iso(removal["window_end"]) == seen[(second["run_id"], _item("baizhi"))]
    with Store(db, readonly=True) as st:
        doc = st.conn.execute("SELECT doc FROM measurements WHERE measurement_id=?",
                              (removal["measurement_id"],)).fetchone()[0]
        m = json.loads(doc)
        assert m["test_name"] == "content_removal" and m["role"] == "item" and m["test_keys"]["item_spec"] == "sandbox_item"
        assert "此内容因违规无法查看" in st.get_body(m["evidence"]["body_sha256"]).decode("utf-8")
    res = cli("timeline", _item("june4"), "--store", str(db), "--format", "table")
    assert res.returncode == 0 and "first seen already removed" in " ".join(res.stdout.split())
    res = cli("timeline", _item("baizhi"), "--store", str(db))  # in a pipe: the periods as rows, nothing cut
    rows = [line.split("\t") for line in res.stdout.splitlines()]
    assert rows[0][:3] == ["platform", "vantage", "state"]
    assert [r[2] for r in rows[1:]] == ["available", "removed_censored", "available"] and rows[2][7] == "violation"


def test_a_probe_set_of_keywords_and_items_runs_diffs_and_exports_through_the_cli(tmp_path):
    """One probe set holding both keywords and watched items: one run measures both, the diff shows keyword changes
    beside the removal, and the exports (CSV to a pipe, Parquet to a file) carry the item measurements."""
    import pyarrow.parquet as pq

    from .conftest import FIXTURES

    (tmp_path / "watch").mkdir()
    (tmp_path / "watch" / "w.yaml").write_text(yaml.safe_dump({"name": "w", "items": [
        {"url": _item("control"), "control": True}, {"url": _item("likeqiang"), "category": "leaders"},
        {"url": _item("diary"), "category": "personal"}, {"url": _item("weather"), "category": "personal"}]},
        allow_unicode=True), encoding="utf-8")
    (tmp_path / "probes").mkdir()
    ps = tmp_path / "probes" / "mix.yaml"
    ps.write_text(yaml.safe_dump({
        "name": "mix", "keywords": [{"list": str(FIXTURES / "keywords" / "mini.yaml")}], "items": [{"list": "w"}],
        "platforms": [{"name": "sandbox", "rate_limit": {"interval_s": 0, "jitter": 0, "concurrency": 4}}],
        "controls": {"truism": True, "every": 25, "lists": []}, "timeout_s": 5, "retries": 1}, allow_unicode=True),
        encoding="utf-8")
    db = tmp_path / "mix.db"
    with Sandbox() as sb:
        first = _run(ps, db, sb.url)
        sb.set_epoch(1)
        second = _run(ps, db, sb.url)
    assert first["counts"]["sandbox"]["available"] == 3 and first["counts"]["sandbox"]["hard"] > 0
    assert second["counts"]["sandbox"]["removed_censored"] == 1 and second["counts"]["sandbox"]["removed_by_author"] == 1

    res = cli("diff", first["run_id"], second["run_id"], "--store", str(db), "--json")
    assert res.returncode == 0, res.exception
    diff = json.loads(res.stdout)
    assert {c["term"]: c["transition"] for c in diff["changes"]}["李克强"] == "newly_censored"
    assert {c["url"]: c["transition"] for c in diff["items"]["changes"]} == {
        _item("likeqiang"): "removed_censored", _item("diary"): "removed_by_author"}

    res = cli("export", "--store", str(db), "--run", second["run_id"], "--format", "csv")  # to stdout
    assert res.returncode == 0, res.exception
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    items = {r["input"]: r for r in rows if r["role"] == "item"}
    assert set(items) == {_item("likeqiang"), _item("diary"), _item("weather")}
    assert items[_item("likeqiang")]["verdict"] == "removed_censored" and "violation" in items[_item("likeqiang")]["signals"]
    assert items[_item("likeqiang")]["category"] == "leaders" and items[_item("likeqiang")]["list_name"] == "w"
    assert items[_item("likeqiang")]["body_sha256"] and items[_item("weather")]["verdict"] == "available"
    assert any(r["role"] == "probe" and r["input"] == "李克强" and r["verdict"] == "hard" for r in rows)
    # each item row (and the watch list's control) names the item spec that read it; the keyword rows of the same run
    # (probes, truisms, controls) have none
    watched = [r for r in rows if r["input"].startswith(_item(""))]
    assert {r["role"] for r in watched} == {"item", "truism"}  # the watch list's control item is a truism
    assert {(r["test_name"], r["item_spec"]) for r in watched} == {("content_removal", "sandbox_item")}
    searched = [r for r in rows if not r["input"].startswith(_item(""))]
    assert any(r["role"] == "probe" for r in searched)
    assert {(r["test_name"], r["item_spec"]) for r in searched} == {("search_censorship", "")}

    out = tmp_path / "mix.parquet"
    res = cli("export", "--store", str(db), "--run", second["run_id"], "--output", str(out))
    assert res.returncode == 0, res.exception
    table = pq.read_table(out).to_pylist()
    assert {(r["input"], r["role"], r["verdict"]) for r in table} == {(r["input"], r["role"], r["verdict"]) for r in rows}
    assert list(pq.read_schema(out).names[-2:]) == ["test_name", "item_spec"]  # new columns go at the end
    assert {(r["test_name"], r["item_spec"]) for r in table if r["input"].startswith(_item(""))} == {
        ("content_removal", "sandbox_item")}
    assert {(r["test_name"], r["item_spec"]) for r in table if not r["input"].startswith(_item(""))} == {
        ("search_censorship", None)}


def test_an_item_probe_set_runs_on_its_schedule(tmp_path, capsys):
    """Items go through the scheduler like search probe sets: `schedule run --once` starts the due item
    probe set, every watched item is measured once, and the next tick has nothing to do."""
    from .test_schedule_support import cli_inprocess

    ps = _world(tmp_path, with_june4=False)
    data = yaml.safe_load(ps.read_text(encoding="utf-8"))
    data["schedule"] = {"cron": "0 3 * * *"}
    ps.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    os.utime(ps, (946684800, 946684800))  # written in 2000: its first slot has passed, it is due
    db = tmp_path / "sched.db"
    with Sandbox() as sb:
        for _ in range(2):
            res = cli_inprocess(capsys, "schedule", "run", str(ps.parent), "--once", "--quiet", "--store", str(db),
                                "--base-url", f"sandbox={sb.url}")
            assert res.returncode == 0, res.stderr
    with Store(db, readonly=True) as st:
        [run] = st.list_runs()  # the second tick started nothing: the run of today's slot is done
        assert run.probe_set == "items" and run.status == "complete"
        per_item = st.conn.execute("SELECT input, COUNT(*) FROM measurements WHERE run_id=? AND role='item'"
                                   " GROUP BY input", (run.run_id,)).fetchall()
    assert len(per_item) == N_RESULT_ITEMS + len(NAMED) - 1 and all(n == 1 for _, n in per_item)
