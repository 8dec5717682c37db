"""Pacing and retries: a per-platform rate limiter and the one send-with-retries loop.

The engine and the isolation oracle both send through :func:`send_with_retries`, so a
platform is paced the same way whoever asks: ``interval_s`` ± jitter between requests,
``Retry-After`` honoured (capped), otherwise exponential backoff with jitter, and only
retryable failures retried (:data:`harness.failures.RETRYABLE`).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable

from ..failures import DETERMINISTIC, RETRYABLE, FailureCode
from ..models import RateLimit
from ..platforms.classification import failure
from ..platforms.spec import PlatformSpec
from .request import Fetched, fetch
from .sessions import PlatformSession
from .transport import Sender


class RateLimiter:
    """Spaces requests to one platform by ``interval_s`` ± ``jitter`` (a fraction of it)."""

    def __init__(self, limit: RateLimit, rng: random.Random, clock: Callable[[], float] = time.monotonic):
        self.limit = limit
        self.rng = rng
        self.clock = clock
        self._next = 0.0
        self._lock = asyncio.Lock()

    def _gap(self) -> float:
        j = self.limit.jitter
        return self.limit.interval_s * (1 + self.rng.uniform(-j, j)) if j else self.limit.interval_s

    async def wait(self) -> None:
        async with self._lock:
            now = self.clock()
            delay = self._next - now
            if delay > 0:
                await asyncio.sleep(delay)
                now = self.clock()
            # max(): a push_back (Retry-After) that arrived while we slept must survive this wait
            self._next = max(self._next, now + self._gap())

    def push_back(self, seconds: float) -> None:
        """Delay every next request (a 429 with Retry-After, a failed control)."""
        self._next = max(self._next, self.clock() + seconds)


async def send_with_retries(sender: Sender, spec: PlatformSpec, query: str, limiter: RateLimiter, rng: random.Random,
                            *, retries: int, backoff_s: float, max_retry_after_s: float,
                            session: PlatformSession | None = None, retry_all: bool = False,
                            on_attempt: Callable[[Fetched], None] | None = None) -> Fetched:
    """Send one query at the limiter's pace; retry a failure up to ``retries`` times.

    Only retryable failures (:data:`harness.failures.RETRYABLE`) are retried unless
    ``retry_all``. Between attempts the whole platform waits: ``Retry-After`` when the answer
    had one (capped at ``max_retry_after_s``), else exponential backoff with jitter.
    ``on_attempt`` sees every answer. The last answer is returned, failed or not.
    """
    fetched = Fetched(failure(FailureCode.internal_error))
    for attempt in range(retries + 1):
        await limiter.wait()
        fetched = await fetch(sender, spec, query, session=session)
        fetched.attempts = attempt + 1
        if on_attempt is not None:
            on_attempt(fetched)
        code = fetched.classification.failure
        if code is None or attempt == retries or FailureCode(code) in DETERMINISTIC or not (
                retry_all or FailureCode(code) in RETRYABLE):
            return fetched
        if fetched.retry_after is not None:
            wait = min(fetched.retry_after, max_retry_after_s)
        else:
            wait = backoff_s * (2**attempt) * (1 + rng.uniform(0, 0.25))
        limiter.push_back(wait)
    return fetched
