"""The run engine: one controller owns the loop, the pacing, the controls and storage.

A run is planned first (a deterministic, ordered list of tasks with stable keys), then
executed: per platform, workers take tasks, wait for the platform's rate limit, send
the query, classify the answer and store the measurement as soon as it exists. A run
that is killed resumes from the store: finished task keys are skipped, so no
measurement is lost or duplicated.

Method, per probe (Citizen Lab style):

1. **Control.** The platform's truism must return results at run start and every
   ``controls.every`` probes. While it fails the platform backs off; probes in a window
   whose truism never recovered are stored as ``failure: control_failed`` unsent.
2. **Hard test.** The query (term, or term + truism where the platform censors
   silently) shows a notice, or no results while the control works.
3. **Soft test.** Where the spec has one: term + truism restricted to a non-authorized
   domain whose truism-only query has results. Results vanish only for the term: soft.
4. **Flip retest.** A verdict that differs from the last known one is retested once
   before it is stored as confirmed.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import hashlib
import os
import random
import socket
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote_plus, urlsplit, urlunsplit

import httpx

from . import __version__
from .classify import (
    SILENT_EMPTY,
    Classification,
    apply_soft_test,
    apply_truism_method,
    classify_http,
    failure,
)
from .errors import InputError, PlatformSpecError, ProbeSetError
from .failures import DETERMINISTIC, RETRYABLE, FailureCode
from .keywords import LoadedList, default_search_dirs, find_list, load_keyword_list, select_entries
from .models import (
    Evidence,
    Keyword,
    Measurement,
    ProbeRole,
    ProbeSet,
    RateLimit,
    Run,
    TestKeys,
    Verdict,
)
from .platforms import PlatformRegistry, PlatformSpec
from .variants import expand as expand_variants
from .platforms.adapters import BuiltRequest, get_adapter
from .sessions import PlatformSession, Secrets, check_proxy, looks_like_token, redact_userinfo
from .store import Store, utcnow
from .storewriter import StoreWriter
from .transport import Sender
from .yamlio import LocatedYaml, load_model

MAX_UNCOMMITTED = 1024  # measurements handed to the store thread and not yet committed (backpressure)
KEPT_HEADERS = ("content-type", "content-length", "content-encoding", "server", "date", "location", "retry-after")
SECRET_PARAM_HINTS = ("token", "key", "sign", "auth", "session", "sid", "cookie", "bogus", "pass", "secret", "ticket")


# --------------------------------------------------------------------------- planning


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
        from .errors import NotFoundError

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
            from .platforms.adapters import get_adapter

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
    # Each entry, then its declared forms and requested variants (harness.variants) as their own
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

    tasks: list[ProbeTask] = []
    every = probe_set.controls.every
    for pname in specs:
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


# --------------------------------------------------------------------------- fetching


@dataclass
class Fetched:
    classification: Classification
    status: int | None = None
    final_url: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    truncated: bool = False  # ``body`` is only a prefix (the answer was over max_body_bytes)
    retry_after: float | None = None
    attempts: int = 1
    body_size: int | None = None


def fill(template: str, values: dict[str, str]) -> str:
    out = template
    for k, v in values.items():
        out = out.replace("{" + k + "}", v)
    return out


def _fill_obj(obj: Any, values: dict[str, str]) -> Any:
    if isinstance(obj, str):
        return fill(obj, values)
    if isinstance(obj, dict):
        return {k: _fill_obj(v, values) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_fill_obj(v, values) for v in obj]
    return obj


def encode_component(value: str, encoding: str, space: str = "%20") -> str:
    """Percent-encode one query-string value in the platform's charset."""
    out = quote(value, safe="", encoding=encoding, errors="strict")
    return out.replace("%20", "+") if space == "+" else out


def build_request(spec: PlatformSpec, query: str, env: dict[str, str] | None = None) -> BuiltRequest:
    """The request for one query, from the spec's template (and its adapter, if any)."""
    req = spec.request
    enc = req.query_encoding
    values = {"base_url": spec.base_url, "truism": spec.truism}
    for name, value in (env or {}).items():
        values[f"env:{name}"] = value
    raw = {**values, "query": query}
    url = fill(req.url, {**values, "query": encode_component(query, enc, req.space)})
    if req.params:
        pairs = [(encode_component(k, enc, req.space), encode_component(fill(v, raw), enc, req.space))
                 for k, v in req.params.items()]
        url += ("&" if "?" in url else "?") + "&".join(f"{k}={v}" for k, v in pairs)
    built = BuiltRequest(
        method=req.method, url=url, headers=_fill_obj(dict(req.headers), values),
        json=_fill_obj(req.json_body, raw) if req.json_body is not None else None,
        data=_fill_obj(req.form, raw) if req.form is not None else None,
    )
    if spec.adapter:
        adapter = get_adapter(spec.adapter)
        if hasattr(adapter, "build_request"):
            built = adapter.build_request(spec, query, built)
    return built


def redact_url(url: str, secrets: Secrets | None = None) -> str:
    """Remove credentials, token-like query parameters and known secret values from a URL kept as evidence.

    Every other query parameter is kept byte for byte, so a query percent-encoded in GBK
    (or anything but UTF-8) stays exactly what was sent.
    """
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    query = parts.query
    if query:
        kept = []
        for pair in query.split("&"):
            name, eq, value = pair.partition("=")
            if any(h in unquote_plus(name, errors="replace").lower() for h in SECRET_PARAM_HINTS) or (
                    len(value) >= 24 and looks_like_token(unquote_plus(value, errors="replace"))):
                kept.append(f"{name}=REDACTED")
            else:
                kept.append(pair)
        query = "&".join(kept)
    out = urlunsplit((parts.scheme, netloc, parts.path, query, ""))
    return secrets.scrub(out) if secrets else out


def _causes(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and len(out) < 10:
        out.append(cur)
        cur = cur.__cause__ or cur.__context__
    return out


def _failure_for_exception(exc: Exception) -> FailureCode:
    text = " | ".join(str(e) for e in _causes(exc)).lower()
    if any(isinstance(e, ConnectionRefusedError) for e in _causes(exc)) and not isinstance(exc, httpx.ProxyError):
        return FailureCode.connection_refused
    if isinstance(exc, httpx.TimeoutException):
        return FailureCode.timeout
    if isinstance(exc, httpx.ProxyError):
        return FailureCode.proxy_error
    if isinstance(exc, httpx.TooManyRedirects):
        return FailureCode.too_many_redirects
    if isinstance(exc, httpx.DecodingError):
        return FailureCode.decode_error
    if isinstance(exc, httpx.RemoteProtocolError):
        if "incomplete" in text or "complete message body" in text or "less data" in text:
            return FailureCode.truncated_body
        return FailureCode.connection_reset
    if isinstance(exc, httpx.ConnectError):
        if "socks" in text or "proxy" in text:
            return FailureCode.proxy_error
        if "refused" in text:
            return FailureCode.connection_refused
        if "name or service" in text or "nodename" in text or "getaddrinfo" in text or "resolution" in text:
            return FailureCode.dns_error
        if "ssl" in text or "certificate" in text:
            return FailureCode.tls_error
        return FailureCode.network_error
    if isinstance(exc, (httpx.ReadError, httpx.WriteError)):
        return FailureCode.connection_reset
    if isinstance(exc, (ConnectionResetError, BrokenPipeError)):
        return FailureCode.connection_reset
    return FailureCode.network_error


def _retry_after(headers: httpx.Headers) -> float | None:
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(value)
            return max(0.0, when.timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def _kept_headers(headers: httpx.Headers, secrets: Secrets | None) -> dict[str, str]:
    kept = {k.lower(): v for k, v in headers.items() if k.lower() in KEPT_HEADERS}
    if "location" in kept:
        kept["location"] = redact_url(kept["location"], secrets) if "//" in kept["location"] else (
            secrets.scrub(kept["location"]) if secrets else kept["location"])
    return kept


_INFLATE_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


def _origin(url: str) -> tuple[str, str | None, int | None]:
    """Scheme, host and port: a redirect may only stay on the spec's own origin."""
    parts = urlsplit(url)
    try:
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:  # a Location with a port that is not a number
        port = -1
    return parts.scheme, parts.hostname, port


async def _read_capped(resp: httpx.Response, cap: int) -> tuple[bytes, int | None]:
    """The decoded body and None; or, once it grows past ``cap`` bytes, its first ``cap``
    bytes and how many were seen (the prefix is kept as evidence).

    httpx inflates a whole network chunk at once (a 64 KB gzip bomb chunk becomes 64 MB
    in memory; ``gzip, gzip`` would nest that), so bodies are inflated here with
    ``max_length``: memory stays near ``cap``. Codings we did not ask for are refused.
    """
    if resp.is_stream_consumed:  # an answer already in memory, decoded (httpx.MockTransport reads it first)
        body = resp.content
        return (body[:cap], len(body)) if len(body) > cap else (body, None)
    encoding = resp.headers.get("content-encoding", "").strip().lower()
    chunks: list[bytes] = []
    size = 0

    def over() -> tuple[bytes, int]:
        return b"".join(chunks)[:cap], size

    if encoding not in ("", "identity"):
        if encoding not in _INFLATE_WBITS:
            raise httpx.DecodingError(f"unsupported content-encoding {encoding[:40]!r}")
        inflater = zlib.decompressobj(_INFLATE_WBITS[encoding])
        try:
            async for raw in resp.aiter_raw():
                data = inflater.decompress(raw, cap - size + 1)
                size += len(data)
                chunks.append(data)
                if size > cap:
                    return over()
            tail = inflater.flush()
        except zlib.error as exc:
            raise httpx.DecodingError(f"gzip: {exc}") from None
        size += len(tail)
        chunks.append(tail)
        if size > cap:
            return over()
        return b"".join(chunks), None
    async for chunk in resp.aiter_raw():
        size += len(chunk)
        chunks.append(chunk)
        if size > cap:
            return over()
    return b"".join(chunks), None


_timeout_scope = getattr(asyncio, "timeout", None)


async def fetch(sender: Sender, spec: PlatformSpec, query: str, max_redirects: int = 5,
                session: PlatformSession | None = None, deadline_s: float | None = None) -> Fetched:
    """Send one query and classify the answer. Never raises for network trouble.

    Redirects are followed by hand, only on the spec's own origin (an off-site redirect
    is usually a login or verification page: ``redirect_offsite``). A body over the
    spec's ``max_body_bytes`` is ``body_too_large``; its prefix is kept as evidence.
    httpx's timeouts bound each read, so a server that trickles a byte at a time would
    never time out; ``deadline_s`` (default: the sender's read timeout) bounds the whole
    exchange, redirects included.
    """
    deadline = deadline_s if deadline_s is not None else sender.timeout.read
    if deadline is None:
        return await _fetch(sender, spec, query, max_redirects, session)
    try:
        if _timeout_scope is None:  # Python 3.10
            return await asyncio.wait_for(_fetch(sender, spec, query, max_redirects, session), deadline)
        async with _timeout_scope(deadline):  # no extra task per request, unlike wait_for
            return await _fetch(sender, spec, query, max_redirects, session)
    except asyncio.TimeoutError:
        return Fetched(failure(FailureCode.timeout, "deadline"))


async def _fetch(sender: Sender, spec: PlatformSpec, query: str, max_redirects: int,
                 session: PlatformSession | None) -> Fetched:
    secrets = session.secrets if session else None
    limit = spec.request.max_query_chars
    if limit is not None and len(query) > limit:
        return Fetched(failure(FailureCode.query_too_long, f"chars:{len(query)}>{limit}"))
    try:
        built = build_request(spec, query, session.env if session else None)
    except UnicodeEncodeError:
        return Fetched(failure(FailureCode.decode_error, f"query_not_encodable:{spec.request.query_encoding}"))
    except PlatformSpecError:
        raise
    except Exception as exc:  # an adapter's build_request is third-party code
        return Fetched(failure(FailureCode.adapter_error, type(exc).__name__))
    method, url, kwargs = built.method, built.url, built.httpx_kwargs()
    origin = _origin(url)
    try:
        for _ in range(max_redirects + 1):
            if session and session.cookies:
                cookie = session.cookie_header(url)
                if cookie:
                    kwargs["headers"]["Cookie"] = cookie
                else:
                    kwargs["headers"].pop("Cookie", None)
            async with sender.stream(method, url, **kwargs) as resp:
                headers = _kept_headers(resp.headers, secrets)
                if resp.is_redirect:
                    location = resp.headers.get("location", "")
                    nxt = str(resp.url.join(location))
                    if _origin(nxt) != origin:
                        return Fetched(failure(FailureCode.redirect_offsite, f"location:{urlsplit(nxt).hostname}"),
                                       resp.status_code, redact_url(str(resp.url), secrets), headers)
                    url, method = nxt, "GET"
                    kwargs.pop("json", None)
                    kwargs.pop("data", None)
                    continue
                body, seen = await _read_capped(resp, spec.max_body_bytes)
                if seen is not None:
                    return Fetched(failure(FailureCode.body_too_large, f"over:{spec.max_body_bytes}"),
                                   resp.status_code, redact_url(str(resp.url), secrets), headers, body,
                                   truncated=True, body_size=seen)
                return Fetched(
                    classify_http(spec, resp.status_code, headers, body),
                    resp.status_code, redact_url(str(resp.url), secrets), headers, body,
                    retry_after=_retry_after(resp.headers), body_size=len(body),
                )
        return Fetched(failure(FailureCode.too_many_redirects))
    except httpx.HTTPError as exc:
        code = _failure_for_exception(exc)
        if session is not None and session.via_proxy and isinstance(exc, httpx.ConnectError):
            code = FailureCode.proxy_error  # with a proxy, the connection that failed is the one to the proxy
        return Fetched(failure(code, type(exc).__name__))
    except (OSError, ValueError) as exc:
        return Fetched(failure(FailureCode.network_error, type(exc).__name__))


# --------------------------------------------------------------------------- pacing


_worker_sender: contextvars.ContextVar[Sender] = contextvars.ContextVar("worker_sender")


class RateLimiter:
    """Spaces requests to one platform by ``interval_s`` ± ``jitter`` (a fraction of it)."""

    def __init__(self, limit: RateLimit, rng: random.Random, clock: Callable[[], float] = time.monotonic):
        self.limit = limit
        self.rng = rng
        self.clock = clock
        self._next = 0.0
        self._lock = asyncio.Lock()

    def _gap(self) -> float:
        j = self.limit.jitter
        return self.limit.interval_s * (1 + self.rng.uniform(-j, j)) if j else self.limit.interval_s

    async def wait(self) -> None:
        async with self._lock:
            now = self.clock()
            delay = self._next - now
            if delay > 0:
                await asyncio.sleep(delay)
                now = self.clock()
            # max(): a push_back (Retry-After) that arrived while we slept must survive this wait
            self._next = max(self._next, now + self._gap())

    def push_back(self, seconds: float) -> None:
        """Delay every next request (a 429 with Retry-After, a failed control)."""
        self._next = max(self._next, self.clock() + seconds)


async def send_with_retries(sender: Sender, spec: PlatformSpec, query: str, limiter: RateLimiter, rng: random.Random,
                            *, retries: int, backoff_s: float, max_retry_after_s: float,
                            session: PlatformSession | None = None, retry_all: bool = False,
                            on_attempt: Callable[[Fetched], None] | None = None) -> Fetched:
    """Send one query at the limiter's pace; retry a failure up to ``retries`` times.

    Only retryable failures (:data:`harness.failures.RETRYABLE`) are retried unless
    ``retry_all``. Between attempts the whole platform waits: ``Retry-After`` when the answer
    had one (capped at ``max_retry_after_s``), else exponential backoff with jitter.
    ``on_attempt`` sees every answer. The last answer is returned, failed or not.
    """
    fetched = Fetched(failure(FailureCode.internal_error))
    for attempt in range(retries + 1):
        await limiter.wait()
        fetched = await fetch(sender, spec, query, session=session)
        fetched.attempts = attempt + 1
        if on_attempt is not None:
            on_attempt(fetched)
        code = fetched.classification.failure
        if code is None or attempt == retries or FailureCode(code) in DETERMINISTIC or not (
                retry_all or FailureCode(code) in RETRYABLE):
            return fetched
        if fetched.retry_after is not None:
            wait = min(fetched.retry_after, max_retry_after_s)
        else:
            wait = backoff_s * (2**attempt) * (1 + rng.uniform(0, 0.25))
        limiter.push_back(wait)
    return fetched


# --------------------------------------------------------------------------- running


@dataclass(frozen=True)
class Vantage:
    probe_cc: str = "ZZ"
    probe_asn: str = "AS0"
    label: str = ""


@dataclass
class RunOptions:
    vantage: Vantage = field(default_factory=Vantage)
    retry_backoff_s: float = 5.0
    max_retry_after_s: float = 600.0
    control_backoff_s: float = 30.0
    control_attempts: int = 3
    keep_bodies: bool = True
    proxy: str | None = None  # http://, https://, socks5:// or socks5h:// URL; credentials are never stored
    transport: httpx.AsyncBaseTransport | None = None
    seed: int | None = None
    cookies: dict[str, Path] = field(default_factory=dict)  # platform -> cookies.txt or JSON file
    max_stored_body_bytes: int = 2_000_000  # bodies over this are stored as a prefix (evidence.body_truncated)
    domain_profile: bool = False  # profile authorized domains for every soft-censored term
    confirm_silent_empty: bool = True  # re-check the truism after a silent-empty hard verdict

    def __repr__(self) -> str:  # never print a proxy password
        return (f"RunOptions(vantage={self.vantage!r}, proxy={redact_userinfo(self.proxy) if self.proxy else None!r}, "
                f"cookies={sorted(self.cookies)!r})")


@dataclass
class RunSummary:
    run_id: str
    status: str
    planned: int
    stored: int
    skipped: int
    counts: dict[str, Counter[str]]
    failures: Counter[str]
    elapsed_s: float
    isolations: list[dict[str, Any]] = field(default_factory=list)  # filled by harness.runs (probe-set `isolate`)

    @property
    def failure_share(self) -> float:
        total = sum(sum(c.values()) for c in self.counts.values())
        return (sum(c["failure"] for c in self.counts.values()) / total) if total else 0.0


ProgressCallback = Callable[[Measurement | None], None]


class _PlatformState:
    def __init__(self, spec: PlatformSpec, limiter: RateLimiter, soft: bool, session: PlatformSession,
                 profile_domains: list[str]):
        self.spec = spec
        self.limiter = limiter
        self.soft = soft
        self.session = session
        self.profile_domains = profile_domains
        self.since_control = 10**9  # probes since the last truism: a control is due at the start
        self.control_ok: bool | None = None
        self.control_id: str | None = None
        self.failed_windows = 0  # consecutive windows whose truism failed: the backoff grows with it
        self.control_lock = asyncio.Lock()
        self.soft_domain: str | None = None
        self.domain_controls: dict[str, bool] = {}  # restricted truism per domain, this control window
        self.truism_seq = 0
        self.last_known: dict[str, str] = {}  # term -> latest non-failure verdict before this run (flip retest)


def _redacted_probe_set(probe_set: ProbeSet) -> dict[str, Any]:
    doc = probe_set.model_dump(mode="json")
    for sel in doc.get("platforms", []):
        if sel.get("base_url"):
            sel["base_url"] = redact_userinfo(sel["base_url"])
    return doc


def _selection_options(plan: RunPlan, name: str) -> dict[str, Any]:
    for sel in plan.probe_set.platforms:
        if sel.name == name:
            return dict(sel.options)
    return {}


class Engine:
    """Runs a :class:`RunPlan` into a :class:`Store`."""

    def __init__(self, store: Store, options: RunOptions | None = None):
        self.store = store
        self.opt = options or RunOptions()
        self.rng = random.Random(self.opt.seed)
        self._session = 1
        if self.opt.proxy:
            check_proxy(self.opt.proxy)

    def start_run(self, plan: RunPlan, run_id: str | None = None) -> str:
        if run_id is not None:
            self._session = self.store.reopen_run(run_id, os.getpid(), socket.gethostname())
            return run_id
        run_id = utcnow().strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8]
        v = self.opt.vantage
        self.store.create_run(
            Run(run_id=run_id, probe_set=plan.probe_set.name, probe_set_sha256=plan.probe_set_sha256,
                started_at=utcnow(), probe_cc=v.probe_cc, probe_asn=v.probe_asn, vantage=v.label,
                software_version=__version__, planned=len(plan.tasks), pid=os.getpid(),
                hostname=socket.gethostname()),
            {"probe_set": _redacted_probe_set(plan.probe_set),
             "platforms": {n: redact_userinfo(s.base_url) for n, s in plan.specs.items()},
             # how the requests went out, without any credential: the proxy's scheme only, cookie *names* only
             "session": {"proxy": urlsplit(self.opt.proxy).scheme if self.opt.proxy else None,
                         "cookies": {n: sorted({c.name for c in ps.cookies}) for n, ps in self._sessions.items()
                                     if ps.cookies} if hasattr(self, "_sessions") else {}}},
        )
        return run_id

    def _build_sessions(self, plan: RunPlan) -> dict[str, PlatformSession]:
        unknown = sorted(set(self.opt.cookies) - set(plan.specs))
        if unknown:
            raise InputError(f"cookies given for {', '.join(unknown)}, which the probe set does not probe "
                             f"(it probes {', '.join(plan.specs)})")
        sessions = {}
        for name, spec in plan.specs.items():
            opts = _selection_options(plan, name)
            cookies_file: Path | None = self.opt.cookies.get(name)
            if cookies_file is None and opts.get("cookies_file"):
                cookies_file = Path(str(opts["cookies_file"]))
                if not cookies_file.is_absolute() and plan.source is not None:
                    cookies_file = plan.source.parent / cookies_file
            sessions[name] = PlatformSession.build(cookies_file=cookies_file, env_names=spec.request.env_names(),
                                                   proxy=self.opt.proxy, platform=name)
        return sessions

    def _profile_domains(self, plan: RunPlan, spec: PlatformSpec) -> list[str]:
        if spec.soft_test is None:
            return []
        wanted = _selection_options(plan, spec.name).get("domain_profile", self.opt.domain_profile)
        if isinstance(wanted, list):
            return [str(d) for d in wanted]
        return list(spec.soft_test.profile_domains) if wanted else []

    async def run(self, plan: RunPlan, run_id: str | None = None, progress: ProgressCallback | None = None) -> RunSummary:
        t0 = time.monotonic()
        self._sessions = self._build_sessions(plan)  # before the run exists: a bad cookies file writes nothing
        run_id = self.start_run(plan, run_id)
        done = self.store.done_task_keys(run_id)
        todo = [t for t in plan.tasks if t.key not in done]
        counts: dict[str, Counter[str]] = {p: Counter() for p in plan.specs}
        failures: Counter[str] = Counter()
        stored = 0
        self._run_id = run_id
        self._plan = plan

        def record(m: Measurement) -> None:
            nonlocal stored
            stored += 1
            if m.role == "probe":
                counts[m.platform][m.verdict.value] += 1
                if m.failure:
                    failures[m.failure] += 1
            if progress:
                progress(m)

        self._timeout = httpx.Timeout(plan.probe_set.timeout_s)
        status = "interrupted"
        # One thread does every store call of the run, in order: a commit (or a WAL checkpoint's
        # fsync, 10-200 ms on a busy disk) then waits there instead of freezing every worker.
        # Workers hand a finished measurement over and go on; it is counted once committed.
        self._writer = StoreWriter(self.store)
        self._unsettled: set[asyncio.Future[bool]] = set()
        self._in_flight = asyncio.Semaphore(MAX_UNCOMMITTED)
        self._write_error: BaseException | None = None
        self._record = record
        try:
            jobs = []
            for pname, spec in plan.specs.items():
                state = _PlatformState(spec, RateLimiter(plan.rate_limits[pname], self.rng), plan.soft_test[pname],
                                       self._sessions[pname], self._profile_domains(plan, spec))
                if plan.probe_set.flip_retest:
                    terms = [t.keyword.term for t in todo if t.platform == pname and t.role == "probe"]
                    state.last_known = await self._db(self.store.last_known_verdicts, pname, terms,
                                                      self.opt.vantage.label, run_id)
                queue: asyncio.Queue[ProbeTask] = asyncio.Queue()
                for t in todo:
                    if t.platform == pname:
                        queue.put_nowait(t)
                for _ in range(plan.rate_limits[pname].concurrency):
                    jobs.append(asyncio.ensure_future(self._worker(state, queue)))
            try:
                await asyncio.gather(*jobs)
            except BaseException:
                for job in jobs:  # one worker failed (or the run was cancelled): stop the others first
                    job.cancel()
                await asyncio.gather(*jobs, return_exceptions=True)
                raise
            await self._writer.aclose()
            if self._unsettled:
                await asyncio.wait(self._unsettled)
            if self._write_error is not None:
                raise self._write_error
            status = "complete"
        finally:
            self._writer.close()  # after an error or a cancellation: still writes what was handed over
            self.store.set_run_status(run_id, status, finished=status == "complete")
        return RunSummary(run_id, status, len(plan.tasks), stored, len(done), counts, failures, time.monotonic() - t0)

    # ------------------------------------------------------------------ workers

    async def _db(self, call: Callable[..., Any], *args: Any) -> Any:
        """Run a store call on the store thread; it has returned (committed) when this returns."""
        return await self._writer.call(call, *args)

    async def _hand_over(self, m: Measurement, body: bytes | None = None, extra: list[bytes] | None = None) -> None:
        """Queue a finished measurement for the store thread and go on; it is counted
        (``record``) only once its transaction has committed."""
        if self._write_error is not None:
            raise self._write_error
        await self._in_flight.acquire()
        fut = self._writer.add(m, body, extra or ())
        self._unsettled.add(fut)
        fut.add_done_callback(functools.partial(self._settled, m))

    def _settled(self, m: Measurement, fut: asyncio.Future[bool]) -> None:
        self._unsettled.discard(fut)
        self._in_flight.release()
        if fut.cancelled():
            return
        exc = fut.exception()
        if exc is not None:
            if self._write_error is None:
                self._write_error = exc
            return
        if fut.result():
            try:
                self._record(m)
            except Exception as exc:  # a progress callback's error stops the run, as it would in a worker
                if self._write_error is None:
                    self._write_error = exc

    async def _worker(self, st: _PlatformState, queue: asyncio.Queue[ProbeTask]) -> None:
        # A connection pool per worker, with one connection: httpcore checks every idle pooled
        # connection each time a request is placed, and a shared pool of workers that spend
        # time classifying and storing is mostly idle connections (see bench/engine).
        # An injected transport (tests) is shared and not closed here.
        async with Sender.open(self._timeout, proxy=self.opt.proxy, transport=self.opt.transport) as sender:
            _worker_sender.set(sender)
            await self._work(st, queue)

    async def _work(self, st: _PlatformState, queue: asyncio.Queue[ProbeTask]) -> None:
        while True:
            try:
                task = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            ok = await self._ensure_control(st)
            st.since_control += 1  # every task of the window counts, sent or not: a failed window ends
            if not ok:
                m = self._measurement(st, task, task.keyword.query(st.spec.combination_separator), time.time(), 0.0,
                                      Fetched(failure(FailureCode.control_failed, "truism_failed")), 0)
                await self._hand_over(m)
                continue
            m, body, extra = await self._probe(st, task)
            await self._hand_over(m, self._stored_body(body), extra)

    def _stored_body(self, body: bytes | None) -> bytes | None:
        if body is None or not self.opt.keep_bodies:
            return None
        return body[: self.opt.max_stored_body_bytes]

    async def _truism(self, st: _PlatformState) -> bool:
        """Send the truism alone, store it (role ``truism``), and say whether it had results."""
        fetched = await self._send(st, st.spec.truism)
        st.truism_seq += 1
        kw = Keyword(term=st.spec.truism, category="control")
        task = ProbeTask(f"{st.spec.name}\x1ftruism\x1f{self._session}\x1f{st.truism_seq}", st.spec.name,
                         "truism", kw, None, st.truism_seq)
        ok = fetched.classification.verdict is Verdict.not_censored
        m = self._measurement(st, task, st.spec.truism, time.time(), 0.0, fetched, fetched.attempts)
        m.test_keys.control_ok = ok
        await self._db(self.store.add_measurement, m, self._stored_body(fetched.body))
        if ok:
            st.control_id = m.measurement_id
        return ok

    async def _ensure_control(self, st: _PlatformState) -> bool:
        """The truism must have results at the start of every window of ``controls.every`` tasks.

        When it fails it is retried ``control_attempts`` times with exponential backoff; if it
        never recovers, the window's tasks are stored as ``control_failed`` unsent and the
        next window starts after a longer backoff (doubling per consecutive failed window,
        capped at ``controls.max_backoff_s``).
        """
        ps = self._plan.probe_set
        if not ps.controls.truism:
            return True
        async with st.control_lock:
            if st.since_control < ps.controls.every and st.control_ok is not None:
                return st.control_ok
            st.soft_domain = None
            st.domain_controls = {}
            for attempt in range(self.opt.control_attempts):
                if await self._truism(st):
                    st.control_ok = True
                    st.failed_windows = 0
                    st.since_control = 0
                    return True
                if attempt + 1 < self.opt.control_attempts:
                    st.limiter.push_back(self._control_backoff(attempt + st.failed_windows))
            st.control_ok = False
            st.control_id = None
            st.since_control = 0
            st.failed_windows += 1
            st.limiter.push_back(self._control_backoff(self.opt.control_attempts + st.failed_windows - 1))
            return False

    def _control_backoff(self, exponent: int) -> float:
        return min(self.opt.control_backoff_s * (2 ** min(exponent, 20)), self._plan.probe_set.controls.max_backoff_s)

    async def _confirm_control(self, st: _PlatformState) -> bool:
        """A closing control after a silent-empty verdict: the truism must still have results."""
        async with st.control_lock:
            ok = await self._truism(st)
            if not ok:
                st.since_control = self._plan.probe_set.controls.every  # the next task re-opens the window
            return ok

    async def _send(self, st: _PlatformState, query: str) -> Fetched:
        """Send one query with retries and backoff for retryable failures."""
        return await send_with_retries(
            _worker_sender.get(), st.spec, query, st.limiter, self.rng, session=st.session,
            retries=self._plan.probe_set.retries, backoff_s=self.opt.retry_backoff_s,
            max_retry_after_s=self.opt.max_retry_after_s)

    def _keep(self, fetched: Fetched, pending: list[bytes] | None = None) -> str | None:
        """Keep an extra answer's body (soft probe, first answer of a retest); its key in the bodies table.

        With ``pending``, the body is stored later, in the same transaction as its measurement.
        """
        body = self._stored_body(fetched.body)
        if body is None:
            return None
        if pending is None:
            return self.store.put_body(body)
        pending.append(body)
        return hashlib.sha256(body).hexdigest()

    async def _domain_control(self, st: _PlatformState, domain: str) -> bool:
        if domain not in st.domain_controls:
            assert st.spec.soft_test is not None
            ctrl = await self._send(st, fill(st.spec.soft_test.control, {"truism": st.spec.truism, "domain": domain}))
            st.domain_controls[domain] = ctrl.classification.verdict is Verdict.not_censored
        return st.domain_controls[domain]

    async def _soft_check(self, st: _PlatformState, query: str,
                          pending: list[bytes]) -> tuple[Classification | None, dict[str, Any]]:
        spec = st.spec
        assert spec.soft_test is not None
        if st.soft_domain is None:
            for domain in spec.soft_test.domains:
                if await self._domain_control(st, domain):
                    st.soft_domain = domain
                    break
        if st.soft_domain is None:
            info = {"failure": FailureCode.soft_control_failed.value, "domains": list(spec.soft_test.domains)}
            return failure(FailureCode.soft_control_failed), info
        q = fill(spec.soft_test.probe, {"query": query, "truism": spec.truism, "domain": st.soft_domain})
        res = await self._send(st, q)
        c = res.classification
        info = {"domain": st.soft_domain, "query": q, "verdict": c.verdict.value, "failure": c.failure,
                "signals": list(c.signals), "result_items": c.result_items, "status_code": res.status,
                "body_sha256": hashlib.sha256(res.body).hexdigest() if res.body is not None else None,
                "body_truncated": len(res.body or b"") > self.opt.max_stored_body_bytes,
                "stored_body_sha256": self._keep(res, pending)}
        return c, info

    async def _classify_once(self, st: _PlatformState, task: ProbeTask,
                             pending: list[bytes]) -> tuple[Fetched, str, dict[str, Any] | None]:
        spec = st.spec
        query = task.keyword.query(spec.combination_separator)
        with_truism = spec.hard_needs_truism
        sent = query + spec.combination_separator + spec.truism if with_truism else query
        fetched = await self._send(st, sent)
        c = apply_truism_method(spec, fetched.classification, sent_with_truism=with_truism, control_ok=st.control_ok)
        if SILENT_EMPTY in c.signals and self.opt.confirm_silent_empty and self._plan.probe_set.controls.truism:
            if not await self._confirm_control(st):
                c = failure(FailureCode.control_failed, "closing_truism_failed", *c.signals)
        soft_info = None
        if st.soft and c.verdict is Verdict.not_censored:
            soft_c, soft_info = await self._soft_check(st, query, pending)
            c = apply_soft_test(c, soft_c)
        fetched.classification = c
        return fetched, sent, soft_info

    async def _probe(self, st: _PlatformState, task: ProbeTask) -> tuple[Measurement, bytes | None, list[bytes]]:
        t0 = time.time()
        pending: list[bytes] = []  # extra bodies, stored with the measurement in one transaction
        fetched, sent, soft_info = await self._classify_once(st, task, pending)
        verdict = fetched.classification.verdict
        retested = False
        confirmed: bool | None = None
        retest_of: dict[str, Any] | None = None
        if task.role == "probe" and self._plan.probe_set.flip_retest and verdict is not Verdict.failure:
            last = st.last_known.get(task.keyword.term)
            if last is not None and last != verdict.value:
                again, sent2, soft2 = await self._classify_once(st, task, pending)
                retested = True
                v2 = again.classification.verdict
                first = fetched.classification
                retest_of = {"last_known": last, "verdict": first.verdict.value, "signals": list(first.signals),
                             "status_code": fetched.status,
                             "body_sha256": hashlib.sha256(fetched.body).hexdigest() if fetched.body is not None else None}
                if v2 is verdict:
                    confirmed = True
                elif v2 is Verdict.failure:
                    retest_of.update(retest_failure=again.classification.failure)
                else:
                    confirmed = False
                if v2 is not verdict and v2 is not Verdict.failure:
                    # the retest disagrees: keep its answer as the verdict, the first one as retest_of
                    retest_of["stored_body_sha256"] = self._keep(fetched, pending)
                    fetched, sent, soft_info = again, sent2, soft2
        m = self._measurement(st, task, sent, t0, time.time() - t0, fetched, fetched.attempts)
        m.test_keys.soft_probe = soft_info
        m.test_keys.retested = retested
        m.test_keys.confirmed = confirmed
        m.test_keys.retest_of = retest_of
        m.test_keys.sent_with_truism = st.spec.hard_needs_truism
        if retested and confirmed is False:
            m.test_keys.signals.append(f"flip_unconfirmed:{verdict.value}")
        if task.role == "control" and m.verdict in (Verdict.hard, Verdict.soft, Verdict.no_results):
            m.test_keys.signals.append("control_term_unexpected")  # a benign term should never look censored
        if m.verdict is Verdict.soft and st.profile_domains and task.role == "probe":
            await self._profile(st, task)
        return m, fetched.body, pending

    async def _profile(self, st: _PlatformState, task: ProbeTask) -> None:
        """Authorized-domain profile of a soft-censored term: which domains still show results for it."""
        from .platforms.profile import save_profile_cell

        spec = st.spec
        assert spec.soft_test is not None
        query = task.keyword.query(spec.combination_separator)
        for domain in st.profile_domains:
            q = fill(spec.soft_test.probe, {"query": query, "truism": spec.truism, "domain": domain})
            if not await self._domain_control(st, domain):
                await self._db(save_profile_cell, self.store, self._run_id, spec.name, task.keyword.term, domain,
                               "no_control", q, None)
                continue
            res = await self._send(st, q)
            v = res.classification.verdict
            state = {Verdict.not_censored: "allowed", Verdict.no_results: "withheld", Verdict.hard: "withheld",
                     Verdict.soft: "allowed"}.get(v, f"failure:{res.classification.failure}")
            await self._db(lambda: save_profile_cell(self.store, self._run_id, spec.name, task.keyword.term, domain,
                                                     state, q, self._keep(res)))

    def _measurement(self, st: _PlatformState, task: ProbeTask, sent: str, t0: float, runtime: float,
                     fetched: Fetched, attempts: int) -> Measurement:
        c = fetched.classification
        v = self.opt.vantage
        body = fetched.body
        size = fetched.body_size if fetched.body_size is not None else (len(body) if body is not None else None)
        truncated = fetched.truncated or (body is not None and len(body) > self.opt.max_stored_body_bytes)
        return Measurement(
            measurement_id=uuid.uuid4().hex,
            run_id=self._run_id,
            probe_set=self._plan.probe_set.name,
            task_key=task.key,
            measurement_start_time=_utc(t0),
            test_runtime=round(runtime, 4),
            software_version=__version__,
            probe_cc=v.probe_cc,
            probe_asn=v.probe_asn,
            vantage=v.label,
            platform=st.spec.name,
            role=task.role,
            input=task.keyword.term,
            components=task.keyword.components,
            list_name=task.list_name,
            category=task.keyword.category or None,
            tags=list(task.keyword.tags),
            variant=task.variant,
            query=sent,
            repeat=task.repeat,
            verdict=c.verdict,
            failure=c.failure,
            test_keys=TestKeys(
                signals=list(c.signals), result_count=c.result_count, result_items=c.result_items,
                result_domains=c.result_domains[:50], control_ok=st.control_ok, attempts=attempts,
                control_id=st.control_id if task.role != "truism" else None,
            ),
            evidence=Evidence(
                status_code=fetched.status, final_url=fetched.final_url, headers=fetched.headers,
                # the hash of the whole body as received, even when only a prefix is stored
                body_sha256=hashlib.sha256(body).hexdigest() if body is not None and not fetched.truncated else None,
                body_size=size, body_truncated=truncated,
            ),
        )


def _utc(ts: float):
    import datetime as dt

    return dt.datetime.fromtimestamp(ts, dt.timezone.utc)


def run_sync(engine: Engine, plan: RunPlan, run_id: str | None = None, progress: ProgressCallback | None = None) -> RunSummary:
    return asyncio.run(engine.run(plan, run_id, progress))
