"""``harness keywords import | add | validate | stats | search | export``: keyword lists from the command line."""

from __future__ import annotations

from pathlib import Path

import typer
from pydantic import ValidationError
from rich.table import Table

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
from ._common import JsonOption, console, err_console, esc, print_json

keywords_app = typer.Typer(help="Keyword lists: import, add, validate, inspect, search, export.", no_args_is_help=True)
app.add_typer(keywords_app, name="keywords")

PathsArg = typer.Argument(None, help="list files or folders (default: keywords/)")
CodebookOption = typer.Option(None, "--codebook", help="categories codebook (default: categories.yaml beside the lists)")


def _files(paths: list[Path] | None) -> list[Path]:
    files = expand_paths(paths or [Path("keywords")])
    if not files:
        raise KeywordListError("no keyword list files found", str(paths[0]) if paths else "keywords")
    return files


@keywords_app.command("validate")
def validate_cmd(
    paths: list[Path] = PathsArg,
    codebook: Path = CodebookOption,
    as_json: bool = JsonOption,
) -> None:
    """Check every keyword list: schema, duplicates within and across lists, empty, control or
    overlong terms, unknown categories. Prints file:line for each problem; exit 2 if any error.
    Another written form of an entry (習近平 / 习近平) is reported as info, not as an error."""
    report = validate_lists(_files(paths), codebook)
    errors = report.errors
    if as_json:
        print_json({"lists": [vars(s) for s in report.lists], "codebook": report.codebook,
                    "errors": len(errors), "problems": [p.to_json() for p in report.problems]})
    else:
        table = Table(title="keyword lists")
        table.add_column("file")
        table.add_column("name")
        table.add_column("entries", justify="right")
        for s in report.lists:
            table.add_row(esc(s.file), esc(s.name), str(s.entries))
        console.print(table)
        for p in report.problems:
            if p.level == "error":
                err_console.print(f"[red]{esc(p)}[/]", soft_wrap=True)
            else:
                console.print(f"[dim]{esc(p)}[/]", soft_wrap=True)
        infos = len(report.problems) - len(errors)
        summary = f"{len(errors)} error(s), {infos} info"
        (err_console if errors else console).print(summary)
    if errors:
        raise typer.Exit(ExitCode.BAD_INPUT)


@keywords_app.command("import")
def import_cmd(
    file: Path = typer.Argument(..., help="a keyword list in any supported shape (txt, plain, csv ...)"),
    fmt: str = typer.Option("auto", "--format", "-f", help=f"one of: {', '.join(FORMATS)}"),
    out: Path = typer.Option(None, "--out", "-o", help="YAML list to write (default: keywords/<name>.yaml)"),
    name: str = typer.Option(None, "--name", help="list name (default: from the file name)"),
    source: str = typer.Option(None, "--source", help="where the list comes from (report, repository)"),
    licence: str = typer.Option(None, "--licence", help="licence of the data, e.g. CC-BY-NC-SA-4.0"),
    attribution: str = typer.Option(None, "--attribution", help="attribution the licence requires"),
    category: str = typer.Option(None, "--category", help="category code for every imported entry"),
    description: str = typer.Option(None, "--description"),
    force: bool = typer.Option(False, "--force", help="overwrite an existing output file"),
    dry_run: bool = typer.Option(False, "--dry-run", help="report only; write nothing"),
    as_json: bool = JsonOption,
) -> None:
    """Import a keyword list, report what was imported and what was skipped and why, write YAML."""
    if category:
        cb_path = find_codebook([out] if out else [Path("keywords") / "x.yaml"])
        if cb_path is not None and category not in load_codebook(cb_path).codes:
            raise KeywordListError(f"unknown category {category!r} (not in {cb_path})")
    result = import_file(file, fmt=fmt, name=name, source=source, licence=licence, attribution=attribution,
                         category=category, description=description)
    target = out or Path("keywords") / f"{result.keyword_list.name}.yaml"
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
    if r.skipped:
        t = Table(title="skipped")
        t.add_column("reason")
        t.add_column("count", justify="right")
        t.add_column("why")
        t.add_column("examples (line: text)")
        for reason, tally in sorted(r.skipped.items(), key=lambda kv: -kv[1].count):
            t.add_row(reason, str(tally.count), SKIP_EXPLANATIONS.get(reason, ""),
                      esc("; ".join(f"{ln}: {tx}" for ln, tx in tally.examples[:3])))
        console.print(t)
    if r.flags:
        t = Table(title="imported, but note")
        t.add_column("flag")
        t.add_column("count", justify="right")
        t.add_column("meaning")
        t.add_column("examples (line: text)")
        for flag, tally in sorted(r.flags.items(), key=lambda kv: -kv[1].count):
            t.add_row(flag, str(tally.count), FLAG_EXPLANATIONS.get(flag, ""),
                      esc("; ".join(f"{ln}: {tx}" for ln, tx in tally.examples[:3])))
        console.print(t)
    if r.ignored_columns:
        console.print(f"columns not imported: {esc(', '.join(r.ignored_columns))}")
    console.print("dry run: nothing written" if dry_run else f"wrote {esc(target)}")


def _csv_items(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


@keywords_app.command("add")
def add_cmd(
    list_ref: str = typer.Argument(..., metavar="LIST", help="list name (leaders) or path to a YAML list"),
    term: str = typer.Argument(None, help="the term; 'A + B' for a combination"),
    category: str = typer.Option(None, "--category"),
    tags: str = typer.Option(None, "--tags", help="comma-separated tags"),
    source: str = typer.Option(None, "--source"),
    notes: str = typer.Option(None, "--notes"),
    components: str = typer.Option(None, "--components", help="components of a combination, comma-separated"),
    translation: str = typer.Option(None, "--translation"),
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
def stats_cmd(paths: list[Path] = PathsArg, as_json: bool = JsonOption) -> None:
    """Entries, combinations, categories and scripts per list."""
    stats = [list_stats(load_keyword_list(f)) for f in _files(paths)]
    if as_json:
        print_json(stats)
        return
    t = Table(title="keyword lists")
    for col in ("list", "entries", "combinations", "declared variants", "categories", "scripts"):
        t.add_column(col, justify="right" if col in ("entries", "combinations", "declared variants") else "left")
    for s in stats:
        t.add_row(esc(s["name"]), str(s["entries"]), str(s["combinations"]), str(s["declared_variants"]),
                  esc(", ".join(f"{k} {v}" for k, v in s["categories"].items())),
                  esc(", ".join(f"{k} {v}" for k, v in s["scripts"].items())))
    t.add_row("[bold]total[/]", str(sum(s["entries"] for s in stats)), str(sum(s["combinations"] for s in stats)),
              str(sum(s["declared_variants"] for s in stats)), "", "")
    console.print(t)


@keywords_app.command("export")
def export_cmd(
    paths: list[Path] = PathsArg,
    csv_format: bool = typer.Option(True, "--csv", help="CSV (keyword, category_code, category_description, ...)"),
    out: Path = typer.Option(None, "--out", "-o", help="file to write (default: stdout)"),
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
    as_json: bool = JsonOption,
) -> None:
    """Which lists hold TERM: as an entry, as a component of a combination, or in another written form."""
    lists = [load_keyword_list(f) for f in _files(paths)]
    hits = search_lists(term, lists)
    if as_json:
        print_json([h.to_json() for h in hits])
        return
    if not hits:
        console.print(f"{esc(term)} is in none of {len(lists)} lists")
        return
    t = Table(title=f"lists holding {esc(term)}")
    for col in ("list", "file:line", "entry", "match", "detail"):
        t.add_column(col)
    for h in hits:
        t.add_row(esc(h.list_name), esc(f"{h.path}:{h.line}"), esc(h.term), h.match, esc(h.detail))
    console.print(t)
