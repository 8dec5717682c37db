"""Benchmark texts built from real sentences: censorship rules embedded at random character offsets.

A *host* is a run of consecutive real sentences (:mod:`bench.isolation.realtext`) cut to a
length drawn uniformly from ``[min_len, max_len]`` characters. The components of the text's
rule(s) are inserted at offsets drawn uniformly over the host's characters, **without regard
to any segmenter's word boundaries** (an insertion may split a word of the host). The truth is
the embedded rule set; a component that also occurs in the host is allowed (it is the same
string, so the same rule).

Rules (:func:`load_ongoing`) are the Citizen Lab's ongoing search-censorship rules
(``search/ongoing/*.csv``: platform, first date seen; CC BY-NC-SA 4.0, read at run time from
``../shared/data/citizenlab/chat-censorship`` or ``$CITIZENLAB_DATA``, never copied here), or
*made-up* rules (:func:`made_up_rules`): components that are dictionary words or substrings of
other real sentences cut at random offsets (so some cut across words), sized like the real ones.
"""

from __future__ import annotations

import csv
import glob
import random
from dataclasses import dataclass, field
from pathlib import Path

from bench.isolation.corpus import Sample, _clean, _dominated, data_dir  # noqa: F401  (re-exported)


@dataclass
class OngoingRules:
    """Every ongoing rule with its platforms (``baidu`` = baidu.csv + baidu-soft.csv) and first date."""

    platforms: dict[tuple[str, ...], set[str]] = field(default_factory=dict)
    first_seen: dict[tuple[str, ...], str] = field(default_factory=dict)

    def of(self, platform: str) -> list[tuple[str, ...]]:
        return sorted(r for r, ps in self.platforms.items() if platform in ps)

    def not_of(self, platform: str) -> list[tuple[str, ...]]:
        return sorted(r for r, ps in self.platforms.items() if ps - {platform})

    def before(self, date: str) -> list[tuple[str, ...]]:
        return sorted(r for r, d in self.first_seen.items() if d < date)

    def since(self, date: str) -> list[tuple[str, ...]]:
        return sorted(r for r, d in self.first_seen.items() if d >= date)


def _canonical(rule: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(sorted(rule))


def load_ongoing(d: Path) -> OngoingRules:
    out = OngoingRules()
    for f in sorted(glob.glob(str(d / "search" / "ongoing" / "*.csv"))):
        platform = Path(f).stem.removesuffix("-soft")
        with open(f, encoding="utf-8-sig", newline="") as fh:
            for row in csv.DictReader(fh):
                r = _clean((row.get("Result") or "").split(" + "))
                if r is None:
                    continue
                r = _canonical(r)
                out.platforms.setdefault(r, set()).add(platform)
                date = row.get("Date") or ""
                if r not in out.first_seen or date < out.first_seen[r]:
                    out.first_seen[r] = date
    return out


def made_up_rules(sentences: tuple[str, ...], n: int, seed: int) -> list[tuple[str, ...]]:
    """Rules that no list has: half of the components are jieba dictionary words, half are
    substrings of real sentences cut at random offsets (often across words). Sizes follow the
    ongoing rules: 1 component 30 %, 2 60 %, 3 10 %; a one-component rule has 2+ characters."""
    from bench.isolation.corpus import _dict_words

    rng = random.Random(seed)
    words, _w = _dict_words()
    words = [w for w in words if 2 <= len(w) <= 4 and all("\u4e00" <= c <= "\u9fff" for c in w)]
    out: list[tuple[str, ...]] = []
    seen: set[tuple[str, ...]] = set()
    while len(out) < n:
        k = rng.choices((1, 2, 3), (30, 60, 10))[0]
        comps = []
        for _ in range(k):
            if rng.random() < 0.5:
                comps.append(rng.choice(words))
                continue
            while True:
                s = rng.choice(sentences)
                length = rng.choice((1, 2, 2, 3, 3, 4, 5)) if k > 1 else rng.choice((2, 3, 3, 4, 5))
                if len(s) <= length:
                    continue
                i = rng.randrange(len(s) - length)
                piece = s[i: i + length]
                if all("\u4e00" <= c <= "\u9fff" for c in piece):
                    comps.append(piece)
                    break
        r = _clean(comps)
        if r is None or len(r) != k:
            continue
        r = _canonical(r)
        if r not in seen:
            seen.add(r)
            out.append(r)
    return out


class Embedder:
    """Hosts from one genre's sentences, rules inserted at uniformly random character offsets."""

    def __init__(self, sentences: tuple[str, ...], seed: int, min_len: int = 40, max_len: int = 300,
                 repeat_share: float = 0.1) -> None:
        self.sentences = sentences
        self.rng = random.Random(seed)
        self.min_len = min_len
        self.max_len = max_len
        self.repeat_share = repeat_share

    def host(self, length: int) -> str:
        i = self.rng.randrange(len(self.sentences))
        parts: list[str] = []
        size = 0
        while size < length:
            s = self.sentences[i % len(self.sentences)]
            parts.append(s)
            size += len(s)
            i += 1
        return "".join(parts)[:length]

    def make(self, rules: list[tuple[str, ...]], kind: str) -> Sample:
        units = [c for r in rules for c in r]
        if self.rng.random() < self.repeat_share:
            units.append(self.rng.choice(units))  # a component written twice
        self.rng.shuffle(units)
        body = sum(map(len, units))
        length = max(self.rng.randint(self.min_len, self.max_len) - body, 10)
        host = self.host(length)
        cuts = sorted(self.rng.randrange(len(host) + 1) for _ in units)
        parts, prev = [], 0
        for c, u in zip(cuts, units):
            parts += [host[prev:c], u]
            prev = c
        parts.append(host[prev:])
        return Sample("".join(parts), [tuple(r) for r in rules], kind)


def pick_rules(pool: list[tuple[str, ...]], k: int, rng: random.Random) -> list[tuple[str, ...]]:
    """``k`` distinct rules of which none dominates another (so each one is observable)."""
    chosen: list[tuple[str, ...]] = []
    while len(chosen) < k:
        r = rng.choice(pool)
        if r in chosen or any(_dominated(r, o) or _dominated(o, r) for o in chosen):
            continue
        chosen.append(r)
    return chosen
