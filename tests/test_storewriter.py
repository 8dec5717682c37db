"""The run's store thread: group commits, order, and "counted only once committed"."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import sqlite3
import threading

import pytest

from harness.models import Measurement, Run, Verdict
from harness.store.sqlite import Store
from harness.store.writer import StoreWriter


def _m(i: int, run_id: str = "r1", **kw) -> Measurement:
    base = dict(measurement_id=f"m{i}", run_id=run_id, probe_set="p", task_key=f"k{i}",
                measurement_start_time=dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc) + dt.timedelta(seconds=i),
                platform="sandbox", input=f"t{i}", query=f"t{i}", verdict=Verdict.not_censored)
    base.update(kw)
    return Measurement(**base)


@pytest.fixture
def store(store_path):
    with Store(store_path) as st:
        st.create_run(Run(run_id="r1", probe_set="p", started_at=dt.datetime.now(dt.timezone.utc)))
        yield st


def _committed(path) -> int:
    con = sqlite3.connect(path)  # a second connection sees only committed rows
    try:
        return con.execute("SELECT COUNT(*) FROM measurements").fetchone()[0]
    finally:
        con.close()


def test_waiting_measurements_share_one_commit_and_each_is_committed_when_its_future_resolves(store, store_path):
    async def main() -> tuple[list[bool], list[int], int]:
        writer = StoreWriter(store)
        gate = threading.Event()
        blocked = writer.call(gate.wait)  # the store thread is busy: measurements queue up behind it
        futures = [writer.add(_m(i), f"<html>{i}</html>".encode()) for i in range(100)]
        seen_at_resolution: list[int] = []
        for f in futures:
            f.add_done_callback(lambda _f: seen_at_resolution.append(_committed(store_path)))
        gate.set()
        await blocked
        results = await asyncio.gather(*futures)
        await writer.aclose()
        return results, seen_at_resolution, writer.batches

    results, seen, batches = asyncio.run(main())
    assert results == [True] * 100
    assert batches < 10  # grouped (one transaction would do; the thread may wake before all are queued)
    assert min(seen) >= 1 and all(n <= 100 for n in seen)
    assert seen[0] >= 1  # the first future resolved only after its row was visible to another connection
    assert store.count_measurements("r1") == 100
    assert store.conn.execute("SELECT COUNT(*) FROM bodies").fetchone()[0] == 100


def _one_batch(store: Store, measurements: list[Measurement]) -> list[object]:
    """Queue ``measurements`` while the store thread is busy, so they are written as one batch."""
    async def main() -> list[object]:
        writer = StoreWriter(store)
        gate = threading.Event()
        writer.call(gate.wait)
        futures = [writer.add(m) for m in measurements]
        gate.set()
        out = await asyncio.gather(*futures, return_exceptions=True)
        await writer.aclose()
        return out

    return asyncio.run(main())


def test_a_duplicate_task_in_the_same_batch_is_reported_not_inserted(store):
    assert _one_batch(store, [_m(1), _m(2, task_key="k1"), _m(3)]) == [True, False, True]
    assert store.done_task_keys("r1") == {"k1", "k3"}


def test_one_bad_measurement_fails_alone_and_its_neighbours_are_stored(store):
    first, bad, third = _one_batch(store, [_m(1), _m(2, run_id="no-such-run"), _m(3)])
    assert first is True and third is True
    assert isinstance(bad, sqlite3.IntegrityError)
    assert store.done_task_keys("r1") == {"k1", "k3"}


def test_calls_run_in_order_after_the_measurements_queued_before_them(store):
    async def main() -> list[int]:
        writer = StoreWriter(store)
        counts = []
        for i in range(30):
            writer.add(_m(i))
            if i % 10 == 9:
                counts.append(writer.call(store.count_measurements, "r1"))
        out = await asyncio.gather(*counts)
        await writer.aclose()
        return out

    assert asyncio.run(main()) == [10, 20, 30]


def test_close_writes_everything_handed_over(store, store_path):
    async def main() -> None:
        writer = StoreWriter(store)
        gate = threading.Event()
        writer.call(gate.wait)
        for i in range(50):
            writer.add(_m(i))
        threading.Timer(0.1, gate.set).start()
        writer.close()  # blocks until the queue is written
        assert _committed(store_path) == 50
        with pytest.raises(RuntimeError, match="closed"):
            writer.add(_m(99))

    asyncio.run(main())


def test_a_call_that_raises_hands_its_exception_to_the_caller(store):
    async def main() -> None:
        writer = StoreWriter(store)
        with pytest.raises(ZeroDivisionError):
            await writer.call(lambda: 1 / 0)
        assert await writer.call(lambda: 2) == 2  # the thread survives
        await writer.aclose()

    asyncio.run(main())


def test_last_known_verdicts_equals_the_per_term_query(store):
    rng = random.Random(7)
    store.create_run(Run(run_id="r0", probe_set="p", started_at=dt.datetime.now(dt.timezone.utc)))
    verdicts = [Verdict.hard, Verdict.not_censored, Verdict.soft, Verdict.failure, Verdict.no_results]
    for i in range(400):
        term = f"t{rng.randrange(40)}"
        when = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc) + dt.timedelta(seconds=rng.randrange(50))  # ties too
        verdict = rng.choice(verdicts)
        store.add_measurement(_m(i, run_id=rng.choice(["r0", "r1"]), input=term, measurement_start_time=when,
                                 verdict=verdict, vantage=rng.choice(["", "v2"]),
                                 failure="timeout" if verdict is Verdict.failure else None))
    for vantage in ("", "v2"):
        for before in ("r0", "r1", "r9"):
            bulk = store.last_known_verdicts("sandbox", [f"t{k}" for k in range(45)], vantage, before)
            single = {f"t{k}": store.last_known_verdict("sandbox", f"t{k}", vantage, before) for k in range(40)}
            assert bulk == {t: v for t, v in single.items() if v is not None}
            assert "failure" not in bulk.values()
