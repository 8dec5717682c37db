"""What today's users have on disk keeps working: a store and a JSONL export written by
version 0.1.0 (``tests/fixtures/compat/``, see ``make_fixtures.py`` and ``MANIFEST.json``)
still open, diff, export and import with the current code.

The fixtures are never regenerated: a schema change (a migration, a new column, a second
backend) must keep these tests green as they are.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.analysis.diff import diff_runs
from harness.analysis.export import export_store, import_file, iter_records, ooni_time
from harness.failures import ooni_failure
from harness.store.sqlite import Store

from .conftest import FIXTURES
from .test_schedule_support import cli_inprocess

COMPAT = FIXTURES / "compat"
MANIFEST = json.loads((COMPAT / "MANIFEST.json").read_text(encoding="utf-8"))
FIRST, SECOND = MANIFEST["runs"]


@pytest.fixture
def old_store(tmp_path: Path) -> Path:
    """A copy of the pinned store (opening it read-write may migrate it; the fixture stays as written)."""
    db = tmp_path / "old.db"
    shutil.copyfile(COMPAT / "store-v1.db", db)
    return db


def _probe_docs(db: Path) -> list[dict]:
    with Store(db, readonly=True) as st:
        return sorted((json.loads(m.model_dump_json()) for m in st.measurements()),
                      key=lambda d: d["measurement_id"])


def test_the_pinned_store_opens_and_holds_what_the_manifest_says(old_store):
    with Store(old_store) as st:  # read-write: migrates an older schema
        runs = {r.run_id: r for r in st.list_runs()}
        assert set(runs) == {FIRST, SECOND} and all(r.status == "complete" for r in runs.values())
        for run_id, counts in MANIFEST["probe_verdicts"].items():
            assert st.run_counts(run_id) == counts
        assert sum(1 for _ in st.measurements()) == MANIFEST["export_records"]
        failures = [m for m in st.measurements() if m.failure]
        assert failures and all(m.verdict.value == "failure" for m in failures)
        with_body = next(m for m in st.measurements() if m.evidence.body_sha256)
        assert st.get_body(with_body.evidence.stored_key)
    with Store(old_store, readonly=True) as st:  # and read-only once migrated
        assert st.count_measurements(SECOND) == sum(1 for m in st.measurements(SECOND))


def test_the_pinned_store_diffs(old_store):
    with Store(old_store) as st:
        result = diff_runs(st, FIRST, SECOND)
    changes = {(c.term, c.transition.value) for c in result.changes}
    assert ("白纸", "newly_censored") in changes and ("达赖喇嘛", "hard_to_soft") in changes


def test_the_cli_diffs_the_pinned_store(old_store, capsys):
    res = cli_inprocess(capsys, "diff", FIRST, SECOND, "--store", str(old_store), "--json")
    assert res.returncode == 0, res.stderr
    assert {c["term"] for c in json.loads(res.stdout)["changes"]} >= {"白纸", "达赖喇嘛"}


def test_the_pinned_store_exports_what_the_pinned_export_holds(old_store, tmp_path):
    with Store(old_store) as st:
        out = tmp_path / "now.jsonl"
        assert export_store(st, out, "jsonl", bodies=True) == MANIFEST["export_records"]
        for fmt in ("csv", "parquet"):
            assert export_store(st, tmp_path / f"now.{fmt}", fmt) == MANIFEST["export_records"]
        now = {r["measurement_uid"]: r for r in iter_records(st, bodies=True)}
    then = {}
    for line in (COMPAT / "export-v1.jsonl").read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        then[rec["measurement_uid"]] = rec
    assert set(now) == set(then)
    for uid, rec in then.items():  # every field written then is still written, with the same value
        for key in ("report_id", "input", "probe_cc", "probe_asn"):
            assert now[uid][key] == rec[key]
        # since issue 14 the record is in OONI's format: OONI times, OONI failure strings beside our codes
        assert now[uid]["test_keys"]["harness"]["measurement_start_time"] == rec["measurement_start_time"]
        assert now[uid]["measurement_start_time"] == ooni_time(rec["measurement_start_time"])
        assert now[uid]["test_keys"]["harness_failure"] == rec["test_keys"].get("failure")
        assert now[uid]["test_keys"]["failure"] == ooni_failure(rec["test_keys"].get("failure"))
        for key in ("verdict", "platform", "signals", "result_count", "bodies_b64"):
            assert now[uid]["test_keys"].get(key) == rec["test_keys"].get(key), (uid, key)


def test_the_pinned_export_imports_into_a_new_store_and_into_its_own(old_store, tmp_path):
    fresh = tmp_path / "fresh.db"
    with Store(fresh) as st:
        summary = import_file(st, COMPAT / "export-v1.jsonl")
    assert summary.added == MANIFEST["export_records"] and summary.duplicates == 0
    assert set(summary.runs_created) == {FIRST, SECOND}
    assert _probe_docs(fresh) == _probe_docs(old_store)
    with Store(old_store) as st:
        again = import_file(st, COMPAT / "export-v1.jsonl")
    assert again.added == 0 and again.duplicates == MANIFEST["export_records"]


def test_the_cli_reads_the_pinned_store(old_store, tmp_path, capsys):
    for args in (("runs", "list"), ("store", "check"), ("export", "-o", str(tmp_path / "e.jsonl")),
                 ("report", "-o", str(tmp_path / "r.html")), ("timeline", "白纸")):
        res = cli_inprocess(capsys, *args, "--store", str(old_store))
        assert res.returncode == 0, (args, res.stderr)
    res = cli_inprocess(capsys, "import", str(COMPAT / "export-v1.jsonl"), "--store", str(tmp_path / "n.db"))
    assert res.returncode == 0 and f"{MANIFEST['export_records']} added" in res.stdout

