"""The closed vocabulary of failure codes (snake_case, as OONI writes them).

A measurement whose ``verdict`` is ``failure`` carries exactly one of these codes in
``failure``; ``null`` means the request succeeded and was classified. A failure is
never counted as censorship. ``docs/failures.md`` documents the same list (a test
keeps the two in step).
"""

from __future__ import annotations

from enum import Enum


class FailureCode(str, Enum):
    timeout = "timeout"
    connection_refused = "connection_refused"
    connection_reset = "connection_reset"
    dns_error = "dns_error"
    tls_error = "tls_error"
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


DESCRIPTIONS: dict[FailureCode, str] = {
    FailureCode.timeout: "connect, read or total timeout",
    FailureCode.connection_refused: "the server (or the proxy's target) refused the TCP connection",
    FailureCode.connection_reset: "the connection was reset or closed mid-answer",
    FailureCode.dns_error: "the host name did not resolve",
    FailureCode.tls_error: "the TLS handshake or certificate check failed",
    FailureCode.proxy_error: "the configured HTTP or SOCKS proxy refused or failed the request",
    FailureCode.network_error: "any other transport error",
    FailureCode.http_429: "HTTP 429 Too Many Requests (Retry-After is honoured before the retry)",
    FailureCode.http_5xx: "an HTTP 5xx server error",
    FailureCode.http_4xx: "another HTTP 4xx client error (403, 404 ...)",
    FailureCode.redirect_offsite: "a redirect to another host (often a login or verification page): not followed",
    FailureCode.too_many_redirects: "more redirects than allowed, or a 3xx answer where a page was expected",
    FailureCode.captcha: "a verification / CAPTCHA / anti-bot page, even when served with HTTP 200",
    FailureCode.rate_limited: "a throttling page served with HTTP 200",
    FailureCode.session_invalid: "the platform rejected the session: login, cookies or a request signature are required",
    FailureCode.unexpected_page: "none of the spec's expected markers: the layout probably changed",
    FailureCode.empty_shell: "the platform's page skeleton without its content (an intermittent empty bootstrap "
                             "shell, e.g. Toutiao): retried, never read as an empty result",
    FailureCode.truncated_body: "fewer bytes arrived than Content-Length announced",
    FailureCode.body_too_large: "the body exceeded the spec's max_body_bytes (after decompression)",
    FailureCode.decode_error: "bytes not decodable in the page's charset, or a JSON API answered invalid JSON",
    FailureCode.query_too_long: "the query is longer than the spec's max_query_chars: not sent (the platform "
                                "would cut it, and the verdict would be about another query)",
    FailureCode.control_failed: "the platform's truism had no results around this probe: the probe was not sent "
                                "(or its silent-empty verdict could not be confirmed)",
    FailureCode.soft_control_failed: "the soft test could not run: the truism restricted to every configured "
                                     "non-authorized domain had no results",
    FailureCode.adapter_error: "a Python platform adapter raised an exception",
    FailureCode.internal_error: "a bug in the harness; please report it",
}


# Sending again cannot change these: never retried, even by callers that retry every failure.
DETERMINISTIC = frozenset({FailureCode.query_too_long})

RETRYABLE = frozenset(
    {
        FailureCode.timeout,
        FailureCode.connection_refused,
        FailureCode.connection_reset,
        FailureCode.network_error,
        FailureCode.http_429,
        FailureCode.http_5xx,
        FailureCode.rate_limited,
        FailureCode.truncated_body,
        FailureCode.captcha,
        FailureCode.empty_shell,
    }
)
"""Failures worth another attempt after a backoff."""


def describe(code: str) -> str:
    try:
        return DESCRIPTIONS[FailureCode(code)]
    except ValueError:
        return "unknown failure code"
