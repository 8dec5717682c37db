"""``harness run``: run a probe set (plan, lock, resume, progress, summary)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from ..errors import HarnessError
from ..exitcodes import ExitCode
from ..measure.engine import RunOptions, RunSummary, Vantage
from ..measure.health import Notice
from ..measure.plan import RunPlan
from ..measure.sessions import check_proxy
from ..models import Measurement
from ..operations.config import HarnessConfig, load_config
from ..operations.logs import setup_logging
from ..operations.runs import RunRequest, execute, prepare
from ..store.target import redact
from ._app import app
from ._common import JsonOption, StoreOption, console, err_console, print_json

ConfigOption = typer.Option(None, "--config", help="harness.toml to use (default: ./harness.toml if present, or $HARNESS_CONFIG)")

VERDICT_ORDER = ["not_censored", "hard", "soft", "no_results", "failure"]


def parse_base_urls(values: list[str], option: str = "--base-url") -> dict[str, str]:
    out = {}
    for v in values:
        if "=" not in v:
            raise HarnessError(f"{option} takes PLATFORM={'URL' if option == '--base-url' else 'FILE'}, got {v!r}")
        k, url = v.split("=", 1)
        out[k.strip()] = url.strip()
    return out


ITEM_ORDER = ["available", "removed_censored", "removed_by_author", "removed_other"]


def summary_table(summary: RunSummary, title: str | None = None) -> Table:
    table = Table(title=title or f"run {summary.run_id} ({summary.status})")
    table.add_column("platform")
    seen = {v for c in summary.counts.values() for v, n in c.items() if n}
    columns = [v for v in VERDICT_ORDER[:-1] if v in seen or not seen & set(ITEM_ORDER)]
    columns += [v for v in ITEM_ORDER if v in seen] + ["failure"]
    for v in columns:
        table.add_column(v.replace("removed_", "removed ") if v in ITEM_ORDER else v, justify="right")
    for platform, counts in summary.counts.items():
        table.add_row(platform, *[str(counts.get(v, 0)) for v in columns])
    return table


def summary_dict(summary: RunSummary) -> dict:
    out = {
        "run_id": summary.run_id, "status": summary.status, "planned": summary.planned, "stored": summary.stored,
        "resumed_with": summary.skipped, "elapsed_s": round(summary.elapsed_s, 3),
        "counts": {p: dict(c) for p, c in summary.counts.items()}, "failures": dict(summary.failures),
        "stopped": dict(summary.stopped), "positive_controls": summary.positive_controls,
        "notices": [n.as_dict() for n in summary.notices],
    }
    if summary.enrolled is not None:
        out["enrolled"] = summary.enrolled
    return out


def positive_control_lines(summary: RunSummary) -> list[str]:
    """One line per platform with positive controls: the share detected, and any missed."""
    lines = []
    for platform, row in summary.positive_controls.items():
        answered = row["sent"] - row["failed"]
        text = f"{platform}: positive controls detected {row['detected']}/{answered}"
        if row["failed"]:
            text += f" ({row['failed']} failed)"
        if row["missed"]:
            text += " - NOT detected while the truism works: " + ", ".join(row["missed"])
        lines.append(text)
    return lines


def run_with_progress(req: RunRequest, plan: RunPlan, quiet: bool = False) -> RunSummary:
    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TextColumn("eta"), TimeRemainingColumn(), console=err_console, disable=quiet, transient=False,
    )
    task_id = None

    def on_notice(notice: Notice) -> None:
        # said once, above the progress bar, whatever the output mode (quiet and --json included)
        if notice.kind != "recovered" or not quiet:
            err_console.print(notice.message, markup=False, highlight=False, soft_wrap=True)

    req.options = req.options or RunOptions()
    req.options.on_notice = on_notice

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


EXIT_TOO_MANY_FAILURES = ExitCode.PLATFORM_GIVEN_UP


def quiet_line(summary: RunSummary) -> str:
    total = {v: sum(c.get(v, 0) for c in summary.counts.values()) for v in VERDICT_ORDER}
    items = {v: sum(c.get(v, 0) for c in summary.counts.values()) for v in ITEM_ORDER}
    if any(items.values()):
        if not any(n for v, n in total.items() if v != "failure"):  # a run of watched items only
            total = {"failure": total["failure"]}
        total = {**{v: n for v, n in total.items() if v != "failure"}, **items, "failure": total["failure"]}
    return (f"run {summary.run_id} {summary.status}: " + ", ".join(f"{k}={v}" for k, v in total.items())
            + f" (failure share {summary.failure_share:.0%})")


def too_many_failures(summary: RunSummary, threshold: float) -> bool:
    """The share of probe failures passes the threshold (0.5: more than half failed)."""
    return summary.failure_share > threshold


def request_from_config(probe_set: Path, cfg: HarnessConfig, *, platforms: tuple[Path, ...] = (),
                        base_urls: dict[str, str] | None = None, new: bool = False,
                        options: RunOptions | None = None) -> RunRequest:
    """A run request with the configuration applied (flags, already merged into ``cfg``, win)."""
    v = cfg.vantage
    opts = options or RunOptions()
    opts.vantage = Vantage(v.probe_cc, v.probe_asn, v.label)
    if cfg.proxy and opts.proxy is None:
        opts.proxy = cfg.proxy
    if cfg.account_identifiers and not opts.account_identifiers:
        opts.account_identifiers = {k: list(v) for k, v in cfg.account_identifiers.items()}
    return RunRequest(
        probe_set, cfg.store_target, platforms, base_urls={**cfg.base_urls, **(base_urls or {})}, new=new,
        options=opts, cookie_files=dict(cfg.cookie_files), default_rate_limits=dict(cfg.rate_limits),
        default_rate_limit=cfg.rate_limit,
    )


@app.command("run")
def run_cmd(
    probe_set: Path = typer.Argument(..., help="probe set YAML (probes/NAME.yaml)"),
    store: str | None = StoreOption,
    platforms: list[Path] = typer.Option([], "--platforms", help="extra folder of platform specs"),
    base_url: list[str] = typer.Option([], "--base-url", help="PLATFORM=URL override (e.g. a sandbox)"),
    probe_cc: str | None = typer.Option(None, "--probe-cc", help="country code of this vantage point [config: vantage.probe_cc, ZZ]"),
    probe_asn: str | None = typer.Option(None, "--probe-asn", help="ASN of this vantage point [config: vantage.probe_asn, AS0]"),
    vantage: str | None = typer.Option(None, "--vantage", help="label of this vantage point [config: vantage.label]"),
    new: bool = typer.Option(False, "--new", help="start a new run even if an interrupted one can be resumed"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="one summary line (for cron)"),
    failure_threshold: float | None = typer.Option(
        None, "--failure-threshold", min=0, max=1,
        help=f"exit {EXIT_TOO_MANY_FAILURES} when the share of failed probes is above this [config: failure_threshold, 0.5]"),
    proxy: str | None = typer.Option(None, "--proxy",
                                     help="send through this proxy: http://, socks5://[user:password@]host:port [config: proxy]"),
    cookies: list[str] = typer.Option([], "--cookies", help="PLATFORM=FILE: cookies (Netscape cookies.txt or JSON) [config: cookie_files]"),
    domain_profile: bool = typer.Option(False, "--domain-profile",
                                        help="profile authorized domains of soft-censored terms (term x domain)"),
    config: Path | None = ConfigOption,
    log_file: Path | None = typer.Option(None, "--log-file", help="structured log file [config: log.file, logs/harness.jsonl next to the store]"),
    log_format: str | None = typer.Option(None, "--log-format", help="json (one object per line) or text [config: log.format]"),
    as_json: bool = JsonOption,
) -> None:
    """Send a probe set's keywords to its platforms, classify and store every answer.

    A run that was interrupted (Ctrl-C, SIGTERM, SIGKILL, a reboot, a platform given up) is
    resumed: same run id, only what is missing is sent. Exit codes (docs/operations.md): 0 done,
    2 bad input, 3 a platform given up (unreachable, login wall, changed layout) or too many
    failures (see --failure-threshold), 4 bad store, 5 cannot write, 6 already running,
    130 interrupted.
    """
    cfg = load_config(config, **{"store": store, "vantage.probe_cc": probe_cc, "vantage.probe_asn": probe_asn,
                                 "vantage.label": vantage, "failure_threshold": failure_threshold,
                                 "log.file": log_file, "log.format": log_format})
    setup_logging(cfg.log_file, cfg.log.format, cfg.log.level)
    options = RunOptions(proxy=check_proxy(proxy) if proxy else None,
                         cookies={k: Path(v) for k, v in parse_base_urls(cookies, "--cookies").items()},
                         domain_profile=domain_profile)
    req = request_from_config(probe_set, cfg, platforms=tuple(platforms), base_urls=parse_base_urls(base_url), new=new,
                              options=options)
    plan = prepare(req)
    summary = run_with_progress(req, plan, quiet=quiet or as_json)
    if as_json:
        print_json(summary_dict(summary))
    elif quiet:
        typer.echo(quiet_line(summary))
    else:
        console.print(summary_table(summary))
        for line in positive_control_lines(summary):
            console.print(line, markup=False, highlight=False, soft_wrap=True)
        console.print(f"stored in {redact(req.store_path)}", markup=False)
        if summary.enrolled is not None:
            e = summary.enrolled
            console.print(f"watch_results: {e['added']} new result items enrolled in {e['watch_list']} "
                          f"({e['already']} already watched, {e['not_items']} links no item spec reads)")
    if summary.stopped:  # each was said once, when it happened (on_notice)
        raise typer.Exit(EXIT_TOO_MANY_FAILURES)
    if too_many_failures(summary, cfg.failure_threshold):
        top = ", ".join(f"{k}={v}" for k, v in summary.failures.most_common(3))
        err_console.print(f"error: {summary.failure_share:.0%} of probes failed (threshold {cfg.failure_threshold:.0%})"
                          + (f": {top}" if top else ""), markup=False, highlight=False)
        raise typer.Exit(EXIT_TOO_MANY_FAILURES)
