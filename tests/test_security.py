"""The harness only talks to the spec's origin (or its proxy), and caps what it reads and inflates."""

from __future__ import annotations

import gzip
import threading
import time
from pathlib import Path

import pytest

from harness.models import Verdict
from harness.sandbox import Sandbox
from harness.sandbox.faults import FaultInjector, FaultKind, FaultPlan, gzip_bomb
from harness.store.sqlite import Store

from .conftest import run_probe_set
from .test_faults import RssSampler, _write_probe_set, probes

SECRET = "S3CR3T-marker-7f1c"


def _spec_with_credentials(tmp_path: Path, probe_set: Path) -> Path:
    """The sandbox spec, plus an Authorization header and a cookie sent with every query."""
    builtin = Path(__file__).resolve().parents[1] / "harness" / "platforms" / "builtin" / "sandbox.yaml"
    text = builtin.read_text(encoding="utf-8").replace(
        '  params: {wd: "{query}"}',
        f'  params: {{wd: "{{query}}"}}\n  headers: {{Authorization: "Bearer {SECRET}", Cookie: "sid={SECRET}"}}',
    )
    assert SECRET in text
    spec = tmp_path / "sandbox-auth.yaml"
    spec.write_text(text, encoding="utf-8")
    ps_text = probe_set.read_text(encoding="utf-8").replace("- name: sandbox", f"- name: sandbox\n  spec: {spec}")
    probe_set.write_text(ps_text, encoding="utf-8")
    return probe_set


@pytest.mark.parametrize("where", ["other_host", "same_host_other_port", "https_downgrade_upgrade"])
def test_a_redirect_off_the_specs_origin_is_a_failure_and_is_never_followed(where, sandbox, tmp_path, store_path):
    hits: list[tuple[str, str | None]] = []
    with Sandbox() as other:
        other.responder = lambda h, q: hits.append((q, h.headers.get("Authorization"))) or False
        target = {
            "other_host": other.url.replace("127.0.0.1", "localhost"),
            "same_host_other_port": other.url,
            "https_downgrade_upgrade": sandbox.url.replace("http://", "https://"),
        }[where]

        def responder(h, q):
            if q == "天气":
                h.send_body(302, b"", "text/plain", {"Location": f"{target}/s?wd=x&token={SECRET}"})
                return True
            return False

        sandbox.responder = responder
        ps = _spec_with_credentials(tmp_path, _write_probe_set(tmp_path, terms=["天气", "足球"], controls=False,
                                                               retries=1))
        summary = run_probe_set(ps, store_path, sandbox)
    ms = {m.input: m for m in probes(store_path, summary.run_id)}
    assert ms["天气"].verdict is Verdict.failure and ms["天气"].failure == "redirect_offsite"
    assert ms["足球"].verdict is Verdict.not_censored
    assert hits == []  # the credentials never left for another origin
    assert SECRET.encode() not in store_path.read_bytes()
    for extra in store_path.parent.glob(store_path.name + "-*"):  # WAL, SHM
        assert SECRET.encode() not in extra.read_bytes()


def test_a_same_origin_redirect_is_followed_and_its_tokens_are_not_kept(sandbox, tmp_path, store_path):
    def responder(h, q):
        if q == "天气" and "token=" not in h.path:
            h.send_body(302, b"", "text/plain", {"Location": f"/s?wd=%E5%A4%A9%E6%B0%94&token={SECRET}"})
            return True
        return False

    sandbox.responder = responder
    ps = _write_probe_set(tmp_path, terms=["天气"], controls=False, retries=0)
    summary = run_probe_set(ps, store_path, sandbox)
    (m,) = probes(store_path, summary.run_id)
    assert m.verdict is Verdict.not_censored
    assert "token=REDACTED" in m.evidence.final_url
    assert SECRET.encode() not in store_path.read_bytes()


def test_a_redirect_loop_stops_after_a_few_requests(sandbox, tmp_path, store_path):
    FaultInjector(FaultPlan(rates={FaultKind.redirect_loop: 1.0})).install(sandbox)
    seen: list[float] = []
    inner = sandbox.responder
    sandbox.responder = lambda h, q: seen.append(time.monotonic()) or inner(h, q)
    ps = _write_probe_set(tmp_path, terms=["天气"], controls=False, retries=0)
    summary = run_probe_set(ps, store_path, sandbox)
    (m,) = probes(store_path, summary.run_id)
    assert m.failure == "too_many_redirects"
    assert len(seen) <= 6  # the first request and at most five redirects


def _answer(status: int, headers: dict[str, str], body: bytes, *, hold: threading.Event | None = None):
    def responder(h, q):
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(body)
        if hold is not None:
            hold.wait(60)  # more "announced" bytes never come (until the test lets go)
        h.close_connection = True
        return True

    return responder


def test_a_huge_content_length_is_capped_while_streaming_not_trusted(sandbox, tmp_path, store_path):
    """The answer announces 100 GB, sends 6 MB and then holds the connection open for longer
    than the probe's 30 s timeout: a client that read to the announced end (or to the close)
    would end in ``timeout``; one that stops at the cap says ``body_too_large`` at once. The
    failure code tells them apart, however slow the machine (no wall-clock bound)."""
    hold = threading.Event()
    sandbox.responder = _answer(200, {"Content-Type": "text/html", "Content-Length": str(10**11)},
                                b"<p>" * 2_000_000, hold=hold)
    ps = _write_probe_set(tmp_path, terms=["天气"], controls=False, retries=0, timeout_s=30)
    try:
        summary = run_probe_set(ps, store_path, sandbox)
    finally:
        hold.set()
    (m,) = probes(store_path, summary.run_id)
    assert m.failure == "body_too_large", m.failure  # stopped at the cap, did not wait for the rest
    assert m.evidence.body_truncated


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "gzip, gzip"])
def test_compressed_bombs_are_capped_after_decompression_without_inflating_them_in_memory(
        encoding, sandbox, tmp_path, store_path):
    import zlib

    if encoding == "deflate":
        comp = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS)
        body = b"".join(comp.compress(bytes(2**20)) for _ in range(256)) + comp.flush()
    elif encoding == "gzip":
        body = gzip_bomb(256 * 2**20)
    else:  # a bomb inside a bomb: 256 MB of gzip that itself inflates a thousand-fold
        body = gzip.compress(gzip_bomb(256 * 2**20), 9)
    sandbox.responder = _answer(200, {"Content-Type": "text/html; charset=utf-8", "Content-Encoding": encoding,
                                      "Content-Length": str(len(body))}, body)
    ps = _write_probe_set(tmp_path, terms=["天气", "足球", "电影", "音乐"], controls=False, retries=0, timeout_s=30,
                          concurrency=4)
    with RssSampler(0.002) as rss:
        summary = run_probe_set(ps, store_path, sandbox)
    ms = probes(store_path, summary.run_id)
    expected = "decode_error" if "," in encoding else "body_too_large"  # codings we never asked for are refused
    assert [m.failure for m in ms] == [expected] * 4
    assert rss.growth_mb < 120, rss.growth_mb
    with Store(store_path, readonly=True) as st:
        # only the capped prefix is kept as evidence (the four identical prefixes are stored once)
        sizes = [r[0] for r in st.conn.execute("SELECT size FROM bodies")]
        assert len(sizes) <= 1 and all(size <= 5_000_000 for size in sizes)
