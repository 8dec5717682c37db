"""``harness isolate`` and ``harness discover``: find the keyword rules behind censored texts."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from ..errors import HarnessError, InputError
from ..isolation.discovery import (
    DiscoveredList,
    SampleText,
    check_outputs,
    discover,
    discovered_path,
    load_texts,
    workspace_priors,
)
from ..isolation.evidence import IsolationEvidence
from ..isolation.oracle import OracleOptions, PlatformIsolation, Priors, check_isolatable, isolate_on_platform
from ..measure.engine import Vantage
from ..measure.signals import run_interruptibly
from ..models import RateLimit
from ..operations.config import load_config
from ..platforms.registry import PlatformRegistry
from ..platforms.spec import PlatformSpec
from ..store import Store
from ..yamlio import MAX_SMALL_INPUT, read_text
from ._app import app
from ..operations.workspace import workspace_path
from ._common import (
    DEFAULT_RETRY_BACKOFF_S,
    BaseUrlOption,
    CookiesOption,
    JsonOption,
    ProxyOption,
    RetryBackoffOption,
    SpecsOption,
    StoreOption,
    console,
    err_console,
    esc,
    platform_access,
    print_json,
    store_path,
)

PlatformOpt = typer.Option(..., "--platform", "-p", metavar="NAME", help="platform name (see `harness platforms list`)")
IntervalOpt = typer.Option(None, "--interval", help="seconds between requests (default: the spec's rate limit)")
RetriesOpt = typer.Option(4, "--retries", help="retries of a failing request before giving up")
PriorsOpt = typer.Option([], "--priors", help="more keyword lists (files or folders) to use as priors, on top of "
                         "the keywords folder's")
NoPriorsOpt = typer.Option(False, "--no-priors", help="guess nothing first: no keyword lists, no discovered rules")
KeywordsDirOpt = typer.Option(None, "--keywords-dir", metavar="DIR",
                              help="the workspace's keyword lists (default: keywords/ of the workspace): used as priors (all of them, the discovered-*.yaml "
                                   "rules of every platform included); discovered-<platform>.yaml is written there")


def _spec(platform: str, platforms: list[Path], base_url: list[str], cookies: list[str],
          proxy: str | None) -> tuple[PlatformSpec, str | Path | None, str | None]:
    spec = PlatformRegistry.default(platforms).get(platform)
    check_isolatable(spec)  # a browser-transport spec: one line, before a store run is opened
    return platform_access(spec, base_url, cookies, proxy)


def _options(interval: float | None, retries: int, backoff: float | None, spec: PlatformSpec, proxy: str | None,
             cookie_file: str | Path | None) -> OracleOptions:
    if retries < 0 or (interval is not None and interval < 0):
        raise HarnessError("--retries and --interval must not be negative")
    rate = None
    if interval is not None:
        rate = RateLimit(interval_s=interval, jitter=spec.rate_limit.jitter if interval else 0, concurrency=1)
    if backoff is None:
        backoff = load_config(None).retry_backoff_s
    return OracleOptions(retries=retries, retry_backoff_s=DEFAULT_RETRY_BACKOFF_S if backoff is None else backoff,
                         rate_limit=rate, proxy=proxy, cookies_file=Path(cookie_file) if cookie_file else None)


def _priors(keywords_dir: Path, extra: list[Path], no_priors: bool) -> Priors | None:
    if no_priors and extra:
        raise HarnessError("--no-priors and --priors contradict each other: give one of them")
    return workspace_priors(keywords_dir, extra, enabled=not no_priors)


def _evidence(store: str | None, command: str, spec: PlatformSpec, doc: dict) -> IsolationEvidence:
    """The store run that keeps every isolation query (the same --store as every command)."""
    cfg = load_config(None)
    v = cfg.vantage
    return IsolationEvidence(Store(store_path(store)), command, spec.name, Vantage(v.probe_cc, v.probe_asn, v.label),
                             doc)


def _progress(disable: bool, total: int | None = None) -> Progress:
    """Rich progress on stderr: queries so far and rules found (texts done, for discover)."""
    columns = [TextColumn("[bold]{task.description}")]
    if total is not None:
        columns += [BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn()]
    else:
        columns += [TimeElapsedColumn()]
    columns += [TextColumn("{task.fields[queries]} queries, {task.fields[found]} rule(s) found")]
    return Progress(*columns, console=err_console, disable=disable)


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
    file: Path | None = typer.Option(None, "--file", help="read the text from a UTF-8 file"),
    budget: int | None = typer.Option(None, "--budget", help="stop after this many queries (result marked incomplete)"),
    platforms: list[Path] = SpecsOption,
    base_url: list[str] = BaseUrlOption,
    interval: float | None = IntervalOpt,
    retries: int = RetriesOpt,
    retry_backoff: float | None = RetryBackoffOption,
    proxy: str | None = ProxyOption,
    cookies: list[str] = CookiesOption,
    priors: list[Path] = PriorsOpt,
    no_priors: bool = NoPriorsOpt,
    keywords_dir: Path | None = KeywordsDirOpt,
    store: str | None = StoreOption,
    as_json: bool = JsonOption,
) -> None:
    """Find the keyword combination(s) that make a text censored on a platform.

    The workspace's keyword lists and discovered rules are guessed first (--no-priors: not);
    every query is stored as evidence (--store); new rules go to discovered-<platform>.yaml."""
    if (text is None) == (file is None):
        raise HarnessError("give the text either as an argument or with --file, not both")
    if file is not None:
        text = read_text(file, InputError, MAX_SMALL_INPUT)  # bounded; no FIFO, device or folder
    assert text is not None
    text = text.strip()
    if not text:
        raise HarnessError("the text is empty")
    if budget is not None and budget < 1:
        raise HarnessError("--budget must be at least 1")
    spec, cookie_file, proxy = _spec(platform, platforms, base_url, cookies, proxy)
    options = _options(interval, retries, retry_backoff, spec, proxy, cookie_file)
    keywords_dir = keywords_dir or workspace_path("keywords")
    known = _priors(keywords_dir, priors, no_priors)
    lst = DiscoveredList(discovered_path(keywords_dir, spec.name), spec.name)  # unreadable: fail before any query
    evidence = _evidence(store, "isolate", spec, {"text": text, "text_id": str(file) if file else "argument",
                                                  "budget": budget, "priors": known.describe() if known else None})
    progress = _progress(disable=as_json)
    with evidence.store, progress:
        task_id = progress.add_task(f"isolating on {esc(spec.name)}", queries=0, found=0)

        def on_progress(queries: int, rules: int) -> None:
            progress.update(task_id, queries=queries, found=rules)

        res = run_interruptibly(isolate_on_platform(spec, text, budget, options, known, evidence, on_progress))
    added = [r for r in res.rules if lst.add(r, text_id=str(file) if file else "argument", queries=res.queries,
                                             complete=res.complete, origin="isolate", run_id=res.run_id)]
    if added:
        lst.save()
    if as_json:
        print_json({**res.to_dict(), "new_rules": [list(r) for r in added], "list_path": str(lst.path),
                    "priors": known.describe() if known else None})
    else:
        if res.read_chars is not None:
            err_console.print(f"note: {esc(spec.name)} takes at most {spec.request.max_query_chars} characters per "
                              f"query (max_query_chars, with the truism and soft test's additions): only the "
                              f"text's first {res.read_chars} characters were isolated; isolate the rest "
                              f"separately")
        if res.censored is False:
            console.print(f"not censored on {esc(spec.name)} (1 query)")
        elif res.rules:
            console.print(_rules_table(res))
        state = "complete" if res.complete else "INCOMPLETE"
        console.print(f"{res.queries} queries ({res.requests} requests), {len(res.rules)} rule(s), {state}")
        if added:
            console.print(f"{len(added)} new rule(s) in {esc(lst.path)}")
        console.print(f"evidence: run {res.run_id} in {esc(evidence.store.location)}")
    if res.error:
        raise HarnessError(f"isolation stopped: {res.error}")
    if not res.complete:
        err_console.print(f"budget of {budget} queries ran out: more rules may remain")


@app.command("discover")
def discover_cmd(
    platform: str = PlatformOpt,
    texts: Path = typer.Option(..., "--texts", help="a file (one text per line) or a folder of .txt files"),
    budget: int = typer.Option(40, "--budget", help="queries per censored text"),
    keywords_dir: Path | None = KeywordsDirOpt,
    platforms: list[Path] = SpecsOption,
    base_url: list[str] = BaseUrlOption,
    interval: float | None = IntervalOpt,
    retries: int = RetriesOpt,
    retry_backoff: float | None = RetryBackoffOption,
    proxy: str | None = ProxyOption,
    cookies: list[str] = CookiesOption,
    priors: list[Path] = PriorsOpt,
    no_priors: bool = NoPriorsOpt,
    store: str | None = StoreOption,
    as_json: bool = JsonOption,
) -> None:
    """Test texts (e.g. news titles), isolate the censored ones, append new rules (resumable).

    The keywords folder's lists and discovered rules are guessed first (--no-priors: not), and
    grow with every rule found; every query is stored as evidence (--store)."""
    if budget < 1:
        raise HarnessError("--budget must be at least 1")
    samples = load_texts(texts)
    spec, cookie_file, proxy = _spec(platform, platforms, base_url, cookies, proxy)
    options = _options(interval, retries, retry_backoff, spec, proxy, cookie_file)
    keywords_dir = keywords_dir or workspace_path("keywords")
    check_outputs(keywords_dir, spec.name)
    known = _priors(keywords_dir, priors, no_priors)
    evidence = _evidence(store, "discover", spec, {"texts": str(texts), "budget": budget,
                                                   "priors": known.describe() if known else None})
    progress = _progress(disable=as_json, total=len(samples))

    with evidence.store, progress:
        task_id = progress.add_task(f"discover on {esc(spec.name)}", total=len(samples), found=0, queries=0)

        def on_text(t: SampleText, res: PlatformIsolation | None) -> None:
            progress.update(task_id, advance=1)

        def on_query(queries: int, rules: int) -> None:
            progress.update(task_id, queries=queries, found=rules)

        summary = run_interruptibly(discover(spec, samples, keywords_dir, budget, options, on_text, priors=known,
                                       evidence=evidence, on_query=on_query))
    if as_json:
        print_json({**summary.to_dict(), "priors": known.describe() if known else None})
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
        console.print(f"evidence: run {summary.run_id} in {esc(evidence.store.location)}")
    for e in summary.errors:
        err_console.print(f"warning: {e}", markup=False, highlight=False)
    if summary.failed:
        raise HarnessError(f"{summary.failed} text(s) could not be tested (failures); rerun to retry them")
