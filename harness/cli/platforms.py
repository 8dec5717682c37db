"""``harness platforms list | show | check | profile``: platform specs and a live check of one."""

from __future__ import annotations

from pathlib import Path

import typer

from ..exitcodes import ExitCode
from rich.table import Table

from ..errors import InputError
from ..measure.check import CheckReport, QueryCheck, check_platform_sync
from ..measure.record import DEFAULT_CONTROL, DEFAULT_NO_RESULTS, record_platform
from ..platforms.fixtures import check_folder
from ..platforms.spec import PlatformSpec
from ..measure.sessions import PlatformSession, redact_userinfo
from ..platforms.registry import PlatformRegistry
from ..store.domain_profile import load_profiles
from ..store.sqlite import Store
from ._app import app
from ..analysis.diff import resolve_run
from ._common import (
    BaseUrlOption,
    CookiesOption,
    JsonOption,
    PlatformOption,
    ProxyOption,
    SpecsOption,
    StoreOption,
    console,
    esc,
    platform_access,
    print_json,
    store_path,
)
from ._output import Col, Format, FormatOption, choose_format, emit, note

platforms_app = typer.Typer(help="Platform specs: list, inspect, check against the live platform.", no_args_is_help=True)
app.add_typer(platforms_app, name="platforms")

PlatformsOption = SpecsOption
NameArg = typer.Argument(..., metavar="NAME", help="platform name (see `harness platforms list`)")


@platforms_app.command("list")
def list_cmd(platforms: list[Path] = PlatformsOption, fmt: Format | None = FormatOption,
             as_json: bool = JsonOption) -> None:
    """List known platforms (built in, ./platforms, --specs)."""
    from ..measure.browser import browser_problem

    reg = PlatformRegistry.default(platforms)
    specs = list(reg)
    problem = browser_problem() if any(s.transport == "browser" for s in specs) else None
    records = [{"name": s.name, "kind": s.kind, "base_url": s.base_url, "origin": str(reg.origin(s.name)),
                "truism": s.truism, "hard_needs_truism": s.hard_needs_truism, "soft_test": s.soft_test is not None,
                "undocumented": s.undocumented, "adapter": s.adapter, "transport": s.transport,
                "browser_ready": (problem is None) if s.transport == "browser" else None} for s in specs]
    out = choose_format(fmt, as_json)
    cols = [Col("name", key=True), Col("kind"), Col("base_url"), Col("truism"), Col("method"), Col("soft test"),
            Col("transport"), Col("undocumented")]
    rows = [(s.name, s.kind, s.base_url, s.truism, "truism (silent)" if s.hard_needs_truism else "notice",
             "yes" if s.soft_test else "no",
             s.transport if s.transport == "http" else ("browser" if problem is None else "browser: needs Chromium"),
             ", ".join(s.undocumented)) for s in specs]
    emit(out, cols, rows, title="platforms", records=records)
    if problem is not None and out is not Format.json:
        note(out, f"specs with transport: browser cannot run here: {problem} "
                  "(apt-get install chromium; pip install 'censorship-harness[browser]'; or HARNESS_CHROMIUM)")


@platforms_app.command("show")
def show_cmd(name: str = NameArg, platforms: list[Path] = PlatformsOption, as_json: bool = JsonOption) -> None:
    """Print a platform spec (as YAML, or JSON with --json) and where it was loaded from."""
    import yaml

    reg = PlatformRegistry.default(platforms)
    spec = reg.get(name)
    data = spec.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    if as_json:
        print_json({"origin": str(reg.origin(name)), "spec": data})
        return
    typer.echo(f"# {reg.origin(name)}")
    typer.echo(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))


def _query_table(title: str, qc: QueryCheck) -> Table:
    table = Table(title=title, show_header=True)
    table.add_column("signal")
    table.add_column("matched")
    table.add_column("not seen")
    kinds = sorted(set(qc.matched) | set(qc.missing))
    for kind in kinds:
        table.add_row(kind, esc(", ".join(qc.matched.get(kind, []))), esc(", ".join(qc.missing.get(kind, []))))
    table.add_row("results", str(qc.result_items), "")
    if qc.result_count is not None:
        table.add_row("result count", f"{qc.result_count:,}", "")
    if qc.result_domains:
        table.add_row("result domains", esc(", ".join(qc.result_domains[:8])), "")
    return table


def _summary_line(label: str, qc: QueryCheck) -> str:
    """``truism 的 → HTTP 200, not_censored; URL`` (no URL, no trailing separator)."""
    verdict = qc.verdict + (f" ({qc.failure})" if qc.failure else "")
    line = f"[bold]{label}[/] {esc(qc.query)!s} → HTTP {qc.status or '-'}, {esc(verdict)}"
    return line + (f"; {esc(qc.url)}" if qc.url else "")


def _print_check(report: CheckReport) -> None:
    if report.truism.failure:  # nothing to compare the spec's signals with: one line says why, no table
        console.print(health_line(report), soft_wrap=True)
        return
    for label, qc in (("truism", report.truism), ("restricted truism (soft test)", report.soft_control)):
        if qc is None:
            continue
        console.print(_summary_line(label, qc), soft_wrap=True)
        console.print(_query_table(f"{report.platform}: {label}", qc))
    if report.undocumented:
        console.print(f"undocumented in this spec: {esc(', '.join(report.undocumented))}")
    console.print(health_line(report), soft_wrap=True)


def health_line(report: CheckReport) -> str:
    """What the check concludes, naming what went wrong: an unreachable host is not an empty truism."""
    from ..failures import describe

    qc = report.truism
    if report.healthy:
        return "[green]healthy[/]: the truism has results"
    if qc.failure and qc.status is None:
        return (f"[red]unreachable[/]: {esc(qc.failure)} ({esc(describe(qc.failure))}); nothing was read from "
                f"{esc(report.base_url)}: check the network, the proxy and the base URL; no signals checked")
    if qc.failure:
        return (f"[red]unhealthy[/]: the truism's answer (HTTP {qc.status}) is a failure, {esc(qc.failure)} "
                f"({esc(describe(qc.failure))}); no signals checked; a run would back off and give the platform up")
    return (f"[red]unhealthy[/]: the truism has no results ({esc(qc.verdict)}); a run would back off and give the "
            f"platform up")


@platforms_app.command("check")
def check_cmd(
    name: str = NameArg,
    platforms: list[Path] = PlatformsOption,
    base_url: list[str] = BaseUrlOption,
    query: str | None = typer.Option(None, "--query", metavar="TEXT", help="check this query instead of the truism"),
    proxy: str | None = ProxyOption,
    cookies: list[str] = CookiesOption,
    timeout: float = typer.Option(20.0, "--timeout", metavar="SECONDS", help="seconds to wait for the answer"),
    fixtures: Path | None = typer.Option(None, "--fixtures", metavar="DIR",
                                         help="replay this folder of saved answers offline "
                                         "(harness platforms record, or tests/fixtures/platforms/NAME): nothing is sent"),
    as_json: bool = JsonOption,
) -> None:
    """Send the platform's truism once and report which of its signals the live answer showed.

    Exit code 0 when the truism has results, 1 when it does not (the platform is unusable now).
    --base-url and --cookies take NAME=VALUE as everywhere (a bare value means this platform).
    With --fixtures DIR nothing is sent: every saved answer of DIR is classified with the current
    spec; exit code 1 when a verdict differs from the one expected.yaml records.
    """
    spec = PlatformRegistry.default(platforms).get(name)
    if fixtures is not None:
        _check_fixtures(spec, fixtures, as_json)
        return
    spec, cookie_file, proxy = platform_access(spec, base_url, cookies, proxy)
    session = PlatformSession.build(cookies_file=cookie_file, env_names=spec.request.env_names(), proxy=proxy,
                                    platform=spec.name)
    report = check_platform_sync(spec, query=query, proxy=proxy, session=session, timeout_s=timeout)
    report.base_url = redact_userinfo(report.base_url)
    if as_json:
        print_json(report.as_dict())
    else:
        _print_check(report)
    if not report.healthy:
        raise typer.Exit(ExitCode.FOUND)


def _check_fixtures(spec: PlatformSpec, folder: Path, as_json: bool) -> None:
    results = check_folder(spec, folder)
    if as_json:
        print_json({"platform": spec.name, "folder": str(folder), "ok": all(r.ok for r in results),
                    "pages": [{"file": r.case.file, "role": r.case.role, "query": r.case.query,
                               "expected": None if r.case.verdict is None else (
                                   r.case.verdict.value if r.case.failure is None else f"failure:{r.case.failure}"),
                               "verdict": r.verdict, "failure": r.failure, "signals": r.signals,
                               "result_items": r.result_items, "problems": r.problems} for r in results]})
    else:
        table = Table(title=f"{spec.name}: {len(results)} saved answers in {folder}")
        for col in ("file", "query", "expected", "now", "signals", ""):
            table.add_column(col)
        for r in results:
            want = "-" if r.case.verdict is None else (
                r.case.verdict.value if r.case.failure is None else f"failure:{r.case.failure}")
            mark = "[green]ok[/]" if r.ok else "[red]" + esc("; ".join(r.problems)) + "[/]"
            table.add_row(esc(r.case.file + (f" (after {r.case.after})" if r.case.after else "")),
                          esc(r.case.query or ""), esc(want), esc(r.outcome), esc(", ".join(r.signals)), mark)
        console.print(table)
        bad = sum(not r.ok for r in results)
        console.print(f"[red]{bad} of {len(results)} answers differ from expected.yaml[/]" if bad
                      else f"[green]all {len(results)} answers give the expected verdict[/]")
    if not all(r.ok for r in results):
        raise typer.Exit(ExitCode.FOUND)


@platforms_app.command("record")
def record_cmd(
    name: str = NameArg,
    out: Path = typer.Option(..., "--output", "--out", "-o", metavar="DIR",
                             help="new folder to write (pages, expected.yaml, SOURCES.md)"),
    term: list[str] = typer.Option([], "--term", help="a term to record as well (repeat the option)"),
    control: str = typer.Option(DEFAULT_CONTROL, "--control", help="a benign control term"),
    no_results: str = typer.Option(DEFAULT_NO_RESULTS, "--no-results", help="a query with nothing to find"),
    platforms: list[Path] = PlatformsOption,
    base_url: list[str] = BaseUrlOption,
    proxy: str | None = ProxyOption,
    cookies: list[str] = CookiesOption,
    vantage: str = typer.Option("", "--vantage", metavar="LABEL", help="label of this vantage point (written in SOURCES.md)"),
    timeout: float = typer.Option(20.0, "--timeout", metavar="SECONDS", help="seconds to wait for each answer"),
    interval: float | None = typer.Option(None, "--interval", min=0,
                                          help="seconds between queries [default: the spec's rate-limit interval]"),
    as_json: bool = JsonOption,
) -> None:
    """Save the platform's answers to its truism, a control, a no-results query and --term terms as a
    fixture folder (cookies, tokens and account identifiers scrubbed), for `platforms check --fixtures`.

    Each query is sent once, at the spec's pace (its rate-limit interval between queries, or --interval).
    """
    spec = PlatformRegistry.default(platforms).get(name)
    if spec.transport == "browser":
        raise InputError(f"{name}: recording drives plain HTTP only; this spec needs the browser transport")
    spec, cookie_file, proxy = platform_access(spec, base_url, cookies, proxy)
    session = PlatformSession.build(cookies_file=cookie_file, env_names=spec.request.env_names(), proxy=proxy,
                                    platform=spec.name)
    recorded = record_platform(spec, out, terms=list(term), control=control, no_results_query=no_results,
                               session=session, proxy=proxy, timeout_s=timeout, vantage=vantage, interval_s=interval)
    if as_json:
        print_json({"platform": spec.name, "folder": str(out), "answers": [r.__dict__ for r in recorded]})
        return
    table = Table(title=f"{spec.name}: recorded into {out}")
    for col in ("role", "query", "HTTP", "verdict", "file"):
        table.add_column(col)
    for r in recorded:
        table.add_row(r.role, esc(r.query), str(r.status or "-"),
                      esc(r.verdict if r.failure is None else f"failure:{r.failure}"), esc(r.file or "(no answer)"))
    console.print(table)
    console.print(f"replay it offline: harness platforms check {esc(spec.name)} --fixtures {esc(str(out))}")


@platforms_app.command("profile")
def profile_cmd(
    run: str = typer.Argument("latest", metavar="RUN", help="a run reference (id or prefix, latest, latest~N, a date, "
                              "an age, with @VANTAGE; default: latest)"),
    platform: str | None = PlatformOption,
    store: str | None = StoreOption,
    as_json: bool = JsonOption,
) -> None:
    """Print the authorized-domain profile of a run: soft-censored term × domain (allowed / withheld)."""
    with Store(store_path(store), readonly=True) as st:
        run_id = resolve_run(st, run).run_id
        profiles = load_profiles(st, run_id, platform)
    if as_json:
        print_json([p.as_dict() for p in profiles])
        return
    if not profiles:
        console.print(f"no authorized-domain profile in run {run_id} (enable it with options: {{domain_profile: true}})")
        return
    marks = {"allowed": "[green]allowed[/]", "withheld": "[red]withheld[/]", "no_control": "[dim]no control[/]"}
    for prof in profiles:
        table = Table(title=f"{prof.platform}: authorized-domain profile, run {run_id}")
        table.add_column("term")
        for d in prof.domains:
            table.add_column(esc(d))
        for term in prof.terms:
            row = prof.cells.get(term, {})
            table.add_row(esc(term), *[marks.get(row.get(d, ""), esc(row.get(d, "-"))) for d in prof.domains])
        console.print(table)
