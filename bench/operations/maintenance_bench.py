"""How long retention, check and vacuum take on a store of a realistic size.

    .venv/bin/python bench/operations/maintenance_bench.py [--measurements 50000] [--bodies 10000]

Builds a store in a temporary folder: measurements spread over 180 days, bodies of ~6 KB
(HTML-like, compressible), each body shared by several measurements. Then times
`store prune --keep-evidence 90d`, `store check` and `store vacuum`, and the decision
of the scheduler for 100 scheduled probe sets.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import tempfile
import time
from pathlib import Path

from harness.models import Measurement, Run, Schedule, Verdict
from harness.operations.config import parse_duration
from harness.operations.schedule import LastRun, decide
from harness.store.sqlite import Store
from harness.store.upkeep import check_store, prune_evidence, vacuum_store


def build(path: Path, n_measurements: int, n_bodies: int, now: dt.datetime) -> None:
    rng = random.Random(1)
    words = ["新疆", "西藏", "天气", "结果", "搜索", "新闻", "政府", "法律", "视频", "图片"]
    bodies = [("<html><body>" + "".join(f"<div class=r>{rng.choice(words)}{rng.randint(0, 10**6)}</div>"
                                        for _ in range(300)) + "</body></html>").encode() for _ in range(n_bodies)]
    with Store(path) as st:
        st.create_run(Run(run_id="r", probe_set="bench", started_at=now - dt.timedelta(days=180), status="complete"))
        st.conn.execute("BEGIN")
        for i in range(n_measurements):
            age = dt.timedelta(days=180 * i / n_measurements)
            body_index = int(i * n_bodies / n_measurements)
            m = Measurement(measurement_id=f"m{i}", run_id="r", probe_set="bench", task_key=f"k{i}",
                            measurement_start_time=now - dt.timedelta(days=180) + age, platform="sandbox",
                            input=f"t{i % 500}", query=f"t{i % 500}", verdict=Verdict.hard)
            m.evidence.body_sha256 = st.put_body(bodies[body_index])
            st.conn.execute(
                "INSERT INTO measurements (measurement_id, run_id, task_key, measurement_start_time, platform, role,"
                " input, query, list_name, category, variant, vantage, probe_cc, probe_asn, verdict, failure,"
                " result_count, result_items, status_code, body_sha256, doc) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                st._row(m))
        st.conn.execute("COMMIT")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--measurements", type=int, default=50_000)
    ap.add_argument("--bodies", type=int, default=10_000)
    args = ap.parse_args()
    now = dt.datetime(2026, 11, 29, tzinfo=dt.timezone.utc)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        t0 = time.perf_counter()
        build(db, args.measurements, args.bodies, now)
        print(f"built {args.measurements} measurements / {args.bodies} bodies in {time.perf_counter() - t0:.1f} s;"
              f" {db.stat().st_size / 1048576:.1f} MiB")
        t0 = time.perf_counter()
        report = check_store(db)
        print(f"store check: {time.perf_counter() - t0:.2f} s (ok={report.ok})")
        with Store(db) as st:
            t0 = time.perf_counter()
            pr = prune_evidence(st, parse_duration("90d"), now=now)
            print(f"prune 90d: {time.perf_counter() - t0:.2f} s, {pr.bodies_deleted} bodies,"
                  f" {pr.compressed_bytes_freed / 1048576:.1f} MiB compressed")
        t0 = time.perf_counter()
        vr = vacuum_store(db)
        print(f"vacuum: {time.perf_counter() - t0:.2f} s, {vr.size_before / 1048576:.1f} → {vr.size_after / 1048576:.1f} MiB")
    sched = Schedule(cron="0 */6 * * *", timezone="Asia/Shanghai", jitter_s=600)
    last = LastRun("r", now - dt.timedelta(days=3), "complete")
    t0 = time.perf_counter()
    for i in range(100):
        decide(f"ps{i}", sched, last, now)
    print(f"100 schedule decisions (3 days missed): {(time.perf_counter() - t0) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
