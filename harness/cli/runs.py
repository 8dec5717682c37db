"""``harness runs list | show``: what ran, when, how far it got."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from ..models import Run
from ..store.locking import effective_status
from ..store.base import Store
from ._app import app
from ..analysis.diff import resolve_run
from ._common import JsonOption, ProbeSetFilterOption, StoreOption, console, esc, print_json, store_path
from ._output import Col, Format, FormatOption, choose_format, emit, note

runs_app = typer.Typer(help="Runs in the store: list them, show one.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")

STATUS_STYLE = {"complete": "green", "running": "cyan", "interrupted": "yellow"}


def run_dict(store: Store, run: Run, path: Any = None) -> dict[str, Any]:
    done = store.count_measurements(run.run_id)
    probes = store.platform_counts(run.run_id)
    planned_done = store.conn.execute(
        "SELECT COUNT(*) FROM measurements WHERE run_id=? AND role!='truism'", (run.run_id,)
    ).fetchone()[0]
    return {
        "run_id": run.run_id, "probe_set": run.probe_set, "status": effective_status(run, store),
        "recorded_status": run.status, "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "planned": run.planned, "done": planned_done, "measurements": done,
        "sessions": store.run_sessions(run.run_id), "probe_cc": run.probe_cc, "probe_asn": run.probe_asn,
        "vantage": run.vantage, "pid": run.pid, "hostname": run.hostname, "software_version": run.software_version,
        "counts": probes, "failures": store.failure_counts(run.run_id),
    }


RUN_COLS = [Col("run", key=True), Col("probe set", key=True), Col("status"), Col("started (UTC)"), Col("done"),
            Col("sessions", right=True), Col("vantage")]


@runs_app.command("list")
def list_cmd(
    probe_set: str | None = ProbeSetFilterOption,
    limit: int = typer.Option(20, "--limit", "-n", min=1, help="newest N runs"),
    store: str | None = StoreOption,
    fmt: Format | None = FormatOption,
    as_json: bool = JsonOption,
) -> None:
    """Runs, newest first, with their status (a run whose process died shows as interrupted)."""
    path = store_path(store)
    out = choose_format(fmt, as_json)
    with Store(path, readonly=True) as st:
        rows = [run_dict(st, r, path) for r in st.list_runs(probe_set, limit=limit)]
    if not rows and out is not Format.json:
        note(out, "no runs yet")
        return
    emit(out, RUN_COLS, [(r["run_id"], r["probe_set"], r["status"], r["started_at"][:19].replace("T", " "),
                          f"{r['done']}/{r['planned']}", r["sessions"],
                          f"{r['probe_cc']} {r['probe_asn']} {r['vantage']}".strip()) for r in rows], records=rows)


@runs_app.command("show")
def show_cmd(
    run_ref: str = typer.Argument("latest", metavar="RUN",
                                  help="a run reference: id or prefix, latest, latest~N, a date, an age, with @VANTAGE "
                                       "(default: latest)"),
    probe_set: str | None = typer.Option(None, "--probe-set", "-P", metavar="NAME",
                                         help="resolve latest, dates and ages among this probe set's runs"),
    store: str | None = StoreOption,
    as_json: bool = JsonOption,
) -> None:
    """One run: status, progress, sessions, verdict counts per platform, failures."""
    path = store_path(store)
    with Store(path, readonly=True) as st:
        data = run_dict(st, resolve_run(st, run_ref, probe_set), path)
    if as_json:
        print_json(data)
        return
    style = STATUS_STYLE.get(data["status"], "")
    console.print(f"run [bold]{data['run_id']}[/] of probe set [bold]{esc(data['probe_set'])}[/]: [{style}]{data['status']}[/]")
    console.print(f"started {data['started_at']}" + (f", finished {data['finished_at']}" if data["finished_at"] else ""))
    console.print(f"{data['done']}/{data['planned']} tasks done in {data['sessions']} session(s);"
                  f" vantage {esc(data['probe_cc'])} {esc(data['probe_asn'])} {esc(data['vantage'])};"
                  f" last process pid {data['pid']} on {esc(data['hostname'])}")
    if data["status"] == "interrupted":
        console.print("resume it with [bold]harness run[/] on the same probe set (or start afresh with --new)")
    if data["counts"]:
        verdicts = ["not_censored", "hard", "soft", "no_results", "failure"]
        table = Table(title="probe verdicts")
        table.add_column("platform")
        for v in verdicts:
            table.add_column(v, justify="right")
        for platform, counts in sorted(data["counts"].items()):
            table.add_row(esc(platform), *[str(counts.get(v, 0)) for v in verdicts])
        console.print(table)
    if data["failures"]:
        console.print("failures: " + ", ".join(f"{esc(k)}={v}" for k, v in sorted(data["failures"].items())))
