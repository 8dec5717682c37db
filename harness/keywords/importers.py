"""Import keyword lists in the shapes researchers actually have them.

Shapes recognised by ``--format auto`` (see docs/keyword-lists.md for examples):

========== ==================================================================================
``rules``  one rule per line, components joined by ``" + "`` (Citizen Lab search/translator rules)
``plus``   one entry per line, components joined by ``"+"`` (WeChat, QQMail)
``lines``  one term per line (TOM-Skype, Sina UC, YY, 9158, LINE, games, MY2022, Apple)
``csv``    a CSV with a header: the project's own columns (``keyword, category_code, ...``) or
           a Citizen Lab layout (``Keyword``/``word``/``Result``/``Isolation``/``Person`` ...)
========== ==================================================================================

Inside any shape: ``A&B`` is read as a combination (presumed AND, flagged); in ``lines`` a
space between Han words (``先帝 病危``) is read as a combination *by inference* (flagged and
tagged ``inferred-combination``); Sina Show's `` N: keyword`` prefix is removed; ``//`` lines
are comments. Wildcards (``*``), regular expressions and other match patterns (``|``,
``$``) cannot be probed as keywords and are skipped with their reason, as are control
characters, duplicates, overlong terms and combinations of more than six components.

Two written forms of one entry (習近平 / 习近平) are merged: the first becomes the entry and
the later one is kept in the entry's ``variants`` (a declared variant, probed too).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from ..errors import KeywordListError
from ..models import COMBINATION_JOINER, MAX_TERM_LENGTH, Keyword, KeywordList
from ..yamlio import atomic_write_text, read_text
from .lists import HOME_CSV_COLUMNS, keyword_from_home_row, render_list_yaml
from .variants import detect_script, fold, has_han

FORMATS: tuple[str, ...] = ("auto", "rules", "plus", "lines", "csv")

MAX_COMPONENTS = 6
EXAMPLES_PER_REASON = 5
PLUS_SHARE = 0.3
"""A file is read as ``A+B`` combinations when at least this share of its lines use a bare ``+``;
below that a ``+`` is kept as part of the term (YY's 6+4, 63+1 are date evasions, not AND)."""

# Skip reasons (stable snake_case names used in reports and in bench/keywords/import_all.py).
SKIP_COMMENT = "comment"
SKIP_EMPTY = "empty"
SKIP_DUPLICATE = "duplicate"
SKIP_CONTROL = "control_character"
SKIP_WILDCARD = "wildcard"
SKIP_REGEX = "regular_expression"
SKIP_PATTERN = "match_pattern"
SKIP_TOO_LONG = "too_long"
SKIP_TOO_MANY = "too_many_components"
SKIP_EMPTY_COMPONENT = "empty_component"
SKIP_INVALID = "invalid_entry"

SKIP_EXPLANATIONS = {
    SKIP_COMMENT: "comment line (// ...)",
    SKIP_EMPTY: "blank line or empty keyword cell",
    SKIP_DUPLICATE: "exactly the same entry as an earlier line (combinations compared order-free)",
    SKIP_CONTROL: "contains a control character: cannot be typed into a search box as is",
    SKIP_WILDCARD: "wildcard rule (*): a matching pattern, not a keyword that can be probed",
    SKIP_REGEX: "regular expression: a matching pattern, not a keyword that can be probed",
    SKIP_PATTERN: "match pattern (| or $ between characters): not a keyword that can be probed",
    SKIP_TOO_LONG: f"longer than {MAX_TERM_LENGTH} characters",
    SKIP_TOO_MANY: f"combination of more than {MAX_COMPONENTS} components",
    SKIP_EMPTY_COMPONENT: "a combination with an empty component (A++B, trailing +)",
    SKIP_INVALID: "the entry fails the keyword schema",
}

# Flags: entries imported, but read in a way the user should know about.
FLAG_INFERRED = "inferred_combination"
FLAG_AMPERSAND = "ampersand_combination"
FLAG_MERGED = "merged_variant"
FLAG_PREFIX = "numbered_prefix_removed"
FLAG_LITERAL_PLUS = "literal_plus_kept"
FLAG_COMPONENT_COUNT = "component_count_mismatch"
FLAG_SPACED = "spaced_characters_kept"

FLAG_EXPLANATIONS = {
    FLAG_INFERRED: "space-joined words read as a combination (an inference: the source format is ambiguous)",
    FLAG_AMPERSAND: "A&B read as a combination (presumed AND)",
    FLAG_MERGED: "another written form (Traditional/Simplified, full/half width, case) of an earlier entry, kept as its declared variant",
    FLAG_PREFIX: "Sina Show ' N: ' level prefix removed",
    FLAG_LITERAL_PLUS: "'+' kept as part of the term (too rare in this file to be a combination syntax)",
    FLAG_COMPONENT_COUNT: "the file's component count column disagrees with the parsed components",
    FLAG_SPACED: "single characters separated by spaces (共 产 党, an evasion spelling) kept as one term",
}

_REGEX = re.compile(r"\.\*|\.\+|\.\?|\\[dDwWsSbB.()\[\]]|\(\?|\[[^\]]+\]|^\^|\(.*\|.*\)|\{\d+(,\d*)?\}")
_PATTERN = re.compile(r"[|$]")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_NUMBERED = re.compile(r"^ *\d+: ?")
_BARE_PLUS = re.compile(r"[^\s+]\+[^\s+]")
_AMP = re.compile(r"[^\s&]&(?!#\d+;|[a-zA-Z]+;)[^\s&]")
_HAN_SPACE = re.compile(r"\S\s+\S")


@dataclass
class Tally:
    count: int = 0
    examples: list[tuple[int, str]] = field(default_factory=list)

    def add(self, line: int, text: str) -> None:
        self.count += 1
        if len(self.examples) < EXAMPLES_PER_REASON:
            self.examples.append((line, text if len(text) <= 80 else text[:77] + "..."))


@dataclass
class ImportReport:
    path: str
    format: str
    detail: str
    rows: int = 0
    imported: int = 0
    merged: int = 0
    skipped: dict[str, Tally] = field(default_factory=dict)
    flags: dict[str, Tally] = field(default_factory=dict)
    ignored_columns: list[str] = field(default_factory=list)
    out: str | None = None

    def skip(self, reason: str, line: int, text: str) -> None:
        self.skipped.setdefault(reason, Tally()).add(line, text)

    def flag(self, name: str, line: int, text: str) -> None:
        self.flags.setdefault(name, Tally()).add(line, text)

    @property
    def skipped_total(self) -> int:
        return sum(t.count for t in self.skipped.values())

    def to_json(self) -> dict:
        def tallies(d: dict[str, Tally], explain: dict[str, str]) -> dict:
            return {
                k: {"count": t.count, "why": explain.get(k, k), "examples": [{"line": ln, "text": tx} for ln, tx in t.examples]}
                for k, t in sorted(d.items(), key=lambda kv: -kv[1].count)
            }

        return {
            "file": self.path, "format": self.format, "detail": self.detail, "rows": self.rows,
            "imported": self.imported, "merged_as_variants": self.merged, "skipped": self.skipped_total,
            "skipped_by_reason": tallies(self.skipped, SKIP_EXPLANATIONS),
            "flags": tallies(self.flags, FLAG_EXPLANATIONS),
            "ignored_columns": self.ignored_columns, "out": self.out,
        }


@dataclass
class ImportResult:
    keyword_list: KeywordList
    report: ImportReport


@dataclass
class _Row:
    line: int
    raw: str
    keyword: str
    translation: str | None = None
    category: str | None = None
    tags: list[str] = field(default_factory=list)
    language: str | None = None
    date: dt.date | None = None
    notes: list[str] = field(default_factory=list)
    combo_by_space: bool | None = None
    expected_components: int | None = None
    home: dict[str, str] | None = None


# --------------------------------------------------------------------------- reading


def _lines(text: str) -> list[tuple[int, str]]:
    return [(i, ln) for i, ln in enumerate(text.splitlines(), start=1)]


def _looks_like_csv(path: Path, text: str) -> bool:
    if path.suffix.lower() in (".csv", ".tsv"):
        return True
    first = text.split("\n", 1)[0].strip().lower()
    return "," in first and _keyword_column([c.strip().lower() for c in first.split(",")]) is not None


_KEYWORD_COLUMNS = ("keyword", "word", "keyword_combination", "keyword_added", "result", "isolation", "person",
                    "extenuating combination", "term")
_TRANSLATION_COLUMNS = ("human translation (if necessary)", "human translation (if neccessary)", "human_translation",
                        "translation", "english translation", "google translate", "machine translation",
                        "machine_translation", "machinese translation")
_DATE_COLUMNS = ("date tested", "date_tested", "date_added", "date", "detected_on", "earliest event date")
_NOTE_COLUMNS = ("notes", "note", "description", "pinyin", "source", "sources", "source2", "source3", "reference",
                 "sample", "media source", "article source", "article publish time")
_TAG_COLUMNS = ("category", "theme", "client", "clients", "lists", "group chat", "1-1 chat")


def _keyword_column(header: list[str]) -> int | None:
    for name in _KEYWORD_COLUMNS:
        if name in header:
            return header.index(name)
    return None


def _parse_date(value: str) -> dt.date | None:
    value = value.strip()
    if not value:
        return None
    for fmt in ("%Y-%m-%d", "%m/%d/%Y", "%m/%Y", "%Y/%m/%d", "%d.%m.%Y"):
        try:
            return dt.datetime.strptime(value, fmt).date()
        except ValueError:
            pass
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).date()
    except ValueError:
        return None


def _read_csv(path: Path, text: str, report: ImportReport) -> list[_Row]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header_raw = next(reader)
    except StopIteration:
        raise KeywordListError("the CSV file is empty", path, 1) from None
    except csv.Error as exc:
        raise KeywordListError(f"malformed CSV: {exc}", path, 1) from None
    header = [h.strip().lower() for h in header_raw]
    home = {"keyword", "category_code"} <= set(header)
    kcol = header.index("keyword") if home else _keyword_column(header)
    if kcol is None:
        raise KeywordListError(
            "no keyword column in the CSV header (looked for " + ", ".join(_KEYWORD_COLUMNS)
            + f"; found: {', '.join(h for h in header if h) or 'nothing'})", path, 1)
    report.detail = "project CSV (keyword, category_code, ...)" if home else f"CSV, keyword column {header_raw[kcol].strip()!r}"

    def first(names: tuple[str, ...]) -> int | None:
        return next((header.index(n) for n in names if n in header), None)

    tcol, dcol = first(_TRANSLATION_COLUMNS), first(_DATE_COLUMNS)
    lcol = header.index("language") if "language" in header else None
    typecol = header.index("keyword type") if "keyword type" in header else None
    ncomp = header.index("# of components") if "# of components" in header else None
    note_cols = [i for i, h in enumerate(header) if h in _NOTE_COLUMNS and i != kcol]
    tag_cols = [i for i, h in enumerate(header) if h in _TAG_COLUMNS and i != kcol]
    used = {kcol, tcol, dcol, lcol, typecol, ncomp, *note_cols, *tag_cols}
    if not home:
        report.ignored_columns = [header_raw[i].strip() for i in range(len(header)) if i not in used and header[i]]
    width = len(header)
    rows: list[_Row] = []
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise KeywordListError(f"malformed CSV: {exc}", path, start) from None
        if not any(c.strip() for c in cells):
            report.skip(SKIP_EMPTY, start, ",".join(cells))
            continue
        if len(cells) != width:
            # A trailing run of empty cells (Excel exports) is harmless; anything else is a broken row.
            if len(cells) > width and not any(c.strip() for c in cells[width:]):
                cells = cells[:width]
            else:
                raise KeywordListError(
                    f"wrong number of columns: {len(cells)} instead of {width} (header: {','.join(header_raw)})",
                    path, start)
        row = _Row(line=start, raw=cells[kcol], keyword=cells[kcol])
        if home:
            row.home = dict(zip(header, cells))
            rows.append(row)
            continue
        if tcol is not None and cells[tcol].strip():
            row.translation = cells[tcol].strip()
        if dcol is not None:
            row.date = _parse_date(cells[dcol])
        if lcol is not None and cells[lcol].strip():
            row.language = cells[lcol].strip()
        if typecol is not None:
            kind = cells[typecol].strip().lower()
            row.combo_by_space = kind == "combo"
        if ncomp is not None and cells[ncomp].strip().isdigit():
            row.expected_components = int(cells[ncomp].strip())
        for i in tag_cols:
            v = cells[i].strip()
            if v:
                for part in (p.strip() for p in v.split(";")):
                    if part:
                        row.tags.append(f"{header[i]}:{part}")
        for i in note_cols:
            v = cells[i].strip()
            if v:
                row.notes.append(f"{header_raw[i].strip()}: {v}")
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- shapes


def _detect_joiner(terms: list[str]) -> tuple[str, str]:
    """``(format, detail)`` for one-entry-per-line text."""
    n = max(1, len(terms))
    spaced = sum(COMBINATION_JOINER in t for t in terms)
    bare = sum(bool(_BARE_PLUS.search(t)) for t in terms)
    if spaced and spaced >= bare:
        return "rules", f"rules with ' + ' combinations ({spaced} of {len(terms)} lines)"
    if bare / n >= PLUS_SHARE:
        return "plus", f"'+'-joined combinations ({bare} of {len(terms)} lines)"
    return "lines", "one term per line"


def _split(row: _Row, fmt: str, report: ImportReport) -> tuple[list[str], bool] | None:
    """``(components, inferred)`` for one row, or None when the row was skipped (reason recorded)."""
    text = row.keyword.strip()
    inferred = False
    padded = f" {text} "  # so that a dangling joiner ("A +", "+ A") leaves an empty component
    if COMBINATION_JOINER in text or (fmt == "rules" and COMBINATION_JOINER in padded):
        parts = [p.strip() for p in padded.split(COMBINATION_JOINER)]
    elif fmt == "plus" and "+" in text:
        parts = [p.strip() for p in text.split("+")]
    elif _AMP.search(text):
        parts = [p.strip() for p in text.split("&")]
        report.flag(FLAG_AMPERSAND, row.line, text)
    elif row.combo_by_space is True:
        # WeChat "combo" rows: one space between components (one row uses "x" instead).
        parts = text.split() if " " in text else re.split(r"(?<=[^\x00-\x7f])x(?=[^\x00-\x7f])", text)
    elif row.combo_by_space is None and fmt in ("lines", "csv-lines") and " " in text and has_han(text):
        words = text.split()
        if all(len(w) == 1 for w in words):
            parts = [text]
            report.flag(FLAG_SPACED, row.line, text)
        else:
            parts = words
            inferred = True
            report.flag(FLAG_INFERRED, row.line, text)
    else:
        parts = [text]
        if fmt in ("lines", "csv-lines") and _BARE_PLUS.search(text):
            report.flag(FLAG_LITERAL_PLUS, row.line, text)
    if any(not p for p in parts):
        report.skip(SKIP_EMPTY_COMPONENT, row.line, text)
        return None
    if len(parts) > MAX_COMPONENTS:
        report.skip(SKIP_TOO_MANY, row.line, text)
        return None
    if row.expected_components is not None and row.expected_components != len(parts):
        report.flag(FLAG_COMPONENT_COUNT, row.line, text)
    return parts, inferred


def _show_controls(text: str) -> str:
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode(), text)


def _unprobeable(text: str) -> str | None:
    if _CONTROL.search(text):
        return SKIP_CONTROL
    if _REGEX.search(text):
        return SKIP_REGEX
    if "*" in text:
        return SKIP_WILDCARD
    if _PATTERN.search(text):
        return SKIP_PATTERN
    return None


# --------------------------------------------------------------------------- import


def import_file(
    path: str | Path,
    *,
    fmt: str = "auto",
    name: str | None = None,
    source: str | None = None,
    licence: str | None = None,
    attribution: str | None = None,
    category: str | None = None,
    description: str | None = None,
) -> ImportResult:
    """Read one file in any supported shape; nothing is written (see :func:`write_import`)."""
    path = Path(path)
    if fmt not in FORMATS:
        raise KeywordListError(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})", path)
    text = read_text(path, KeywordListError)  # undecodable bytes: file:line and the byte
    report = ImportReport(path=str(path), format=fmt, detail="")

    if fmt == "csv" or (fmt == "auto" and _looks_like_csv(path, text)):
        rows = _read_csv(path, text, report)
        report.format = "csv"
        if rows and rows[0].home is None:
            inner, _ = _detect_joiner([r.keyword.strip() for r in rows])
            row_fmt = {"rules": "rules", "plus": "plus", "lines": "csv-lines"}[inner]
            report.detail += {"rules": ", ' + ' combinations", "plus": ", '+'-joined combinations", "lines": ""}[inner]
        else:
            row_fmt = "home"
    else:
        rows = []
        lines = _lines(text)
        body = [(ln, t) for ln, t in lines if t.strip() and not t.strip().startswith("//")]
        numbered = bool(body) and sum(bool(_NUMBERED.match(t)) for _, t in body) >= 0.9 * len(body)
        for ln, t in lines:
            if not t.strip():
                continue
            if t.strip().startswith("//"):
                report.skip(SKIP_COMMENT, ln, t.strip())
                continue
            if numbered and _NUMBERED.match(t):
                t = _NUMBERED.sub("", t, count=1)
                report.flag(FLAG_PREFIX, ln, t)
            rows.append(_Row(line=ln, raw=t, keyword=t))
        detected, detail = _detect_joiner([r.keyword.strip() for r in rows])
        row_fmt = detected if fmt == "auto" else fmt
        report.format = row_fmt
        report.detail = detail + ("; Sina Show ' N: ' prefixes" if numbered else "")
    report.rows = len(rows) + sum(t.count for t in report.skipped.values())

    entries: list[Keyword] = []
    where: dict[tuple[str, ...], tuple[int, int]] = {}  # entry_key -> (index in entries, line)
    folded: dict[tuple[str, ...], int] = {}
    for row in rows:
        text = row.keyword.strip()
        if not text:
            report.skip(SKIP_EMPTY, row.line, row.raw)
            continue
        reason = _unprobeable(text)
        if reason:
            report.skip(reason, row.line, _show_controls(text) if reason == SKIP_CONTROL else text)
            continue
        try:
            if row_fmt == "home":
                kw = keyword_from_home_row(row.home or {})
            else:
                split = _split(row, row_fmt, report)
                if split is None:
                    continue
                parts, inferred = split
                if any(len(p) > MAX_TERM_LENGTH for p in parts) or len(text) > MAX_TERM_LENGTH:
                    report.skip(SKIP_TOO_LONG, row.line, text)
                    continue
                tags = list(dict.fromkeys(row.tags))
                notes = list(row.notes)
                if inferred:
                    tags.append("inferred-combination")
                    notes.append("components inferred from spaces (the source format is ambiguous)")
                kw = Keyword(
                    components=parts,
                    category=category or "",
                    tags=tags,
                    script=detect_script(text),
                    language=row.language,
                    translation=row.translation,
                    date_added=row.date,
                    notes="; ".join(notes) or None,
                )
        except ValidationError as exc:
            msg = exc.errors()[0].get("msg", "invalid").removeprefix("Value error, ")
            report.skip(SKIP_TOO_LONG if "longer than" in msg else SKIP_INVALID, row.line, f"{text} ({msg})")
            continue
        # Exact repeats are dropped; other written forms (width, case, Traditional/Simplified)
        # are different strings to a platform, so they are kept as declared variants.
        key = tuple(sorted(kw.components))
        if key in where:
            report.skip(SKIP_DUPLICATE, row.line, f"{text} (first at line {where[key][1]})")
            continue
        fkey = tuple(sorted(fold(c) for c in kw.components)) if kw.is_combination else (fold(kw.components[0]),)
        if fkey in folded:
            idx = folded[fkey]
            first = entries[idx]
            entries[idx] = first.model_copy(update={"variants": [*first.variants, kw.term]})
            where[key] = (idx, row.line)
            report.flag(FLAG_MERGED, row.line, f"{kw.term} -> {first.term}")
            report.merged += 1
            continue
        where[key] = (len(entries), row.line)
        folded[fkey] = len(entries)
        entries.append(kw)
    report.imported = len(entries)

    list_name = name or re.sub(r"[^\w.-]+", "_", path.stem).strip("_") or "imported"
    try:
        kl = KeywordList(
            name=list_name,
            description=description or f"Imported from {path.name} ({report.detail}).",
            source=source or path.name,
            licence=licence,
            attribution=attribution,
            categories=sorted({e.category for e in entries if e.category}),
            entries=entries,
        )
    except ValidationError as exc:
        msg = exc.errors()[0].get("msg", "invalid").removeprefix("Value error, ")
        raise KeywordListError(f"cannot build the list: {msg}", path) from None
    return ImportResult(kl, report)


def write_import(result: ImportResult, out: str | Path) -> None:
    """Write the imported list as YAML, atomically, with a header naming where it came from."""
    out = Path(out)
    r = result.report
    skipped = ", ".join(f"{k} {t.count}" for k, t in sorted(r.skipped.items(), key=lambda kv: -kv[1].count)) or "none"
    header = [
        f"Imported by `harness keywords import` from {Path(r.path).name} on {dt.date.today().isoformat()}.",
        f"Shape: {r.format} ({r.detail}). Imported {r.imported} of {r.rows} rows; skipped: {skipped}.",
        "Format: harness.models.KeywordList (docs/keyword-lists.md); one entry per line.",
    ]
    atomic_write_text(out, render_list_yaml(result.keyword_list, header_comments=header))
    r.out = str(out)


__all__ = ["FORMATS", "HOME_CSV_COLUMNS", "ImportReport", "ImportResult", "import_file", "write_import",
           "SKIP_EXPLANATIONS", "FLAG_EXPLANATIONS"]
