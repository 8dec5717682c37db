"""Search feeds the watch list: after a run, the top results of chosen terms become watched items.

A probe set's ``watch_results: {terms: [...], top: 10, into: LIST}`` keeps, for those terms,
the links of their results (``test_keys.result_urls``, read by the search spec's
``result_url`` extractor). When the run is complete, each link an item spec reads is added to
the watch list ``into`` (default ``watch/<probe set>-results.yaml``, beside the probe set's
folder), with why it is watched (``result 3 of '六四' on baidu, run ...``), the term's
category and the tags ``search-result`` and the platform. A probe set that also lists that
watch list under ``items`` fetches them from its next run on, so a researcher learns later
which results of a sensitive search were taken down.

Links no item spec reads (a Sogou ``/link?url=...`` redirect, an ordinary web page) are
counted, not enrolled. Nothing is sent here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin

from ..measure.plan import RunPlan
from ..models import WatchedItem
from ..platforms.items import ItemRegistry
from ..store.sqlite import Store
from ..watch.lists import add_items, default_watch_dirs, today, watch_list_path

__all__ = ["EnrolResult", "enrol_search_results", "results_list_path"]


@dataclass
class EnrolResult:
    path: Path
    added: int = 0
    already: int = 0
    not_items: int = 0
    terms: int = 0
    examples_not_items: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {"watch_list": str(self.path), "added": self.added, "already": self.already,
                "not_items": self.not_items, "terms": self.terms}


def results_list_path(plan: RunPlan, watch_dirs: list[Path] | None = None) -> Path:
    """Where a probe set's enrolled results go: ``watch_results.into``, else ``<probe set>-results``."""
    wr = plan.probe_set.watch_results
    name = (wr.into if wr is not None and wr.into else None) or f"{plan.probe_set.name}-results"
    dirs = list(watch_dirs or [])
    if plan.source is not None:
        dirs.insert(0, plan.source.resolve().parent.parent / "watch")
    return watch_list_path(name, default_watch_dirs(dirs))


def enrol_search_results(store: Store, run_id: str, plan: RunPlan, items: ItemRegistry | None = None,
                         watch_dirs: list[Path] | None = None) -> EnrolResult | None:
    """Add the top result links of the probe set's ``watch_results`` terms in ``run_id`` to its watch list."""
    wr = plan.probe_set.watch_results
    if wr is None or not plan.watch_terms:
        return None
    registry = items or ItemRegistry.default()
    path = results_list_path(plan, watch_dirs)
    result = EnrolResult(path)
    found: dict[tuple[str, str], tuple[list[str], str | None]] = {}
    for platform, terms in plan.watch_terms.items():
        marks = ",".join("?" * len(terms))
        for term, doc, category in store.conn.execute(
            f"SELECT input, doc, category FROM measurements"
            f" WHERE run_id = ? AND platform = ? AND role = 'probe' AND input IN ({marks})"
            f" ORDER BY measurement_start_time, rowid", (run_id, platform, *sorted(terms))):
            urls = (json.loads(doc).get("test_keys") or {}).get("result_urls")
            if urls:
                found[(platform, term)] = (list(urls), category)  # the last answer of the term wins
    wanted: list[WatchedItem] = []
    for term in wr.terms:
        for platform in plan.watch_terms:
            if (platform, term) not in found:
                continue
            result.terms += 1
            urls, category = found[(platform, term)]
            base = plan.specs[platform].base_url + "/"
            for rank, link in enumerate(urls[: wr.top], 1):
                url = urljoin(base, link)
                spec = registry.spec_for(url)
                if spec is None:
                    result.not_items += 1
                    if len(result.examples_not_items) < 3:
                        result.examples_not_items.append(url)
                    continue
                try:
                    wanted.append(WatchedItem(
                        url=url, platform=spec.platform, why=f"result {rank} of {term!r} on {platform}, run {run_id}",
                        category=category or "", tags=["search-result", platform], source=f"{platform} search",
                        date_added=today()))
                except ValueError:  # an overlong or malformed link
                    result.not_items += 1
    if wanted:
        added = add_items(path, wanted, name=path.stem,
                          description=f"results of watched searches of probe set {plan.probe_set.name}")
        result.added, result.already = len(added.added), len(added.already)
    return result
