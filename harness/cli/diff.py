"""``harness diff``: which terms became filtered or unfiltered between two runs, or across vantages."""

from __future__ import annotations

from enum import Enum

import typer

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
from ..exitcodes import ExitCode
from ._app import app
from ._common import StoreOption, store_path
from ._output import Col, Format, FormatOption, choose_format, emit, note

DEFAULT_LIMIT = 50


class By(str, Enum):
    run = "run"
    vantage = "vantage"
    platform = "platform"


def _confirmed(c) -> str:
    if c.transition in NOT_CONFIRMABLE:
        return "-"
    if c.confirmed is None:
        return "unconfirmed"
    if c.confirmed:
        return f"yes ({c.confirmed_by})" if c.confirmed_by else "yes"
    return "no"


def _after(c) -> str:
    after = c.after or "-"
    if c.drop is not None:
        after += f" (−{c.drop:.0%} results)"
    if c.last_known:
        after += f" (still {c.last_known}, {c.stale_days} d old)"
    return after


# before/after/confirmed are verdicts (or states) with a note: never split inside a word. At 80
# columns they do not all fit beside the key columns, so confirmed, then vantage, are left out
# (with a note) before any verdict is cut.
DIFF_COLS = [Col("change", key=True), Col("platform", key=True), Col("term", key=True),
             Col("vantage", optional=True), Col("before", words=True), Col("after", words=True),
             Col("confirmed", words=True, optional=True)]


def diff_rows(result: DiffResult) -> list[tuple]:
    return [(c.transition.value, c.platform, c.term, c.vantage, c.before or "-", _after(c), _confirmed(c))
            for c in result.changes]


def summary_line(result: DiffResult) -> str:
    head = f"{result.probe_set}: {result.run_a} → {result.run_b}, {result.compared} terms compared"
    if not result.changes:
        return f"{head}: no changes"
    return f"{head}: {len(result.changes)} changes (" + ", ".join(f"{k} {v}" for k, v in sorted(result.counts.items())) + ")"


def print_diff(result: DiffResult, fmt: Format = Format.table, limit: int | None = DEFAULT_LIMIT) -> None:
    """Summary first, then the changes (at most ``limit`` on a terminal table; all in tsv/csv)."""
    note(fmt, summary_line(result))
    for n in result.notes:
        note(fmt, f"note: {n}")
    if not result.changes:
        return
    rows = diff_rows(result)
    shown = rows if limit is None or fmt is not Format.table else rows[:limit]
    emit(fmt, DIFF_COLS, shown)
    if len(shown) < len(rows):
        note(fmt, f"… {len(rows) - len(shown)} more changes (--all to list them, or --format tsv|csv|json)")


CROSS_COLS = [Col("difference", key=True), Col("term", key=True), Col("platform or vantage", key=True),
              Col("A", words=True), Col("B", words=True)]


def print_cross(result: CrossDiff, fmt: Format = Format.table, limit: int | None = DEFAULT_LIMIT) -> None:
    note(fmt, f"across {result.by}: A = {result.side_a} ({result.run_a}), B = {result.side_b} ({result.run_b}); "
              + (", ".join(f"{k} {v}" for k, v in result.counts.items()) if result.rows else
                 f"no differences ({result.compared} keys compared)"))
    if not result.rows:
        return
    rows = [(r.difference.value, r.term, (r.vantage if result.by == "platform" else r.platform) or "",
             r.verdict_a or "-", r.verdict_b or "-") for r in result.rows]
    shown = rows if limit is None or fmt is not Format.table else rows[:limit]
    emit(fmt, CROSS_COLS, shown)
    if len(shown) < len(rows):
        note(fmt, f"… {len(rows) - len(shown)} more (--all to list them)")


def _when(ts) -> str:
    return ts.strftime("%Y-%m-%d %H:%M:%S") if ts is not None else "-"


def window_text(start, end) -> str:
    """``2026-12-01 01:33:20 – 01:33:23`` (the date once when both ends share it)."""
    if start is None:
        return f"first seen {_when(end)}" if end is not None else "-"
    if end is not None and start.date() == end.date():
        return f"{_when(start)} – {end.strftime('%H:%M:%S')}"
    return f"{_when(start)} – {_when(end)}"


ITEM_COLS = [Col("change", key=True), Col("platform", key=True), Col("item", key=True), Col("between (UTC)"),
             Col("notice"), Col("retest")]


def item_rows(result: ItemDiff) -> list[tuple]:
    rows = []
    for c in result.changes:
        change = c.transition.value
        if c.transition.value in ("restored", "reason_changed", "first_observation"):
            change += f" ({c.before or 'new'} → {c.after or '-'})"
        if c.last_known:
            change += f", still {c.last_known}"
        retest = "-" if c.confirmed is None else ("yes" if c.confirmed else "no")
        rows.append((change, c.platform, c.url, window_text(c.window_start, c.window_end),
                     ", ".join(s for s in c.signals if not s.startswith("title:")) or "-", retest))
    return rows


def print_item_diff(result: ItemDiff, fmt: Format = Format.table) -> None:
    """The item changes: a table on a terminal, rows only (tsv/csv) in a pipe, the summary beside them."""
    if result.changes:
        emit(fmt, ITEM_COLS, item_rows(result), title=f"watched items: {result.run_a} → {result.run_b}")
    else:
        note(fmt, f"no changes of watched items between {result.run_a} and {result.run_b} "
                  f"({result.compared} items compared)")
    if result.counts:
        note(fmt, "items: " + ", ".join(f"{k}: {v}" for k, v in sorted(result.counts.items())))


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


@app.command("diff")
def diff_cmd(
    a: str | None = typer.Argument(None, metavar="A", help="earlier run (see RUN REFERENCES in docs/cli.md: id or "
                                   "prefix, latest, latest~N, a date 2026-11-01, an age 7d, each with @VANTAGE); "
                                   "default: the run before B"),
    b: str | None = typer.Argument(None, metavar="B", help="later run (same forms); default: the latest run"),
    platform: list[str] = typer.Option([], "--platform", "-p", metavar="NAME", help="only this platform (repeatable); "
                                       "with --by platform: the two platforms to compare"),
    list_name: list[str] = typer.Option([], "--list", metavar="LIST", help="only terms from this keyword list (repeatable)"),
    category: list[str] = typer.Option([], "--category", metavar="CODE", help="only this category (repeatable)"),
    tag: list[str] = typer.Option([], "--tag", metavar="TAG", help="only entries with this tag (repeatable)"),
    by: By = typer.Option(By.run, "--by", help="run: A vs B over time; vantage: the same probes at two vantage "
                                               "points; platform: two platforms"),
    drop_threshold: float = typer.Option(DEFAULT_DROP_THRESHOLD, "--drop-threshold",
                                         help="flag results_dropped when results fall by at least this fraction"),
    no_drops: bool = typer.Option(False, "--no-drops", help="do not look for results_dropped"),
    limit: int = typer.Option(DEFAULT_LIMIT, "--limit", "-n", min=1, help="rows shown in a terminal table"),
    show_all: bool = typer.Option(False, "--all", help="show every row in a terminal table"),
    exit_code: bool = typer.Option(False, "--exit-code", help=f"exit {int(ExitCode.FOUND)} when something changed, "
                                                              "0 when nothing did (like git diff --exit-code)"),
    store: str | None = StoreOption,
    fmt: Format | None = FormatOption,
    as_json: bool = typer.Option(False, "--json", help="print JSON (same as --format json)"),
    as_csv: bool = typer.Option(False, "--csv", help="print CSV with every column (same as --format csv)"),
    as_markdown: bool = typer.Option(False, "--markdown", help="print a Markdown table"),
) -> None:
    """What changed between two runs, or what differs between vantage points or platforms.

    Prints a summary line, then the changes. On a terminal the table shows --limit rows
    (--all: every row); piped, every row is printed as tab-separated text.
    """
    if sum((as_json, as_csv, as_markdown, fmt is not None)) > 1:
        raise InputError("choose one of --format, --json, --csv, --markdown")
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
    out = choose_format(Format.csv if as_csv else fmt, as_json)
    if as_markdown:
        typer.echo(to_markdown(result), nl=False)
        if items is not None:
            from ..analysis.report import items_markdown

            typer.echo("\n" + items_markdown(items), nl=False)
    elif out is Format.json:
        if items is None:
            typer.echo(to_json(result))
        else:
            import json

            doc = json.loads(to_json(result))
            doc["items"] = items.model_dump(mode="json")
            typer.echo(json.dumps(doc, ensure_ascii=False, indent=2))
    elif out is Format.csv:
        typer.echo(to_csv(result), nl=False)
    elif isinstance(result, CrossDiff):
        print_cross(result, out, None if show_all else limit)
    else:
        if items is None or result.changes or result.compared:
            print_diff(result, out, None if show_all else limit)
        if items is not None:
            print_item_diff(items, out)
    changed = bool(result.rows if isinstance(result, CrossDiff) else result.changes) or bool(
        items is not None and items.changes)
    if exit_code and changed:
        raise typer.Exit(ExitCode.FOUND)
