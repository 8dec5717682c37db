"""An isolation's queries kept as evidence in the store, like any measurement.

Every answer the isolation oracle (:mod:`harness.isolation.oracle`) takes as a verdict,
every truism control it sends and every query that kept failing is stored as a
:class:`~harness.models.Measurement` (role ``isolation`` for the queries, ``truism`` for
the controls) with its evidence (status, final URL without secrets, a header subset, the
body's SHA-256 and the stored body, the soft test's answer), in a run of its own named
``isolation:<command>:<platform>`` (:data:`harness.models.ISOLATION_RUN_PREFIX`). So a rule
found by ``harness isolate``, ``harness discover`` or after a scheduled run can be
re-checked later from the pages it rests on, and ``harness runs`` lists those runs.

Only the :class:`~harness.store.sqlite.Store` API is used (``create_run``,
``add_measurement``, ``set_run_status``), so any store backend that offers it works.
Isolation measurements never enter diffs, timelines or reports (those read role
``probe``), and isolation runs are never "the latest run" of a comparison.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import socket
import uuid
from dataclasses import dataclass, field
from typing import Any

from .. import __version__
from ..measure.engine import Vantage
from ..measure.request import Fetched
from ..models import ISOLATION_RUN_PREFIX, Evidence, Measurement, ProbeRole, Run, TestKeys, Verdict
from ..store import Store, utcnow

MAX_STORED_BODY_BYTES = 2_000_000  # as a run: larger bodies are stored as a prefix (evidence.body_truncated)


def isolation_run_name(command: str, platform: str) -> str:
    """``isolation:isolate:baidu``: the probe-set column of an isolation's run."""
    return f"{ISOLATION_RUN_PREFIX}{command}:{platform}"


def text_digest(text: str) -> str:
    """The short content hash that ties an isolation query to the text it was isolating."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@dataclass
class IsolationEvidence:
    """One isolation run in the store; :meth:`record` stores one answer.

    ``doc`` is kept with the run (e.g. the command, the budget, where the texts came from);
    call :meth:`open` before the first answer and :meth:`close` at the end (also on errors:
    a run left ``interrupted`` still keeps every answer stored so far).
    """

    store: Store
    command: str
    platform: str
    vantage: Vantage = field(default_factory=Vantage)
    doc: dict[str, Any] = field(default_factory=dict)
    keep_bodies: bool = True
    run_id: str | None = None
    stored: int = 0
    text: str | None = None  # the text being isolated now (its digest tags each query)
    _seq: int = 0

    def open(self) -> str:
        if self.run_id is None:
            self.run_id = utcnow().strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8]
            v = self.vantage
            self.store.create_run(
                Run(run_id=self.run_id, probe_set=isolation_run_name(self.command, self.platform),
                    started_at=utcnow(), probe_cc=v.probe_cc, probe_asn=v.probe_asn, vantage=v.label,
                    software_version=__version__, pid=os.getpid(), hostname=socket.gethostname()),
                {"kind": "isolation", "command": self.command, "platform": self.platform, **self.doc},
            )
        return self.run_id

    def close(self, complete: bool = True) -> None:
        if self.run_id is not None:
            self.store.set_run_status(self.run_id, "complete" if complete else "interrupted", finished=complete)

    def _body(self, body: bytes | None) -> bytes | None:
        if body is None or not self.keep_bodies:
            return None
        return body[:MAX_STORED_BODY_BYTES]

    def record(self, role: ProbeRole, query: str, sent: str, fetched: Fetched, *, separator: str = " ",
               verdict: Verdict | None = None, signals: list[str] | None = None, t0: float | None = None,
               runtime: float = 0.0, control_ok: bool | None = None, soft_probe: dict[str, Any] | None = None,
               soft_body: bytes | None = None) -> Measurement:
        """Store one answer: ``query`` is what the isolation asked (pieces joined by ``separator``),
        ``sent`` the exact string sent; ``verdict``/``signals`` override the page's own
        classification (the truism method and the soft test decide the isolation's verdict)."""
        run_id = self.open()
        c = fetched.classification
        self._seq += 1
        body = fetched.body
        size = fetched.body_size if fetched.body_size is not None else (len(body) if body is not None else None)
        truncated = fetched.truncated or (body is not None and len(body) > MAX_STORED_BODY_BYTES)
        verdict = verdict if verdict is not None else c.verdict
        tags = ["isolation"] + ([f"text:{text_digest(self.text)}"] if self.text else [])
        extra: list[bytes] = []
        if soft_probe is not None:
            soft_probe = dict(soft_probe)
            kept = self._body(soft_body)
            if kept is not None:
                extra.append(kept)
                soft_probe["stored_body_sha256"] = hashlib.sha256(kept).hexdigest()
        m = Measurement(
            measurement_id=uuid.uuid4().hex,
            run_id=run_id,
            probe_set=isolation_run_name(self.command, self.platform),
            task_key=f"{self.platform}\x1f{role}\x1f{self._seq}",
            measurement_start_time=utcnow() if t0 is None else _utc(t0),
            test_runtime=round(runtime, 4),
            test_name="isolation",
            software_version=__version__,
            probe_cc=self.vantage.probe_cc,
            probe_asn=self.vantage.probe_asn,
            vantage=self.vantage.label,
            platform=self.platform,
            role=role,
            input=query,
            components=[p for p in query.split(separator) if p] if role == "isolation" else [query],
            category="control" if role == "truism" else None,
            tags=tags if role == "isolation" else [],
            query=sent,
            verdict=verdict,
            failure=c.failure if verdict is Verdict.failure else None,
            test_keys=TestKeys(
                signals=list(signals if signals is not None else c.signals), result_count=c.result_count,
                result_items=c.result_items, result_domains=c.result_domains[:50], control_ok=control_ok,
                attempts=fetched.attempts, soft_probe=soft_probe,
            ),
            evidence=Evidence(
                status_code=fetched.status, final_url=fetched.final_url, headers=fetched.headers,
                body_sha256=fetched.body_hash if body is not None and not fetched.truncated else None,
                body_size=size, body_truncated=truncated, redacted=fetched.redactions,
            ),
        )
        if self.store.add_measurement(m, self._body(body), extra):
            self.stored += 1
        return m


def _utc(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc)
