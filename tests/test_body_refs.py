"""Every body a measurement refers to (page, capped prefix, soft probe, retest) is tracked."""

import datetime as dt
import sqlite3

from harness.analysis.export import export_store, import_file
from harness.models import Verdict
from harness.store.sqlite import SCHEMA_VERSION, Store, utcnow
from harness.store.upkeep import check_store, prune_evidence

from .conftest import FIXTURES, run_probe_set

MINI = FIXTURES / "probes" / "mini.yaml"


def _soft(store: Store, run_id: str):
    return next(m for m in store.measurements(run_id) if m.verdict is Verdict.soft)


def test_soft_probe_bodies_are_referenced_exported_imported_and_kept(sandbox, store_path, tmp_path):
    run = run_probe_set(MINI, store_path, sandbox)
    with Store(store_path) as st:
        m = _soft(st, run.run_id)
        soft_key = m.test_keys.soft_probe["stored_body_sha256"]
        assert soft_key and soft_key in Store.body_keys(m)
        refs = {r[0] for r in st.conn.execute("SELECT sha256 FROM body_refs WHERE measurement_id=?", (m.measurement_id,))}
        assert refs == set(Store.body_keys(m))
        assert "site:" in st.get_body(soft_key).decode()
        assert prune_evidence(st, dt.timedelta(days=1)).bodies_deleted == 0  # recent: nothing goes
        out = tmp_path / "x.jsonl"
        export_store(st, out, "jsonl", bodies=True)
    report = check_store(store_path)
    assert report.ok and report.orphan_bodies == 0 and report.missing_bodies == 0
    fresh = tmp_path / "fresh.db"
    with Store(fresh) as st:
        import_file(st, out)
        assert st.get_body(soft_key) == Store(store_path, readonly=True).get_body(soft_key)
        later = utcnow() + dt.timedelta(days=3)
        report = prune_evidence(st, dt.timedelta(days=1), now=later)
        assert report.bodies_deleted > 0 and report.measurements_affected > 0
        assert st.conn.execute("SELECT COUNT(*) FROM bodies").fetchone()[0] == 0
        assert _soft(st, run.run_id).verdict is Verdict.soft  # verdicts and hashes stay


def test_migration_backfills_references_of_existing_measurements(sandbox, store_path):
    run = run_probe_set(MINI, store_path, sandbox)
    con = sqlite3.connect(store_path)
    expected = con.execute("SELECT COUNT(*) FROM body_refs").fetchone()[0]
    con.execute("DROP TABLE body_refs")
    con.execute(f"PRAGMA user_version={SCHEMA_VERSION - 1}")
    con.commit()
    con.close()
    with Store(store_path) as st:
        assert st.schema_version == SCHEMA_VERSION
        assert st.conn.execute("SELECT COUNT(*) FROM body_refs").fetchone()[0] == expected > 0
        m = _soft(st, run.run_id)
        got = {r[0] for r in st.conn.execute("SELECT sha256 FROM body_refs WHERE measurement_id=?", (m.measurement_id,))}
        assert got == set(Store.body_keys(m))
