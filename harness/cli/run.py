"""``harness run``: run a probe set (plan, lock, resume, progress, summary)."""

from __future__ import annotations

import math
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

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
from ..errors import InputError
from ..operations.adhoc import read_terms, write_adhoc_probe_set
from ..operations.workspace import workspace_path
from ._common import (
    BaseUrlOption,
    ConfigOption,
    CookiesOption,
    JsonOption,
    ProbeAsnOption,
    ProbeCcOption,
    RetryBackoffOption,
    VantageOption,
    ProxyOption,
    SpecsOption,
    StoreOption,
    console,
    err_console,
    parse_base_urls,
    parse_cookie_files,
    print_json,
)
from ._output import Col, Format, FormatOption, choose_format, emit, note


VERDICT_ORDER = ["not_censored", "hard", "soft", "no_results", "failure"]


ITEM_ORDER = ["available", "removed_censored", "removed_by_author", "removed_other"]


def print_summary(summary: RunSummary, fmt: Format = Format.table, title: str | None = None) -> None:
    """The verdicts per platform: every column whole (at 80 columns a row becomes ``name: value``
    lines rather than cutting ``not_censored``); in a pipe, a header line and one line per platform."""
    seen = {v for c in summary.counts.values() for v, n in c.items() if n}
    columns = [v for v in VERDICT_ORDER[:-1] if v in seen or not seen & set(ITEM_ORDER)]
    columns += [v for v in ITEM_ORDER if v in seen] + ["failure"]
    cols = [Col("platform", key=True)] + [Col(v, key=True, right=True) for v in columns]
    rows = [(platform, *[counts.get(v, 0) for v in columns]) for platform, counts in summary.counts.items()]
    emit(fmt, cols, rows, title=title or f"run {summary.run_id} ({summary.status})")


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


def dry_run_plan(plan: RunPlan, retry_backoff_s: float | None = None) -> dict:
    """What a run of ``plan`` would send, per platform, and how long it would take at its rate limit."""
    ps = plan.probe_set
    platforms = []
    for name in plan.specs:
        tasks = plan.tasks_for(name)
        rl = plan.rate_limits.get(name) or ps.rate_limit
        truisms = (math.ceil(len(tasks) / ps.controls.every) if tasks else 0) if ps.controls.truism else 0
        low = len(tasks) + truisms
        high = low + (len(tasks) if plan.soft_test.get(name) else 0)
        per = rl.interval_s / max(1, rl.concurrency)
        platforms.append({"platform": name, "probes": len(tasks), "controls": truisms, "requests": low,
                          "requests_up_to": high, "interval_s": rl.interval_s, "jitter": rl.jitter,
                          "concurrency": rl.concurrency, "estimated_s": round(low * per, 1),
                          "estimated_up_to_s": round(high * per, 1)})
    terms = list(dict.fromkeys(t.keyword.term + (f" [{t.variant}]" if t.variant else "") for t in plan.tasks
                               if t.role == "probe"))
    return {"probe_set": ps.name, "platforms": platforms, "terms": terms, "tasks": len(plan.tasks),
            "estimated_s": max([p["estimated_s"] for p in platforms] or [0]),
            "estimated_up_to_s": max([p["estimated_up_to_s"] for p in platforms] or [0]),
            "retries": ps.retries, "retry_backoff_s": retry_backoff_s,
            "note": "platforms are probed side by side; retries and back-off after failures add to these times"}


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def print_dry_run(data: dict, fmt: Format, show_all: bool) -> None:
    cols = [Col("platform", key=True), Col("requests", right=True), Col("up to", right=True),
            Col("interval s", right=True), Col("concurrency", right=True), Col("time", key=True),
            Col("up to time", key=True)]
    rows = [(p["platform"], p["requests"], p["requests_up_to"], p["interval_s"], p["concurrency"],
             _duration(p["estimated_s"]), _duration(p["estimated_up_to_s"])) for p in data["platforms"]]
    if fmt is Format.json:
        print_json(data)
        return
    emit(fmt, cols, rows, title=f"dry run of {data['probe_set']}: nothing is sent")
    terms = data["terms"] if show_all or fmt is not Format.table else data["terms"][:20]
    note(fmt, f"{len(data['terms'])} terms: " + ", ".join(terms) + ("" if len(terms) == len(data["terms"]) else
                                                                    f", … ({len(data['terms']) - len(terms)} more: --all)"))
    note(fmt, f"about {_duration(data['estimated_s'])} (up to {_duration(data['estimated_up_to_s'])} with soft tests) "
              "at the rate limits; " + data["note"])
    note(fmt, f"a failed request is retried {data['retries']} times, waiting {data['retry_backoff_s']:g} s, then twice "
              "as long each time (--retry-backoff)")


@app.command("run")
def run_cmd(
    probe_set: Path | None = typer.Argument(None, metavar="PROBE_SET",
                                            help="probe set YAML (probes/NAME.yaml); or give --platform and --input"),
    platform: list[str] = typer.Option([], "--platform", "-p", metavar="NAME",
                                       help="with --input/--input-file: probe this platform (repeatable)"),
    inputs: list[str] = typer.Option([], "--input", "-i", metavar="TERM",
                                     help="a term to probe without a probe set (repeatable; needs --platform)"),
    input_files: list[Path] = typer.Option([], "--input-file", metavar="FILE",
                                           help="terms to probe, one a line (# comments; needs --platform)"),
    store: str | None = StoreOption,
    specs: list[Path] = SpecsOption,
    base_url: list[str] = BaseUrlOption,
    probe_cc: str | None = ProbeCcOption,
    probe_asn: str | None = ProbeAsnOption,
    vantage: str | None = VantageOption,
    new: bool = typer.Option(False, "--new", help="start a new run even if an interrupted one can be resumed"),
    dry_run: bool = typer.Option(False, "--dry-run", help="send nothing: print the requests per platform, the terms "
                                                          "and how long the run would take at the rate limits"),
    show_all: bool = typer.Option(False, "--all", help="with --dry-run: list every term"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="one summary line (for cron)"),
    failure_threshold: float | None = typer.Option(
        None, "--failure-threshold", min=0, max=1,
        help=f"exit {EXIT_TOO_MANY_FAILURES} when the share of failed probes is above this [config: failure_threshold, 0.5]"),
    retry_backoff: float | None = RetryBackoffOption,
    proxy: str | None = ProxyOption,
    cookies: list[str] = CookiesOption,
    domain_profile: bool = typer.Option(False, "--domain-profile",
                                        help="profile authorized domains of soft-censored terms (term x domain)"),
    config: Path | None = ConfigOption,
    log_file: Path | None = typer.Option(None, "--log-file", help="structured log file [config: log.file, logs/harness.jsonl next to the store]"),
    log_format: str | None = typer.Option(None, "--log-format", metavar="json|text", help="json (one object per line) or text [config: log.format]"),
    fmt: Format | None = FormatOption,
    as_json: bool = JsonOption,
) -> None:
    """Send a probe set's keywords (or --input terms) to its platforms, classify and store every answer.

    A run that was interrupted (Ctrl-C, SIGTERM, SIGKILL, a reboot, a platform given up) is
    resumed: same run id, only what is missing is sent. Ad-hoc input (--platform with
    --input/--input-file) is stored as a probe set of its own (adhoc-PLATFORM-HASH), diffable
    like any other. Exit codes (docs/operations.md): 0 done, 2 bad input, 3 a platform given up
    (unreachable, login wall, changed layout) or too many failures (see --failure-threshold),
    4 bad store, 5 cannot write, 6 already running, 130 interrupted.
    """
    cfg = load_config(config, **{"store": store, "vantage.probe_cc": probe_cc, "vantage.probe_asn": probe_asn,
                                 "vantage.label": vantage, "failure_threshold": failure_threshold,
                                 "log.file": log_file, "log.format": log_format})
    out = choose_format(fmt, as_json)
    if inputs or input_files:
        if probe_set is not None:
            raise InputError("give a probe set or --input/--input-file, not both")
        terms = read_terms(inputs, input_files)
        probe_set = write_adhoc_probe_set(terms, platform, adhoc_folder(Path(cfg.store)))
    elif probe_set is None:
        raise InputError("give a probe set (probes/NAME.yaml), or --platform NAME with --input TERM / --input-file FILE")
    elif platform:
        raise InputError("--platform picks the platforms of ad-hoc input (--input/--input-file); "
                         "a probe set names its own platforms")
    if not dry_run:
        setup_logging(cfg.log_file, cfg.log.format, cfg.log.level)
    options = RunOptions(proxy=check_proxy(proxy) if proxy else None,
                         cookies=parse_cookie_files(cookies), domain_profile=domain_profile)
    req = request_from_config(probe_set, cfg, platforms=tuple(specs), base_urls=parse_base_urls(base_url), new=new,
                              options=options)
    req.retry_backoff_s = retry_backoff
    req.default_retry_backoff_s = cfg.retry_backoff_s
    plan = prepare(req)
    if dry_run:
        print_dry_run(dry_run_plan(plan, (req.options or RunOptions()).retry_backoff_s), out, show_all)
        return
    summary = run_with_progress(req, plan, quiet=quiet or out is not Format.table)
    if out is Format.json:
        print_json(summary_dict(summary))
    elif quiet or out is not Format.table:
        typer.echo(quiet_line(summary))
    else:
        print_summary(summary)
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


def adhoc_folder(store: Path) -> Path:
    """Where ad-hoc probe sets are written: beside the store (``adhoc/``), or the workspace's results/ for a URL store."""
    if "://" in str(store):
        return workspace_path("results") / "adhoc"
    return store.parent / "adhoc"
