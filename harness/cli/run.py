from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from ..engine import RunOptions, RunPlan, RunSummary, Vantage
from ..errors import HarnessError
from ..models import Measurement
from ..runs import RunRequest, execute, prepare
from ..sessions import check_proxy
from . import app
from ._common import JsonOption, StoreOption, console, err_console, print_json, store_path

VERDICT_ORDER = ["not_censored", "hard", "soft", "no_results", "failure"]


def parse_base_urls(values: list[str], option: str = "--base-url") -> dict[str, str]:
    out = {}
    for v in values:
        if "=" not in v:
            raise HarnessError(f"{option} takes PLATFORM={'URL' if option == '--base-url' else 'FILE'}, got {v!r}")
        k, url = v.split("=", 1)
        out[k.strip()] = url.strip()
    return out


def summary_table(summary: RunSummary, title: str | None = None) -> Table:
    table = Table(title=title or f"run {summary.run_id} ({summary.status})")
    table.add_column("platform")
    for v in VERDICT_ORDER:
        table.add_column(v, justify="right")
    for platform, counts in summary.counts.items():
        table.add_row(platform, *[str(counts.get(v, 0)) for v in VERDICT_ORDER])
    return table


def summary_dict(summary: RunSummary) -> dict:
    return {
        "run_id": summary.run_id, "status": summary.status, "planned": summary.planned, "stored": summary.stored,
        "resumed_with": summary.skipped, "elapsed_s": round(summary.elapsed_s, 3),
        "counts": {p: dict(c) for p, c in summary.counts.items()}, "failures": dict(summary.failures),
    }


def run_with_progress(req: RunRequest, plan: RunPlan, quiet: bool = False) -> RunSummary:
    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TextColumn("eta"), TimeRemainingColumn(), console=err_console, disable=quiet, transient=False,
    )
    task_id = None

    def on_start(plan: RunPlan, resume, already: int) -> None:
        nonlocal task_id
        if resume and not quiet:
            err_console.print(f"resuming run {resume.run_id} ({already} measurements already stored)")
        task_id = progress.add_task(plan.probe_set.name, total=len(plan.tasks), completed=already)

    def on_measurement(m: Measurement | None) -> None:
        if task_id is not None and m is not None and m.role != "truism":
            progress.advance(task_id)

    with progress:
        return execute(req, plan, on_measurement, on_start)


@app.command("run")
def run_cmd(
    probe_set: Path = typer.Argument(..., help="probe set YAML (probes/NAME.yaml)"),
    store: Path | None = StoreOption,
    platforms: list[Path] = typer.Option([], "--platforms", help="extra folder of platform specs"),
    base_url: list[str] = typer.Option([], "--base-url", help="PLATFORM=URL override (e.g. a sandbox)"),
    probe_cc: str = typer.Option("ZZ", "--probe-cc", help="country code of this vantage point"),
    probe_asn: str = typer.Option("AS0", "--probe-asn", help="ASN of this vantage point"),
    vantage: str = typer.Option("", "--vantage", help="label of this vantage point"),
    new: bool = typer.Option(False, "--new", help="start a new run even if an interrupted one can be resumed"),
    proxy: str | None = typer.Option(None, "--proxy", envvar="HARNESS_PROXY",
                                     help="send through this proxy: http://, socks5://[user:password@]host:port"),
    cookies: list[str] = typer.Option([], "--cookies", help="PLATFORM=FILE: cookies (Netscape cookies.txt or JSON)"),
    domain_profile: bool = typer.Option(False, "--domain-profile",
                                        help="profile authorized domains of soft-censored terms (term x domain)"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="one summary line"),
    as_json: bool = JsonOption,
) -> None:
    """Send a probe set's keywords to its platforms, classify and store every answer."""
    req = RunRequest(
        probe_set, store_path(store), tuple(platforms), base_urls=parse_base_urls(base_url), new=new,
        options=RunOptions(vantage=Vantage(probe_cc, probe_asn, vantage), proxy=check_proxy(proxy) if proxy else None,
                           cookies={k: Path(v) for k, v in parse_base_urls(cookies, "--cookies").items()},
                           domain_profile=domain_profile),
    )
    plan = prepare(req)
    summary = run_with_progress(req, plan, quiet=quiet or as_json)
    if as_json:
        print_json(summary_dict(summary))
    elif quiet:
        total = {v: sum(c.get(v, 0) for c in summary.counts.values()) for v in VERDICT_ORDER}
        typer.echo(f"run {summary.run_id} {summary.status}: " + ", ".join(f"{k}={v}" for k, v in total.items()))
    else:
        console.print(summary_table(summary))
        console.print(f"stored in {req.store_path}")
