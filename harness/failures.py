"""The closed vocabulary of failure codes: one table, the single source of truth.

A measurement whose ``verdict`` is ``failure`` carries exactly one of these codes in
``failure``; ``null`` means the request succeeded and was classified. A failure is never
counted as censorship. For each code, :data:`FAILURES` says what it means, the OONI
failure string it corresponds to where OONI has one (``ooni/spec``'s
``data-formats/df-007-errors.md`` and OONI Probe's ``netxlite`` classifier), and whether
the engine retries it. ``docs/failures.md`` is tested against this table, and imports
refuse a code that is not in it (``harness.models.Measurement``).
"""

from __future__ import annotations

from enum import Enum
from typing import NamedTuple


class FailureCode(str, Enum):
    timeout = "timeout"
    connection_refused = "connection_refused"
    connection_reset = "connection_reset"
    dns_error = "dns_error"
    tls_error = "tls_error"
    tls_invalid_hostname = "tls_invalid_hostname"
    tls_unknown_authority = "tls_unknown_authority"
    tls_invalid_certificate = "tls_invalid_certificate"
    proxy_error = "proxy_error"
    network_error = "network_error"
    http_429 = "http_429"
    http_5xx = "http_5xx"
    http_4xx = "http_4xx"
    redirect_offsite = "redirect_offsite"
    too_many_redirects = "too_many_redirects"
    captcha = "captcha"
    rate_limited = "rate_limited"
    session_invalid = "session_invalid"
    session_required = "session_required"
    unexpected_page = "unexpected_page"
    empty_shell = "empty_shell"
    truncated_body = "truncated_body"
    body_too_large = "body_too_large"
    decode_error = "decode_error"
    query_too_long = "query_too_long"
    control_failed = "control_failed"
    soft_control_failed = "soft_control_failed"
    adapter_error = "adapter_error"
    internal_error = "internal_error"


class FailureInfo(NamedTuple):
    meaning: str
    ooni: str | None
    """OONI's failure string for the same event, or None where OONI has none (OONI records an
    HTTP answer, a CAPTCHA or a method failure as a successful request: ``failure`` null)."""
    retried: bool
    """The engine sends the probe again (``retries`` in the probe set) after a backoff."""


OONI_UNKNOWN = "unknown_failure"
"""OONI's string for a failure it has no name for."""

FAILURES: dict[FailureCode, FailureInfo] = {
    FailureCode.timeout: FailureInfo("connect, read or total timeout", "generic_timeout_error", True),
    FailureCode.connection_refused: FailureInfo(
        "the server (or the proxy's target) refused the TCP connection", "connection_refused", True),
    FailureCode.connection_reset: FailureInfo(
        "the connection was reset or closed mid-answer", "connection_reset", True),
    FailureCode.dns_error: FailureInfo("the host name did not resolve", "dns_nxdomain_error", False),
    FailureCode.tls_error: FailureInfo(
        "the TLS handshake failed for another reason than the three certificate failures below (a protocol or "
        "cipher mismatch, a handshake cut short)", "ssl_failed_handshake", False),
    FailureCode.tls_invalid_hostname: FailureInfo(
        "the server's certificate is not valid for the host name asked for", "ssl_invalid_hostname", False),
    FailureCode.tls_unknown_authority: FailureInfo(
        "the server's certificate is self-signed or signed by an authority the harness does not trust",
        "ssl_unknown_authority", False),
    FailureCode.tls_invalid_certificate: FailureInfo(
        "the server's certificate is invalid: expired, not yet valid, or otherwise rejected", "ssl_invalid_certificate",
        False),
    FailureCode.proxy_error: FailureInfo(
        "the configured HTTP or SOCKS proxy refused or failed the request", None, False),
    FailureCode.network_error: FailureInfo("any other transport error", OONI_UNKNOWN, True),
    FailureCode.http_429: FailureInfo(
        "HTTP 429 Too Many Requests (Retry-After is honoured before the retry)", None, True),
    FailureCode.http_5xx: FailureInfo("an HTTP 5xx server error", None, True),
    FailureCode.http_4xx: FailureInfo("another HTTP 4xx client error (403, 404 ...)", None, False),
    FailureCode.redirect_offsite: FailureInfo(
        "a redirect to another origin that none of the spec's location signals explains: not followed", None, False),
    FailureCode.too_many_redirects: FailureInfo(
        "more redirects than allowed, or a 3xx answer where a page was expected", None, False),
    FailureCode.captcha: FailureInfo(
        "a verification / CAPTCHA / anti-bot page, even when served with HTTP 200", None, True),
    FailureCode.rate_limited: FailureInfo("a throttling page served with HTTP 200", None, True),
    FailureCode.session_invalid: FailureInfo(
        "the platform rejected the session: login, cookies or a request signature are required", None, False),
    FailureCode.session_required: FailureInfo(
        "a login or visitor wall (a page, or a redirect to one): the platform needs a logged-in session; give it "
        "cookies (--cookies PLATFORM=FILE)", None, False),
    FailureCode.unexpected_page: FailureInfo(
        "none of the spec's expected markers: the layout probably changed", None, False),
    FailureCode.empty_shell: FailureInfo(
        "the platform's page skeleton without its content (an intermittent empty bootstrap shell, e.g. Toutiao): "
        "retried, never read as an empty result", None, True),
    FailureCode.truncated_body: FailureInfo(
        "fewer bytes arrived than Content-Length announced", "eof_error", True),
    FailureCode.body_too_large: FailureInfo(
        "the body exceeded the spec's max_body_bytes (after decompression)", None, False),
    FailureCode.decode_error: FailureInfo(
        "bytes not decodable in the page's charset, or a JSON API answered invalid JSON", None, False),
    FailureCode.query_too_long: FailureInfo(
        "the query is longer than the spec's max_query_chars: not sent (the platform would cut it, and the "
        "verdict would be about another query)", None, False),
    FailureCode.control_failed: FailureInfo(
        "the platform's truism had no results right after this probe's silent-empty answer (or, for a watched "
        "item read as removed, the control item was not available right after): its verdict could not be "
        "confirmed", None, False),
    FailureCode.soft_control_failed: FailureInfo(
        "the soft test could not run: the truism restricted to every configured non-authorized domain had no "
        "results", None, False),
    FailureCode.adapter_error: FailureInfo("a Python platform adapter raised an exception", None, False),
    FailureCode.internal_error: FailureInfo("a bug in the harness; please report it", OONI_UNKNOWN, False),
}

DESCRIPTIONS: dict[FailureCode, str] = {code: info.meaning for code, info in FAILURES.items()}
"""Each code's meaning (derived from :data:`FAILURES`)."""

RETRYABLE = frozenset(code for code, info in FAILURES.items() if info.retried)
"""Failures worth another attempt after a backoff (derived from :data:`FAILURES`)."""

# Sending again cannot change these: never retried, even by callers that retry every failure.
DETERMINISTIC = frozenset({FailureCode.query_too_long})

CODES = frozenset(code.value for code in FailureCode)
"""Every valid code as a plain string (what a stored or imported ``failure`` must be)."""


def is_code(code: object) -> bool:
    return isinstance(code, str) and code in CODES


def describe(code: str) -> str:
    try:
        return DESCRIPTIONS[FailureCode(code)]
    except ValueError:
        return "unknown failure code"


def ooni_failure(code: str | None) -> str | None:
    """OONI's failure string for a harness code: ``None`` for success and for failures OONI
    records as a successful request (HTTP answers, CAPTCHAs, method failures)."""
    if code is None:
        return None
    try:
        return FAILURES[FailureCode(code)].ooni
    except ValueError:
        return OONI_UNKNOWN
