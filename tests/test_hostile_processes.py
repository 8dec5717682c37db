"""The one rule in real processes: signals, killed writers, read-only and full file systems.

F10: SIGTERM/SIGINT during `harness run -q` print one line, exit 130 and leave the run
interrupted, without asyncio's "Task exception was never retrieved". F6/F7: a killed export
leaves the previous file whole, and its temporary is removed by the next export. F5/F6: on a
read-only or full file system (a private mount namespace, skipped where one cannot be made),
read-only commands read a store in WAL mode and writers fail with one line and their code.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from harness.exitcodes import ExitCode
from harness.safeio import clean_stray_temporaries
from harness.store.sqlite import Store

from .conftest import FIXTURES, REPO

COMPAT = FIXTURES / "compat"


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HARNESS_")}
    env["PYTHONPATH"] = str(REPO)
    return env


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_during_a_run_is_one_line_exit_130_and_an_interrupted_run(sandbox, tmp_path, sig):
    (tmp_path / "keywords").mkdir()
    for name in ("mini.yaml", "controls.yaml"):
        shutil.copyfile(FIXTURES / "keywords" / name, tmp_path / "keywords" / name)
    (tmp_path / "probes").mkdir()
    ps = tmp_path / "probes" / "slow.yaml"
    ps.write_text("name: slow\nkeywords: [{list: mini}]\nplatforms:\n  - name: sandbox\n"
                  "    rate_limit: {interval_s: 0.4, jitter: 0, concurrency: 2}\n"
                  "controls: {every: 5, lists: [controls]}\ntimeout_s: 5\nretries: 0\n")
    db = tmp_path / "s.db"
    proc = subprocess.Popen([sys.executable, "-m", "harness", "run", str(ps), "--store", str(db), "-q",
                             "--base-url", f"sandbox={sandbox.url}"], cwd=tmp_path, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while len(sandbox.queries) < 4 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == ExitCode.INTERRUPTED, err
    assert "Traceback" not in err and "never retrieved" not in err and "Task" not in err, err
    assert err.strip().splitlines() == ["interrupted (a run is marked interrupted and resumes next time)"], err
    with Store(db, readonly=True) as st:
        [run] = st.list_runs()
        assert run.status == "interrupted" and 0 < st.count_measurements(run.run_id) < 15


def test_a_killed_export_leaves_the_previous_file_and_the_next_export_removes_its_temporary(tmp_path):
    db = tmp_path / "s.db"
    shutil.copyfile(COMPAT / "store-v1.db", db)
    for name in ("e.jsonl", "e.parquet"):
        target = tmp_path / name
        target.write_bytes(b"the previous good export\n" * 1000)
        slow = textwrap.dedent(f"""
            import sys, time
            import harness.analysis.export as ex
            real = ex.iter_records
            def slow(*a, **k):
                for i, rec in enumerate(real(*a, **k)):
                    if i == 3:
                        print("writing", flush=True)
                        time.sleep(60)
                    yield rec
            ex.iter_records = slow
            from harness.cli import main
            main(["export", "--store", {str(db)!r}, "-o", {str(target)!r}])
            """)
        proc = subprocess.Popen([sys.executable, "-c", slow], cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "writing"
        proc.kill()
        proc.wait(timeout=30)
        assert target.read_bytes() == b"the previous good export\n" * 1000  # F7: not truncated, not 4 bytes
        strays = list(tmp_path.glob(f".{name}.*.part"))
        assert strays, "the killed writer's temporary is where the next export will find it"
        assert clean_stray_temporaries(target) == strays and not list(tmp_path.glob("*.part"))


def _namespace_available() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k none /mnt 2>/dev/null || "
                            "mount -t tmpfs none /tmp"], capture_output=True)
    return probe.returncode == 0


def test_read_only_and_full_file_systems(tmp_path):
    if not _namespace_available():
        pytest.skip("no private mount namespace here (unshare -rm)")
    src = tmp_path / "archive"
    src.mkdir()
    shutil.copyfile(COMPAT / "store-v1.db", src / "s.db")
    with Store(src / "s.db") as st:  # an archived store in WAL mode, as runs leave it
        st.conn.execute("PRAGMA journal_mode=WAL")
    ro, full = tmp_path / "ro", tmp_path / "full"
    ro.mkdir()
    full.mkdir()
    program = textwrap.dedent(f"""
        import contextlib, io, json, sys
        from harness.cli import main
        def run(*args):
            out, err = io.StringIO(), io.StringIO()
            code = 0
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    main(list(args))
                except SystemExit as exc:
                    code = exc.code or 0
            return {{"args": args, "code": code, "err": err.getvalue()}}
        store = {str(ro / "s.db")!r}
        results = [
            run("runs", "list", "--store", store),
            run("diff", "--store", store, "--json"),
            run("export", "--store", store, "-o", {str(tmp_path / "out.jsonl")!r}),
            run("store", "check", "--store", store),
            run("timeline", "白纸", "--store", store),
            run("store", "prune", "--keep-evidence", "1d", "--store", store),
            run("import", {str(COMPAT / "export-v1.jsonl")!r}, "--store", store),
            run("export", "--store", store, "-o", {str(ro / "new.jsonl")!r}),
            run("export", "--store", store, "-o", {str(full / "big.parquet")!r}),
            run("export", "--store", store, "-o", {str(full / "big.jsonl")!r}, "--bodies"),
            run("report", "--store", store, "-o", {str(full / "r.html")!r}),
        ]
        import os
        print(json.dumps({{"results": results, "left": os.listdir({str(full)!r})}}))
        """)
    script = (f"mount --bind {src} {ro} && mount -o remount,bind,ro {ro} && "
              f"mount -t tmpfs -o size=12k none {full} && exec {sys.executable} -c \"$0\"")
    proc = subprocess.run(["unshare", "-rm", "sh", "-c", script, program], capture_output=True, text=True,
                          env=_env(), timeout=120)
    assert proc.returncode == 0, proc.stderr
    answer = json.loads(proc.stdout.splitlines()[-1])
    results = answer["results"]
    codes = {" ".join(r["args"][:2]) + ("" if i < 7 else f" #{i}"): (r["code"], r["err"]) for i, r in enumerate(results)}
    for r in results:
        assert "Traceback" not in r["err"] and "internal error" not in r["err"], r
    for i in range(5):  # every read-only command reads the store on read-only media
        assert results[i]["code"] in (ExitCode.OK, ExitCode.FOUND) and results[i]["code"] == 0, results[i]
    for i in (5, 6, 7):  # writers: one line, "cannot write"
        assert results[i]["code"] == ExitCode.CANNOT_WRITE, results[i]
        assert len(results[i]["err"].strip().splitlines()) == 1, results[i]
    for i in (8, 9, 10):  # a full disk: one line, "cannot write", nothing left behind
        assert results[i]["code"] == ExitCode.CANNOT_WRITE and "disk is full" in results[i]["err"], results[i]
    assert codes
    assert answer["left"] == [], "a full disk leaves no half-written file or temporary"


def _older_schema_copy(dest: Path) -> int:
    """The pinned store taken back one schema version (the last migration undone: no body_refs), in WAL
    mode as runs leave it: a store that needs a migration before this harness can read it."""
    import sqlite3

    from harness.store.sqlite import SCHEMA_VERSION

    shutil.copyfile(COMPAT / "store-v1.db", dest)
    conn = sqlite3.connect(dest, isolation_level=None)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 6  # else: undo another step
        conn.execute("DROP TABLE body_refs")
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION - 1}")
        conn.execute("PRAGMA journal_mode=WAL")
    finally:
        conn.close()
    return SCHEMA_VERSION - 1


def test_an_older_schema_on_read_only_media_is_read_by_every_read_only_command(tmp_path):
    """F5 with a migration pending: the store is neither written nor migrated in place (it cannot be);
    each read-only command reads a migrated temporary copy, which is removed afterwards."""
    if not _namespace_available():
        pytest.skip("no private mount namespace here (unshare -rm)")
    src, ro, out = tmp_path / "archive", tmp_path / "ro", tmp_path / "out"
    for d in (src, ro, out):
        d.mkdir()
    old = _older_schema_copy(src / "s.db")
    before = {p.name: p.read_bytes() for p in src.iterdir()}
    program = textwrap.dedent(f"""
        import contextlib, glob, io, json, os, sys, tempfile
        from harness.cli import main
        def run(*args):
            out, err = io.StringIO(), io.StringIO()
            code = 0
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    main(list(args))
                except SystemExit as exc:
                    code = exc.code or 0
            return {{"args": args, "code": code, "out": out.getvalue(), "err": err.getvalue()}}
        store = {str(ro / "s.db")!r}
        results = [
            run("runs", "list", "--store", store, "--json"),
            run("diff", "--store", store, "--json"),
            run("export", "--store", store, "-o", {str(out / "e.jsonl")!r}),
            run("timeline", "白纸", "--store", store),
            run("history", "--store", store),
            run("report", "--store", store, "-o", {str(out / "r.html")!r}),
            run("store", "check", "--store", store, "--json"),
            run("store", "prune", "--keep-evidence", "1d", "--store", store),
        ]
        left = glob.glob(os.path.join(tempfile.gettempdir(), "harness-readonly-*"))
        print(json.dumps({{"results": results, "left": left}}))
        """)
    script = f"mount --bind {src} {ro} && mount -o remount,bind,ro {ro} && exec {sys.executable} -c \"$0\""
    env = _env()
    env["TMPDIR"] = str(tmp_path)  # the migrated copies go here (and must be gone afterwards)
    proc = subprocess.run(["unshare", "-rm", "sh", "-c", script, program], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    answer = json.loads(proc.stdout.splitlines()[-1])
    results = answer["results"]
    for r in results:
        assert "Traceback" not in r["err"] and "internal error" not in r["err"], r
    for r in results[:7]:
        assert r["code"] == ExitCode.OK, r
    assert len(json.loads(results[0]["out"])) == len(MANIFEST_RUNS)
    assert sum(1 for _ in (out / "e.jsonl").open(encoding="utf-8")) == json.loads(
        (COMPAT / "MANIFEST.json").read_text(encoding="utf-8"))["export_records"]
    assert (out / "r.html").stat().st_size > 0
    check = json.loads(results[6]["out"])
    assert check["ok"] and check["missing_bodies"] == 0 and check["body_mismatches"] == []
    prune = results[7]  # a writer: one line, cannot write
    assert prune["code"] == ExitCode.CANNOT_WRITE and len(prune["err"].strip().splitlines()) == 1, prune
    assert answer["left"] == [], "the migrated temporary copies are removed"
    assert {p.name: p.read_bytes() for p in src.iterdir()} == before, "the archived store is untouched"
    import sqlite3

    with sqlite3.connect(f"file:{src / 's.db'}?mode=ro", uri=True) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == old


MANIFEST_RUNS = json.loads((COMPAT / "MANIFEST.json").read_text(encoding="utf-8"))["runs"]


@pytest.mark.parametrize("args", [  # one per kind of writer: a stream of records, a JSON document, a table
    ["export", "--store", "{store}", "--format", "csv"],
    ["diff", "--store", "{store}", "--json"],
    ["keywords", "export", str(REPO / "keywords")],
])
def test_a_reader_that_went_away_ends_the_command_quietly_with_exit_0(tmp_path, args):
    """`harness export | head -1`: stdout is a pipe whose reader has already exited, so the first write
    fails with EPIPE; the command ends at once, prints nothing, and exits 0 (the exit-code table's
    "ok"), like Unix tools whose reader stopped reading. Typer used to turn it into exit 1."""
    store = tmp_path / "s.db"
    shutil.copyfile(COMPAT / "store-v1.db", store)
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before anything is written
    try:
        proc = subprocess.run([sys.executable, "-m", "harness", *[a.replace("{store}", str(store)) for a in args]],
                              stdout=write_end, stderr=subprocess.PIPE, text=True, env=_env(), timeout=60,
                              cwd=tmp_path)
    finally:
        os.close(write_end)
    assert proc.returncode == ExitCode.OK and proc.stderr == "", proc.stderr


def test_export_piped_into_head_exits_0_without_a_traceback(tmp_path):
    """The same through a real shell pipe: a large export cut short by `head -1`."""
    store = tmp_path / "s.db"
    shutil.copyfile(COMPAT / "store-v1.db", store)
    script = (f"{sys.executable} -m harness export --store {store} --bodies 2>{tmp_path / 'err'} | head -1 >/dev/null;"
              " echo ${PIPESTATUS[0]}")
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=_env(), timeout=60)
    assert proc.stdout.strip() == "0" and (tmp_path / "err").read_text() == ""
