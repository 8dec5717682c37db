"""Isolate which keyword combination(s) make a text censored.

Why one piece (over 800 lines): the searches below (locate a component's start and end,
the alphabetic probe tree on short intervals, the multi-rule loop) share one model of
the text (pieces, jieba's two cuts, the fitted start/end/done tables), one query cache
and one definition of exactness. Split apart, each part would need the others' private
state, and the exactness argument could no longer be read in one place.

Model
=====
A *rule* is a set of 1-6 *components* (non-empty strings).  A query string is
censored when, for some rule, every component occurs in it as a substring
(order and distance do not matter).  ``is_censored(query)`` is the platform
oracle.  A query is built from *pieces* (substrings of the text) joined by
``separator``; the separator must be a string that cannot occur inside a
component (one space is the default, ``"\\n"`` or ``"\\x00"`` are safer for
Latin text), so that joining never creates a component across two pieces.

What is the truth?  (exactness definition)
-------------------------------------------
Only what the oracle can tell apart is identifiable, so the truth is the
*reduced* set of rules present in the text:

* A rule is present when all its components occur in the text (anywhere, any
  number of times, possibly overlapping each other: in ``調整體`` both
  ``調整`` and ``整體`` occur).  A component that occurs several times is still
  ONE component (a string), reported once.
* Inside a rule, a component that is a substring of another component of the
  same rule is redundant (whenever the longer one is present so is the shorter
  one) and is dropped: ``{六四, 六四事件}`` is the rule ``{六四事件}``.
* A rule R2 is *dominated* by a rule R1 when every component of R1 is a
  substring of some component of R2 (then R2 present implies R1 present, so R2
  can never be observed on its own).  Dominated rules are dropped.
* Each returned component is the exact minimal string: dropping its first or
  last character, or replacing it by any set of its proper substrings, lifts
  censorship (with the other components of the rule present).

``isolate`` returns exactly this reduced set (``result.rules``), each rule's
components ordered by first occurrence in the text; it is exact for any rule
set under the model above, whatever the segmenter guesses.

Algorithm
=========
It is built around the CompAwareBinSplit idea of Xiong & Knockel (FOCI 2019):
binary-search the largest ``b`` such that ``C + [text[b:]]`` is still
censored (``C`` = components found so far); the next component starts at
``b``; continue on ``text[b+1:]`` so that overlapping components are found.
Three changes make it cheaper while keeping it exact:

1. **A weighted start search with a prior from the text.**  Each probe is the
   root of the optimal alphabetic search tree for the prior probabilities of
   the remaining outcomes (Knuth's dynamic programme on intervals of at most
   64 outcomes, splitting the mass in half above that).  With the default
   ``Params(model="real")`` the prior is the text model of
   :mod:`harness.isolation.textmodel`, fitted on real sentences with
   components inserted at random character offsets: a probability ``p_x`` that
   a component starts at each offset (from jieba's two cuts, the word there,
   the cohesion of the characters across the offset, a word re-joined across a
   span, a lone broken character before it; no keyword list), scaled so that a
   text holds about two starts whatever its length.  Offsets with ``p_x`` above
   ``start_min_p`` are the candidates, and the next start is the *first* of the
   remaining ones: ``P(next = x) ∝ p_x · Π (1 - p_y)`` over the candidates ``y``
   between the last start and ``x``.  The outcome "``C`` alone is censored"
   (the rule is complete) is one more point of the same search, with a fitted
   prior that depends on how many components were found and the length of the
   last one, so no separate "are we done?" query is needed.
   ``model="table"`` is the issue-5 model (word starts of both cuts weighted by
   rates fitted on the synthetic corpus, ``_START_RATE``), ``model="power"``
   the one before it (HMM word starts, weight ``(freq + 1) ** -freq_exponent``,
   ends at word ends); ``model="table-nofreq"`` is an ablation.
2. **Character-level ends.**  The end of the component starting at ``b`` is
   searched over every offset up to ``max_end_chars`` characters, with the
   CompAwareBinSplit test ``C + [text[b:e], text[b+1:]]``; with ``model="real"``
   an end's prior is the text model's conditional logit (length, word
   boundaries of the two cuts, the word ``text[b:e]`` in jieba's dictionary,
   a word re-joined across ``[b, e)``, cohesion across ``e``); with
   ``model="table"`` the rate at which it ended a component on the synthetic
   seed 7 (``_END_RATE``).  Ends below ``real_end_min`` (``end_min_rate``) are
   not offered (each would cost a probe whenever its neighbour is the answer);
   a too-long guess is caught by step 3, as are starts that were not candidates.
3. **Certificates that double as completeness checks.**  When the guessed set
   ``C`` is censored, each component ``c`` is checked with ONE query: all the
   maximal windows of the text that do not contain ``c`` (``M_c``).  ``M_c``
   contains ``(C - {c}) + [c[:-1], c[1:]]``, so ``M_c`` uncensored proves that
   ``c`` is exact (no shorter string, no split into overlapping parts) *and*
   that no other rule avoids ``c``.  Only if ``M_c`` is censored do we ask
   ``(C - {c}) + [c[:-1], c[1:]]``: uncensored means ``c`` is exact and another
   rule lives in ``M_c``; censored means the guess was not minimal, and a
   character-level search inside ``c`` replaces it.  A single rule of ``k``
   components therefore ends with ``k`` queries that prove it exact and prove
   that the text holds nothing else.

**Several rules.**  Every query that avoids all found rules must avoid, for
each found rule, at least one of its components.  The maximal such queries
are the windows of the text free of a *hitting set* ``h`` (one component per
found rule).  We explore hitting sets depth-first: a censored ``M_h`` holds a
new rule, which is isolated inside ``M_h`` and then each ``h + {c}`` is
explored.  When all reachable ``M_h`` are uncensored, every rule has been
found (a present rule not dominated by a found one always survives one of the
branches).  For one rule the branch queries are the certificates above, so
they cost nothing extra.

**Bookkeeping.**  Queries are canonical sets of pieces (pieces contained in
other pieces are dropped).  The oracle is never called twice for the same
query, and answers implied by monotonicity are not asked either: a query whose
pieces all lie inside pieces of a known uncensored query is uncensored, and a
query containing every piece of a known censored query is censored.  An
uncensored text costs exactly one query.

**Known rules (optional priors).**  The known rules whose components all occur
in the current windows are group-tested before any search: they are ranked by
how unlikely it is that all their components occur in ordinary text by chance
(:func:`harness.isolation.textmodel.known_rule_weight`, from jieba's document
frequencies), and a weighted search over "none of them" (weight
``known_miss_weight``) and the candidates asks unions of their components
("is one of these rules here?"), so a confident guess costs one query, dozens
of rules firing on common words cost a few, and a wrong list costs about one.
A candidate found this way only needs its certificates.

**Known components (optional priors).**  ``known_components`` maps strings to
the number of known rules that use them (e.g. the components of the keyword
lists of other platforms).  Every occurrence of a known component in the text
becomes a segmentation boundary (start and end), the weight of its start in
the weighted start search is multiplied by ``1 + comp_gain * odds(p)``, and the
end search puts ``comp_end_mass`` of its prior on the known component's end.
``p`` is the probability that such an occurrence is a real component, looked
up by (length, jieba frequency, number of rules using it) in a table fitted on
the benchmark corpus seed 7 (:func:`component_probability`).  This only moves
prior mass: the searches and certificates are unchanged, so the answer stays
exact whatever the priors say (wrong priors cost queries, never exactness).
It generalises to new *combinations* of known components, which is how a
researcher meets a new platform: its rules are rarely identical to another
platform's, but their parts are often known.  (With ``model="real"`` the
weights are odds, so the boost multiplies the odds of the offset.)  Figures on
real text: ``BENCHMARKS.md`` and ``bench/isolation/RESULTS.md``.

**What the fitted parts know.**  ``fitted_weights`` (the ``real`` model) was
fitted on the first half, by date, of People's Daily 1998 sentences with the
Citizen Lab's 2023 rules and made-up rules at random offsets; ``fitted_tables``
(the ``table`` model) on a synthetic corpus whose filler is drawn from jieba's
own frequencies.  Neither carries a keyword; exactness never depends on them.

The algorithm is written once as a generator that yields query strings and
receives verdicts; :func:`isolate` drives it with a plain function and
:func:`aisolate` with a coroutine function.
"""

from __future__ import annotations

import bisect
from collections.abc import Awaitable, Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Optional

from .fitted_tables import _DONE_RATE, _END_RATE, _START_RATE, _START_RATE_NOFREQ
from .fitted_weights import DONE_RATE
from .textmodel import Bounds as _Bounds
from .textmodel import boundary_features as _boundary_features
from .textmodel import done_key as _done_key
from .textmodel import end_key as _end_key
from .textmodel import freq_bucket as _freq_bucket  # noqa: F401  (kept importable from here)
from .textmodel import script as _script  # noqa: F401
from .textmodel import end_scores, known_rule_weight, start_probabilities
from .textmodel import start_key as _start_key

__all__ = ["InconsistentOracle", "IsolationResult", "Params", "aisolate", "component_probability", "isolate"]

Span = tuple[int, int]
Pos = tuple[int, int]  # (window index, text offset)
Rule = tuple[str, ...]
Pieces = tuple[str, ...]
# The algorithm yields a query string and receives the verdict.
Algo = Generator[str, bool, None]


@dataclass
class IsolationResult:
    """Outcome of an isolation run."""

    rules: list[tuple[str, ...]]
    queries: int
    complete: bool
    trace: list[tuple[str, bool]] = field(default_factory=list)
    error: Optional[BaseException] = None
    """Set when an exception listed in ``stop_on`` ended the run (then ``complete`` is False)."""


@dataclass(frozen=True)
class Params:
    """Tuning knobs of the search priors (defaults are used by isolate)."""

    use_jieba: bool = True
    # "real" (default): the text model of :mod:`harness.isolation.textmodel`, fitted on real
    # sentences with components at random offsets: a start probability for every offset
    # (candidates: those above ``start_min_p``), P(next start = x) = p_x * prod of (1 - p) over
    # the candidates before x, a conditional-logit end prior (ends below ``real_end_min`` are
    # not offered) and a fitted "rule complete" rate.
    # "table": start/end priors from the fitted ``_START_RATE`` / ``_END_RATE``
    # tables over the boundaries of two jieba cuts (with and without HMM), ends
    # searched character by character; "power": the older model (word
    # boundaries of the HMM cut, weight (freq + 1) ** -freq_exponent, ends at
    # word ends with the p_short / end_ratio prior).  Without jieba: "power".
    model: str = "real"
    start_min_p: float = 0.002  # "real" model: offsets less likely to start a component are not candidates
    real_end_min: float = 0.01  # "real" model: ends less likely than this are not offered
    freq_exponent: float = 0.3  # weight of a word = (freq + 1) ** -freq_exponent
    end_min_rate: float = 0.02  # "table" model: ends with a lower rate are not tried
    max_end_chars: int = 40  # "table" model: longest component tried before the window end
    # prior that a one-word guess is too short, by word length 1, 2, 3+
    p_short: tuple[float, ...] = (0.75, 0.48, 0.3)
    p_short_again: float = 0.5  # ... after it was already too short once
    end_ratio: float = 0.35  # prior P(component spans > t+1 words | > t words)
    max_end_words: int = 24
    # prior that the rule is complete after 1, 2, 3, ... components
    p_done: tuple[float, ...] = (0.55, 0.85, 0.6)
    inner_weight: float = 0.03  # prior share of an overlap start inside the guess
    # Component-level priors (``known_components``): a known component found in the
    # text gets a probability of being a real component from its length, its jieba
    # frequency and how many known rules use it (table fitted on corpus seed 7), and
    # its start's weight is multiplied by 1 + comp_gain * odds.
    comp_gain: float = 300.0
    comp_min_p: float = 0.02
    comp_end_mass: float = 0.8  # prior that a component starting at a known one ends with it
    # Known rules (``known_rules``) that fire on a text are group-tested by weight; this is the
    # weight of "none of them is the rule" against a candidate's (see textmodel.known_rule_weight)
    known_miss_weight: float = 1e5
    # Part-of-speech prior (jieba dictionary tags): multiply a word's weight by
    # the factor of its tag.  Empty = off.
    pos_weights: tuple[tuple[str, float], ...] = ()


class _BudgetExhausted(Exception):
    pass


class InconsistentOracle(RuntimeError):
    """The oracle's answers contradict the model (a platform changed its rules mid-way?)."""


# P(a known component occurring in the text is a real component), by
# (length 1/2/3+, jieba freq 0 / <=100 / <=1000 / more, known rules using it
# <=2 / <=16 / more).  Fitted on the benchmark corpus seed 7 with held-out
# (leave-one-source-out) priors; the benchmark reports seed 2019.
_COMP_P: dict[tuple[int, int, int], float] = {
    (1, 0, 0): 0.01, (1, 0, 1): 0.03, (1, 0, 2): 0.03, (1, 1, 0): 0.02, (1, 1, 1): 0.02, (1, 1, 2): 0.2,
    (1, 2, 0): 0.0, (1, 2, 1): 0.01, (1, 2, 2): 0.2, (1, 3, 0): 0.0, (1, 3, 1): 0.0, (1, 3, 2): 0.007,
    (2, 0, 0): 0.14, (2, 0, 1): 0.2, (2, 0, 2): 0.43, (2, 1, 0): 0.12, (2, 1, 1): 0.25, (2, 1, 2): 0.43,
    (2, 2, 0): 0.024, (2, 2, 1): 0.06, (2, 2, 2): 0.22, (2, 3, 0): 0.003, (2, 3, 1): 0.009, (2, 3, 2): 0.05,
    (3, 0, 0): 0.15, (3, 0, 1): 0.55, (3, 0, 2): 0.8, (3, 1, 0): 0.19, (3, 1, 1): 0.2, (3, 1, 2): 0.65,
    (3, 2, 0): 0.01, (3, 2, 1): 0.1, (3, 2, 2): 0.2, (3, 3, 0): 0.003, (3, 3, 1): 0.007, (3, 3, 2): 0.036,
}


def component_probability(comp: str, n_rules: int, freq: int) -> float:
    """Prior probability that a known component found in a text is a real one."""
    fb = 0 if freq <= 0 else 1 if freq <= 100 else 2 if freq <= 1000 else 3
    nb = 0 if n_rules <= 2 else 1 if n_rules <= 16 else 2
    return _COMP_P[(min(len(comp), 3), fb, nb)]


# --------------------------------------------------------------------------
# Segmentation


def _segment(text: str, params: Params) -> tuple[list[int], dict[int, float]]:
    """Word start offsets of ``text`` and the prior weight of each start."""
    weights: dict[int, float] = {}
    if params.use_jieba and params.model == "real":
        # weights are odds p / (1 - p), so that known components can multiply them
        for x, p in enumerate(start_probabilities(text)):
            if p >= params.start_min_p or x == 0:
                weights[x] = p / (1.0 - p)
        return sorted(weights), weights
    if params.use_jieba and params.model in ("table", "table-nofreq"):
        bf = _boundary_features(text)
        freq = params.model == "table"
        table = _START_RATE if freq else _START_RATE_NOFREQ
        for x in bf.starts:
            weights[x] = table.get(_start_key(bf, x, text, freq), 0.01)
        return bf.starts, weights
    if params.use_jieba:
        try:
            import jieba  # type: ignore[import-untyped]
        except ImportError:  # pragma: no cover - jieba is a dependency
            jieba = None
    else:
        jieba = None
    if jieba is not None:
        import logging

        jieba.setLogLevel(logging.WARNING)
        tags: dict[str, str] = {}
        pos = dict(params.pos_weights)
        if pos:
            import jieba.posseg  # type: ignore[import-untyped]

            tags = jieba.posseg.dt.word_tag_tab
        for word, start, _end in jieba.tokenize(text, HMM=True):
            freq = jieba.get_FREQ(word) or 0
            weights[start] = float(freq + 1) ** (-params.freq_exponent)
            if pos:
                weights[start] *= pos.get(tags.get(word, "OOV"), 1.0)
    else:
        # Fallback: every CJK character is a word, runs of other word
        # characters are words.
        prev_kind = None
        for i, ch in enumerate(text):
            kind = "w" if (ch.isalnum() and ord(ch) < 0x2E80) else f"c{i}"
            if kind != prev_kind:
                weights[i] = 1.0
            prev_kind = kind
    starts = sorted(weights)
    return starts, weights


def _freq_lookup() -> Callable[[str], int]:
    import jieba  # type: ignore[import-untyped]

    return lambda w: jieba.get_FREQ(w) or 0


def _occurrences(text: str, sub: str) -> list[int]:
    out = []
    i = text.find(sub)
    while i != -1:
        out.append(i)
        i = text.find(sub, i + 1)
    return out


def _windows(text: str, masks: Iterable[str]) -> list[Span]:
    """Maximal spans of ``text`` containing no occurrence of any mask."""
    forbidden: set[Span] = set()
    for m in masks:
        for o in _occurrences(text, m):
            forbidden.add((o, o + len(m)))
    # keep minimal forbidden intervals (one containing another is redundant)
    ivs = sorted(forbidden, key=lambda x: (x[1], -x[0]))
    minimal: list[Span] = []
    for s, e in ivs:
        if minimal and minimal[-1][0] >= s:
            continue  # contains the previous (it ends no earlier, starts no later)
        minimal.append((s, e))
    spans: list[Span] = []
    start = 0
    for s, e in minimal:
        if e - 1 > start:
            spans.append((start, e - 1))
        start = s + 1
    if len(text) > start:
        spans.append((start, len(text)))
    return spans


def _reduce_rule(comps: Iterable[str]) -> list[str]:
    """Drop duplicates and components contained in another component."""
    uniq = list(dict.fromkeys(comps))
    return [c for c in uniq if not any(c != d and c in d for d in uniq)]


def _fires(rule: Iterable[str], pieces: Sequence[str]) -> bool:
    return all(any(c in p for p in pieces) for c in rule)


# --------------------------------------------------------------------------
# The algorithm


class _Isolator:
    def __init__(
        self,
        text: str,
        separator: str,
        known_rules: Optional[Iterable[Iterable[str]]],
        params: Params,
        known_components: Optional[Mapping[str, int]] = None,
    ) -> None:
        self.text = text
        self.sep = separator
        self.params = params
        self.known: list[list[str]] = []
        for r in known_rules or ():
            comps = _reduce_rule(c for c in r if c)
            # a known "rule" that is the whole text (e.g. the probe phrase being isolated after a
            # run, which is in the lists) says nothing the first query did not
            if comps and all(c in text for c in comps) and text not in comps:
                self.known.append(comps)
        self.found: list[list[str]] = []
        self.cache: dict[frozenset[str], bool] = {}
        self.sent: dict[str, bool] = {}  # every query string asked: never twice
        self.censored_sets: list[Pieces] = []
        self.clear_sets: list[Pieces] = []
        self.starts, self.weights = _segment(text, params)
        self.real = params.use_jieba and params.model == "real"
        self.bounds: Optional[_Bounds] = (
            _boundary_features(text) if params.use_jieba and params.model in ("real", "table", "table-nofreq")
            else None
        )
        self.start_p: tuple[float, ...] = start_probabilities(text) if self.real else ()
        self.cand_ends: dict[int, dict[int, float]] = {}
        self.narrowed: Optional[list[Span]] = None
        if known_components:
            self._add_component_priors(known_components)
        self._start_set = set(self.starts)

    def _add_component_priors(self, known: Mapping[str, int]) -> None:
        """Make known components occurring in the text boundaries with boosted weights."""
        text = self.text
        p = self.params
        freq_of = _freq_lookup() if p.use_jieba else (lambda w: 0)
        best: dict[int, float] = {}
        for comp, n in known.items():
            if not comp or comp not in text:
                continue
            prob = component_probability(comp, n, freq_of(comp))
            if prob < p.comp_min_p:
                continue
            for o in _occurrences(text, comp):
                best[o] = max(best.get(o, 0.0), prob)
                ends = self.cand_ends.setdefault(o, {})
                ends[o + len(comp)] = max(ends.get(o + len(comp), 0.0), prob)
        if not best:
            return
        base = dict(self.weights)
        starts = self.starts

        def inherited(x: int) -> float:
            k = bisect.bisect_right(starts, x) - 1
            return base[starts[k]] if k >= 0 else 1.0

        for o, ends in self.cand_ends.items():
            for e in ends:
                if e < len(text) and e not in self.weights:
                    self.weights[e] = inherited(e)
        for o, prob in best.items():
            w = self.weights.get(o, inherited(o))
            self.weights[o] = w * (1.0 + p.comp_gain * prob / max(1e-6, 1.0 - prob))
        self.starts = sorted(self.weights)

    # -- queries -----------------------------------------------------------

    @staticmethod
    def _canon(pieces: Iterable[str]) -> Pieces:
        uniq = [p for p in dict.fromkeys(pieces) if p]
        kept = [p for p in uniq if not any(p != q and p in q for q in uniq)]
        return tuple(kept)

    def _implied(self, pieces: Pieces) -> Optional[bool]:
        key = frozenset(pieces)
        if key in self.cache:
            return self.cache[key]
        if not pieces:
            return False
        for k in self.censored_sets:
            if all(any(a in b for b in pieces) for a in k):
                return True
        for u in self.clear_sets:
            if all(any(a in b for b in u) for a in pieces):
                return False
        return None

    def ask(self, pieces: Iterable[str]) -> Generator[str, bool, bool]:
        canon = self._canon(pieces)
        known = self._implied(canon)
        if known is not None:
            return known
        query = self.sep.join(canon)
        if query in self.sent:  # other pieces, the same string (the text itself holds the separator)
            verdict = self.sent[query]
        else:
            verdict = bool((yield query))
            self.sent[query] = verdict
        self.cache[frozenset(canon)] = verdict
        (self.censored_sets if verdict else self.clear_sets).append(canon)
        return verdict

    # -- top level ---------------------------------------------------------

    def run(self) -> Algo:
        text = self.text
        if not text:
            return
        if not (yield from self.ask([text])):
            return
        stack: list[frozenset[str]] = [frozenset()]
        seen: set[frozenset[str]] = set()
        while stack:
            h = stack.pop()
            if h in seen:
                continue
            seen.add(h)
            firing = next(
                (r for r in self.found if not any(m in c for c in r for m in h)),
                None,
            )
            if firing is not None:
                for c in reversed(firing):
                    stack.append(h | {c})
                continue
            spans = _windows(text, h)
            pieces = [text[a:b] for a, b in spans]
            if not pieces or not (yield from self.ask(pieces)):
                continue
            rule = yield from self.find_rule(h, spans)
            if rule is None:  # pragma: no cover - defensive
                continue
            self.found.append(rule)
            for c in reversed(rule):
                stack.append(h | {c})

    # -- one rule inside the windows free of h ------------------------------

    def find_rule(self, h: frozenset[str], spans: list[Span]) -> Generator[str, bool, Optional[list[str]]]:
        text = self.text
        pieces = [text[a:b] for a, b in spans]
        comps: Optional[list[Span]] = None
        cands = [r for r in self.known if _fires(r, pieces)]
        self.narrowed = None
        if cands:
            comps = yield from self._try_known(cands, spans)
        if comps is None:
            # a censored union of known components narrows the search to their occurrences
            comps = yield from self.locate(self.narrowed or spans, [], char_level=False)
        return (yield from self.certify(h, comps))

    def _span_of(self, comp: str, spans: list[Span]) -> Span:
        for a, b in spans:
            i = self.text.find(comp, a, b)
            if i != -1:
                return (i, i + len(comp))
        raise ValueError(comp)  # pragma: no cover - callers check presence

    def _try_known(self, cands: list[list[str]], spans: list[Span]) -> Generator[str, bool, Optional[list[Span]]]:
        """Group-test the known rules that fire on the windows: is one of them the rule?

        Candidates are ordered by :func:`known_rule_weight` (a rule of rare components that all
        occur is rarely there by chance), likeliest last; outcome 0 is "none of them" (weight
        ``known_miss_weight``), outcome i the i-th candidate. A probe asks the union of the
        components of candidates i.. (censored when one of them, or a mix of their components,
        is a rule), so the search is the weighted search of the start positions over this list.
        """
        p = self.params
        n = len(self.text)
        ws = [known_rule_weight(r, n) for r in cands]
        # likeliest last: the union from the last candidate on is that candidate alone, so a
        # confident guess costs one query
        order = sorted(range(len(cands)), key=lambda i: ws[i])
        ranked = [cands[i] for i in order]
        if len(ranked) == 1:
            if (yield from self.ask(ranked[0])):
                return [self._span_of(c, spans) for c in ranked[0]]
            return None
        mass = [p.known_miss_weight] + [ws[i] for i in order]

        def probe(i: int) -> Generator[str, bool, bool]:
            return (yield from self.ask([c for r in ranked[i - 1 :] for c in r]))

        idx = yield from _weighted_search(mass, probe)
        if idx == 0:
            return None
        rule = ranked[idx - 1]
        # the union from this candidate on is censored and without it is not: the candidate is
        # needed; alone, it is the rule (else components of several candidates make one)
        if idx < len(ranked) and not (yield from self.ask(rule)):
            self.narrowed = self._occurrence_spans([c for r in ranked[idx - 1 :] for c in r], spans)
            return None
        return [self._span_of(c, spans) for c in rule]

    def _occurrence_spans(self, comps: list[str], spans: list[Span]) -> list[Span]:
        """The occurrences of ``comps`` inside ``spans``, merged: a censored union of these strings
        means every component of some rule lies inside one of them."""
        occ: list[Span] = []
        for a, b in spans:
            for c in set(comps):
                i = self.text.find(c, a, b)
                while i != -1 and i + len(c) <= b:
                    occ.append((i, i + len(c)))
                    i = self.text.find(c, i + 1, b)
        occ.sort()
        merged: list[Span] = []
        for a, b in occ:
            if merged and a <= merged[-1][1] and self._same_window(merged[-1][0], b, spans):
                merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
            else:
                merged.append((a, b))
        return merged

    @staticmethod
    def _same_window(a: int, b: int, spans: list[Span]) -> bool:
        return any(x <= a and b <= y for x, y in spans)

    # -- weighted CompAwareBinSplit over word boundaries ----------------------

    def locate(
        self, spans: list[Span], base: list[str], char_level: bool
    ) -> Generator[str, bool, list[Span]]:
        """Find spans C with base + C censored (known: base + spans censored).

        A position is ``(window index, text offset)``; ``suffix(pos)`` is the
        rest of that window plus all later windows.
        """
        text = self.text
        p = self.params
        positions: list[Pos] = []
        for si, (a, b) in enumerate(spans):
            for x in range(a, b):
                if char_level or x == a or x in self._start_set:
                    positions.append((si, x))
        if not positions:
            return []
        pos_set = set(positions)

        def weight(pos: Pos) -> float:
            if char_level:
                return 1.0
            x = pos[1]
            w = self.weights.get(x)
            if w is None and self.real:  # a window start that is not a candidate: its own odds
                sp = self.start_p[x]
                return sp / (1.0 - sp)
            if w is None:  # window starts inside a word: weight of that word
                k = bisect.bisect_right(self.starts, x) - 1
                w = self.weights[self.starts[k]] if k >= 0 else 1.0
            return w

        def word_end(pos: Pos) -> int:
            si, x = pos
            b = spans[si][1]
            if char_level:
                return x + 1
            k = bisect.bisect_right(self.starts, x)
            nxt = self.starts[k] if k < len(self.starts) else b
            return min(nxt, b)

        def suffix(pos: Pos) -> list[str]:
            si, x = pos
            out = [text[x : spans[si][1]]]
            out.extend(text[a:b] for a, b in spans[si + 1 :])
            return out

        guesses: list[tuple[int, int, int]] = []  # (window, start, end)
        lo: Pos = positions[0]
        pending = False
        used = False
        p_short = 0.0
        while True:
            later = [q for q in positions if q > lo]
            inner: list[Pos] = []
            if guesses:
                gsi, gs, ge = guesses[-1]
                # every offset between the guess's start and the next candidate
                # start (or the guess's end) must stay an outcome: the end
                # search proved that the suffix from gs + 1 is still censored
                k = bisect.bisect_right(self.starts, gs)
                nxt = self.starts[k] if k < len(self.starts) else spans[gsi][1]
                top = min(max(ge, nxt), spans[gsi][1])
                inner = [(gsi, x) for x in range(gs + 1, top) if (gsi, x) not in pos_set]
                later = sorted(set(later) | set(inner))
            inner_set = set(inner)
            regular = [q for q in later if q not in inner_set]
            if not pending and not used:
                regular = [lo] + regular
            n_found = len(guesses) + (1 if base else 0)
            plo = p_short if pending else 0.0
            if not n_found:
                hz = 0.0
            elif self.bounds is not None and not char_level and not base:
                _gsi, g_start, g_end = guesses[-1]
                table = DONE_RATE if self.real else _DONE_RATE
                hz = table.get(_done_key(n_found, g_end - g_start), 0.5)
            else:
                hz = p.p_done[min(n_found, len(p.p_done)) - 1]
            pdone = hz * (1.0 - plo)
            pin = p.inner_weight if inner else 0.0
            rest = max(1e-9, 1.0 - pdone - plo - pin)
            if self.real and not char_level:
                # the next start is the first of the remaining ones:
                # P(next = q) ∝ p_q * prod over earlier candidates r of (1 - p_r)
                raw: dict[Pos, float] = {}
                surv = 1.0
                for q in regular:
                    odds = weight(q)
                    pq = odds / (1.0 + odds)
                    raw[q] = pq * surv
                    surv *= 1.0 - pq
            else:
                raw = {q: weight(q) for q in regular}
            wsum = sum(raw.values()) or 1.0
            outcomes: list[Optional[Pos]] = [lo, *later, None]
            mass: list[float] = [plo if pending else (0.0 if used else rest * raw[lo] / wsum)]
            for q in later:
                if q in inner_set:
                    mass.append(pin / len(inner))
                else:
                    mass.append(rest * raw[q] / wsum)
            mass.append(pdone)
            strs = [text[a:b] for _si, a, b in guesses]

            def probe(i: int) -> Generator[str, bool, bool]:
                q = outcomes[i]
                pieces = base + strs + (suffix(q) if q is not None else [])
                return (yield from self.ask(pieces))

            idx = yield from _weighted_search(mass, probe)
            found = outcomes[idx]
            if found is None:
                return [(a, b) for _si, a, b in guesses]
            if found == lo and used and not pending:
                # the suffix from the last guess's start + 1 is known censored, and
                # every offset from there is an outcome: no later start means the
                # answers contradict each other (guards against looping forever)
                raise InconsistentOracle("inconsistent oracle answers")
            if found == lo and pending:
                # the guess is too short: grow it by one word
                gsi, gs, ge = guesses[-1]
                b = spans[gsi][1]
                ne = word_end((gsi, ge)) if ge < b else b
                ne = min(max(ne, ge + 1), b)
                if ne == ge:  # pragma: no cover - impossible under the model
                    raise InconsistentOracle("inconsistent oracle answers")
                guesses[-1] = (gsi, gs, ne)
                p_short = p.p_short_again
                continue
            fsi, fx = found
            end = yield from self._find_end(spans, fsi, fx, base, strs, suffix, char_level)
            guesses.append((fsi, fx, end))
            lo = found
            pending = False
            used = True

    def _find_end(
        self,
        spans: list[Span],
        si: int,
        x: int,
        base: list[str],
        strs: list[str],
        suffix: Callable[[Pos], list[str]],
        char_level: bool,
    ) -> Generator[str, bool, int]:
        """Smallest end e (a word end) with base + C + [text[x:e]] + suffix(x+1) censored."""
        text = self.text
        p = self.params
        b = spans[si][1]
        bf = self.bounds
        if char_level:
            ends = list(range(x + 1, b + 1))
        elif self.real:
            ends = list(range(x + 1, min(b, x + p.max_end_chars) + 1))
        elif bf is not None:
            ends = list(range(x + 1, min(b, x + p.max_end_chars) + 1))
            if ends[-1] != b:
                ends.append(b)
        else:
            k = bisect.bisect_right(self.starts, x)
            ends = [e for e in self.starts[k:] if e < b][: p.max_end_words]
            ends.append(b)
        rest = suffix((si, x + 1)) if x + 1 < b else [t[a:c] for t, (a, c) in ((text, sp) for sp in spans[si + 1 :])]
        if self.real and not char_level:
            probs = end_scores(text, x, ends)
            if ends[-1] != b:  # a component longer than max_end_chars: only the window end is left
                ends.append(b)
                probs.append(1e-4)
            keep = [i for i, r in enumerate(probs) if r >= p.real_end_min or i == len(ends) - 1]
            ends = [ends[i] for i in keep]
            total = sum(probs[i] for i in keep)
            mass = [probs[i] / total for i in keep]
        elif bf is not None and not char_level:
            if x not in bf.start_set:  # a window starting inside a word
                bf.tok_end.setdefault(x, x + 1)
            n = len(text)
            rates = [_END_RATE.get(_end_key(bf, x, e, n if e < b else e), 1e-4) for e in ends]
            # an unlikely end costs a probe whenever the end next to it is the
            # answer: drop it (a too-long guess is repaired by the certificate)
            keep = [i for i, r in enumerate(rates) if r >= p.end_min_rate or i == len(ends) - 1]
            ends = [ends[i] for i in keep]
            mass = [rates[i] for i in keep]
            total = sum(mass)
            mass = [m / total for m in mass]
        else:
            first_len = ends[0] - x
            if char_level:
                p1 = 0.5
            else:
                p1 = 1.0 - p.p_short[min(first_len, len(p.p_short)) - 1]
            mass = [p1]
            tail = 1.0 - p1
            for i in range(1, len(ends)):
                share = tail * (1.0 - p.end_ratio) if i < len(ends) - 1 else tail
                mass.append(share)
                tail -= share
        cands = self.cand_ends.get(x) if not char_level else None
        if cands:
            hits = [i for i, e in enumerate(ends) if e in cands]
            if hits:
                mass = [m * (1.0 - p.comp_end_mass) for m in mass]
                total = sum(cands[ends[i]] for i in hits)
                for i in hits:
                    mass[i] += p.comp_end_mass * cands[ends[i]] / total
        # _weighted_search finds the largest index with a true probe, so
        # search the ends from longest (known true) to shortest.
        rev = list(reversed(ends))
        rmass = list(reversed(mass))

        def probe(i: int) -> Generator[str, bool, bool]:
            return (yield from self.ask(base + strs + [text[x : rev[i]]] + rest))

        idx = yield from _weighted_search(rmass, probe)
        return rev[idx]

    # -- certification -------------------------------------------------------

    def certify(self, h: frozenset[str], comps: list[Span]) -> Generator[str, bool, list[str]]:
        text = self.text
        spans_of: dict[str, Span] = {}
        for a, b in comps:
            spans_of.setdefault(text[a:b], (a, b))
        current = _reduce_rule(spans_of)
        certified: set[str] = set()
        while True:
            todo = [c for c in current if c not in certified]
            if not todo:
                break
            c = todo[0]
            others = [d for d in current if d != c]
            mc = [text[a:b] for a, b in _windows(text, h | {c})]
            if not (yield from self.ask(mc)):
                certified.add(c)
                continue
            qc = others + [c[:-1], c[1:]]
            if not (yield from self.ask(qc)):
                certified.add(c)
                continue
            a, b = spans_of[c]
            sub = yield from self.locate([(a, b)], others, char_level=True)
            new = [text[x:y] for x, y in sub]
            for (x, y), s in zip(sub, new):
                spans_of.setdefault(s, (x, y))
            current = _reduce_rule(others + new)
        return current


_OPTIMAL_MAX = 64  # intervals at most this long are searched with an optimal tree


def _alphabetic_roots(total: list[float], lo: int, hi: int) -> dict[tuple[int, int], int]:
    """Optimal first probe for every sub-interval [i, j) of [lo, hi).

    Outcomes are ordered and a probe at k separates [i, k) from [k, j); the
    expected number of probes is minimised (optimal alphabetic tree, Knuth's
    monotone-root dynamic programme, O(n^2)).
    """
    cost: dict[tuple[int, int], float] = {}
    root: dict[tuple[int, int], int] = {}
    for i in range(lo, hi):
        cost[(i, i + 1)] = 0.0
    for size in range(2, hi - lo + 1):
        for i in range(lo, hi - size + 1):
            j = i + size
            a = root.get((i, j - 1), i + 1)
            b = root.get((i + 1, j), j - 1)
            best_k, best = a, float("inf")
            for k in range(max(a, i + 1), min(b, j - 1) + 1):
                c = cost[(i, k)] + cost[(k, j)]
                if c < best:
                    best_k, best = k, c
            cost[(i, j)] = best + total[j] - total[i]
            root[(i, j)] = best_k
    return root


def _weighted_search(
    mass: list[float], probe: Callable[[int], Generator[str, bool, bool]]
) -> Generator[str, bool, int]:
    """Largest i with probe(i) true; probe(0) is known true, probe is monotone.

    ``mass[i]`` is the prior probability that the answer is ``i``; each probe
    splits the remaining mass as evenly as possible.
    """
    lo, hi = 0, len(mass)
    total = [0.0]
    for m in mass:
        total.append(total[-1] + max(m, 1e-12))
    roots: Optional[dict[tuple[int, int], int]] = None
    while hi - lo > 1:
        if roots is None and hi - lo <= _OPTIMAL_MAX:
            roots = _alphabetic_roots(total, lo, hi)
        if roots is not None:
            if (yield from probe(roots[(lo, hi)])):
                lo = roots[(lo, hi)]
            else:
                hi = roots[(lo, hi)]
            continue
        target = (total[lo] + total[hi]) / 2
        k = bisect.bisect_left(total, target, lo + 1, hi)
        best = None
        for i in (k - 1, k, k + 1):
            if lo < i < hi and (best is None or abs(total[i] - target) < abs(total[best] - target)):
                best = i
        assert best is not None
        if (yield from probe(best)):
            lo = best
        else:
            hi = best
    return lo


# --------------------------------------------------------------------------
# Drivers


def _order_rules(text: str, rules: list[list[str]]) -> list[tuple[str, ...]]:
    def first(c: str) -> tuple[int, int]:
        return (text.find(c), len(c))

    out = [tuple(sorted(r, key=first)) for r in rules]
    out.sort(key=lambda r: [first(c) for c in r])
    return out


def isolate(
    text: str,
    is_censored: Callable[[str], bool],
    separator: str = " ",
    budget: Optional[int] = None,
    known_rules: Optional[Iterable[Iterable[str]]] = None,
    params: Params = Params(),
    stop_on: tuple[type[BaseException], ...] = (),
    known_components: Optional[Mapping[str, int]] = None,
    progress: Optional[Callable[[int, int], None]] = None,
) -> IsolationResult:
    """Find every keyword combination that makes ``text`` censored.

    An exception of a type in ``stop_on`` raised by the oracle ends the run with the
    rules certified so far, ``complete=False`` and ``error`` set; other exceptions
    propagate.  Rules in ``result.rules`` are always exact, complete or not.
    ``progress(queries, rules)`` is called after every answer and once at the end
    (queries asked so far, rules certified so far).
    """
    iso = _Isolator(text, separator, known_rules, params, known_components)
    gen = iso.run()
    trace: list[tuple[str, bool]] = []
    complete = True
    error: Optional[BaseException] = None
    try:
        query = next(gen)
        while True:
            if budget is not None and len(trace) >= budget:
                raise _BudgetExhausted
            verdict = bool(is_censored(query))
            trace.append((query, verdict))
            query = gen.send(verdict)
            if progress is not None:
                progress(len(trace), len(iso.found))
    except StopIteration:
        pass
    except _BudgetExhausted:
        complete = False
        gen.close()
    except stop_on as exc:
        complete = False
        error = exc
        gen.close()
    if progress is not None:
        progress(len(trace), len(iso.found))
    return IsolationResult(_order_rules(text, iso.found), len(trace), complete, trace, error)


async def aisolate(
    text: str,
    is_censored: Callable[[str], Awaitable[bool]],
    separator: str = " ",
    budget: Optional[int] = None,
    known_rules: Optional[Iterable[Iterable[str]]] = None,
    params: Params = Params(),
    stop_on: tuple[type[BaseException], ...] = (),
    known_components: Optional[Mapping[str, int]] = None,
    progress: Optional[Callable[[int, int], None]] = None,
) -> IsolationResult:
    """Same as :func:`isolate` with an ``async`` oracle."""
    iso = _Isolator(text, separator, known_rules, params, known_components)
    gen = iso.run()
    trace: list[tuple[str, bool]] = []
    complete = True
    error: Optional[BaseException] = None
    try:
        query = next(gen)
        while True:
            if budget is not None and len(trace) >= budget:
                raise _BudgetExhausted
            verdict = bool(await is_censored(query))
            trace.append((query, verdict))
            query = gen.send(verdict)
            if progress is not None:
                progress(len(trace), len(iso.found))
    except StopIteration:
        pass
    except _BudgetExhausted:
        complete = False
        gen.close()
    except stop_on as exc:
        complete = False
        error = exc
        gen.close()
    if progress is not None:
        progress(len(trace), len(iso.found))
    return IsolationResult(_order_rules(text, iso.found), len(trace), complete, trace, error)
