"""Re-apply the current platform specs to stored evidence, without probing again.

Design: a measurement is never rewritten. Each ``reclassify`` is a *batch* with its own
id; for every measurement it examined, the batch stores one row in the
``reclassifications`` table: the original verdict and failure, the new ones, whether
they differ, the SHA-256 of the spec that produced the new verdict and a JSON document
with the new signals (or the reason it could not re-classify). The original measurement
document, its body and its evidence stay exactly as recorded, so a reader can always
tell what the harness concluded at probe time from what a later spec concludes, and a
bad spec edit can be undone by simply running ``reclassify`` again.

What is re-applied is the whole classification: the signals on the stored body, the
truism method (term + truism sent, empty answer, control working at the time → hard)
and the soft test (the stored soft-probe body). A watched item's page is read again with
the current version of the item spec that read it (``test_keys.item_spec``): a page stored
as ``unexpected_page`` because its meaning was unverified becomes a state once the spec says. What cannot be re-classified is said:
probes never sent (``control_failed``), answers without a body (network failures, or
``keep_bodies`` off) and bodies stored only as a capped prefix. A redirect that was not
followed is re-read from its stored status and ``Location`` through the spec's
``location`` signals (so a spec that learns a CAPTCHA host turns old ``redirect_offsite``
answers into ``captcha``).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from urllib.parse import urljoin, urlsplit

from pydantic import BaseModel, Field

from ..errors import NotFoundError
from ..failures import FailureCode
from ..models import Measurement, Verdict
from ..platforms.classification import Classification
from ..platforms.classification import failure
from ..platforms.classify import apply_soft_test, apply_truism_method, classify_http, classify_redirect, origin_of
from ..platforms.items import ItemRegistry
from ..platforms.registry import PlatformRegistry
from ..platforms.spec import PlatformSpec
from ..store.sqlite import Store, immediate_transaction, iso, utcnow


class Reclassified(BaseModel):
    measurement_id: str
    platform: str
    role: str
    input: str
    old_verdict: str
    old_failure: str | None = None
    new_verdict: str
    new_failure: str | None = None
    signals: list[str] = Field(default_factory=list)
    changed: bool = False
    note: str | None = Field(default=None, description="why the old verdict was kept (nothing to re-classify)")


class ReclassifyResult(BaseModel):
    batch_id: str
    run_id: str
    created_at: str
    examined: int = 0
    changed: int = 0
    kept: dict[str, int] = Field(default_factory=dict, description="measurements not re-classifiable, by reason")
    spec_sha256: dict[str, str] = Field(default_factory=dict)
    changes: list[Reclassified] = Field(default_factory=list)
    dry_run: bool = False


def spec_sha256(spec: PlatformSpec) -> str:
    return hashlib.sha256(spec.model_dump_json().encode()).hexdigest()


def _body(store: Store, key: str | None) -> bytes | None:
    if key is None:
        return None
    try:
        return store.get_body(key)
    except NotFoundError:
        return None


def reclassify_measurement(store: Store, spec: PlatformSpec, m: Measurement) -> Reclassified:
    base = dict(measurement_id=m.measurement_id, platform=m.platform, role=m.role, input=m.input,
                old_verdict=m.verdict.value, old_failure=m.failure)

    def kept(note: str) -> Reclassified:
        return Reclassified(**base, new_verdict=m.verdict.value, new_failure=m.failure, signals=m.test_keys.signals,
                            note=note)

    if m.failure == FailureCode.control_failed.value:
        return kept("control_failed")
    ev = m.evidence
    if ev.status_code is None:
        return kept("not_answered")
    location = ev.headers.get("location")
    if 300 <= ev.status_code < 400 and location:
        # a redirect that was not followed: read its target through the current spec's location signals
        target = urljoin(ev.final_url or spec.base_url, location)
        c = classify_redirect(spec, ev.status_code, target)
        if c is None:
            if origin_of(target) == origin_of(ev.final_url or spec.base_url):
                return kept("redirect_not_followed")
            c = failure(FailureCode.redirect_offsite, f"location:{urlsplit(target).hostname}")
        changed = (c.verdict.value, c.failure) != (m.verdict.value, m.failure)
        return Reclassified(**base, new_verdict=c.verdict.value, new_failure=c.failure, signals=c.signals,
                            changed=changed)
    if ev.body_truncated:
        return kept("body_truncated")
    body = _body(store, ev.stored_key)
    if body is None:
        return kept("no_body")
    c: Classification = classify_http(spec, ev.status_code, ev.headers, body)
    if m.role in ("probe", "control"):  # the engine applies the method to benign control terms too
        c = apply_truism_method(spec, c, sent_with_truism=m.test_keys.sent_with_truism, control_ok=m.test_keys.control_ok)
        soft = m.test_keys.soft_probe
        if soft and c.verdict is Verdict.not_censored:
            if soft.get("failure") == FailureCode.soft_control_failed.value and not soft.get("query"):
                c = apply_soft_test(c, Classification(Verdict.failure, FailureCode.soft_control_failed.value))
            else:
                key = soft.get("stored_body_sha256")
                soft_body = None if soft.get("body_truncated") else _body(store, key)
                if soft_body is not None and soft.get("status_code") is not None:
                    c = apply_soft_test(c, classify_http(spec, int(soft["status_code"]), ev.headers, soft_body))
                elif m.verdict is Verdict.soft:
                    return kept("soft_probe_without_body")
    changed = (c.verdict.value, c.failure) != (m.verdict.value, m.failure)
    return Reclassified(**base, new_verdict=c.verdict.value, new_failure=c.failure, signals=c.signals, changed=changed)


def reclassify_run(store: Store, run_id: str, registry: PlatformRegistry, *, dry_run: bool = False,
                   roles: tuple[str, ...] = ("probe", "item", "control", "truism"),
                   items: ItemRegistry | None = None) -> ReclassifyResult:
    run = store.get_run(run_id)
    result = ReclassifyResult(batch_id=uuid.uuid4().hex[:12], run_id=run.run_id, created_at=iso(utcnow()),
                              dry_run=dry_run)
    rows: list[tuple] = []
    for m in store.measurements(run.run_id):
        if m.role not in roles:
            continue
        item_spec = m.test_keys.item_spec
        if item_spec is not None:
            items = items if items is not None else ItemRegistry.default()
        if item_spec is not None and items is not None and item_spec in items:
            ispec = items.get(item_spec)
            sha = result.spec_sha256.setdefault(item_spec, hashlib.sha256(ispec.model_dump_json().encode()).hexdigest())
            r = reclassify_measurement(store, ispec.as_platform_spec(), m)
        elif item_spec is not None or m.platform not in registry:
            r = Reclassified(measurement_id=m.measurement_id, platform=m.platform, role=m.role, input=m.input,
                             old_verdict=m.verdict.value, old_failure=m.failure, new_verdict=m.verdict.value,
                             new_failure=m.failure, note="unknown_platform")
            sha = ""
        else:
            spec = registry.get(m.platform)
            sha = result.spec_sha256.setdefault(m.platform, spec_sha256(spec))
            r = reclassify_measurement(store, spec, m)
        result.examined += 1
        if r.note:
            result.kept[r.note] = result.kept.get(r.note, 0) + 1
        if r.changed:
            result.changed += 1
            result.changes.append(r)
        rows.append((result.batch_id, result.created_at, run.run_id, m.measurement_id, sha, r.old_verdict,
                     r.old_failure, r.new_verdict, r.new_failure, int(r.changed),
                     json.dumps({"signals": r.signals, "note": r.note, "role": r.role}, ensure_ascii=False)))
    if not dry_run and rows:
        c = store.conn
        with immediate_transaction(c):
            c.executemany(
                "INSERT INTO reclassifications (batch_id, created_at, run_id, measurement_id, spec_sha256, old_verdict,"
                " old_failure, new_verdict, new_failure, changed, doc) VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)
    return result


def latest_verdicts(store: Store, run_id: str) -> dict[str, tuple[str, str | None]]:
    """measurement_id → (verdict, failure) of the latest reclassification batch of a run (empty if none)."""
    row = store.conn.execute(
        "SELECT batch_id FROM reclassifications WHERE run_id=? ORDER BY created_at DESC, rowid DESC LIMIT 1", (run_id,)
    ).fetchone()
    if row is None:
        return {}
    return {r[0]: (r[1], r[2]) for r in store.conn.execute(
        "SELECT measurement_id, new_verdict, new_failure FROM reclassifications WHERE batch_id=?", (row[0],))}


def batches(store: Store, run_id: str) -> list[dict]:
    return [dict(r) for r in store.conn.execute(
        "SELECT batch_id, MIN(created_at) AS created_at, COUNT(*) AS examined, SUM(changed) AS changed"
        " FROM reclassifications WHERE run_id=? GROUP BY batch_id ORDER BY created_at", (run_id,))]
