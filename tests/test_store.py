import datetime as dt
import sqlite3

import pytest

from harness.errors import StoreError
from harness.models import Measurement, Run, Verdict
from harness.store.sqlite import SCHEMA_VERSION, Store


def _run(run_id="r1"):
    return Run(run_id=run_id, probe_set="p", started_at=dt.datetime.now(dt.timezone.utc))


def _m(i, run_id="r1", **kw):
    base = dict(measurement_id=f"m{i}", run_id=run_id, probe_set="p", task_key=f"k{i}",
                measurement_start_time=dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc) + dt.timedelta(seconds=i),
                platform="sandbox", input=f"t{i}", query=f"t{i}", verdict=Verdict.hard)
    base.update(kw)
    return Measurement(**base)


def test_round_trip_keeps_every_field(store_target):
    with Store(store_target) as st:
        st.create_run(_run())
        m = _m(1, probe_cc="CN", probe_asn="AS4134", components=["a", "b"])
        m.test_keys.signals = ["legal_notice"]
        assert st.add_measurement(m, b"<html>notice</html>")
    with Store(store_target, readonly=True) as st:
        [back] = list(st.measurements("r1"))
        assert back.model_dump(exclude={"evidence"}) == m.model_dump(exclude={"evidence"})
        assert st.get_body(back.evidence.body_sha256) == b"<html>notice</html>"
        assert st.schema_version == SCHEMA_VERSION


def test_store_is_wal_and_marked(store_path):
    Store(store_path).close()
    con = sqlite3.connect(store_path)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert con.execute("PRAGMA application_id").fetchone()[0] != 0


def test_same_task_is_stored_once(store_target):
    with Store(store_target) as st:
        st.create_run(_run())
        assert st.add_measurement(_m(1))
        assert not st.add_measurement(_m(2, task_key="k1"))
        assert st.count_measurements("r1") == 1
        assert st.done_task_keys("r1") == {"k1"}


def test_identical_bodies_are_stored_once(store_target):
    with Store(store_target) as st:
        st.create_run(_run())
        for i in range(5):
            st.add_measurement(_m(i), b"same page")
        assert st.conn.execute("SELECT COUNT(*) FROM bodies").fetchone()[0] == 1


def test_foreign_files_are_refused(tmp_path):
    text = tmp_path / "notes.db"
    text.write_text("hello, not a database")
    with pytest.raises(StoreError, match="not an SQLite database"):
        Store(text)
    other = tmp_path / "other.db"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE stuff (x)")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="foreign"):
        Store(other)


def test_a_newer_schema_is_refused(store_path):
    Store(store_path).close()
    con = sqlite3.connect(store_path)
    con.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="newer"):
        Store(store_path)


def test_readonly_store_must_exist(tmp_path):
    with pytest.raises(StoreError, match="no store"):
        Store(tmp_path / "missing.db", readonly=True)


def test_last_known_verdict_ignores_failures_and_the_current_run(store_target):
    with Store(store_target) as st:
        st.create_run(_run("r1"))
        st.create_run(_run("r2"))
        st.add_measurement(_m(1, run_id="r1", input="x", verdict=Verdict.soft))
        st.add_measurement(_m(2, run_id="r1", input="x", task_key="k2", verdict=Verdict.failure, failure="timeout"))
        st.add_measurement(_m(3, run_id="r2", input="x", verdict=Verdict.hard))
        assert st.last_known_verdict("sandbox", "x", "", "r2") == "soft"
        assert st.last_known_verdict("sandbox", "x", "", "r1") == "hard"
