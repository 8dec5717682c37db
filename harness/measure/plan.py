"""Probe sets and run plans: load a probe set, resolve its lists and platforms, lay out every task.

A plan is deterministic: the same probe set, keyword lists, watch lists and specs give the
same ordered task list with the same stable keys (``platform, role, term, repeat,
variant``; for a watched item ``item spec, item, URL, repeat``). The engine skips keys
already stored, which is what makes a killed run resumable without losing or duplicating a
measurement. Nothing here sends a request.

Watched items (``items:`` in a probe set) are read by item specs
(:mod:`harness.platforms.items`): each item goes to the spec whose URL patterns read it (one
named in the probe set's ``platforms`` first, else the platform's default spec). Each item
spec becomes one more "platform" of the run, whose truism is the platform's control item
(a watch list item marked ``control: true``, or the spec's own ``control``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import HarnessError, NotFoundError, PlatformSpecError, ProbeSetError, WatchListError
from ..keywords.lists import LoadedList, default_search_dirs, find_list, load_keyword_list, select_entries
from ..keywords.variants import expand as expand_variants
from ..models import Keyword, PlatformSelection, ProbeRole, ProbeSet, RateLimit
from ..platforms.adapters import get_adapter
from ..platforms.items import ItemRegistry, ItemSpec
from ..platforms.registry import PlatformRegistry
from ..platforms.spec import PlatformSpec
from ..watch.lists import LoadedWatchList, default_watch_dirs, find_watch_list, load_watch_list, select_items
from ..yamlio import LocatedYaml, load_model

__all__ = ["ITEM_ROLE", "ProbeTask", "RunPlan", "load_probe_set", "plan_run"]

ITEM_ROLE: ProbeRole = "item"


@dataclass(frozen=True)
class ProbeTask:
    key: str
    platform: str
    role: ProbeRole
    keyword: Keyword
    list_name: str | None
    repeat: int = 0
    variant: str | None = None


@dataclass
class RunPlan:
    probe_set: ProbeSet
    probe_set_sha256: str
    specs: dict[str, PlatformSpec]
    tasks: list[ProbeTask]
    rate_limits: dict[str, RateLimit]
    soft_test: dict[str, bool]
    source: Path | None = None
    item_specs: dict[str, ItemSpec] = field(default_factory=dict)
    """Item specs of the run, by name (each is also in ``specs``, as the platform spec the engine sends through)."""
    watch_terms: dict[str, set[str]] = field(default_factory=dict)
    """Search platform -> terms whose result links are kept (the probe set's ``watch_results``)."""

    def tasks_for(self, platform: str) -> list[ProbeTask]:
        return [t for t in self.tasks if t.platform == platform]

    def platform_of(self, name: str) -> str:
        """The platform measurements are stored under: a search spec's name, an item spec's platform."""
        item = self.item_specs.get(name)
        return item.platform if item is not None else name

    def measured_platforms(self) -> list[str]:
        return list(dict.fromkeys(self.platform_of(n) for n in self.specs))


def _task_key(platform: str, role: str, term: str, repeat: int, variant: str | None) -> str:
    return "\x1f".join((platform, role, term, str(repeat), variant or ""))


POSITIVE_TAG = "censored_on:"
"""A keyword entry tagged ``censored_on:baidu`` is a positive control on baidu (public evidence in its ``source``)."""


_TAGGED: dict[tuple[str, int, int], list[tuple[Keyword, str]]] = {}


def _tagged_entries(path: Path) -> list[tuple[Keyword, str]]:
    """The entries of a project list tagged ``censored_on:...`` (cached per file version: every plan reads them)."""
    try:
        st = path.stat()
    except OSError:
        return []
    key = (str(path), st.st_mtime_ns, st.st_size)
    if key not in _TAGGED:
        try:
            loaded = load_keyword_list(path)
        except HarnessError:
            _TAGGED[key] = []  # not a keyword list: nothing tagged there
        else:
            _TAGGED[key] = [(e, loaded.name) for e in loaded.keyword_list.entries
                            if any(t.startswith(POSITIVE_TAG) for t in e.tags)]
    return _TAGGED[key]


def _positive_controls(probe_set: ProbeSet, platforms: list[str], dirs: list[Path],
                       where: Callable[[tuple[str | int, ...]], tuple[Path | None, int | None]]
                       ) -> dict[str, list[tuple[Keyword, str | None]]]:
    """Per platform, the terms known to be censored there: the probe set's own first, then
    entries of the positive-control lists tagged ``censored_on:PLATFORM``, at most
    ``per_platform`` of them. Without ``lists``, the project's curated lists (keywords/ of the project) are read;
    a named list that is missing is an error."""
    pos = probe_set.controls.positive
    unknown = sorted(set(pos.terms) - set(platforms))
    if unknown:
        path, line = where(("controls", "positive", "terms"))
        raise ProbeSetError(f"positive controls given for {', '.join(unknown)}, which the probe set does not probe",
                            path, line)
    tagged: list[tuple[Keyword, str]] = []
    if pos.lists is None:  # the project's curated lists (none here when the harness is installed without them)
        project = default_search_dirs()[-1]
        paths = sorted(p for p in project.glob("*.yaml") if p.stem not in ("categories", "controls")) \
            if project.is_dir() else []
        for path in paths:
            tagged.extend(_tagged_entries(path))
    for j, name in enumerate(pos.lists or []):
        try:
            loaded = load_keyword_list(find_list(name, dirs))
        except NotFoundError as exc:
            path, line = where(("controls", "positive", "lists", j))
            raise ProbeSetError(str(exc), path, line) from None
        tagged.extend((e, loaded.name) for e in loaded.keyword_list.entries)
    out: dict[str, list[tuple[Keyword, str | None]]] = {}
    for pname in platforms:
        chosen: list[tuple[Keyword, str | None]] = [(Keyword(term=t), None)
                                                    for t in pos.terms.get(pname, [])]
        chosen += [(e, ln) for e, ln in tagged if POSITIVE_TAG + pname in e.tags]
        seen: set[str] = set()
        unique = []
        for kw, ln in chosen:
            if kw.term not in seen:
                seen.add(kw.term)
                unique.append((kw, ln))
        if unique[: pos.per_platform]:
            out[pname] = unique[: pos.per_platform]
    return out


def load_probe_set(path: str | Path) -> tuple[ProbeSet, LocatedYaml]:
    return load_model(path, ProbeSet, ProbeSetError)


def plan_run(
    probe_set: ProbeSet,
    registry: PlatformRegistry,
    *,
    doc: LocatedYaml | None = None,
    keyword_dirs: list[Path] | None = None,
    base_urls: dict[str, str] | None = None,
    items: ItemRegistry | None = None,
    watch_dirs: list[Path] | None = None,
) -> RunPlan:
    """Resolve lists and platforms and lay out every task of a run, in a stable order."""
    src = doc.path if doc else None
    dirs = list(keyword_dirs or [])
    if src is not None:
        dirs.append(src.resolve().parent.parent / "keywords")
    dirs = default_search_dirs(dirs)

    def where(loc: tuple[str | int, ...]) -> tuple[Path | None, int | None]:
        return (src, doc.line_of(loc) if doc else None)

    def load_list(name: str, loc: tuple[str | int, ...]) -> LoadedList:
        try:
            return load_keyword_list(find_list(name, dirs))
        except NotFoundError as exc:
            path, line = where(loc)
            raise ProbeSetError(str(exc), path, line) from None

    item_registry = items
    if item_registry is None and (probe_set.items or any(sel.name not in registry for sel in probe_set.platforms)):
        item_registry = ItemRegistry.default()
    specs: dict[str, PlatformSpec] = {}
    item_selections: dict[str, PlatformSelection] = {}
    for i, sel in enumerate(probe_set.platforms):
        if sel.spec:
            base = src.parent if src else Path.cwd()
            spec_path = (base / sel.spec) if not Path(sel.spec).is_absolute() else Path(sel.spec)
            spec = registry.add_file(spec_path)
            if spec.name != sel.name:
                path, line = where(("platforms", i, "spec"))
                raise ProbeSetError(f"spec {sel.spec} defines platform {spec.name!r}, not {sel.name!r}", path, line)
        elif sel.name not in registry:
            if item_registry is not None and sel.name in item_registry:
                item_selections[sel.name] = sel  # options for an item spec (base_url, rate_limit ...)
                continue
            path, line = where(("platforms", i, "name"))
            known = registry.names() + (item_registry.names() if item_registry is not None else [])
            raise ProbeSetError(f"unknown platform {sel.name!r} (known: {', '.join(known)})", path, line)
        spec = registry.get(sel.name)
        if spec.adapter:
            try:
                get_adapter(spec.adapter)
            except PlatformSpecError as exc:
                raise PlatformSpecError(exc.message, registry.origin(sel.name)) from None
        url = (base_urls or {}).get(sel.name) or sel.base_url
        if url:
            spec = spec.model_copy(update={"base_url": url.rstrip("/")})
        specs[sel.name] = spec
    if probe_set.keywords and not specs:
        path, line = where(("platforms",))
        raise ProbeSetError("keywords need at least one search platform (the platforms named are item specs)", path, line)

    entries: list[tuple[Keyword, str]] = []
    seen: set[str] = set()
    for i, ksel in enumerate(probe_set.keywords):
        loaded = load_list(ksel.list_ref, ("keywords", i, "list"))
        for e in select_entries(loaded, ksel):
            if e.term not in seen:
                seen.add(e.term)
                entries.append((e, loaded.name))
    if probe_set.keywords and not entries:
        raise ProbeSetError("the keyword selection is empty: no entry matches the filters", src, None)
    # Each entry, then its declared forms and requested variants (harness.keywords.variants) as their own
    # probes: (keyword sent, list, variant name, entry term for the stable task key).
    probes: list[tuple[Keyword, str, str | None, str]] = []
    for e, lname in entries:
        probes.append((e, lname, None, e.term))
        for vname, vkw in expand_variants(e, probe_set.variants):
            if vkw.term not in seen:
                seen.add(vkw.term)
                probes.append((vkw, lname, vname, e.term))

    controls: list[tuple[Keyword, str]] = []
    if probe_set.keywords:
        for j, name in enumerate(probe_set.controls.lists):
            loaded = load_list(name, ("controls", "lists", j))
            controls.extend((e, loaded.name) for e in loaded.keyword_list.entries)

    positives = _positive_controls(probe_set, list(specs), dirs, where)

    tasks: list[ProbeTask] = []
    every = probe_set.controls.every
    for pname in specs:
        for kw, lname in positives.get(pname, []):
            tasks.append(ProbeTask(_task_key(pname, "positive_control", kw.term, 0, None), pname, "positive_control",
                                   kw, lname))
        n_probe = 0
        c_index = 0
        for rep in range(probe_set.repeats):
            for kw, lname, variant, entry_term in probes:
                if controls and n_probe % every == 0:
                    ckw, cl = controls[c_index % len(controls)]
                    tasks.append(ProbeTask(_task_key(pname, "control", ckw.term, c_index, None), pname, "control", ckw, cl, c_index))
                    c_index += 1
                key_variant = None if variant is None else f"{variant}:{kw.term}"
                tasks.append(ProbeTask(_task_key(pname, "probe", entry_term, rep, key_variant), pname, "probe", kw, lname,
                                       rep, variant))
                n_probe += 1

    item_specs: dict[str, ItemSpec] = {}
    if probe_set.items:
        assert item_registry is not None
        item_specs = _plan_items(probe_set, item_registry, item_selections, specs, tasks, where, src,
                                 watch_dirs, base_urls or {})

    rate_limits = {}
    soft = {}
    explicit_top = "rate_limit" in probe_set.model_fields_set
    for sel in probe_set.platforms:
        if sel.name in specs and sel.name not in item_specs:
            rate_limits[sel.name] = sel.rate_limit or (probe_set.rate_limit if explicit_top else specs[sel.name].rate_limit)
            soft[sel.name] = sel.soft_test and specs[sel.name].soft_test is not None
    for name, item_spec in item_specs.items():
        chosen = item_selections.get(name)
        rate_limits[name] = (chosen.rate_limit if chosen is not None and chosen.rate_limit else None) or (
            probe_set.rate_limit if explicit_top else item_spec.rate_limit)
        soft[name] = False
    watch_terms: dict[str, set[str]] = {}
    if probe_set.watch_results is not None:
        watch_terms = _watch_terms(probe_set, specs, item_specs, {e.term for e, _ in entries}, where)
    sha = hashlib.sha256(probe_set.model_dump_json().encode()).hexdigest()
    return RunPlan(probe_set, sha, specs, tasks, rate_limits, soft, src, item_specs, watch_terms)


def _watch_terms(probe_set: ProbeSet, specs: dict[str, PlatformSpec], item_specs: dict[str, ItemSpec],
                 probed: set[str], where) -> dict[str, set[str]]:
    wr = probe_set.watch_results
    assert wr is not None
    for j, term in enumerate(wr.terms):
        if term not in probed:
            path, line = where(("watch_results", "terms", j))
            raise ProbeSetError(f"watch_results: {term!r} is not a probed term of this probe set", path, line)
    search = [n for n in specs if n not in item_specs]
    for j, name in enumerate(wr.platforms):
        if name not in search:
            path, line = where(("watch_results", "platforms", j))
            raise ProbeSetError(f"watch_results: {name!r} is not a search platform of this probe set", path, line)
    chosen = wr.platforms or search
    no_links = [n for n in chosen if specs[n].signals.result_url is None]
    if wr.platforms and no_links:
        path, line = where(("watch_results", "platforms"))
        raise ProbeSetError(f"watch_results: {no_links[0]!r} has no result_url in its spec (its result links "
                            f"cannot be read)", path, line)
    return {n: set(wr.terms) for n in chosen if specs[n].signals.result_url is not None}


def _plan_items(probe_set: ProbeSet, item_registry: ItemRegistry, item_selections: dict[str, PlatformSelection],
                specs: dict[str, PlatformSpec], tasks: list[ProbeTask], where, src: Path | None,
                watch_dirs: list[Path] | None, base_urls: dict[str, str]) -> dict[str, ItemSpec]:
    """Lay out the watched items' tasks (appended to ``tasks``) and add their item specs to ``specs``."""
    wdirs = list(watch_dirs or [])
    if src is not None:
        wdirs.append(src.resolve().parent.parent / "watch")
    wdirs = default_watch_dirs(wdirs)
    prefer = list(item_selections)
    chosen: dict[str, ItemSpec] = {}
    per_spec: dict[str, list[tuple[str, str, str, list[str]]]] = {}  # spec -> (url, list, category, tags)
    control_of: dict[str, str] = {}
    seen: set[str] = set()
    for i, isel in enumerate(probe_set.items):
        try:
            loaded = load_watch_list(find_watch_list(isel.list_ref, wdirs))
        except NotFoundError as exc:
            if isel.list_ref == _results_list_name(probe_set):
                continue  # the list this probe set's watch_results fills: empty until its first run enrols
            path, line = where(("items", i, "list"))
            raise ProbeSetError(str(exc), path, line) from None
        spec_of = _specs_of(loaded, item_registry, prefer)
        for item in loaded.watch_list.items:
            if item.control:
                control_of.setdefault(spec_of[item.url].name, item.url)
        platform_of = {url: spec.platform for url, spec in spec_of.items()}
        for item in select_items(loaded, isel, platform_of):
            if item.url in seen:
                continue
            seen.add(item.url)
            spec = spec_of[item.url]
            chosen[spec.name] = spec
            per_spec.setdefault(spec.name, []).append((item.url, loaded.name, item.category, list(item.tags)))
    for name, spec in chosen.items():
        if name in specs:
            path, line = where(("items",))
            raise ProbeSetError(f"item spec {name!r} has the name of a search platform of this probe set", path, line)
        control = control_of.get(name) or spec.control
        if control is None and probe_set.controls.truism:
            path, line = where(("items",))
            raise ProbeSetError(f"{spec.platform} items ({name}) have no control item: mark a known-available item of "
                                f"the watch list with control: true (or set controls: {{truism: false}})", path, line)
        shim = spec.as_platform_spec(control)
        sel = item_selections.get(name)
        url = base_urls.get(name) or base_urls.get(spec.platform) or (sel.base_url if sel is not None else None)
        if url:
            shim = shim.model_copy(update={"base_url": url.rstrip("/")})
        specs[name] = shim
        for rep in range(probe_set.repeats):
            for item_url, lname, category, tags in per_spec[name]:
                kw = Keyword.model_construct(term=item_url, components=[item_url], category=category, tags=tags,
                                             variants=[], script=None, language=None, translation=None, source=None,
                                             date_added=None, notes=None)
                tasks.append(ProbeTask(_task_key(name, ITEM_ROLE, item_url, rep, None), name, ITEM_ROLE, kw, lname, rep))
    return chosen


def _results_list_name(probe_set: ProbeSet) -> str | None:
    wr = probe_set.watch_results
    if wr is None:
        return None
    return wr.into or f"{probe_set.name}-results"


def _specs_of(loaded: LoadedWatchList, item_registry: ItemRegistry, prefer: list[str]) -> dict[str, ItemSpec]:
    """The item spec of every item of a watch list; an item no spec reads is an error at its line."""
    out: dict[str, ItemSpec] = {}
    for n, item in enumerate(loaded.watch_list.items):
        spec = item_registry.spec_for(item.url, prefer)
        if spec is None:
            raise WatchListError(f"no item spec reads {item.url} (item specs: {', '.join(item_registry.names())})",
                                 loaded.path, loaded.line_of_item(n))
        if item.platform is not None and item.platform != spec.platform:
            raise WatchListError(f"{item.url} is a {spec.platform} item ({spec.name}), not {item.platform}",
                                 loaded.path, loaded.line_of_item(n))
        out[item.url] = spec
    return out
