"""Measure the comparator on a store made by generate.py: diff of the two big runs, timeline of one term.

    python bench/comparator/measure.py bench/out/comparator.db

Each measurement runs in a fresh process so that its peak RSS is its own. Wall time depends on
what else the machine is doing; CPU time (user + system) is printed beside it.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path


def _diff(store: str) -> dict:
    from harness.analysis.diff import diff_runs
    from harness.store import Store

    with Store(store, readonly=True) as st:
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        result = diff_runs(st, "bench-0000", "bench-0001")
        wall = time.perf_counter() - t0
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        a, b = st.count_measurements("bench-0000"), st.count_measurements("bench-0001")
    return {"what": "diff bench-0000 bench-0001", "measurements": [a, b], "changes": len(result.changes),
            "counts": result.counts, "wall_s": round(wall, 3),
            "cpu_s": round(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime, 3),
            "peak_rss_mb": round(r1.ru_maxrss / 1024, 1)}


def _timeline(store: str, term: str) -> dict:
    from harness.analysis.timeline import term_timeline
    from harness.store import Store

    with Store(store, readonly=True) as st:
        times = []
        for _ in range(7):
            t0 = time.perf_counter()
            tl = term_timeline(st, term)
            times.append(time.perf_counter() - t0)
        runs = {p.first_run for t in tl.tracks for p in t.periods} | {p.last_run for t in tl.tracks for p in t.periods}
        n_runs = st.conn.execute("SELECT COUNT(DISTINCT run_id) FROM measurements WHERE input=?", (term,)).fetchone()[0]
    return {"what": f"timeline {term}", "runs_with_term": n_runs, "tracks": len(tl.tracks),
            "periods": sum(len(t.periods) for t in tl.tracks), "first_call_ms": round(times[0] * 1000, 1),
            "median_ms": round(statistics.median(times) * 1000, 1), "max_ms": round(max(times) * 1000, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1), "_": len(runs)}


def _cli(store: str) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "harness", "diff", "bench-0000", "bench-0001", "--store", store,
                           "--json"], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"what": "harness diff bench-0000 bench-0001 --json (CLI, end to end)", "returncode": proc.returncode,
            "wall_s": round(wall, 3), "output_bytes": len(proc.stdout),
            "children_peak_rss_mb": round(usage.ru_maxrss / 1024, 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("store")
    ap.add_argument("--term", default="term-0000042")
    ap.add_argument("--part", choices=["diff", "timeline", "cli"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.part:
        out = {"diff": lambda: _diff(args.store), "timeline": lambda: _timeline(args.store, args.term),
               "cli": lambda: _cli(args.store)}[args.part]()
        print(json.dumps(out, ensure_ascii=False))
        return
    if not args.store.startswith("postgres") and not Path(args.store).is_file():
        sys.exit(f"{args.store}: no such store (run bench/comparator/generate.py first)")
    for part in ("diff", "timeline", "cli"):
        proc = subprocess.run([sys.executable, __file__, args.store, "--term", args.term, "--part", part],
                              capture_output=True, text=True)
        print(proc.stdout.strip() or proc.stderr.strip(), flush=True)
    with open("/proc/loadavg") as fh:
        print(json.dumps({"loadavg": fh.read().split()[:3]}))


if __name__ == "__main__":
    main()
