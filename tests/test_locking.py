"""One run per probe set, two processes on one store, stale locks."""

import datetime as dt
import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import threading

import pytest

from harness.exitcodes import ExitCode
from harness.errors import RunLockedError
from harness.models import Measurement, Run, Verdict
from harness.store.locking import ProbeSetLock, all_holders, current_holder, lock_dir_for
from harness.store.sqlite import Store
from harness.store.upkeep import check_store

from .test_resume import paced_probe_set, start_run, wait_for
from .test_schedule_support import cli_inprocess


def test_a_second_lock_on_the_same_probe_set_is_refused_naming_the_holder(store_path):
    with ProbeSetLock(store_path, "ps") as first:
        first.update(run_id="R-1")
        with pytest.raises(RunLockedError) as exc:
            ProbeSetLock(store_path, "ps").acquire()
        msg = str(exc.value)
        assert f"pid {os.getpid()} on {socket.gethostname()}" in msg and "run R-1" in msg and "'ps'" in msg
        holder = current_holder(store_path, "ps")
        assert holder is not None and holder.pid == os.getpid() and holder.run_id == "R-1"
        assert [h.probe_set for h in all_holders(store_path)] == ["ps"]
        ProbeSetLock(store_path, "another").acquire().release()  # other probe sets are free
    assert current_holder(store_path, "ps") is None
    ProbeSetLock(store_path, "ps").acquire().release()


def test_a_lock_held_by_another_process_is_refused(store_path):
    code = (
        "import sys, time\n"
        "from harness.store.locking import ProbeSetLock\n"
        f"lock = ProbeSetLock({str(store_path)!r}, 'ps').acquire()\n"
        "print('held', flush=True)\n"
        "sys.stdin.readline()\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(RunLockedError, match=f"pid {proc.pid}"):
            ProbeSetLock(store_path, "ps").acquire()
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
    ProbeSetLock(store_path, "ps").acquire().release()  # released when its holder exits


def test_a_stale_lock_left_by_a_dead_process_is_taken_over(store_path):
    gone = subprocess.Popen(["true"])
    gone.wait()
    dead_pid = gone.pid
    path = lock_dir_for(store_path) / "ps.lock"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"pid": dead_pid, "host": socket.gethostname(), "probe_set": "ps", "run_id": "old"}))
    with ProbeSetLock(store_path, "ps") as lock:
        assert lock.took_over is not None and lock.took_over.pid == dead_pid
        assert json.loads(path.read_text())["pid"] == os.getpid()
    assert path.read_text() == ""  # released cleanly: nothing stale left behind


def test_a_concurrent_second_run_of_a_probe_set_is_refused(sandbox, tmp_path, capsys):
    ps = paced_probe_set(tmp_path, interval=0, timeout=60)
    db = tmp_path / "s.db"
    gate = threading.Event()
    served = []

    def hold_after_a_few(handler, query):  # keeps the first run busy until the second has been refused
        served.append(query)
        if len(served) > 6:
            gate.wait(60)
        return False

    sandbox.responder = hold_after_a_few
    first = start_run(ps, db, sandbox)
    try:
        wait_for(db, 2, first)
        res = cli_inprocess(capsys, "run", str(ps), "--store", str(db), "--base-url", f"sandbox={sandbox.url}")
        assert res.returncode == ExitCode.LOCKED and "Traceback" not in res.stderr
        err = " ".join(res.stderr.split())
        assert "'paced' is already running" in err and f"pid {first.pid}" in err
        with Store(db, readonly=True) as st:
            assert len(st.list_runs()) == 1  # the refused run left nothing behind
        first.send_signal(signal.SIGTERM)  # systemd stop, docker stop: the run records itself as interrupted
        first.wait(timeout=60)
    finally:
        gate.set()
        first.communicate(timeout=60)
    assert first.returncode == 130
    with Store(db, readonly=True) as st:
        [run] = st.list_runs()
        assert run.status == "interrupted"


def _writer(path: str, run_id: str, n: int) -> None:
    with Store(path) as st:
        st.create_run(Run(run_id=run_id, probe_set=run_id, started_at=dt.datetime.now(dt.timezone.utc)))
        for i in range(n):
            m = Measurement(measurement_id=f"{run_id}-{i}", run_id=run_id, probe_set=run_id, task_key=f"k{i}",
                            measurement_start_time=dt.datetime.now(dt.timezone.utc), platform="sandbox",
                            input=f"t{i}", query=f"t{i}", verdict=Verdict.hard)
            st.add_measurement(m, f"{run_id} page {i}".encode() * 20)
        st.set_run_status(run_id, "complete", finished=True)


def test_two_processes_writing_one_store_lose_nothing(store_path):
    Store(store_path).close()
    ctx = multiprocessing.get_context("fork")  # no connection is open in this process when it forks
    procs = [ctx.Process(target=_writer, args=(str(store_path), f"w{i}", 300)) for i in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0]
    with Store(store_path, readonly=True) as st:
        assert st.count_measurements("w0") == st.count_measurements("w1") == 300
        assert {r.status for r in st.list_runs()} == {"complete"}
    report = check_store(store_path)
    assert report.ok and report.integrity == "ok" and report.bodies == 600
