"""Generate a large comparator benchmark store (deterministic, fast bulk insert).

Two "big" runs of N measurements each (default 1,000,000: 10 platforms x 100,000 terms),
where the second run flips, fails, drops results, adds and removes a few percent of keys,
followed by small runs so that one term has a history of 365 runs in total.

    python bench/comparator/generate.py bench/out/comparator.db --per-run 1000000 --runs 365
    python bench/comparator/generate.py postgresql://postgres@/harness?host=... --runs 2   # a PostgreSQL store

On PostgreSQL the rows go in with COPY and the secondary indexes are rebuilt after loading,
followed by VACUUM ANALYZE (what a long-lived store's autovacuum would have done).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import time
import zlib
from pathlib import Path

from harness.models import Measurement, Run, Verdict
from harness.store import Store
from harness.store.target import is_postgres

PLATFORMS = ["baidu", "bing_cn", "weibo", "sogou", "douyin", "toutiao", "bilibili", "zhidao", "jd", "sandbox"]
VERDICTS = ["not_censored", "not_censored", "not_censored", "hard", "soft", "no_results"]
TIMELINE_TERM = "term-0000042"

INSERT = (
    "INSERT INTO measurements (measurement_id, run_id, task_key, measurement_start_time, platform, role, input,"
    " query, list_name, category, variant, vantage, probe_cc, probe_asn, verdict, failure, result_count,"
    " result_items, status_code, body_sha256, doc) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)


def _template() -> dict:
    m = Measurement(measurement_id="x", run_id="x", probe_set="bench", task_key="x",
                    measurement_start_time=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc), platform="x",
                    input="x", query="x", verdict=Verdict.not_censored, software_version="0.1.0")
    return json.loads(m.model_dump_json())


_FIELDS = ("MID", "RUN", "TASK", "TS", "PLATFORM", "TERM", "VERDICT", "FAILURE", "CAT", "COUNT", "ITEMS")


def _doc_format(tmpl: dict) -> str:
    """The measurement JSON as a %-format string (json.dumps once, not once per row)."""
    doc = dict(tmpl)
    doc.update(measurement_id="@MID@", run_id="@RUN@", task_key="@TASK@", measurement_start_time="@TS@",
               platform="@PLATFORM@", input="@TERM@", query="@TERM@", verdict="@VERDICT@", failure="@FAILURE@",
               list_name="bench", category="@CAT@", vantage="bench",
               test_keys={**tmpl["test_keys"], "result_count": "@COUNT@", "result_items": "@ITEMS@"})
    text = json.dumps(doc, ensure_ascii=False).replace("%", "%%")
    for name in _FIELDS:
        quoted = name not in ("FAILURE", "COUNT", "ITEMS")
        text = text.replace(f'"@{name}@"', f'"%({name})s"' if quoted else f"%({name})s")
    return text


def _rows(run_id: str, start: dt.datetime, keys: list[tuple[str, str]], verdict_of, fmt: str):
    base = start.replace(tzinfo=None)
    for i, (platform, term) in enumerate(keys):
        verdict, count, items = verdict_of(platform, term)
        failure = "timeout" if verdict == "failure" else None
        ts = (base + dt.timedelta(microseconds=i * 50)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        mid = f"{run_id}-{i:07d}"
        task = f"{platform}\\u001fprobe\\u001f{term}\\u001f0\\u001f"
        cat = "cat" + term[-1]
        doc = fmt % {"MID": mid, "RUN": run_id, "TASK": task, "TS": ts, "PLATFORM": platform, "TERM": term,
                     "VERDICT": verdict, "FAILURE": '"timeout"' if failure else "null", "CAT": cat,
                     "COUNT": "null" if count is None else count, "ITEMS": "null" if items is None else items}
        yield (mid, run_id, f"{platform}\x1fprobe\x1f{term}\x1f0\x1f", ts, platform, "probe", term, term, "bench", cat,
               None, "bench", "ZZ", "AS0", verdict, failure, count, items, 200, None, doc)


def base_verdict(platform: str, term: str) -> tuple[str, int | None, int | None]:
    h = zlib.crc32(f"{platform}\x1f{term}".encode())
    v = VERDICTS[h % len(VERDICTS)]
    if v in ("not_censored", "soft"):
        return v, 1000 + h % 100000, 10
    return v, 0, 0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("store")
    ap.add_argument("--per-run", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=365, help="total runs (the first two are big)")
    ap.add_argument("--small", type=int, default=1000, help="measurements in each small run")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    pg = is_postgres(args.store)
    if not pg:
        args.store = Path(args.store)
        if args.store.exists():
            args.store.unlink()
    rng = random.Random(args.seed)
    fmt = _doc_format(_template())
    n_terms = max(1, args.per_run // len(PLATFORMS))
    terms = [f"term-{i:07d}" for i in range(n_terms)]
    keys = [(p, t) for t in terms for p in PLATFORMS][: args.per_run]
    t0 = time.monotonic()
    day0 = dt.datetime(2025, 12, 1, tzinfo=dt.timezone.utc)
    st = Store(args.store)
    c = st.conn
    if pg:
        raw = c.raw
        index_sql = [r[0] for r in raw.execute("SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema()"
                                               " AND tablename = 'measurements' AND indexname NOT IN"
                                               " (SELECT conname FROM pg_constraint)")]
        for (name,) in raw.execute("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND"
                                   " tablename = 'measurements' AND indexname NOT IN (SELECT conname FROM pg_constraint)"
                                   ).fetchall():
            raw.execute(f"DROP INDEX {name}")
    else:
        c.execute("PRAGMA journal_mode=OFF")  # a generated file: no journal while loading (WAL again at the end)
        c.execute("PRAGMA synchronous=OFF")
        c.execute("PRAGMA cache_size=-200000")
        # bulk load without the secondary indexes, then build them once (much faster than row by row)
        index_sql = [r[0] for r in c.execute("SELECT sql FROM sqlite_master WHERE type='index' AND tbl_name='measurements'"
                                             " AND sql IS NOT NULL")]
        for (name,) in c.execute("SELECT name FROM sqlite_master WHERE type='index' AND tbl_name='measurements'"
                                 " AND sql IS NOT NULL").fetchall():
            c.execute(f"DROP INDEX {name}")
    fate: dict[tuple[str, str], str] = {}
    for idx in range(args.runs):
        run_id = f"bench-{idx:04d}"
        start = day0 + dt.timedelta(days=idx)
        big = idx < 2
        c.execute("BEGIN")
        st.create_run(Run(run_id=run_id, probe_set="bench", started_at=start, finished_at=start + dt.timedelta(hours=1),
                          status="complete", vantage="bench", software_version="0.1.0"))
        if big:
            run_keys = list(keys)
            if idx == 1:
                # 1 % of keys flip, 0.5 % fail, 1 % lose most results, 0.1 % dropped and 0.1 % new
                for k in keys:
                    r = rng.random()
                    fate[k] = ("flip" if r < 0.01 else "fail" if r < 0.015 else "drop" if r < 0.025
                               else "gone" if r < 0.026 else "")
                run_keys = [k for k in keys if fate[k] != "gone"]
                run_keys += [(p, f"new-{i:06d}") for i, p in enumerate(PLATFORMS * (len(keys) // 10000 or 1))]

            def verdict_of(p: str, t: str, idx=idx):
                v = base_verdict(p, t)
                f = fate.get((p, t), "") if idx == 1 else ""
                if f == "flip":
                    return ("hard", 0, 0) if v[0] != "hard" else ("not_censored", 5000, 10)
                if f == "fail":
                    return "failure", None, None
                if f == "drop" and v[0] == "not_censored":
                    return "not_censored", (v[1] or 0) // 10, 2
                if v[1]:  # result counts are estimates: they wander by up to ±10 % between runs
                    wobble = 0.9 + (zlib.crc32(f"{p}|{t}|1".encode()) % 2001) / 10000
                    return v[0], int(v[1] * wobble), v[2]
                return v
        else:
            small_terms = [TIMELINE_TERM] + [f"term-{(idx * 7 + j) % n_terms:07d}" for j in range(args.small // len(PLATFORMS))]
            run_keys = [(p, t) for t in dict.fromkeys(small_terms) for p in PLATFORMS][: args.small]

            def verdict_of(p: str, t: str, idx=idx):
                if t == TIMELINE_TERM and p == "weibo":
                    return ("hard", 0, 0) if (idx // 30) % 2 else ("not_censored", 3000, 10)
                return base_verdict(p, t)
        if pg:
            cols = INSERT[INSERT.index("(") + 1:INSERT.index(")")]
            with c.raw.cursor().copy(f"COPY measurements ({cols}) FROM STDIN") as copy:
                for row in _rows(run_id, start, run_keys, verdict_of, fmt):
                    copy.write_row(row)
        else:
            c.executemany(INSERT, _rows(run_id, start, run_keys, verdict_of, fmt))
        c.execute("COMMIT")
        if big:
            print(f"{run_id}: {len(run_keys):,} measurements ({time.monotonic() - t0:.1f} s)", flush=True)
    t1 = time.monotonic()
    for sql in index_sql:
        c.execute(sql)
    print(f"indexes built in {time.monotonic() - t1:.1f} s", flush=True)
    if pg:
        for table in ("runs", "measurements"):
            c.execute(f"VACUUM ANALYZE {table}")
        size = c.execute("SELECT pg_database_size(current_database())").fetchone()[0] / 1e6
        st.close()
        print(f"generated {args.runs} runs in {time.monotonic() - t0:.1f} s; {size:,.0f} MB in the database")
        return
    c.execute("PRAGMA journal_mode=WAL")
    st.close()
    size = args.store.stat().st_size / 1e6
    print(f"generated {args.runs} runs in {time.monotonic() - t0:.1f} s; {size:,.0f} MB at {args.store}")


if __name__ == "__main__":
    main()
