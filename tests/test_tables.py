"""The two tables every command and feature uses: exit codes and failure codes.

Each is a single source in code (``harness.exitcodes.EXIT_CODES``, ``harness.failures.FAILURES``);
the docs are checked row by row against it, every exception class has a documented code, and
the failure vocabulary is closed where records enter the store (imports included).
"""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from harness import errors
from harness.exitcodes import EXIT_CODES, ExitCode
from harness.failures import DESCRIPTIONS, FAILURES, OONI_UNKNOWN, RETRYABLE, FailureCode, ooni_failure
from harness.models import Measurement

from .conftest import REPO

# Every string OONI defines for ``failure`` (ooni/spec data-formats/df-007-errors.md, and OONI
# Probe's netxlite classifier, which adds ssl_failed_handshake / host_unreachable / interrupted).
OONI_STRINGS = {
    "connection_refused", "connection_reset", "dns_bogon_error", "dns_nxdomain_error", "eof_error",
    "generic_timeout_error", "ssl_invalid_hostname", "ssl_unknown_authority", "ssl_invalid_certificate",
    "ssl_failed_handshake", "host_unreachable", "interrupted", "socks_error", OONI_UNKNOWN,
}


def _table(doc: str, header: str) -> list[list[str]]:
    text = (REPO / "docs" / doc).read_text(encoding="utf-8")
    start = text.index(header)
    rows = []
    for line in text[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split(" | ")])
    return rows


def test_failures_md_is_the_failures_table_row_by_row():
    rows = _table("failures.md", "| code | meaning | OONI failure string | retried |")
    assert [r[0].strip("`") for r in rows] == [c.value for c in FAILURES]
    for (code, meaning, ooni, retried), (fc, info) in zip(rows, FAILURES.items()):
        assert meaning == info.meaning, fc
        assert ooni.strip("`") == (info.ooni or "—"), fc
        assert retried == ("yes" if info.retried else "no"), fc


def test_every_failure_code_has_one_row_and_ooni_strings_are_ooni_s():
    assert set(FAILURES) == set(FailureCode) == set(DESCRIPTIONS)
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", c.value) for c in FailureCode)
    assert {i.ooni for i in FAILURES.values() if i.ooni} <= OONI_STRINGS
    assert RETRYABLE == {c for c, i in FAILURES.items() if i.retried}
    assert ooni_failure(None) is None and ooni_failure("timeout") == "generic_timeout_error"
    assert ooni_failure("http_5xx") is None  # OONI: an HTTP answer is a request that succeeded
    assert ooni_failure("not_a_code") == OONI_UNKNOWN


def test_operations_md_lists_every_exit_code_row_by_row():
    rows = _table("operations.md", "| code | outcome | meaning |")
    assert [int(r[0]) for r in rows] == [int(c) for c in EXIT_CODES]
    for (code, outcome, meaning), (ec, info) in zip(rows, EXIT_CODES.items()):
        assert (outcome, meaning) == (info.outcome, info.meaning), ec
    assert set(EXIT_CODES) == set(ExitCode)


def test_every_exception_class_has_a_documented_exit_code():
    import harness.cli  # noqa: F401 - classes defined above the foundation register as subclasses
    from harness.isolation.oracle import OracleFailure  # noqa: F401
    from harness.operations.config import ConfigError  # noqa: F401

    table = errors.exception_exit_codes()
    assert len(table) >= 12
    for cls, code in table.items():
        assert code in EXIT_CODES, cls
    assert table[errors.InputError] == ExitCode.BAD_INPUT
    assert table[errors.StoreError] == ExitCode.STORE_UNUSABLE
    assert table[errors.StoreWriteError] == table[errors.OutputError] == ExitCode.CANNOT_WRITE
    assert table[errors.RunLockedError] == ExitCode.LOCKED
    assert table[ConfigError] == ExitCode.BAD_INPUT


def _measurement(**kw) -> dict:
    base = dict(measurement_id="m1", run_id="r1", probe_set="p", task_key="k", platform="x", input="t", query="t",
                measurement_start_time="2026-01-01T00:00:00Z", verdict="failure", failure="timeout")
    base.update(kw)
    return base


@pytest.mark.parametrize("code", [c.value for c in FailureCode])
def test_every_code_is_accepted(code):
    assert Measurement.model_validate(_measurement(failure=code)).failure == code


@pytest.mark.parametrize("bad", [
    {"failure": "not_a_code"},
    {"failure": "TIMEOUT"},
    {"test_keys": {"result_count": 10**400}},
    {"test_keys": {"result_items": -(2**63) - 1}},
    {"evidence": {"status_code": 10**6}},
    {"test_runtime": float("inf")},
    {"repeat": -1},
])
def test_the_vocabulary_and_integer_ranges_are_closed(bad):
    with pytest.raises(ValidationError):
        Measurement.model_validate(_measurement(**bad))
