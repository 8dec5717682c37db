"""A machine that loses power: SIGKILL a long run at random moments, resume it, lose and duplicate nothing."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from harness.sandbox import Sandbox
from harness.store.sqlite import Store

from .conftest import REPO

N_TERMS = 5000
KILLS = 12


def _term(i: int) -> str:
    if i % 37 == 0:
        return f"六四{i}"  # hard
    if i % 53 == 0:
        return f"zzqxw{i}"  # nothing to find
    if i % 41 == 0:
        return f"近平{i}"  # soft in the sandbox; without the soft test: results
    return f"测试词{i}"


def _probe_set(tmp_path: Path) -> Path:
    kw = tmp_path / "big.yaml"
    kw.write_text(yaml.safe_dump({"name": "big", "entries": [{"term": _term(i)} for i in range(N_TERMS)]},
                                 allow_unicode=True), encoding="utf-8")
    ps = {
        "name": "crash",
        "keywords": [{"list": str(kw)}],
        "platforms": [{"name": "sandbox", "soft_test": False,
                       "rate_limit": {"interval_s": 0, "jitter": 0, "concurrency": 8}}],
        "controls": {"truism": True, "every": 250, "lists": []},
        "timeout_s": 30,
        "retries": 1,
    }
    path = tmp_path / "crash.yaml"
    path.write_text(yaml.safe_dump(ps, allow_unicode=True), encoding="utf-8")
    return path


def _stored(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute("SELECT COUNT(*) FROM measurements WHERE role='probe'").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:  # not created yet, or mid-migration
        return 0


def _start(ps: Path, db: Path, url: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "HARNESS_STORE"}
    return subprocess.Popen(
        [sys.executable, "-m", "harness", "run", str(ps), "--store", str(db), "--base-url", f"sandbox={url}", "-q"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_loses_and_duplicates_nothing(tmp_path):
    ps = _probe_set(tmp_path)
    db = tmp_path / "crash.db"
    rng = random.Random(20261129)
    # Kill points: a stored-measurement count to wait for (spread over the run), then a random
    # extra delay so that kills land anywhere: mid-request, mid-classification, mid-commit.
    targets = sorted(rng.randrange(0, N_TERMS * 9 // 10) for _ in range(KILLS))
    kills = 0
    with Sandbox() as sb:
        for target in targets:
            proc = _start(ps, db, sb.url)
            deadline = time.monotonic() + 120
            while _stored(db) < target and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(rng.uniform(0, 0.15))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
            proc.wait(30)
            assert proc.returncode in (0, -signal.SIGKILL), proc.stderr.read().decode()
        final = _start(ps, db, sb.url)
        out, err = final.communicate(timeout=300)
        assert final.returncode == 0, err.decode()
        truth = {}
        for i in range(N_TERMS):
            kind = sb.engine.search(_term(i)).kind
            truth[_term(i)] = {"hard": "hard", "empty": "no_results"}.get(kind, "not_censored")

    assert kills >= 10
    with Store(db, readonly=True) as st:
        runs = st.list_runs("crash")
        assert len(runs) == 1 and runs[0].status == "complete"
        sessions = st.conn.execute("SELECT sessions FROM runs").fetchone()[0]
        assert sessions >= 10  # the kills after the run existed were resumed, not restarted
        rows = st.conn.execute(
            "SELECT platform, input, COUNT(*), MIN(verdict), MAX(verdict) FROM measurements"
            " WHERE role='probe' GROUP BY platform, input"
        ).fetchall()
        assert st.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    # exactly one measurement per (term, platform) ...
    assert len(rows) == N_TERMS
    assert all(r[2] == 1 for r in rows), [tuple(r) for r in rows if r[2] != 1][:5]
    # ... with the verdict an uninterrupted run gets (the sandbox's rules; test_engine checks that equality)
    verdicts = {r[1]: r[3] for r in rows}
    wrong = {t: (verdicts[t], v) for t, v in truth.items() if verdicts.get(t) != v}
    assert not wrong, list(wrong.items())[:5]
