"""The measurement method against the sandbox over real sockets: controls, soft test,
flip retest, evidence, authorized-domain profile, reclassify, adapters."""

from __future__ import annotations

import hashlib
import json
import textwrap
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from harness.analysis.reclassify import batches, latest_verdicts, reclassify_run
from harness.models import Verdict
from harness.operations.runs import RunRequest, execute, prepare
from harness.platforms.adapters import BuiltRequest, register_adapter, unregister_adapter
from harness.platforms.classification import Classification
from harness.platforms.registry import BUILTIN_DIR, PlatformRegistry
from harness.store.sqlite import Store

from .conftest import FIXTURES, fast_options, run_cli

KEYWORDS = FIXTURES / "keywords"


def probe_set(tmp_path: Path, platform: str = "sandbox", every: int = 5, options: str = "", lists: str = "[controls]",
              extra: str = "") -> Path:
    path = tmp_path / f"ps-{platform}.yaml"
    path.write_text(textwrap.dedent(f"""\
        name: method-{platform}
        keywords:
          - list: {KEYWORDS / 'mini.yaml'}
        platforms:
          - name: {platform}
            rate_limit: {{interval_s: 0, jitter: 0, concurrency: 1}}
            {options}
        controls: {{every: {every}, lists: {lists}}}
        timeout_s: 5
        retries: 1
        {extra}
        """))
    return path


def spec_variant(tmp_path: Path, name: str, edit) -> Path:
    """A copy of the sandbox spec under another name, edited as a researcher would."""
    d = tmp_path / "platforms"
    d.mkdir(exist_ok=True)
    text = (BUILTIN_DIR / "sandbox.yaml").read_text().replace("name: sandbox", f"name: {name}")
    (d / f"{name}.yaml").write_text(edit(text))
    return d


def run(ps: Path, store: Path, sb, platform_dirs=(), name: str = "sandbox", new: bool = False, **opts):
    req = RunRequest(ps, store, tuple(platform_dirs), base_urls={name: sb.url}, new=new, options=fast_options(**opts))
    return execute(req, prepare(req))


def measurements(store: Path, run_id: str, role: str | None = "probe"):
    with Store(store, readonly=True) as st:
        return [m for m in st.measurements(run_id) if role is None or m.role == role]


# --------------------------------------------------------------------------- controls


def test_a_platform_recovers_after_its_truism_failed_and_no_probe_is_lost(sandbox, store_path, tmp_path):
    """Regression: a failed truism used to mark every later probe control_failed, forever; then
    a whole window of probes. Now nothing is sent while the truism fails, and nothing is lost."""
    truisms = {"n": 0}

    def responder(handler, query):
        if query == "的":
            truisms["n"] += 1
            if truisms["n"] <= 4:  # both attempts (each sent twice: retries 1) fail
                handler.send_body(503, b"down", "text/plain")
                return True
        return False

    sandbox.responder = responder
    notices = []
    summary = run(probe_set(tmp_path, every=4, lists="[]"), store_path, sandbox, control_attempts=2,
                  on_notice=notices.append)
    ms = measurements(store_path, summary.run_id)
    assert summary.status == "complete" and not summary.stopped
    assert not [m for m in ms if m.failure == "control_failed"]
    later = [m for m in ms if m.failure is None]
    assert len(later) == 12 and all(m.test_keys.control_ok and m.test_keys.control_id for m in later)
    assert [n.kind for n in notices] == ["unhealthy", "recovered"]  # said once each, not per back-off
    truism_ids = {m.measurement_id for m in measurements(store_path, summary.run_id, "truism")}
    assert {m.test_keys.control_id for m in later} <= truism_ids


def test_silent_empty_is_hard_only_while_the_control_works(sandbox, store_path, tmp_path):
    # a platform that shows no notice: an empty answer to term + truism is the only sign
    d = spec_variant(tmp_path, "silent", lambda t: t.replace('  hard:\n    - {text: "根据相关法律法规和政策", name: legal_notice}\n', "")
                     .replace("truism: \"的\"", "truism: \"的\"\nhard_needs_truism: true")
                     .replace("  no_results:", "  page_ok:\n    - {css: \"#content_left\", name: results_container}\n  no_results:"))
    state = {"closing_fails": False}

    def responder(handler, query):
        if query == "的" and state["closing_fails"]:
            handler.send_body(503, b"down", "text/plain")
            return True
        if query == "六四 的":
            state["closing_fails"] = True  # the platform goes down right after the silent-empty answer
        return False

    summary = run(probe_set(tmp_path, "silent", every=50, lists="[]"), store_path, sandbox, [d], name="silent")
    by = {m.input: m for m in measurements(store_path, summary.run_id)}
    assert by["法轮功"].verdict is Verdict.hard and "silent_empty_with_truism" in by["法轮功"].test_keys.signals
    assert by["法轮功"].query == "法轮功 的" and by["法轮功"].test_keys.sent_with_truism
    assert by["天气"].verdict is Verdict.not_censored
    sandbox.responder = responder
    second = run(probe_set(tmp_path, "silent", every=50, lists="[]"), store_path, sandbox, [d], name="silent", new=True)
    m = {m.input: m for m in measurements(store_path, second.run_id)}["六四"]
    assert m.verdict is Verdict.failure and m.failure == "control_failed"
    assert "closing_truism_failed" in m.test_keys.signals


# --------------------------------------------------------------------------- soft test


def test_soft_test_keeps_the_soft_probe_as_evidence(sandbox, store_path, tmp_path):
    summary = run(probe_set(tmp_path), store_path, sandbox)
    by = {m.input: m for m in measurements(store_path, summary.run_id)}
    soft = by["习近平"]
    assert soft.verdict is Verdict.soft and "soft_restricted_truism_empty" in soft.test_keys.signals
    info = soft.test_keys.soft_probe
    assert info["query"] == "习近平 的 site:sohu.com" and info["verdict"] == "no_results"
    with Store(store_path, readonly=True) as st:
        body = st.get_body(info["stored_body_sha256"])
    assert hashlib.sha256(body).hexdigest() == info["body_sha256"] and "抱歉，没有找到" in body.decode()
    assert by["天气"].verdict is Verdict.not_censored and by["天气"].test_keys.soft_probe["verdict"] == "not_censored"


def test_soft_test_without_a_working_restricted_truism_is_a_failure(sandbox, store_path, tmp_path):
    def responder(handler, query):
        if query.startswith("的 site:"):
            handler.send_body(200, "<div class='nors'>抱歉，没有找到</div>".encode(), "text/html; charset=utf-8")
            return True
        return False

    sandbox.responder = responder
    summary = run(probe_set(tmp_path), store_path, sandbox)
    by = {m.input: m for m in measurements(store_path, summary.run_id)}
    assert by["天气"].verdict is Verdict.failure and by["天气"].failure == "soft_control_failed"
    assert by["六四"].verdict is Verdict.hard  # the hard test does not need the soft control
    assert summary.counts["sandbox"]["soft"] == 0


# --------------------------------------------------------------------------- flip retest


def test_an_unconfirmed_flip_keeps_both_answers(sandbox, store_path, tmp_path):
    ps = probe_set(tmp_path)
    run(ps, store_path, sandbox)
    calls = {"n": 0}

    def hard_once(handler, query):
        if query == "白纸":
            calls["n"] += 1
            if calls["n"] == 1:
                handler.send_body(200, "<div class='hint_boldline'>根据相关法律法规和政策</div>".encode(),
                                  "text/html; charset=utf-8")
                return True
        return False

    sandbox.responder = hard_once
    second = run(ps, store_path, sandbox)
    m = {m.input: m for m in measurements(store_path, second.run_id)}["白纸"]
    assert m.verdict is Verdict.not_censored and m.test_keys.retested and m.test_keys.confirmed is False
    first = m.test_keys.retest_of
    assert first["verdict"] == "hard" and first["last_known"] == "not_censored"
    with Store(store_path, readonly=True) as st:
        assert "根据相关法律法规和政策" in st.get_body(first["stored_body_sha256"]).decode()


def test_a_confirmed_flip_records_what_it_flipped_from(sandbox, store_path, tmp_path):
    ps = probe_set(tmp_path)
    run(ps, store_path, sandbox)
    sandbox.set_epoch(1)
    second = run(ps, store_path, sandbox)
    by = {m.input: m for m in measurements(store_path, second.run_id)}
    assert by["李克强"].verdict is Verdict.hard and by["李克强"].test_keys.confirmed is True
    assert by["李克强"].test_keys.retest_of["last_known"] == "not_censored"
    assert by["达赖喇嘛"].verdict is Verdict.soft and by["达赖喇嘛"].test_keys.confirmed is True
    assert by["六四"].test_keys.retest_of is None


# --------------------------------------------------------------------------- evidence


def test_bodies_over_the_storage_cap_keep_their_hash_and_a_prefix(sandbox, store_path, tmp_path):
    summary = run(probe_set(tmp_path), store_path, sandbox, max_stored_body_bytes=600)
    with Store(store_path, readonly=True) as st:
        ms = list(st.measurements(summary.run_id, role="probe"))
        assert sum(m.evidence.body_truncated for m in ms) >= 6
        for m in ms:
            ev = m.evidence
            stored = st.get_body(ev.stored_key)
            assert ev.body_truncated == (ev.body_size > 600)
            if not ev.body_truncated:
                assert hashlib.sha256(stored).hexdigest() == ev.body_sha256
                continue
            assert len(stored) == 600
            assert ev.body_sha256 != ev.stored_body_sha256 == hashlib.sha256(stored).hexdigest()
            assert ev.headers["content-type"].startswith("text/html") and "date" in ev.headers


def test_a_body_over_max_body_bytes_is_a_failure_with_its_prefix(sandbox, store_path, tmp_path):
    d = spec_variant(tmp_path, "small", lambda t: t + "max_body_bytes: 8000\n")
    big = ("<div class='nums'>x</div>" + "<div class='result'>结果</div>" * 800).encode()

    def responder(handler, query):
        if query == "六四":
            handler.send_body(200, big, "text/html; charset=utf-8")
            return True
        return False

    sandbox.responder = responder
    summary = run(probe_set(tmp_path, "small"), store_path, sandbox, [d], name="small")
    m = {m.input: m for m in measurements(store_path, summary.run_id)}["六四"]
    assert m.failure == "body_too_large" and m.evidence.body_truncated and m.evidence.body_size > 8000
    with Store(store_path, readonly=True) as st:
        assert st.get_body(m.evidence.stored_key) == big[:8000]


# --------------------------------------------------------------------------- reclassify


def test_reclassify_reapplies_current_specs_without_probing_or_rewriting(sandbox, store_path, tmp_path):
    summary = run(probe_set(tmp_path), store_path, sandbox)
    with Store(store_path, readonly=True) as st:
        before = {m.measurement_id: m.model_dump_json() for m in st.measurements(summary.run_id)}
    sent_before = sum(sandbox.queries.values())
    # unchanged specs: nothing changes
    with Store(store_path) as st:
        same = reclassify_run(st, summary.run_id, PlatformRegistry.default(include_cwd=False))
    assert same.changed == 0 and same.examined == len(before)
    # a researcher repairs the spec: the notice is now matched by its box (same verdicts, another signal)
    d = spec_variant(tmp_path, "sandbox", lambda t: t.replace('{text: "根据相关法律法规和政策", name: legal_notice}',
                                                              '{css: "div.hint_boldline", name: notice_box}'))
    with Store(store_path) as st:
        renamed = reclassify_run(st, summary.run_id, PlatformRegistry.default([d], include_cwd=False))
    assert renamed.changed == 0 and renamed.spec_sha256["sandbox"] != same.spec_sha256["sandbox"]
    hard_terms = {m.input for m in measurements(store_path, summary.run_id) if m.verdict is Verdict.hard}
    d2 = tmp_path / "p2"
    d2.mkdir()
    # now drop the hard notice entirely: hard pages become unexpected (a changed layout, not a verdict)
    (d2 / "sandbox.yaml").write_text((BUILTIN_DIR / "sandbox.yaml").read_text().replace(
        '  hard:\n    - {text: "根据相关法律法规和政策", name: legal_notice}\n', ""))
    res = run_cli("reclassify", summary.run_id[:12], "--store", str(store_path), "--specs", str(d2), "--json")
    out = json.loads(res.stdout)
    changed = {c["input"]: c for c in out["changes"] if c["role"] == "probe"}
    assert set(changed) == hard_terms
    assert all(c["old_verdict"] == "hard" and c["new_failure"] == "unexpected_page" for c in changed.values())
    assert sum(sandbox.queries.values()) == sent_before  # nothing was sent
    with Store(store_path, readonly=True) as st:
        after = {m.measurement_id: m.model_dump_json() for m in st.measurements(summary.run_id)}
        assert after == before  # the original evidence is never rewritten
        latest = latest_verdicts(st, summary.run_id)
        assert len(batches(st, summary.run_id)) == 3
    some = next(iter(changed.values()))
    assert latest[some["measurement_id"]] == ("failure", "unexpected_page")
    with Store(store_path) as st:
        dry = reclassify_run(st, summary.run_id, PlatformRegistry.default([d2], include_cwd=False), dry_run=True)
        assert dry.changed == len(changed) + sum(1 for c in out["changes"] if c["role"] != "probe")
        assert len(batches(st, summary.run_id)) == 3  # a dry run records nothing


def test_reclassify_says_what_it_cannot_reclassify(sandbox, store_path, tmp_path):
    # every answer but the truism's is a dropped connection: no status, no body to re-read
    sandbox.responder = lambda h, q: (setattr(h, "close_connection", True) or True) if q != "的" else False
    summary = run(probe_set(tmp_path, lists="[]"), store_path, sandbox)
    with Store(store_path) as st:
        res = reclassify_run(st, summary.run_id, PlatformRegistry.default(include_cwd=False))
    assert res.changed == 0 and res.kept.get("not_answered") == 12


def test_reclassify_unknown_run_is_a_not_found_error(store_path, sandbox, tmp_path):
    from harness.errors import NotFoundError

    run(probe_set(tmp_path), store_path, sandbox)
    with Store(store_path) as st, pytest.raises(NotFoundError, match="no run 'nope'"):
        reclassify_run(st, "nope", PlatformRegistry.default(include_cwd=False))


# --------------------------------------------------------------------------- authorized-domain profile


def test_authorized_domain_profile_is_a_term_by_domain_matrix(sandbox, store_path, tmp_path):
    ps = probe_set(tmp_path, options="options: {domain_profile: [people.com.cn, sohu.com, xinhuanet.com, zhihu.com]}")
    summary = run(ps, store_path, sandbox)
    from harness.store.domain_profile import load_profiles

    with Store(store_path, readonly=True) as st:
        [prof] = [p.as_dict() for p in load_profiles(st, summary.run_id)]
    soft_terms = {m.input for m in measurements(store_path, summary.run_id) if m.verdict is Verdict.soft}
    assert set(prof["terms"]) == soft_terms and "习近平" in soft_terms
    assert prof["domains"] == ["people.com.cn", "sohu.com", "xinhuanet.com", "zhihu.com"]
    for term in soft_terms:
        assert prof["cells"][term] == {"people.com.cn": "allowed", "sohu.com": "withheld",
                                       "xinhuanet.com": "allowed", "zhihu.com": "withheld"}
    table = run_cli("platforms", "profile", summary.run_id[:10], "--store", str(store_path))
    assert table.returncode == 0, table.stderr
    assert "习近平" in table.stdout and "withheld" in table.stdout and "people.com.cn" in table.stdout


# --------------------------------------------------------------------------- adapters


class SigningAdapter:
    """A test adapter: signs every request and reads a platform-specific header."""

    def build_request(self, spec, query: str, request: BuiltRequest) -> BuiltRequest:
        request.headers["X-Signature"] = hashlib.sha256(query.encode()).hexdigest()[:16]
        return request

    def classify(self, spec, status, headers, body) -> Classification | None:
        if b"SIGNATURE-REJECTED" in body:
            return Classification(Verdict.failure, "session_invalid", ["adapter:signature_rejected"])
        return None


def test_a_python_adapter_from_an_entry_point_signs_and_classifies(sandbox, store_path, tmp_path, monkeypatch):
    import harness.platforms.adapters as adapters

    ep = EntryPoint(name="signing", value="tests.test_method:SigningAdapter", group=adapters.ENTRY_POINT_GROUP)
    monkeypatch.setattr(adapters, "entry_points", lambda group: [ep] if group == adapters.ENTRY_POINT_GROUP else [])
    d = spec_variant(tmp_path, "signed", lambda t: t + "adapter: signing\n")
    seen = {}

    def responder(handler, query):
        seen[query] = handler.headers.get("X-Signature")
        if query == "白纸":
            handler.send_body(200, b"SIGNATURE-REJECTED", "text/html")
            return True
        return False

    sandbox.responder = responder
    summary = run(probe_set(tmp_path, "signed"), store_path, sandbox, [d], name="signed")
    assert seen["六四"] == hashlib.sha256("六四".encode()).hexdigest()[:16]
    by = {m.input: m for m in measurements(store_path, summary.run_id)}
    assert by["白纸"].failure == "session_invalid" and "adapter:signature_rejected" in by["白纸"].test_keys.signals
    assert by["六四"].verdict is Verdict.hard  # the spec's signals still decide when the adapter returns None
    adapters.unregister_adapter("signing")


def test_a_registered_adapter_that_raises_is_an_adapter_error(sandbox, store_path, tmp_path):
    class Broken:
        def classify(self, spec, status, headers, body):
            raise RuntimeError("bug")

    register_adapter("broken", Broken())
    try:
        d = spec_variant(tmp_path, "broken", lambda t: t + "adapter: broken\n")
        summary = run(probe_set(tmp_path, "broken", extra="controls: {truism: false, lists: []}").read_text()
                      and _no_controls(tmp_path, "broken"), store_path, sandbox, [d], name="broken")
        ms = measurements(store_path, summary.run_id)
        assert ms and all(m.failure == "adapter_error" for m in ms)
    finally:
        unregister_adapter("broken")


def _no_controls(tmp_path: Path, platform: str) -> Path:
    path = probe_set(tmp_path, platform)
    path.write_text(path.read_text().replace("controls: {every: 5, lists: [controls]}", "controls: {truism: false, lists: []}"))
    return path


def test_an_unknown_adapter_is_refused_before_anything_is_written(sandbox, tmp_path):
    from harness.errors import PlatformSpecError

    d = spec_variant(tmp_path, "ghost", lambda t: t + "adapter: no_such_adapter\n")
    req = RunRequest(probe_set(tmp_path, "ghost"), tmp_path / "g.db", (d,), base_urls={"ghost": sandbox.url})
    with pytest.raises(PlatformSpecError) as exc:
        prepare(req)
    assert "no_such_adapter" in str(exc.value) and "harness.platforms" in str(exc.value)
    assert str(d / "ghost.yaml") in str(exc.value)
    assert not (tmp_path / "g.db").exists()
