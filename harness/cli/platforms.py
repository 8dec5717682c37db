from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from ..platforms import PlatformRegistry
from . import app
from ._common import JsonOption, console, esc, print_json

platforms_app = typer.Typer(help="Platform specs: list and inspect.", no_args_is_help=True)
app.add_typer(platforms_app, name="platforms")


@platforms_app.command("list")
def list_cmd(
    platforms: list[Path] = typer.Option([], "--platforms", help="extra folder of platform specs"),
    as_json: bool = JsonOption,
) -> None:
    """List known platforms (built in, ./platforms, --platforms)."""
    reg = PlatformRegistry.default(platforms)
    if as_json:
        print_json([{"name": s.name, "kind": s.kind, "base_url": s.base_url, "origin": str(reg.origin(s.name))} for s in reg])
        return
    table = Table(title="platforms")
    for col in ("name", "kind", "base_url", "truism", "soft test", "undocumented"):
        table.add_column(col)
    for s in reg:
        table.add_row(esc(s.name), s.kind, esc(s.base_url), esc(s.truism), "yes" if s.soft_test else "no",
                      esc(", ".join(s.undocumented)))
    console.print(table)


@platforms_app.command("show")
def show_cmd(
    name: str,
    platforms: list[Path] = typer.Option([], "--platforms", help="extra folder of platform specs"),
) -> None:
    """Print a platform spec as YAML."""
    import yaml

    spec = PlatformRegistry.default(platforms).get(name)
    typer.echo(yaml.safe_dump(spec.model_dump(mode="json", by_alias=True, exclude_defaults=True), allow_unicode=True, sort_keys=False))
