"""Sample testing: find new keyword rules by testing texts (e.g. news titles).

As in the Citizen Lab's ongoing news testing, each text is sent to a platform; a
censored one is isolated (under a per-text budget) and every rule found is appended to
``keywords/discovered-<platform>.yaml``, a normal :class:`~harness.models.KeywordList`
whose entries carry their provenance (source text id, date, platform, queries used).

Resumable: a state file beside the list (``.discovered-<platform>.state.json``) records
which texts (by content hash) were finished, so a rerun skips them. A text whose
isolation stopped on a failure is not recorded as finished and is tried again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field

from ..errors import InputError, NotFoundError
from ..keywords.lists import entry_key, iter_list_files, load_keyword_list
from ..models import Keyword, KeywordList
from ..platforms.spec import PlatformSpec
from ..yamlio import MAX_LARGE_INPUT, atomic_write_text, read_text
from .evidence import IsolationEvidence
from .oracle import OracleOptions, PlatformIsolation, PlatformOracle, Priors, isolate_with

DISCOVERED_CATEGORY = "other"
DISCOVERED_TAG = "discovered"
MAX_TEXT_CHARS = 2000


@dataclass(frozen=True)
class SampleText:
    """One text to test; ``text_id`` names where it came from (``file:line`` or file name)."""

    text_id: str
    text: str

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()[:16]


def load_texts(path: str | Path) -> list[SampleText]:
    """Each non-empty line of a file, or each ``*.txt`` file of a folder, is a text."""
    path = Path(path)
    if not path.exists():
        raise NotFoundError(f"texts not found: {path}")
    out: list[SampleText] = []
    files = sorted(path.glob("*.txt")) if path.is_dir() else [path]
    if path.is_dir() and not files:
        raise InputError("the folder holds no .txt files", path)
    for f in files:
        content = read_text(f, InputError, MAX_LARGE_INPUT)  # bounded; no FIFO, device or folder
        if path.is_dir():
            text = " ".join(content.split())
            if text:
                out.append(_checked(SampleText(f.name, text), f, None))
            continue
        for i, line in enumerate(content.splitlines(), 1):
            text = line.strip()
            if text:  # no comment syntax: Weibo-style titles start with #话题#
                out.append(_checked(SampleText(f"{f.name}:{i}", text), f, i))
    return out


def _checked(t: SampleText, path: Path, line: int | None) -> SampleText:
    if len(t.text) > MAX_TEXT_CHARS:
        raise InputError(f"text is {len(t.text)} characters long (at most {MAX_TEXT_CHARS})", path, line)
    return t


def load_priors(paths: Iterable[str | Path], *, skip_missing: bool = False) -> Priors:
    """Known rules and component counts from keyword lists (files, or folders of ``*.yaml``).

    Entries of category ``control`` (benign terms, never censored by design) are left out.
    ``skip_missing``: a path that does not exist adds nothing (else :class:`NotFoundError`).
    """
    priors = Priors()
    seen: set[tuple[str, ...]] = set()
    for p in paths:
        p = Path(p)
        if not p.exists():
            if skip_missing:
                continue
            raise NotFoundError(f"priors not found: {p}")
        for f in (iter_list_files(p) if p.is_dir() else [p]):
            priors.files.append(str(f))
            for e in load_keyword_list(f).keyword_list.entries:
                if e.category == "control":
                    continue
                key = entry_key(e)
                if key in seen:
                    continue
                seen.add(key)
                priors.rules.append(tuple(e.components))
                for c in set(e.components):
                    priors.components[c] = priors.components.get(c, 0) + 1
    return priors


def workspace_priors(keywords_dir: Path | None, extra: Iterable[str | Path] = (), *, enabled: bool = True) -> Priors | None:
    """The priors an isolation uses by default: every keyword list of the workspace's keywords
    folder (the curated lists and the ``discovered-*.yaml`` rules of all platforms), plus
    ``extra`` lists. ``enabled=False`` (``--no-priors``): None. Enabled priors may start empty
    (a new workspace) and grow with the rules found."""
    if not enabled:
        return None
    paths: list[str | Path] = list(extra)
    if keywords_dir is not None and Path(keywords_dir).is_dir():
        paths.insert(0, keywords_dir)
    return load_priors(paths)


# --------------------------------------------------------------------------- the discovered list


def discovered_path(keywords_dir: Path, platform: str) -> Path:
    return Path(keywords_dir) / f"discovered-{platform}.yaml"


class DiscoveredList:
    """``keywords/discovered-<platform>.yaml``: load, add rules without duplicates, save atomically."""

    def __init__(self, path: Path, platform: str):
        self.path = Path(path)
        self.platform = platform
        if self.path.exists():
            self.keyword_list = load_keyword_list(self.path).keyword_list
        else:
            self.keyword_list = KeywordList(
                name=f"discovered-{platform}",
                description=f"Rules found by isolating censored texts on {platform} (harness discover/isolate).",
                source="discovered",
                categories=[DISCOVERED_CATEGORY],
                entries=[],
            )
        self._keys = {entry_key(e) for e in self.keyword_list.entries}

    def __contains__(self, rule: Iterable[str]) -> bool:
        return entry_key(Keyword(components=list(rule))) in self._keys

    def add(self, rule: tuple[str, ...], *, text_id: str, queries: int, complete: bool,
            when: dt.date | None = None, origin: str = "discover", run_id: str | None = None) -> bool:
        """Add one rule with its provenance; False (and nothing changes) if it is already listed.

        ``run_id``: the store run holding the isolation's queries (named in the provenance)."""
        when = when or dt.datetime.now(dt.timezone.utc).date()
        evidence = f", evidence run {run_id}" if run_id else ""
        entry = Keyword(
            components=list(rule), category=DISCOVERED_CATEGORY,
            tags=[DISCOVERED_TAG, f"platform:{self.platform}"],
            source=f"harness {origin}: {self.platform}, text {text_id}, {when.isoformat()}, {queries} queries{evidence}",
            date_added=when,
            notes=None if complete else "isolation of the text was incomplete (budget or failure); this rule is exact",
        )
        key = entry_key(entry)
        if key in self._keys:
            return False
        self._keys.add(key)
        self.keyword_list.entries.append(entry)
        return True

    def save(self) -> None:
        data = self.keyword_list.model_dump(mode="json", exclude_defaults=True)
        data.setdefault("entries", [])
        data["entries"] = [_compact_entry(e) for e in data["entries"]]
        header = "# Written by `harness discover` / auto-isolation. Entries are appended, never duplicated.\n"
        atomic_write_text(self.path, header + yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=120))


def _compact_entry(e: dict[str, Any]) -> dict[str, Any]:
    comps = e.get("components") or []
    if e.get("term") == " + ".join(comps):
        e.pop("term")  # derived from components on load
    return e


# --------------------------------------------------------------------------- state


class TextRecord(BaseModel):
    text_id: str
    censored: bool | None
    rules: list[list[str]] = Field(default_factory=list)
    queries: int = 0
    complete: bool = True
    finished_at: str


class DiscoveryState(BaseModel):
    platform: str
    done: dict[str, TextRecord] = Field(default_factory=dict)  # by text digest


def state_path(keywords_dir: Path, platform: str) -> Path:
    return Path(keywords_dir) / f".discovered-{platform}.state.json"


def load_state(path: Path, platform: str) -> DiscoveryState:
    if not path.exists():
        return DiscoveryState(platform=platform)
    try:
        state = DiscoveryState.model_validate_json(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise InputError(f"unreadable discovery state ({type(exc).__name__}); delete it to start over", path) from None
    if state.platform != platform:
        raise InputError(f"state belongs to platform {state.platform!r}, not {platform!r}", path)
    return state


def check_outputs(keywords_dir: Path, platform: str) -> None:
    """Raise now (file:line) if the discovered list or the state file is unreadable."""
    DiscoveredList(discovered_path(keywords_dir, platform), platform)
    load_state(state_path(keywords_dir, platform), platform)


# --------------------------------------------------------------------------- the loop


@dataclass
class DiscoverySummary:
    platform: str
    texts: int = 0
    skipped: int = 0
    tested: int = 0
    censored: int = 0
    incomplete: int = 0
    failed: int = 0
    queries: int = 0
    requests: int = 0
    new_rules: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    list_path: str = ""
    run_id: str | None = None  # the store run holding every query as evidence

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


TextCallback = Callable[[SampleText, PlatformIsolation | None], None]
QueryCallback = Callable[[int, int], None]
"""``on_query(queries, rules)``: isolation queries and rules found so far in this discovery (all texts)."""


def add_rules_to_priors(priors: Priors | None, rules: Iterable[tuple[str, ...]]) -> None:
    """Rules just found become priors of the next isolations (the rule store grows as it goes)."""
    if priors is None:
        return
    known = {tuple(sorted(r)) for r in priors.rules}
    for rule in rules:
        if tuple(sorted(rule)) in known:
            continue
        known.add(tuple(sorted(rule)))
        priors.rules.append(tuple(rule))
        for c in set(rule):
            priors.components[c] = priors.components.get(c, 0) + 1


async def discover(
    spec: PlatformSpec,
    texts: list[SampleText],
    keywords_dir: Path,
    budget: int | None = 40,
    options: OracleOptions | None = None,
    on_text: TextCallback | None = None,
    max_failed: int = 3,
    priors: Priors | None = None,
    evidence: IsolationEvidence | None = None,
    on_query: QueryCallback | None = None,
) -> DiscoverySummary:
    """Test every text not done yet, isolate censored ones, append new rules.

    The list and the state are saved after every text, so an interrupted discovery
    loses at most the text in flight. After ``max_failed`` texts in a row end on a
    failure the platform is considered down and the loop stops. ``priors`` (if any) grow
    with every rule found; ``evidence`` stores every query in one isolation run.
    """
    lst = DiscoveredList(discovered_path(keywords_dir, spec.name), spec.name)
    spath = state_path(keywords_dir, spec.name)
    state = load_state(spath, spec.name)
    summary = DiscoverySummary(spec.name, texts=len(texts), list_path=str(lst.path))
    failed_in_row = 0
    rules_so_far = 0
    finished = False
    try:
        async with PlatformOracle(spec, options, evidence) as oracle:
            for t in texts:
                if t.digest in state.done:
                    summary.skipped += 1
                    if on_text:
                        on_text(t, None)
                    continue
                progress = _offset(on_query, summary.queries, rules_so_far) if on_query else None
                res = await isolate_with(oracle, t.text, budget, priors, progress)
                rules_so_far += len(res.rules)
                if _one_text(summary, lst, state, t, res):
                    failed_in_row += 1
                else:
                    failed_in_row = 0
                add_rules_to_priors(priors, res.rules)
                atomic_write_text(spath, state.model_dump_json(indent=1))
                if on_text:
                    on_text(t, res)
                if failed_in_row >= max_failed:
                    summary.errors.append(f"stopped after {failed_in_row} texts in a row failed")
                    break
        finished = True
    finally:
        if evidence is not None:
            evidence.close(finished)
            summary.run_id = evidence.run_id
    return summary


def _offset(on_query: QueryCallback, queries: int, rules: int) -> QueryCallback:
    """One text's progress, counted on top of the texts before it."""
    return lambda q, r: on_query(queries + q, rules + r)


def _one_text(summary: DiscoverySummary, lst: DiscoveredList, state: DiscoveryState, t: SampleText,
              res: PlatformIsolation) -> bool:
    """Account for one isolated text (list, state, summary); True when it ended on a failure."""
    summary.tested += 1
    summary.queries += res.queries
    summary.requests += res.requests
    added = []
    for rule in res.rules:
        if lst.add(rule, text_id=t.text_id, queries=res.queries, complete=res.complete, run_id=res.run_id):
            added.append(rule)
            summary.new_rules.append({"text_id": t.text_id, "rule": list(rule)})
    if added:
        lst.save()
    if res.error is not None:
        summary.failed += 1
        summary.errors.append(f"{t.text_id}: {res.error}")
        return True
    summary.censored += bool(res.censored)
    summary.incomplete += not res.complete
    state.done[t.digest] = TextRecord(
        text_id=t.text_id, censored=res.censored, rules=[list(r) for r in res.rules],
        queries=res.queries, complete=res.complete,
        finished_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    )
    return False
