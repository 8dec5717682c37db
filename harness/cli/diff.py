"""``harness diff``: which terms became filtered or unfiltered between two runs, or across vantages."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer
from rich.table import Table

from ..analysis.diff import (
    DEFAULT_DROP_THRESHOLD,
    NOT_CONFIRMABLE,
    CrossDiff,
    DiffResult,
    Filters,
    cross_diff,
    default_pair,
    diff_runs,
    resolve_run,
    to_csv,
    to_json,
    to_markdown,
)
from ..errors import InputError
from ..store.sqlite import Store
from ._app import app
from ._common import StoreOption, console, esc, store_path


class By(str, Enum):
    run = "run"
    vantage = "vantage"
    platform = "platform"


def _confirmed(c) -> str:
    if c.transition in NOT_CONFIRMABLE:
        return "-"
    if c.confirmed is None:
        return "[yellow]unconfirmed[/]"
    if c.confirmed:
        return f"yes ({c.confirmed_by})" if c.confirmed_by else "yes"
    return "[yellow]no[/]"


def diff_table(result: DiffResult) -> Table:
    table = Table(title=f"{esc(result.probe_set)}: {esc(result.run_a)} → {esc(result.run_b)}")
    for col in ("platform", "term", "vantage", "change", "before", "after", "confirmed"):
        table.add_column(col)
    for c in result.changes:
        after = c.after or "-"
        if c.drop is not None:
            after += f" (−{c.drop:.0%} results)"
        if c.last_known:
            after += f" (still {c.last_known}, {c.stale_days} d old)"
        table.add_row(esc(c.platform), esc(c.term), esc(c.vantage), c.transition.value, c.before or "-", esc(after),
                      _confirmed(c))
    return table


def cross_table(result: CrossDiff) -> Table:
    table = Table(title=f"across {result.by}: A = {esc(result.side_a)} ({esc(result.run_a)}), "
                        f"B = {esc(result.side_b)} ({esc(result.run_b)})")
    dim = "vantage" if result.by == "platform" else "platform"
    for col in ("term", dim, "difference", "A", "B"):
        table.add_column(col)
    for r in result.rows:
        table.add_row(esc(r.term), esc((r.vantage if result.by == "platform" else r.platform) or ""),
                      r.difference.value, r.verdict_a or "-", r.verdict_b or "-")
    return table


def print_diff(result: DiffResult) -> None:
    if result.changes:
        console.print(diff_table(result))
    else:
        console.print(f"no changes between {esc(result.run_a)} and {esc(result.run_b)} ({result.compared} terms compared)")
    if result.counts:
        console.print(", ".join(f"{k}: {v}" for k, v in sorted(result.counts.items())))
    for note in result.notes:
        console.print(f"[yellow]note:[/] {esc(note)}")


def print_cross(result: CrossDiff) -> None:
    if result.rows:
        console.print(cross_table(result))
    else:
        console.print(f"no differences between {esc(result.side_a)} and {esc(result.side_b)} ({result.compared} keys compared)")
    if result.counts:
        console.print(", ".join(f"{k}: {v}" for k, v in result.counts.items()))


@app.command("diff")
def diff_cmd(
    a: str | None = typer.Argument(None, help="earlier run: id or prefix, latest~N, a date (2026-11-01), an age (7d); "
                                              "add @VANTAGE to pick a vantage point; default: the run before B"),
    b: str | None = typer.Argument(None, help="later run (same forms); default: the latest run"),
    platform: list[str] = typer.Option([], "--platform", "-p", help="only this platform (repeatable); with "
                                                                    "--by platform: the two platforms to compare"),
    list_name: list[str] = typer.Option([], "--list", help="only terms from this keyword list (repeatable)"),
    category: list[str] = typer.Option([], "--category", help="only this category (repeatable)"),
    tag: list[str] = typer.Option([], "--tag", help="only entries with this tag (repeatable)"),
    by: By = typer.Option(By.run, "--by", help="run: A vs B over time; vantage: the same probes at two vantage "
                                               "points; platform: two platforms"),
    drop_threshold: float = typer.Option(DEFAULT_DROP_THRESHOLD, "--drop-threshold",
                                         help="flag results_dropped when results fall by at least this fraction"),
    no_drops: bool = typer.Option(False, "--no-drops", help="do not look for results_dropped"),
    store: str | None = StoreOption,
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
    as_csv: bool = typer.Option(False, "--csv", help="print CSV"),
    as_markdown: bool = typer.Option(False, "--markdown", help="print a Markdown table"),
) -> None:
    """What changed between two runs, or what differs between vantage points or platforms."""
    if sum((as_json, as_csv, as_markdown)) > 1:
        raise InputError("choose one of --json, --csv, --markdown")
    with Store(store_path(store), readonly=True) as st:
        if by is By.platform:
            if len(platform) != 2:
                raise InputError("--by platform needs exactly two --platform options (A and B)")
            run_b = resolve_run(st, b) if b else (resolve_run(st, a) if a else resolve_run(st, "latest"))
            run_a = resolve_run(st, a) if (a and b) else run_b
            result: DiffResult | CrossDiff = cross_diff(
                st, "platform", run_a.run_id, run_b.run_id, side_a=platform[0], side_b=platform[1],
                filters=Filters((), tuple(list_name), tuple(category), tuple(tag)))
        else:
            filters = Filters(tuple(platform), tuple(list_name), tuple(category), tuple(tag))
            run_a, run_b = default_pair(st, a, b, across_vantage=by is By.vantage)
            if by is By.vantage:
                result = cross_diff(st, "vantage", run_a.run_id, run_b.run_id, filters=filters)
            else:
                result = diff_runs(st, run_a.run_id, run_b.run_id, filters=filters,
                                   drop_threshold=None if no_drops else drop_threshold)
    if as_json:
        typer.echo(to_json(result))
    elif as_csv:
        typer.echo(to_csv(result), nl=False)
    elif as_markdown:
        typer.echo(to_markdown(result), nl=False)
    elif isinstance(result, CrossDiff):
        print_cross(result)
    else:
        print_diff(result)
