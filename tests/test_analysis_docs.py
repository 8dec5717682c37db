"""Typed Parquet exports (one file, or a dataset partitioned by date and platform) and the DuckDB
queries of docs/analysis.md, run for real against an export of real sandbox runs and checked
against the store; pandas and polars read the same dataset."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from harness.analysis.diff import diff_runs
from harness.analysis.export import export_store, import_file
from harness.errors import OutputError
from harness.store import Store

from .comparator_helpers import build_three_runs, cli

DOC = Path(__file__).resolve().parent.parent / "docs" / "analysis.md"
pytest.importorskip("pyarrow", reason="pyarrow is not installed (pip install -e '.[test]' or '.[parquet]')")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("analysis")
    db, runs = build_three_runs(root)
    res = cli("export", "--store", str(db), "--dataset", "-o", str(root / "export"))
    assert res.returncode == 0, res.exception
    with Store(db, readonly=True) as st:
        export_store(st, root / "all.parquet", "parquet")
        probes = [m for m in st.measurements(role="probe")]
    return db, runs, root, probes


def _sql_blocks() -> list[str]:
    return re.findall(r"```sql\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def _duckdb(root: Path):
    duckdb = pytest.importorskip("duckdb", reason="duckdb is not installed (pip install -e '.[test]')")
    con = duckdb.connect()
    view = _sql_blocks()[0].replace("export/**/*.parquet", str(root / "export" / "**" / "*.parquet"))
    con.execute(view)
    return con


def test_the_dataset_is_partitioned_by_date_and_platform_and_typed(exported):
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    db, _, root, probes = exported
    files = sorted(p.relative_to(root / "export").parts[:2] for p in (root / "export").rglob("*.parquet"))
    days = {m.measurement_start_time.strftime("%Y-%m-%d") for m in probes}
    assert {f for f in files} == {(f"date={d}", "platform=sandbox") for d in days}
    schema = pq.read_schema(root / "all.parquet")
    types = {f.name: str(f.type) for f in schema}
    assert types["measurement_start_time"] == "timestamp[us, tz=UTC]" and types["date"] == "date32[day]"
    assert (types["result_count"], types["status_code"], types["censored"], types["confirmed"]) == (
        "int64", "int32", "bool", "bool")
    assert types["tags"] == "list<element: string>"
    table = ds.dataset(root / "export", format="parquet", partitioning="hive").to_table()
    assert table.num_rows == pq.read_metadata(root / "all.parquet").num_rows
    # both forms import back losslessly
    for source in (root / "export", root / "all.parquet"):
        target = root / f"back-{source.name}.db"
        with Store(target) as st:
            summary = import_file(st, source)
        assert summary.added == table.num_rows
        with Store(target, readonly=True) as a, Store(db, readonly=True) as b:
            assert sorted(m.model_dump_json() for m in a.measurements()) == sorted(m.model_dump_json() for m in b.measurements())


def test_a_dataset_never_lands_on_an_existing_folder(exported, tmp_path):
    db = exported[0]
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "mine.txt").write_text("keep me")
    with Store(db, readonly=True) as st, pytest.raises(OutputError, match="not an empty folder"):
        export_store(st, tmp_path / "taken", "parquet", dataset=True)
    assert [p.name for p in (tmp_path / "taken").iterdir()] == ["mine.txt"]
    assert not (tmp_path / "taken.part").exists()


def test_verdict_shares_per_platform_per_month(exported):
    _, _, root, probes = exported
    con = _duckdb(root)
    assert len(_sql_blocks()) == 4, "a new SQL block in docs/analysis.md needs its test here"
    rows = con.execute(_sql_blocks()[1]).fetchall()
    expected = Counter((m.platform, m.measurement_start_time.strftime("%Y-%m"), m.verdict.value) for m in probes)
    assert {(p, mo, v): n for p, mo, v, n, _ in rows} == dict(expected)
    totals = Counter((p, mo) for p, mo, _ in expected.elements())
    for p, mo, v, n, share in rows:
        assert share == pytest.approx(n / totals[(p, mo)], abs=1e-4)


def test_first_and_last_censored_date_of_each_term(exported):
    _, _, root, probes = exported
    con = _duckdb(root)
    rows = con.execute(_sql_blocks()[2]).fetchall()
    expected: dict[tuple[str, str, str], list] = {}
    for m in probes:
        if m.verdict.value in ("hard", "soft"):
            e = expected.setdefault((m.platform, m.vantage, m.input), [m.measurement_start_time.date()] * 2 + [set()])
            e[0], e[1] = min(e[0], m.measurement_start_time.date()), max(e[1], m.measurement_start_time.date())
            e[2].add(m.run_id)
    assert {(p, v, t): [a, b, n] for p, v, t, a, b, n in rows} == {k: [a, b, len(r)] for k, (a, b, r) in expected.items()}
    assert rows and len(rows) == len(expected)


def test_the_diff_query_agrees_with_harness_diff(exported):
    db, (r1, r2, _), root, _ = exported
    con = _duckdb(root)
    block = _sql_blocks()[3]
    block = block.replace("(SELECT min(report_id) FROM m)", f"'{r1}'").replace("(SELECT max(report_id) FROM m)", f"'{r2}'")
    statements = [s for s in block.split(";") if s.strip()]
    for s in statements[:-1]:
        con.execute(s)
    rows = con.execute(statements[-1]).fetchall()
    with Store(db, readonly=True) as st:
        harness = diff_runs(st, r1, r2)
    # the query leaves out what needs the store's history (results_dropped; last known verdicts)
    want = {(c.platform, c.vantage, c.term, c.transition.value) for c in harness.changes
            if c.transition.value != "results_dropped"}
    assert {(p, v, t, tr) for p, v, t, _, _, tr in rows} == want
    assert {"newly_censored", "became_unknown", "new_term", "dropped_term"} <= {r[-1] for r in rows}


def test_pandas_reads_the_dataset(exported):
    """One light test per reader (pandas and polars are in the test extra only for these two): each
    skips, saying why, where its library is not installed."""
    _, _, root, probes = exported
    pd = pytest.importorskip("pandas", reason="pandas is not installed (pip install -e '.[test]')")
    df = pd.read_parquet(root / "export")
    assert len(df[df.role == "probe"]) == len(probes)
    assert str(df["measurement_start_time"].dtype).startswith("datetime64") and df["censored"].dtype == bool
    assert set(df["platform"].astype(str)) == {"sandbox"}


def test_polars_reads_the_dataset(exported):
    _, _, root, probes = exported
    pl = pytest.importorskip("polars", reason="polars is not installed (pip install -e '.[test]')")
    lf = pl.scan_parquet(root / "export", hive_partitioning=True)
    counts = dict(lf.filter(pl.col("role") == "probe").group_by("verdict").len().collect().iter_rows())
    assert counts == dict(Counter(m.verdict.value for m in probes))
    schema = lf.collect_schema()
    assert schema["result_count"] == pl.Int64 and schema["date"] == pl.Date
