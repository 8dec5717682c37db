"""``harness timeline`` and ``harness history``: one term through time, and the runs of a probe set."""

from __future__ import annotations

from pathlib import Path

import typer

from ..analysis.timeline import run_history, term_timeline
from ..store.sqlite import Store
from ._app import app
from ._common import JsonOption, StoreOption, print_json, store_path
from ._output import Col, Format, FormatOption, choose_format, emit, note


@app.command("timeline")
def timeline_cmd(
    term: str = typer.Argument(..., help="the term as written in its keyword list"),
    platform: list[str] = typer.Option([], "--platform", "-p", metavar="NAME", help="only this platform (repeatable)"),
    vantage: list[str] = typer.Option([], "--vantage", metavar="LABEL", help="only this vantage point (repeatable)"),
    store: Path | None = StoreOption,
    fmt: Format | None = FormatOption,
    as_json: bool = JsonOption,
) -> None:
    """Periods of each verdict of one term, per platform and vantage point, with first and last seen."""
    with Store(store_path(store), readonly=True) as st:
        tl = term_timeline(st, term, platforms=platform or None, vantages=vantage or None)
    out = choose_format(fmt, as_json)
    if out is Format.json:
        print_json(tl.model_dump(mode="json"))
        return
    cols = [Col("platform", key=True), Col("vantage"), Col("verdict", key=True), Col("first seen"), Col("last seen"),
            Col("runs", right=True), Col("failed runs", right=True), Col("confirmed")]
    rows = [(track.platform, track.vantage, p.verdict, p.first_seen.strftime("%Y-%m-%d %H:%M"),
             p.last_seen.strftime("%Y-%m-%d %H:%M"), p.runs, p.unknown_runs,
             "" if p.confirmed is None else ("yes" if p.confirmed else "no"))
            for track in tl.tracks for p in track.periods]
    emit(out, cols, rows, title=f"timeline of {term}")
    for track in tl.tracks:
        if track.current:
            note(out, f"{track.platform} {track.vantage}: now {track.current}, last seen {track.age_days} days ago")


@app.command("history")
def history_cmd(
    probe_set: str | None = typer.Option(None, "--probe-set", "-P", metavar="NAME", help="only runs of this probe set"),
    vantage: str | None = typer.Option(None, "--vantage", metavar="LABEL", help="only runs from this vantage point"),
    limit: int = typer.Option(50, "--limit", "-n", min=1, help="at most this many runs (newest first)"),
    store: Path | None = StoreOption,
    fmt: Format | None = FormatOption,
    as_json: bool = JsonOption,
) -> None:
    """Runs, newest first, with their verdict counts (`runs list` shows their progress and status)."""
    with Store(store_path(store), readonly=True) as st:
        rows = run_history(st, probe_set=probe_set, vantage=vantage, limit=limit)
    out = choose_format(fmt, as_json)
    cols = [Col("run", key=True), Col("probe set", key=True), Col("vantage"), Col("started (UTC)"), Col("status"),
            Col("measurements", right=True), Col("hard", right=True), Col("soft", right=True),
            Col("not censored", right=True), Col("no results", right=True), Col("failures", right=True)]
    emit(out, cols, [(r.run_id, r.probe_set, r.vantage, r.started_at.strftime("%Y-%m-%d %H:%M"), r.status,
                      r.measurements, *(r.counts.get(v, 0) for v in ("hard", "soft", "not_censored", "no_results",
                                                                        "failure"))) for r in rows],
         title="runs", records=[r.model_dump(mode="json") for r in rows])
