from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from ..diff import DiffResult, default_pair, diff_runs
from ..store import Store
from . import app
from ._common import JsonOption, StoreOption, console, esc, print_json, store_path


def diff_table(result: DiffResult) -> Table:
    table = Table(title=f"{result.probe_set}: {result.run_a} → {result.run_b}")
    for col in ("platform", "term", "change", "before", "after", "confirmed"):
        table.add_column(col)
    for c in result.changes:
        conf = "" if c.confirmed is None else ("yes" if c.confirmed else "no")
        table.add_row(esc(c.platform), esc(c.term), c.transition.value, c.before or "-", c.after or "-", conf)
    return table


def print_diff(result: DiffResult) -> None:
    if result.changes:
        console.print(diff_table(result))
    else:
        console.print(f"no changes between {result.run_a} and {result.run_b} ({result.compared} terms compared)")
    if result.counts:
        console.print(", ".join(f"{k}: {v}" for k, v in sorted(result.counts.items())))


@app.command("diff")
def diff_cmd(
    a: str | None = typer.Argument(None, help="earlier run (id, prefix, latest~N); default: the run before B"),
    b: str | None = typer.Argument(None, help="later run; default: the latest run"),
    store: Path | None = StoreOption,
    as_json: bool = JsonOption,
) -> None:
    """List the terms whose verdict changed between two runs."""
    with Store(store_path(store), readonly=True) as st:
        run_a, run_b = default_pair(st, a, b)
        result = diff_runs(st, run_a.run_id, run_b.run_id)
    if as_json:
        print_json(result.model_dump(mode="json"))
    else:
        print_diff(result)
