"""``harness export`` and ``harness import``: measurements out to JSONL/CSV/Parquet, and merged back in."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from ..analysis.diff import resolve_run
from ..analysis.export import export_store, import_file
from ..errors import InputError
from ..store.base import Store, new_store_or_nothing
from ._app import app
from ._common import JsonOption, PlatformFilterOption, ProbeSetFilterOption, StoreOption, console, err_console, esc, print_json, store_path


@app.command("export")
def export_cmd(
    output: Path | None = typer.Option(None, "--output", "-o", help="file to write (default: stdout; needed for parquet)"),
    fmt: str = typer.Option("", "--format", "-f", metavar="jsonl|csv|parquet",
                            help="jsonl (json means the same), csv or parquet (default: from the file name, else "
                                 "jsonl); not a listing's table/tsv"),
    run: list[str] = typer.Option([], "--run", "-r", metavar="RUN", help="only this run: a run reference (id or prefix, "
                                  "latest, latest~N, a date, an age, with @VANTAGE; repeatable)"),
    probe_set: str | None = ProbeSetFilterOption,
    platform: list[str] = PlatformFilterOption,
    probes_only: bool = typer.Option(False, "--probes-only", help="leave out truism and control measurements "
                                                                  "(keep search probes and watched items)"),
    bodies: bool = typer.Option(False, "--bodies", help="include the stored bodies (base64) so evidence travels"),
    dataset: bool = typer.Option(False, "--dataset", help="Parquet as a folder partitioned by date and platform "
                                                          "(DuckDB, pandas, polars read it as one table)"),
    store: str | None = StoreOption,
) -> None:
    """Export measurements: JSON lines (OONI-style envelope), CSV, or typed Parquet (extra 'parquet'),
    one file or (--dataset) a partitioned folder; see docs/analysis.md."""
    chosen = export_format(fmt, output, dataset)
    with Store(store_path(store), readonly=True) as st:
        run_ids = [resolve_run(st, r, probe_set).run_id for r in run]
        n = export_store(st, output, chosen, out=sys.stdout, dataset=dataset, run_ids=run_ids, probe_set=probe_set,
                         platforms=platform,
                         roles=("probe", "item") if probes_only else ("probe", "item", "control", "truism",
                                                                       "positive_control", "isolation"),
                         bodies=bodies)
    if output is not None:
        err_console.print(f"{n} measurements written to {esc(output)} ({chosen})")


EXPORT_FORMATS = ("jsonl", "csv", "parquet")
"""What ``export --format`` takes; ``json`` is read as ``jsonl`` (one JSON record a line)."""

LISTING_FORMATS = ("table", "tsv")
"""The listing commands' ``--format`` values that mean nothing for an export (their json and csv do)."""


def export_format(fmt: str, output: Path | None, dataset: bool) -> str:
    """The export format: ``--format`` (any case; ``json`` = ``jsonl``), else ``parquet`` for
    ``--dataset``, else the output file's suffix, else ``jsonl``. Anything else is one line naming
    the accepted values (InputError, exit 2)."""
    accepted = "jsonl (or json), csv or parquet"
    if fmt:
        chosen = fmt.strip().lower()
        chosen = "jsonl" if chosen == "json" else chosen
        if chosen in EXPORT_FORMATS:
            return chosen
        if chosen in LISTING_FORMATS:
            raise InputError(f"export --format takes {accepted}, not {fmt!r} ({'/'.join(LISTING_FORMATS)} are "
                             f"for listing commands)")
        raise InputError(f"export --format takes {accepted}, not {fmt!r}")
    if dataset:
        return "parquet"
    if output is None or not output.suffix:
        return "jsonl"
    suffix = output.suffix.lstrip(".").lower()
    suffix = "jsonl" if suffix == "json" else suffix
    if suffix in EXPORT_FORMATS:
        return suffix
    raise InputError(f"cannot tell the export format from the file name {output.name!r}: "
                     f"give --format {accepted}")


@app.command("import")
def import_cmd(
    file: Path = typer.Argument(..., help="a JSONL or Parquet export from `harness export` (a file, or a --dataset folder)"),
    store: str | None = StoreOption,
    as_json: bool = JsonOption,
) -> None:
    """Merge an export (e.g. from another vantage point) into the store, skipping measurements already there."""
    with new_store_or_nothing(store_path(store)) as st:  # a failed import into a new store leaves no file
        summary = import_file(st, file)
    if as_json:
        print_json(summary.model_dump(mode="json"))
    else:
        console.print(f"{summary.records} records: {summary.added} added, {summary.duplicates} already present; "
                      f"{len(summary.runs_created)} runs created, {summary.bodies_added} bodies added")
