"""Exports (JSONL, CSV, Parquet) and merging them back: lossless, without duplicates."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from harness.analysis.diff import Difference, cross_diff
from harness.analysis.export import export_store, import_file, iter_records
from harness.errors import InputError
from harness.store.sqlite import Store

from .comparator_helpers import cli, make_world, run, sandboxes
from .conftest import FIXTURES, run_cli


@pytest.fixture(scope="module")
def two_vantages(tmp_path_factory):
    """Two stores, as on two machines: vantage bj (epoch before) and vantage sh (epoch after)."""
    root = tmp_path_factory.mktemp("exp")
    ps = make_world(root)
    sb_bj, sb_sh = sandboxes(2)
    sb_sh.set_epoch("after")
    try:
        bj = run(ps, root / "bj.db", {"sandbox": sb_bj.url}, vantage="bj")
        sh = run(ps, root / "sh.db", {"sandbox": sb_sh.url}, vantage="sh")
    finally:
        sb_bj.stop()
        sb_sh.stop()
    return root, bj.run_id, sh.run_id


def _dump(db: Path) -> tuple[list[str], list[str], dict[str, bytes]]:
    with Store(db, readonly=True) as st:
        docs = sorted(r[0] for r in st.conn.execute("SELECT doc FROM measurements"))
        # exports leave out what identifies the measuring machine (host name, process id)
        runs = sorted(r.model_copy(update={"pid": None, "hostname": None}).model_dump_json() for r in st.list_runs())
        bodies = {r[0]: st.get_body(r[0]) for r in st.conn.execute("SELECT sha256 FROM bodies")}
    return docs, runs, bodies


def test_record_is_an_ooni_style_envelope(two_vantages):
    root, bj, _ = two_vantages
    with Store(root / "bj.db", readonly=True) as st:
        rec = next(r for r in iter_records(st, roles=("probe",)) if r["input"] == "甲一")
    for key in ("measurement_start_time", "test_name", "test_version", "software_name", "software_version", "input",
                "probe_cc", "probe_asn", "report_id"):
        assert key in rec
    assert rec["report_id"] == bj and rec["probe_cc"] == "CN" and rec["probe_asn"] == "AS4134"
    for key in ("platform", "verdict", "failure", "signals"):
        assert key in rec["test_keys"]
    assert rec["test_keys"]["platform"] == "sandbox" and rec["test_keys"]["verdict"] == "not_censored"


def test_jsonl_round_trip_is_lossless_and_reimport_adds_nothing(two_vantages, tmp_path):
    root, _, _ = two_vantages
    out = tmp_path / "bj.jsonl"
    with Store(root / "bj.db", readonly=True) as st:
        n = export_store(st, out, "jsonl", bodies=True)
    assert n == len(out.read_text(encoding="utf-8").splitlines()) >= 10  # 8 probes, truism, control
    fresh = tmp_path / "fresh.db"
    with Store(fresh) as st:
        first = import_file(st, out)
        again = import_file(st, out)
    assert (first.added, first.duplicates, len(first.runs_created)) == (n, 0, 1)
    assert (again.added, again.duplicates, again.runs_created) == (0, n, [])
    assert _dump(fresh) == _dump(root / "bj.db")


def test_import_merges_vantage_points_for_a_cross_vantage_diff(two_vantages, tmp_path):
    root, bj, sh = two_vantages
    merged = tmp_path / "merged.db"
    for name in ("bj", "sh"):
        exp = cli("export", "--store", str(root / f"{name}.db"), "-o", str(tmp_path / f"{name}.jsonl"), "--bodies")
        assert exp.returncode == 0, exp.stderr
        imp = cli("import", str(tmp_path / f"{name}.jsonl"), "--store", str(merged), "--json")
        assert imp.returncode == 0, imp.stderr
        assert json.loads(imp.stdout)["duplicates"] == 0
    with Store(merged, readonly=True) as st:
        result = cross_diff(st, "vantage", bj, sh)
    assert {r.term: r.difference for r in result.rows}["甲一"] is Difference.censored_only_b
    res = cli("diff", "latest@bj", "latest@sh", "--by", "vantage", "--store", str(merged), "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["counts"]["censored_only_b"] == 1


def test_a_bad_line_names_file_and_line_and_writes_nothing(two_vantages, tmp_path):
    root, _, _ = two_vantages
    good = tmp_path / "good.jsonl"
    with Store(root / "bj.db", readonly=True) as st:
        export_store(st, good, "jsonl")
    lines = good.read_text(encoding="utf-8").splitlines()
    broken = tmp_path / "broken.jsonl"
    rec = json.loads(lines[3])
    rec["test_keys"]["verdict"] = "maybe"
    broken.write_text("\n".join(lines[:3] + [json.dumps(rec)] + lines[4:]) + "\n", encoding="utf-8")
    db = tmp_path / "x.db"
    with Store(db) as st:
        with pytest.raises(InputError, match=r"broken\.jsonl:4: not a measurement record"):
            import_file(st, broken)
        assert st.conn.execute("SELECT COUNT(*) FROM measurements").fetchone()[0] == 0
        assert st.conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0
    notjson = tmp_path / "n.jsonl"
    notjson.write_text(lines[0] + "\n{oops\n", encoding="utf-8")
    res = run_cli("import", str(notjson), "--store", str(db))
    assert res.returncode == 2 and "n.jsonl:2: not a JSON record" in res.stderr and "Traceback" not in res.stderr


def test_records_without_run_annotation_create_their_run(two_vantages, tmp_path):
    root, bj, _ = two_vantages
    with Store(root / "bj.db", readonly=True) as st:
        recs = list(iter_records(st))
    for r in recs:
        r["test_keys"]["harness"].pop("run")
    path = tmp_path / "bare.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs), encoding="utf-8")
    with Store(tmp_path / "bare.db") as st:
        summary = import_file(st, path)
        run = st.get_run(bj)
    assert summary.runs_created == [bj] and summary.added == len(recs)
    assert run.vantage == "bj" and run.probe_set == "cmp" and run.finished_at is not None


def test_csv_export(two_vantages, tmp_path):
    root, bj, _ = two_vantages
    res = cli("export", "--store", str(root / "bj.db"), "--format", "csv", "--probes-only")
    assert res.returncode == 0, res.stderr
    header = next(csv.reader(res.stdout.splitlines()))
    # scripts index the columns by position: the columns of before stay first, in their order
    assert header[:24] == [
        "measurement_uid", "report_id", "measurement_start_time", "probe_set", "platform", "vantage", "probe_cc",
        "probe_asn", "input", "variant", "query", "list_name", "category", "tags", "role", "verdict", "failure",
        "ooni_failure", "result_count", "result_items", "signals", "confirmed", "status_code", "body_sha256"]
    assert header[24:] == ["test_name", "item_spec"]
    rows = list(csv.DictReader(res.stdout.splitlines()))
    assert {r["role"] for r in rows} == {"probe"}
    # a keyword run: search_censorship, no item spec
    assert {(r["test_name"], r["item_spec"]) for r in rows} == {("search_censorship", "")}
    by_term = {r["input"]: r for r in rows}
    assert by_term["乙二"]["verdict"] == "hard" and "legal_notice" in by_term["乙二"]["signals"]
    assert by_term["甲一"]["tags"] == "watch" and by_term["甲一"]["report_id"] == bj
    (tmp_path / "x.csv").write_text(res.stdout, encoding="utf-8")
    with Store(tmp_path / "y.db") as st, pytest.raises(InputError, match="CSV exports are flat"):
        import_file(st, tmp_path / "x.csv")


def test_parquet_round_trip(two_vantages, tmp_path):
    pytest.importorskip("pyarrow")
    root, _, _ = two_vantages
    out = tmp_path / "bj.parquet"
    res = cli("export", "--store", str(root / "bj.db"), "-o", str(out), "--bodies")
    assert res.returncode == 0, res.stderr
    import pyarrow.parquet as pq

    table = pq.read_table(out)
    assert {"platform", "verdict", "input", "record"} <= set(table.column_names)
    with Store(tmp_path / "p.db") as st:
        summary = import_file(st, out)
    assert summary.duplicates == 0 and summary.added == table.num_rows
    assert _dump(tmp_path / "p.db") == _dump(root / "bj.db")


def test_a_failed_import_into_a_new_store_leaves_no_store_behind(tmp_path, capsys):
    """A bad record (line 4), a missing file, a non-UTF-8 line: an import that fails into a store that did
    not exist leaves neither a store file nor the folders made for it; a good one leaves a complete
    store; a failed one into an existing store leaves it as it was."""
    from .test_schedule_support import cli_inprocess

    lines = (FIXTURES / "compat" / "export-v1.jsonl").read_text(encoding="utf-8").splitlines()
    rec = json.loads(lines[3])
    rec["failure"], rec["test_keys"]["verdict"] = "not_a_code", "failure"
    broken = tmp_path / "broken.jsonl"
    broken.write_text("\n".join(lines[:3] + [json.dumps(rec)] + lines[4:]) + "\n", encoding="utf-8")
    binary = tmp_path / "binary.jsonl"
    binary.write_bytes(lines[0].encode() + b"\n\xff\xfe\n")
    for source, why in ((broken, "broken.jsonl:4"), (tmp_path / "missing.jsonl", "file not found"),
                        (binary, "binary.jsonl:2")):
        target = tmp_path / "new" / "deeper" / "s.db"
        res = cli_inprocess(capsys, "import", str(source), "--store", str(target))
        assert res.returncode == 2 and why in res.stderr and "Traceback" not in res.stderr, res.stderr
        assert not (tmp_path / "new").exists(), sorted(p.name for p in (tmp_path / "new").rglob("*"))
    target = tmp_path / "new" / "s.db"
    good = tmp_path / "good.jsonl"
    good.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert cli_inprocess(capsys, "import", str(good), "--store", str(target)).returncode == 0
    with Store(target, readonly=True) as st:
        assert st.conn.execute("SELECT COUNT(*) FROM measurements").fetchone()[0] == len(lines)
    res = cli_inprocess(capsys, "import", str(broken), "--store", str(target))
    assert res.returncode == 2 and target.exists()  # an existing store is kept, unchanged
    with Store(target, readonly=True) as st:
        assert st.conn.execute("SELECT COUNT(*) FROM measurements").fetchone()[0] == len(lines)


def test_a_nul_in_a_term_is_stored_and_found_on_both_backends(store_target, tmp_path):
    """PostgreSQL text (and its JSON) cannot hold U+0000, SQLite's can: an imported measurement whose term
    has a NUL is stored on both, never a failed write; SQLite exports it back exactly, PostgreSQL with
    U+FFFD in its place and nothing else changed; a timeline and a diff of that very term find it on both."""
    from harness.analysis.diff import diff_runs
    from harness.analysis.timeline import term_timeline
    from harness.store import is_postgres

    lines = (FIXTURES / "compat" / "export-v1.jsonl").read_text(encoding="utf-8").splitlines()
    recs = [json.loads(line) for line in lines]
    probe = next(r for r in recs if r["test_keys"].get("role", "probe") == "probe" and r["input"])
    term = probe["input"] + "\x00" + probe["input"]
    probe["input"] = term
    probe["test_keys"].setdefault("signals", []).append("literal \\u0000 text, kept")  # not a NUL: untouched
    source = tmp_path / "nul.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in recs), encoding="utf-8")
    with Store(store_target) as st:
        assert import_file(st, source).added == len(recs)
    back = tmp_path / "back.jsonl"
    with Store(store_target, readonly=True) as st:
        export_store(st, back, "jsonl")
        assert len(term_timeline(st, term).tracks) == 1
        runs = [r.run_id for r in st.list_runs()]
        changes = diff_runs(st, runs[-1], runs[0]).changes
    stored_term = term.replace("\x00", "\ufffd") if is_postgres(store_target) else term
    assert any(c.term == stored_term for c in changes)
    reference = tmp_path / "reference.db"  # what SQLite gives back, with U+FFFD for the NUL on PostgreSQL
    with Store(reference) as st:
        import_file(st, source)
    with Store(reference, readonly=True) as st:
        ref = json.dumps(list(iter_records(st)))
    if is_postgres(store_target):
        ref = ref.replace("\\u0000", "\\ufffd").replace("\\\\ufffd", "\\\\u0000")  # the escape, not the literal
    want = sorted(json.dumps(r, sort_keys=True) for r in json.loads(ref))
    exported = [json.loads(line) for line in back.read_text(encoding="utf-8").splitlines()]
    assert sorted(json.dumps(r, sort_keys=True) for r in exported) == want
    [mine] = [r for r in exported if r["measurement_uid"] == probe["measurement_uid"]]
    assert mine["input"] == stored_term and "literal \\u0000 text, kept" in mine["test_keys"]["signals"]


def test_export_format_json_means_jsonl_in_any_case_and_from_the_file_name(tmp_path):
    """`export --format` takes jsonl, csv, parquet; `json` (a listing's value) is read as jsonl."""
    from .test_hostile import invoke

    store = str(FIXTURES / "compat" / "store-v1.db")
    jsonl = invoke("export", "--store", store, "--format", "jsonl")
    assert jsonl.code == 0 and jsonl.out.count("\n") > 10, jsonl.err
    for fmt in ("json", "JSONL", "Json"):
        res = invoke("export", "--store", store, "--format", fmt)
        assert (res.code, res.out, res.err) == (0, jsonl.out, ""), fmt
    res = invoke("export", "--store", store, "-o", str(tmp_path / "all.json"))
    assert res.code == 0 and res.err.strip().endswith("(jsonl)"), res.err
    assert (tmp_path / "all.json").read_text(encoding="utf-8") == jsonl.out


@pytest.mark.parametrize("args,words", [
    (["--format", "tsv"], "not 'tsv' (table/tsv are for listing commands)"),
    (["--format", "table"], "not 'table' (table/tsv are for listing commands)"),
    (["--format", "xml"], "not 'xml'"),
    (["-o", "{tmp}/out.txt"], "cannot tell the export format from the file name 'out.txt'"),
])
def test_a_format_export_does_not_write_is_one_line_naming_the_accepted_values(tmp_path, args, words):
    from harness.exitcodes import ExitCode

    from .test_hostile import invoke

    res = invoke("export", "--store", str(FIXTURES / "compat" / "store-v1.db"),
                 *[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert res.code == ExitCode.BAD_INPUT and res.out == "", res.err
    assert len(res.err.strip().splitlines()) == 1 and words in res.err, res.err
    assert "jsonl (or json), csv or parquet" in res.err
    assert list(tmp_path.iterdir()) == []  # nothing written
