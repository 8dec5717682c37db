"""The Typer application every command module registers itself on (``@app.command``).

It lives apart from :mod:`harness.cli` so the command modules and the package that
imports them do not import each other.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="harness",
    help="Measure keyword censorship on Chinese search platforms.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
