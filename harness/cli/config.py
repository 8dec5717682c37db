"""``harness config show``: the effective configuration, where each value came from, secrets masked."""

from __future__ import annotations

from pathlib import Path

import typer

from ..operations.config import load_config, masked, value_sources
from ._app import app
from ._common import ConfigOption, JsonOption
from ._output import Col, FormatOption, Format, choose_format, emit

config_app = typer.Typer(help="Configuration (harness.toml and HARNESS_* variables).", no_args_is_help=True)
app.add_typer(config_app, name="config")

_MAPS = ("cookie_files", "base_urls", "rate_limits", "rate_limit", "account_identifiers")


def _flatten(data: dict, prefix: str = "") -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = []
    for k, v in data.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and k not in _MAPS:
            out.extend(_flatten(v, key + "."))
        else:
            out.append((key, v))
    return out


def _show(value: object) -> str:
    if value is None:
        return "(not set)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_show(v)}" for k, v in value.items()) if value else "(none)"
    if value == "":
        return '""'
    return str(value)


@config_app.command("show")
def show_cmd(
    config: Path | None = ConfigOption,
    fmt: Format | None = FormatOption,
    as_json: bool = JsonOption,
) -> None:
    """Print the effective configuration and where each value came from.

    Precedence: command-line flags, then HARNESS_* environment variables, then harness.toml
    (the nearest one from here up), then defaults. Proxy passwords are masked and cookie
    files are named, never printed.
    """
    cfg = load_config(config)
    data = masked(cfg)
    sources = value_sources(cfg)
    out = choose_format(fmt, as_json)
    if out is Format.json:
        emit(out, [], [], records={"values": data, "sources": sources})
        return
    rows = [(key, _show(value), sources.get(key, "derived")) for key, value in _flatten(data)]
    emit(out, [Col("setting", key=True), Col("value"), Col("from")], rows, title="configuration")
