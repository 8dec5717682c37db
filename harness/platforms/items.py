"""Item specs: how to fetch one watched item (a WeChat article, a Weibo post ...) and read its state.

An item spec is YAML, like a platform spec, validated by :class:`ItemSpec`: which item URLs
it reads (``urls``: a regular expression per URL form, whose named groups fill the request
template), the request, and the signals of each state, every one with its public source or
listed as ``undocumented``. Built-in specs are in ``harness/platforms/builtin_items/``; a
``platforms/items/`` folder in the working directory and ``DIR/items/`` of ``--platforms DIR``
add or override specs by name.

A page is read in this order (failures first, as for search):

1. HTTP status: 429, 5xx, 3xx and 4xx are failures (``http_429`` ...) unless the spec lists
   the status in ``read_statuses`` (an API that answers a removed item with 400 and a JSON
   error: the body decides);
2. ``captcha``, ``rate_limited``, ``session_invalid``, ``login_wall``: failures with the search codes
   (``login_wall`` is ``session_required``); ``location:`` matchers read a redirect's target and
   ``status:`` matchers an HTTP status, as in platform specs;
3. ``unreadable``: a page about the request, not the item (an expired temporary link, a
   parameter error): ``failure: unexpected_page`` with the matcher's name as signal;
4. ``removed_censored``, ``removed_by_author``, ``removed_other``: the item was removed;
5. ``unverified``: looks like a removal page but no public source says what it means
   (Douyin's audit reasons, anything on Toutiao): stored as ``failure: unexpected_page`` with
   the signal ``unverified:NAME``, never counted as a removal;
6. ``available``: the item is there;
7. nothing matched: ``failure: unexpected_page`` (the layout changed, or an unknown notice).

The engine sends items through the same pacing, retries, sessions, controls and storage as
search probes: :meth:`ItemSpec.as_platform_spec` gives a platform spec whose adapter
(:class:`ItemAdapter`, the documented adapter interface) builds the item's request and reads
the page with these signals. Its truism is the platform's control item: a known-available
item (``control: true`` in a watch list, or the spec's ``control``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Literal
from urllib.parse import quote

from pydantic import Field, field_validator, model_validator

from ..errors import PlatformSpecError
from ..failures import FailureCode
from ..models import RateLimit, Verdict, normalise_item_url
from .adapters import BuiltRequest, register_adapter
from .classification import Classification, failure
from .classify import Page, decode_body, extract, first_status_signal, matches, status_failure
from .registry import SpecRegistry, load_cached
from .spec import (
    ENV_PLACEHOLDER_RE,
    BrowserOptions,
    Extractor,
    Matcher,
    PlatformSpec,
    RequestTemplate,
    Signals,
    StrictModel,
    check_base_url,
    check_slug,
    check_undocumented,
)

BUILTIN_ITEMS_DIR = Path(__file__).resolve().parent / "builtin_items"
ITEMS_SUBDIR = "items"
ADAPTER_PREFIX = "item:"

ITEM_SIGNAL_KINDS = ("captcha", "rate_limited", "session_invalid", "login_wall", "unreadable", "removed_censored",
                     "removed_by_author", "removed_other", "unverified", "available")
UNDOCUMENTED_ITEM_KEYS = frozenset({*ITEM_SIGNAL_KINDS, "request", "read_statuses", "control", "urls"})
UNVERIFIED_PREFIX = "unverified:"

_FAILURE_KINDS = (("captcha", FailureCode.captcha), ("rate_limited", FailureCode.rate_limited),
                  ("session_invalid", FailureCode.session_invalid), ("login_wall", FailureCode.session_required))
_REMOVAL_KINDS = (("removed_censored", Verdict.removed_censored), ("removed_by_author", Verdict.removed_by_author),
                  ("removed_other", Verdict.removed_other))
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_GROUP_VALUE = re.compile(r"[A-Za-z0-9_.~=&%+:,;@!*'()$/-]*")

__all__ = [
    "ADAPTER_PREFIX", "BUILTIN_ITEMS_DIR", "ItemAdapter", "ItemRegistry", "ItemSignals", "ItemSpec", "ItemUrl",
    "classify_item", "load_item_spec", "weibo_bid_to_mid",
]


# --------------------------------------------------------------------------- ids

_BASE62 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def weibo_bid_to_mid(bid: str) -> str:
    """A Weibo post's base62 id (``weibo.com/UID/BID``) as its numeric mid (what the open API takes).

    The bid is read from the end in groups of four base62 characters, each group a number of
    (at most) seven decimal digits: Weiboscope's ``mid2id`` (fukingwa/weiboscope3.0,
    ``weiboscope_scraper.R``). A numeric id is returned as it is.
    """
    if bid.isdigit():
        return bid
    if not bid or any(c not in _BASE62 for c in bid):
        raise ValueError(f"not a Weibo id: {bid!r}")
    groups = []
    rest = bid
    while rest:
        groups.insert(0, rest[-4:])
        rest = rest[:-4]
    out = []
    for i, group in enumerate(groups):
        n = 0
        for c in group:
            n = n * 62 + _BASE62.index(c)
        out.append(str(n) if i == 0 else f"{n:07d}")
    return "".join(out)


TRANSFORMS = {"weibo_mid": weibo_bid_to_mid}


# --------------------------------------------------------------------------- the spec


class ItemUrl(StrictModel):
    """One form of item URL this spec reads, and the request that fetches it.

    ``pattern`` is a regular expression over the normalised item URL (no fragment; scheme and
    host lower case); its named groups, ``{base_url}``, ``{url}`` (the whole item URL,
    percent-encoded) and ``{env:NAME}`` fill ``request``.
    """

    pattern: str
    request: str = Field(description="the URL to fetch, e.g. {base_url}/s/{id}")
    transform: dict[str, Literal["weibo_mid"]] = Field(default_factory=dict,
                                                       description="group -> conversion (weibo_mid: base62 bid -> mid)")

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, v: str) -> str:
        try:
            re.compile(v)
        except re.error as exc:
            raise ValueError(f"invalid regular expression {v!r}: {exc}") from None
        return v

    @model_validator(mode="after")
    def _placeholders_known(self) -> "ItemUrl":
        groups = set(re.compile(self.pattern).groupindex)
        for name in _PLACEHOLDER.findall(ENV_PLACEHOLDER_RE.sub("", self.request)):
            if name not in groups and name not in ("base_url", "url"):
                raise ValueError(f"request uses {{{name}}}, which is not a named group of the pattern")
        for name in self.transform:
            if name not in groups:
                raise ValueError(f"transform names {name!r}, which is not a named group of the pattern")
        if not self.request.startswith(("{base_url}", "http://", "https://")):
            raise ValueError("request must start with {base_url} or an http(s) URL")
        return self


class ItemSignals(StrictModel):
    """What an item page can show; checked in the order of the fields (see the module docstring)."""

    captcha: list[Matcher] = Field(default_factory=list)
    rate_limited: list[Matcher] = Field(default_factory=list)
    session_invalid: list[Matcher] = Field(default_factory=list, description="the platform rejected the session "
                                           "(missing cookies, a bad signature): failure session_invalid")
    login_wall: list[Matcher] = Field(default_factory=list, description="a login or visitor wall (often a redirect: "
                                      "`location:` matchers): failure session_required, as for search")
    unreadable: list[Matcher] = Field(default_factory=list,
                                      description="pages about the request, not the item: failure unexpected_page")
    removed_censored: list[Matcher] = Field(default_factory=list, description="taken down by the platform")
    removed_by_author: list[Matcher] = Field(default_factory=list)
    removed_other: list[Matcher] = Field(default_factory=list,
                                         description="unavailable for another or an unstated reason")
    unverified: list[Matcher] = Field(default_factory=list,
                                      description="looks like a removal, meaning not documented: stored, not counted")
    available: list[Matcher] = Field(min_length=1, description="markers of the item itself (any one)")
    title: Extractor | None = Field(default=None, description="the item's title, recorded when available")


class ItemRequest(StrictModel):
    headers: dict[str, str] = Field(default_factory=dict)


class ItemSpec(StrictModel):
    name: str
    platform: str = Field(description="the platform the items belong to (wechat, weibo ...): how they are grouped")
    display_name: str = ""
    description: str = ""
    kind: Literal["article", "post", "video", "other"] = "other"
    base_url: str
    default: bool = Field(default=False, description="the spec used for this platform's items unless a probe set "
                                                     "names another that also reads them")
    urls: list[ItemUrl] = Field(min_length=1)
    request: ItemRequest = Field(default_factory=ItemRequest)
    response_format: Literal["html", "json"] = "html"
    page_encoding: str | None = None
    read_statuses: list[int] = Field(default_factory=list, description="HTTP 4xx statuses whose body the signals read")
    control: str | None = Field(default=None, description="a known-available item URL (the platform's control)")
    transport: Literal["http", "browser"] = Field(
        default="http", description="browser: a headless Chromium loads the item's page (harness.measure.browser), "
        "for sites whose page computes a signature in JavaScript; the request is then the page to load")
    browser: BrowserOptions | None = Field(default=None, description="with transport: browser, e.g. capture: the "
                                           "URL pattern of the API answer to read instead of the rendered page")
    signals: ItemSignals
    rate_limit: RateLimit = Field(default_factory=RateLimit)
    max_body_bytes: int = Field(default=5_000_000, ge=1024)
    undocumented: list[str] = Field(default_factory=list,
                                    description="parts of this spec that no public source documents")
    notes: str = ""
    sources: list[str] = Field(default_factory=list)

    @field_validator("name", "platform")
    @classmethod
    def _slug(cls, v: str) -> str:
        return check_slug(v)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        return check_base_url(v)

    @field_validator("read_statuses")
    @classmethod
    def _client_errors(cls, v: list[int]) -> list[int]:
        bad = [s for s in v if not 400 <= s <= 499 or s in (407, 429)]
        if bad:
            raise ValueError(f"read_statuses takes 4xx statuses other than 407 and 429, not {bad}")
        return v

    @field_validator("undocumented")
    @classmethod
    def _known_keys(cls, v: list[str]) -> list[str]:
        return check_undocumented(v, UNDOCUMENTED_ITEM_KEYS)

    @model_validator(mode="after")
    def _consistent(self) -> "ItemSpec":
        if self.transport == "browser":
            if (self.browser is None or self.browser.capture is None) and self.response_format != "html":
                raise ValueError("transport: browser without browser.capture reads the rendered DOM: "
                                 "response_format must be html")
        elif self.browser is not None:
            raise ValueError("`browser` options only go with transport: browser")
        if self.response_format == "json":
            for kind in ITEM_SIGNAL_KINDS:
                if any(m.css is not None for m in getattr(self.signals, kind)):
                    raise ValueError(f"signals.{kind}: a JSON item spec cannot use css matchers")
        if self.control is not None:
            self.control = normalise_item_url(self.control)
            if self.match(self.control) is None:
                raise ValueError(f"control {self.control} is not a URL this spec reads")
        return self

    # ------------------------------------------------------------------ reading URLs

    def match(self, url: str) -> tuple[ItemUrl, dict[str, str]] | None:
        """The URL form that reads ``url`` and its named groups (transformed), or None."""
        for form in self.urls:
            mo = re.search(form.pattern, url)
            if mo is None:
                continue
            groups = {k: v for k, v in mo.groupdict().items() if v is not None}
            try:
                for name, how in form.transform.items():
                    if name in groups:
                        groups[name] = TRANSFORMS[how](groups[name])
            except ValueError:
                continue
            if all(_GROUP_VALUE.fullmatch(v) for v in groups.values()):
                return form, groups
        return None

    def reads(self, url: str) -> bool:
        return self.match(url) is not None

    def env_names(self) -> list[str]:
        text = " ".join([*(u.request for u in self.urls), *self.request.headers.values()])
        return sorted(set(ENV_PLACEHOLDER_RE.findall(text)))

    def request_for(self, url: str, base_url: str | None = None, env: dict[str, str] | None = None) -> BuiltRequest:
        """The HTTP request that fetches item ``url`` (``base_url`` overrides the spec's, for tests and replays)."""
        found = self.match(url)
        if found is None:
            raise PlatformSpecError(f"item spec {self.name!r} does not read {url}")
        form, groups = found
        values = {"base_url": (base_url or self.base_url).rstrip("/"), "url": quote(url, safe=""), **groups}
        envs = env if env is not None else {n: os.environ.get(n, "") for n in self.env_names()}

        def fill(text: str) -> str:
            text = ENV_PLACEHOLDER_RE.sub(lambda mo: quote(envs.get(mo.group(1), ""), safe=""), text)
            return _PLACEHOLDER.sub(lambda mo: values.get(mo.group(1), mo.group(0)), text)

        headers = {k: ENV_PLACEHOLDER_RE.sub(lambda mo: envs.get(mo.group(1), ""), v)
                   for k, v in self.request.headers.items()}
        return BuiltRequest(method="GET", url=fill(form.request), headers=headers)

    # ------------------------------------------------------------------ the engine's view

    def adapter_name(self) -> str:
        return ADAPTER_PREFIX + self.name

    def as_platform_spec(self, control: str | None = None) -> PlatformSpec:
        """A platform spec the engine can send through its usual path: the control item as truism, this
        spec's failure signals (so redirect and page checks for CAPTCHAs and login walls apply), and an
        adapter (registered here) that builds the item request and reads the page with :func:`classify_item`."""
        register_adapter(self.adapter_name(), ItemAdapter(self))
        truism = control or self.control or ""
        # The template is never used to build a request (the adapter does); it carries the
        # {env:NAME} placeholders so the session reads and scrubs those secrets.
        in_headers = " ".join(self.request.headers.values())
        template = RequestTemplate.model_construct(
            method="GET", url="{base_url}", headers=dict(self.request.headers), json_body=None, form=None,
            params={f"_env{i}": f"{{env:{n}}}" for i, n in enumerate(self.env_names()) if f"{{env:{n}}}" not in in_headers},
            query_encoding="utf-8", space="%20", max_query_chars=None)
        signals = Signals.model_construct(
            captcha=list(self.signals.captcha), rate_limited=list(self.signals.rate_limited),
            session_invalid=list(self.signals.session_invalid), login_wall=list(self.signals.login_wall),
            hard=[], soft=[], no_results=[], page_ok=[], shell=[],
            result_item=None, result_count=None, result_domain=None, result_url=None)
        return PlatformSpec.model_construct(
            name=self.name, display_name=self.display_name or self.name, description=self.description, homepage=None,
            kind="other", base_url=self.base_url, request=template, response_format=self.response_format,
            page_encoding=self.page_encoding, combination_separator=" ", truism=truism, hard_needs_truism=False,
            soft_test=None, authorized_domains=[], signals=signals, rate_limit=self.rate_limit,
            max_body_bytes=self.max_body_bytes, undocumented=[], notes=self.notes, sources=list(self.sources),
            transport=self.transport, browser=self.browser, adapter=self.adapter_name(), adapter_options={})


class ItemAdapter:
    """The adapter behind :meth:`ItemSpec.as_platform_spec`: the engine's query is the item URL."""

    def __init__(self, item_spec: ItemSpec):
        self.item_spec = item_spec

    def build_request(self, spec: PlatformSpec, query: str, request: BuiltRequest) -> BuiltRequest:
        return self.item_spec.request_for(query, base_url=spec.base_url)

    def classify(self, spec: PlatformSpec, status: int, headers: dict[str, str], body: bytes) -> Classification:
        return classify_item(self.item_spec, status, headers, body)


# --------------------------------------------------------------------------- classification


def _applies(spec: ItemSpec, m: Matcher, status: int) -> bool:
    """A page matcher looks at its ``status`` codes if it names some, else at 2xx and ``read_statuses`` answers."""
    if m.location is not None:
        return False
    if m.status is not None:
        return status in m.status
    return 200 <= status < 300 or status in spec.read_statuses


def _first(page: Page, matchers: Iterable[Matcher], spec: ItemSpec | None = None, status: int = 200) -> str | None:
    for m in matchers:
        if (spec is None or _applies(spec, m, status)) and matches(page, m):
            return m.label
    return None


def _outcome(kind: str, labels: list[str]) -> Classification:
    """What a signal of ``kind`` means (for status-scoped matchers read before the page)."""
    codes = dict(_FAILURE_KINDS)
    if kind in codes:
        return failure(codes[kind], *labels)
    if kind == "unreadable":
        return failure(FailureCode.unexpected_page, *labels)
    if kind == "unverified":
        return failure(FailureCode.unexpected_page, UNVERIFIED_PREFIX + labels[0], *labels[1:])
    if kind == "available":
        return Classification(Verdict.available, None, labels)
    return Classification(dict(_REMOVAL_KINDS)[kind], None, labels)


def classify_item_page(spec: ItemSpec, page: Page, status: int = 200) -> Classification:
    """The state of an item from its decoded page (the order is the module docstring's)."""
    sig = spec.signals
    try:
        for kind, code in _FAILURE_KINDS:
            label = _first(page, getattr(sig, kind), spec, status)
            if label is not None:
                return failure(code, label)
        label = _first(page, sig.unreadable, spec, status)
        if label is not None:
            return failure(FailureCode.unexpected_page, label)
        for kind, verdict in _REMOVAL_KINDS:
            label = _first(page, getattr(sig, kind), spec, status)
            if label is not None:
                return Classification(verdict, None, [label])
        label = _first(page, sig.unverified, spec, status)
        if label is not None:
            return failure(FailureCode.unexpected_page, UNVERIFIED_PREFIX + label)
        label = _first(page, sig.available, spec, status)
        if label is not None:
            signals = [label]
            if sig.title is not None:
                titles = [t for t in extract(page, sig.title) if t.strip()]
                if titles:
                    signals.append("title:" + titles[0].strip()[:120])
            return Classification(Verdict.available, None, signals)
    except (ValueError, TypeError, AttributeError) as exc:  # e.g. a JSON list where a mapping was expected
        return failure(FailureCode.unexpected_page, f"parse:{type(exc).__name__}")
    return failure(FailureCode.unexpected_page)


def _classify_status(spec: ItemSpec, status: int, headers: dict[str, str], body: bytes) -> Classification | None:
    """A non-2xx answer read through the spec's status-scoped matchers (``status: [418]``), or None."""
    scoped = [(kind, m) for kind in ITEM_SIGNAL_KINDS for m in getattr(spec.signals, kind)
              if m.location is None and m.status is not None and status in m.status]
    return first_status_signal(scoped, status, lambda: decode_body(spec, headers, body), _outcome)


def classify_item(spec: ItemSpec, status: int, headers: dict[str, str], body: bytes) -> Classification:
    """The state of an item from a complete HTTP answer (status, headers, body bytes already size-checked)."""
    if not 200 <= status < 300 and status not in spec.read_statuses:
        decided = _classify_status(spec, status, headers, body)
        if decided is not None:
            return decided
    failed = status_failure(status, spec.read_statuses)
    if failed is not None:
        return failed
    page = decode_body(spec, headers, body)
    if isinstance(page, Classification):
        if page.signals == ["invalid_json"]:
            # a JSON API that answers a CAPTCHA page, or "blocked": read the failure markers as text
            raw = Page(body.decode("utf-8", "replace"), "html")
            for kind, code in _FAILURE_KINDS:
                label = _first(raw, [m for m in getattr(spec.signals, kind) if m.json_path is None])
                if label is not None:
                    return failure(code, label)
        return page
    c = classify_item_page(spec, page, status)
    if status >= 400:
        c.signals.append(f"status:{status}")
    return c


# --------------------------------------------------------------------------- where specs come from


_cache: dict[tuple[str, int, int], ItemSpec] = {}


def load_item_spec(path: str | Path) -> ItemSpec:
    """Load and validate one item spec file (cached per file version, as platform specs are)."""
    return load_cached(path, ItemSpec, _cache)


class ItemRegistry(SpecRegistry[ItemSpec]):
    """Item specs by name: built-in, then ``./platforms/items``, then ``DIR/items`` of each ``--platforms DIR``."""

    what = "item spec"

    def load(self, path: str | Path) -> ItemSpec:
        return load_item_spec(path)

    @classmethod
    def default(cls, extra_dirs: Iterable[str | Path] = (), include_cwd: bool = True) -> "ItemRegistry":
        reg = cls()
        reg.add_builtins(BUILTIN_ITEMS_DIR)
        dirs = [Path.cwd() / "platforms" / ITEMS_SUBDIR] if include_cwd else []
        dirs += [Path(d) / ITEMS_SUBDIR for d in extra_dirs]
        for d in dirs:
            if d.is_dir():
                reg.add_dir(d)
        return reg

    def all(self) -> list[ItemSpec]:
        return [self.get(n) for n in self.names()]

    def candidates(self, url: str) -> list[ItemSpec]:
        return [s for s in self.all() if s.reads(url)]

    def spec_for(self, url: str, prefer: Iterable[str] = ()) -> ItemSpec | None:
        """The spec that reads ``url``: one named in ``prefer``, else the only candidate, else the
        candidate marked ``default`` for its platform; None when no spec reads it."""
        found = self.candidates(url)
        if not found:
            return None
        preferred = [s for s in found if s.name in set(prefer)]
        if preferred:
            return preferred[0]
        if len(found) == 1:
            return found[0]
        defaults = [s for s in found if s.default]
        return defaults[0] if defaults else found[0]

    def platform_of(self, url: str) -> str | None:
        spec = self.spec_for(url)
        return spec.platform if spec else None


def describe_signals(spec: ItemSpec) -> dict[str, list[str]]:
    """Each signal kind's matcher labels (for ``harness watch specs``)."""
    return {k: [m.label for m in getattr(spec.signals, k)] for k in ITEM_SIGNAL_KINDS if getattr(spec.signals, k)}
