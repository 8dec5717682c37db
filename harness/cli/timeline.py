"""``harness timeline`` and ``harness history``: one term (or one watched item) through time, and the runs."""

from __future__ import annotations

import typer

from ..analysis.items import ItemTimeline, item_timeline
from ..analysis.timeline import run_history, term_timeline
from ..errors import NotFoundError
from ..store.sqlite import Store
from ._app import app
from ._common import JsonOption, PlatformFilterOption, ProbeSetFilterOption, StoreOption, print_json, store_path
from ._output import Col, Format, FormatOption, choose_format, emit, note


@app.command("timeline")
def timeline_cmd(
    term: str = typer.Argument(..., help="the term as written in its keyword list, or a watched item's URL"),
    platform: list[str] = PlatformFilterOption,
    vantage: list[str] = typer.Option([], "--vantage", metavar="LABEL", help="only this vantage point (repeatable)"),
    store: str | None = StoreOption,
    fmt: Format | None = FormatOption,
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
                out = choose_format(fmt, as_json)
                if out is Format.json:
                    print_json(itl.model_dump(mode="json"))
                else:
                    print_item_timeline(itl, out)
                return
        tl = term_timeline(st, term, platforms=platform or None, vantages=vantage or None)
    out = choose_format(fmt, as_json)
    if out is Format.json:
        print_json(tl.model_dump(mode="json"))
        return
    # dates wrap between date and time, never inside either (words columns)
    cols = [Col("platform", key=True), Col("vantage"), Col("verdict", key=True), Col("first seen", words=True),
            Col("last seen", words=True), Col("runs", right=True), Col("failed runs", right=True, words=True),
            Col("confirmed", words=True)]
    rows = [(track.platform, track.vantage, p.verdict, p.first_seen.strftime("%Y-%m-%d %H:%M"),
             p.last_seen.strftime("%Y-%m-%d %H:%M"), p.runs, p.unknown_runs,
             "" if p.confirmed is None else ("yes" if p.confirmed else "no"))
            for track in tl.tracks for p in track.periods]
    emit(out, cols, rows, title=f"timeline of {term}")
    for track in tl.tracks:
        if track.current:
            note(out, f"{track.platform} {track.vantage}: now {track.current}, last seen {track.age_days} days ago")


def _ts(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else "-"


ITEM_TIMELINE_COLS = [Col("platform", key=True), Col("vantage"), Col("state", key=True),
                      Col("first seen (UTC)", words=True), Col("last seen (UTC)", words=True), Col("runs", right=True),
                      Col("failed runs", right=True, words=True), Col("signals")]


def print_item_timeline(tl: ItemTimeline, fmt: Format = Format.table) -> None:
    """The periods of each state (rows), then every change with its window and evidence (lines beside them)."""
    rows = [(track.platform, track.vantage, p.state, _ts(p.first_seen), _ts(p.last_seen), p.runs, p.unknown_runs,
             ", ".join(s for s in p.signals if not s.startswith("title:")) or "-")
            for track in tl.tracks for p in track.periods]
    emit(fmt, ITEM_TIMELINE_COLS, rows, title=f"timeline of {tl.url}")
    for track in tl.tracks:
        where = f"{track.platform} {track.vantage}".rstrip()
        for c in track.changes:
            if c.before is None:
                why = " (first seen already removed: not counted as a removal)" if c.after != "available" else ""
                note(fmt, f"{where}: first seen {_ts(c.window_end)} as {c.after}{why}")
            else:
                note(fmt, f"{where}: {c.transition.value} between {_ts(c.window_start)} and {_ts(c.window_end)} UTC "
                          f"({c.before} → {c.after}); evidence: measurement {c.measurement_id}")
        if track.current:
            note(fmt, f"{where}: now {track.current}, last seen {_ts(track.last_seen)} UTC")


@app.command("history")
def history_cmd(
    probe_set: str | None = ProbeSetFilterOption,
    vantage: str | None = typer.Option(None, "--vantage", metavar="LABEL", help="only runs from this vantage point"),
    limit: int = typer.Option(50, "--limit", "-n", min=1, help="at most this many runs (newest first)"),
    store: str | None = StoreOption,
    fmt: Format | None = FormatOption,
    as_json: bool = JsonOption,
) -> None:
    """Runs, newest first, with their verdict counts (`runs list` shows their progress and status)."""
    with Store(store_path(store), readonly=True) as st:
        rows = run_history(st, probe_set=probe_set, vantage=vantage, limit=limit)
    out = choose_format(fmt, as_json)
    items = any(k.startswith(("available", "removed_", "item_")) for r in rows for k in r.counts)
    cols = [Col("run", key=True), Col("probe set", key=True), Col("vantage"), Col("started (UTC)", words=True),
            Col("status", words=True), *(Col(name, right=True, words=True) for name in (  # headers wrap between words
                "measurements", "hard", "soft", "not censored", "no results", "failures",
                *(("items removed", "items available") if items else ())))]

    def extra(c: dict[str, int]) -> tuple[int, ...]:
        return (sum(v for k, v in c.items() if k.startswith("removed_")), c.get("available", 0)) if items else ()

    emit(out, cols, [(r.run_id, r.probe_set, r.vantage, r.started_at.strftime("%Y-%m-%d %H:%M"), r.status,
                      r.measurements, *(r.counts.get(v, 0) for v in ("hard", "soft", "not_censored", "no_results",
                                                                        "failure")), *extra(r.counts)) for r in rows],
         title="runs", records=[r.model_dump(mode="json") for r in rows])
