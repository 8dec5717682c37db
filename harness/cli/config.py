"""``harness config show``: the effective configuration, secrets masked."""

from __future__ import annotations

from pathlib import Path

import typer

from ..operations.config import load_config, masked
from ._app import app
from ._common import JsonOption, console, esc, print_json

config_app = typer.Typer(help="Configuration (harness.toml and HARNESS_* variables).", no_args_is_help=True)
app.add_typer(config_app, name="config")


def _flatten(data: dict, prefix: str = "") -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = []
    for k, v in data.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v and k not in ("cookie_files", "base_urls", "rate_limits", "account_identifiers"):
            out.extend(_flatten(v, key + "."))
        else:
            out.append((key, v))
    return out


@config_app.command("show")
def show_cmd(
    config: Path | None = typer.Option(None, "--config", help="harness.toml to use (default: ./harness.toml, $HARNESS_CONFIG)"),
    as_json: bool = JsonOption,
) -> None:
    """Print the effective configuration (flags > HARNESS_* environment > harness.toml > defaults).

    Proxy passwords are masked and cookie files are named, never printed.
    """
    data = masked(load_config(config))
    if as_json:
        print_json(data)
        return
    for key, value in _flatten(data):
        console.print(f"{key} = {esc(value)}")
