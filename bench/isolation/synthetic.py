"""Benchmark isolate() against the CompAwareBinSplit baseline.

Usage (from the repository root):

    python -m bench.isolation.synthetic [--seed 2019] [--freq-exponent X] [--priors]

Needs the Citizen Lab data in ../shared/data/citizenlab (relative to the
repository root); exits with a message when it is absent.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.isolation.baseline import baseline_isolate  # noqa: E402
from harness.isolation.algorithm import Params, isolate

SEP = " "


def oracle_for(rules: list[tuple[str, ...]]) -> Callable[[str], bool]:
    def is_censored(q: str) -> bool:
        return any(all(c in q for c in r) for r in rules)

    return is_censored


def as_set(rules: list[tuple[str, ...]]) -> set[frozenset[str]]:
    return {frozenset(r) for r in rules}


def p95(xs: list[int]) -> float:
    s = sorted(xs)
    return float(s[min(len(s) - 1, int(round(0.95 * (len(s) - 1))))])


def summary(name: str, qs: list[int], exact: list[bool]) -> str:
    return (f"| {name} | {len(qs)} | {statistics.mean(qs):.2f} | {statistics.median(qs):.1f} "
            f"| {p95(qs):.0f} | {100 * sum(exact) / len(exact):.1f} % |")


class HeldOutPriors:
    """Known rules/components from OTHER sources than the embedded rules' (leave-one-source-out).

    A text's excluded sources are the origin source of each embedded rule (one of
    the sources the rule appears in, chosen by a hash of text and rule), or with
    ``strict`` every source the rule appears in.  The embedded rules themselves are
    always removed, so no text is given its own answer.
    """

    def __init__(self, rule_sources: dict[tuple[str, ...], set[str]], strict: bool = False) -> None:
        self.sources = rule_sources
        self.strict = strict
        self.by_comp: dict[str, list[tuple[str, ...]]] = {}
        for r in rule_sources:
            for c in r:
                self.by_comp.setdefault(c, []).append(r)
        self.by_char: dict[str, list[str]] = {}
        for c in self.by_comp:
            self.by_char.setdefault(c[0], []).append(c)

    def origin(self, rule: tuple[str, ...], text: str) -> str:
        ss = sorted(self.sources[rule])
        return ss[zlib.crc32((text + "\x1f".join(rule)).encode()) % len(ss)]

    def for_text(self, text: str, rules: list[tuple[str, ...]]) -> tuple[dict[str, int], list[tuple[str, ...]]]:
        excluded: set[str] = set()
        for r in rules:
            excluded |= self.sources[r] if self.strict else {self.origin(r, text)}
        embedded = set(rules)
        present = {c for ch in set(text) for c in self.by_char.get(ch, ()) if c in text}
        comps: dict[str, int] = {}
        known: set[tuple[str, ...]] = set()
        for c in present:
            n = 0
            for r in self.by_comp[c]:
                if r in embedded or not (self.sources[r] - excluded):
                    continue
                n += 1
                if all(x in present for x in r):
                    known.add(r)
            if n:
                comps[c] = n
        return comps, sorted(known)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=2019)
    ap.add_argument("--freq-exponent", type=float, default=Params().freq_exponent)
    ap.add_argument("--no-jieba", action="store_true")
    ap.add_argument("--priors", action="store_true", help="also pass all loaded rules as known_rules")
    ap.add_argument("--held-out", choices=["components", "rules", "both"], default=None,
                    help="leave-one-source-out priors: known components, known rules, or both")
    ap.add_argument("--comp-gain", type=float, default=Params().comp_gain)
    ap.add_argument("--comp-end-mass", type=float, default=Params().comp_end_mass)
    ap.add_argument("--pos", default="", help="part-of-speech weights, e.g. 'd=0.1,r=0.1,nz=3'")
    ap.add_argument("--strict", action="store_true", help="held-out priors exclude every source of the rule")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                    help="override any Params field (repeatable), e.g. --set model=power --set end_min_rate=0.01")
    ap.add_argument("--quick", action="store_true", help="skip the baselines (isolate figures only)")
    ap.add_argument("--filler", choices=["dict", "idf"], default="dict",
                    help="idf: filler words weighted by jieba's IDF table, not by dict.txt's frequencies "
                         "(robustness check for the frequency-calibrated priors)")
    args = ap.parse_args(argv)

    from bench.isolation import corpus

    if corpus.data_dir() is None:
        print(f"SKIP: Citizen Lab data not found at {corpus.DATA_DIR} "
              "(set CITIZENLAB_DATA to its chat-censorship folder)")
        return 0
    t0 = time.time()
    samples = corpus.build_corpus(seed=args.seed, filler=args.filler)
    known = corpus.load_rules(corpus.data_dir()) if args.priors else None  # type: ignore[arg-type]
    held = HeldOutPriors(corpus.load_rule_sources(corpus.data_dir()), args.strict) if args.held_out else None  # type: ignore[arg-type]
    params = Params(use_jieba=not args.no_jieba, freq_exponent=args.freq_exponent, comp_gain=args.comp_gain,
                    comp_end_mass=args.comp_end_mass,
                    pos_weights=tuple((k, float(v)) for k, v in (x.split("=") for x in args.pos.split(",") if x)))
    if args.set:
        import dataclasses

        over: dict[str, object] = {}
        for item in args.set:
            k, v = item.split("=", 1)
            cur = getattr(params, k)
            over[k] = (tuple(float(x) for x in v.split(",")) if isinstance(cur, tuple)
                       else v if isinstance(cur, str) else (v.lower() in ("1", "true", "yes")) if isinstance(cur, bool)
                       else type(cur)(v))
        params = dataclasses.replace(params, **over)

    groups = {"single-all": ["single", "overlap"], "multi": ["multi2", "multi3"]}
    res: dict[str, dict[str, tuple[list[int], list[bool]]]] = {}
    rules_total = {"base": 0, "new": 0, "exp": 0}
    rules_found = {"base": 0, "new": 0, "exp": 0}
    for s in samples:
        f = oracle_for(s.rules)
        truth = as_set(s.rules)
        if args.quick:
            b_rules, b_q = e_rules, e_q = s.rules, 1
        else:
            b_rules, b_q = baseline_isolate(s.text, f, SEP, "linear")
            e_rules, e_q = baseline_isolate(s.text, f, SEP, "exp")
        comps = None
        kr = known
        if held is not None:
            hc, hr = held.for_text(s.text, s.rules)
            comps = hc if args.held_out in ("components", "both") else None
            kr = hr if args.held_out in ("rules", "both") else None
        r = isolate(s.text, f, SEP, known_rules=kr, params=params, known_components=comps)
        assert len({q for q, _ in r.trace}) == len(r.trace), "duplicate query"
        for key, rules, q in (("base", b_rules, b_q), ("exp", e_rules, e_q), ("new", r.rules, r.queries)):
            got = as_set(rules)
            for kind in [s.kind] + [g for g, ks in groups.items() if s.kind in ks]:
                qs, ex = res.setdefault(key, {}).setdefault(kind, ([], []))
                qs.append(q)
                ex.append(got == truth)
            if s.kind in groups["multi"]:
                rules_total[key] += len(truth)
                rules_found[key] += len(truth & got)

    names = {"base": "CompAwareBinSplit (linear end)", "exp": "CompAwareBinSplit (exp. end)",
             "new": "isolate" + (" + known_rules" if known else "")
             + (f" + held-out {args.held_out}{' (strict)' if args.strict else ''}" if args.held_out else "")}
    print(f"seed={args.seed} filler={args.filler} texts={len(samples)} model={params.model} freq_exponent={args.freq_exponent} "
          f"jieba={not args.no_jieba} known_rules={'yes' if known else 'no'} held_out={args.held_out} strict={args.strict}")
    print("| algorithm / texts | n | mean | median | p95 | exact |")
    print("|---|---:|---:|---:|---:|---:|")
    for kind in ("single-all", "single", "overlap", "multi", "multi2", "multi3"):
        for key in ("base", "exp", "new"):
            qs, ex = res[key][kind]
            print(summary(f"{names[key]} / {kind}", qs, ex))
    for key in ("base", "exp", "new"):
        print(f"{names[key]}: multi-rule texts, rules found {rules_found[key]}/{rules_total[key]}")
    sb = statistics.mean(res["base"]["single-all"][0])
    se = statistics.mean(res["exp"]["single-all"][0])
    sn = statistics.mean(res["new"]["single-all"][0])
    print(f"single-rule mean ratio isolate / best baseline = {sn / min(sb, se):.3f}")
    print(f"elapsed {time.time() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
