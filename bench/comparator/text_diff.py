"""Time the text diff of the two big runs of a store made by generate.py (issue 14).

    python bench/comparator/generate.py bench/out/comparator.db --per-run 1000000 --runs 3
    python bench/comparator/text_diff.py bench/out/comparator.db

Prints, for the 21,893 changes between bench-0000 and bench-0001: the comparison itself
(``diff_runs``, the same for every output), then the drawing of every output form in this
process (TSV as piped, the terminal table with its default --limit, the table with --all at
80 and 200 columns, JSON), then ``harness diff`` end to end as a user runs it with stdout a
pipe (TSV, every row) and as a table with --all. Wall times depend on the machine's load,
printed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def _time(fn) -> float:  # noqa: ANN001
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("store")
    ap.add_argument("--a", default="bench-0000")
    ap.add_argument("--b", default="bench-0001")
    args = ap.parse_args()

    from harness.analysis.diff import diff_runs, to_json
    from harness.cli import _common, _output, diff as diff_cli
    from harness.store.sqlite import Store

    with Store(args.store, readonly=True) as st:
        t0 = time.perf_counter()
        result = diff_runs(st, args.a, args.b)
        compare = time.perf_counter() - t0
    print(f"diff_runs: {len(result.changes):,} changes in {compare:.2f} s")
    sink = io.StringIO()
    for label, fmt, limit, width in (("tsv (piped)", _output.Format.tsv, None, 80),
                                     ("table, default --limit 50, 80 columns", _output.Format.table, 50, 80),
                                     ("table --all, 80 columns", _output.Format.table, None, 80),
                                     ("table --all, 200 columns", _output.Format.table, None, 200)):
        console = _common.SafeConsole(file=sink, width=width, highlight=False, force_terminal=True)
        _output.console = console
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            took = _time(lambda: diff_cli.print_diff(result, fmt, limit))
        print(f"draw {label}: {took:.2f} s")
        sink.seek(0)
        sink.truncate()
    print(f"draw json: {_time(lambda: to_json(result)):.2f} s")
    for label, extra in (("harness diff (stdout a pipe: TSV, every row)", []),
                         ("harness diff --format table --all (COLUMNS=80)", ["--format", "table", "--all"])):
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "harness", "diff", args.a, args.b, "--store", args.store, *extra],
                              capture_output=True, text=True, env={**os.environ, "COLUMNS": "80"})
        wall = time.perf_counter() - t0
        rows = proc.stdout.count("\n")
        print(f"{label}: {wall:.2f} s end to end, exit {proc.returncode}, {rows:,} lines")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
