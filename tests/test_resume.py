"""A run killed mid-way resumes: same run id, nothing lost, nothing twice, same verdicts."""

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from harness.cli.runs import run_dict
from harness.measure.engine import Engine
from harness.operations.logs import setup_logging
from harness.operations.runs import RunRequest, execute, prepare
from harness.store.locking import effective_status
from harness.store.sqlite import Store

from .conftest import FIXTURES, REPO, fast_options, run_probe_set
from .test_schedule_support import cli_inprocess

KEYWORDS = FIXTURES / "keywords"


def paced_probe_set(tmp_path: Path, interval: float = 0.12, list_path: Path | None = None, timeout: float = 5) -> Path:
    p = tmp_path / "paced.yaml"
    p.write_text(
        f"name: paced\nkeywords:\n  - list: {list_path or KEYWORDS / 'mini.yaml'}\nplatforms:\n  - name: sandbox\n"
        f"    rate_limit: {{interval_s: {interval}, jitter: 0, concurrency: 1}}\n"
        f"controls: {{every: 5, lists: [{KEYWORDS / 'controls.yaml'}]}}\ntimeout_s: {timeout}\nretries: 1\n"
    )
    return p


def stored_tasks(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute("SELECT COUNT(*) FROM measurements WHERE role != 'truism'").fetchone()[0]
        finally:
            con.close()
    except sqlite3.OperationalError:
        return 0


def start_run(ps: Path, db: Path, sb) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HARNESS_")}
    return subprocess.Popen([sys.executable, "-m", "harness", "run", str(ps), "--store", str(db),
                             "--base-url", f"sandbox={sb.url}", "--json"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(db: Path, n: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while stored_tasks(db) < n:
        assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read()}"
        assert time.monotonic() < deadline, "the run made no progress"
        time.sleep(0.05)


def verdicts(db: Path, run_id: str) -> dict[tuple[str, str], str]:
    with Store(db, readonly=True) as st:
        return {(m.platform, m.input): m.verdict.value for m in st.measurements(run_id) if m.role == "probe"}


def test_a_run_killed_with_sigkill_resumes_with_one_measurement_per_term(sandbox, tmp_path, capsys):
    ps = paced_probe_set(tmp_path, interval=0.06)
    db = tmp_path / "killed.db"
    proc = start_run(ps, db, sandbox)
    wait_for(db, 5, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    done_at_kill = stored_tasks(db)

    with Store(db, readonly=True) as st:
        [run] = st.list_runs()
        assert run.status == "running"  # nobody could write otherwise: the process died
        assert effective_status(run, db) == "interrupted"
        planned = run.planned
    assert 5 <= done_at_kill < planned
    listed = json.loads(cli_inprocess(capsys, "runs", "list", "--store", str(db), "--json").stdout)
    assert [r["status"] for r in listed] == ["interrupted"]

    res = cli_inprocess(capsys, "run", str(ps), "--store", str(db), "--base-url", f"sandbox={sandbox.url}", "--json")
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["run_id"] == run.run_id and summary["status"] == "complete"
    assert summary["stored"] == planned - done_at_kill  # only what was missing was sent
    assert sum(summary["counts"]["sandbox"].values()) == 12  # counts cover the whole run

    with Store(db, readonly=True) as st:
        ms = list(st.measurements(run.run_id))
        [again] = st.list_runs()
        assert again.status == "complete" and st.run_sessions(run.run_id) == 2
    per_task = Counter(m.task_key for m in ms if m.role != "truism")
    assert len(per_task) == planned and set(per_task.values()) == {1}
    per_term = Counter((m.platform, m.input) for m in ms if m.role == "probe")
    assert len(per_term) == 12 and set(per_term.values()) == {1}

    (tmp_path / "ref").mkdir()
    reference = run_probe_set(paced_probe_set(tmp_path / "ref", interval=0), tmp_path / "reference.db", sandbox)
    assert verdicts(db, run.run_id) == verdicts(tmp_path / "reference.db", reference.run_id)


def interrupt_after(n: int):
    seen = []

    def progress(m):
        seen.append(m)
        if len(seen) == n:
            raise KeyboardInterrupt

    return progress


def crash(req: RunRequest, n: int = 5) -> str:
    plan = prepare(req)
    with Store(req.store_path) as st, pytest.raises(KeyboardInterrupt):
        asyncio.run(Engine(st, req.options).run(plan, progress=interrupt_after(n)))
    with Store(req.store_path, readonly=True) as st:
        return st.list_runs(limit=1)[0].run_id


def test_a_changed_keyword_list_starts_a_new_run_instead_of_mixing(sandbox, tmp_path, store_path):
    words = tmp_path / "words.yaml"
    words.write_text((KEYWORDS / "mini.yaml").read_text())
    ps = paced_probe_set(tmp_path, interval=0, list_path=words)
    req = RunRequest(ps, store_path, base_urls={"sandbox": sandbox.url}, options=fast_options())
    first = crash(req)
    words.write_text(words.read_text() + "  - {term: 新词, category: other}\n")
    log = tmp_path / "log.jsonl"
    setup_logging(log)
    try:
        summary = execute(req, prepare(req))
    finally:
        setup_logging(None)
    assert summary.run_id != first and summary.status == "complete"
    with Store(store_path, readonly=True) as st:
        assert st.get_run(first).status == "interrupted"
    [declined] = [json.loads(line) for line in log.read_text().splitlines() if '"resume_declined"' in line]
    assert declined["run_id"] == first and "plan changed" in declined["reason"]


def test_a_different_vantage_point_does_not_resume_anothers_run(sandbox, tmp_path, store_target):
    from harness.measure.engine import Vantage

    ps = paced_probe_set(tmp_path, interval=0)
    req = RunRequest(ps, store_target, base_urls={"sandbox": sandbox.url}, options=fast_options())
    first = crash(req)
    other = RunRequest(ps, store_target, base_urls={"sandbox": sandbox.url},
                       options=fast_options(vantage=Vantage("CN", "AS4134", "bj-1")))
    summary = execute(other, prepare(other))
    assert summary.run_id != first
    with Store(store_target, readonly=True) as st:
        assert st.get_run(first).status == "interrupted"  # B neither took it over nor finished it
    same = execute(req, prepare(req))
    assert same.run_id == first  # resume is per (probe set, vantage): A's own killed run, despite B's newer one
    assert same.status == "complete" and same.skipped > 0


def test_new_starts_afresh_and_leaves_the_interrupted_run(sandbox, tmp_path, store_target):
    ps = paced_probe_set(tmp_path, interval=0)
    req = RunRequest(ps, store_target, base_urls={"sandbox": sandbox.url}, options=fast_options())
    first = crash(req)
    req.new = True
    summary = execute(req, prepare(req))
    assert summary.run_id != first
    with Store(store_target, readonly=True) as st:
        assert [r.status for r in st.list_runs()] == ["complete", "interrupted"]


def test_runs_show_reports_progress_and_sessions(sandbox, tmp_path, store_target, capsys):
    ps = paced_probe_set(tmp_path, interval=0)
    req = RunRequest(ps, store_target, base_urls={"sandbox": sandbox.url}, options=fast_options())
    first = crash(req)
    res = cli_inprocess(capsys, "runs", "show", first[:12], "--store", str(store_target), "--json")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["status"] == "interrupted" and data["done"] == 5 and data["sessions"] == 1
    execute(req, prepare(req))
    with Store(store_target, readonly=True) as st:
        data = run_dict(st, st.get_run(first), store_target)
    assert data["status"] == "complete" and data["done"] == data["planned"] and data["sessions"] == 2
    res = cli_inprocess(capsys, "runs", "show", "nope", "--store", str(store_target))
    assert res.returncode == 2 and "no run" in res.stderr


def test_a_dead_running_run_is_recorded_as_interrupted_by_the_next_run(sandbox, tmp_path, store_target):
    import datetime as dt
    import socket

    from harness.models import Run

    gone = subprocess.Popen(["true"])
    gone.wait()
    with Store(store_target) as st:
        st.create_run(Run(run_id="dead-run", probe_set="paced", started_at=dt.datetime.now(dt.timezone.utc),
                          pid=gone.pid, hostname=socket.gethostname()))
        assert effective_status(st.get_run("dead-run"), store_target) == "interrupted"  # the pid is gone
    ps = paced_probe_set(tmp_path, interval=0)
    req = RunRequest(ps, store_target, base_urls={"sandbox": sandbox.url}, options=fast_options(), new=True)
    log = tmp_path / "log.jsonl"
    setup_logging(log)
    try:
        summary = execute(req, prepare(req))
    finally:
        setup_logging(None)
    with Store(store_target, readonly=True) as st:
        assert st.get_run("dead-run").status == "interrupted"
        assert st.get_run(summary.run_id).status == "complete"
    assert '"run_died"' in log.read_text()
