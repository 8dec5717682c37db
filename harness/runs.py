"""Run a probe set end to end: plan it, pick up an interrupted run, execute it.

This is the library entry point the CLI, the demo and the scheduler share.
"""

from __future__ import annotations

import asyncio
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from .engine import Engine, ProgressCallback, RunOptions, RunPlan, RunSummary, load_probe_set, plan_run
from .errors import RunLockedError
from .models import Run
from .platforms import PlatformRegistry
from .store import Store


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def find_resumable(store: Store, plan: RunPlan) -> Run | None:
    """The latest unfinished run of this probe set (same content), if its process is gone."""
    for run in store.list_runs(plan.probe_set.name, limit=1):
        if run.status == "complete" or run.probe_set_sha256 != plan.probe_set_sha256:
            return None
        if run.status == "running" and run.hostname == socket.gethostname() and pid_alive(run.pid) and run.pid != os.getpid():
            raise RunLockedError(
                f"probe set {plan.probe_set.name!r} is already running as run {run.run_id} (pid {run.pid} on {run.hostname})"
            )
        return run
    return None


@dataclass
class RunRequest:
    probe_set_path: Path
    store_path: Path
    platform_dirs: tuple[Path, ...] = ()
    keyword_dirs: tuple[Path, ...] = ()
    base_urls: dict[str, str] | None = None
    new: bool = False
    options: RunOptions | None = None


def prepare(req: RunRequest) -> RunPlan:
    probe_set, doc = load_probe_set(req.probe_set_path)
    registry = PlatformRegistry.default(req.platform_dirs)
    return plan_run(probe_set, registry, doc=doc, keyword_dirs=list(req.keyword_dirs), base_urls=req.base_urls)


def execute(req: RunRequest, plan: RunPlan, progress: ProgressCallback | None = None,
            on_start: "callable | None" = None) -> RunSummary:
    with Store(req.store_path) as store:
        resume = None if req.new else find_resumable(store, plan)
        engine = Engine(store, req.options)
        if on_start:
            already = store.count_measurements(resume.run_id) if resume else 0
            on_start(plan, resume, already)
        return asyncio.run(engine.run(plan, resume.run_id if resume else None, progress))
