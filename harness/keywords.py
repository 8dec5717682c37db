"""Keyword lists: load, validate and select entries from ``keywords/*.yaml``."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .errors import KeywordListError, NotFoundError
from .models import Keyword, KeywordList, KeywordSelection
from .yamlio import LocatedYaml, load_model

KEYWORDS_DIRNAME = "keywords"


def normalise_term(text: str) -> str:
    """The form used to decide that two entries are the same term (NFKC, case-folded, trimmed)."""
    return unicodedata.normalize("NFKC", text).strip().casefold()


def entry_key(entry: Keyword) -> tuple[str, ...]:
    """Identity of an entry: its normalised components, order-free for combinations."""
    comps = [normalise_term(c) for c in entry.components]
    return tuple(sorted(comps)) if len(comps) > 1 else tuple(comps)


@dataclass(frozen=True)
class LoadedList:
    keyword_list: KeywordList
    path: Path
    doc: LocatedYaml

    @property
    def name(self) -> str:
        return self.keyword_list.name

    def line_of_entry(self, index: int) -> int | None:
        return self.doc.line_of(("entries", index))


def load_keyword_list(path: str | Path) -> LoadedList:
    """Load and validate one keyword list file; raise :class:`KeywordListError` naming file:line."""
    path = Path(path)
    kl, doc = load_model(path, KeywordList, KeywordListError)
    seen: dict[tuple[str, ...], int] = {}
    for i, entry in enumerate(kl.entries):
        key = entry_key(entry)
        if key in seen:
            first = doc.line_of(("entries", seen[key]))
            raise KeywordListError(
                f"duplicate term {entry.term!r} (first at line {first})", path, doc.line_of(("entries", i))
            )
        seen[key] = i
    return LoadedList(kl, path, doc)


def default_search_dirs(extra: Iterable[Path] = ()) -> list[Path]:
    """Where list names are looked up: given folders, ./keywords, then the project's own keywords/."""
    candidates = [*(Path(p) for p in extra), Path.cwd() / KEYWORDS_DIRNAME,
                  Path(__file__).resolve().parent.parent / KEYWORDS_DIRNAME]
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
