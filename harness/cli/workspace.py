"""``harness init [DIR]``: make a workspace (keywords/, probes/, harness.toml, results/)."""

from __future__ import annotations

from pathlib import Path

import typer

from ..operations.workspace import init_workspace
from ._app import app
from ._common import JsonOption, console, esc, print_json


@app.command("init")
def init_cmd(
    directory: Path = typer.Argument(Path("."), metavar="DIR", help="folder to make the workspace in (default: here)"),
    as_json: bool = JsonOption,
) -> None:
    """Make a workspace: the curated keyword lists, the probe sets, a commented harness.toml and results/.

    Files already there are kept. Inside the folder (or any folder below it) every command finds
    the workspace's harness.toml and its store, results/harness.db.
    """
    report = init_workspace(directory)
    if as_json:
        print_json({"root": str(report.root), "created": [str(p) for p in report.created],
                    "kept": [str(p) for p in report.kept]})
        return
    console.print(f"workspace in {esc(report.root.resolve())}: {len(report.created)} files and folders created, "
                  f"{len(report.kept)} already there and kept")
    console.print("next: edit harness.toml (your vantage point), then "
                  f"`cd {esc(directory)} && harness demo` or `harness run probes/NAME.yaml`", soft_wrap=True)
