"""How listing commands print rows: one ``--format`` for all, readable at any width and in pipes.

``--format table`` (the default on a terminal) draws a Rich table whose key columns (a term, a
change, a run id, a ``file:line``) are never cut: they keep their full width and the other
columns wrap; a ``words`` column (a verdict or a state, perhaps with a note after it) wraps only
between words, so ``not_censored`` is never split. When that does not fit the terminal, the
``optional`` columns are left out (last first) with a one-line note naming them; when even that
does not fit, each row is printed as ``name: value`` lines (every column). Large tables (more than :data:`FAST_ROWS` rows) are drawn as aligned plain text, which is
many times faster than a Rich table. ``tsv`` (the default when stdout is not a terminal: pipes,
cron mail) is a header line and one line per row, tab-separated, complete, without styling;
``csv`` is RFC 4180; ``json`` is a list of objects (``--json`` is kept as its alias).
Everything printed has its control characters neutralised.
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

import typer
from rich.cells import cell_len
from rich.table import Table

from ._common import console, esc, neutralise, print_json


class Format(str, Enum):
    table = "table"
    tsv = "tsv"
    json = "json"
    csv = "csv"


FormatOption = typer.Option(None, "--format", "-f", metavar="FORMAT", case_sensitive=False,
                            help="table, tsv, json or csv (default: table on a terminal, tsv in a pipe)")
FAST_ROWS = 400


def stdout_is_terminal() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def choose_format(fmt: Format | None, as_json: bool = False) -> Format:
    """``--json`` wins (alias of ``--format json``), then ``--format``, then table on a terminal, tsv elsewhere."""
    if as_json:
        return Format.json
    if fmt is not None:
        return Format(fmt)
    return Format.table if stdout_is_terminal() else Format.tsv


@dataclass(frozen=True)
class Col:
    name: str
    key: bool = False
    """A key column (term, change, run id, file:line): never cut."""
    right: bool = False
    words: bool = False
    """Values from a small closed vocabulary (a verdict, a state), perhaps followed by a note: the
    column may wrap between words, never inside one."""
    optional: bool = False
    """Left out of a terminal table (with a note) when the table would not fit with it."""


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _tsv_cell(value: Any) -> str:
    return neutralise(_cell(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r"))


def _tsv_line(row: Sequence[Any]) -> str:
    cells = [_cell(v) for v in row]
    whole = "".join(cells)
    if whole.isprintable() and "\\" not in whole:  # nothing to escape in any cell (the common case)
        return "\t".join(cells)
    return "\t".join(_tsv_cell(v) for v in row)


def tsv_text(cols: Sequence[Col], rows: Sequence[Sequence[Any]], header: bool = True) -> str:
    lines = ["\t".join(c.name for c in cols)] if header else []
    lines.extend(_tsv_line(row) for row in rows)
    return "\n".join(lines) + ("\n" if lines else "")


def csv_text(cols: Sequence[Col], rows: Sequence[Sequence[Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([c.name for c in cols])
    for row in rows:
        w.writerow([neutralise(_cell(v)) for v in row])
    return buf.getvalue()


SHORT = 10
"""A column whose values are all at most this wide is never wrapped either (dates, counts, statuses)."""


def _whole(c: Col, i: int, rows: Sequence[Sequence[str]]) -> int | None:
    """The width a column keeps whole (None: it may wrap)."""
    values = max([0] + [cell_len(r[i]) for r in rows])
    if c.key:  # its header whole too
        return max(values, cell_len(c.name))
    if values <= SHORT:  # a words column's header wraps between words, never inside one
        head = max(cell_len(w) for w in c.name.split()) if c.words else min(cell_len(c.name), SHORT)
        return max(values, head)
    return None


def _least(c: Col, i: int, rows: Sequence[Sequence[str]]) -> int:
    """The narrowest a wrapping column may be: its longest word (header included) for a ``words``
    column, 6 otherwise."""
    if not c.words:
        return 6
    return max(cell_len(w) for v in [c.name, *(r[i] for r in rows)] for w in [*v.split(), ""])


def _fits(cols: Sequence[Col], rows: Sequence[Sequence[str]], width: int) -> bool:
    need = 1
    for i, c in enumerate(cols):
        whole = _whole(c, i, rows)
        need += (whole if whole is not None else _least(c, i, rows)) + 3
    return need <= width


def _widths(cols: Sequence[Col], rows: Sequence[Sequence[str]], width: int) -> list[int]:
    """Column widths for a table ``width`` cells wide: whole columns keep theirs, the others get
    their least width and share what is left (at most their natural width), narrowest need first."""
    natural = [max([cell_len(c.name)] + [cell_len(r[i]) for r in rows]) for i, c in enumerate(cols)]
    out = [_whole(c, i, rows) for i, c in enumerate(cols)]
    free = [i for i, w in enumerate(out) if w is None]
    least = {i: min(natural[i], _least(cols[i], i, rows)) for i in free}
    left = width - 1 - 3 * len(cols) - sum(w for w in out if w is not None) - sum(least.values())
    for n, i in enumerate(sorted(free, key=lambda i: natural[i] - least[i])):
        out[i] = least[i] + min(natural[i] - least[i], max(0, left) // (len(free) - n))
        left -= out[i] - least[i]
    return [w if w is not None else 6 for w in out]


def _fitting(cols: Sequence[Col], rows: Sequence[Sequence[str]], width: int) -> list[int] | None:
    """The columns to draw at ``width`` (indexes): all, or all but optional ones left out last
    first; None when even that does not fit."""
    keep = list(range(len(cols)))
    for i in [None, *reversed([i for i, c in enumerate(cols) if c.optional])]:
        if i is not None:
            keep.remove(i)
        if _fits([cols[k] for k in keep], [[r[k] for k in keep] for r in rows], width):
            return keep
    return None


def _plain_aligned(cols: Sequence[Col], rows: Sequence[Sequence[str]]) -> str:
    widths = [max([cell_len(c.name)] + [cell_len(r[i]) for r in rows]) for i, c in enumerate(cols)]

    def line(values: Sequence[str]) -> str:
        out = []
        for i, (v, w) in enumerate(zip(values, widths)):
            pad = " " * (w - cell_len(v))
            out.append(pad + v if cols[i].right else (v + pad if i < len(cols) - 1 else v))
        return "  ".join(out).rstrip()

    return "\n".join([line([c.name for c in cols]), line(["-" * w for w in widths]), *(line(r) for r in rows)]) + "\n"


def print_table(cols: Sequence[Col], rows: Sequence[Sequence[Any]], *, title: str | None = None) -> None:
    """A table on the terminal: key columns whole; rows as records when the terminal is too narrow."""
    text_rows = [[neutralise(_cell(v)) for v in row] for row in rows]
    keep = [i for i, c in enumerate(cols) if c.key or any(r[i] for r in text_rows)]  # empty columns say nothing
    if len(keep) < len(cols):
        cols = [cols[i] for i in keep]
        text_rows = [[r[i] for i in keep] for r in text_rows]
    width = console.width
    shown = _fitting(cols, text_rows, width)
    if shown is None:
        # written as one text (values already neutralised): one Rich print per field would take
        # seconds for 20,000 rows
        lines = [neutralise(title)] if title else []
        for row in text_rows:
            lines.extend(f"{c.name}: {v}" for c, v in zip(cols, row))
            lines.append("")
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()
        return
    left_out = [c.name for i, c in enumerate(cols) if i not in shown]
    if left_out:
        cols = [cols[i] for i in shown]
        text_rows = [[r[i] for i in shown] for r in text_rows]
    _draw(cols, text_rows, width, title)
    if left_out:
        console.print(esc(f"({', '.join(left_out)} left out at {width} columns: --format tsv or --json shows "
                          "every column)"), soft_wrap=True, highlight=False)


def _draw(cols: Sequence[Col], text_rows: Sequence[Sequence[str]], width: int, title: str | None) -> None:
    if len(text_rows) > FAST_ROWS:
        if title:
            console.print(esc(title), soft_wrap=True)
        sys.stdout.write(_plain_aligned(cols, text_rows))
        sys.stdout.flush()
        return
    widths = _widths(cols, text_rows, width)
    table = Table(title=esc(title) if title else None)
    for c, w in zip(cols, widths):
        table.add_column(esc(c.name), width=w, overflow="fold", justify="right" if c.right else "left")
    for row in text_rows:
        table.add_row(*(esc(v) for v in row))
    console.print(table)


def emit(fmt: Format, cols: Sequence[Col], rows: Sequence[Sequence[Any]], *, title: str | None = None,
         records: list[dict[str, Any]] | Any | None = None) -> None:
    """Print rows in the chosen format (``records``: what ``json`` prints; default: one object per row)."""
    if fmt is Format.json:
        print_json(records if records is not None else [dict(zip((c.name for c in cols), row)) for row in rows])
    elif fmt is Format.tsv:
        sys.stdout.write(tsv_text(cols, rows))
        sys.stdout.flush()
    elif fmt is Format.csv:
        sys.stdout.write(csv_text(cols, rows))
        sys.stdout.flush()
    else:
        print_table(cols, rows, title=title)


def note(fmt: Format, text: str) -> None:
    """A line around a listing (a summary, a hint): on stdout for a table, on stderr for data formats
    (so a pipe receives only the rows), never for JSON."""
    if fmt is Format.table:
        console.print(esc(text), soft_wrap=True, highlight=False)
    elif fmt in (Format.tsv, Format.csv):
        typer.echo(neutralise(text), err=True)
