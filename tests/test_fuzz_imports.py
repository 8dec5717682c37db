"""Importing stored exports: any input imports completely or fails with one clear error,
leaving the store exactly as it was (no partial import)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.analysis.export import export_store, import_file
from harness.errors import HarnessError
from harness.store.sqlite import Store

from .conftest import FIXTURES, run_probe_set

MINI = FIXTURES / "probes" / "mini.yaml"


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> list[str]:
    from harness.sandbox import Sandbox

    tmp = tmp_path_factory.mktemp("exp")
    with Sandbox() as sb:
        run_probe_set(MINI, tmp / "src.db", sb)
    out = tmp / "x.jsonl"
    with Store(tmp / "src.db", readonly=True) as store:
        export_store(store, out, "jsonl", bodies=True)
    return out.read_text(encoding="utf-8").splitlines()


def _snapshot(path: Path) -> tuple[int, ...]:
    with Store(path, readonly=True) as st_:
        c = st_.conn
        return tuple(c.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("runs", "measurements", "bodies"))


def _mutate(line: str, how: int, value: object) -> str:
    if how == 0:
        return line[: max(1, len(line) // 2)]  # cut in the middle
    doc = json.loads(line)
    keys = ["measurement_uid", "report_id", "measurement_start_time", "input", "test_keys", "probe_cc"]
    key = keys[how % len(keys)]
    if how % 3 == 0:
        doc.pop(key, None)
    else:
        doc[key] = value
    return json.dumps(doc, ensure_ascii=False)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    picks=st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=6),
    how=st.integers(min_value=0, max_value=11),
    value=st.one_of(st.none(), st.integers(), st.text(max_size=20), st.lists(st.integers(), max_size=3)),
    mutate=st.booleans(),
)
def test_imports_are_all_or_nothing(exported, tmp_path, picks, how, value, mutate):
    lines = [exported[i % len(exported)] for i in picks]
    if mutate:
        lines[-1] = _mutate(lines[-1], how, value)
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    db = tmp_path / "fresh.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    Store(db).close()
    before = _snapshot(db)
    try:
        with Store(db) as store:
            summary = import_file(store, path)
    except HarnessError as exc:
        assert str(path) in str(exc)
        assert _snapshot(db) == before
    else:
        assert summary.added + summary.duplicates == len(lines)
        assert _snapshot(db)[1] == len({json.loads(x)["measurement_uid"] for x in lines})
