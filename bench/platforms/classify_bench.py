"""How fast the built-in specs classify their fixture pages, and how long loading specs takes.

    .venv/bin/python bench/platforms/classify_bench.py [--repeat 200]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from harness.platforms.classify import classify_http
from harness.platforms.registry import BUILTIN_DIR, PlatformRegistry, load_spec

PAGES = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "platforms"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=200)
    args = ap.parse_args()
    t0 = time.perf_counter()
    specs = [load_spec(p) for p in sorted(BUILTIN_DIR.glob("*.yaml"))]
    print(f"parse {len(specs)} built-in specs (cold): {time.perf_counter() - t0:.3f} s")
    t0 = time.perf_counter()
    PlatformRegistry.default(include_cwd=False).get("baidu")
    print(f"registry + one spec (cached): {1000 * (time.perf_counter() - t0):.2f} ms")
    reg = PlatformRegistry.default(include_cwd=False)
    print(f"{'platform':14} {'pages':>5} {'median µs/page':>15} {'pages/s':>9}")
    for d in sorted(p for p in PAGES.iterdir() if p.is_dir() and not p.name.startswith("_")):
        spec = reg.get(d.name)
        files = [f for f in d.iterdir() if f.suffix in (".html", ".json")]
        bodies = [(f, f.read_bytes()) for f in files]
        times = []
        for _ in range(args.repeat):
            for f, body in bodies:
                ctype = "application/json" if f.suffix == ".json" else "text/html"
                t = time.perf_counter()
                classify_http(spec, 200, {"content-type": ctype}, body)
                times.append(time.perf_counter() - t)
        med = statistics.median(times)
        print(f"{d.name:14} {len(files):5} {med * 1e6:15.0f} {1 / med:9.0f}")


if __name__ == "__main__":
    main()
