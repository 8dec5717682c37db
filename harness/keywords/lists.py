"""Keyword lists: load, validate, edit, search, export and select entries of ``keywords/*.yaml``.

Loading is built for large lists (100,000 entries in well under 3 s):

* Lists the harness writes (``import``, ``add`` into such a list, ``export``) put one entry
  per line as a JSON-compatible flow mapping (``  - {"term": "六四", "category": "june4"}``).
  :func:`read_list_document` reads such an ``entries:`` block with :mod:`json` (each line is
  checked to be the canonical form of what it parses to, so the result is exactly what YAML
  would give) and only the small header with YAML.
  The entries of such a block are built by :func:`harness.models.keywords_from_plain_json` when
  they are plain (the common case) and by pydantic-core otherwise; every error comes from Pydantic.
* Any other layout (hand-written block style, comments inside entries ...) is parsed once
  with the libyaml-accelerated loader when available, still refusing duplicate keys.
* Loading, validating and adding run with the cyclic garbage collector paused (:func:`_gc_paused`):
  the ~10^6 objects of a 100,000-entry list hold no cycles, and the collector re-walking them cost
  a third of the time.

Line numbers of entries are kept from the parse itself; the per-node lookup of
:class:`~harness.yamlio.LocatedYaml` runs only on error paths.

Why one piece (over 800 lines): validating, adding, searching and exporting all work on
the one parsed document and its line map: validation and search report ``file:line``
from the parse, and ``add`` writes entries in exactly the layout the fast reader reads.
Importers (:mod:`harness.keywords.importers`) and written variants
(:mod:`harness.keywords.variants`) are separate jobs and live apart.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import gc
import io
import json
import operator
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import TypeAdapter, ValidationError

from ..errors import InputError, KeywordListError, NotFoundError
from ..models import COMBINATION_JOINER, Keyword, KeywordList, KeywordSelection, keywords_from_plain_json
from ..yamlio import LocatedYaml, _construct_mapping, _describe, atomic_write_text, read_text
from .categories import CategoryCodebook, find_codebook, load_codebook
from .variants import _char_tables, fold

KEYWORDS_DIRNAME = "keywords"
MAX_PROBLEMS_PER_FILE = 1000

HOME_CSV_COLUMNS = ("keyword", "category_code", "category_description", "date_added", "source", "notes",
                    "script", "language", "translation", "components", "tags", "variants", "list")
"""Columns of the project's CSV form (modelled on citizenlab/test-lists, plus script/language/components).
``components`` are joined with `` + ``; ``tags`` and ``variants`` with ``;``."""

_F = TypeVar("_F", bound=Callable[..., Any])


def _gc_paused(fn: _F) -> _F:
    """Run ``fn`` with the cyclic garbage collector paused (and restored as it was after).

    Loading a 100,000-entry list allocates ~10^6 objects, none in a reference cycle; the collector,
    triggered every 700 allocations, would re-walk the growing heap again and again (~0.7 s of a
    2.2 s validation). Nothing is lost: reference counting still frees everything, and the next
    collection after ``fn`` sees what the pause deferred."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return fn(*args, **kwargs)
        finally:
            if was_enabled:
                gc.enable()
    return wrapper  # type: ignore[return-value]


@lru_cache(maxsize=1)
def _traditional_chars() -> frozenset[str]:
    return frozenset(chr(c) for c in _char_tables()[0])


def _fold_joined(normalised: str) -> str:
    """Character-level Traditional -> Simplified of already NFKC-normalised, case-folded text.

    Only the Traditional characters present are replaced (a regex over a small character class:
    far faster than ``str.translate`` or a class of all 4,000 characters)."""
    present = set(normalised) & _traditional_chars()
    if not present:
        return normalised
    table = _char_tables()[0]
    pattern = re.compile("[" + "".join(re.escape(c) for c in sorted(present)) + "]")
    return pattern.sub(lambda m: table[ord(m.group())], normalised)


_BaseCLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _FastUniqueKeyLoader(_BaseCLoader):  # type: ignore[misc,valid-type]
    """libyaml-backed safe loader (when available) that refuses duplicate mapping keys."""


_FastUniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def normalise_term(text: str) -> str:
    """The form used to decide that two entries are the same term (NFKC, case-folded, trimmed)."""
    return unicodedata.normalize("NFKC", text).strip().casefold()


def entry_key(entry: Keyword) -> tuple[str, ...]:
    """Identity of an entry: its normalised components, order-free for combinations."""
    comps = [normalise_term(c) for c in entry.components]
    return tuple(sorted(comps)) if len(comps) > 1 else tuple(comps)


def variant_key(components: Iterable[str]) -> tuple[str, ...]:
    """Identity shared by every written form of an entry (習近平 and 习近平): see :func:`harness.keywords.variants.fold`."""
    comps = [fold(c) for c in components]
    return tuple(sorted(comps)) if len(comps) > 1 else tuple(comps)


def bulk_keys(entries: list[Keyword]) -> tuple[list[tuple[str, ...]], list[tuple[str, ...]]]:
    """:func:`entry_key` and :func:`variant_key` of many entries at once (one normalisation pass
    over all components instead of one call per component: ~10x faster on 100,000 entries)."""
    if not entries:
        return [], []
    flat = [c for e in entries for c in e.components]
    if any("\n" in c for c in flat):  # cannot happen for validated entries (control characters)
        return [entry_key(e) for e in entries], [variant_key(e.components) for e in entries]
    joined = unicodedata.normalize("NFKC", "\n".join(flat)).casefold()
    joined = _SPACE_AROUND_NEWLINE.sub("\n", joined).strip()  # = .strip() of every component
    norm = joined.split("\n")
    folded = _fold_joined(joined).split("\n")
    if len(flat) == len(entries):  # no combinations: the common case
        return [(x,) for x in norm], [(x,) for x in folded]
    keys: list[tuple[str, ...]] = []
    vkeys: list[tuple[str, ...]] = []
    i = 0
    for n in map(len, (e.components for e in entries)):
        if n == 1:
            keys.append((norm[i],))
            vkeys.append((folded[i],))
        else:
            keys.append(tuple(sorted(norm[i:i + n])))
            vkeys.append(tuple(sorted(folded[i:i + n])))
        i += n
    return keys, vkeys


_SPACE_AROUND_NEWLINE = re.compile(r"[^\S\n]+\n|\n[^\S\n]+")


def form_components(form: str) -> list[str]:
    return [p.strip() for p in form.split(COMBINATION_JOINER)]


# --------------------------------------------------------------------------- reading


class ListDocument(LocatedYaml):
    """A parsed list file: data, the line of each entry, and lazy node lookup for other paths."""

    def __init__(self, path: Path, data: Any, root: yaml.Node | None, text: str, entry_lines: list[int],
                 one_line_entries: bool = False, entries_json: str | None = None):
        super().__init__(path, data, root)
        self.text = text
        self.entry_lines = entry_lines
        self.one_line_entries = one_line_entries
        self.entries_json = entries_json
        """The ``entries`` block as one JSON array (one entry per line), validated by pydantic-core
        directly; ``data["entries"]`` is then unused."""

    def line_of(self, loc: Any) -> int | None:
        loc = tuple(loc)
        if (self.one_line_entries and len(loc) >= 2 and loc[0] == "entries" and isinstance(loc[1], int)
                and loc[1] < len(self.entry_lines)):
            return self.entry_lines[loc[1]]
        if self.root is None:
            try:
                self.root = yaml.compose(self.text, Loader=_FastUniqueKeyLoader)
            except yaml.YAMLError:
                return None
        return super().line_of(loc)


_ITEM = re.compile(r"^( *)- (.+)$")
_YAML_LINE_BREAKS = re.compile("[\u2028\u2029\x85]")
_JSON = json.JSONEncoder(ensure_ascii=False)


def _escape_breaks(text: str) -> str:
    """YAML reads U+0085/2028/2029 as line breaks inside quotes; JSON leaves them raw, so escape them."""
    if _YAML_LINE_BREAKS.search(text) is None:
        return text
    return _YAML_LINE_BREAKS.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def json_line(obj: Any) -> str:
    """The canonical one-line form of an entry: JSON, which is also a YAML flow mapping."""
    return _escape_breaks(_JSON.encode(obj))


def _yaml_error(exc: yaml.YAMLError, path: Path) -> KeywordListError:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        return KeywordListError(f"invalid YAML: {problem}", path, mark.line + 1 if mark else None)
    return KeywordListError(f"invalid YAML: {exc}", path)


_FIRST_ITEM = re.compile(r"\r?\n( *)- ")


@lru_cache(maxsize=4)
def _pure_json_block(indent: str) -> re.Pattern[str]:
    return re.compile(r'(?:\r?\n%s- \{"[^\r\n]*\}[ \t]*)+\r?\n?' % re.escape(indent))


_FIELDS_SET = operator.attrgetter("__pydantic_fields_set__")


def _key_count(block: str) -> int:
    """How many object keys a JSON array of flat objects (values: strings, lists of strings)
    holds: every `": ` outside a string is a key; inside a string the quote is escaped."""
    return block.count('": ') - block.count('\\": ')
_BACKSLASHES_BEFORE = re.compile(r"(\\+)(?:/|u[dD][89a-fA-F])")
"""A run of backslashes before ``/`` or a surrogate ``uD8..uDF``: an escape when the run is odd."""


def _json_yaml_differ(block: str) -> bool:
    """Whether reading ``block`` as JSON could differ from YAML: tabs, raw YAML line breaks, and the
    backslash-slash and surrogate-pair escapes (an escape starts at a backslash after an even number
    of backslashes: ``"\\\\/"`` is a backslash and a slash, read alike). (A bare number is a number in
    both; the schema rejects it.) Substring tests first: a regex over 12 MB costs ~0.3 s."""
    if any(c in block for c in "\t\u2028\u2029\x85"):
        return True
    if "\\" not in block:
        return False
    # the regex finds the leftmost backslash of each run, so the run's length is its parity
    return any(len(m.group(1)) % 2 for m in _BACKSLASHES_BEFORE.finditer(block))
_ENTRIES_ADAPTER = TypeAdapter(list[Keyword])
_ITEM_LINE = re.compile(r"^( *)- (\S(?:[^\r\n]*\S)?)[ \t\r]*$", re.M)
_NOT_AN_ITEM_LINE = re.compile(r"^(?![ \t]*#)(?![ \t]*\r?$)(?! *- \S).*$", re.M)
_ITEM_NOT_JSON_OBJECT = re.compile(r"^ *- (?!\{\"[^\r\n]*\}[ \t]*\r?$)", re.M)
_BLANK_OR_COMMENT = re.compile(r"^[ \t]*(#.*)?\r?$", re.M)


def _entries_from_json(block: str) -> list[Keyword]:
    """The entries of a one-JSON-object-per-line block: the plain case in plain Python
    (:func:`~harness.models.keywords_from_plain_json`), anything else (including every error) by
    pydantic-core, whose errors are the ones reported. Raises ``ValidationError``."""
    try:
        objs = json.loads(block)
    except ValueError:
        objs = None
    entries = keywords_from_plain_json(objs) if objs is not None else None
    return entries if entries is not None else _ENTRIES_ADAPTER.validate_json(block)


def _fast_parse(text: str) -> tuple[dict[str, Any], list[int], str | None] | None:
    """Parse a list whose ``entries:`` block holds one single-line item per line; None otherwise.

    When every item is a JSON object (the layout the harness writes) the block is returned as
    one JSON array for pydantic-core to validate directly; other single-line items are parsed
    line by line."""
    m = re.search(r"^entries:[ \t]*\r?$", text, re.M)
    if m is None:
        return None
    head, start = text[: m.start()], m.end()
    try:
        header = yaml.load(head, Loader=_FastUniqueKeyLoader)
    except yaml.YAMLError:
        return None
    if header is None:
        header = {}
    if not isinstance(header, dict) or "entries" in header:
        return None
    first_line = head.count("\n") + 2
    first = _FIRST_ITEM.match(text, start)
    if first is not None and _pure_json_block(first.group(1)).fullmatch(text, start):
        # Only one-line JSON items, nothing else: split without a per-line loop, and copy the
        # entries once (a 12 MB file is 22 MB of text: every copy costs time and memory).
        separator = f"\n{first.group(1)}- "
        items = text.split(separator)
        del items[: text.count(separator, 0, start) + 1]  # the header (a separator cannot straddle `start`)
        items[0] = "[" + items[0]
        items[-1] += "]"
        block = ",".join(items)
        if not _json_yaml_differ(block):
            header["entries"] = None
            return header, list(range(first_line, first_line + len(items))), block
    body = text[start:]
    if _NOT_AN_ITEM_LINE.search(body):
        return None  # block-style entries, a later top-level key, tabs ...: the full parser decides
    items = _ITEM_LINE.findall(body)
    if len({indent for indent, _ in items}) > 1:
        return None
    contents = [c for _, c in items]
    body_lines = body.split("\n")[1:]
    if body_lines and body_lines[-1] == "":
        body_lines.pop()
    if len(body_lines) == len(contents):
        item_lines = list(range(first_line, first_line + len(contents)))
    else:
        item_lines = [first_line + i for i, ln in enumerate(body_lines) if not _BLANK_OR_COMMENT.fullmatch(ln)]
        if len(item_lines) != len(contents):
            return None
    if not _ITEM_NOT_JSON_OBJECT.search(body):
        block = "[\n" + ",\n".join(contents) + "\n]"
        if not _json_yaml_differ(block):
            header["entries"] = None
            return header, item_lines, block
    items_data = _parse_items(contents)
    if items_data is None:
        return None
    header["entries"] = items_data
    return header, item_lines, None


def _parse_items(contents: list[str]) -> list[Any] | None:
    """Single-line items one by one: canonical JSON lines with json, the rest with YAML."""
    items_data: list[Any] = []
    for content in contents:
        obj: Any = None
        if content.startswith("{"):
            try:
                obj = json.loads(content)
            except ValueError:
                obj = None
        if isinstance(obj, dict) and json_line(obj) == content:
            items_data.append(obj)
            continue
        try:
            items_data.append(yaml.load(content, Loader=_FastUniqueKeyLoader))
        except yaml.YAMLError:
            return None
    return items_data


def _full_parse(path: Path, text: str) -> ListDocument:
    loader = _FastUniqueKeyLoader(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, path) from None
    finally:
        loader.dispose()
    lines: list[int] = []
    if isinstance(root, yaml.MappingNode):
        for k, v in root.value:
            if isinstance(k, yaml.ScalarNode) and k.value == "entries" and isinstance(v, yaml.SequenceNode):
                lines = [n.start_mark.line + 1 for n in v.value]
    return ListDocument(path, data, root, text, lines)


def read_list_document(path: str | Path) -> ListDocument:
    """Parse a list file (no schema check); raise :class:`KeywordListError` with file:line."""
    path = Path(path)
    return parse_list_text(path, read_text(path, KeywordListError))


def parse_list_text(path: Path, text: str) -> ListDocument:
    """Parse the text of a list file (``path`` names it in errors)."""
    fast = _fast_parse(text)
    if fast is not None:
        data, lines, block = fast
        return ListDocument(path, data, None, text, lines, one_line_entries=True, entries_json=block)
    return _full_parse(path, text)


@dataclass(frozen=True)
class LoadedList:
    keyword_list: KeywordList
    path: Path
    doc: LocatedYaml
    entry_lines: tuple[int, ...] = ()

    @property
    def name(self) -> str:
        return self.keyword_list.name

    def line_of_entry(self, index: int) -> int | None:
        if index < len(self.entry_lines):
            return self.entry_lines[index]
        return self.doc.line_of(("entries", index))


def _schema_errors(doc: ListDocument) -> tuple[KeywordList | None, list[InputError]]:
    if doc.data is None:
        return None, [KeywordListError("the file is empty", doc.path, 1)]
    if not isinstance(doc.data, dict):
        return None, [KeywordListError(f"expected a mapping at the top level, found {type(doc.data).__name__}", doc.path, 1)]
    errors: list[InputError] = []
    data = doc.data
    if doc.entries_json is not None:
        try:
            entries: list[Keyword] = _entries_from_json(doc.entries_json)
        except ValidationError as exc:
            if any(e.get("type") == "json_invalid" for e in exc.errors()):
                # Not JSON after all (e.g. an unquoted value): read the file the general way.
                try:
                    slower = _full_parse(doc.path, doc.text)
                except KeywordListError as err:
                    return None, [err]
                return _schema_errors(slower)
            entries = []
            for e in exc.errors()[:MAX_PROBLEMS_PER_FILE]:
                loc = ("entries", *e.get("loc", ()))
                errors.append(KeywordListError(_describe({**e, "loc": loc}), doc.path, doc.line_of(loc)))
        else:
            if _key_count(doc.entries_json) != sum(map(len, map(_FIELDS_SET, entries))):
                # a key given twice in one entry (JSON keeps the last): let YAML report it
                try:
                    slower = _full_parse(doc.path, doc.text)
                except KeywordListError as err:
                    return None, [err]
                return _schema_errors(slower)
        data = {**data, "entries": []}
    try:
        kl = KeywordList.model_validate(data)
        if doc.entries_json is not None:
            # already validated; passing them through model_validate would run every validator again
            kl = kl.model_copy(update={"entries": entries})
    except ValidationError as exc:
        errs = exc.errors()
        errors.extend(KeywordListError(_describe(e), doc.path, doc.line_of(e.get("loc", ())))
                      for e in errs[:MAX_PROBLEMS_PER_FILE])
        return None, errors
    return (None, errors) if errors else (kl, [])


@_gc_paused
def load_keyword_list(path: str | Path) -> LoadedList:
    """Load and validate one keyword list file; raise :class:`KeywordListError` naming file:line."""
    return _load_from_doc(read_list_document(path))


def _load_from_doc(doc: ListDocument) -> LoadedList:
    kl, errors = _schema_errors(doc)
    if kl is None:
        first = errors[0]
        more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
        raise KeywordListError(first.message + more, first.path, first.line)
    loaded = LoadedList(kl, doc.path, doc, tuple(doc.entry_lines))
    for problem in _duplicates_within(loaded):
        raise KeywordListError(problem.message, problem.path, problem.line)
    return loaded


# --------------------------------------------------------------------------- validation


Level = Literal["error", "warning", "info"]


@dataclass(frozen=True)
class Problem:
    path: str
    line: int | None
    level: Level
    code: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.level}: {self.message}"

    def to_json(self) -> dict[str, Any]:
        return {"file": self.path, "line": self.line, "level": self.level, "code": self.code, "message": self.message}


def _duplicates_within(loaded: LoadedList, keys: list[tuple[str, ...]] | None = None) -> Iterator[Problem]:
    """Two entries may not be the same term after NFKC and case-folding; a declared variant may
    not repeat its own entry exactly, nor be another entry of the list."""
    seen: dict[tuple[str, ...], int] = {}
    path = str(loaded.path)
    entries = loaded.keyword_list.entries
    if keys is None:
        keys = bulk_keys(entries)[0]
    for i, key in enumerate(keys):
        if key in seen:
            yield Problem(path, loaded.line_of_entry(i), "error", "duplicate",
                          f"duplicate term {entries[i].term!r} (first at line {loaded.line_of_entry(seen[key])})")
        else:
            seen[key] = i
    for i, entry in enumerate(entries):
        for form in entry.variants:
            comps = form_components(form)
            if sorted(comps) == sorted(entry.components):
                yield Problem(path, loaded.line_of_entry(i), "error", "duplicate",
                              f"variant {form!r} repeats the entry itself")
                continue
            j = seen.get(entry_key(Keyword(components=comps)))
            if j is not None and j != i:
                yield Problem(path, loaded.line_of_entry(i), "error", "duplicate",
                              f"variant {form!r} is also an entry (line {loaded.line_of_entry(j)})")


@dataclass
class ListSummary:
    file: str
    name: str
    entries: int


@dataclass
class ValidationReport:
    lists: list[ListSummary] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    codebook: str | None = None

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.level == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.level == "warning"]


def expand_paths(paths: Iterable[Path]) -> list[Path]:
    files: list[Path] = []
    for p in paths:
        files.extend(iter_list_files(p) if p.is_dir() else [p])
    return files


@_gc_paused
def validate_lists(files: list[Path], codebook_path: Path | None = None) -> ValidationReport:
    """Check lists: schema, duplicates within and across lists, written variants (info),
    declared-variant collisions, unknown categories. Every problem carries file:line."""
    report = ValidationReport()
    codebook: CategoryCodebook | None = None
    cb_path = codebook_path or find_codebook(files)
    if cb_path is not None:
        try:
            codebook = load_codebook(cb_path)
            report.codebook = str(cb_path)
        except InputError as exc:
            report.problems.append(Problem(exc.path or str(cb_path), exc.line, "error", "codebook", exc.message))
    codes = codebook.codes if codebook else None

    across: dict[tuple[str, ...], tuple[str, int | None, str]] = {}
    written: dict[tuple[str, ...], tuple[str, int | None, str, tuple[str, ...]]] = {}
    for n, f in enumerate(files, 1):
        later_lists = n < len(files)  # only they need this list's keys
        try:
            doc = read_list_document(f)
        except InputError as exc:
            report.problems.append(Problem(exc.path or str(f), exc.line, "error", "syntax", exc.message))
            continue
        kl, errors = _schema_errors(doc)
        for e in errors:
            report.problems.append(Problem(e.path or str(f), e.line, "error", "schema", e.message))
        if kl is None:
            continue
        loaded = LoadedList(kl, doc.path, doc, tuple(doc.entry_lines))
        report.lists.append(ListSummary(str(f), kl.name, len(kl.entries)))
        keys, vkeys = bulk_keys(kl.entries)
        report.problems.extend(_duplicates_within(loaded, keys))
        path = str(f)
        entries = kl.entries
        lines = list(loaded.entry_lines) if len(loaded.entry_lines) == len(entries) else [
            loaded.line_of_entry(i) for i in range(len(entries))]
        # Set operations and dict(zip(...)) do the per-entry work in C; Python loops run only
        # over the entries that have a problem.
        if codes is not None:
            unknown = {e.category for e in entries} - codes - {""}
            if unknown:
                for i, e in enumerate(entries):
                    if e.category in unknown:
                        report.problems.append(Problem(path, lines[i], "error", "unknown_category",
                                                       f"unknown category {e.category!r} (not in {cb_path})"))
        first_of_key = dict(zip(reversed(keys), reversed(range(len(keys)))))
        clash = across.keys() & first_of_key.keys()
        for key in sorted(clash, key=first_of_key.__getitem__):
            i = first_of_key[key]
            other = across[key]
            # the same rule in two lists is normal (two researchers' per-platform lists): a
            # warning; the run probes it once per probe set and `run` accepts it
            report.problems.append(Problem(path, lines[i], "warning", "duplicate_across",
                                           f"duplicate term {entries[i].term!r}: also in {other[0]}:{other[1]} "
                                           f"(list {other[2]})"))
        for key, i in first_of_key.items() if later_lists else ():
            if key not in across:
                across[key] = (path, lines[i], kl.name)
        # written variants: same variant key, different identity
        first_of_vkey = dict(zip(reversed(vkeys), reversed(range(len(vkeys)))))
        candidates = [i for i, v in enumerate(vkeys) if first_of_vkey[v] != i]
        candidates += [i for v, i in first_of_vkey.items() if v in written]
        for i in sorted(set(candidates)):
            if first_of_key[keys[i]] != i:
                continue  # a duplicate of an earlier entry, already reported
            seen = written.get(vkeys[i])
            j = first_of_vkey[vkeys[i]]
            if j != i:
                seen = (path, lines[j], entries[j].term, keys[j])
            if seen is None or seen[3] == keys[i]:
                continue
            where = f"line {seen[1]}" if seen[0] == path else f"{seen[0]}:{seen[1]}"
            report.problems.append(Problem(path, lines[i], "info", "written_variant",
                                           f"{entries[i].term!r} is another written form of {seen[2]!r} ({where}): "
                                           "one entry in two forms, probed separately"))
        for v, j in first_of_vkey.items() if later_lists else ():
            if v not in written:
                written[v] = (path, lines[j], entries[j].term, keys[j])
    return report


# --------------------------------------------------------------------------- writing


def entry_to_dict(entry: Keyword) -> dict[str, Any]:
    """An entry as the mapping the harness writes (empty fields left out, term or components first)."""
    d: dict[str, Any] = {}
    if entry.is_combination:
        d["components"] = list(entry.components)
        if entry.term != COMBINATION_JOINER.join(entry.components):
            d["term"] = entry.term
    else:
        d["term"] = entry.term
    for name in ("category", "tags", "script", "language", "translation", "source", "date_added", "notes", "variants"):
        value = getattr(entry, name)
        if value in (None, "", []):
            continue
        d[name] = value.isoformat() if isinstance(value, dt.date) else (list(value) if isinstance(value, list) else value)
    return d


def render_list_yaml(kl: KeywordList, header_comments: Iterable[str] = ()) -> str:
    """A whole list as YAML: header fields, then one JSON-compatible entry per line."""
    out = [f"# {c}" for c in header_comments]
    if out:
        out.append("")
    out.append(f"name: {json.dumps(kl.name, ensure_ascii=False)}")
    for name in ("description", "source", "licence", "attribution"):
        value = getattr(kl, name)
        if value:
            out.append(f"{name}: {json_line(value)}")
    if kl.categories:
        out.append(f"categories: {json.dumps(kl.categories, ensure_ascii=False)}")
    out.append("entries:")
    out.extend(f"  - {json_line(entry_to_dict(e))}" for e in kl.entries)
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- add (in place)


@dataclass
class AddResult:
    path: Path
    line: int
    entry: Keyword
    notes: list[str] = field(default_factory=list)


def _block_lines(entry: dict[str, Any], indent: str) -> list[str]:
    lines = []
    for i, (k, v) in enumerate(entry.items()):
        if isinstance(v, list):
            value = "[" + ", ".join(json.dumps(x, ensure_ascii=False) for x in v) + "]"
        else:
            value = json_line(v)
        lines.append(f"{indent}{'- ' if i == 0 else '  '}{k}: {value}")
    return lines


@_gc_paused
def add_entry(path: str | Path, entry: Keyword) -> AddResult:
    """Append one entry to a list file in place, byte for byte unchanged elsewhere (comments,
    order, quoting, line endings, BOM). Refuses duplicates; notes written variants."""
    path = Path(path)
    raw = path.read_bytes()
    bom = raw.startswith(b"\xef\xbb\xbf")
    text = read_text(path, KeywordListError)
    newline = "\r\n" if "\r\n" in text else "\n"
    loaded = _load_from_doc(parse_list_text(path, text))
    entries = loaded.keyword_list.entries
    key = entry_key(entry)
    keys, vkeys = bulk_keys(entries)
    for i, e in enumerate(entries):
        if key == keys[i] or (e.variants and key in [entry_key(Keyword(components=form_components(v)))
                                                     for v in e.variants]):
            raise KeywordListError(f"{entry.term!r} is already in the list (line {loaded.line_of_entry(i)})", path)
    vkey = variant_key(entry.components)
    notes = [f"{entry.term!r} is another written form of {entries[i].term!r} (line {loaded.line_of_entry(i)})"
             for i, v in enumerate(vkeys) if v == vkey]
    as_dict = entry_to_dict(entry)
    doc = loaded.doc
    if isinstance(doc, ListDocument) and doc.one_line_entries and doc.entry_lines:
        # One entry per line (the layout the harness writes): no YAML node tree needed.
        lines = text.split("\n")
        at = doc.entry_lines[-1]
        last = lines[at - 1]
        indent = last[: len(last) - len(last.lstrip(" "))]
        new_lines = [f"{indent}- {json_line(as_dict)}"]
        new_text, new_line = _insert_lines(text, lines, at, new_lines, newline)
        # The rest of the file is untouched and was just validated; check the one new line.
        if entry_key(Keyword.model_validate(json.loads(new_lines[0].strip()[2:]))) != key:
            raise KeywordListError("internal error: the new line does not read back as the entry", path)
        atomic_write_text(path, ("\ufeff" if bom else "") + new_text)
        return AddResult(path, new_line, entry, notes)
    root = yaml.compose(text, Loader=_FastUniqueKeyLoader)
    seq = next((v for k, v in root.value if isinstance(k, yaml.ScalarNode) and k.value == "entries"), None)
    if not isinstance(seq, yaml.SequenceNode):
        raise KeywordListError("the list has no `entries:` sequence", path)
    as_dict = entry_to_dict(entry)
    lines = text.split("\n")
    if not seq.value:
        if not seq.flow_style:
            raise KeywordListError("cannot locate the empty `entries:` sequence", path)
        # `entries: []` becomes a block sequence: the one existing line that changes.
        start, end = seq.start_mark, seq.end_mark
        if start.line != end.line:
            raise KeywordListError("`entries: [...]` spans several lines; rewrite it as a block list first", path)
        item = f"  - {json_line(as_dict)}"
        line_text = lines[start.line]
        cr = "\r" if line_text.endswith("\r") else ""
        body = line_text[: start.column].rstrip() + line_text[end.column:].rstrip("\r")
        lines[start.line] = body.rstrip() + cr
        lines.insert(start.line + 1, item + cr)
        new_text = "\n".join(lines)
        new_line = start.line + 2
    else:
        if seq.flow_style:
            raise KeywordListError("`entries` is written as a flow sequence [...]; rewrite it as a block list first", path)
        last = seq.value[-1]
        end_index = _deepest_end(last)
        line_no = text.count("\n", 0, end_index)
        if end_index > 0 and text[end_index - 1] == "\n":
            line_no -= 1  # a block scalar ends at the start of the next line
        item_line = lines[last.start_mark.line]
        dash = item_line.rfind("-", 0, last.start_mark.column)
        indent = " " * (dash if dash >= 0 else 2)
        if isinstance(last, yaml.MappingNode) and not last.flow_style:
            new_lines = _block_lines(as_dict, indent)
        else:
            new_lines = [f"{indent}- {json_line(as_dict)}"]
        at = line_no + 1
        new_text, new_line = _insert_lines(text, lines, at, new_lines, newline)
    return _commit_add(path, bom, new_text, loaded, key, entry, new_line, notes)


def _commit_add(path: Path, bom: bool, new_text: str, loaded: LoadedList, key: tuple[str, ...], entry: Keyword,
                new_line: int, notes: list[str]) -> AddResult:
    """Check the edited text before it atomically replaces the file."""
    try:
        check = _load_from_doc(parse_list_text(path, new_text)).keyword_list
    except KeywordListError as exc:  # pragma: no cover - a bug, not a user error
        raise KeywordListError(f"internal error: the edited list would not load ({exc.message})", path) from None
    if len(check.entries) != len(loaded.keyword_list.entries) + 1 or entry_key(check.entries[-1]) != key:
        raise KeywordListError("internal error: the new entry did not land at the end of `entries`", path)
    atomic_write_text(path, ("\ufeff" if bom else "") + new_text)
    return AddResult(path, new_line, entry, notes)


def _insert_lines(text: str, lines: list[str], at: int, new_lines: list[str], newline: str) -> tuple[str, int]:
    """Insert ``new_lines`` after line ``at`` (1-based), keeping the file's line endings; the
    new text and the new entry's line. A file without a final newline keeps not having one."""
    if at >= len(lines):
        return text + newline + newline.join(new_lines), at + 1
    cr = "\r" if newline == "\r\n" else ""
    lines[at:at] = [ln + cr for ln in new_lines]
    return "\n".join(lines), at + 1


def _deepest_end(node: yaml.Node) -> int:
    if isinstance(node, yaml.ScalarNode) or getattr(node, "flow_style", False):
        return node.end_mark.index
    if isinstance(node, yaml.MappingNode):
        return max((_deepest_end(v) for kv in node.value for v in kv), default=node.end_mark.index)
    if isinstance(node, yaml.SequenceNode):
        return max((_deepest_end(v) for v in node.value), default=node.end_mark.index)
    return node.end_mark.index


# --------------------------------------------------------------------------- CSV


def keyword_from_home_row(row: dict[str, str]) -> Keyword:
    """One row of the project's CSV form as a keyword (raises pydantic ValidationError)."""
    def cell(name: str) -> str:
        return (row.get(name) or "").strip()

    def split(name: str) -> list[str]:
        return [p.strip() for p in cell(name).split(";") if p.strip()]

    data: dict[str, Any] = {"term": cell("keyword"), "category": cell("category_code")}
    if cell("components"):
        data["components"] = form_components(cell("components"))
    for name in ("source", "notes", "script", "language", "translation", "date_added"):
        if cell(name):
            data[name] = cell(name)
    data["tags"] = split("tags")
    data["variants"] = split("variants")
    return Keyword.model_validate(data)


def export_csv(lists: list[LoadedList], codebook: CategoryCodebook | None = None) -> str:
    buf = io.StringIO(newline="")
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(HOME_CSV_COLUMNS)
    for loaded in lists:
        for e in loaded.keyword_list.entries:
            cat = codebook.get(e.category) if codebook and e.category else None
            w.writerow([
                e.term, e.category, cat.name if cat else "", e.date_added.isoformat() if e.date_added else "",
                e.source or loaded.keyword_list.source or "", e.notes or "", e.script or "", e.language or "",
                e.translation or "", COMBINATION_JOINER.join(e.components) if e.is_combination else "",
                ";".join(e.tags), ";".join(e.variants), loaded.name,
            ])
    return buf.getvalue()


# --------------------------------------------------------------------------- stats and search


def list_stats(loaded: LoadedList) -> dict[str, Any]:
    entries = loaded.keyword_list.entries
    return {
        "file": str(loaded.path),
        "name": loaded.name,
        "entries": len(entries),
        "combinations": sum(e.is_combination for e in entries),
        "declared_variants": sum(len(e.variants) for e in entries),
        "categories": dict(Counter(e.category or "(none)" for e in entries).most_common()),
        "scripts": dict(Counter(e.script or "(unset)" for e in entries).most_common()),
        "sources": dict(Counter(e.source or loaded.keyword_list.source or "(none)" for e in entries).most_common(10)),
    }


MatchKind = Literal["term", "component", "variant", "variant_component"]


@dataclass(frozen=True)
class SearchHit:
    list_name: str
    path: str
    line: int | None
    term: str
    match: MatchKind
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"list": self.list_name, "file": self.path, "line": self.line, "term": self.term,
                "match": self.match, "detail": self.detail}


def search_lists(query: str, lists: list[LoadedList]) -> list[SearchHit]:
    """Which lists hold ``query``: as an entry, as a component of a combination, or as another
    written form (declared in ``variants``, or equal after folding Traditional/Simplified, width, case)."""
    q_comps = form_components(query)
    q_key = entry_key(Keyword(components=q_comps))
    q_fold = variant_key(q_comps)
    single = len(q_comps) == 1
    hits: list[SearchHit] = []
    for loaded in lists:
        for i, e in enumerate(loaded.keyword_list.entries):
            line = loaded.line_of_entry(i)
            hit = (loaded.name, str(loaded.path), line, e.term)
            if entry_key(e) == q_key:
                hits.append(SearchHit(*hit, "term"))
                continue
            declared = [v for v in e.variants if entry_key(Keyword(components=form_components(v))) == q_key]
            if declared:
                hits.append(SearchHit(*hit, "variant", f"declared variant {declared[0]!r}"))
                continue
            if variant_key(e.components) == q_fold:
                hits.append(SearchHit(*hit, "variant", "same entry in another written form"))
                continue
            if single and e.is_combination:
                if q_key[0] in (normalise_term(c) for c in e.components):
                    hits.append(SearchHit(*hit, "component"))
                elif q_fold[0] in (fold(c) for c in e.components):
                    hits.append(SearchHit(*hit, "variant_component", "a component in another written form"))
    return hits


# --------------------------------------------------------------------------- finding lists


def default_search_dirs(extra: Iterable[Path] = ()) -> list[Path]:
    """Where list names are looked up: given folders, ./keywords, then the curated lists that came
    with the harness (inside an installed package, ``harness/bundled/keywords``; in a source
    checkout or an editable install, the project's own ``keywords/``)."""
    package = Path(__file__).resolve().parents[1]
    candidates = [*(Path(p) for p in extra), Path.cwd() / KEYWORDS_DIRNAME, package / "bundled" / KEYWORDS_DIRNAME]
    if (package.parent / "pyproject.toml").is_file():
        candidates.append(package.parent / KEYWORDS_DIRNAME)
    dirs: list[Path] = []
    for d in candidates:
        if d.resolve() not in [x.resolve() for x in dirs]:
            dirs.append(d)
    return dirs


def find_list(name_or_path: str, search_dirs: Iterable[Path]) -> Path:
    """Resolve a list given by name (``leaders``) or by path (``lists/mine.yaml``)."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or "/" in name_or_path:
        if candidate.is_file():
            return candidate
        for d in search_dirs:
            if (d.parent / candidate).is_file():
                return d.parent / candidate
        raise NotFoundError(f"keyword list file not found: {name_or_path}")
    for d in search_dirs:
        for ext in (".yaml", ".yml"):
            p = d / f"{name_or_path}{ext}"
            if p.is_file():
                return p
    searched = ", ".join(str(d) for d in search_dirs)
    raise NotFoundError(f"unknown keyword list {name_or_path!r} (looked in {searched})")


def iter_list_files(directory: Path) -> Iterator[Path]:
    for ext in ("*.yaml", "*.yml"):
        yield from sorted(p for p in directory.glob(ext) if p.name != "categories.yaml")


def select_entries(loaded: LoadedList, selection: KeywordSelection) -> list[Keyword]:
    """The entries of a list that a probe-set selection asks for, in list order."""
    out: list[Keyword] = []
    for entry in loaded.keyword_list.entries:
        if selection.categories and entry.category not in selection.categories:
            continue
        if selection.tags and not set(selection.tags) & set(entry.tags):
            continue
        if selection.exclude_tags and set(selection.exclude_tags) & set(entry.tags):
            continue
        out.append(entry)
        if selection.limit and len(out) >= selection.limit:
            break
    return out
