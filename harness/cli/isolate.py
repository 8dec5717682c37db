"""``harness isolate`` and ``harness discover``: find the keyword rules behind censored texts."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from ..errors import HarnessError, InputError
from ..isolation.discovery import SampleText, check_outputs, discover, load_priors, load_texts
from ..isolation.oracle import OracleOptions, PlatformIsolation, isolate_on_platform
from ..models import RateLimit
from ..platforms.registry import PlatformRegistry
from ..platforms.spec import PlatformSpec
from ._app import app
from ._common import JsonOption, console, err_console, esc, print_json
from .run import parse_base_urls

PlatformOpt = typer.Option(..., "--platform", "-p", help="platform name (see `harness platforms list`)")
PlatformsDirOpt = typer.Option([], "--platforms", help="extra folder of platform specs")
BaseUrlOpt = typer.Option([], "--base-url", help="PLATFORM=URL override (e.g. a sandbox)")
IntervalOpt = typer.Option(None, "--interval", help="seconds between requests (default: the spec's rate limit)")
RetriesOpt = typer.Option(4, "--retries", help="retries of a failing request before giving up")
BackoffOpt = typer.Option(5.0, "--retry-backoff", help="first retry backoff in seconds (doubles each time)")
PriorsOpt = typer.Option([], "--priors", help="keyword list file or folder whose rules/components are guessed first")


def _spec(platform: str, platforms: list[Path], base_url: list[str]) -> PlatformSpec:
    spec = PlatformRegistry.default(platforms).get(platform)
    url = parse_base_urls(base_url).get(platform)
    return spec.model_copy(update={"base_url": url.rstrip("/")}) if url else spec


def _options(interval: float | None, retries: int, backoff: float, spec: PlatformSpec) -> OracleOptions:
    if retries < 0 or backoff < 0 or (interval is not None and interval < 0):
        raise HarnessError("--retries, --retry-backoff and --interval must not be negative")
    rate = None
    if interval is not None:
        rate = RateLimit(interval_s=interval, jitter=spec.rate_limit.jitter if interval else 0, concurrency=1)
    return OracleOptions(retries=retries, retry_backoff_s=backoff, rate_limit=rate)


def _rules_table(res: PlatformIsolation) -> Table:
    table = Table(title=f"rules on {esc(res.platform)}")
    table.add_column("#", justify="right")
    table.add_column("components")
    for i, rule in enumerate(res.rules, 1):
        table.add_row(str(i), esc(" + ".join(rule)))
    return table


@app.command("isolate")
def isolate_cmd(
    text: str = typer.Argument(None, help="the censored text (or use --file)"),
    platform: str = PlatformOpt,
    file: Path | None = typer.Option(None, "--file", "-f", help="read the text from a UTF-8 file"),
    budget: int | None = typer.Option(None, "--budget", help="stop after this many queries (result marked incomplete)"),
    platforms: list[Path] = PlatformsDirOpt,
    base_url: list[str] = BaseUrlOpt,
    interval: float | None = IntervalOpt,
    retries: int = RetriesOpt,
    retry_backoff: float = BackoffOpt,
    priors: list[Path] = PriorsOpt,
    as_json: bool = JsonOption,
) -> None:
    """Find the keyword combination(s) that make a text censored on a platform."""
    if (text is None) == (file is None):
        raise HarnessError("give the text either as an argument or with --file, not both")
    if file is not None:
        try:
            text = file.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise InputError("file not found", file) from None
        except UnicodeDecodeError:
            raise InputError("not UTF-8 text", file) from None
    assert text is not None
    text = text.strip()
    if not text:
        raise HarnessError("the text is empty")
    if budget is not None and budget < 1:
        raise HarnessError("--budget must be at least 1")
    spec = _spec(platform, platforms, base_url)
    options = _options(interval, retries, retry_backoff, spec)
    known = load_priors(priors) if priors else None
    with err_console.status(f"isolating on {spec.name} ...", spinner="dots") if not as_json else _null():
        res = asyncio.run(isolate_on_platform(spec, text, budget, options, known))
    if as_json:
        print_json(res.to_dict())
    else:
        if res.censored is False:
            console.print(f"not censored on {esc(spec.name)} (1 query)")
        elif res.rules:
            console.print(_rules_table(res))
        state = "complete" if res.complete else "INCOMPLETE"
        console.print(f"{res.queries} queries ({res.requests} requests), {len(res.rules)} rule(s), {state}")
    if res.error:
        raise HarnessError(f"isolation stopped: {res.error}")
    if not res.complete:
        err_console.print(f"budget of {budget} queries ran out: more rules may remain")


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


@app.command("discover")
def discover_cmd(
    platform: str = PlatformOpt,
    texts: Path = typer.Option(..., "--texts", help="a file (one text per line) or a folder of .txt files"),
    budget: int = typer.Option(40, "--budget", help="queries per censored text"),
    keywords_dir: Path = typer.Option(Path("keywords"), "--keywords-dir",
                                      help="where discovered-<platform>.yaml is written"),
    platforms: list[Path] = PlatformsDirOpt,
    base_url: list[str] = BaseUrlOpt,
    interval: float | None = IntervalOpt,
    retries: int = RetriesOpt,
    retry_backoff: float = BackoffOpt,
    priors: list[Path] = PriorsOpt,
    as_json: bool = JsonOption,
) -> None:
    """Test texts (e.g. news titles), isolate the censored ones, append new rules (resumable)."""
    if budget < 1:
        raise HarnessError("--budget must be at least 1")
    samples = load_texts(texts)
    spec = _spec(platform, platforms, base_url)
    options = _options(interval, retries, retry_backoff, spec)
    check_outputs(keywords_dir, spec.name)
    known = load_priors(priors) if priors else None
    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[found]} rules found"),
        console=err_console, disable=as_json,
    )
    found = 0

    with progress:
        task_id = progress.add_task(f"discover on {spec.name}", total=len(samples), found=0)

        def on_text(t: SampleText, res: PlatformIsolation | None) -> None:
            nonlocal found
            if res is not None:
                found += len(res.rules)
            progress.update(task_id, advance=1, found=found)

        summary = asyncio.run(discover(spec, samples, keywords_dir, budget, options, on_text, priors=known))
    if as_json:
        print_json(summary.to_dict())
    else:
        table = Table(title=f"new rules on {esc(spec.name)}")
        table.add_column("text")
        table.add_column("components")
        for r in summary.new_rules:
            table.add_row(esc(r["text_id"]), esc(" + ".join(r["rule"])))
        if summary.new_rules:
            console.print(table)
        console.print(
            f"{summary.tested} texts tested ({summary.skipped} already done), {summary.censored} censored, "
            f"{summary.incomplete} incomplete, {summary.failed} failed; {summary.queries} queries; "
            f"{len(summary.new_rules)} new rules in {esc(summary.list_path)}"
        )
    for e in summary.errors:
        err_console.print(f"warning: {e}", markup=False, highlight=False)
    if summary.failed:
        raise HarnessError(f"{summary.failed} text(s) could not be tested (failures); rerun to retry them")
