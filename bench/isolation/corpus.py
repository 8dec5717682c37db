"""Deterministic benchmark corpus: real censorship rules embedded in filler.

Rules are read at run time from the Citizen Lab data folder (never copied into
this repository): ``<repo>/../shared/data/citizenlab/chat-censorship``:

* ``search/rules/*.txt``  (search engines, components separated by " + ")
* ``coronavirus/wechat.csv`` (column keyword_combination, "+")
* ``wechat/709crackdown/all-keywords.csv`` (column Keyword, "+")

Filler is drawn from jieba's dictionary (dict.txt), words weighted by their
frequency.  Each text is checked so that components of its rules occur only
where they were inserted (the filler never contains a component by accident).
"""

from __future__ import annotations

import csv
import glob
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

REPO_ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = REPO_ROOT.parent / "shared" / "data" / "citizenlab" / "chat-censorship"


@dataclass
class Sample:
    text: str
    rules: list[tuple[str, ...]]  # embedded (= true) rules
    kind: str  # "single", "overlap", "multi2", "multi3"


def data_dir() -> Optional[Path]:
    env = os.environ.get("CITIZENLAB_DATA")
    d = Path(env) if env else DATA_DIR
    return d if d.is_dir() else None


def _clean(comps: list[str]) -> Optional[tuple[str, ...]]:
    out = []
    for c in comps:
        c = c.strip()
        if not c or any(ch.isspace() or ord(ch) < 32 or ch == "\x80" for ch in c):
            return None
        out.append(c)
    uniq = list(dict.fromkeys(out))
    red = [c for c in uniq if not any(c != d and c in d for d in uniq)]
    if not 1 <= len(red) <= 6 or sum(map(len, red)) > 40:
        return None
    return tuple(red)


def load_rules(d: Path) -> list[tuple[str, ...]]:
    return sorted(load_rule_sources(d))


def load_rule_sources(d: Path) -> dict[tuple[str, ...], set[str]]:
    """Every rule with the sources (lists) it appears in.

    A source is a platform's search-rule file with its ``-soft`` twin merged
    (``baidu`` = baidu.txt + baidu-soft.txt), ``wechat-covid`` or ``wechat-709``.
    """
    rules: dict[tuple[str, ...], set[str]] = {}
    for f in sorted(glob.glob(str(d / "search" / "rules" / "*.txt"))):
        source = Path(f).stem.removesuffix("-soft")
        with open(f, encoding="utf-8-sig") as fh:
            for line in fh:
                if line.strip():
                    r = _clean(line.strip().split(" + "))
                    if r:
                        rules.setdefault(r, set()).add(source)
    for rel, col, source in (("coronavirus/wechat.csv", "keyword_combination", "wechat-covid"),
                             ("wechat/709crackdown/all-keywords.csv", "Keyword", "wechat-709")):
        with open(d / rel, encoding="utf-8-sig", newline="") as fh:
            for row in csv.DictReader(fh):
                r = _clean((row.get(col) or "").split("+"))
                if r:
                    rules.setdefault(r, set()).add(source)
    return rules


def _dict_words() -> tuple[list[str], list[int]]:
    import jieba  # type: ignore[import-untyped]

    path = os.path.join(os.path.dirname(jieba.__file__), "dict.txt")
    words, weights = [], []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit() and int(parts[1]) > 0:
                words.append(parts[0])
                weights.append(int(parts[1]))
    return words, weights


def _overlap_pairs(rule: tuple[str, ...]) -> list[tuple[int, int, int]]:
    out = []
    for i, a in enumerate(rule):
        for j, b in enumerate(rule):
            if i != j:
                for k in range(min(len(a), len(b)) - 1, 0, -1):
                    if a[-k:] == b[:k]:
                        out.append((i, j, k))
                        break
    return out


def _dominated(r2: tuple[str, ...], r1: tuple[str, ...]) -> bool:
    """True when r1 present always implies... r2 present implies r1 present."""
    return all(any(a in b for b in r2) for a in r1)


def _idf_words() -> tuple[list[str], list[int]]:
    """Words of jieba's ``analyse/idf.txt`` weighted by document frequency (exp(-idf)).

    A robustness filler: the IDF table was computed on a different corpus than
    dict.txt's frequencies, so priors calibrated on jieba's frequencies meet a
    word distribution they were not fitted to.
    """
    import math

    import jieba  # type: ignore[import-untyped]

    path = os.path.join(os.path.dirname(jieba.__file__), "analyse", "idf.txt")
    words, weights = [], []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) == 2:
                w = int(round(1e6 * math.exp(-float(parts[1]))))
                if w > 0:
                    words.append(parts[0])
                    weights.append(w)
    return words, weights


class Generator:
    def __init__(self, rules: list[tuple[str, ...]], seed: int, filler: str = "dict") -> None:
        self.rng = random.Random(seed)
        self.rules = rules
        self.overlap_rules = [r for r in rules if _overlap_pairs(r)]
        self.words, w = _idf_words() if filler == "idf" else _dict_words()
        self.cum: list[int] = []
        t = 0
        for x in w:
            t += x
            self.cum.append(t)

    def _filler(self, n: int) -> list[str]:
        ws = self.rng.choices(self.words, cum_weights=self.cum, k=max(1, n // 2 + 5))
        out, size = [], 0
        for w in ws:
            if size >= n:
                break
            out.append(w)
            size += len(w)
        return out

    def _units(self, rule: tuple[str, ...], overlap: bool, repeat: bool) -> list[str]:
        units = list(rule)
        if overlap:
            i, j, k = self.rng.choice(_overlap_pairs(rule))
            merged = rule[i] + rule[j][k:]
            units = [u for n, u in enumerate(rule) if n not in (i, j)] + [merged]
        if repeat:
            units.append(self.rng.choice(units))
        self.rng.shuffle(units)
        return units

    def make(self, kind: str, length: int) -> Optional[Sample]:
        n_rules = {"single": 1, "overlap": 1, "multi2": 2, "multi3": 3}[kind]
        pool = self.overlap_rules if kind == "overlap" else self.rules
        chosen: list[tuple[str, ...]] = []
        while len(chosen) < n_rules:
            r = self.rng.choice(pool)
            if r in chosen or any(_dominated(r, o) or _dominated(o, r) for o in chosen):
                continue
            chosen.append(r)
        units: list[str] = []
        for r in chosen:
            units += self._units(r, kind == "overlap", self.rng.random() < 0.15)
        comps = {c for r in chosen for c in r}
        body = sum(map(len, units))
        if body > length - 10:
            return None
        for _attempt in range(20):
            filler = self._filler(length - body)
            slots = sorted(self.rng.randrange(len(filler) + 1) for _ in units)
            parts: list[str] = []
            spans: list[tuple[int, int]] = []
            pos, ui = 0, 0
            for fi in range(len(filler) + 1):
                while ui < len(units) and slots[ui] == fi:
                    parts.append(units[ui])
                    spans.append((pos, pos + len(units[ui])))
                    pos += len(units[ui])
                    ui += 1
                if fi < len(filler):
                    parts.append(filler[fi])
                    pos += len(filler[fi])
            text = "".join(parts)
            ok = True
            for c in comps:
                k = text.find(c)
                while k != -1 and ok:
                    if not any(a <= k and k + len(c) <= b for a, b in spans):
                        ok = False
                    k = text.find(c, k + 1)
            if ok:
                return Sample(text, chosen, kind)
        return None


def build_corpus(seed: int = 2019, n_single: int = 900, n_overlap: int = 100,
                 n_multi2: int = 150, n_multi3: int = 100, filler: str = "dict") -> list[Sample]:
    """``filler="idf"``: words weighted by jieba's IDF table instead of dict.txt (robustness check)."""
    d = data_dir()
    if d is None:
        raise FileNotFoundError(str(DATA_DIR))
    gen = Generator(load_rules(d), seed, filler)
    out: list[Sample] = []
    for kind, n in (("single", n_single), ("overlap", n_overlap),
                    ("multi2", n_multi2), ("multi3", n_multi3)):
        made = 0
        while made < n:
            s = gen.make(kind, gen.rng.randint(50, 500))
            if s is not None:
                out.append(s)
                made += 1
    return out
