"""The run's store thread: every store call of a run, in order, off the event loop.

Measurements are written in **group commits**: the thread takes every measurement that is
waiting when it wakes up (up to ``max_batch``) and writes them in one transaction. A
measurement counts as stored (its future resolves with ``True``) only once its commit has
returned, so a run killed at any moment resumes exactly: what was committed is skipped,
what was still waiting is probed again. Under light load a batch is one measurement,
as before; under heavy load batches grow and the per-commit cost is shared.

Other store calls (:meth:`StoreWriter.call`) run between batches, in submission order.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..models import Measurement
from .sqlite import Store

MAX_BATCH = 256


@dataclass
class _Add:
    measurement: Measurement
    body: bytes | None
    extra_bodies: tuple[bytes, ...]
    future: asyncio.Future[bool]


@dataclass
class _Call:
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    future: asyncio.Future[Any]


@dataclass
class _Stop:
    done: threading.Event = field(default_factory=threading.Event)


class StoreWriter:
    """One thread that owns a :class:`Store` for the length of a run.

    Create it inside the event loop; :meth:`close` (or ``await`` :meth:`aclose`) writes
    whatever is still queued before the thread ends, so nothing handed over is lost.
    """

    def __init__(self, store: Store, *, max_batch: int = MAX_BATCH, name: str = "harness-store"):
        self.store = store
        self.max_batch = max_batch
        self.batches = 0  # transactions written by add(), for the benchmarks
        self.written = 0
        self._loop = asyncio.get_running_loop()
        self._queue: queue.SimpleQueue[_Add | _Call | _Stop] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._closed = False
        self._thread.start()

    # ------------------------------------------------------------------ event-loop side

    def add(self, m: Measurement, body: bytes | None = None, extra_bodies: Iterable[bytes] = ()) -> asyncio.Future[bool]:
        """Queue one measurement (with its body and the extra bodies its test keys refer to).

        The future is ``True`` once it is committed, ``False`` if its task was already stored,
        or carries the store's exception.
        """
        fut: asyncio.Future[bool] = self._loop.create_future()
        self._put(_Add(m, body, tuple(extra_bodies), fut))
        return fut

    def call(self, fn: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        """Run ``fn(*args)`` on the store thread after everything queued before it."""
        fut: asyncio.Future[Any] = self._loop.create_future()
        self._put(_Call(fn, args, fut))
        return fut

    def _put(self, item: _Add | _Call) -> None:
        if self._closed:
            raise RuntimeError("the store writer is closed")
        self._queue.put(item)

    def close(self) -> None:
        """Write everything queued, then stop the thread (blocks; safe to call twice)."""
        if self._closed:
            return
        self._closed = True
        stop = _Stop()
        self._queue.put(stop)
        stop.done.wait()
        self._thread.join()

    async def aclose(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.close)

    # ------------------------------------------------------------------ store-thread side

    def _run(self) -> None:
        carry: _Add | _Call | _Stop | None = None
        while True:
            item = carry if carry is not None else self._queue.get()
            carry = None
            if isinstance(item, _Stop):
                item.done.set()
                return
            if isinstance(item, _Call):
                self._run_call(item)
                continue
            batch = [item]
            while len(batch) < self.max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if not isinstance(nxt, _Add):
                    carry = nxt
                    break
                batch.append(nxt)
            self._write(batch)

    def _run_call(self, item: _Call) -> None:
        try:
            result = item.fn(*item.args)
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting coroutine
            self._settle([(item.future, None, exc)])
        else:
            self._settle([(item.future, result, None)])

    def _write(self, batch: list[_Add]) -> None:
        try:
            inserted = self.store.add_measurements([(a.measurement, a.body, a.extra_bodies) for a in batch])
        except BaseException:  # noqa: BLE001
            # One bad measurement must not take its neighbours down: write them one by one.
            outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
            for a in batch:
                try:
                    outcomes.append((a.future, self.store.add_measurement(a.measurement, a.body, a.extra_bodies), None))
                except BaseException as exc:  # noqa: BLE001
                    outcomes.append((a.future, None, exc))
            self.batches += len(batch)
            self.written += sum(1 for _, ok, exc in outcomes if exc is None and ok)
            self._settle(outcomes)
            return
        self.batches += 1
        self.written += sum(inserted)
        self._settle([(a.future, ok, None) for a, ok in zip(batch, inserted)])

    def _settle(self, outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
        def resolve() -> None:
            for fut, result, exc in outcomes:
                if fut.done():  # its awaiting task was cancelled
                    continue
                if exc is not None:
                    fut.set_exception(exc)
                else:
                    fut.set_result(result)

        try:
            self._loop.call_soon_threadsafe(resolve)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            pass
