"""The PostgreSQL team store: dialect, schema parity with SQLite, the same answers as SQLite,
run locks across processes, many writers at once, and no password anywhere.

The server is a throwaway one (``tests/pgserver.py``); without PostgreSQL these tests skip,
saying why (CI requires them). Other test files run their store, engine, diff, resume and
maintenance tests on both backends through the ``store_target`` fixture.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.analysis.diff import cross_diff, diff_runs
from harness.analysis.export import export_store, import_file, iter_records
from harness.analysis.report import collect, render_html, render_markdown
from harness.analysis.timeline import run_history, term_timeline
from harness.errors import RunLockedError, StoreError
from harness.models import Measurement, Run, Verdict
from harness.store import Store
from harness.store.locking import all_holders, current_holder, effective_status, run_lock
from harness.store.postgres import translate
from harness.store.target import redact
from harness.store.upkeep import check_store, prune_evidence

from .comparator_helpers import build_three_runs, make_world, run, sandboxes
from .conftest import REPO

# --------------------------------------------------------------------------- the dialect (no server needed)


@pytest.mark.parametrize("sqlite_sql, pg_sql", [
    ("SELECT a FROM t WHERE x=? AND y LIKE '%?'", "SELECT a FROM t WHERE x=%s AND y LIKE '%%?'"),
    ("SELECT 1 FROM measurements INDEXED BY measurements_by_run_key WHERE run_id=?",
     "SELECT 1 FROM measurements WHERE run_id=%s"),
    ("INSERT OR IGNORE INTO bodies (sha256, size) VALUES (?,?)",
     "INSERT INTO bodies (sha256, size) VALUES (%s,%s) ON CONFLICT DO NOTHING"),
    ("INSERT OR REPLACE INTO pruned_bodies (sha256, size, pruned_at) VALUES (?,?,?)",
     "INSERT INTO pruned_bodies (sha256, size, pruned_at) VALUES (%s,%s,%s) ON CONFLICT (sha256) DO UPDATE SET"
     " size = EXCLUDED.size, pruned_at = EXCLUDED.pruned_at"),
    ("SELECT json_extract(doc, '$.test_keys.confirmed') FROM m", "SELECT (doc::json #> '{test_keys,confirmed}') FROM m"),
    ("SELECT 1 FROM json_each(doc, '$.tags') WHERE value IN (?)",
     "SELECT 1 FROM json_array_elements_text(doc::json #> '{tags}') AS json_each(value) WHERE value IN (%s)"),
    ("BEGIN IMMEDIATE", "BEGIN"),
    ("SELECT IFNULL(a, 0) FROM t", "SELECT COALESCE(a, 0) FROM t"),
])
def test_sqlite_dialect_is_translated(sqlite_sql, pg_sql):
    assert translate(sqlite_sql, (("pruned_bodies", ("sha256",)),)) == pg_sql


def test_what_has_no_translation_is_refused_clearly():
    with pytest.raises(StoreError, match="PRAGMA is SQLite-only"):
        translate("PRAGMA foreign_keys=ON")
    with pytest.raises(StoreError, match="no primary key"):
        translate("INSERT OR REPLACE INTO nokey (a) VALUES (?)")


def test_redact_hides_every_password_form():
    assert redact("postgresql://u:hunter2@db.example/h") == "postgresql://u:***@db.example/h"
    assert "hunter2" not in redact("postgresql://u@db/h?password=hunter2&sslmode=require")
    assert redact("postgres://db/h") == "postgres://db/h"
    assert redact(Path("results/harness.db")) == "results/harness.db"


# --------------------------------------------------------------------------- schema parity


def _sqlite_schema(path: Path) -> dict[str, dict[str, tuple[str, bool]]]:
    con = sqlite3.connect(path)
    out: dict[str, dict[str, tuple[str, bool]]] = {}
    for (table,) in con.execute("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"):
        cols = {}
        for _, name, typ, notnull, _default, pk in con.execute(f"PRAGMA table_info({table})"):
            cols[name] = ({"TEXT": "text", "INTEGER": "integer", "BLOB": "bytes"}[typ], bool(notnull or pk))
        out[table] = cols
    indexes = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='index' AND sql IS NOT NULL")}
    con.close()
    return out, indexes


def test_both_backends_have_the_same_logical_schema(tmp_path, pg_url):
    from harness.store.postgres import BACKEND_TABLES, SCHEMA_VERSION
    from harness.store.sqlite import SCHEMA_VERSION as SQLITE_VERSION

    assert SCHEMA_VERSION == SQLITE_VERSION, "a migration was added to one backend only"
    Store(tmp_path / "s.db").close()
    lite, lite_indexes = _sqlite_schema(tmp_path / "s.db")
    with Store(pg_url) as st:
        pg: dict[str, dict[str, tuple[str, bool]]] = {}
        kinds = {"text": "text", "bigint": "integer", "bytea": "bytes"}
        for table, col, typ, nullable in st.conn.execute(
                "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns"
                " WHERE table_schema = current_schema()"):
            if table in BACKEND_TABLES or col == "rowid":  # rowid: implicit in SQLite, a real column here
                continue
            pg.setdefault(table, {})[col] = (kinds[typ], nullable == "NO")
        pg_indexes = {r[0] for r in st.conn.execute("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
                                                    " AND indexname NOT IN (SELECT conname FROM pg_constraint)")}
        assert st.schema_version == SCHEMA_VERSION
    assert pg == lite
    assert lite_indexes <= pg_indexes


def test_a_foreign_schema_is_refused_and_a_readonly_open_needs_a_store(pg_server):
    import psycopg

    url = pg_server.new_schema()
    with pytest.raises(StoreError, match="no harness store here yet"):
        Store(url, readonly=True)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE someone_elses (x int)")
    with pytest.raises(StoreError, match="not a harness store"):
        Store(url)


# --------------------------------------------------------------------------- the same answers as SQLite


@pytest.fixture(scope="module")
def twins(pg_server, tmp_path_factory):
    """A SQLite store of real runs (three at vantage 'lab', one at 'sh'), and its copy in PostgreSQL
    made by export + import: every read must give the same answer from both."""
    root = tmp_path_factory.mktemp("twins")
    db, runs = build_three_runs(root)
    [sb] = sandboxes()
    try:
        sb.set_epoch("after")
        sh = run(root / "probes" / "cmp.yaml", db, {"sandbox": sb.url}, vantage="sh").run_id
    finally:
        sb.stop()
    dump = root / "all.jsonl"
    with Store(db, readonly=True) as st:
        export_store(st, dump, "jsonl", bodies=True)
    url = pg_server.new_schema()
    with Store(url) as st:
        summary = import_file(st, dump)
    assert summary.added == summary.records and summary.bodies_added > 0
    return db, url, runs + [sh]


def _same(fn, db, url):
    with Store(db, readonly=True) as a, Store(url, readonly=True) as b:
        return fn(a), fn(b)


def test_diff_timeline_history_and_exports_agree(twins):
    db, url, (r1, r2, r3, sh) = twins

    def reads(st):
        out = {f"diff {a}>{b}": diff_runs(st, a, b).model_dump(mode="json") for a, b in ((r1, r2), (r2, r3), (r1, r3))}
        out["cross"] = cross_diff(st, "vantage", r1, sh).model_dump(mode="json")
        terms = sorted({m.input for m in st.measurements(role="probe")})
        out["timelines"] = [term_timeline(st, t, now=st.get_run(r3).started_at).model_dump(mode="json") for t in terms]
        out["history"] = [h.model_dump(mode="json") for h in run_history(st)]
        out["records"] = list(iter_records(st, bodies=True))
        # the copy went through an export, which leaves out the measuring machine (host name, pid: issue 14)
        out["runs"] = [r.model_dump(mode="json", exclude={"pid", "hostname"}) for r in st.list_runs()]
        return out

    lite, pg = _same(reads, db, url)
    assert lite["diff " + f"{r1}>{r2}"]["changes"], "the world must produce changes"
    assert lite["cross"]["rows"], "the two vantage points must differ"
    for key in lite:
        assert pg[key] == lite[key], key


def test_report_agrees(twins):
    db, url, _ = twins

    def report(st):
        data = collect(st, probe_set="cmp", vantage="lab")
        data.store, data.generated_at = "", dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
        return render_markdown(data) + render_html(data)

    lite, pg = _same(report, db, url)
    assert lite == pg and "Censored terms per platform" in lite and "<svg" in lite
    # every vantage point of the store, read directly: sh's latest run against lab's
    assert "## Vantage points" in lite and '<h2 id="vantages">' in lite
    [sh_row] = [line for line in lite.splitlines() if line.startswith("| sh ")]
    [lab_row] = [line for line in lite.splitlines() if line.startswith("| lab ")]
    assert sh_row.endswith("| none |") and "this report" in lab_row  # both measured epoch "after" last


def test_reclassify_agrees(twins):
    """Re-reading stored pages through a changed spec (its hard-censorship notices dropped) gives the same
    changes from both stores (a dry run: the shared stores stay as they are)."""
    from harness.analysis.reclassify import reclassify_run
    from harness.platforms.registry import PlatformRegistry

    db, url, (r1, r2, _r3, _sh) = twins
    base = PlatformRegistry.default(include_cwd=False).get("sandbox")
    blind = base.model_copy(update={"signals": base.signals.model_copy(update={"hard": []})})
    registry = PlatformRegistry({"sandbox": blind})

    def answers(st):
        out = []
        for run_id in (r1, r2):
            res = reclassify_run(st, run_id, registry, dry_run=True)
            out.append(res.model_dump(mode="json", exclude={"batch_id", "created_at"}))
        return out

    lite, pg = _same(answers, db, url)
    assert pg == lite and sum(r["changed"] for r in lite) > 0


def test_check_and_retention_agree(twins, tmp_path, pg_server):
    db, url, _ = twins
    lite, pg = check_store(db), check_store(url)
    assert pg.ok and lite.ok, pg.problems
    assert (pg.runs, pg.measurements, pg.bodies, pg.missing_bodies) == (lite.runs, lite.measurements, lite.bodies, 0)
    assert "***" not in pg.path and pg.path == redact(url)

    def dry(st):
        later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=2)  # every measurement is older than a day then
        return prune_evidence(st, dt.timedelta(days=1), now=later, dry_run=True).bodies_deleted

    with Store(db) as a, Store(url) as b:
        assert dry(a) == dry(b) == lite.bodies


# --------------------------------------------------------------------------- writers and locks


def _m(key: str, run_id: str = "r1", vantage: str = "") -> Measurement:
    return Measurement(measurement_id=f"{run_id}-{key}", run_id=run_id, probe_set="p", task_key=key, vantage=vantage,
                       measurement_start_time=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc), platform="sandbox",
                       input=key, query=key, verdict=Verdict.hard)


def test_group_commit_dedups_bodies_across_vantages_and_reports_duplicates(pg_url):
    with Store(pg_url) as st:
        for rid, v in (("ra", "a"), ("rb", "b")):
            st.create_run(Run(run_id=rid, probe_set="p", started_at=dt.datetime.now(dt.timezone.utc), vantage=v))
        page = b"<html>same censorship notice</html>"
        first = st.add_measurements([(_m("k1", "ra", "a"), page, ()), (_m("k2", "ra", "a"), page, [b"soft page"]),
                                     (_m("k1", "ra", "a"), page, ())])
        second = st.add_measurements([(_m("k1", "rb", "b"), page, ())])
        assert first == [True, True, False] and second == [True]
        assert st.conn.execute("SELECT COUNT(*) FROM bodies").fetchone()[0] == 2  # one page, one soft page
        assert st.conn.execute("SELECT COUNT(*) FROM body_refs").fetchone()[0] == 3
        assert [m.task_key for m in st.measurements("rb")] == ["k1"]


def test_advisory_locks_are_per_probe_set_and_vantage_and_die_with_their_process(pg_url):
    with run_lock(pg_url, "ps", "a") as lock_a:
        lock_a.update(run_id="run-1")
        with pytest.raises(RunLockedError, match=r"'ps' at vantage 'a' is already running \(pid \d+ .* as run run-1"):
            run_lock(pg_url, "ps", "a").acquire()
        run_lock(pg_url, "ps", "b").acquire().release()  # another vantage point is free
        run_lock(pg_url, "other", "a").acquire().release()
        holder = current_holder(pg_url, "ps", "a")
        assert holder is not None and holder.pid == os.getpid() and holder.run_id == "run-1"
        assert [(h.probe_set, h.vantage) for h in all_holders(pg_url)] == [("ps", "a")]
    assert current_holder(pg_url, "ps", "a") is None
    # a holder killed with SIGKILL: the server drops its lock with its connection
    code = (f"from harness.store.locking import run_lock\nl = run_lock({pg_url!r}, 'ps', 'a').acquire()\n"
            "print('held', flush=True)\nimport time; time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(RunLockedError, match=f"pid {proc.pid}"):
            run_lock(pg_url, "ps", "a").acquire()
    finally:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 10
    while current_holder(pg_url, "ps", "a") is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    with run_lock(pg_url, "ps", "a") as again:
        assert again.took_over is not None and again.took_over.pid == proc.pid  # named as stale


# --------------------------------------------------------------------------- many vantage points at once


def _probe_set(root: Path, name: str, terms: int = 30, interval: float = 0.06) -> Path:
    (root / "keywords").mkdir(exist_ok=True)
    (root / "probes").mkdir(exist_ok=True)
    lst = root / "keywords" / "many.yaml"
    if not lst.exists():
        lst.write_text("name: many\nentries:\n" + "".join(f"  - {{term: 词{i:03d}}}\n" for i in range(terms)),
                       encoding="utf-8")
        (root / "keywords" / "controls.yaml").write_text("name: controls\nentries:\n  - {term: 天气预报}\n",
                                                          encoding="utf-8")
    path = root / "probes" / f"{name}.yaml"
    path.write_text(f"name: {name}\nkeywords:\n  - list: many\nplatforms:\n  - name: sandbox\n"
                    f"rate_limit: {{interval_s: {interval}, jitter: 0, concurrency: 1}}\n"
                    "controls: {every: 20, lists: [controls]}\ntimeout_s: 5\nretries: 0\n", encoding="utf-8")
    return path


def _harness_run(ps: Path, store: str, url: str, vantage: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HARNESS_")}
    return subprocess.Popen([sys.executable, "-m", "harness", "run", str(ps), "--store", str(store), "--vantage", vantage,
                             "--base-url", f"sandbox={url}", "--json"], cwd=ps.parent.parent, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _stored(store, probe_set: str, vantage: str) -> int:
    try:
        with Store(store, readonly=True) as st:
            return st.conn.execute("SELECT COUNT(*) FROM measurements m JOIN runs r ON r.run_id = m.run_id"
                                   " WHERE r.probe_set=? AND r.vantage=?", (probe_set, vantage)).fetchone()[0]
    except StoreError:
        return 0


def _kill_when_started(proc: subprocess.Popen, store, probe_set: str, vantage: str, at_least: int = 2,
                       group: bool = False) -> None:
    """SIGKILL ``proc`` once it has stored ``at_least`` measurements. Robust under load: one connection
    polls (a read-write one, in autocommit: it sees each commit; a read-only store is one snapshot), and
    the threshold is low, so the window before the run could end is most of the run."""
    deadline = time.monotonic() + 90
    while True:  # the run creates the store (as its own user): never create it here
        try:
            Store(store, readonly=True).close()
            break
        except StoreError:
            assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read()}"
            assert time.monotonic() < deadline
            time.sleep(0.01)
    with Store(store) as st:
        while True:
            n = st.conn.execute("SELECT COUNT(*) FROM measurements m JOIN runs r ON r.run_id = m.run_id"
                                " WHERE r.probe_set=? AND r.vantage=?", (probe_set, vantage)).fetchone()[0]
            if n >= at_least:
                break
            assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read()}"
            assert time.monotonic() < deadline
            time.sleep(0.01)
    if group:  # a shell and the harness it started (a cron line)
        os.killpg(proc.pid, signal.SIGKILL)
    else:
        proc.send_signal(signal.SIGKILL)
    proc.wait()


def _until_interrupted(store, probe_set: str, vantage: str) -> None:
    """The server drops a killed process's advisory lock when it notices the closed connection: a
    moment later, not at once. Wait for it (bounded) before asserting what a later run will see."""
    deadline = time.monotonic() + 30
    while True:
        with Store(store, readonly=True) as st:
            [killed] = st.list_runs(probe_set, vantage=vantage)
            status = effective_status(killed, st)
        if status == "interrupted" or time.monotonic() > deadline:
            assert status == "interrupted", status
            return
        time.sleep(0.05)


def test_four_writers_two_killed_and_resumed_store_each_planned_measurement_once(sandbox, tmp_path, pg_url):
    from harness.measure.plan import load_probe_set, plan_run
    from harness.platforms.registry import PlatformRegistry

    sets = {n: _probe_set(tmp_path, n) for n in ("ps1", "ps2")}
    jobs = {(n, v): _harness_run(p, pg_url, sandbox.url, v) for n, p in sets.items() for v in ("a", "b")}
    victims = [("ps1", "a"), ("ps2", "b")]
    for key in victims:
        _kill_when_started(jobs[key], pg_url, *key)
    for key, proc in jobs.items():
        if key not in victims:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
    for n, v in victims:
        _until_interrupted(pg_url, n, v)
    resumed = {key: _harness_run(sets[key[0]], pg_url, sandbox.url, key[1]) for key in victims}  # both at once
    for proc in resumed.values():
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert json.loads(out)["resumed_with"] > 0
    with Store(pg_url, readonly=True) as st:
        for (n, v) in jobs:
            plan = plan_run(load_probe_set(sets[n])[0], PlatformRegistry.default(), base_urls={"sandbox": sandbox.url},
                            keyword_dirs=[tmp_path / "keywords"])
            [r] = st.list_runs(n, vantage=v)  # the killed run was resumed, not replaced
            assert r.status == "complete"
            keys = [row[0] for row in st.conn.execute("SELECT task_key FROM measurements WHERE run_id=? AND role != 'truism'",
                                                      (r.run_id,))]
            assert sorted(keys) == sorted(t.key for t in plan.tasks), (n, v)
    report = check_store(pg_url)
    assert report.ok and not report.interrupted_runs and not report.running_runs and report.missing_bodies == 0


def test_vantage_b_neither_takes_over_nor_waits_for_vantage_as_killed_run(sandbox, tmp_path, store_target):
    from harness.measure.engine import Vantage
    from harness.operations.runs import RunRequest, execute, prepare

    from .conftest import fast_options

    ps = _probe_set(tmp_path, "solo")
    a = _harness_run(ps, store_target, sandbox.url, "a")
    _kill_when_started(a, store_target, "solo", "a")

    def at(vantage: str):
        req = RunRequest(ps, store_target, base_urls={"sandbox": sandbox.url},
                         options=fast_options(vantage=Vantage("ZZ", "AS0", vantage)))
        return execute(req, prepare(req))

    with run_lock(store_target, "solo", "a"):  # and while A's lock is held by someone, B still runs
        b_run = at("b")
    assert b_run.skipped == 0 and b_run.status == "complete"
    with Store(store_target, readonly=True) as st:
        [a_run] = st.list_runs("solo", vantage="a")
        assert a_run.run_id != b_run.run_id and effective_status(a_run, st) == "interrupted"
    again = at("a")
    assert again.run_id == a_run.run_id and again.skipped > 0 and again.status == "complete"  # A resumes its own run


# --------------------------------------------------------------------------- credentials


def test_a_password_in_the_url_appears_nowhere(sandbox, tmp_path, pg_server, monkeypatch):
    from .comparator_helpers import cli

    marker = "pw-MARKER-7731"
    url = pg_server.new_schema(password=marker)
    ps = _probe_set(tmp_path, "secret", terms=5, interval=0)
    monkeypatch.chdir(tmp_path)
    for k in [k for k in os.environ if k.startswith("HARNESS_")]:
        monkeypatch.delenv(k)
    run = _harness_run(ps, url, sandbox.url, "v")  # a real process: its log file, its messages
    out, err = run.communicate(timeout=120)
    assert run.returncode == 0, err
    seen = [out, err]
    with Store(url, readonly=True) as st:
        run_id = st.list_runs()[0].run_id
    for args in (["run", str(ps), "--store", url, "--base-url", f"sandbox={sandbox.url}", "--vantage", "v", "--new"],
                 ["runs", "list", "--store", url], ["runs", "show", run_id, "--store", url],
                 ["runs", "show", run_id, "--json", "--store", url], ["store", "check", "--store", url],
                 ["diff", "--store", url], ["timeline", "词000", "--store", url],
                 ["report", "--store", url, "-o", str(tmp_path / "r.html")],
                 ["export", "--store", url, "-o", str(tmp_path / "x.jsonl")],
                 ["runs", "list", "--store", url.replace("/harness?", "/nosuchdb?")]):
        res = cli(*args)
        assert res.exception is None or "nosuchdb" in args[-1], res.exception
        seen.append(res.stdout + str(res.exception or ""))
    monkeypatch.setenv("HARNESS_STORE", url)
    seen.append(cli("config", "show").stdout)
    seen.append(cli("config", "show", "--json").stdout)
    assert "***" in seen[-1] and "nosuchdb" in seen[-3]
    files = [p.read_text(errors="replace") for p in tmp_path.rglob("*") if p.is_file() and p.suffix in (".html", ".md",
                                                                                                        ".jsonl")]
    assert (tmp_path / "logs" / "harness.jsonl").is_file() and len(files) >= 4
    with Store(url, readonly=True) as st:
        stored = []
        for table in ("runs", "measurements", "run_locks", "harness_meta"):
            stored += [str(tuple(r)) for r in st.conn.execute(f"SELECT * FROM {table}")]
    for text in seen + files + stored:
        assert marker not in text


@pytest.mark.parametrize("command", [
    ["run", "probes/demo.yaml"], ["runs", "list"], ["history"], ["diff"], ["timeline", "x"], ["report", "-o", "r.html"],
    ["export"], ["import", "x.jsonl"], ["reclassify", "r"], ["store", "check"], ["store", "prune", "--keep-evidence", "9d"],
    ["store", "vacuum"], ["isolate", "--platform", "sandbox", "天气"], ["schedule", "status", "probes"],
])
def test_every_command_takes_the_url_whole_and_never_shows_its_password(command, tmp_path, monkeypatch):
    """No server needed: the URL points at a socket folder that does not exist, so each command
    fails to connect, and its one line must name the store with the password masked."""
    from .comparator_helpers import cli

    monkeypatch.chdir(tmp_path)
    ps = _probe_set(tmp_path, "demo", terms=2)
    ps.write_text(ps.read_text(encoding="utf-8") + 'schedule: {cron: "0 * * * *"}\n', encoding="utf-8")
    (tmp_path / "x.jsonl").write_text("")
    url = f"postgresql://u:pw-MARKER-99@/db?host={tmp_path}/nosocket&port=1"
    res = cli(*command, "--store", url)
    said = res.stdout + str(res.exception or "")
    assert "pw-MARKER-99" not in said
    assert "postgresql://u:***@/db" in said, said
    assert not any(p.name.startswith("postgresql") for p in tmp_path.iterdir())  # never taken for a file name


def test_vacuum_on_postgresql_waits_for_no_run_and_isolation_evidence_lands_there(pg_url, sandbox, tmp_path,
                                                                                    monkeypatch):
    from harness.store.upkeep import vacuum_store

    from .comparator_helpers import cli

    monkeypatch.chdir(tmp_path)
    res = cli("isolate", "--platform", "sandbox", "--base-url", f"sandbox={sandbox.url}", "--store", pg_url,
              "今天我们讨论六四和天气")
    assert res.exception is None and res.returncode == 0, res.stdout
    with Store(pg_url, readonly=True) as st:
        [iso_run] = [r for r in st.list_runs() if r.probe_set.startswith("isolation:")]
        assert st.count_measurements(iso_run.run_id) > 0  # every isolation query kept as evidence, on the server
    with run_lock(pg_url, "p", "v"), pytest.raises(RunLockedError, match="cannot vacuum while a run is in progress"):
        vacuum_store(pg_url)
    report = vacuum_store(pg_url)
    assert report.size_before > 0 and report.size_after > 0


# --------------------------------------------------------------------------- scheduling against a team store


def _password_role(pg_server, marker: str) -> tuple[str, str, str]:
    """A login role whose password the server really asks for (scram over the unix socket, for this role
    only; everyone else stays on trust), owning a fresh schema: (role, its URL without password, admin URL)."""
    import uuid

    import psycopg

    role = "sched_" + uuid.uuid4().hex[:10]
    admin = pg_server.new_schema()
    schema = admin.rsplit("search_path%3D", 1)[1]
    with psycopg.connect(pg_server.url("harness"), autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{marker}'")
        conn.execute(f"GRANT USAGE, CREATE ON SCHEMA {schema} TO {role}")
        hba = Path(conn.execute("SHOW hba_file").fetchone()[0])
        hba.write_text(f"local all {role} scram-sha-256\n" + hba.read_text())
        conn.execute("SELECT pg_reload_conf()")
    # The postmaster re-reads pg_hba.conf asynchronously (later on a loaded machine): wait until the
    # role is really asked for its password rather than sleeping a fixed time.
    deadline = time.monotonic() + 30
    while True:
        try:
            psycopg.connect(pg_server.url("harness", user=role), password="", connect_timeout=5).close()
        except psycopg.OperationalError as exc:
            if "password" in str(exc):
                break
            raise
        assert time.monotonic() < deadline, "pg_hba.conf was not reloaded"
        time.sleep(0.05)
    return role, pg_server.url("harness", user=role, schema=schema), admin


def test_schedule_install_on_postgresql_refuses_a_password_and_its_line_runs_and_resumes(sandbox, tmp_path, pg_server,
                                                                                        capsys, monkeypatch):
    """`schedule install --store postgresql://...`: a URL with a password is refused (it would land in the
    crontab); without one, the installed line itself, run by bash as cron would, reaches the real server with
    the password from $PGPASSWORD, is SIGKILLed mid-run, and the next tick (password from ~/.pgpass this time)
    resumes that run: every planned measurement once. Without any password: one line, exit 4. The password
    appears in no output, no log and no row."""
    from harness.measure.plan import load_probe_set, plan_run
    from harness.platforms.registry import PlatformRegistry

    from .test_schedule_support import cli_inprocess

    marker = "pw-SCHED-4242"
    role, url, admin = _password_role(pg_server, marker)
    work = tmp_path / "work"
    work.mkdir()
    ps = _probe_set(work, "sched", terms=24, interval=0.05)
    ps.write_text(ps.read_text(encoding="utf-8") + 'schedule: {cron: "0 */6 * * *"}\n', encoding="utf-8")
    os.utime(ps, (time.time() - 10 * 86400,) * 2)  # known for days: its first slot has passed
    (work / "harness.toml").write_text(f'[base_urls]\nsandbox = "{sandbox.url}"\n', encoding="utf-8")
    monkeypatch.chdir(work)
    for k in [k for k in os.environ if k.startswith(("HARNESS_", "PG"))]:
        monkeypatch.delenv(k)
    with_password = url.replace(f"{role}@", f"{role}:{marker}@")
    refused = cli_inprocess(capsys, "schedule", "install", "probes", "--crontab", "--store", with_password,
                            "--config", "harness.toml")
    assert refused.returncode == 2 and "password" in refused.stderr and marker not in refused.stdout + refused.stderr
    installed = cli_inprocess(capsys, "schedule", "install", "probes", "--crontab", "--store", url,
                              "--config", "harness.toml")
    assert installed.returncode == 0, installed.stderr
    [line] = [ln for ln in installed.stdout.splitlines() if ln and not ln.startswith("#")]
    command = line.split(None, 5)[5]
    assert "schedule run" in command and "--store" in command and url in command.replace("'", "")
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HARNESS_", "PG"))}
    env.update(HOME=str(home), PYTHONPATH=str(REPO))

    def tick(**extra: str) -> subprocess.Popen:
        return subprocess.Popen(["bash", "-c", command], env={**env, **extra}, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)

    first = tick(PGPASSWORD=marker)
    _kill_when_started(first, admin, "sched", "", group=True)
    seen = list(first.communicate())
    (home / ".pgpass").write_text(f"*:*:*:{role}:{marker}\n")
    (home / ".pgpass").chmod(0o600)
    second = tick()
    seen += second.communicate(timeout=120)
    assert second.returncode == 0, seen[-1]
    (home / ".pgpass").unlink()
    third = tick()
    seen += third.communicate(timeout=60)
    assert third.returncode == 4 and len(seen[-1].strip().splitlines()) == 1, seen[-1]
    assert "no password" in seen[-1] or "password authentication" in seen[-1], seen[-1]
    with Store(admin, readonly=True) as st:
        [r] = st.list_runs("sched")  # the killed run was resumed, not replaced
        assert r.status == "complete"
        keys = [row[0] for row in st.conn.execute("SELECT task_key FROM measurements WHERE run_id=? AND role != 'truism'",
                                                  (r.run_id,))]
        stored = [str(tuple(row)) for table in ("runs", "measurements", "run_locks", "harness_meta")
                  for row in st.conn.execute(f"SELECT * FROM {table}")]
    plan = plan_run(load_probe_set(ps)[0], PlatformRegistry.default(), base_urls={"sandbox": sandbox.url},
                    keyword_dirs=[work / "keywords"])
    assert sorted(keys) == sorted(t.key for t in plan.tasks)
    logs = [p.read_text(errors="replace") for p in work.rglob("*.jsonl")]
    assert logs and any('"scheduled_run_start"' in text for text in logs)
    for text in seen + logs + stored + [installed.stdout, installed.stderr, line]:
        assert marker not in text
