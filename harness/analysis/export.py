"""Exports (JSON lines in an OONI-style envelope, CSV, Parquet) and merging exports into a store.

A JSON-lines record is one measurement in OONI's base data format (``ooni/spec``,
``data-formats/df-000-base.md``: ``data_format_version`` 0.2.0, times as ``YYYY-MM-DD hh:mm:ss``
UTC, ``annotations`` a map of strings)::

    {"measurement_uid": ..., "report_id": RUN_ID, "data_format_version": "0.2.0",
     "measurement_start_time": "2026-11-01 10:00:00", "test_start_time": "2026-11-01 09:58:13",
     "test_name": ..., "test_version": ..., "software_name": ..., "software_version": ...,
     "input": TERM, "probe_cc": ..., "probe_asn": ..., "test_runtime": ...,
     "annotations": {"vantage": ..., "probe_set": ..., "task_key": ..., "platform": ...},
     "test_keys": {"platform": ..., "verdict": ..., "failure": OONI_STRING_OR_NULL,
                   "harness_failure": HARNESS_CODE_OR_NULL, "signals": [...], ..., "evidence": {...},
                   "harness": {"measurement_start_time": ISO_WITH_MICROSECONDS, "run": {...}},
                   "bodies_b64": {sha256: base64} (with bodies)}}

``test_keys.failure`` is OONI's failure string (``harness.failures.ooni_failure``: null where
OONI records the event as a successful request, e.g. an HTTP 429 or a CAPTCHA), and
``harness_failure`` the harness's own code. Every field of the stored measurement and of its
run is in the record (``test_keys.harness``), so export → import is lossless; records written
by 0.1.0 (ISO times, the run under ``annotations.run``) still import. Nothing that identifies
the machine that measured (host name, process id, local paths) is exported. ``import_file`` merges records into a store in one transaction: measurements
already present (same ``measurement_uid``, or the same task of the same run) are skipped,
runs are created as needed; a bad line aborts the import and nothing is written.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal, TextIO

from pydantic import BaseModel, ValidationError

from ..errors import InputError, NotFoundError, OutputError
from ..failures import ooni_failure
from ..models import Measurement, Run
from ..safeio import MAX_NESTING, atomic_output, atomic_path, check_input_file, depth_of
from ..store.base import Store, parse_iso

ExportFormat = Literal["jsonl", "csv", "parquet"]

_ENVELOPE_TOP = ("test_name", "test_version", "software_name", "software_version", "input", "probe_cc", "probe_asn",
                 "test_runtime")
_MOVED_TO_TEST_KEYS = ("platform", "verdict", "failure", "role", "query", "components", "list_name", "category", "tags",
                       "variant", "repeat")
CSV_COLUMNS = ["measurement_uid", "report_id", "measurement_start_time", "probe_set", "platform", "vantage",
               "probe_cc", "probe_asn", "input", "variant", "query", "list_name", "category", "tags", "role", "verdict",
               "failure", "ooni_failure", "result_count", "result_items", "signals", "confirmed", "status_code",
               "body_sha256", "test_name", "item_spec"]
"""The CSV header. Scripts index these columns by position: new columns go at the END, never between."""
DATA_FORMAT_VERSION = "0.2.0"
_LOCAL_RUN_FIELDS = ("pid", "hostname")
"""Run fields that identify the measuring machine: never exported (the README's advice to vantage operators)."""


def ooni_time(iso_text: str | None) -> str | None:
    """``2026-11-01T10:00:00.123456Z`` → ``2026-11-01 10:00:00`` (OONI's UTC time format)."""
    if not iso_text:
        return None
    return parse_iso(iso_text).strftime("%Y-%m-%d %H:%M:%S")


class ImportSummary(BaseModel):
    path: str
    records: int = 0
    added: int = 0
    duplicates: int = 0
    runs_created: list[str] = []
    bodies_added: int = 0


def _run_doc(run: Run) -> dict[str, Any]:
    doc = json.loads(run.model_dump_json())
    for k in _LOCAL_RUN_FIELDS:
        doc[k] = None
    return doc


def to_record(doc: dict[str, Any], run: dict[str, Any] | None = None,
              bodies: dict[str, bytes] | None = None) -> dict[str, Any]:
    """One stored measurement (its JSON ``doc``) as an OONI-format record (see the module docstring)."""
    tk = dict(doc.get("test_keys") or {})
    rec: dict[str, Any] = {
        "measurement_uid": doc["measurement_id"],
        "report_id": doc["run_id"],
        "data_format_version": DATA_FORMAT_VERSION,
        "measurement_start_time": ooni_time(doc["measurement_start_time"]),
        "test_start_time": ooni_time((run or {}).get("started_at") or doc["measurement_start_time"]),
    }
    for k in _ENVELOPE_TOP:
        rec[k] = doc.get(k)
    test_keys: dict[str, Any] = {k: doc.get(k) for k in _MOVED_TO_TEST_KEYS}
    test_keys.update(tk)
    test_keys["harness_failure"] = doc.get("failure")
    test_keys["failure"] = ooni_failure(doc.get("failure"))
    test_keys["evidence"] = doc.get("evidence") or {}
    harness: dict[str, Any] = {"measurement_start_time": doc["measurement_start_time"]}
    if run is not None:
        harness["run"] = {k: (None if k in _LOCAL_RUN_FIELDS else v) for k, v in run.items()}
    test_keys["harness"] = harness
    if bodies:
        test_keys["bodies_b64"] = {k: base64.b64encode(v).decode("ascii") for k, v in bodies.items()}
    rec["annotations"] = {"vantage": str(doc.get("vantage") or ""), "probe_set": str(doc["probe_set"]),
                          "task_key": str(doc["task_key"]), "platform": str(doc.get("platform") or ""),
                          "engine_name": "censorship-harness"}
    rec["test_keys"] = test_keys
    return rec


def from_record(rec: dict[str, Any]) -> tuple[Measurement, Run | None, dict[str, bytes]]:
    """Inverse of :func:`to_record` (validated); also reads 0.1.0 records (ISO times, ``annotations.run``)."""
    if not isinstance(rec, dict):
        raise ValueError("a record must be a JSON object")
    tk = dict(rec.get("test_keys") or {})
    ann = dict(rec.get("annotations") or {})
    bodies_b64 = tk.pop("bodies_b64", None) or {}
    evidence = tk.pop("evidence", {})
    harness = tk.pop("harness", None)
    if "harness_failure" in tk:  # the OONI-format record: failure is OONI's string, harness_failure ours
        tk["failure"] = tk.pop("harness_failure")
    doc: dict[str, Any] = {k: tk.pop(k) for k in _MOVED_TO_TEST_KEYS if k in tk}
    for k in _ENVELOPE_TOP:
        if k in rec:
            doc[k] = rec[k]
    started = rec.get("measurement_start_time")
    run_doc = ann.get("run")
    if isinstance(harness, dict):
        started = harness.get("measurement_start_time") or started
        run_doc = harness.get("run") or run_doc
    elif isinstance(started, str) and "T" not in started:  # an OONI time without the harness's own: UTC
        started = started.replace(" ", "T") + "Z"
    doc.update(measurement_id=rec.get("measurement_uid"), run_id=rec.get("report_id"),
               measurement_start_time=started, probe_set=ann.get("probe_set"),
               task_key=ann.get("task_key"), vantage=ann.get("vantage", ""), test_keys=tk, evidence=evidence)
    m = Measurement.model_validate(doc)
    run = Run.model_validate(run_doc) if run_doc else None
    if run is not None and run.run_id != m.run_id:
        raise ValueError(f"the run's run_id {run.run_id!r} differs from report_id {m.run_id!r}")
    if not isinstance(bodies_b64, dict):
        raise ValueError("test_keys.bodies_b64 must map SHA-256 keys to base64 bodies")
    bodies = {str(k): base64.b64decode(v, validate=True) for k, v in bodies_b64.items()}
    return m, run, bodies


def iter_records(store: Store, *, run_ids: Iterable[str] = (), probe_set: str | None = None,
                 platforms: Iterable[str] = (),
                 roles: Iterable[str] = ("probe", "item", "control", "truism", "positive_control", "isolation"),
                 bodies: bool = False) -> Iterator[dict[str, Any]]:
    """Stream the store's measurements as OONI-style records, oldest first."""
    runs = {r.run_id: _run_doc(r) for r in store.list_runs()}
    cond, args = [], []
    ids = list(run_ids)
    if ids:
        cond.append(f"run_id IN ({','.join('?' * len(ids))})")
        args += ids
    if probe_set:
        cond.append("run_id IN (SELECT run_id FROM runs WHERE probe_set = ?)")
        args.append(probe_set)
    plats = list(platforms)
    if plats:
        cond.append(f"platform IN ({','.join('?' * len(plats))})")
        args += plats
    rl = list(roles)
    cond.append(f"role IN ({','.join('?' * len(rl))})")
    args += rl
    sql = "SELECT doc, measurement_id FROM measurements WHERE " + " AND ".join(cond) + " ORDER BY measurement_start_time, rowid"
    for doc_text, mid in store.scan(sql, args, size=2000):
        doc = json.loads(doc_text)
        found: dict[str, bytes] = {}
        if bodies:
            for (sha,) in store.conn.execute("SELECT sha256 FROM body_refs WHERE measurement_id=?", (mid,)).fetchall():
                try:
                    found[sha] = store.get_body(sha)
                except NotFoundError:  # pruned by retention: exported without it
                    pass
        yield to_record(doc, runs.get(doc["run_id"]), found)


def _csv_row(rec: dict[str, Any]) -> dict[str, Any]:
    tk = rec["test_keys"]
    ev = tk.get("evidence") or {}
    row = {
        "measurement_uid": rec["measurement_uid"], "report_id": rec["report_id"],
        "measurement_start_time": rec["measurement_start_time"], "probe_set": rec["annotations"].get("probe_set"),
        "platform": tk.get("platform"), "vantage": rec["annotations"].get("vantage"), "probe_cc": rec.get("probe_cc"),
        "probe_asn": rec.get("probe_asn"), "input": rec.get("input"), "variant": tk.get("variant"),
        "query": tk.get("query"), "list_name": tk.get("list_name"),
        "category": tk.get("category"), "tags": ";".join(tk.get("tags") or []), "role": tk.get("role"),
        "verdict": tk.get("verdict"), "failure": tk.get("harness_failure", tk.get("failure")),
        "ooni_failure": tk.get("failure") if "harness_failure" in tk else None, "result_count": tk.get("result_count"),
        "result_items": tk.get("result_items"), "signals": ";".join(tk.get("signals") or []),
        "confirmed": tk.get("confirmed"), "status_code": ev.get("status_code"), "body_sha256": ev.get("body_sha256"),
        "test_name": rec.get("test_name"), "item_spec": tk.get("item_spec"),
    }
    return {k: ("" if v is None else ("true" if v is True else "false" if v is False else v)) for k, v in row.items()}


def write_jsonl(records: Iterable[dict[str, Any]], out: TextIO) -> int:
    n = 0
    for rec in records:
        out.write(json.dumps(rec, ensure_ascii=False, separators=(",", ":")))
        out.write("\n")
        n += 1
    return n


def write_csv(records: Iterable[dict[str, Any]], out: TextIO) -> int:
    w = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    w.writeheader()
    n = 0
    for rec in records:
        w.writerow(_csv_row(rec))
        n += 1
    return n


def _pyarrow():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise InputError("Parquet needs the optional extra: pip install 'censorship-harness[parquet]'") from None
    return pa, pq


PARQUET_COLUMNS = ["measurement_uid", "report_id", "measurement_start_time", "date", "probe_set", "platform", "vantage",
                   "probe_cc", "probe_asn", "input", "variant", "query", "list_name", "category", "tags", "role",
                   "verdict", "censored", "failure", "ooni_failure", "result_count", "result_items", "signals",
                   "confirmed", "status_code", "body_sha256", "record", "test_name", "item_spec"]
PARTITION_COLUMNS = ["date", "platform"]


def parquet_schema(pa: Any) -> Any:
    """Typed columns: timestamps, integers, booleans and lists stay what they are (not strings)."""
    s, i64 = pa.string(), pa.int64()
    types = {"measurement_start_time": pa.timestamp("us", tz="UTC"), "date": pa.date32(), "tags": pa.list_(s),
             "censored": pa.bool_(), "result_count": i64, "result_items": i64, "signals": pa.list_(s),
             "confirmed": pa.bool_(), "status_code": pa.int32()}
    return pa.schema([(c, types.get(c, s)) for c in PARQUET_COLUMNS])


def _parquet_row(rec: dict[str, Any]) -> dict[str, Any]:
    tk = rec["test_keys"]
    ev = tk.get("evidence") or {}
    ann = rec["annotations"]
    ts = parse_iso((tk.get("harness") or {}).get("measurement_start_time") or rec["measurement_start_time"])
    verdict = tk.get("verdict")
    ooni_record = "harness_failure" in tk  # failure is OONI's string there, harness_failure ours
    confirmed = tk.get("confirmed")
    return {
        "measurement_uid": rec["measurement_uid"], "report_id": rec["report_id"], "measurement_start_time": ts,
        "date": ts.astimezone(dt.timezone.utc).date(), "probe_set": ann.get("probe_set"), "platform": tk.get("platform"),
        "vantage": ann.get("vantage"), "probe_cc": rec.get("probe_cc"), "probe_asn": rec.get("probe_asn"),
        "input": rec.get("input"), "variant": tk.get("variant"), "query": tk.get("query"),
        "list_name": tk.get("list_name"), "category": tk.get("category"),
        "tags": list(tk.get("tags") or []), "role": tk.get("role"), "verdict": verdict,
        "censored": verdict in ("hard", "soft"), "failure": tk.get("harness_failure") if ooni_record else tk.get("failure"),
        "ooni_failure": tk.get("failure") if ooni_record else None,
        "result_count": tk.get("result_count"), "result_items": tk.get("result_items"),
        "signals": list(tk.get("signals") or []), "confirmed": None if confirmed is None else bool(confirmed),
        "status_code": ev.get("status_code"), "body_sha256": ev.get("body_sha256"),
        "record": json.dumps(rec, ensure_ascii=False, separators=(",", ":")),
        "test_name": rec.get("test_name"), "item_spec": tk.get("item_spec"),
    }


def _parquet_batches(records: Iterable[dict[str, Any]], pa: Any, schema: Any, batch: int,
                     counter: list[int]) -> Iterator[Any]:
    buf: dict[str, list[Any]] = {c: [] for c in PARQUET_COLUMNS}
    for rec in records:
        for k, v in _parquet_row(rec).items():
            buf[k].append(v)
        counter[0] += 1
        if len(buf["record"]) >= batch:
            yield pa.RecordBatch.from_pydict(buf, schema=schema)
            buf = {c: [] for c in PARQUET_COLUMNS}
    if buf["record"] or counter[0] == 0:
        yield pa.RecordBatch.from_pydict(buf, schema=schema)


def write_parquet(records: Iterable[dict[str, Any]], path: Path, batch: int = 50_000) -> int:
    """One typed Parquet file (:func:`parquet_schema`), plus ``record``: the whole JSON record, so
    the file imports losslessly. Written beside the target and moved into place when complete."""
    pa, pq = _pyarrow()
    schema = parquet_schema(pa)
    counter = [0]
    with atomic_path(path) as tmp, pq.ParquetWriter(str(tmp), schema, compression="zstd") as writer:
        for rb in _parquet_batches(records, pa, schema, batch, counter):
            writer.write_batch(rb)
    return counter[0]


def write_parquet_dataset(records: Iterable[dict[str, Any]], folder: Path, batch: int = 50_000) -> int:
    """A Parquet dataset: the typed columns of :func:`write_parquet`, in a folder partitioned
    hive-style by day (UTC) and platform (``date=2026-11-01/platform=baidu/part-0.parquet``), which
    DuckDB (``read_parquet('DIR/**/*.parquet', hive_partitioning = true)``), pandas
    (``read_parquet(DIR)``) and polars (``scan_parquet(DIR, hive_partitioning=True)``) read as one
    table. Refused if ``folder`` exists and is not empty; built beside it and moved into place."""
    import shutil

    pa, _ = _pyarrow()
    import pyarrow.dataset as ds

    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise OutputError(f"{folder}: exists and is not an empty folder; a dataset export needs a new folder")
    schema = parquet_schema(pa)
    counter = [0]
    tmp = folder.with_name(folder.name + ".part")
    shutil.rmtree(tmp, ignore_errors=True)
    part = ds.partitioning(pa.schema([schema.field(c) for c in PARTITION_COLUMNS]), flavor="hive")
    try:
        ds.write_dataset(_parquet_batches(records, pa, schema, batch, counter), str(tmp), schema=schema, format="parquet",
                         partitioning=part, basename_template="part-{i}.parquet", max_partitions=1_000_000,
                         file_options=ds.ParquetFileFormat().make_write_options(compression="zstd"),
                         existing_data_behavior="error")
        if folder.exists():
            folder.rmdir()
        tmp.replace(folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return counter[0]


def export_store(store: Store, path: Path | None, fmt: ExportFormat, out: TextIO | None = None, *,
                 dataset: bool = False, **selection: Any) -> int:
    """Write an export; ``path=None`` writes JSONL/CSV to ``out``. Returns the number of records.

    ``dataset=True`` (Parquet only): ``path`` is a folder, partitioned by date and platform."""
    records = iter_records(store, **selection)
    if dataset and fmt != "parquet":
        raise InputError("--dataset writes Parquet: use it with --format parquet")
    if fmt == "parquet":
        if path is None:
            raise InputError("a Parquet export needs an output file (--output)")
        return write_parquet_dataset(records, path) if dataset else write_parquet(records, path)
    writer = write_jsonl if fmt == "jsonl" else write_csv
    if path is None:
        assert out is not None
        return writer(records, out)
    with atomic_output(path) as fh:
        return writer(records, fh)


# --------------------------------------------------------------------------- import


MAX_RECORD_BYTES = 256 << 20
"""The longest JSONL line an import reads (a record with its bodies in base64)."""


def _json_record(text: str | bytes, where: str) -> Any:
    try:
        rec = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{where}: not a JSON record ({exc.msg})") from None
    except RecursionError:
        raise InputError(f"{where}: not a measurement record: nested more than {MAX_NESTING} levels deep") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{where}: not valid UTF-8 (byte at offset {exc.start})") from None
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise InputError(f"{where}: not a JSON record ({str(exc)[:120]})") from None
    if depth_of(rec) > MAX_NESTING:
        raise InputError(f"{where}: not a measurement record: nested more than {MAX_NESTING} levels deep")
    return rec


def _read_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line or row number, record) from a JSONL or Parquet export."""
    if not path.is_dir():  # a dataset folder (--dataset) is read as one table
        try:
            check_input_file(path)
        except InputError as exc:
            raise InputError(f"{path}: {exc.message}") from None
    if path.suffix.lower() == ".parquet" or path.is_dir():
        _, pq = _pyarrow()
        try:
            table = pq.read_table(str(path), columns=["record"])
        except Exception as exc:  # noqa: BLE001 - any unreadable file is one clear error
            raise InputError(f"{path}: not a harness Parquet export ({exc})") from None
        for i, text in enumerate(table.column("record").to_pylist(), start=1):
            if not isinstance(text, str):
                raise InputError(f"{path}: row {i}: record is not JSON (no text)")
            yield i, _json_record(text, f"{path}: row {i}")
        return
    if path.suffix.lower() == ".csv":
        raise InputError(f"{path}: CSV exports are flat and lossy; import the JSONL or Parquet export instead")
    with path.open("rb") as fh:
        i = 0
        while True:
            line = fh.readline(MAX_RECORD_BYTES + 1)
            if not line:
                break
            i += 1
            if len(line) > MAX_RECORD_BYTES:
                raise InputError(f"{path}:{i}: a line longer than {MAX_RECORD_BYTES:,} bytes is not a record")
            if not line.strip():
                continue
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InputError(f"{path}:{i}: not valid UTF-8 (byte 0x{line[exc.start]:02x} at column {exc.start + 1})") from None
            yield i, _json_record(text, f"{path}:{i}")


def _encodable(m: Measurement, run: Run | None) -> None:
    """Refuse text the store cannot hold (a lone surrogate from a ``\\ud800`` escape)."""
    try:
        m.model_dump_json().encode("utf-8")
        if run is not None:
            run.model_dump_json().encode("utf-8")
    except (UnicodeEncodeError, ValueError) as exc:
        raise ValueError(f"text that is not valid Unicode ({type(exc).__name__})") from None


def _run_for(m: Measurement) -> Run:
    return Run(run_id=m.run_id, probe_set=m.probe_set, started_at=m.measurement_start_time, status="complete",
               probe_cc=m.probe_cc, probe_asn=m.probe_asn, vantage=m.vantage, software_version=m.software_version)


def import_file(store: Store, path: Path) -> ImportSummary:
    """Merge an export into ``store``: all or nothing, duplicates skipped by measurement id."""
    summary = ImportSummary(path=str(path))
    c = store.conn
    known_runs = {r[0] for r in c.execute("SELECT run_id FROM runs")}
    synthesized: dict[str, Run] = {}
    where = "row" if path.suffix.lower() == ".parquet" or path.is_dir() else "line"
    with store.transaction():
        # runs described only by their measurements are created at the end: check the FK at commit
        store.defer_foreign_keys()
        for lineno, rec in _read_records(path):
            sep = f":{lineno}" if where == "line" else f": row {lineno}"
            try:
                m, run, bodies = from_record(rec)
                _encodable(m, run)
            except (ValidationError, ValueError, KeyError, TypeError) as exc:
                msg = str(exc).splitlines()
                detail = "; ".join(x.strip() for x in msg[:3]) if msg else type(exc).__name__
                raise InputError(f"{path}{sep}: not a measurement record: {detail[:300]}") from None
            summary.records += 1
            if m.run_id not in known_runs:
                if run is not None:
                    store.create_run(run)
                    known_runs.add(m.run_id)
                    summary.runs_created.append(m.run_id)
                else:
                    syn = synthesized.get(m.run_id)
                    if syn is None:
                        synthesized[m.run_id] = _run_for(m)
                    else:
                        if m.measurement_start_time < syn.started_at:
                            syn.started_at = m.measurement_start_time
                        if syn.finished_at is None or m.measurement_start_time > syn.finished_at:
                            syn.finished_at = m.measurement_start_time
            for key, body in bodies.items():
                sha, new = store.add_body(body)
                summary.bodies_added += new
                if sha != key:
                    raise InputError(f"{path}{sep}: body does not match its SHA-256 {key[:80]}")
            if store.insert_measurement_row(m):
                summary.added += 1
            else:
                summary.duplicates += 1
        for run in synthesized.values():
            store.create_run(run)
            summary.runs_created.append(run.run_id)
    return summary
