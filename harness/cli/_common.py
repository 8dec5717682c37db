"""Shared pieces of the CLI: consoles, common options, store opening."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from ..store.sqlite import DEFAULT_STORE_PATH

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

StoreOption = typer.Option(None, "--store", "-s", help="SQLite store (default: $HARNESS_STORE or results/harness.db)")
JsonOption = typer.Option(False, "--json", help="print JSON for scripts")


def store_path(store: Path | None) -> Path:
    """--store, else $HARNESS_STORE, else ``store`` in harness.toml, else results/harness.db."""
    if store is not None:
        return store
    env = os.environ.get("HARNESS_STORE")
    if env:
        return Path(env)
    from ..operations.config import find_config_file, load_config

    return Path(load_config().store) if find_config_file(None) is not None else DEFAULT_STORE_PATH


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def esc(text: object) -> str:
    """Escape text that came from a platform or a list before Rich renders it."""
    return escape(str(text))
