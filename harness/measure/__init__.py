"""Measuring: from a probe set to stored measurements (stages 2 and 4 of the pipeline).

- :mod:`harness.measure.plan`: load a probe set and lay out a run's tasks (stable keys);
- :mod:`harness.measure.request`: build one request, send it, read and classify the answer;
- :mod:`harness.measure.pacing`: per-platform rate limits, retries and backoff;
- :mod:`harness.measure.transport`: how bytes go out (an httpx transport, per worker);
- :mod:`harness.measure.sessions`: per-platform cookies, proxies and the secrets they carry;
- :mod:`harness.measure.engine`: the controller that owns the loop, controls and storage;
- :mod:`harness.measure.check`: ``harness platforms check`` (one truism, its signals shown).
"""

from .engine import Engine, RunOptions, RunSummary, Vantage, run_sync
from .plan import ProbeTask, RunPlan, load_probe_set, plan_run

__all__ = [
    "Engine",
    "ProbeTask",
    "RunOptions",
    "RunPlan",
    "RunSummary",
    "Vantage",
    "load_probe_set",
    "plan_run",
    "run_sync",
]
