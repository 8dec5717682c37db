from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from ..errors import KeywordListError
from ..keywords import iter_list_files, load_keyword_list
from . import app
from ._common import JsonOption, console, err_console, esc, print_json

keywords_app = typer.Typer(help="Keyword lists: validate, inspect.", no_args_is_help=True)
app.add_typer(keywords_app, name="keywords")


@keywords_app.command("validate")
def validate_cmd(
    paths: list[Path] = typer.Argument(None, help="list files or folders (default: keywords/)"),
    as_json: bool = JsonOption,
) -> None:
    """Check every keyword list; print file:line for each problem; exit 2 if any."""
    targets = paths or [Path("keywords")]
    files: list[Path] = []
    for p in targets:
        files.extend(iter_list_files(p) if p.is_dir() else [p])
    problems: list[str] = []
    report = []
    for f in files:
        try:
            loaded = load_keyword_list(f)
            report.append({"file": str(f), "name": loaded.name, "entries": len(loaded.keyword_list.entries)})
        except KeywordListError as exc:
            problems.append(str(exc))
    if as_json:
        print_json({"lists": report, "problems": problems})
    else:
        table = Table(title="keyword lists")
        table.add_column("file")
        table.add_column("name")
        table.add_column("entries", justify="right")
        for r in report:
            table.add_row(esc(r["file"]), esc(r["name"]), str(r["entries"]))
        console.print(table)
        for p in problems:
            err_console.print(f"[red]{esc(p)}[/]")
    if problems:
        raise typer.Exit(2)
