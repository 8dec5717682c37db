"""Shared pieces of the CLI: consoles, common options, store opening."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from ..store.base import DEFAULT_STORE_PATH
from ..store.target import StoreTarget, normalize

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

StoreOption = typer.Option(None, "--store", "-s", help="SQLite file or postgresql://user@host/db (default: $HARNESS_STORE,"
                                                       " store in harness.toml, results/harness.db)")
JsonOption = typer.Option(False, "--json", help="print JSON for scripts")


def store_path(store: str | Path | None) -> StoreTarget:
    """--store, else $HARNESS_STORE, else ``store`` in harness.toml, else results/harness.db
    (a path, or a ``postgresql://`` URL kept as a string)."""
    if store is not None:
        return normalize(store)
    env = os.environ.get("HARNESS_STORE")
    if env:
        return normalize(env)
    from ..operations.config import find_config_file, load_config

    return load_config().store_target if find_config_file(None) is not None else DEFAULT_STORE_PATH


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def esc(text: object) -> str:
    """Escape text that came from a platform or a list before Rich renders it."""
    return escape(str(text))
