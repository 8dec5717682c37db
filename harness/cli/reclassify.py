"""``harness reclassify``: re-apply the current platform specs to a run's stored evidence."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from ..analysis.diff import resolve_run
from ..analysis.reclassify import reclassify_run
from ..platforms.items import ItemRegistry
from ..platforms.registry import PlatformRegistry
from ..store.sqlite import Store
from ._app import app
from ._common import SpecsOption, JsonOption, StoreOption, console, esc, print_json, store_path


@app.command("reclassify")
def reclassify_cmd(
    run: str = typer.Argument(..., metavar="RUN", help="a run reference (id or prefix, latest, latest~N, a date, an age, "
                              "with @VANTAGE)"),
    store: str | None = StoreOption,
    platforms: list[Path] = SpecsOption,
    dry_run: bool = typer.Option(False, "--dry-run", help="show what would change; record nothing"),
    as_json: bool = JsonOption,
) -> None:
    """Re-apply the current platform and item specs to a run's stored evidence, without probing again.

    The original measurements are never rewritten: each re-classification is recorded as a
    batch in the store's reclassifications table.
    """
    registry = PlatformRegistry.default(platforms)
    with Store(store_path(store)) as st:
        result = reclassify_run(st, resolve_run(st, run).run_id, registry, dry_run=dry_run,
                                items=ItemRegistry.default(platforms))
    if as_json:
        print_json(result.model_dump(mode="json"))
        return
    if result.changes:
        table = Table(title=f"run {result.run_id}: verdicts that change with the current specs")
        for col in ("platform", "role", "term", "was", "now", "signals"):
            table.add_column(col)
        for r in result.changes:
            was = r.old_verdict + (f" ({r.old_failure})" if r.old_failure else "")
            now = r.new_verdict + (f" ({r.new_failure})" if r.new_failure else "")
            table.add_row(esc(r.platform), r.role, esc(r.input), esc(was), esc(now), esc(", ".join(r.signals)))
        console.print(table)
    kept = ", ".join(f"{k}: {v}" for k, v in sorted(result.kept.items()))
    verb = "would record" if dry_run else "recorded as batch " + result.batch_id
    console.print(f"{result.examined} measurements examined, {result.changed} verdicts change; {verb}"
                  + (f"; not re-classifiable: {esc(kept)}" if kept else ""))
