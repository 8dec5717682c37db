"""``harness keywords import | add | validate | stats | search | export``: keyword lists from the command line."""

from __future__ import annotations

from pathlib import Path

import typer
from pydantic import ValidationError

from ..errors import KeywordListError
from ..exitcodes import ExitCode
from ..keywords.categories import find_codebook, load_codebook
from ..keywords.importers import FLAG_EXPLANATIONS, FORMATS, SKIP_EXPLANATIONS, import_file, write_import
from ..keywords.lists import (
    add_entry,
    default_search_dirs,
    expand_paths,
    export_csv,
    find_list,
    form_components,
    list_stats,
    load_keyword_list,
    search_lists,
    validate_lists,
)
from ..models import Keyword
from ..yamlio import atomic_write_text
from ._app import app
from ..operations.workspace import workspace_path
from ._common import JsonOption, console, err_console, esc, print_json
from ._output import Col, Format, FormatOption, choose_format, emit, note

keywords_app = typer.Typer(help="Keyword lists: import, add, validate, inspect, search, export.", no_args_is_help=True)
app.add_typer(keywords_app, name="keywords")

PathsArg = typer.Argument(None, metavar="PATH", help="list files or folders (default: the workspace's keywords/)")
CodebookOption = typer.Option(None, "--codebook", metavar="FILE",
                              help="categories codebook (default: categories.yaml beside the lists)")


def _keywords_dir() -> Path:
    return workspace_path("keywords")


def _files(paths: list[Path] | None) -> list[Path]:
    files = expand_paths(paths or [_keywords_dir()])
    if not files:
        raise KeywordListError("no keyword list files found", str(paths[0]) if paths else str(_keywords_dir()))
    return files


@keywords_app.command("validate")
def validate_cmd(
    paths: list[Path] = PathsArg,
    codebook: Path = CodebookOption,
    fmt: Format | None = FormatOption,
    as_json: bool = JsonOption,
) -> None:
    """Check every keyword list: schema, duplicates within a list, empty, control or overlong terms,
    unknown categories. Prints file:line for each problem; exit 2 if any error. The same term in
    two lists is a warning; another written form of an entry (習近平 / 习近平) is info."""
    report = validate_lists(_files(paths), codebook)
    errors = report.errors
    out = choose_format(fmt, as_json)
    if out is Format.json:
        print_json({"lists": [vars(s) for s in report.lists], "codebook": report.codebook,
                    "errors": len(errors), "warnings": len(report.warnings),
                    "problems": [p.to_json() for p in report.problems]})
    else:
        emit(out, [Col("file", key=True), Col("name", key=True), Col("entries", right=True)],
             [(s.file, s.name, s.entries) for s in report.lists], title="keyword lists")
        # problems go to stderr as file:line: level: message (an editor can jump to them), complete lines
        for p in report.problems:
            if p.level == "error":
                err_console.print(f"[red]{esc(p)}[/]", soft_wrap=True)
            elif p.level == "warning":
                err_console.print(f"[yellow]{esc(p)}[/]", soft_wrap=True)
            else:
                err_console.print(f"[dim]{esc(p)}[/]", soft_wrap=True)
        infos = len(report.problems) - len(errors) - len(report.warnings)
        err_console.print(f"{len(errors)} error(s), {len(report.warnings)} warning(s), {infos} info")
    if errors:
        raise typer.Exit(ExitCode.BAD_INPUT)


@keywords_app.command("import")
def import_cmd(
    file: Path = typer.Argument(..., help="a keyword list in any supported shape (txt, plain, csv ...)"),
    fmt: str = typer.Option("auto", "--format", "-f", help=f"one of: {', '.join(FORMATS)}"),
    out: Path = typer.Option(None, "--output", "--out", "-o", help="YAML list to write (default: keywords/<name>.yaml)"),
    name: str = typer.Option(None, "--name", help="list name (default: from the file name)"),
    source: str = typer.Option(None, "--source", help="where the list comes from (report, repository)"),
    licence: str = typer.Option(None, "--licence", help="licence of the data, e.g. CC-BY-NC-SA-4.0"),
    attribution: str = typer.Option(None, "--attribution", help="attribution the licence requires"),
    category: str = typer.Option(None, "--category", help="category code for every imported entry"),
    description: str = typer.Option(None, "--description", help="what the list is for (written into the YAML)"),
    force: bool = typer.Option(False, "--force", help="overwrite an existing output file"),
    dry_run: bool = typer.Option(False, "--dry-run", help="report only; write nothing"),
    as_json: bool = JsonOption,
) -> None:
    """Import a keyword list, report what was imported and what was skipped and why, write YAML."""
    if category:
        cb_path = find_codebook([out] if out else [_keywords_dir() / "x.yaml"])
        if cb_path is not None and category not in load_codebook(cb_path).codes:
            raise KeywordListError(f"unknown category {category!r} (not in {cb_path})")
    result = import_file(file, fmt=fmt, name=name, source=source, licence=licence, attribution=attribution,
                         category=category, description=description)
    target = out or _keywords_dir() / f"{result.keyword_list.name}.yaml"
    if not dry_run:
        if target.exists() and not force:
            raise KeywordListError("the output file exists (use --force to overwrite)", target)
        write_import(result, target)
    r = result.report
    if as_json:
        print_json(r.to_json())
        return
    console.print(f"[bold]{esc(file)}[/]: shape [cyan]{esc(r.format)}[/] ({esc(r.detail)})")
    console.print(f"rows {r.rows}: imported [green]{r.imported}[/] entries, merged {r.merged} other written forms "
                  f"into them as declared variants, skipped [yellow]{r.skipped_total}[/]")
    for tallies, title, kind, meaning, explanations in ((r.skipped, "skipped", "reason", "why", SKIP_EXPLANATIONS),
                                                        (r.flags, "imported, but note", "flag", "meaning",
                                                         FLAG_EXPLANATIONS)):
        if tallies:
            emit(Format.table, [Col(kind, key=True), Col("count", right=True), Col(meaning), Col("examples (line: text)")],
                 [(name, tally.count, explanations.get(name, ""),
                   "; ".join(f"{ln}: {tx}" for ln, tx in tally.examples[:3]))
                  for name, tally in sorted(tallies.items(), key=lambda kv: -kv[1].count)], title=title)
    if r.ignored_columns:
        console.print(f"columns not imported: {esc(', '.join(r.ignored_columns))}")
    console.print("dry run: nothing written" if dry_run else f"wrote {esc(target)}")


def _csv_items(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


@keywords_app.command("add")
def add_cmd(
    list_ref: str = typer.Argument(..., metavar="LIST", help="list name (leaders) or path to a YAML list"),
    term: str = typer.Argument(None, help="the term; 'A + B' for a combination"),
    category: str = typer.Option(None, "--category", help="category code from the codebook (categories.yaml)"),
    tags: str = typer.Option(None, "--tags", help="comma-separated tags"),
    source: str = typer.Option(None, "--source", help="where the entry comes from (a report, a repository)"),
    notes: str = typer.Option(None, "--notes", help="free-text notes on the entry"),
    components: str = typer.Option(None, "--components", help="components of a combination, comma-separated"),
    translation: str = typer.Option(None, "--translation", help="an English translation of the term"),
    script: str = typer.Option(None, "--script", help="zh-Hans, zh-Hant, en, bo, ug, mixed ..."),
    as_json: bool = JsonOption,
) -> None:
    """Add one entry to a list in place: comments, order and layout of the file are kept."""
    path = find_list(list_ref, default_search_dirs())
    if not term and not components:
        raise KeywordListError("give a TERM or --components")
    comps = _csv_items(components) if components and "," in components else (
        form_components(components) if components else [])
    if category:
        cb_path = find_codebook([path])
        if cb_path is not None and category not in load_codebook(cb_path).codes:
            raise KeywordListError(f"unknown category {category!r} (not in {cb_path})", path)
    try:
        entry = Keyword(term=term or "", components=comps, category=category or "", tags=_csv_items(tags),
                        source=source, notes=notes, translation=translation, script=script)
    except ValidationError as exc:
        raise KeywordListError(exc.errors()[0]["msg"].removeprefix("Value error, "), path) from None
    result = add_entry(path, entry)
    if as_json:
        print_json({"file": str(result.path), "line": result.line, "term": entry.term, "notes": result.notes})
        return
    console.print(f"added {esc(entry.term)} to {esc(result.path)}:{result.line}")
    for n in result.notes:
        console.print(f"[dim]note: {esc(n)}[/]")


@keywords_app.command("stats")
def stats_cmd(paths: list[Path] = PathsArg, fmt: Format | None = FormatOption, as_json: bool = JsonOption) -> None:
    """Entries, combinations, categories and scripts per list."""
    stats = [list_stats(load_keyword_list(f)) for f in _files(paths)]
    out = choose_format(fmt, as_json)
    cols = [Col("list", key=True), Col("entries", right=True), Col("combinations", right=True),
            Col("declared variants", right=True), Col("categories"), Col("scripts")]
    rows = [(s["name"], s["entries"], s["combinations"], s["declared_variants"],
             ", ".join(f"{k} {v}" for k, v in s["categories"].items()),
             ", ".join(f"{k} {v}" for k, v in s["scripts"].items())) for s in stats]
    if out is Format.table:
        rows.append(("total", sum(s["entries"] for s in stats), sum(s["combinations"] for s in stats),
                     sum(s["declared_variants"] for s in stats), "", ""))
    emit(out, cols, rows, title="keyword lists", records=stats)


@keywords_app.command("export")
def export_cmd(
    paths: list[Path] = PathsArg,
    csv_format: bool = typer.Option(True, "--csv", help="CSV (keyword, category_code, category_description, ...)"),
    out: Path = typer.Option(None, "--output", "--out", "-o", help="file to write (default: stdout)"),
) -> None:
    """Export lists as CSV with the columns of citizenlab/test-lists plus script, language, components."""
    files = _files(paths)
    lists = [load_keyword_list(f) for f in files]
    cb_path = find_codebook(files)
    text = export_csv(lists, load_codebook(cb_path) if cb_path else None)
    if out:
        atomic_write_text(out, text)
        err_console.print(f"wrote {sum(len(x.keyword_list.entries) for x in lists)} entries to {esc(out)}")
    else:
        typer.echo(text, nl=False)


@keywords_app.command("search")
def search_cmd(
    term: str = typer.Argument(..., help="a term, or 'A + B' for a combination"),
    paths: list[Path] = PathsArg,
    fmt: Format | None = FormatOption,
    as_json: bool = JsonOption,
) -> None:
    """Which lists hold TERM: as an entry, as a component of a combination, or in another written form."""
    lists = [load_keyword_list(f) for f in _files(paths)]
    hits = search_lists(term, lists)
    out = choose_format(fmt, as_json)
    if not hits and out is not Format.json:
        note(out, f"{term} is in none of {len(lists)} lists")
        return
    emit(out, [Col("list", key=True), Col("file:line", key=True), Col("entry", key=True), Col("match"), Col("detail")],
         [(h.list_name, f"{h.path}:{h.line}", h.term, h.match, h.detail) for h in hits],
         title=f"lists holding {term}", records=[h.to_json() for h in hits])
