"""The closed vocabulary of failure codes (snake_case, as OONI writes them).

A measurement whose ``verdict`` is ``failure`` carries exactly one of these codes in
``failure``; ``null`` means the request succeeded and was classified. A failure is
never counted as censorship.
"""

from __future__ import annotations

from enum import Enum


class FailureCode(str, Enum):
    timeout = "timeout"  # connect, read or total timeout
    connection_refused = "connection_refused"
    connection_reset = "connection_reset"  # reset or closed mid-answer
    dns_error = "dns_error"
    tls_error = "tls_error"
    proxy_error = "proxy_error"  # the configured proxy refused or failed
    network_error = "network_error"  # any other transport error
    http_429 = "http_429"  # rate limited (Retry-After honoured)
    http_5xx = "http_5xx"
    http_4xx = "http_4xx"  # other client errors (403, 404 ...)
    redirect_offsite = "redirect_offsite"  # a redirect to another host: not followed
    too_many_redirects = "too_many_redirects"
    captcha = "captcha"  # a verification / CAPTCHA page, even with HTTP 200
    rate_limited = "rate_limited"  # a rate-limit page served with HTTP 200
    unexpected_page = "unexpected_page"  # none of the spec's expected markers: layout changed?
    truncated_body = "truncated_body"  # fewer bytes than Content-Length
    body_too_large = "body_too_large"  # over the size cap (after decompression)
    decode_error = "decode_error"  # bytes not decodable as the page's charset, or bad JSON
    control_failed = "control_failed"  # the platform's truism failed around this probe
    adapter_error = "adapter_error"  # a Python platform adapter raised
    internal_error = "internal_error"  # a bug in the harness; please report it


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
    }
)
"""Failures worth another attempt after a backoff."""
