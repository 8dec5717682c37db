"""Probe sets and run plans: load a probe set, resolve its lists and platforms, lay out every task.

A plan is deterministic: the same probe set, keyword lists and platform specs give the
same ordered task list with the same stable keys (``platform, role, term, repeat,
variant``). The engine skips keys already stored, which is what makes a killed run
resumable without losing or duplicating a measurement. Nothing here sends a request.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import NotFoundError, PlatformSpecError, ProbeSetError
from ..keywords.lists import LoadedList, default_search_dirs, find_list, load_keyword_list, select_entries
from ..keywords.variants import expand as expand_variants
from ..models import Keyword, ProbeRole, ProbeSet, RateLimit
from ..platforms.adapters import get_adapter
from ..platforms.registry import PlatformRegistry
from ..platforms.spec import PlatformSpec
from ..yamlio import LocatedYaml, load_model

__all__ = ["ProbeTask", "RunPlan", "load_probe_set", "plan_run"]


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

    def tasks_for(self, platform: str) -> list[ProbeTask]:
        return [t for t in self.tasks if t.platform == platform]


def _task_key(platform: str, role: str, term: str, repeat: int, variant: str | None) -> str:
    return "\x1f".join((platform, role, term, str(repeat), variant or ""))


POSITIVE_TAG = "censored_on:"
"""A keyword entry tagged ``censored_on:baidu`` is a positive control on baidu (public evidence in its ``source``)."""


def _positive_controls(probe_set: ProbeSet, platforms: list[str], dirs: list[Path],
                       where: Callable[[tuple[str | int, ...]], tuple[Path | None, int | None]]
                       ) -> dict[str, list[tuple[Keyword, str | None]]]:
    """Per platform, the terms known to be censored there: the probe set's own first, then
    entries of the positive-control lists tagged ``censored_on:PLATFORM``, at most
    ``per_platform`` of them. A default list that is missing is skipped; a named one is an error."""
    pos = probe_set.controls.positive
    unknown = sorted(set(pos.terms) - set(platforms))
    if unknown:
        path, line = where(("controls", "positive", "terms"))
        raise ProbeSetError(f"positive controls given for {', '.join(unknown)}, which the probe set does not probe",
                            path, line)
    tagged: list[tuple[Keyword, str]] = []
    explicit = "lists" in pos.model_fields_set
    for j, name in enumerate(pos.lists):
        try:
            loaded = load_keyword_list(find_list(name, dirs))
        except NotFoundError as exc:
            if not explicit:
                continue  # the project's default list is not installed here: no list-based positive controls
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

    specs: dict[str, PlatformSpec] = {}
    for i, sel in enumerate(probe_set.platforms):
        if sel.spec:
            base = src.parent if src else Path.cwd()
            spec_path = (base / sel.spec) if not Path(sel.spec).is_absolute() else Path(sel.spec)
            spec = registry.add_file(spec_path)
            if spec.name != sel.name:
                path, line = where(("platforms", i, "spec"))
                raise ProbeSetError(f"spec {sel.spec} defines platform {spec.name!r}, not {sel.name!r}", path, line)
        elif sel.name not in registry:
            path, line = where(("platforms", i, "name"))
            raise ProbeSetError(f"unknown platform {sel.name!r} (known: {', '.join(registry.names())})", path, line)
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

    entries: list[tuple[Keyword, str]] = []
    seen: set[str] = set()
    for i, ksel in enumerate(probe_set.keywords):
        loaded = load_list(ksel.list_ref, ("keywords", i, "list"))
        for e in select_entries(loaded, ksel):
            if e.term not in seen:
                seen.add(e.term)
                entries.append((e, loaded.name))
    if not entries:
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

    rate_limits = {}
    soft = {}
    for sel in probe_set.platforms:
        rate_limits[sel.name] = sel.rate_limit or (
            probe_set.rate_limit if "rate_limit" in probe_set.model_fields_set else specs[sel.name].rate_limit
        )
        soft[sel.name] = sel.soft_test and specs[sel.name].soft_test is not None
    sha = hashlib.sha256(probe_set.model_dump_json().encode()).hexdigest()
    return RunPlan(probe_set, sha, specs, tasks, rate_limits, soft, src)
