"""``harness store check | prune | vacuum``: keep a long-lived store healthy."""

from __future__ import annotations

from pathlib import Path

import typer

from ..errors import HarnessError
from ..exitcodes import ExitCode
from ..operations.config import load_config, parse_duration
from ..operations.logs import event, get_logger, setup_logging
from ..store.sqlite import Store
from ..store.target import redact
from ..store.upkeep import check_store, prune_evidence, vacuum_store
from ._app import app
from ._common import ConfigOption, JsonOption, StoreOption, console, err_console, esc, print_json, store_path

store_app = typer.Typer(help="Store maintenance: integrity check, evidence retention, vacuum.", no_args_is_help=True)
app.add_typer(store_app, name="store")
log = get_logger("store")


def _mib(n: int) -> str:
    return f"{n / 1048576:.1f} MiB"


@store_app.command("check")
def check_cmd(
    no_bodies: bool = typer.Option(False, "--no-bodies", help="structural checks only (integrity, foreign keys, "
                                   "schema, missing or unreferenced bodies, runs): do not decompress and hash every "
                                   "stored body again, whose time grows with the bytes stored"),
    store: str | None = StoreOption,
    as_json: bool = JsonOption,
) -> None:
    """Integrity (SQLite: PRAGMA integrity_check; PostgreSQL: the server's checksums), schema version, bodies
    (each one decompressed and hashed again against the hash it is stored under, unless --no-bodies) and runs;
    exit 1 when something is wrong. --json says which mode ran ("mode": "full" or "no-bodies")."""
    report = check_store(store_path(store), bodies=not no_bodies)
    if as_json:
        print_json(report.model_dump(mode="json"))
    else:
        console.print(f"{esc(report.path)}: integrity {report.integrity}, schema {report.schema_version}"
                      f" (harness {report.expected_schema_version}), {_mib(report.size_bytes)}")
        console.print(f"{report.runs} runs, {report.measurements} measurements, {report.bodies} bodies"
                      f" ({report.pruned_bodies} pruned by retention, {report.orphan_bodies} unreferenced);"
                      + (f" {report.bodies_rehashed} bodies hashed again, {len(report.body_mismatches)} mismatches"
                         if report.mode == "full" else " bodies not hashed again (--no-bodies)"))
        if report.running_runs:
            console.print(f"running: {', '.join(report.running_runs)}")
        if report.interrupted_runs:
            console.print(f"interrupted (resume with harness run): {', '.join(report.interrupted_runs)}")
        for p in report.problems:
            err_console.print(f"problem: {esc(p)}")
        console.print("[green]ok[/]" if report.ok else "[red]NOT OK[/]")
    if not report.ok:
        raise typer.Exit(ExitCode.FOUND)


@store_app.command("prune")
def prune_cmd(
    keep_evidence: str | None = typer.Option(None, "--keep-evidence", help="keep bodies of measurements newer than this (90d, 12w, 36h) [config: keep_evidence]"),
    dry_run: bool = typer.Option(False, "--dry-run", help="count what would go, delete nothing"),
    store: str | None = StoreOption,
    config: Path | None = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Delete page bodies only older measurements refer to; verdicts and body hashes stay."""
    cfg = load_config(config, store=store, keep_evidence=keep_evidence)
    if cfg.keep_evidence is None:
        raise HarnessError("say how long to keep evidence: --keep-evidence 90d (or keep_evidence in harness.toml)")
    keep = parse_duration(cfg.keep_evidence)
    setup_logging(cfg.log_file, cfg.log.format, cfg.log.level)
    path = cfg.store_target
    with Store(path) as st:
        report = prune_evidence(st, keep, dry_run=dry_run)
    if not dry_run:
        event(log, "evidence_pruned", f"pruned {report.bodies_deleted} bodies older than {report.cutoff.isoformat()}",
              bodies_deleted=report.bodies_deleted, bytes_freed=report.compressed_bytes_freed, store=redact(path))
    if as_json:
        print_json(report.model_dump(mode="json"))
        return
    verb = "would delete" if dry_run else "deleted"
    console.print(f"{verb} {report.bodies_deleted} bodies ({_mib(report.compressed_bytes_freed)} compressed) referred to"
                  f" only by measurements before {report.cutoff:%Y-%m-%d %H:%M} UTC; {report.measurements_affected}"
                  f" measurements keep their verdict and body hash; {report.bodies_kept} bodies kept")
    if not dry_run and report.bodies_deleted:
        console.print("run [bold]harness store vacuum[/] to give the space back to the disk")


@store_app.command("vacuum")
def vacuum_cmd(store: str | None = StoreOption, as_json: bool = JsonOption) -> None:
    """Rebuild the store to return free space to the disk (SQLite: VACUUM; PostgreSQL: VACUUM FULL of its
    tables); refused while a run is in progress."""
    report = vacuum_store(store_path(store))
    if as_json:
        print_json(report.model_dump(mode="json"))
    else:
        console.print(f"{esc(report.path)}: {_mib(report.size_before)} → {_mib(report.size_after)}")
