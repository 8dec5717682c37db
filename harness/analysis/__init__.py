"""Reading stored measurements back: comparison, history, reports, exchange, re-classification.

- :mod:`harness.analysis.diff`: the comparator (which terms changed verdict, when, where);
- :mod:`harness.analysis.items`: the comparator for watched items (removals with their time windows,
  one item through time, time to removal);
- :mod:`harness.analysis.timeline`: one term through time, and the runs with their counts;
- :mod:`harness.analysis.report`: the self-contained HTML and Markdown reports;
- :mod:`harness.analysis.export`: JSONL/CSV/Parquet exports, and imports merged into a store;
- :mod:`harness.analysis.reclassify`: re-apply current specs to stored evidence, sending nothing.

Reads the store (and, for re-classification, the platform specs); never sends a request.
"""

from .diff import DiffResult, diff_runs, resolve_run
from .items import ItemDiff, diff_items, item_timeline, survival

__all__ = ["DiffResult", "ItemDiff", "diff_items", "diff_runs", "item_timeline", "resolve_run", "survival"]
