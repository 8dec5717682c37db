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
import hashlib
import os
import random
import socket
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit, parse_qsl, urlencode

import httpx

from . import __version__
from .classify import Classification, classify_http, failure
from .errors import ProbeSetError
from .failures import RETRYABLE, FailureCode
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
from .store import Store, utcnow
from .yamlio import LocatedYaml, load_model

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
            for kw, lname in entries:
                if controls and n_probe % every == 0:
                    ckw, cl = controls[c_index % len(controls)]
                    tasks.append(ProbeTask(_task_key(pname, "control", ckw.term, c_index, None), pname, "control", ckw, cl, c_index))
                    c_index += 1
                tasks.append(ProbeTask(_task_key(pname, "probe", kw.term, rep, None), pname, "probe", kw, lname, rep))
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
    truncated: bool = False
    retry_after: float | None = None
    attempts: int = 1


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


def build_request(spec: PlatformSpec, query: str) -> tuple[str, str, dict[str, Any]]:
    """Method, URL and httpx keyword arguments for one query."""
    req = spec.request
    enc = req.query_encoding
    url = fill(req.url, {"base_url": spec.base_url, "query": quote(query, safe="", encoding=enc)})
    kwargs: dict[str, Any] = {"headers": dict(req.headers)}
    if req.params:
        pairs = [(k, fill(v, {"query": query, "base_url": spec.base_url})) for k, v in req.params.items()]
        if enc.lower().replace("-", "") == "utf8":
            kwargs["params"] = pairs
        else:
            url += ("&" if "?" in url else "?") + urlencode(pairs, encoding=enc)
    if req.json_body is not None:
        kwargs["json"] = _fill_obj(req.json_body, {"query": query})
    if req.form is not None:
        kwargs["data"] = _fill_obj(req.form, {"query": query})
    return req.method, url, kwargs


def redact_url(url: str) -> str:
    """Remove credentials and token-like query parameters from a URL kept as evidence."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    query = [
        (k, "REDACTED" if any(h in k.lower() for h in SECRET_PARAM_HINTS) else v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query), ""))


def _failure_for_exception(exc: Exception) -> FailureCode:
    text = str(exc).lower()
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


_INFLATE_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


def _origin(url: str) -> tuple[str, str | None, int | None]:
    """Scheme, host and port: a redirect may only stay on the spec's own origin."""
    parts = urlsplit(url)
    try:
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:  # a Location with a port that is not a number
        port = -1
    return parts.scheme, parts.hostname, port


async def _read_capped(resp: httpx.Response, cap: int) -> bytes | None:
    """The decoded body, or None as soon as it grows past ``cap`` bytes.

    httpx inflates a whole network chunk at once (a 64 KB gzip bomb chunk becomes 64 MB
    in memory; ``gzip, gzip`` would nest that), so bodies are inflated here with
    ``max_length``: memory stays near ``cap``. Codings we did not ask for are refused.
    """
    encoding = resp.headers.get("content-encoding", "").strip().lower()
    chunks: list[bytes] = []
    size = 0
    if encoding not in ("", "identity"):
        if encoding not in _INFLATE_WBITS:
            raise httpx.DecodingError(f"unsupported content-encoding {encoding[:40]!r}")
        inflater = zlib.decompressobj(_INFLATE_WBITS[encoding])
        try:
            async for raw in resp.aiter_raw():
                data = inflater.decompress(raw, cap - size + 1)
                size += len(data)
                if size > cap:
                    return None
                chunks.append(data)
            tail = inflater.flush()
        except zlib.error as exc:
            raise httpx.DecodingError(f"gzip: {exc}") from None
        size += len(tail)
        if size > cap:
            return None
        chunks.append(tail)
        return b"".join(chunks)
    async for chunk in resp.aiter_raw():
        size += len(chunk)
        if size > cap:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def fetch(client: httpx.AsyncClient, spec: PlatformSpec, query: str, max_redirects: int = 5,
                deadline_s: float | None = None) -> Fetched:
    """Send one query and classify the answer. Never raises for network trouble.

    httpx's timeouts bound each read, so a server that trickles a byte at a time would
    never time out; ``deadline_s`` (default: the client's read timeout) bounds the whole
    exchange, redirects included.
    """
    deadline = deadline_s if deadline_s is not None else client.timeout.read
    if deadline is None:
        return await _fetch(client, spec, query, max_redirects)
    try:
        return await asyncio.wait_for(_fetch(client, spec, query, max_redirects), deadline)
    except asyncio.TimeoutError:
        return Fetched(failure(FailureCode.timeout, "deadline"))


async def _fetch(client: httpx.AsyncClient, spec: PlatformSpec, query: str, max_redirects: int) -> Fetched:
    method, url, kwargs = build_request(spec, query)
    origin = _origin(url)
    try:
        for _ in range(max_redirects + 1):
            async with client.stream(method, url, **kwargs) as resp:
                headers = {k.lower(): v for k, v in resp.headers.items() if k.lower() in KEPT_HEADERS}
                if "location" in headers:  # evidence, but a redirect may carry tokens like any URL
                    headers["location"] = redact_url(headers["location"])
                if resp.is_redirect:
                    location = resp.headers.get("location", "")
                    nxt = str(resp.url.join(location))
                    if _origin(nxt) != origin:
                        return Fetched(failure(FailureCode.redirect_offsite, f"location:{urlsplit(nxt).hostname}"),
                                       resp.status_code, redact_url(str(resp.url)), headers)
                    url, method = nxt, "GET"
                    kwargs.pop("json", None)
                    kwargs.pop("data", None)
                    kwargs.pop("params", None)
                    continue
                body = await _read_capped(resp, spec.max_body_bytes)
                if body is None:
                    return Fetched(failure(FailureCode.body_too_large, f"over:{spec.max_body_bytes}"),
                                   resp.status_code, redact_url(str(resp.url)), headers, None)
                result = Fetched(
                    classify_http(spec, resp.status_code, headers, body),
                    resp.status_code, redact_url(str(resp.url)), headers, body,
                    retry_after=_retry_after(resp.headers),
                )
                return result
        return Fetched(failure(FailureCode.too_many_redirects))
    except httpx.HTTPError as exc:
        return Fetched(failure(_failure_for_exception(exc), type(exc).__name__))
    except (OSError, ValueError) as exc:
        return Fetched(failure(FailureCode.network_error, type(exc).__name__))


# --------------------------------------------------------------------------- pacing


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
    proxy: str | None = None
    transport: httpx.AsyncBaseTransport | None = None
    seed: int | None = None


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

    @property
    def failure_share(self) -> float:
        total = sum(sum(c.values()) for c in self.counts.values())
        return (sum(c["failure"] for c in self.counts.values()) / total) if total else 0.0


ProgressCallback = Callable[[Measurement | None], None]


class _PlatformState:
    def __init__(self, spec: PlatformSpec, limiter: RateLimiter, soft: bool):
        self.spec = spec
        self.limiter = limiter
        self.soft = soft
        self.since_control = 10**9
        self.control_ok: bool | None = None
        self.control_lock = asyncio.Lock()
        self.soft_domain: str | None = None
        self.truism_seq = 0


class Engine:
    """Runs a :class:`RunPlan` into a :class:`Store`."""

    def __init__(self, store: Store, options: RunOptions | None = None):
        self.store = store
        self.opt = options or RunOptions()
        self.rng = random.Random(self.opt.seed)
        self._session = 1

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
            {"probe_set": plan.probe_set.model_dump(mode="json"),
             "platforms": {n: s.base_url for n, s in plan.specs.items()}},
        )
        return run_id

    async def run(self, plan: RunPlan, run_id: str | None = None, progress: ProgressCallback | None = None) -> RunSummary:
        t0 = time.monotonic()
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

        limits = httpx.Limits(max_connections=64, max_keepalive_connections=32)
        timeout = httpx.Timeout(plan.probe_set.timeout_s)
        client_kwargs: dict[str, Any] = {"timeout": timeout, "limits": limits, "follow_redirects": False,
                                         "trust_env": False}
        if self.opt.transport is not None:
            client_kwargs["transport"] = self.opt.transport
        elif self.opt.proxy:
            client_kwargs["proxy"] = self.opt.proxy
        status = "interrupted"
        # One thread does every store call of the run, in order: a commit (or a WAL checkpoint's
        # fsync, 10-200 ms on a busy disk) then waits there instead of freezing every worker.
        self._db_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="harness-store")
        try:
            async with httpx.AsyncClient(**client_kwargs) as client:
                self.client = client
                jobs = []
                for pname, spec in plan.specs.items():
                    state = _PlatformState(spec, RateLimiter(plan.rate_limits[pname], self.rng), plan.soft_test[pname])
                    queue: asyncio.Queue[ProbeTask] = asyncio.Queue()
                    for t in todo:
                        if t.platform == pname:
                            queue.put_nowait(t)
                    for _ in range(plan.rate_limits[pname].concurrency):
                        jobs.append(self._worker(state, queue, record))
                await asyncio.gather(*jobs)
            status = "complete"
        finally:
            self._db_thread.shutdown(wait=True)
            self.store.set_run_status(run_id, status, finished=status == "complete")
        return RunSummary(run_id, status, len(plan.tasks), stored, len(done), counts, failures, time.monotonic() - t0)

    # ------------------------------------------------------------------ workers

    async def _db(self, call: Callable[..., Any], *args: Any) -> Any:
        """Run a store call on the store thread; it has returned (committed) when this returns."""
        return await asyncio.get_running_loop().run_in_executor(self._db_thread, call, *args)

    async def _worker(self, st: _PlatformState, queue: asyncio.Queue[ProbeTask], record: Callable[[Measurement], None]) -> None:
        while True:
            try:
                task = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            ok = await self._ensure_control(st, record)
            if not ok:
                m = self._measurement(st, task, task.keyword.query(st.spec.combination_separator), time.time(), 0.0,
                                      Fetched(failure(FailureCode.control_failed)), 0)
                m.test_keys.control_ok = False
                if await self._db(self.store.add_measurement, m):
                    record(m)
                continue
            m, body = await self._probe(st, task)
            if await self._db(self.store.add_measurement, m, body if self.opt.keep_bodies else None):
                record(m)
            st.since_control += 1

    async def _ensure_control(self, st: _PlatformState, record: Callable[[Measurement], None]) -> bool:
        ps = self._plan.probe_set
        if not ps.controls.truism:
            return True
        async with st.control_lock:
            if st.since_control < ps.controls.every and st.control_ok is not None:
                return st.control_ok
            backoff = self.opt.control_backoff_s
            for attempt in range(self.opt.control_attempts):
                fetched = await self._send(st, st.spec.truism)
                st.truism_seq += 1
                kw = Keyword(term=st.spec.truism, category="control")
                task = ProbeTask(f"{st.spec.name}\x1ftruism\x1f{self._session}\x1f{st.truism_seq}", st.spec.name,
                                 "truism", kw, None, st.truism_seq)
                m = self._measurement(st, task, st.spec.truism, time.time(), 0.0, fetched, fetched.attempts)
                await self._db(self.store.add_measurement, m, fetched.body if self.opt.keep_bodies else None)
                if fetched.classification.verdict is Verdict.not_censored:
                    st.control_ok = True
                    st.since_control = 0
                    st.soft_domain = None
                    return True
                if attempt + 1 < self.opt.control_attempts:
                    wait = min(backoff * (2**attempt), ps.controls.max_backoff_s)
                    st.limiter.push_back(wait)
            st.control_ok = False
            st.since_control = 0
            return False

    async def _send(self, st: _PlatformState, query: str) -> Fetched:
        """Send one query with retries and backoff for retryable failures."""
        retries = self._plan.probe_set.retries
        fetched = Fetched(failure(FailureCode.internal_error))
        for attempt in range(retries + 1):
            await st.limiter.wait()
            fetched = await fetch(self.client, st.spec, query)
            code = fetched.classification.failure
            fetched.attempts = attempt + 1
            if code is None or FailureCode(code) not in RETRYABLE or attempt == retries:
                return fetched
            if fetched.retry_after is not None:
                wait = min(fetched.retry_after, self.opt.max_retry_after_s)
            else:
                wait = self.opt.retry_backoff_s * (2**attempt) * (1 + self.rng.uniform(0, 0.25))
            st.limiter.push_back(wait)
        return fetched

    async def _soft_check(self, st: _PlatformState, query: str) -> dict[str, Any]:
        spec = st.spec
        assert spec.soft_test is not None
        info: dict[str, Any] = {}
        if st.soft_domain is None:
            for domain in spec.soft_test.domains:
                ctrl = await self._send(st, fill(spec.soft_test.control, {"truism": spec.truism, "domain": domain}))
                if ctrl.classification.verdict is Verdict.not_censored:
                    st.soft_domain = domain
                    break
        if st.soft_domain is None:
            return {"failure": "soft_control_failed"}
        q = fill(spec.soft_test.probe, {"query": query, "truism": spec.truism, "domain": st.soft_domain})
        res = await self._send(st, q)
        info.update({"domain": st.soft_domain, "query": q, "verdict": res.classification.verdict.value,
                     "failure": res.classification.failure, "result_items": res.classification.result_items})
        return info

    async def _classify_once(self, st: _PlatformState, task: ProbeTask) -> tuple[Fetched, str, dict[str, Any] | None]:
        spec = st.spec
        query = task.keyword.query(spec.combination_separator)
        sent = query + spec.combination_separator + spec.truism if spec.hard_needs_truism else query
        fetched = await self._send(st, sent)
        c = fetched.classification
        soft_info = None
        if spec.hard_needs_truism and c.verdict is Verdict.no_results and st.control_ok:
            c.verdict = Verdict.hard
            c.signals.append("silent_empty_with_truism")
        if st.soft and c.verdict is Verdict.not_censored:
            soft_info = await self._soft_check(st, query)
            if soft_info.get("verdict") in (Verdict.no_results.value, Verdict.hard.value):
                c.verdict = Verdict.soft
                c.signals.append("soft_restricted_truism_empty")
            elif soft_info.get("failure"):
                # The soft test could not run, so "not censored" would be a guess: a soft-censored
                # term must never be stored as uncensored because a platform hiccupped.
                code = soft_info["failure"]
                fetched.classification = failure(
                    FailureCode(code) if code in FailureCode._value2member_map_ else FailureCode.control_failed,
                    "soft_test_incomplete",
                )
        return fetched, sent, soft_info

    async def _probe(self, st: _PlatformState, task: ProbeTask) -> tuple[Measurement, bytes | None]:
        t0 = time.time()
        fetched, sent, soft_info = await self._classify_once(st, task)
        verdict = fetched.classification.verdict
        retested = False
        confirmed: bool | None = None
        first_verdict = verdict
        if (
            task.role == "probe"
            and self._plan.probe_set.flip_retest
            and verdict is not Verdict.failure
        ):
            last = await self._db(self.store.last_known_verdict, st.spec.name, task.keyword.term,
                                  self.opt.vantage.label, self._run_id)
            if last is not None and last != verdict.value:
                again, sent2, soft2 = await self._classify_once(st, task)
                retested = True
                if again.classification.verdict is verdict:
                    confirmed = True
                elif again.classification.verdict is not Verdict.failure:
                    confirmed = False
                    fetched, sent, soft_info = again, sent2, soft2
        m = self._measurement(st, task, sent, t0, time.time() - t0, fetched, fetched.attempts)
        m.test_keys.soft_probe = soft_info
        m.test_keys.retested = retested
        m.test_keys.confirmed = confirmed
        if retested and confirmed is False:
            m.test_keys.signals.append(f"flip_unconfirmed:{first_verdict.value}")
        return m, fetched.body

    def _measurement(self, st: _PlatformState, task: ProbeTask, sent: str, t0: float, runtime: float,
                     fetched: Fetched, attempts: int) -> Measurement:
        c = fetched.classification
        v = self.opt.vantage
        body = fetched.body
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
            variant=task.variant,
            query=sent,
            repeat=task.repeat,
            verdict=c.verdict,
            failure=c.failure,
            test_keys=TestKeys(
                signals=list(c.signals), result_count=c.result_count, result_items=c.result_items,
                result_domains=c.result_domains[:50], control_ok=st.control_ok, attempts=attempts,
            ),
            evidence=Evidence(
                status_code=fetched.status, final_url=fetched.final_url, headers=fetched.headers,
                body_sha256=hashlib.sha256(body).hexdigest() if body is not None else None,
                body_size=len(body) if body is not None else None,
            ),
        )


def _utc(ts: float):
    import datetime as dt

    return dt.datetime.fromtimestamp(ts, dt.timezone.utc)


def run_sync(engine: Engine, plan: RunPlan, run_id: str | None = None, progress: ProgressCallback | None = None) -> RunSummary:
    return asyncio.run(engine.run(plan, run_id, progress))
