"""Import every file of the Citizen Lab working copy and print what was imported and skipped.

    .venv/bin/python bench/keywords/import_all.py [/work/shared/data/citizenlab] [--json]

Runs `harness.importers.import_file` (format auto) on every data file (README.md excepted),
writes nothing, and prints one row per file plus totals by shape, skip reason and flag.
A file that cannot be imported (not a keyword list: codebooks, a timeline) is listed with
the error the CLI would print. Needs ../shared; the test suite does not.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from harness.errors import HarnessError  # noqa: E402
from harness.keywords.importers import import_file  # noqa: E402


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    as_json = "--json" in sys.argv
    root = Path(args[0]) if args else Path("/work/shared/data/citizenlab")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.name != "README.md")
    rows = []
    shapes: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    flags: Counter[str] = Counter()
    rejected: list[tuple[str, str]] = []
    totals = Counter()
    t0 = time.perf_counter()
    for f in files:
        rel = str(f.relative_to(root))
        try:
            result = import_file(f)
        except HarnessError as exc:
            rejected.append((rel, str(exc).replace(str(f), rel)))
            continue
        r = result.report
        shapes[r.format] += 1
        for k, t in r.skipped.items():
            reasons[k] += t.count
        for k, t in r.flags.items():
            flags[k] += t.count
        totals.update(rows=r.rows, imported=r.imported, merged=r.merged, skipped=r.skipped_total)
        assert r.rows == r.imported + r.merged + r.skipped_total, f"{rel}: the report does not add up"
        rows.append((rel, r.format, r.rows, r.imported, r.merged, r.skipped_total,
                     ", ".join(f"{k} {t.count}" for k, t in sorted(r.skipped.items(), key=lambda kv: -kv[1].count))))
    elapsed = time.perf_counter() - t0
    if as_json:
        print(json.dumps({"files": len(files), "imported_files": len(rows), "rejected": rejected,
                          "totals": totals, "shapes": shapes, "skip_reasons": reasons, "flags": flags,
                          "per_file": rows, "seconds": round(elapsed, 1)}, ensure_ascii=False, indent=1))
        return
    w = max(len(r[0]) for r in rows) if rows else 10
    w = min(w, 90)
    print(f"{'file':<{w}} {'shape':<6} {'rows':>7} {'import':>7} {'merged':>6} {'skip':>6}  skipped by reason")
    for rel, fmt, n, imp, merged, skipped, why in rows:
        name = rel if len(rel) <= w else "…" + rel[-(w - 1):]
        print(f"{name:<{w}} {fmt:<6} {n:>7} {imp:>7} {merged:>6} {skipped:>6}  {why}")
    print()
    print(f"files: {len(files)}; imported: {len(rows)}; rejected (not keyword lists or malformed): {len(rejected)}")
    for rel, err in rejected:
        print(f"  rejected {err}")
    print(f"rows {totals['rows']}: imported {totals['imported']} entries, merged {totals['merged']} written "
          f"variants, skipped {totals['skipped']}")
    print("shapes: " + ", ".join(f"{k} {v}" for k, v in shapes.most_common()))
    print("skipped by reason: " + ", ".join(f"{k} {v}" for k, v in reasons.most_common()))
    print("flags: " + ", ".join(f"{k} {v}" for k, v in flags.most_common()))
    print(f"time: {elapsed:.1f} s")


if __name__ == "__main__":
    main()
