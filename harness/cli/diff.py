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
from ..analysis.items import ItemDiff, diff_items, runs_with_items
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


def _when(ts) -> str:
    return ts.strftime("%Y-%m-%d %H:%M:%S") if ts is not None else "-"


def window_text(start, end) -> str:
    """``2026-12-01 01:33:20 – 01:33:23`` (the date once when both ends share it)."""
    if start is None:
        return f"first seen {_when(end)}" if end is not None else "-"
    if end is not None and start.date() == end.date():
        return f"{_when(start)} – {end.strftime('%H:%M:%S')}"
    return f"{_when(start)} – {_when(end)}"


def item_table(result: ItemDiff) -> Table:
    table = Table(title=f"watched items: {esc(result.run_a)} → {esc(result.run_b)}")
    for col in ("item", "change", "between (UTC)", "notice", "retest"):
        table.add_column(col, overflow="fold")
    for c in result.changes:
        change = c.transition.value
        if c.transition.value in ("restored", "reason_changed", "first_observation"):
            change += f" ({c.before or 'new'} → {c.after or '-'})"
        if c.last_known:
            change += f", still {c.last_known}"
        retest = "-" if c.confirmed is None else ("yes" if c.confirmed else "[yellow]no[/]")
        table.add_row(esc(c.url), change, window_text(c.window_start, c.window_end),
                      esc(", ".join(s for s in c.signals if not s.startswith("title:")) or "-"), retest)
    return table


def print_item_diff(result: ItemDiff) -> None:
    if result.changes:
        console.print(item_table(result))
    else:
        console.print(f"no changes of watched items between {esc(result.run_a)} and {esc(result.run_b)} "
                      f"({result.compared} items compared)")
    if result.counts:
        console.print("items: " + ", ".join(f"{k}: {v}" for k, v in sorted(result.counts.items())))


def filtered_item_diff(st: Store, run_a: str, run_b: str, filters: Filters) -> ItemDiff | None:
    """The item changes between two runs (None when neither measured watched items), filtered like the diff."""
    if not runs_with_items(st, [st.get_run(run_a), st.get_run(run_b)]):
        return None
    result = diff_items(st, run_a, run_b)
    keep = [c for c in result.changes
            if (not filters.platforms or c.platform in filters.platforms)
            and (not filters.lists or c.list_name in filters.lists)
            and (not filters.categories or c.category in filters.categories)]
    if len(keep) != len(result.changes):
        from collections import Counter

        result.changes = keep
        result.counts = dict(sorted(Counter(c.transition.value for c in keep).items()))
    return result


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
        items = filtered_item_diff(st, run_a.run_id, run_b.run_id, filters) if by is By.run else None
    if as_json:
        if items is None:
            typer.echo(to_json(result))
        else:
            import json

            doc = json.loads(to_json(result))
            doc["items"] = items.model_dump(mode="json")
            typer.echo(json.dumps(doc, ensure_ascii=False, indent=2))
    elif as_csv:
        typer.echo(to_csv(result), nl=False)
    elif as_markdown:
        typer.echo(to_markdown(result), nl=False)
        if items is not None:
            from ..analysis.report import items_markdown

            typer.echo("\n" + items_markdown(items), nl=False)
    elif isinstance(result, CrossDiff):
        print_cross(result)
    else:
        if items is None or result.changes or result.compared:
            print_diff(result)
        if items is not None:
            print_item_diff(items)
