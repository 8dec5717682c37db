"""Pydantic models for every piece of data that crosses a file boundary.

Keyword lists and probe sets are YAML files written by people; measurements are
written to the store and exported as JSON lines in an OONI-style envelope.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

COMBINATION_JOINER = " + "
"""How the components of a combination are written in a keyword list (Citizen Lab style)."""

MAX_TERM_LENGTH = 500


class Verdict(str, Enum):
    """What one answer says about one query.

    ``no_results`` (zero results with no sign of censorship) is ambiguous and is not
    counted as censorship; ``failure`` never is.
    """

    not_censored = "not_censored"
    hard = "hard"
    soft = "soft"
    no_results = "no_results"
    failure = "failure"

    @property
    def is_censored(self) -> bool:
        return self in (Verdict.hard, Verdict.soft)


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _check_text(value: str, what: str) -> str:
    if not value or not value.strip():
        raise ValueError(f"{what} is empty or whitespace only")
    for ch in value:
        if unicodedata.category(ch) == "Cc":
            raise ValueError(f"{what} contains the control character U+{ord(ch):04X}")
    if len(value) > MAX_TERM_LENGTH:
        raise ValueError(f"{what} is longer than {MAX_TERM_LENGTH} characters")
    return value


# --------------------------------------------------------------------------- keywords


class Keyword(StrictModel):
    """One entry of a keyword list: a single term or a combination of components.

    A combination is censored when every component appears in the query; in a list it
    is written either as ``components: [新疆, 集中营]`` or as ``term: 新疆 + 集中营``.
    """

    term: str = ""
    components: list[str] = Field(default_factory=list)
    category: str = ""
    tags: list[str] = Field(default_factory=list)
    script: str | None = Field(default=None, description="zh-Hans, zh-Hant, en, bo, ug, mixed ...")
    language: str | None = None
    translation: str | None = None
    source: str | None = None
    date_added: dt.date | None = None
    notes: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _accept_plain_string(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"term": data}
        return data

    @model_validator(mode="after")
    def _derive_term_and_components(self) -> "Keyword":
        if self.components:
            comps = [_check_text(c.strip(), "a component") for c in self.components]
            if not self.term:
                self.term = COMBINATION_JOINER.join(comps)
            self.components = comps
        else:
            _check_text(self.term, "the term")
            parts = [p.strip() for p in self.term.split(COMBINATION_JOINER)]
            self.components = [_check_text(p, "a component") for p in parts]
        _check_text(self.term, "the term")
        if len(self.components) > 6:
            raise ValueError("a combination has at most 6 components")
        return self

    @property
    def is_combination(self) -> bool:
        return len(self.components) > 1

    def query(self, separator: str = " ") -> str:
        """The exact string sent to a platform: components joined by its separator."""
        return separator.join(self.components)


class KeywordList(StrictModel):
    """A curated list of keywords (``keywords/*.yaml``)."""

    name: str
    description: str = ""
    source: str = "curated"
    licence: str | None = None
    attribution: str | None = None
    categories: list[str] = Field(default_factory=list, description="categories used in this list (informative)")
    entries: list[Keyword]

    @field_validator("name")
    @classmethod
    def _name_is_slug(cls, v: str) -> str:
        if not v or any(c.isspace() or c in "/\\" for c in v):
            raise ValueError("a list name must be non-empty with no spaces or slashes")
        return v


# --------------------------------------------------------------------------- probe sets


class RateLimit(StrictModel):
    """Pace of requests to one platform. Conservative by default: one query every 10 s ± 30 %."""

    interval_s: float = Field(default=10.0, ge=0)
    jitter: float = Field(default=0.3, ge=0, le=1)
    concurrency: int = Field(default=1, ge=1, le=64)


class KeywordSelection(StrictModel):
    """Which entries of which list a probe set sends."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, populate_by_name=True)

    list_ref: str = Field(alias="list", description="a list name in keywords/ or a path to a YAML list")
    categories: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    exclude_tags: list[str] = Field(default_factory=list)
    limit: int | None = Field(default=None, ge=1)


class PlatformSelection(StrictModel):
    """A platform a probe set probes, with per-platform options."""

    name: str
    spec: str | None = Field(default=None, description="path to a platform spec YAML (relative to the probe set)")
    base_url: str | None = Field(default=None, description="override the spec's base URL (e.g. a sandbox)")
    rate_limit: RateLimit | None = None
    soft_test: bool = True
    options: dict[str, Any] = Field(default_factory=dict)


class Controls(StrictModel):
    """Control queries that separate outages from censorship."""

    truism: bool = Field(default=True, description="probe the platform's truism at start and every `every` probes")
    every: int = Field(default=25, ge=1)
    lists: list[str] = Field(default_factory=lambda: ["controls"], description="benign terms expected never to be censored")
    max_backoff_s: float = Field(default=600.0, ge=0)


class Schedule(StrictModel):
    cron: str
    timezone: str = "UTC"
    jitter_s: float = Field(default=0, ge=0)


class AutoIsolate(StrictModel):
    """Isolate automatically, after a run, a phrase probe that became censored (``harness.autoisolate``)."""

    enabled: bool = False
    budget: int = Field(default=40, ge=1, le=1000, description="queries per phrase")
    min_length: int = Field(default=4, ge=2, description="a term is a phrase from this many characters")


class ProbeSet(StrictModel):
    """Which keyword lists go to which platforms, how often and how fast (``probes/*.yaml``)."""

    name: str
    description: str = ""
    keywords: list[KeywordSelection] = Field(min_length=1)
    platforms: list[PlatformSelection] = Field(min_length=1)
    controls: Controls = Field(default_factory=Controls)
    repeats: int = Field(default=1, ge=1, le=100)
    rate_limit: RateLimit = Field(default_factory=RateLimit)
    timeout_s: float = Field(default=20.0, gt=0)
    retries: int = Field(default=2, ge=0, le=10)
    flip_retest: bool = True
    variants: list[str] = Field(default_factory=list)
    schedule: Schedule | None = None
    isolate: AutoIsolate = Field(default_factory=AutoIsolate)

    @model_validator(mode="after")
    def _unique_platforms(self) -> "ProbeSet":
        seen: set[str] = set()
        for p in self.platforms:
            if p.name in seen:
                raise ValueError(f"platform {p.name!r} is listed twice")
            seen.add(p.name)
        return self


# --------------------------------------------------------------------------- measurements


ProbeRole = Literal["probe", "control", "truism"]


class Evidence(BaseModel):
    """What a verdict rests on, kept so it can be re-checked and re-classified later."""

    status_code: int | None = None
    final_url: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    body_sha256: str | None = None
    body_size: int | None = None
    body_truncated: bool = False


class TestKeys(BaseModel):
    """Experiment-specific results, as in OONI's ``test_keys``."""

    signals: list[str] = Field(default_factory=list, description="names of the spec signals the page matched")
    result_count: int | None = None
    result_items: int | None = None
    result_domains: list[str] = Field(default_factory=list)
    soft_probe: dict[str, Any] | None = None
    control_ok: bool | None = None
    attempts: int = 1
    retested: bool = False
    confirmed: bool | None = None


class Measurement(BaseModel):
    """One classified answer, in an OONI-style envelope."""

    measurement_id: str
    run_id: str
    probe_set: str
    task_key: str
    measurement_start_time: dt.datetime
    test_runtime: float = 0.0
    test_name: str = "search_censorship"
    test_version: str = "0.1.0"
    software_name: str = "censorship-harness"
    software_version: str = ""
    probe_cc: str = "ZZ"
    probe_asn: str = "AS0"
    vantage: str = ""
    platform: str
    role: ProbeRole = "probe"
    input: str = Field(description="the keyword as written in its list")
    components: list[str] = Field(default_factory=list)
    list_name: str | None = None
    category: str | None = None
    variant: str | None = None
    query: str = Field(description="the exact query sent")
    repeat: int = 0
    verdict: Verdict
    failure: str | None = Field(default=None, description="snake_case failure code; null means success")
    test_keys: TestKeys = Field(default_factory=TestKeys)
    evidence: Evidence = Field(default_factory=Evidence)

    @model_validator(mode="after")
    def _failure_iff_failure_verdict(self) -> "Measurement":
        if (self.verdict is Verdict.failure) != (self.failure is not None):
            raise ValueError("failure must be set exactly when verdict is 'failure'")
        return self


RunStatus = Literal["running", "interrupted", "complete"]


class Run(BaseModel):
    run_id: str
    probe_set: str
    probe_set_sha256: str = ""
    started_at: dt.datetime
    finished_at: dt.datetime | None = None
    status: RunStatus = "running"
    probe_cc: str = "ZZ"
    probe_asn: str = "AS0"
    vantage: str = ""
    software_version: str = ""
    planned: int = 0
    pid: int | None = None
    hostname: str | None = None
