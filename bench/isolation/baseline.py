"""Baseline: CompAwareBinSplit (Xiong & Knockel, FOCI 2019), re-implemented.

Written from the description of the algorithm in the paper "An Efficient
Method to Determine which Combination of Keywords Triggered Automatic
Filtering of a Message" and the facts of the reference code
(citizenlab/censored-keyword-isolation, MIT); no code was copied.

* The oracle takes a list of strings, joined with the separator and sent as
  one message.  A cache makes sure no query string is sent twice (the same
  courtesy the new algorithm gets), and queries are counted once each.
* ``bin_search(C, g)``: largest ``i`` such that ``C + [g[i:]]`` is censored.
* ``comp_aware_bin_split(s)``: repeat { i = bin_search(C, s); extend the end
  ``j`` (from ``max(i + 1, previous end)``, as the reference code does) one
  character at a time until ``C + [s[i:j], s[i+1:]]`` is censored; add
  ``s[i:j]`` to ``C``; continue on ``s[i+1:]`` } until ``C`` alone is censored.
* ``variant="exp"``: the end is found by doubling the step then bisecting
  (the reference's ``comp_aware_bin_split_2``).

Several rules (our extension, "the obvious way"): after a rule is found,
every character covered by an occurrence of any of its components is replaced
by the separator (the rule is masked), the masked text is queried once, and
if it is still censored CompAwareBinSplit runs again on the masked text.  This
costs one extra query for a single-rule text; it misses rules that share a
component (or overlap an occurrence of a component) with an earlier rule.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable


class CountingOracle:
    def __init__(self, is_censored: Callable[[str], bool], separator: str) -> None:
        self.f = is_censored
        self.sep = separator
        self.cache: dict[str, bool] = {}

    def __call__(self, pieces: Iterable[str]) -> bool:
        q = self.sep.join(p for p in pieces if p)
        if not q:
            return False
        if q not in self.cache:
            self.cache[q] = bool(self.f(q))
        return self.cache[q]

    @property
    def queries(self) -> int:
        return len(self.cache)


def bin_search(C: list[str], g: str, oracle: CountingOracle) -> int:
    lo, hi = 0, len(g)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if oracle(C + [g[mid:]]):
            lo = mid
        else:
            hi = mid
    return lo


def comp_aware_bin_split(s: str, oracle: CountingOracle, variant: str = "linear") -> list[str]:
    C: list[str] = []
    j = 0
    while True:
        i = bin_search(C, s, oracle)
        j = max(i + 1, j)
        n = len(s)
        if variant == "linear":
            while j < n and not oracle(C + [s[i:j], s[i + 1 :]]):
                j += 1
        else:  # exponential search for the end, then bisect
            step = 1
            prev = i  # s[i:i] is known too short
            while j < n and not oracle(C + [s[i:j], s[i + 1 :]]):
                prev = j
                j = min(n, j + step)
                step *= 2
            lo, hi = max(prev, i), j  # s[i:lo] too short, s[i:hi] enough
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if oracle(C + [s[i:mid], s[i + 1 :]]):
                    hi = mid
                else:
                    lo = mid
            j = hi
        if s[i:j] not in C:
            C.append(s[i:j])
        if j >= n:
            break
        s = s[i + 1 :]
        j -= i + 1
        if not s or oracle(C):
            break
    return C


def baseline_isolate(
    text: str,
    is_censored: Callable[[str], bool],
    separator: str = " ",
    variant: str = "linear",
    max_rules: int = 10,
) -> tuple[list[tuple[str, ...]], int]:
    """All rules found (CompAwareBinSplit + masking) and the query count."""
    oracle = CountingOracle(is_censored, separator)
    rules: list[tuple[str, ...]] = []
    s = text
    if not oracle([s]):
        return rules, oracle.queries
    for _ in range(max_rules):
        comps = comp_aware_bin_split(s, oracle, variant)
        rules.append(tuple(comps))
        masked = list(s)
        for c in comps:
            k = s.find(c)
            while k != -1:
                for x in range(k, k + len(c)):
                    masked[x] = separator
                k = s.find(c, k + 1)
        s = "".join(masked)
        if not oracle([s]):
            break
    return rules, oracle.queries
