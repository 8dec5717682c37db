"""Where a text's keyword components probably start and end: the isolation's prior-free text model.

Nothing here knows a keyword. Everything comes from jieba (its two cuts of the text, with and
without its HMM, and its dictionary's word frequencies and part-of-speech tags) and from
tables fitted by ``bench/isolation/fit_priors.py`` (:mod:`harness.isolation.fitted_tables`).
The model is a pure function of the text: the same text gives the same probabilities.

**Why boundaries say something.** A censored text is ordinary writing with a few strings in it
that a platform's list names. Those strings can land anywhere: between two words, or in the
middle of one (``经济`` cut into ``经|法轮功|济``). The text model looks at each character
offset for the traces such a string leaves, traces that hold in any genre because they are
about how Chinese words are built, not about topics:

* *cohesion across the offset*: how frequent is the most frequent dictionary word that would
  span it (a high value means the offset is inside an ordinary word, so rarely a start);
* *a word re-joined across a span*: the characters just before the offset and those just after
  a candidate end form a dictionary word (``经`` + ``济``), as when a string was dropped into it;
* *a broken neighbour*: the word before the offset is a single character that is rare on its own;
* *the word that starts here*: its jieba frequency, length, script and part of speech (names,
  rare words and traditional characters are likelier components than function words), and
  which cut has a boundary here.

``start_probabilities(text)`` gives, per offset, the probability that a component starts
there (a logistic model over those features); ``end_scores(text, x, ends)`` the relative
chance of each candidate end of a component that starts at ``x`` (a conditional logit).
The searches in :mod:`harness.isolation.algorithm` turn them into probe orders; they never
decide an answer, so a wrong guess costs queries, never exactness.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Bounds", "boundary_features", "end_scores", "start_probabilities"]


# --------------------------------------------------------------------------- jieba


@functools.lru_cache(maxsize=1)
def _jieba() -> tuple[dict[str, int], dict[str, str]]:
    """jieba's dictionary frequencies and part-of-speech tags (loaded once)."""
    import jieba  # type: ignore[import-untyped]
    import jieba.posseg  # type: ignore[import-untyped]

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba.dt.FREQ, jieba.posseg.dt.word_tag_tab


@dataclass
class Bounds:
    """Word boundaries of a text under jieba with HMM (``H``) and without (``N``)."""

    starts: list[int]
    start_set: set[int]
    kind: dict[int, str]  # start -> "H" (an HMM word starts here) or "N" (only the no-HMM cut)
    tok_end: dict[int, int]  # start -> end of the word starting there
    freq: dict[int, int]  # start -> jieba frequency of that word
    h_ends: set[int]
    n_ends: set[int]
    h_prev: dict[int, tuple[int, int]]  # HMM-cut word end -> (its length, its frequency)


@functools.lru_cache(maxsize=16)  # computed for the start prior and again for the end search
def boundary_features(text: str) -> Bounds:
    import jieba  # type: ignore[import-untyped]

    _jieba()
    kind: dict[int, str] = {}
    tok_end: dict[int, int] = {}
    freq: dict[int, int] = {}
    h_ends: set[int] = set()
    n_ends: set[int] = set()
    h_prev: dict[int, tuple[int, int]] = {}
    for word, a, b in jieba.tokenize(text, HMM=True):
        f = jieba.get_FREQ(word) or 0
        kind[a], tok_end[a], freq[a] = "H", b, f
        h_ends.add(b)
        h_prev[b] = (b - a, f)
    for word, a, b in jieba.tokenize(text, HMM=False):
        n_ends.add(b)
        if a not in kind:
            kind[a], tok_end[a], freq[a] = "N", b, jieba.get_FREQ(word) or 0
    starts = sorted(kind)
    return Bounds(starts, set(starts), kind, tok_end, freq, h_ends, n_ends, h_prev)


def freq_bucket(f: int) -> int:
    """0 for unknown words, then one bucket per power of ten (1-9 -> 1, ..., 100000+ -> 6)."""
    if f <= 0:
        return 0
    b = 1
    while f >= 10 and b < 6:
        f //= 10
        b += 1
    return b


def script(word: str) -> str:
    """"a" ASCII, "g" in GB2312 (common simplified Chinese), "x" anything else (traditional, rare)."""
    if word.isascii():
        return "a"
    try:
        word.encode("gb2312")
    except UnicodeEncodeError:
        return "x"
    return "g"


def start_key(bf: Bounds, x: int, text: str, freq: bool = True) -> tuple[str, int, int, str, int]:
    """Features of a candidate start: cut, frequency bucket, length, script, next word's frequency.

    With ``freq=False`` (ablation) the two frequencies only say "in jieba's dictionary or not".
    """
    e = bf.tok_end[x]
    nf = bf.freq.get(e, -1)
    nb = 3 if nf < 0 else 0 if nf == 0 else 1 if (nf < 1000 or not freq) else 2
    fb = freq_bucket(bf.freq[x]) if freq else min(1, bf.freq[x])
    return (bf.kind[x], fb, min(e - x, 4), script(text[x:e]), nb)


def done_key(n_found: int, last_len: int) -> tuple[int, int]:
    """Features of "the rule is complete": components found so far, length of the last one."""
    lb = 0 if last_len <= 1 else 1 if last_len == 2 else 2 if last_len == 3 else 3 if last_len <= 5 else 4
    return (min(n_found, 3), lb)


def end_key(bf: Bounds, x: int, e: int, n: int) -> tuple[int, str, str]:
    """Features of a candidate end (the older ``table`` model): length, boundary type, place against the first word."""
    length = e - x
    lb = length if length <= 10 else 11 if length <= 15 else 12
    bt = "HN" if (e in bf.h_ends or e >= n) else "N" if e in bf.n_ends else "-"
    fe = bf.tok_end.get(x, x + 1)
    rel = "in" if e < fe else "first" if e == fe else "after"
    return (lb, bt, rel)


# --------------------------------------------------------------------------- the "real" model's features


def _cohesion(text: str, x: int, freqs: dict[str, int]) -> int:
    """Frequency of the most frequent dictionary word (2-4 characters) spanning offset ``x``."""
    best = 0
    for a in range(max(0, x - 3), x):
        for b in range(x + 1, min(len(text), a + 4) + 1):
            f = freqs.get(text[a:b], 0)
            if f > best:
                best = f
    return best


def _rejoined(text: str, x: int, e: int, freqs: dict[str, int]) -> int:
    """Frequency of the most frequent word formed by the characters before ``x`` and from ``e`` on."""
    if x == 0 or e >= len(text):
        return 0
    best = 0
    left = (text[x - 1], text[max(0, x - 2): x])
    right = (text[e], text[e: e + 2])
    for a in left:
        for b in right:
            if len(a) + len(b) <= 4:
                f = freqs.get(a + b, 0)
                if f > best:
                    best = f
    return best


REJOIN_REACH = 8  # how far after a start the start features look for a re-joined word


def start_features(text: str, bf: Bounds, x: int) -> list[str]:
    """The features of offset ``x`` as a component start (strings named ``group:value``)."""
    freqs, tags = _jieba()
    kind = bf.kind.get(x, "-")
    out = ["bias", f"k:{kind}"]
    if kind != "-":
        key = start_key(bf, x, text)
        out += [f"key:{key[0]}{key[1]}{key[2]}{key[3]}{key[4]}", f"f:{kind}{key[1]}", f"l:{key[2]}",
                f"s:{key[3]}", f"nf:{key[4]}", f"pos:{tags.get(text[x: bf.tok_end[x]], 'OOV')}"]
        e = bf.tok_end[x]
        if bf.kind.get(e) == "H" and bf.tok_end[e] - e == 1:  # the word after is a lone character
            out.append(f"n1:{freq_bucket(bf.freq[e])}")
    else:
        out.append(f"cs:{script(text[x])}")
    if x == 0:
        out.append("x0")
    else:
        sp = freq_bucket(_cohesion(text, x, freqs))
        out += [f"sp:{sp}", f"ksp:{kind}{sp}"]
        rj, rd = 0, 0
        for e in range(x + 1, min(len(text) - 1, x + REJOIN_REACH) + 1):
            f = _rejoined(text, x, e, freqs)
            if f > rj:
                rj, rd = f, e - x
        out.append(f"rj:{freq_bucket(rj)}")
        if rj:
            out.append(f"rjd:{min(rd, 5)}{min(freq_bucket(rj), 5) // 2}")
        prev = bf.h_prev.get(x)
        if prev is not None:
            out.append(f"pl:{min(prev[0], 4)}")
            if prev[0] == 1:
                out.append(f"p1f:{freq_bucket(prev[1])}")
    return out


def end_features(text: str, bf: Bounds, x: int, e: int) -> list[str]:
    """The features of ``e`` as the end of a component that starts at ``x``."""
    freqs, tags = _jieba()
    n = len(text)
    length = e - x
    lb = length if length <= 8 else 9 if length <= 12 else 10
    bt = "HN" if (e in bf.h_ends or e >= n) else "N" if e in bf.n_ends else "-"
    fe = bf.tok_end.get(x, x + 1)
    rel = "in" if e < fe else "first" if e == fe else "after"
    word = text[x:e]
    wf = freqs.get(word, 0) if length > 1 else 0
    out = [f"len:{lb}", f"bt:{bt}", f"rel:{rel}", f"lbt:{min(length, 5)}{bt}", f"w:{freq_bucket(wf)}"]
    if wf:
        out.append(f"wpos:{tags.get(word, 'OOV')}")
    if e >= n:
        out.append("eot")
    else:
        out.append(f"esp:{freq_bucket(_cohesion(text, e, freqs))}")
        out.append(f"erj:{freq_bucket(_rejoined(text, x, e, freqs))}")
        nxt = bf.tok_end.get(e)
        if nxt is not None and bf.kind.get(e) == "H" and nxt - e == 1:
            out.append(f"n1f:{freq_bucket(bf.freq[e])}")
    return out


# --------------------------------------------------------------------------- scores


def _score(features: Sequence[str], weights: dict[str, float]) -> float:
    return sum(weights.get(f, 0.0) for f in features)


@functools.lru_cache(maxsize=16)
def start_probabilities(text: str) -> tuple[float, ...]:
    """P(a component starts at offset x) for every offset of ``text``.

    The fitted logistic model ranks the offsets; its odds are then scaled so that the text
    holds ``EXPECTED_STARTS`` starts in all, whatever its length (a rule has a few components
    in a title as in a long article: the model was fitted on texts of 40-300 characters)."""
    from .fitted_weights import EXPECTED_STARTS, START_WEIGHTS

    bf = boundary_features(text)
    odds = [math.exp(max(-30.0, min(30.0, _score(start_features(text, bf, x), START_WEIGHTS))))
            for x in range(len(text))]
    scale = 1.0
    for _ in range(30):  # solve sum(p) = EXPECTED_STARTS for the scale (monotone in it)
        total = sum(scale * o / (1.0 + scale * o) for o in odds)
        if not odds or abs(total - EXPECTED_STARTS) < 1e-3 or total >= len(odds) - 1e-9:
            break
        scale *= EXPECTED_STARTS / total if total > 0 else 2.0
    return tuple(scale * o / (1.0 + scale * o) for o in odds)


def end_scores(text: str, x: int, ends: Sequence[int]) -> list[float]:
    """Relative chance of each candidate end of a component starting at ``x`` (sums to 1)."""
    from .fitted_weights import END_WEIGHTS

    bf = boundary_features(text)
    zs = [_score(end_features(text, bf, x, e), END_WEIGHTS) for e in ends]
    top = max(zs)
    ws = [math.exp(z - top) for z in zs]
    total = sum(ws)
    return [w / total for w in ws]


# --------------------------------------------------------------------------- known rules


@functools.lru_cache(maxsize=1)
def _idf() -> dict[str, float]:
    """jieba's inverse document frequencies (``jieba/analyse/idf.txt``), loaded once."""
    import os

    import jieba  # type: ignore[import-untyped]

    out: dict[str, float] = {}
    with open(os.path.join(os.path.dirname(jieba.__file__), "analyse", "idf.txt"), encoding="utf-8") as fh:
        for line in fh:
            word, _, value = line.rstrip("\n").partition(" ")
            try:
                out[word] = float(value)
            except ValueError:
                continue
    return out


IDF_DOC_CHARS = 20.0  # about how long a document of jieba's IDF corpus is (的 is in 41 % of them)


def natural_presence(component: str, text_length: int) -> float:
    """Probability that ``component`` occurs by itself in ordinary text of this length.

    From jieba's document frequencies (``exp(-idf)``, documents of about 20 characters); a
    string jieba's IDF table does not have is taken to be as rare as its rarest entry."""
    idf = _idf()
    df = math.exp(-idf.get(component, 14.0))
    return 1.0 - (1.0 - df) ** max(1.0, text_length / IDF_DOC_CHARS)


def known_rule_weight(rule: Sequence[str], text_length: int) -> float:
    """How much likelier a known rule firing on a text is the rule that censors it than a chance
    co-occurrence: the inverse of the chance that all its components occur by themselves."""
    w = 1.0
    for c in set(rule):
        w /= max(natural_presence(c, text_length), 1e-6)
    return w
