"""``harness platforms list | show | check | profile``: platform specs and a live check of one."""

from __future__ import annotations

from pathlib import Path

import typer

from ..exitcodes import ExitCode
from rich.table import Table

from ..measure.check import CheckReport, QueryCheck, check_platform_sync
from ..measure.sessions import PlatformSession, redact_userinfo
from ..platforms.registry import PlatformRegistry
from ..store.domain_profile import load_profiles
from ..store.sqlite import Store
from ._app import app
from ._common import JsonOption, StoreOption, console, esc, print_json, store_path

platforms_app = typer.Typer(help="Platform specs: list, inspect, check against the live platform.", no_args_is_help=True)
app.add_typer(platforms_app, name="platforms")

PlatformsOption = typer.Option([], "--platforms", help="extra folder of platform specs")


@platforms_app.command("list")
def list_cmd(platforms: list[Path] = PlatformsOption, as_json: bool = JsonOption) -> None:
    """List known platforms (built in, ./platforms, --platforms)."""
    from ..measure.browser import browser_problem

    reg = PlatformRegistry.default(platforms)
    specs = list(reg)
    problem = browser_problem() if any(s.transport == "browser" for s in specs) else None
    if as_json:
        print_json([{"name": s.name, "kind": s.kind, "base_url": s.base_url, "origin": str(reg.origin(s.name)),
                     "truism": s.truism, "hard_needs_truism": s.hard_needs_truism, "soft_test": s.soft_test is not None,
                     "undocumented": s.undocumented, "adapter": s.adapter, "transport": s.transport,
                     "browser_ready": (problem is None) if s.transport == "browser" else None} for s in specs])
        return
    table = Table(title="platforms")
    for col in ("name", "kind", "base_url", "truism", "method", "soft test", "transport", "undocumented"):
        table.add_column(col)
    for s in specs:
        method = "truism (silent)" if s.hard_needs_truism else "notice"
        transport = s.transport if s.transport == "http" else (
            "browser" if problem is None else "[red]browser: needs Chromium[/]")
        table.add_row(esc(s.name), s.kind, esc(s.base_url), esc(s.truism), method, "yes" if s.soft_test else "no",
                      transport, esc(", ".join(s.undocumented)))
    console.print(table)
    if problem is not None:
        console.print(f"[red]specs with transport: browser cannot run here[/]: {esc(problem)} "
                      "(apt-get install chromium; pip install 'censorship-harness[browser]'; or HARNESS_CHROMIUM)")


@platforms_app.command("show")
def show_cmd(name: str, platforms: list[Path] = PlatformsOption, as_json: bool = JsonOption) -> None:
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


def _print_check(report: CheckReport) -> None:
    for label, qc in (("truism", report.truism), ("restricted truism (soft test)", report.soft_control)):
        if qc is None:
            continue
        verdict = qc.verdict + (f" ({qc.failure})" if qc.failure else "")
        console.print(f"[bold]{label}[/] {esc(qc.query)!s} → HTTP {qc.status or '-'}, {esc(verdict)}; {esc(qc.url or '')}")
        console.print(_query_table(f"{report.platform}: {label}", qc))
    if report.undocumented:
        console.print(f"undocumented in this spec: {esc(', '.join(report.undocumented))}")
    console.print(health_line(report))


def health_line(report: CheckReport) -> str:
    """What the check concludes, naming what went wrong: an unreachable host is not an empty truism."""
    from ..failures import describe

    qc = report.truism
    if report.healthy:
        return "[green]healthy[/]: the truism has results"
    if qc.failure and qc.status is None:
        return (f"[red]unreachable[/]: {esc(qc.failure)} ({esc(describe(qc.failure))}); nothing was read from "
                f"{esc(report.base_url)}: check the network, the proxy and the base URL")
    if qc.failure:
        return (f"[red]unhealthy[/]: the truism's answer is a failure, {esc(qc.failure)} ({esc(describe(qc.failure))}); "
                f"a run would back off and give the platform up")
    return (f"[red]unhealthy[/]: the truism has no results ({esc(qc.verdict)}); a run would back off and give the "
            f"platform up")


@platforms_app.command("check")
def check_cmd(
    name: str,
    platforms: list[Path] = PlatformsOption,
    base_url: str | None = typer.Option(None, "--base-url", help="send to this base URL instead (e.g. a sandbox)"),
    query: str | None = typer.Option(None, "--query", help="check this query instead of the truism"),
    proxy: str | None = typer.Option(None, "--proxy", envvar="HARNESS_PROXY", help="http://, socks5:// proxy URL"),
    cookies: Path | None = typer.Option(None, "--cookies", help="cookies file (Netscape cookies.txt or JSON)"),
    timeout: float = typer.Option(20.0, "--timeout", help="seconds"),
    as_json: bool = JsonOption,
) -> None:
    """Send the platform's truism once and report which of its signals the live answer showed.

    Exit code 0 when the truism has results, 1 when it does not (the platform is unusable now).
    """
    spec = PlatformRegistry.default(platforms).get(name)
    if base_url:
        spec = spec.model_copy(update={"base_url": base_url.rstrip("/")})
    session = PlatformSession.build(cookies_file=cookies, env_names=spec.request.env_names(), proxy=proxy,
                                    platform=spec.name)
    report = check_platform_sync(spec, query=query, proxy=proxy, session=session, timeout_s=timeout)
    report.base_url = redact_userinfo(report.base_url)
    if as_json:
        print_json(report.as_dict())
    else:
        _print_check(report)
    if not report.healthy:
        raise typer.Exit(ExitCode.FOUND)


@platforms_app.command("profile")
def profile_cmd(
    run: str = typer.Argument(..., help="run id (or a unique prefix)"),
    platform: str | None = typer.Option(None, "--platform", help="only this platform"),
    store: Path | None = StoreOption,
    as_json: bool = JsonOption,
) -> None:
    """Print the authorized-domain profile of a run: soft-censored term × domain (allowed / withheld)."""
    with Store(store_path(store), readonly=True) as st:
        run_id = st.get_run(run).run_id
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
