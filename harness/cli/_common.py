"""Shared pieces of the CLI: consoles, common options, store opening."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.segment import Segment
from rich.markup import escape

if TYPE_CHECKING:  # imported where used: every command imports this module, few open a store or a spec
    from ..platforms.spec import PlatformSpec
    from ..store.target import StoreTarget



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

StoreOption = typer.Option(None, "--store", "-s", metavar="PATH|URL", envvar="HARNESS_STORE", show_envvar=False,
                           help="SQLite file or postgresql://user@host/db (default: $HARNESS_STORE, else the workspace's "
                                "harness.toml, else results/harness.db)")
JsonOption = typer.Option(False, "--json", help="print JSON for scripts (same as --format json)")
ConfigOption = typer.Option(None, "--config", metavar="FILE",
                            help="harness.toml to use (default: $HARNESS_CONFIG, else the nearest harness.toml from here up)")
SpecsOption = typer.Option([], "--specs", metavar="DIR", help="an extra folder of platform specs (repeatable)")
BaseUrlOption = typer.Option([], "--base-url", metavar="NAME=URL",
                             help="send platform NAME's requests to URL instead (e.g. a sandbox; repeatable)")
CookiesOption = typer.Option([], "--cookies", metavar="PLATFORM=FILE",
                             help="cookies for PLATFORM from FILE (Netscape cookies.txt or JSON; repeatable) [config: cookie_files]")
ProxyOption = typer.Option(None, "--proxy", metavar="URL",
                           help="send through this proxy: http://, socks5://[user:password@]host:port [config: proxy]")
RetryBackoffOption = typer.Option(None, "--retry-backoff", min=0, max=3600, metavar="SECONDS",
                                  help="first wait before retrying a failed request, doubled each retry "
                                       "[probe set or config: retry_backoff_s; default 5]")
ProbeCcOption = typer.Option(None, "--probe-cc", metavar="CC",
                             help="country code of this vantage point [config: vantage.probe_cc, ZZ]")
ProbeAsnOption = typer.Option(None, "--probe-asn", metavar="ASN",
                              help="ASN of this vantage point [config: vantage.probe_asn, AS0]")
VantageOption = typer.Option(None, "--vantage", metavar="LABEL", help="label of this vantage point [config: vantage.label]")
PlatformOption = typer.Option(None, "--platform", "-p", metavar="NAME", help="only this platform")
PlatformFilterOption = typer.Option([], "--platform", "-p", metavar="NAME", help="only this platform (repeatable)")
ProbeSetFilterOption = typer.Option(None, "--probe-set", "-P", metavar="NAME", help="only runs of this probe set")

DEFAULT_RETRY_BACKOFF_S = 5.0


def parse_pairs(values: list[str], option: str, what: str) -> dict[str, str]:
    """``NAME=VALUE`` options (``--base-url``, ``--cookies``) as a dict; a value without ``=`` is bad input."""
    from ..errors import InputError

    out = {}
    for v in values:
        m = _PAIR.match(v)
        if not m or not m.group(2).strip():
            raise InputError(f"{option} takes {what}, got {v!r}")
        out[m.group(1)] = m.group(2).strip()
    return out


_PAIR = re.compile(r"\s*([A-Za-z0-9_.\-]+)\s*=(.*)", re.S)


def for_platform(values: list[str], option: str, what: str, platform: str) -> str | None:
    """The value of a ``NAME=VALUE`` option for one platform; on a command about one platform a
    bare value (no ``NAME=``) means that platform."""
    from ..errors import InputError

    bare = [v for v in values if not _PAIR.match(v) or "://" in v.split("=", 1)[0]]
    pairs = parse_pairs([v for v in values if v not in bare], option, what)
    if len(bare) > 1:
        raise InputError(f"{option} given twice without a NAME=: use {what}")
    return pairs.get(platform) or (bare[0].strip() if bare else None)


def parse_base_urls(values: list[str], option: str = "--base-url") -> dict[str, str]:
    return parse_pairs(values, option, "NAME=URL")


def parse_cookie_files(values: list[str]) -> dict[str, Path]:
    return {k: Path(v) for k, v in parse_pairs(values, "--cookies", "PLATFORM=FILE").items()}


def platform_access(spec: PlatformSpec, base_url: list[str], cookies: list[str],
                    proxy: str | None) -> tuple[PlatformSpec, str | Path | None, str | None]:
    """``--base-url``, ``--cookies`` and ``--proxy`` of a command about one platform (``isolate``,
    ``discover``, ``platforms check|record``), each falling back on harness.toml: the spec with its
    base URL replaced, the cookie file, the proxy. A bare ``--base-url URL`` / ``--cookies FILE``
    means that platform."""
    from ..measure.sessions import check_proxy
    from ..operations.config import load_config

    cfg = load_config(None)
    url = for_platform(base_url, "--base-url", "NAME=URL", spec.name) or cfg.base_urls.get(spec.name)
    if url:
        spec = spec.model_copy(update={"base_url": url.rstrip("/")})
    cookie_file = for_platform(cookies, "--cookies", "PLATFORM=FILE", spec.name) or cfg.cookie_files.get(spec.name)
    return spec, cookie_file or None, (check_proxy(proxy) if proxy else cfg.proxy)


def store_path(store: str | Path | None) -> StoreTarget:
    """--store, else $HARNESS_STORE, else ``store`` in the workspace's harness.toml (relative to it),
    else ``results/harness.db`` in the workspace, else ``./results/harness.db`` (a path, or a
    ``postgresql://`` URL kept as a string)."""
    from ..store.base import DEFAULT_STORE_PATH
    from ..store.target import normalize

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
