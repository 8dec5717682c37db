"""Controls of item runs, through the CLI against the sandbox: when the platform's control item stops being available
mid-run (here the platform answers every page, the control included, with a removal notice), what the run measured
is a failure, never a removal, and a diff with the previous run sees no removal."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

import yaml

from harness.sandbox import Sandbox
from harness.sandbox.server import render_item, result_item_id

from .comparator_helpers import cli

N = 12  # watched items besides the control: results of 的, never removed by the sandbox's rules


def _item(name: str) -> str:
    return f"http://sandbox.invalid/item/{name}"


def _world(tmp: Path) -> Path:
    items = [{"url": _item("control"), "control": True}]
    items += [{"url": _item(result_item_id("的", i)), "category": "results"} for i in range(N)]
    (tmp / "watch").mkdir()
    (tmp / "watch" / "w.yaml").write_text(yaml.safe_dump({"name": "w", "items": items}), encoding="utf-8")
    (tmp / "probes").mkdir()
    ps = tmp / "probes" / "ctl.yaml"
    ps.write_text(yaml.safe_dump({
        "name": "ctl", "items": [{"list": "w"}], "rate_limit": {"interval_s": 0, "jitter": 0, "concurrency": 1},
        "controls": {"truism": True, "every": 50, "lists": [], "give_up_after_s": 0.3, "max_backoff_s": 0.05},
        "timeout_s": 5, "retries": 0}), encoding="utf-8")
    return ps


def test_a_failing_control_item_makes_failures_not_removals(tmp_path):
    ps = _world(tmp_path)
    db = tmp_path / "ctl.db"
    with Sandbox() as sb:
        args = ("run", str(ps), "--store", str(db), "--base-url", f"sandbox={sb.url}", "--json")
        res = cli(*args)
        assert res.returncode == 0, res.exception
        first = json.loads(res.stdout)
        assert first["counts"]["sandbox"] == {"available": N}

        # second run: after the control and three items, every page (the control's too) is a removal notice
        seen = []
        lock = threading.Lock()

        def notices(handler, query: str) -> bool:
            with lock:
                seen.append(query)
                if len(seen) <= 4:
                    return False
            handler.send_body(200, render_item("removed_censored", "").encode("utf-8"), "text/html; charset=utf-8")
            return True

        sb.responder = notices
        res = cli(*args)
        second = json.loads(res.stdout)
        sb.responder = None
        assert seen[0] == "item:control" and seen.count("item:control") >= 3  # start, closing control, retries

    assert second["status"] != "complete"  # the platform was given up for the run: its other items wait
    con = sqlite3.connect(db)
    rows = con.execute("SELECT input, verdict, failure, doc FROM measurements WHERE run_id=? AND role='item'"
                       " ORDER BY measurement_start_time", (second["run_id"],)).fetchall()
    con.close()
    verdicts = [(v, f) for _, v, f, _ in rows]
    assert verdicts[:3] == [("available", None)] * 3
    # the item read as removed while the control was not available: a failure, its notice kept as evidence
    assert verdicts[3:] == [("failure", "control_failed")]
    doc = json.loads(rows[3][3])
    assert doc["test_keys"]["signals"] == ["closing_control_failed", "violation"]
    assert doc["evidence"]["body_sha256"]
    assert not any(v.startswith("removed") for v, _ in verdicts)

    res = cli("diff", first["run_id"], second["run_id"], "--store", str(db), "--json")
    assert res.returncode == 0, res.exception
    diff = json.loads(res.stdout)["items"]
    # not a removal: the item's state became unknown (what a failure after a known state is), the rest not reached
    assert [(c["url"], c["transition"]) for c in diff["changes"]] == [(rows[3][0], "became_unknown")]
    assert diff["not_reached"] == N - 4
