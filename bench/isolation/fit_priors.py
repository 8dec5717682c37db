"""Fit the prior-free segmentation tables of ``harness.isolation`` on one corpus seed.

Usage (repository root, with ../shared/data/citizenlab present):

    python -m bench.isolation.fit_priors --seed 7

Prints ``_START_RATE`` and ``_END_RATE`` as Python literals (the tables in
``harness/isolation/fitted_tables.py`` were produced with ``--seed 7``; the benchmark
headline is seed 2019, never used for fitting).

Features are non-lexical: which segmentation (jieba with HMM, or without HMM)
has a word boundary there, the jieba dictionary frequency bucket and the
length of the word, and for ends the length in characters of the candidate
component.  No component string is looked at, so the tables carry no keyword
list.  They do carry jieba's frequencies, which is also how the benchmark's
filler is drawn (see RESULTS.md for that caveat).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from harness.isolation.algorithm import _boundary_features, _done_key, _end_key, _start_key  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--smooth", type=float, default=0.5)
    ap.add_argument("--no-freq", action="store_true", help="start features without jieba frequencies (ablation table)")
    args = ap.parse_args(argv)
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
        bf = _boundary_features(t)
        occ: dict[int, set[int]] = {}
        for r in s.rules:
            for c in r:
                o = t.find(c)
                while o != -1:
                    occ.setdefault(o, set()).add(o + len(c))
                    o = t.find(c, o + 1)
        for x in bf.starts:
            k = _start_key(bf, x, t, not args.no_freq)
            sc[k] += 1
            sp[k] += x in occ
        for x, ends in occ.items():
            if x not in bf.start_set:
                continue
            for e in range(x + 1, min(len(t), x + 40) + 1):
                k = _end_key(bf, x, e, len(t))
                ec[k] += 1
                ep[k] += e in ends
    dc: Counter = Counter()
    dp: Counter = Counter()
    for s in samples:
        for r in s.rules:
            comps = sorted(r, key=s.text.find)
            for n, c in enumerate(comps, 1):
                k = _done_key(n, len(c))
                dc[k] += 1
                dp[k] += n == len(comps)
    a = args.smooth
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
