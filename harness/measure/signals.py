"""Running a coroutine so that SIGINT and SIGTERM stop it cleanly.

A signal handler that raises ``KeyboardInterrupt`` lands in whatever code the main thread
runs at that moment, often inside one task of many: asyncio then stops the loop with that
task's exception unretrieved and prints ``Task exception was never retrieved`` with a
traceback for it (about a hundred lines in cron mail). Here a signal only *cancels* the
main task from the loop, so every ``finally`` runs (workers stop, the store writer flushes,
the run is marked interrupted), and ``KeyboardInterrupt`` is raised once, after the loop has
finished, for the CLI to turn into exit code 130.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def run_interruptibly(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(coro)``, with SIGINT/SIGTERM cancelling ``coro`` and then raising ``KeyboardInterrupt``.

    Off the main thread (where signal handlers cannot be set) it is plain ``asyncio.run``.
    """
    if threading.current_thread() is not threading.main_thread():
        return asyncio.run(coro)
    loop = asyncio.new_event_loop()
    main = loop.create_task(coro)
    received: list[int] = []

    def on_signal(signum: int, frame: Any) -> None:
        received.append(signum)
        loop.call_soon_threadsafe(main.cancel)

    previous = {s: signal.signal(s, on_signal) for s in STOP_SIGNALS}
    try:
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(main)
    except asyncio.CancelledError:
        if received:
            raise KeyboardInterrupt(f"signal {received[0]}") from None
        raise
    finally:
        try:
            _cancel_the_rest(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
            asyncio.set_event_loop(None)
            loop.close()


def _cancel_the_rest(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel tasks still pending and collect their outcomes, so none is reported as never retrieved."""
    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    for task in pending:
        if not task.cancelled() and task.exception() is not None:
            loop.call_exception_handler({"message": "unhandled exception during shutdown", "exception": task.exception(),
                                         "task": task})
