"""Written variants of keywords: Traditional/Simplified, S+T concatenation, width, NFKC, pinyin.

Censors match strings, so the same entry written another way is a separate probe. A probe
set asks for variants by name (``ProbeSet.variants``); :func:`expand` turns one entry into
``(variant_name, keyword)`` pairs whose query differs from the entry's own query.

Two helpers serve dedup instead of probing: :func:`fold` maps every written form of one
entry (習近平, 习近平, full-width ＸＩ) to one key, using a character-level Traditional →
Simplified table so that loading 100,000 entries stays fast.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable
from functools import lru_cache
from pathlib import Path

from ..models import COMBINATION_JOINER, VARIANT_NAMES, Keyword

DECLARED = "declared"
"""Variant name recorded for a form declared in an entry's own ``variants`` field."""

_CJK_RANGES = ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x3134F))


def has_han(text: str) -> bool:
    return any(any(lo <= ord(ch) <= hi for lo, hi in _CJK_RANGES) for ch in text)


# --------------------------------------------------------------------------- OpenCC


@lru_cache(maxsize=2)
def _opencc(config: str):  # noqa: ANN202 - opencc has no type stubs
    import opencc

    return opencc.OpenCC(config)


@lru_cache(maxsize=1)
def _char_tables() -> tuple[dict[int, str], dict[int, str]]:
    """Character-level T→S and S→T tables from OpenCC's own dictionaries (first candidate)."""
    import opencc

    folder = Path(opencc.__file__).parent / "dictionary"

    def read(name: str) -> dict[int, str]:
        table: dict[int, str] = {}
        for line in (folder / name).read_text(encoding="utf-8").splitlines():
            src, _, targets = line.partition("\t")
            if len(src) == 1 and targets:
                first = targets.split(" ")[0]
                if first != src:
                    table[ord(src)] = first
        return table

    return read("TSCharacters.txt"), read("STCharacters.txt")


def to_simplified(text: str) -> str:
    """Traditional → Simplified with OpenCC's phrase-aware conversion."""
    return _opencc("t2s").convert(text)


def to_traditional(text: str) -> str:
    """Simplified → Traditional with OpenCC's phrase-aware conversion (头发 → 頭髮, 发展 → 發展)."""
    return _opencc("s2t").convert(text)


def to_halfwidth(text: str) -> str:
    """Full-width ASCII forms (ＡＢＣ１２３, U+3000) → ASCII; other characters unchanged."""
    out = []
    for ch in text:
        code = ord(ch)
        if code == 0x3000:
            out.append(" ")
        elif 0xFF01 <= code <= 0xFF5E:
            out.append(chr(code - 0xFEE0))
        else:
            out.append(ch)
    return "".join(out)


def to_fullwidth(text: str) -> str:
    """ASCII → full-width forms (evasion spelling such as ６４ or ＸＪＰ)."""
    out = []
    for ch in text:
        code = ord(ch)
        if code == 0x20:
            out.append("\u3000")
        elif 0x21 <= code <= 0x7E:
            out.append(chr(code + 0xFEE0))
        else:
            out.append(ch)
    return "".join(out)


def to_nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


def to_pinyin(text: str) -> str:
    """Toneless pinyin, syllables joined without spaces (习近平 → xijinping); non-Han text kept."""
    from pypinyin import lazy_pinyin

    return "".join(lazy_pinyin(text)).replace(" ", "")


def st_concat(text: str) -> str:
    """The Simplified+Traditional concatenation Citizen Lab used for names: 习近平 → 习近平習近平."""
    simplified, traditional = to_simplified(text), to_traditional(text)
    if simplified == traditional:
        return text
    return simplified + traditional


_COMPONENT_TRANSFORMS: dict[str, Callable[[str], str]] = {
    "traditional": to_traditional,
    "simplified": to_simplified,
    "st_concat": st_concat,
    "nfkc": to_nfkc,
    "halfwidth": to_halfwidth,
    "fullwidth": to_fullwidth,
    "pinyin": to_pinyin,
}
assert set(_COMPONENT_TRANSFORMS) == set(VARIANT_NAMES)


def generate(entry: Keyword, variant: str) -> Keyword | None:
    """The entry written as ``variant``, or None when that variant is identical to the entry.

    Each component is transformed on its own, so a combination stays a combination.
    """
    try:
        transform = _COMPONENT_TRANSFORMS[variant]
    except KeyError:
        raise ValueError(f"unknown variant {variant!r} (known: {', '.join(VARIANT_NAMES)})") from None
    comps = [transform(c).strip() for c in entry.components]
    if comps == entry.components or not all(comps):
        return None
    return _variant_keyword(entry, comps, variant)


def _variant_keyword(entry: Keyword, components: list[str], variant: str) -> Keyword:
    return Keyword(
        components=components,
        term=COMBINATION_JOINER.join(components),
        category=entry.category,
        tags=list(entry.tags),
        source=entry.source,
        notes=f"{variant} variant of {entry.term}",
    )


def declared_forms(entry: Keyword) -> list[Keyword]:
    """The entry's own declared forms (``variants: [...]``) as keywords to probe."""
    out = []
    for form in entry.variants:
        comps = [p.strip() for p in form.split(COMBINATION_JOINER)]
        if comps != entry.components:
            out.append(_variant_keyword(entry, comps, DECLARED))
    return out


def expand(entry: Keyword, variants: Iterable[str]) -> list[tuple[str, Keyword]]:
    """``(variant_name, keyword)`` for the declared forms, then each requested variant, with
    forms that repeat the entry or an earlier form left out (compared after :func:`fold`-free
    exact match of the query, since a platform sees exact strings)."""
    seen = {entry.term}
    out: list[tuple[str, Keyword]] = []
    for kw in declared_forms(entry):
        if kw.term not in seen:
            seen.add(kw.term)
            out.append((DECLARED, kw))
    for name in variants:
        kw = generate(entry, name)
        if kw is not None and kw.term not in seen:
            seen.add(kw.term)
            out.append((name, kw))
    return out


# --------------------------------------------------------------------------- folding for dedup


def fold(text: str) -> str:
    """One key for every written form of a term: NFKC, case-folded, character-level
    Traditional → Simplified. 習近平, 习近平 and ｘｉ share a key with their counterparts."""
    t2s, _ = _char_tables()
    return unicodedata.normalize("NFKC", text).strip().casefold().translate(t2s)


def detect_script(text: str) -> str | None:
    """A coarse script label: zh-Hans, zh-Hant, zh (characters common to both), mixed
    (both, e.g. an S+T concatenation), bo (Tibetan), ug (Arabic script), en (Latin), or None."""
    if any(0x0F00 <= ord(c) <= 0x0FFF for c in text):
        return "bo"
    if any(0x0600 <= ord(c) <= 0x06FF for c in text):
        return "ug"
    if has_han(text):
        t2s, s2t = _char_tables()
        traditional_chars = any(ord(c) in t2s for c in text)
        simplified_chars = any(ord(c) in s2t for c in text)
        if traditional_chars and simplified_chars:
            return "mixed"
        if traditional_chars:
            return "zh-Hant"
        if simplified_chars:
            return "zh-Hans"
        return "zh"
    if any(c.isascii() and c.isalpha() for c in text):
        return "en"
    return None
