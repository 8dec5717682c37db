"""``harness report``: a run (or two) as one self-contained HTML file or Markdown."""

from __future__ import annotations

from pathlib import Path

import typer

from ..analysis.report import build_report
from ..errors import HarnessError
from ..store.sqlite import Store
from ..yamlio import atomic_write_text
from ._app import app
from ._common import StoreOption, console, esc, store_path


@app.command("report")
def report_cmd(
    output: Path = typer.Option(Path("report.html"), "--output", "-o", help="HTML file to write"),
    markdown: Path | None = typer.Option(None, "--markdown", help="Markdown file (default: beside the HTML, .md)"),
    probe_set: str | None = typer.Option(None, "--probe-set", "-P", metavar="NAME", help="probe set (default: that of the latest run)"),
    vantage: str | None = typer.Option(None, "--vantage", help="vantage point (default: that of the latest run)"),
    runs: int = typer.Option(30, "--runs", help="how many recent runs to show"),
    terms: int = typer.Option(60, "--terms", help="rows in the terms × runs heatmap"),
    title: str | None = typer.Option(None, "--title", help="the report's title (default: Censorship report: PROBE_SET)"),
    store: str | None = StoreOption,
) -> None:
    """Write a self-contained HTML report (opens offline) and a Markdown version."""
    md_path = markdown or output.with_suffix(".md")
    if md_path.resolve() == output.resolve():
        raise HarnessError(f"{output}: the HTML report and its Markdown version would be the same file; "
                           "name the HTML file .html or give --markdown FILE")
    with Store(store_path(store), readonly=True) as st:
        page, md = build_report(st, probe_set=probe_set, vantage=vantage, max_runs=runs, max_terms=terms, title=title)
    atomic_write_text(output, page)
    atomic_write_text(md_path, md)
    console.print(f"report written to {esc(output)} and {esc(md_path)}")
