"""``harness demo``: the offline end-to-end demo against the embedded sandbox (two rule epochs, a diff of the
keywords and of the watched items)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import typer

from ..analysis.diff import diff_runs
from ..errors import NotFoundError
from ..measure.engine import RunOptions
from ..operations.runs import RunRequest, prepare
from ..operations.workspace import bundled_dir, workspace_path
from ..sandbox import Sandbox
from ..store.sqlite import Store
from ._app import app
from ._common import JsonOption, print_json
from ..analysis.diff import Filters
from ._output import choose_format, note
from .diff import filtered_item_diff, print_diff, print_item_diff
from .run import print_summary, run_with_progress, summary_dict

def find_demo_probe_set() -> Path:
    """probes/demo.yaml of the workspace (or the working directory), else the one installed with the package."""
    local = workspace_path("probes") / "demo.yaml"
    if local.is_file():
        return local
    bundled = bundled_dir("probes") / "demo.yaml"
    if bundled.is_file():
        return bundled
    raise NotFoundError("probes/demo.yaml not found (in this workspace or the installed package)")


@app.command("demo")
def demo_cmd(
    store: Path | None = typer.Option(None, "--store", "-s", metavar="PATH",
                                      help="keep the runs in this store (default: a temporary one)"),
    probe_set: Path | None = typer.Option(None, "--probe-set", metavar="FILE",
                                          help="probe set to use (default: probes/demo.yaml here, else the installed one)"),
    as_json: bool = JsonOption,
) -> None:
    """Offline, end to end: start the sandbox, run the demo probe set (keywords and watched items), change the
    rules, run again, and show what changed: terms newly filtered or unfiltered, items removed."""
    t0 = time.monotonic()
    ps_path = probe_set or find_demo_probe_set()
    with tempfile.TemporaryDirectory(prefix="harness-demo-") as tmp, Sandbox() as sb:
        db = store or Path(tmp) / "demo.db"
        req = RunRequest(ps_path, db, base_urls={"sandbox": sb.url}, new=True,
                         options=RunOptions(retry_backoff_s=0.05, control_backoff_s=0.05))
        plan = prepare(req)
        quiet = as_json
        fmt = choose_format(None)  # a table on a terminal; in a pipe, TSV rows on stdout and the story on stderr
        if not quiet:
            note(fmt, f"sandbox on {sb.url}, epoch {sb.engine.epoch.name}; {len(plan.tasks)} probes per run")
        first = run_with_progress(req, plan, quiet=quiet)
        if not quiet:
            print_summary(first, fmt, f"run 1 — epoch {sb.engine.epoch.name}")
        sb.set_epoch(1)
        if not quiet:
            note(fmt, f"sandbox rules switched to epoch {sb.engine.epoch.name}")
        second = run_with_progress(req, plan, quiet=quiet)
        if not quiet:
            print_summary(second, fmt, f"run 2 — epoch {sb.engine.epoch.name}")
        with Store(db, readonly=True) as st:
            result = diff_runs(st, first.run_id, second.run_id)
            items = filtered_item_diff(st, first.run_id, second.run_id, Filters())
        elapsed = time.monotonic() - t0
        if as_json:
            print_json({"runs": [summary_dict(first), summary_dict(second)], "diff": result.model_dump(mode="json"),
                        "items": items.model_dump(mode="json") if items is not None else None,
                        "elapsed_s": round(elapsed, 2), "store": str(db) if store else None})
        else:
            print_diff(result, fmt)
            if items is not None:
                print_item_diff(items, fmt)
            where = f"stored in {db}" if store else "temporary store removed (use --store to keep it)"
            note(fmt, f"demo finished in {elapsed:.1f} s; {where}")
