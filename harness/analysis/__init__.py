"""Reading stored measurements back: comparison, history, reports, exchange, re-classification.

- :mod:`harness.analysis.diff`: the comparator (which terms changed verdict, when, where);
- :mod:`harness.analysis.timeline`: one term through time, and the runs with their counts;
- :mod:`harness.analysis.report`: the self-contained HTML and Markdown reports;
- :mod:`harness.analysis.export`: JSONL/CSV/Parquet exports, and imports merged into a store;
- :mod:`harness.analysis.reclassify`: re-apply current specs to stored evidence, sending nothing.

Reads the store (and, for re-classification, the platform specs); never sends a request.
"""

from .diff import DiffResult, diff_runs, resolve_run

__all__ = ["DiffResult", "diff_runs", "resolve_run"]
