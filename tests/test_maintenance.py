"""Evidence retention keeps verdicts, store check finds problems, vacuum gives space back."""

import datetime as dt
import json
import os
import sqlite3

import pytest

from harness.errors import NotFoundError, RunLockedError
from harness.models import Measurement, Run, Verdict
from harness.operations.config import parse_duration
from harness.store.locking import ProbeSetLock
from harness.store.sqlite import Store
from harness.store.upkeep import check_store, prune_evidence, vacuum_store

from .test_schedule_support import cli_inprocess

NOW = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.timezone.utc)


def seed(path, ages_days: dict[str, tuple[int, bytes, Verdict]]) -> None:
    """One measurement per key: (age in days, body, verdict)."""
    with Store(path) as st:
        st.create_run(Run(run_id="r", probe_set="p", started_at=NOW - dt.timedelta(days=200), status="complete"))
        for key, (age, body, verdict) in ages_days.items():
            m = Measurement(measurement_id=key, run_id="r", probe_set="p", task_key=key,
                            measurement_start_time=NOW - dt.timedelta(days=age), platform="sandbox", input=key,
                            query=key, verdict=verdict)
            st.add_measurement(m, body)


def test_retention_prunes_old_bodies_but_keeps_verdicts_and_hashes(store_target):
    seed(store_target, {
        "old-only": (120, b"old page" * 100, Verdict.hard),
        "old-shared": (120, b"shared page" * 100, Verdict.soft),
        "new-shared": (10, b"shared page" * 100, Verdict.soft),
        "new": (1, b"new page" * 100, Verdict.not_censored),
    })
    with Store(store_target) as st:
        before = {m.input: m for m in st.measurements()}
        dry = prune_evidence(st, parse_duration("90d"), now=NOW, dry_run=True)
        assert dry.bodies_deleted == 1 and st.conn.execute("SELECT COUNT(*) FROM bodies").fetchone()[0] == 3
        report = prune_evidence(st, parse_duration("90d"), now=NOW)
        assert report.bodies_deleted == 1 and report.measurements_affected == 1 and report.bodies_kept == 2
        # the dry run announced exactly what the real prune then did (on PostgreSQL too)
        assert dry.model_dump(exclude={"dry_run"}) == report.model_dump(exclude={"dry_run"})
        assert report.compressed_bytes_freed > 0
        after = {m.input: m for m in st.measurements()}
        assert {k: m.verdict for k, m in after.items()} == {k: m.verdict for k, m in before.items()}
        assert after["old-only"].evidence.body_sha256 == before["old-only"].evidence.body_sha256
        with pytest.raises(NotFoundError, match="pruned on .*evidence retention"):
            st.get_body(after["old-only"].evidence.body_sha256)
        assert st.get_body(after["old-shared"].evidence.body_sha256) == b"shared page" * 100  # a newer one needs it
        assert st.get_body(after["new"].evidence.body_sha256) == b"new page" * 100
        again = prune_evidence(st, parse_duration("90d"), now=NOW)
        assert again.bodies_deleted == 0
    report = check_store(store_target)
    assert report.ok and report.pruned_bodies == 1 and report.missing_bodies == 0


def test_check_finds_missing_bodies_and_orphans(store_target, capsys):
    seed(store_target, {"a": (1, b"page a", Verdict.hard), "b": (1, b"page b", Verdict.hard)})
    with Store(store_target) as st:
        sha_a = next(m for m in st.measurements() if m.input == "a").evidence.body_sha256
        st.conn.execute("DELETE FROM bodies WHERE sha256=?", (sha_a,))  # lost, not pruned
        st.put_body(b"nobody refers to me")
    report = check_store(store_target)
    assert not report.ok and report.missing_bodies == 1 and report.orphan_bodies == 1
    assert any("missing" in p for p in report.problems)
    res = cli_inprocess(capsys, "store", "check", "--store", str(store_target), "--json")
    assert res.returncode == 1 and json.loads(res.stdout)["missing_bodies"] == 1


def test_check_reports_a_corrupt_store(store_path, capsys):
    seed(store_path, {f"k{i}": (1, f"page {i}".encode() * 500, Verdict.hard) for i in range(200)})
    with Store(store_path) as st:
        st.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = st.conn.execute("PRAGMA page_size").fetchone()[0]
        root = st.conn.execute("SELECT rootpage FROM sqlite_master WHERE name='measurements_by_term'").fetchone()[0]
    with open(store_path, "r+b") as fh:  # scribble over a whole index page
        fh.seek((root - 1) * page_size)
        fh.write(b"\xff" * page_size)
    report = check_store(store_path)
    assert not report.ok and report.integrity != "ok" and "integrity check failed" in report.problems[0]
    res = cli_inprocess(capsys, "store", "check", "--store", str(store_path))
    assert res.returncode == 1 and "Traceback" not in res.stderr and "NOT OK" in res.stdout


def test_schema_version_is_reported(store_path):
    seed(store_path, {"a": (1, b"x", Verdict.hard)})
    report = check_store(store_path)
    assert report.schema_version == report.expected_schema_version >= 2


def test_vacuum_is_refused_during_a_run_and_shrinks_the_file_after_pruning(store_path):
    seed(store_path, {f"k{i}": (200, os.urandom(4000), Verdict.hard) for i in range(300)})
    with ProbeSetLock(store_path, "p"):
        with pytest.raises(RunLockedError, match="run is in progress"):
            vacuum_store(store_path)
    with Store(store_path) as st:
        prune_evidence(st, parse_duration("90d"), now=NOW)
    report = vacuum_store(store_path)
    assert report.size_after < report.size_before / 2
    assert check_store(store_path).ok


def test_prune_through_the_cli_needs_a_duration_and_says_what_it_did(store_path, capsys):
    seed(store_path, {"old": (400, b"old", Verdict.hard)})
    res = cli_inprocess(capsys, "store", "prune", "--store", str(store_path))
    assert res.returncode == 2 and "--keep-evidence" in res.stderr
    res = cli_inprocess(capsys, "store", "prune", "--store", str(store_path), "--keep-evidence", "ninety days")
    assert res.returncode == 2 and "invalid duration" in res.stderr and "Traceback" not in res.stderr
    res = cli_inprocess(capsys, "store", "prune", "--store", str(store_path), "--keep-evidence", "90d", "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["bodies_deleted"] == 1
    log = (store_path.parent / "logs" / "harness.jsonl").read_text()
    assert '"evidence_pruned"' in log


@pytest.mark.parametrize("text,seconds", [("90d", 90 * 86400), ("12h", 43200), ("2w", 14 * 86400), ("30m", 1800)])
def test_durations(text, seconds):
    assert parse_duration(text).total_seconds() == seconds


def test_an_old_store_is_migrated_to_the_retention_schema(store_path):
    con = sqlite3.connect(store_path)
    from harness.store.sqlite import APPLICATION_ID, MIGRATIONS

    for stmt in MIGRATIONS[0].split(";"):
        if stmt.strip():
            con.execute(stmt)
    con.execute(f"PRAGMA application_id={APPLICATION_ID}")
    con.execute("PRAGMA user_version=1")
    con.commit()
    con.close()
    with Store(store_path) as st:
        assert st.schema_version == len(MIGRATIONS)
        assert st.conn.execute("SELECT COUNT(*) FROM pruned_bodies").fetchone()[0] == 0


def test_prune_counts_each_measurement_once_however_its_bodies_fall_into_chunks(store_target):
    """600 old measurements, each with a page of its own and one soft-probe page they all share: the
    doomed bodies span two 500-body chunks, and each measurement is still counted once, by the dry
    run and by the real prune alike (they once added a count per chunk)."""
    shared = b"shared soft probe page"
    with Store(store_target) as st:
        st.create_run(Run(run_id="r", probe_set="p", started_at=NOW - dt.timedelta(days=200), status="complete"))
        shared_sha = st.put_body(shared)
        items = []
        for i in range(600):
            m = Measurement(measurement_id=f"m{i}", run_id="r", probe_set="p", task_key=f"k{i}",
                            measurement_start_time=NOW - dt.timedelta(days=120), platform="sandbox", input=f"t{i}",
                            query=f"t{i}", verdict=Verdict.soft)
            m.test_keys.soft_probe = {"stored_body_sha256": shared_sha}
            items.append((m, f"page {i}".encode() * 20, ()))
        st.add_measurements(items)
        assert st.conn.execute("SELECT COUNT(*) FROM body_refs").fetchone()[0] == 1200
        dry = prune_evidence(st, parse_duration("90d"), now=NOW, dry_run=True)
        real = prune_evidence(st, parse_duration("90d"), now=NOW)
    assert (dry.bodies_deleted, dry.measurements_affected, dry.bodies_kept) == (601, 600, 0)
    assert dry.model_dump(exclude={"dry_run"}) == real.model_dump(exclude={"dry_run"})


def test_check_hashes_every_body_again_and_names_a_tampered_one(store_target, capsys):
    """A page body altered in place (its key, the measurement's body_sha256, left alone) and a redacted
    copy altered the same way (stored under stored_body_sha256): check finds both, names them, exits 1."""
    import zlib

    seed(store_target, {"plain": (1, b"plain page" * 50, Verdict.hard), "other": (1, b"other page", Verdict.hard)})
    with Store(store_target) as st:
        m = Measurement(measurement_id="red", run_id="r", probe_set="p", task_key="red", platform="sandbox",
                        measurement_start_time=NOW, input="red", query="red", verdict=Verdict.not_censored)
        m.evidence.body_sha256, m.evidence.redacted = "0" * 64, 1  # the hash of what was received (not stored)
        st.add_measurement(m, b"page with REDACTED in it")
        stored = {x.input: x.evidence for x in st.measurements()}
    assert stored["red"].stored_body_sha256 and stored["red"].stored_key == stored["red"].stored_body_sha256
    clean = check_store(store_target)
    assert clean.ok and clean.bodies_rehashed == 3 and clean.body_mismatches == []
    with Store(store_target) as st:
        for key, forged in ((stored["plain"].body_sha256, b"plain page, edited"),
                            (stored["red"].stored_body_sha256, b"page with the secret back in it")):
            st.conn.execute("UPDATE bodies SET data=? WHERE sha256=?", (zlib.compress(forged), key))
    report = check_store(store_target)
    assert not report.ok and report.bodies_rehashed == 3
    assert report.body_mismatches == sorted([stored["plain"].body_sha256, stored["red"].stored_body_sha256])
    assert any("do not match their SHA-256" in p for p in report.problems)
    res = cli_inprocess(capsys, "store", "check", "--store", str(store_target))
    assert res.returncode == 1 and "2 mismatches" in res.stdout and stored["plain"].body_sha256[:16] in res.stderr
    with Store(store_target) as st:  # data that does not even decompress is a mismatch too
        st.conn.execute("UPDATE bodies SET data=? WHERE sha256=?", (b"not zlib", stored["other"].body_sha256))
    assert stored["other"].body_sha256 in check_store(store_target).body_mismatches


def test_check_no_bodies_skips_the_rehash_but_still_finds_missing_bodies(store_target, capsys):
    """--no-bodies: a body altered in place goes unreported (its data is not read), a body reference
    that leads nowhere is reported in both modes; --json names the mode that ran."""
    import zlib

    seed(store_target, {"a": (1, b"page a" * 20, Verdict.hard), "b": (1, b"page b" * 20, Verdict.hard)})
    with Store(store_target) as st:
        sha = {m.input: m.evidence.body_sha256 for m in st.measurements()}
        st.conn.execute("UPDATE bodies SET data=? WHERE sha256=?", (zlib.compress(b"edited"), sha["a"]))
    args = ("store", "check", "--store", str(store_target), "--json")
    full = cli_inprocess(capsys, *args)
    body = json.loads(full.stdout)
    assert full.returncode == 1 and body["mode"] == "full" and body["body_mismatches"] == [sha["a"]]
    quick = cli_inprocess(capsys, *args, "--no-bodies")
    body = json.loads(quick.stdout)
    assert quick.returncode == 0 and body["ok"] and body["mode"] == "no-bodies"
    assert body["bodies_rehashed"] == 0 and body["body_mismatches"] == []
    text = cli_inprocess(capsys, "store", "check", "--store", str(store_target), "--no-bodies")
    assert text.returncode == 0 and "not hashed again (--no-bodies)" in text.stdout
    with Store(store_target) as st:
        st.conn.execute("DELETE FROM bodies WHERE sha256=?", (sha["b"],))  # lost, not pruned
    for extra in ((), ("--no-bodies",)):
        res = cli_inprocess(capsys, *args, *extra)
        body = json.loads(res.stdout)
        assert res.returncode == 1 and body["missing_bodies"] == 1
        assert any("missing" in p for p in body["problems"])
