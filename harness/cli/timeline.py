"""``harness timeline`` and ``harness history``: one term (or one watched item) through time, and the runs."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from ..analysis.items import ItemTimeline, item_timeline
from ..analysis.timeline import run_history, term_timeline
from ..errors import NotFoundError
from ..store.sqlite import Store
from ._app import app
from ._common import JsonOption, StoreOption, console, esc, print_json, store_path


@app.command("timeline")
def timeline_cmd(
    term: str = typer.Argument(..., help="the term as written in its keyword list, or a watched item's URL"),
    platform: list[str] = typer.Option([], "--platform", "-p", help="only this platform (repeatable)"),
    vantage: list[str] = typer.Option([], "--vantage", help="only this vantage point (repeatable)"),
    store: str | None = StoreOption,
    as_json: bool = JsonOption,
) -> None:
    """Periods of each verdict of one term (or state of one watched item: give its URL), per platform and
    vantage point, with first and last seen; for an item, every change with the window it happened in."""
    with Store(store_path(store), readonly=True) as st:
        if "://" in term:
            try:
                itl = item_timeline(st, term, platforms=platform or None, vantages=vantage or None)
            except NotFoundError:
                itl = None
            if itl is not None:
                if as_json:
                    print_json(itl.model_dump(mode="json"))
                else:
                    print_item_timeline(itl)
                return
        tl = term_timeline(st, term, platforms=platform or None, vantages=vantage or None)
    if as_json:
        print_json(tl.model_dump(mode="json"))
        return
    table = Table(title=f"timeline of {esc(term)}")
    for col in ("platform", "vantage", "verdict", "first seen", "last seen", "runs", "failed runs", "confirmed"):
        table.add_column(col)
    for track in tl.tracks:
        for p in track.periods:
            conf = "" if p.confirmed is None else ("yes" if p.confirmed else "no")
            table.add_row(esc(track.platform), esc(track.vantage), p.verdict, p.first_seen.strftime("%Y-%m-%d %H:%M"),
                          p.last_seen.strftime("%Y-%m-%d %H:%M"), str(p.runs), str(p.unknown_runs), conf)
    console.print(table)
    for track in tl.tracks:
        if track.current:
            console.print(f"{esc(track.platform)} {esc(track.vantage)}: now {track.current}, "
                          f"last seen {track.age_days} days ago")


def _ts(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else "-"


def print_item_timeline(tl: ItemTimeline) -> None:
    table = Table(title=f"timeline of {esc(tl.url)}")
    for col in ("platform", "vantage", "state", "first seen", "last seen", "runs", "failed runs", "signals"):
        table.add_column(col)
    for track in tl.tracks:
        for p in track.periods:
            table.add_row(esc(track.platform), esc(track.vantage), p.state, _ts(p.first_seen), _ts(p.last_seen),
                          str(p.runs), str(p.unknown_runs),
                          esc(", ".join(s for s in p.signals if not s.startswith("title:")) or "-"))
    console.print(table)
    for track in tl.tracks:
        for c in track.changes:
            if c.before is None:
                note = " (first seen already removed: not counted as a removal)" if c.after != "available" else ""
                console.print(f"{esc(track.platform)} {esc(track.vantage)}: first seen {_ts(c.window_end)} as "
                              f"{c.after}{note}")
            else:
                console.print(f"{esc(track.platform)} {esc(track.vantage)}: [bold]{c.transition.value}[/] between "
                              f"{_ts(c.window_start)} and {_ts(c.window_end)} UTC ({c.before} → {c.after}); evidence: "
                              f"measurement {esc(c.measurement_id)}")
        if track.current:
            console.print(f"{esc(track.platform)} {esc(track.vantage)}: now {track.current}, last seen "
                          f"{_ts(track.last_seen)} UTC")


@app.command("history")
def history_cmd(
    probe_set: str | None = typer.Option(None, "--probe-set", help="only runs of this probe set"),
    vantage: str | None = typer.Option(None, "--vantage", help="only runs from this vantage point"),
    limit: int = typer.Option(50, "--limit", "-n", help="at most this many runs (newest first)"),
    store: str | None = StoreOption,
    as_json: bool = JsonOption,
) -> None:
    """Runs, newest first, with their verdict counts."""
    with Store(store_path(store), readonly=True) as st:
        rows = run_history(st, probe_set=probe_set, vantage=vantage, limit=limit)
    if as_json:
        print_json([r.model_dump(mode="json") for r in rows])
        return
    table = Table(title="runs")
    items = any(k.startswith(("available", "removed_", "item_")) for r in rows for k in r.counts)
    for col in ("run", "probe set", "vantage", "started (UTC)", "status", "measurements", "hard", "soft",
                "not censored", "no results", "failures", *(("items removed", "items available") if items else ())):
        table.add_column(col)
    for r in rows:
        c = r.counts
        extra = (str(sum(v for k, v in c.items() if k.startswith("removed_"))), str(c.get("available", 0))) if items else ()
        table.add_row(esc(r.run_id), esc(r.probe_set), esc(r.vantage), r.started_at.strftime("%Y-%m-%d %H:%M"), r.status,
                      str(r.measurements), *(str(c.get(v, 0)) for v in ("hard", "soft", "not_censored", "no_results",
                                                                          "failure")), *extra)
    console.print(table)
