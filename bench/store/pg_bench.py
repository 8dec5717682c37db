"""The team store on PostgreSQL beside SQLite: insert rates, a full engine run, and the comparator at scale.

    .venv/bin/python bench/store/pg_bench.py inserts --terms 3000 --rounds 3
    .venv/bin/python bench/store/pg_bench.py diff --per-run 1000000 [--sqlite bench/out/comparator2.db]

A throwaway PostgreSQL server is started for the benchmark (``tests/pgserver.py``: Debian's
binaries, a unix socket), with durable settings (``fsync``, ``synchronous_commit`` and
``full_page_writes`` on, the server defaults), so the figures are those of a real server on this disk.

``inserts``: measurements per second through ``Store.add_measurement`` (one transaction each) and
``Store.add_measurements`` (the engine's group commits of 64), then a whole engine run (plan,
fetch from a sandbox in its own process, classify, store) into SQLite and into PostgreSQL.

``diff``: two runs of N measurements each (``bench/comparator/generate.py --runs 2``) in both
stores, ``diff_runs`` of them in a fresh process each (wall, CPU, peak RSS of the client; the
server's own memory is not in it), then the same comparison as a DuckDB query over a typed
Parquet dataset exported from the SQLite store (the query of docs/analysis.md).
``diff --drop-caches`` empties the OS page cache before each round (root only; a server given by
``--url`` keeps its own shared buffers: restart it for a cold one).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench" / "engine"))

from tests import pgserver  # noqa: E402

DURABLE = {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on", "shared_buffers": "'256MB'"}


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def insert_rate(target, n: int, batch: int) -> float:
    from harness.models import Measurement, Run, Verdict
    from harness.store import Store, utcnow

    with Store(target) as st:
        run_id = uuid.uuid4().hex
        st.create_run(Run(run_id=run_id, probe_set="p", started_at=utcnow()))
        body = b"<html>" + b"x" * 3000 + b"</html>"
        t0 = time.perf_counter()
        for start in range(0, n, batch):
            items = [(Measurement(measurement_id=uuid.uuid4().hex, run_id=run_id, probe_set="p", task_key=f"k{i}",
                                  measurement_start_time=utcnow(), platform="sandbox", role="probe", input=f"t{i}",
                                  query=f"t{i}", verdict=Verdict.not_censored), body, ())
                     for i in range(start, min(n, start + batch))]
            if batch == 1:
                st.add_measurement(*items[0])
            else:
                st.add_measurements(items)
        return n / (time.perf_counter() - t0)


def inserts(args: argparse.Namespace) -> None:
    from _common import sandbox_process, write_probe_set

    from harness.measure.engine import RunOptions
    from harness.operations.runs import RunRequest, execute, prepare

    server = pgserver.start(settings=DURABLE)
    try:
        with tempfile.TemporaryDirectory() as tmp, sandbox_process() as url:
            folder = Path(tmp)
            print(f"load before: {load()}")
            for batch in (1, 64):
                for name, target in (("sqlite", folder / f"ins-{batch}.db"), ("postgresql", server.new_schema())):
                    rates = [insert_rate(target if name == "postgresql" else folder / f"ins-{batch}-{r}.db",
                                         args.inserts, batch) for r in range(args.rounds)]
                    print(f"store {name}: {statistics.median(rates):.0f} measurements/s, {batch} per transaction "
                          f"(3 KB body, deduplicated; rounds {', '.join(f'{x:.0f}' for x in rates)}); load {load()}")
            for r in range(args.rounds):
                line = []
                for name in ("sqlite", "postgresql"):
                    target = folder / f"run-{r}.db" if name == "sqlite" else server.new_schema()
                    ps = write_probe_set(folder, args.terms, concurrency=args.concurrency, soft=False, controls=False,
                                         name=f"bench-{name}-{r}")
                    req = RunRequest(ps, target, base_urls={"sandbox": url}, new=True, options=RunOptions(seed=1))
                    plan = prepare(req)
                    t0 = time.perf_counter()
                    summary = execute(req, plan)
                    elapsed = time.perf_counter() - t0
                    assert summary.status == "complete" and sum(summary.failures.values()) == 0, summary
                    line.append(f"{name} {args.terms / elapsed:.0f} probes/s")
                print(f"engine round {r + 1} ({args.terms} terms, concurrency {args.concurrency}): {', '.join(line)};"
                      f" load {load()}")
    finally:
        server.stop()


def _measure(code: str) -> dict:
    """Run ``code`` (which prints a JSON dict with its own wall, CPU and peak RSS) in a fresh interpreter."""
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    if out.returncode != 0:
        raise SystemExit(out.stderr)
    data = json.loads(out.stdout.strip().splitlines()[-1])
    data["process_wall_s"] = round(time.perf_counter() - t0, 2)
    return data


DIFF = """
import json, os, resource, time
from harness.analysis.diff import diff_runs
from harness.store import Store
def server_cpu(st):  # the PostgreSQL backend serving this connection runs on this machine: read its CPU time
    if st.backend != "postgresql":
        return 0.0
    pid = st.conn.raw.execute("SELECT pg_backend_pid()").fetchone()[0]
    fields = open(f"/proc/{{pid}}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
with Store({target!r}, readonly=True) as st:
    s0 = server_cpu(st)
    t0 = time.perf_counter()
    r = diff_runs(st, "bench-0000", "bench-0001")
    wall = time.perf_counter() - t0
    ru = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({{"wall_s": round(wall, 2), "cpu_s": round(ru.ru_utime + ru.ru_stime, 2),
                      "server_cpu_s": round(server_cpu(st) - s0, 2),
                      "peak_rss_mb": round(ru.ru_maxrss / 1024, 1), "changes": len(r.changes), "counts": r.counts}}))
"""

DUCK = """
import json, re, resource, time, duckdb
doc = open({doc!r}, encoding="utf-8").read()
blocks = re.findall(r"```sql\\n(.*?)```", doc, flags=re.S)
con = duckdb.connect()
con.execute("SET threads = 2")
con.execute("SET enable_progress_bar = false")
t0 = time.perf_counter()
con.execute(blocks[0].replace("export/**/*.parquet", {glob!r}))
diff = blocks[3].replace("(SELECT min(report_id) FROM m)", "'bench-0000'").replace("(SELECT max(report_id) FROM m)", "'bench-0001'")
stmts = [s for s in diff.split(";") if s.strip()]
for s in stmts[:-1]:
    con.execute(s)
rows = con.execute(stmts[-1]).fetchall()
counts = {{}}
for r in rows:
    counts[r[-1]] = counts.get(r[-1], 0) + 1
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({{"wall_s": round(time.perf_counter() - t0, 2), "cpu_s": round(ru.ru_utime + ru.ru_stime, 2),
                  "peak_rss_mb": round(ru.ru_maxrss / 1024, 1), "changes": len(rows), "counts": counts}}))
"""


def diff(args: argparse.Namespace) -> None:
    server = None if args.url else pgserver.start(settings=DURABLE)
    try:
        url = args.url or server.new_schema()
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        sqlite = Path(args.sqlite) if args.sqlite else out / "comparator2.db"
        gen = [sys.executable, str(REPO / "bench" / "comparator" / "generate.py"), "--per-run", str(args.per_run),
               "--runs", "2"]
        if not sqlite.exists():
            subprocess.run([*gen, str(sqlite)], check=True, cwd=REPO)
        from harness.store import Store

        with Store(url) as st:
            present = st.count_measurements("bench-0001") > 0
        if not present:
            t0 = time.perf_counter()
            subprocess.run([*gen, url], check=True, cwd=REPO)
            print(f"PostgreSQL store generated in {time.perf_counter() - t0:.0f} s; load {load()}", flush=True)
        dataset = out / "comparator2-parquet"
        if not dataset.exists():
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "harness", "export", "--store", str(sqlite), "--dataset", "-o",
                            str(dataset), "--probes-only"], check=True, cwd=REPO)
            print(f"Parquet dataset exported in {time.perf_counter() - t0:.0f} s", flush=True)
        for r in range(args.rounds):
            if args.drop_caches:  # a cold OS page cache before each round (root only)
                subprocess.run(["sh", "-c", "sync && echo 3 > /proc/sys/vm/drop_caches"], check=True)
            for name, code in (("duckdb over Parquet", DUCK.format(doc=str(REPO / "docs" / "analysis.md"),
                                                                   glob=str(dataset / "**" / "*.parquet"))),
                               ("sqlite", DIFF.format(target=str(sqlite))), ("postgresql", DIFF.format(target=url))):
                res = _measure(code)
                print(json.dumps({"round": r + 1, "store": name, **res, "load": load()}), flush=True)
    finally:
        if server is not None:
            server.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="what", required=True)
    a = sub.add_parser("inserts")
    a.add_argument("--terms", type=int, default=3000)
    a.add_argument("--concurrency", type=int, default=8)
    a.add_argument("--inserts", type=int, default=5000)
    a.add_argument("--rounds", type=int, default=3)
    b = sub.add_parser("diff")
    b.add_argument("--per-run", type=int, default=1_000_000)
    b.add_argument("--sqlite", help="an existing store made by generate.py --runs 2 (else generated)")
    b.add_argument("--out", default=str(REPO / "bench" / "out"))
    b.add_argument("--rounds", type=int, default=2)
    b.add_argument("--url", help="a PostgreSQL store to use (generated there unless it holds the two runs already)")
    b.add_argument("--drop-caches", action="store_true", help="empty the OS page cache before each round (root)")
    args = ap.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, load {load()}")
    {"inserts": inserts, "diff": diff}[args.what](args)


if __name__ == "__main__":
    main()
