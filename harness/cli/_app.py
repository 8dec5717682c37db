"""The Typer application every command module registers itself on (``@app.command``).

It lives apart from :mod:`harness.cli` so the command modules and the package that
imports them do not import each other.
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

import typer

app = typer.Typer(
    name="harness",
    help="Measure keyword censorship on Chinese search platforms.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            v = version("censorship-harness")
        except PackageNotFoundError:
            from .. import __version__ as v
        typer.echo(f"harness {v}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", "-V", callback=_version, is_eager=True,
                                 help="print the version and exit"),
) -> None:
    """Measure keyword censorship on Chinese search platforms."""


def _metavar(param: Any) -> str | None:
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return ""
    desc = getattr(param, "type_descriptor", None)
    if desc is None or desc.is_choice:
        return None
    if desc.is_path:
        return "PATH"
    annotation = desc.annotation
    if desc.is_list:
        args = typing.get_args(annotation)
        annotation = args[0] if args else str
    if annotation is Path or getattr(desc, "is_path", False):
        return "PATH"
    return {int: "INTEGER", float: "NUMBER", bool: "BOOL"}.get(annotation, "TEXT")


def _readable_type(original: Any) -> Any:
    def display_type_rich(self: Any, ctx: Any) -> str | None:
        argument = getattr(self, "param_type_name", "") == "argument"
        if self.metavar is not None and not argument:
            return self.metavar
        label = _metavar(self)
        if label == "":
            return None
        if label is None:
            shown = original(self, ctx)
            return shown.strip("<>") if isinstance(shown, str) else shown
        if getattr(self, "param_type_name", "") == "argument" and self.nargs != 1:
            label += "..."
        return label

    return display_type_rich


def readable_metavars() -> None:
    """Help shows readable value types: nothing for a flag, ``PATH``, ``TEXT``, ``INTEGER``, ``NUMBER``,
    ``a|b|c`` for choices (Typer 0.2x would show ``<bool>``, ``<list[Path]>``, ``<str>``)."""
    from typer.core import TyperArgument, TyperOption

    for cls in (TyperOption, TyperArgument):
        if not getattr(cls.display_type_rich, "_harness", False):
            patched = _readable_type(cls.display_type_rich)
            patched._harness = True  # type: ignore[attr-defined]
            cls.display_type_rich = patched  # type: ignore[method-assign]


def build_command() -> Any:
    """The click command tree of :data:`app`, with readable metavars."""
    readable_metavars()
    command = typer.main.get_command(app)
    _name_arguments(command)
    return command


def _name_arguments(command: Any) -> None:
    """Arguments are named in capitals in usage lines (``harness diff [A] [B]``)."""
    for param in getattr(command, "params", []):
        if getattr(param, "param_type_name", "") == "argument" and param.metavar is None:
            param.metavar = param.name.upper()
    for sub in (getattr(command, "commands", None) or {}).values():
        _name_arguments(sub)
