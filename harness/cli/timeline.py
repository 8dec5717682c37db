"""``harness timeline`` and ``harness history``: one term through time, and the runs of a probe set."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from ..analysis.timeline import run_history, term_timeline
from ..store.sqlite import Store
from ._app import app
from ._common import JsonOption, StoreOption, console, esc, print_json, store_path


@app.command("timeline")
def timeline_cmd(
    term: str = typer.Argument(..., help="the term as written in its keyword list"),
    platform: list[str] = typer.Option([], "--platform", "-p", help="only this platform (repeatable)"),
    vantage: list[str] = typer.Option([], "--vantage", help="only this vantage point (repeatable)"),
    store: str | None = StoreOption,
    as_json: bool = JsonOption,
) -> None:
    """Periods of each verdict of one term, per platform and vantage point, with first and last seen."""
    with Store(store_path(store), readonly=True) as st:
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
    for col in ("run", "probe set", "vantage", "started (UTC)", "status", "measurements", "hard", "soft",
                "not censored", "no results", "failures"):
        table.add_column(col)
    for r in rows:
        c = r.counts
        table.add_row(esc(r.run_id), esc(r.probe_set), esc(r.vantage), r.started_at.strftime("%Y-%m-%d %H:%M"), r.status,
                      str(r.measurements), *(str(c.get(v, 0)) for v in ("hard", "soft", "not_censored", "no_results",
                                                                          "failure")))
    console.print(table)
