"""``harness schedule run | status | install``: probe sets that run themselves."""

from __future__ import annotations

import datetime as dt
import os
import shlex
import signal
import subprocess
import zoneinfo
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from ..errors import HarnessError, InputError
from ..exitcodes import ExitCode
from ..operations.config import load_config
from ..operations.config import value_sources
from ..operations.logs import setup_logging
from ..operations.schedule import (
    _store_arg as store_arg,
    Scheduler,
    SubprocessRunner,
    crontab_block,
    load_schedules,
    merge_crontab,
    systemd_units,
    user_unit_dir,
)
from ..store.target import redact
from ..yamlio import atomic_write_text
from ._app import app
from ._common import (
    BaseUrlOption,
    ConfigOption,
    JsonOption,
    ProbeAsnOption,
    ProbeCcOption,
    StoreOption,
    VantageOption,
    console,
    err_console,
    esc,
    parse_base_urls,
    print_json,
)

schedule_app = typer.Typer(help="Scheduled runs: a foreground scheduler, status, crontab/systemd installation.",
                           no_args_is_help=True)
app.add_typer(schedule_app, name="schedule")

FolderArgument = typer.Argument(None, help="folder of probe sets [config: schedule.probes_dir, probes/]")


def carried_args(cfg: Any) -> list[str]:
    """What a scheduled run must be told because cron or systemd will not know it: the store and the
    vantage point when they came from the command line or the environment (HARNESS_STORE,
    HARNESS_VANTAGE__*); values from harness.toml travel with --config."""
    sources = value_sources(cfg)
    out: list[str] = []

    def given(key: str) -> bool:
        return sources.get(key, "default").startswith(("command line", "environment"))

    if given("store"):
        out += ["--store", store_arg(cfg.store_target)]
    for key, flag, value in (("vantage.probe_cc", "--probe-cc", cfg.vantage.probe_cc),
                             ("vantage.probe_asn", "--probe-asn", cfg.vantage.probe_asn),
                             ("vantage.label", "--vantage", cfg.vantage.label)):
        if given(key):
            out += [flag, value]
    return out


def _setup(config: Path | None, store: Path | None, folder: Path | None, **more: Any):
    cfg = load_config(config, store=store, **more)
    probes = folder if folder is not None else cfg.schedule.probes_dir
    if not Path(probes).is_dir():
        raise InputError("not a folder of probe sets", probes)
    return cfg, Path(probes)


@schedule_app.command("run")
def run_cmd(
    folder: Path | None = FolderArgument,
    once: bool = typer.Option(False, "--once", help="start what is due, wait for it, exit (for cron)"),
    tick: float | None = typer.Option(None, "--tick", min=1, help="seconds between looks [config: schedule.tick_s, 30]"),
    parallel: int | None = typer.Option(None, "--parallel", min=1, max=16, help="probe sets run at once [config: schedule.parallel, 1]"),
    keep_evidence: str | None = typer.Option(None, "--keep-evidence", help="prune evidence older than this once a day (90d) [config: keep_evidence]"),
    base_url: list[str] = BaseUrlOption,
    store: str | None = StoreOption,
    config: Path | None = ConfigOption,
    probe_cc: str | None = ProbeCcOption,
    probe_asn: str | None = ProbeAsnOption,
    vantage: str | None = VantageOption,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="print only problems (cron mails output)"),
) -> None:
    """Run due probe sets, in the foreground, until stopped (Ctrl-C or SIGTERM stop it cleanly).

    Each run is `harness run` in a child process: it takes the probe set's lock, resumes
    an interrupted run and logs to the structured log. Missed runs are caught up once.
    """
    cfg, probes = _setup(config, store, folder, keep_evidence=keep_evidence, **{
        "schedule.tick_s": tick, "schedule.parallel": parallel, "vantage.probe_cc": probe_cc,
        "vantage.probe_asn": probe_asn, "vantage.label": vantage})
    setup_logging(cfg.log_file, cfg.log.format, cfg.log.level, console=not quiet and not once)
    carried = carried_args(cfg)
    vantage_args = [a for i, a in enumerate(carried) if a != "--store" and not (i and carried[i - 1] == "--store")]
    runner = SubprocessRunner(cfg.store_target, config_path=cfg.source_file, base_urls=parse_base_urls(base_url),
                              extra_args=tuple(vantage_args))
    sched = Scheduler(probes, cfg.store_target, runner, parallel=cfg.schedule.parallel,
                      keep_evidence=cfg.keep_evidence_delta, vantage=cfg.vantage.label)
    entries, problems = load_schedules(probes)
    for p in problems:
        err_console.print(f"error: {p}", markup=False, highlight=False)
    if not entries and not once:
        raise HarnessError(f"{probes}: no probe set with a schedule: (add schedule: {{cron: ...}} to one)")
    if once:
        started = sched.tick(wait=True)
        sched.close()
        worst = 0
        for r in sched.results:
            problem = r.exit_code != 0
            if problem or not quiet:
                s = r.summary or {}
                what = f"run {s.get('run_id')} {s.get('status')}" if s else "no run"
                line = f"{r.name}: exit {r.exit_code}, {what}" + (f": {r.error}" if r.error else "")
                (err_console if problem else console).print(line, markup=False, highlight=False)
            # a child's documented code passes through; anything else (killed, crashed) is an internal error
            known = r.exit_code in ExitCode._value2member_map_
            worst = max(worst, r.exit_code if known else ExitCode.INTERNAL_ERROR)
        if not started and not quiet:
            console.print("nothing due")
        if problems:
            worst = max(worst, ExitCode.BAD_INPUT)
        raise typer.Exit(worst)

    def stop(signum: int, frame: Any) -> None:
        sched.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if not quiet:
        console.print(f"scheduler: {len(entries)} scheduled probe set(s) in {esc(probes)}; store {esc(redact(cfg.store))};"
                      f" log {esc(cfg.log_file)}; Ctrl-C to stop")
    sched.run_forever(cfg.schedule.tick_s)


def _fmt(ts: dt.datetime | None, tz: str) -> str:
    if ts is None:
        return "-"
    local = ts.astimezone(zoneinfo.ZoneInfo(tz))
    return local.strftime("%Y-%m-%d %H:%M ") + tz if tz != "UTC" else ts.strftime("%Y-%m-%d %H:%M UTC")


@schedule_app.command("status")
def status_cmd(
    folder: Path | None = FolderArgument,
    store: str | None = StoreOption,
    config: Path | None = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Last and next run of every scheduled probe set."""
    cfg, probes = _setup(config, store, folder)
    sched = Scheduler(probes, cfg.store_target, runner=lambda e, d: None, vantage=cfg.vantage.label)  # type: ignore[arg-type,return-value]
    try:
        rows = []
        for entry, d in sched.decisions():
            rows.append({
                "probe_set": entry.name, "file": str(entry.path), "cron": entry.schedule.cron,
                "timezone": entry.schedule.timezone, "jitter_s": entry.schedule.jitter_s,
                "last_run": d.last.run_id if d.last else None,
                "last_started": d.last.started_at.isoformat() if d.last else None,
                "last_status": d.last.status if d.last else None,
                "next_due": d.due_at.isoformat() if d.due_at else None, "due_now": d.due, "state": d.reason,
                "missed_slots": d.missed_slots,
            })
    finally:
        sched.close()
    _, problems = load_schedules(probes)
    if as_json:
        print_json({"probe_sets": rows, "problems": problems})
        return
    table = Table(title=f"schedules in {probes}")
    for col in ("probe set", "cron", "last run", "status", "next run", "state"):
        table.add_column(col)
    for r in rows:
        last = "-" if not r["last_started"] else _fmt(dt.datetime.fromisoformat(r["last_started"]), r["timezone"])
        nxt = "now" if r["due_now"] else ("-" if not r["next_due"] else _fmt(dt.datetime.fromisoformat(r["next_due"]), r["timezone"]))
        state = r["state"] + (f" ({r['missed_slots']} missed, runs once)" if r["missed_slots"] > 1 else "")
        table.add_row(esc(r["probe_set"]), esc(r["cron"]) + (f" ±{r['jitter_s']:g}s" if r["jitter_s"] else ""),
                      last, r["last_status"] or "-", nxt, state)
    console.print(table)
    for p in problems:
        err_console.print(f"error: {p}", markup=False, highlight=False)


def _crontab_cmd() -> list[str]:
    return shlex.split(os.environ.get("HARNESS_CRONTAB", "crontab"))


@schedule_app.command("install")
def install_cmd(
    folder: Path | None = FolderArgument,
    crontab: bool = typer.Option(False, "--crontab", help="a crontab line that ticks the scheduler"),
    systemd: bool = typer.Option(False, "--systemd", help="a systemd user service and timer per scheduled probe set"),
    write: bool = typer.Option(False, "--write", help="install it (crontab: merged into yours; systemd: unit files written)"),
    every: int = typer.Option(5, "--every", help="crontab: minutes between ticks"),
    unit_dir: Path | None = typer.Option(None, "--unit-dir", help="systemd: where to write units (default ~/.config/systemd/user)"),
    enable: bool = typer.Option(False, "--enable", help="systemd with --write: daemon-reload and enable --now the timers"),
    store: str | None = StoreOption,
    config: Path | None = ConfigOption,
    probe_cc: str | None = ProbeCcOption,
    probe_asn: str | None = ProbeAsnOption,
    vantage: str | None = VantageOption,
    base_url: list[str] = BaseUrlOption,
) -> None:
    """Print (or with --write install) what makes the probe sets run on their own.

    The line or units carry the configuration file, and the store, vantage point and --base-url
    when they came from the command line or the environment (HARNESS_STORE, HARNESS_VANTAGE__*).
    """
    if crontab == systemd:
        raise HarnessError("choose one of --crontab or --systemd")
    cfg, probes = _setup(config, store, folder, **{"vantage.probe_cc": probe_cc, "vantage.probe_asn": probe_asn,
                                                   "vantage.label": vantage})
    workdir = Path.cwd()
    cfg_file = cfg.source_file
    parse_base_urls(base_url)  # a bad NAME=URL is one line now, not in every scheduled run
    carry = carried_args(cfg) + [x for b in base_url for x in ("--base-url", b)]
    if crontab:
        block = crontab_block(workdir, probes, config=cfg_file, extra=carry, every_minutes=every)
        if not write:
            typer.echo(block, nl=False)
            return
        cmd = _crontab_cmd()
        current = subprocess.run([*cmd, "-l"], capture_output=True, text=True)
        existing = current.stdout if current.returncode == 0 else ""
        if current.returncode != 0 and "no crontab" not in current.stderr.lower():
            raise HarnessError(f"cannot read your crontab: {current.stderr.strip() or current.returncode}")
        merged = merge_crontab(existing, block)
        done = subprocess.run([*cmd, "-"], input=merged, capture_output=True, text=True)
        if done.returncode != 0:
            raise HarnessError(f"cannot install the crontab: {done.stderr.strip() or done.returncode}")
        console.print(f"crontab updated: the scheduler ticks every {every} min in {esc(workdir)}")
        return
    entries, problems = load_schedules(probes)
    for p in problems:
        err_console.print(f"error: {p}", markup=False, highlight=False)
    if not entries:
        raise HarnessError(f"{probes}: no probe set with a schedule: (add schedule: {{cron: ...}} to one)")
    units = [systemd_units(e, workdir, config=cfg_file, extra=carry) for e in entries]
    if not write:
        for u in units:
            typer.echo(f"# {u.name}.service\n{u.service}\n# {u.name}.timer\n{u.timer}")
        return
    target = unit_dir or user_unit_dir()
    for u in units:
        atomic_write_text(target / f"{u.name}.service", u.service)
        atomic_write_text(target / f"{u.name}.timer", u.timer)
    timers = [f"{u.name}.timer" for u in units]
    console.print(f"wrote {2 * len(units)} unit files to {esc(target)}")
    commands = [["systemctl", "--user", "daemon-reload"], ["systemctl", "--user", "enable", "--now", *timers]]
    if enable:
        for c in commands:
            res = subprocess.run(c, capture_output=True, text=True)
            if res.returncode != 0:
                raise HarnessError(f"{' '.join(c)} failed: {res.stderr.strip()}")
        console.print("timers enabled: " + ", ".join(timers))
    else:
        console.print("enable them with:\n  " + "\n  ".join(" ".join(c) for c in commands))
        console.print("and, to keep them running when you are logged out: loginctl enable-linger $USER")
