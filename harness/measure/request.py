"""One query to one platform: build the request from the spec, send it, read the answer, classify it.

:func:`fetch` never raises for network trouble: every way an exchange can go wrong
becomes a failure code (:mod:`harness.failures`). A redirect the spec's ``location``
signals explain is classified without being followed; others are followed by hand and
only on the spec's own origin; bodies are read with a cap (gzip bombs included) and a
deadline bounds the whole exchange. What is kept as evidence (final URL, a header
subset) is stripped of credentials and token-like values here. Pacing and retries are
:mod:`harness.measure.pacing`'s job.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import ssl
import time
import zlib
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote_plus, urlsplit, urlunsplit

import httpx

from ..errors import PlatformSpecError
from ..failures import FailureCode
from ..platforms.adapters import REPRIME_MIN_S, BuiltRequest, PrimeResponse, PrimingError, get_adapter
from ..platforms.classification import Classification, failure
from ..platforms.classify import classify_http, classify_redirect, origin_of
from ..platforms.spec import PlatformSpec
from .browser import BrowserUnavailable
from .sessions import PlatformSession, Secrets, looks_like_token
from .transport import Sender

KEPT_HEADERS = ("content-type", "content-length", "content-encoding", "server", "date", "location", "retry-after")
SECRET_PARAM_HINTS = ("token", "key", "sign", "auth", "session", "sid", "cookie", "bogus", "pass", "secret", "ticket")
# Parameter names that merely contain a hint: the query itself (``keyword`` on JD, Bilibili,
# Toutiao and Douyin) must stay in the evidence URL.
_NOT_SECRET_WORDS = frozenset({"keyword", "keywords", "author", "design", "passage", "signal", "consider", "inside"})
_NAME_WORDS = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")


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
    received_sha256: str | None = None  # the body as received, when ``body`` had secrets replaced
    redactions: int = 0  # how many secrets were replaced by REDACTED in ``body``

    @property
    def body_hash(self) -> str | None:
        """SHA-256 of the body as received (before any redaction)."""
        if self.received_sha256 is not None:
            return self.received_sha256
        return hashlib.sha256(self.body).hexdigest() if self.body is not None else None


SECRET_HEADERS = ("authorization", "cookie", "proxy-authorization", "x-api-key", "x-auth-token", "x-csrf-token",
                  "x-xsrf-token")
"""Request headers whose values are secrets wherever they came from (a spec literal included)."""


def _secret_param_name(name: str) -> bool:
    """Whether a query parameter's name says it carries a credential (``msToken``, ``api_key``,
    ``Session_Id``, ``a_bogus``, ``sign``), judged word by word so ``keyword`` is not a ``key``."""
    words = [w.lower() for w in _NAME_WORDS.findall(name)] or [name.lower()]
    return any(w not in _NOT_SECRET_WORDS and any(h in w for h in SECRET_PARAM_HINTS) for w in words)


def sent_secrets(built: BuiltRequest, query: str) -> list[str]:
    """Values this request sends that a page must not echo into the store: secret headers' values
    (and their parts, e.g. ``Bearer TOKEN``'s token) and secret-named or token-like query values.
    The searched query itself is never one (the page quoting it is the evidence)."""
    out: list[str] = []
    for name, value in built.headers.items():
        if name.lower() in SECRET_HEADERS or _secret_param_name(name):
            out.append(value)
            for chunk in value.split(";"):
                out.append(chunk.split("=", 1)[-1].strip())
                out.extend(chunk.split()[1:])
    for pair in urlsplit(built.url).query.split("&"):
        name, eq, value = pair.partition("=")
        plain = unquote_plus(value, errors="replace")
        if eq and (_secret_param_name(unquote_plus(name, errors="replace")) or (len(plain) >= 24 and looks_like_token(plain))):
            out.extend((value, plain))
    return [v for v in dict.fromkeys(out) if v and len(v) >= 3 and v not in query]


def redact_body(fetched: Fetched, secrets: Secrets | None, extra: list[str]) -> Fetched:
    """Replace every secret in ``fetched.body`` by ``REDACTED`` before anything reads or keeps it;
    the hash of what was received is kept in ``received_sha256``."""
    if fetched.body is None or (not secrets and not extra):
        return fetched
    body, n = (secrets or Secrets()).redact_bytes(fetched.body, extra)
    if n:
        fetched.received_sha256 = hashlib.sha256(fetched.body).hexdigest()
        fetched.body, fetched.redactions = body, n
    return fetched


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


def build_request(spec: PlatformSpec, query: str, env: dict[str, str] | None = None,
                  state: dict[str, Any] | None = None) -> BuiltRequest:
    """The request for one query, from the spec's template (and its adapter, if any; a priming
    adapter also gets its session's ``state``)."""
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
            if hasattr(adapter, "prime"):
                built = adapter.build_request(spec, query, built, state if state is not None else {})
            else:
                built = adapter.build_request(spec, query, built)
    return built


PRIME_MAX_BODY = 1_000_000


class _Priming:
    """The :class:`harness.platforms.adapters.PrimingContext` of one session: requests go out
    through the run's sender with the spec's headers and the session's cookies; bodies are capped."""

    def __init__(self, sender: Sender, spec: PlatformSpec, session: PlatformSession):
        self.sender = sender
        self.spec = spec
        self.session = session
        self.state = session.adapter_state

    async def get(self, url: str, headers: dict[str, str] | None = None) -> PrimeResponse:
        hdrs = {**self.spec.request.headers, **(headers or {})}
        cookie = self.session.cookie_header(url)
        if cookie:
            hdrs["Cookie"] = cookie
        async with self.sender.stream("GET", url, headers=hdrs) as resp:
            body, _seen = await _read_capped(resp, PRIME_MAX_BODY)
            return PrimeResponse(resp.status_code, list(resp.headers.multi_items()), body)

    def set_cookie(self, name: str, value: str, *, secret: bool = True) -> None:
        self.session.set_cookie(name, value, secret=secret)


async def _ensure_primed(sender: Sender, spec: PlatformSpec, adapter: Any, session: PlatformSession) -> Fetched | None:
    """Prime the session if it never was, is older than the adapter's ``prime_ttl_s``, or was
    rejected; a failure to prime is the probe's failure. Network errors propagate."""
    async with session.prime_lock:
        now = time.monotonic()
        ttl = getattr(adapter, "prime_ttl_s", None)
        if session.primed_at is not None and not session.reprime and not (ttl and now - session.primed_at > ttl):
            return None
        session.reprime = False
        session.primed_at = None
        try:
            await adapter.prime(spec, _Priming(sender, spec, session))
        except PrimingError as exc:
            return Fetched(failure(FailureCode.session_invalid, f"prime:{exc.signal}"))
        except (httpx.HTTPError, OSError):
            raise
        except Exception as exc:  # an adapter is third-party code: its bug is a failure, not a verdict
            return Fetched(failure(FailureCode.adapter_error, f"prime:{type(exc).__name__}"))
        session.primed_at = time.monotonic()
        return None


def _note_rejection(session: PlatformSession, c: Classification) -> None:
    """A primed session the platform rejected primes again before its next request (not more
    often than every REPRIME_MIN_S: an address under risk control would otherwise be asked
    for a new session on every probe)."""
    if c.failure != FailureCode.session_invalid.value:
        return
    now = time.monotonic()
    if session.forced_reprime_at is None or now - session.forced_reprime_at >= REPRIME_MIN_S:
        session.reprime = True
        session.forced_reprime_at = now


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
            if _secret_param_name(unquote_plus(name, errors="replace")) or (
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


# OpenSSL's X509_V_ERR_* codes, read the way OONI Probe's classifier reads Go's x509 errors
_UNKNOWN_AUTHORITY = frozenset({2, 18, 19, 20, 21})  # no issuer certificate, self-signed (leaf or in chain), no local issuer
_INVALID_HOSTNAME = frozenset({62, 64})  # HOSTNAME_MISMATCH, IP_ADDRESS_MISMATCH


def _tls_failure(exc: BaseException) -> FailureCode:
    """A failed TLS handshake, split along OONI's strings where the cause is known: the certificate's
    name (``ssl_invalid_hostname``), its issuer (``ssl_unknown_authority``), the certificate itself
    (``ssl_invalid_certificate``: expired, not yet valid, revoked ...), else ``ssl_failed_handshake``."""
    for cause in _causes(exc):
        if isinstance(cause, ssl.SSLCertVerificationError):
            code = cause.verify_code
            if code in _INVALID_HOSTNAME:
                return FailureCode.tls_invalid_hostname
            if code in _UNKNOWN_AUTHORITY:
                return FailureCode.tls_unknown_authority
            return FailureCode.tls_invalid_certificate
    return FailureCode.tls_error


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
            return _tls_failure(exc)
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

    A redirect is first read through the spec's ``location`` signals (a CAPTCHA host, a
    login wall: classified, not followed); any other is followed by hand, only on the
    spec's own origin (scheme, host and port), and is ``redirect_offsite`` elsewhere. A body over the
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
    limit = spec.request.max_query_chars
    if limit is not None and len(query) > limit:
        return Fetched(failure(FailureCode.query_too_long, f"chars:{len(query)}>{limit}"))
    if spec.transport == "browser":
        return await _fetch_browser(sender, spec, query, session)
    adapter = get_adapter(spec.adapter) if spec.adapter else None
    primes = adapter is not None and hasattr(adapter, "prime")
    if primes:
        session = session if session is not None else PlatformSession()
        try:
            unprimed = await _ensure_primed(sender, spec, adapter, session)
        except httpx.HTTPError as exc:
            return Fetched(failure(_failure_for_exception(exc), "prime", type(exc).__name__))
        except (OSError, ValueError) as exc:
            return Fetched(failure(FailureCode.network_error, "prime", type(exc).__name__))
        if unprimed is not None:
            return unprimed
    fetched = await _fetch_built(sender, spec, query, max_redirects, session)
    if primes and session is not None:
        _note_rejection(session, fetched.classification)
    return fetched


def _kept_dict(headers: dict[str, str], secrets: Secrets | None) -> dict[str, str]:
    return _kept_headers(httpx.Headers(headers), secrets)


async def _fetch_browser(sender: Sender, spec: PlatformSpec, query: str, session: PlatformSession | None) -> Fetched:
    """One query through the run's headless browser (:mod:`harness.measure.browser`)."""
    browser = sender.browser
    if browser is None:
        raise BrowserUnavailable(f"{spec.name}: the spec has transport: browser but no browser was started")
    try:
        built = build_request(spec, query, session.env if session else None)
    except UnicodeEncodeError:
        return Fetched(failure(FailureCode.decode_error, f"query_not_encodable:{spec.request.query_encoding}"))
    secrets = session.secrets.copy() if session else Secrets()
    cookies = [(c.name, c.value) for c in (session.cookies if session else [])
               if c.applies_to(urlsplit(built.url).hostname or "", urlsplit(built.url).path or "/")]
    budget = sender.timeout.read or 30.0
    opts = spec.browser
    answer = await browser.load(built.url, headers=built.headers, cookies=cookies,
                                capture=opts.capture if opts else None, wait_for=opts.wait_for if opts else None,
                                timeout_s=budget * 0.9, max_bytes=spec.max_body_bytes)
    for value in answer.page_cookies:  # cookies the page set (session ids, msToken ...) never reach the store
        secrets.add(value)
    final_url = redact_url(answer.url, secrets) if answer.url else None
    for status, target in answer.redirects:  # a CAPTCHA or login host the page was sent to, as for HTTP
        decided = classify_redirect(spec, status or 0, target)
        if decided is not None:
            if status is None:
                decided.signals.append("browser:script_navigation")
            return Fetched(decided, status, redact_url(built.url, secrets),
                           {"location": redact_url(target, secrets)})
    if answer.failure is not None:
        return Fetched(failure(FailureCode(answer.failure), answer.signal or "browser"), final_url=final_url)
    headers = _kept_dict(answer.headers, secrets)
    if answer.redirected_offsite is not None:
        return Fetched(failure(FailureCode.redirect_offsite, f"location:{answer.redirected_offsite}"),
                       answer.status, redact_url(built.url, secrets), headers)
    received = answer.body
    body, n = secrets.redact_bytes(received, sent_secrets(built, query))
    received_sha = hashlib.sha256(received).hexdigest() if n else None
    if len(body) > spec.max_body_bytes:
        return Fetched(failure(FailureCode.body_too_large, f"over:{spec.max_body_bytes}"), answer.status, final_url,
                       headers, body[: spec.max_body_bytes], truncated=True, body_size=len(body),
                       received_sha256=received_sha, redactions=n)
    return Fetched(classify_http(spec, answer.status or 200, headers, body), answer.status, final_url, headers, body,
                   body_size=len(body), received_sha256=received_sha, redactions=n)


async def _fetch_built(sender: Sender, spec: PlatformSpec, query: str, max_redirects: int,
                       session: PlatformSession | None) -> Fetched:
    secrets = session.secrets if session else None
    try:
        built = build_request(spec, query, session.env if session else None,
                              session.adapter_state if session else None)
    except UnicodeEncodeError:
        return Fetched(failure(FailureCode.decode_error, f"query_not_encodable:{spec.request.query_encoding}"))
    except PlatformSpecError:
        raise
    except PrimingError as exc:
        return Fetched(failure(FailureCode.session_invalid, f"prime:{exc.signal}"))
    except Exception as exc:  # an adapter's build_request is third-party code
        return Fetched(failure(FailureCode.adapter_error, type(exc).__name__))
    method, url, kwargs = built.method, built.url, built.httpx_kwargs()
    origin = origin_of(url)
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
                    decided = classify_redirect(spec, resp.status_code, nxt)
                    if decided is not None:  # a CAPTCHA host, a login wall ...: read, not followed
                        return Fetched(decided, resp.status_code, redact_url(str(resp.url), secrets), headers,
                                       retry_after=_retry_after(resp.headers))
                    if origin_of(nxt) != origin:
                        return Fetched(failure(FailureCode.redirect_offsite, f"location:{urlsplit(nxt).hostname}"),
                                       resp.status_code, redact_url(str(resp.url), secrets), headers)
                    url, method = nxt, "GET"
                    kwargs.pop("json", None)
                    kwargs.pop("data", None)
                    continue
                body, seen = await _read_capped(resp, spec.max_body_bytes)
                extra = sent_secrets(built, query)
                if seen is not None:
                    return redact_body(Fetched(failure(FailureCode.body_too_large, f"over:{spec.max_body_bytes}"),
                                               resp.status_code, redact_url(str(resp.url), secrets), headers, body,
                                               truncated=True, body_size=seen), secrets, extra)
                fetched = redact_body(Fetched(failure(FailureCode.internal_error), resp.status_code,
                                              redact_url(str(resp.url), secrets), headers, body,
                                              retry_after=_retry_after(resp.headers), body_size=len(body)),
                                      secrets, extra)
                fetched.classification = classify_http(spec, resp.status_code, headers, fetched.body or b"")
                return fetched
        return Fetched(failure(FailureCode.too_many_redirects))
    except httpx.HTTPError as exc:
        code = _failure_for_exception(exc)
        if session is not None and session.via_proxy and isinstance(exc, httpx.ConnectError):
            code = FailureCode.proxy_error  # with a proxy, the connection that failed is the one to the proxy
        return Fetched(failure(code, type(exc).__name__))
    except (OSError, ValueError) as exc:
        return Fetched(failure(FailureCode.network_error, type(exc).__name__))
