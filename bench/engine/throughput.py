"""Engine throughput vs a bare httpx.AsyncClient loop sending the same GETs at the same concurrency.

    .venv/bin/python bench/engine/throughput.py --terms 3000 --concurrency 8 --rounds 3

The sandbox runs in its own process (`harness sandbox serve`); rate limits are off. The harness
side is a full run through the public API (plan, fetch, classify, store in a real SQLite
file) with one GET per probe (controls and soft test off, so both sides send exactly the same
requests); a second harness figure with truism controls and the soft test on is printed for
information. Also reports the store's insert rate.

The issue's baseline is the bare ``httpx.AsyncClient`` loop. The harness sends through httpx's
transport directly (``harness.transport``: no client cookie jar, auth or redirect layer), so a
second baseline, a bare loop over ``httpx.AsyncHTTPTransport`` (one per worker, as the engine
does), is printed too: the ratio against it is the harness's own overhead.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, sandbox_process, term, write_probe_set  # noqa: E402

from harness.measure.engine import RunOptions
from harness.operations.runs import RunRequest, execute, prepare


async def bare_loop(url: str, n_terms: int, concurrency: int) -> float:
    queue: asyncio.Queue[str] = asyncio.Queue()
    for i in range(n_terms):
        queue.put_nowait(term(i))
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=32)

    async with httpx.AsyncClient(timeout=30, limits=limits, trust_env=False) as client:
        async def worker() -> None:
            while True:
                try:
                    t = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                async with client.stream("GET", url + "/s", params={"wd": t}) as resp:
                    async for _ in resp.aiter_bytes():
                        pass

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return n_terms / (time.perf_counter() - t0)


async def bare_transport_loop(url: str, n_terms: int, concurrency: int) -> float:
    queue: asyncio.Queue[str] = asyncio.Queue()
    for i in range(n_terms):
        queue.put_nowait(str(httpx.URL(url + "/s", params={"wd": term(i)})))
    timeout = httpx.Timeout(30).as_dict()

    async def worker() -> None:
        async with httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=2, max_keepalive_connections=1)) as t:
            while True:
                try:
                    u = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                resp = await t.handle_async_request(httpx.Request("GET", u, extensions={"timeout": timeout}))
                try:
                    async for _ in resp.aiter_raw():
                        pass
                finally:
                    await resp.aclose()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return n_terms / (time.perf_counter() - t0)


def harness_run(url: str, folder: Path, n_terms: int, concurrency: int, *, full: bool, tag: str) -> tuple[float, int]:
    ps = write_probe_set(folder, n_terms, concurrency=concurrency, soft=full, controls=full, name=f"bench-{tag}")
    store = folder / f"{tag}.db"
    req = RunRequest(ps, store, base_urls={"sandbox": url}, new=True, options=RunOptions(seed=1))
    plan = prepare(req)
    t0 = time.perf_counter()
    summary = execute(req, plan)
    elapsed = time.perf_counter() - t0
    assert summary.status == "complete" and summary.stored >= n_terms, summary
    assert sum(summary.failures.values()) == 0, summary.failures
    return n_terms / elapsed, summary.stored


def store_insert_rate(folder: Path, n: int = 20_000, batch: int = 1) -> tuple[float, float]:
    """Measurements per second through the store, ``batch`` per transaction (1: Store.add_measurement;
    more: Store.add_measurements, the engine's group commit), with the body dedup."""
    import uuid

    from harness.models import Measurement, Run, Verdict
    from harness.store.sqlite import Store, utcnow

    path = folder / f"insert-{batch}.db"
    with Store(path) as st:
        st.create_run(Run(run_id="r", probe_set="p", started_at=utcnow()))
        body = b"<html>" + b"x" * 3000 + b"</html>"
        t0 = time.perf_counter()
        for start in range(0, n, batch):
            items = [(Measurement(measurement_id=uuid.uuid4().hex, run_id="r", probe_set="p", task_key=f"k{i}",
                                  measurement_start_time=utcnow(), platform="sandbox", role="probe", input=f"t{i}",
                                  query=f"t{i}", verdict=Verdict.not_censored), body, ())
                     for i in range(start, min(n, start + batch))]
            if batch == 1:
                st.add_measurement(*items[0])
            else:
                st.add_measurements(items)
        per_s = n / (time.perf_counter() - t0)
        size_mb = path.stat().st_size / 2**20
    return per_s, size_mb


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--terms", type=int, default=3000)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp, sandbox_process() as url:
        folder = Path(tmp)
        asyncio.run(bare_loop(url, 200, args.concurrency))  # warm the server
        bare, raw, eng, full = [], [], [], []
        for r in range(args.rounds):
            bare.append(asyncio.run(bare_loop(url, args.terms, args.concurrency)))
            raw.append(asyncio.run(bare_transport_loop(url, args.terms, args.concurrency)))
            eng.append(harness_run(url, folder, args.terms, args.concurrency, full=False, tag=f"e{r}")[0])
            full.append(harness_run(url, folder, args.terms, args.concurrency, full=True, tag=f"f{r}")[0])
            print(f"round {r + 1}: bare client {bare[-1]:.0f} req/s, bare transport {raw[-1]:.0f} req/s, "
                  f"harness {eng[-1]:.0f} probes/s, harness+controls+soft {full[-1]:.0f} probes/s")
        b, t, e, f = (statistics.median(x) for x in (bare, raw, eng, full))
        ratios = sorted(x / y for x, y in zip(eng, bare))
        raw_ratios = sorted(x / y for x, y in zip(eng, raw))
        print(f"median of {args.rounds}: bare httpx.AsyncClient loop {b:.0f} req/s; harness {e:.0f} probes/s "
              f"= {e / b:.2f} x bare (target >= 0.70); per-round ratios {', '.join(f'{r:.2f}' for r in ratios)} "
              f"(median {statistics.median(ratios):.2f})")
        print(f"against a bare httpx transport loop ({t:.0f} req/s, the harness's own HTTP layer): per-round ratios "
              f"{', '.join(f'{r:.2f}' for r in raw_ratios)} (median {statistics.median(raw_ratios):.2f}); "
              f"with controls + soft test {f:.0f} probes/s")
        per_s, size = store_insert_rate(folder)
        grouped, _ = store_insert_rate(folder, batch=64)
        print(f"store: {per_s:.0f} measurements/s via add_measurement, one transaction each (3 KB body, deduplicated), "
              f"{size:.1f} MB file; {grouped:.0f}/s in group commits of 64")


if __name__ == "__main__":
    main()
