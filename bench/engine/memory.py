"""Resident memory over a long run: is it flat?

    .venv/bin/python bench/engine/memory.py --probes 200000 [--max-minutes 25]

A generated list of N terms is run against the sandbox (its own process, rate limits off,
truism controls every 100 probes, soft test off) through the public API. RSS is sampled
every 5,000 stored measurements; growth is measured from the first sample (taken after the
plan exists, so the plan's own size, which is proportional to N, is not counted as growth).
With --max-minutes the run is stopped (like Ctrl-C) when time is up and the figures so far
are printed: the run can be resumed like any other.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, rss_mb, sandbox_process, write_probe_set  # noqa: E402

from harness.measure.engine import RunOptions
from harness.models import Measurement
from harness.operations.runs import RunRequest, execute, prepare


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--probes", type=int, default=200_000)
    ap.add_argument("--every", type=int, default=5_000)
    ap.add_argument("--max-minutes", type=float, default=0)
    args = ap.parse_args()
    print(f"machine: {machine()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp, sandbox_process() as url:
        folder = Path(tmp)
        ps = write_probe_set(folder, args.probes, concurrency=8, controls=True, name="memory")
        req = RunRequest(ps, folder / "memory.db", base_urls={"sandbox": url}, new=True, options=RunOptions(seed=1))
        plan = prepare(req)
        samples: list[tuple[int, float, float]] = []
        stored = 0
        t0 = time.perf_counter()
        samples.append((0, 0.0, rss_mb()))
        print(f"planned {len(plan.tasks)} tasks; RSS after planning {samples[0][2]:.1f} MB", flush=True)

        def progress(m: Measurement | None) -> None:
            nonlocal stored
            if m is None or m.role != "probe":
                return
            stored += 1
            if stored % args.every == 0:
                samples.append((stored, time.perf_counter() - t0, rss_mb()))
                s = samples[-1]
                print(f"{s[0]:>8} probes  {s[1]:7.0f} s  RSS {s[2]:7.1f} MB  ({s[0] / s[1]:.0f} probes/s)", flush=True)

        if args.max_minutes:
            import _thread

            timer = threading.Timer(args.max_minutes * 60, _thread.interrupt_main)
            timer.daemon = True
            timer.start()
        try:
            execute(req, plan, progress)
            status = "complete"
        except KeyboardInterrupt:
            status = "stopped at the time limit"
        first = samples[1] if len(samples) > 1 else samples[0]
        last = samples[-1]
        peak = max(s[2] for s in samples)
        print(f"{status}: {stored} probes stored in {time.perf_counter() - t0:.0f} s; RSS {first[2]:.1f} MB at "
              f"{first[0]} probes -> {last[2]:.1f} MB at {last[0]} (growth {last[2] - first[2]:+.1f} MB, "
              f"peak {peak:.1f} MB; growth from the plan: {last[2] - samples[0][2]:+.1f} MB)", flush=True)
        print(f"store: {(folder / 'memory.db').stat().st_size / 2**20:.0f} MB", flush=True)


if __name__ == "__main__":
    main()
