"""Shared pieces of the CLI: consoles, common options, store opening."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.segment import Segment
from rich.markup import escape

from ..store.base import DEFAULT_STORE_PATH
from ..store.target import StoreTarget, normalize



class SafeConsole(Console):
    """A Rich console that neutralises control characters in everything it prints.

    Rich escapes markup, not control characters: a platform's answer holding ``\\x1b]0;…\\x07``
    would retitle the terminal, ``\\x1b[2J`` clear it. Every piece of text is passed through
    :func:`neutralise` just before Rich adds its own styling (Rich's own control segments,
    such as cursor moves of a progress bar, are kept).
    """

    def _render_buffer(self, buffer: Iterable[Segment]) -> str:
        return super()._render_buffer(
            seg if seg.control or seg.text.isprintable() else Segment(neutralise(seg.text), seg.style, seg.control)
            for seg in buffer)


console = SafeConsole(highlight=False)
err_console = SafeConsole(stderr=True, highlight=False)

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


_JSON_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def json_text(data: Any, indent: int | None = 2) -> str:
    """JSON for a terminal or a pipe: JSON itself escapes C0 controls; DEL, C1 controls and the
    separators/overrides a terminal acts on are written as ``\\uXXXX`` too (still the same JSON value)."""
    text = json.dumps(data, ensure_ascii=False, indent=indent, default=str)
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def print_json(data: Any) -> None:
    typer.echo(json_text(data))


def echo(text: str = "", err: bool = False) -> None:
    """Plain output (no Rich) with control characters neutralised."""
    typer.echo(neutralise(text), err=err)


def esc(text: object) -> str:
    """Text that came from a platform or a list, made safe for Rich: markup escaped, controls neutralised."""
    return escape(neutralise(str(text)))


_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
"""C0 and C1 controls (tab and newline excepted), DEL, and the Unicode line/paragraph separators and
bidirectional overrides that can make a terminal line say something else than it holds."""


def neutralise(text: str) -> str:
    """Text safe for a terminal: every control character shown as a visible escape (``\\x1b``)."""
    if text.isprintable():
        return text
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100 else f"\\u{ord(m.group()):04x}",
                        text)
