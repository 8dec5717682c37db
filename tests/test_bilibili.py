"""Bilibili: the wbi signer on the public test vector, and the built-in spec against a loopback
server that emulates finger/spi, nav and the wbi search endpoint and CHECKS the signature and
the buvid3 cookie (a wrong signature gets the answer the real API gives: code 0 with v_voucher)."""

from __future__ import annotations

import hashlib
import json
import time
from urllib.parse import parse_qsl

import pytest

from harness.models import Verdict
from harness.platforms import bilibili

from .conftest import FIXTURES
from .platform_replay import Replay, Request, run_builtin

PAGES = FIXTURES / "platforms" / "bilibili"
VECTOR = json.loads((PAGES / "wbi_test_vector.json").read_text())
SPI = json.loads((PAGES / "finger_spi.json").read_text())
BUVID3 = SPI["data"]["b_3"]


def test_the_signer_reproduces_the_public_test_vector():
    assert bilibili.mixin_key(VECTOR["img_key"], VECTOR["sub_key"]) == VECTOR["mixin_key"]
    assert bilibili.key_from_url(VECTOR["img_url"]) == VECTOR["img_key"]
    query = bilibili.signed_query(VECTOR["params"], VECTOR["wts"])
    assert query + VECTOR["mixin_key"] == VECTOR["string_to_hash"]
    signed = bilibili.sign_params(VECTOR["params"], VECTOR["img_key"], VECTOR["sub_key"], VECTOR["wts"])
    assert signed["w_rid"] == VECTOR["w_rid"] and signed["wts"] == str(VECTOR["wts"])
    enc = VECTOR["encoding_example_in_doc"]
    assert "&".join(f"{k}={bilibili.encode_value(enc['params'][k])}" for k in sorted(enc["params"])) == enc["encoded"]
    for extra in VECTOR["_extra_vectors_computed_here_not_in_any_doc"]:
        params = {k: v for k, v in extra["params"].items() if k != "wts"}
        assert bilibili.signed_query(params, extra["params"]["wts"]) == extra["query"]
        assert bilibili.sign_params(params, VECTOR["img_key"], VECTOR["sub_key"], extra["params"]["wts"])["w_rid"] \
            == extra["w_rid"]


def test_the_table_is_a_permutation_and_filtered_characters_are_dropped():
    assert sorted(bilibili.MIXIN_KEY_ENC_TAB) == list(range(64))
    assert bilibili.encode_value("a(b)c!'*d e") == "abcd%20e"
    url = bilibili.sign_url("https://x/s?search_type=video&keyword=%E5%85%AD%20(%E5%9B%9B)&page=1",
                            VECTOR["img_key"], VECTOR["sub_key"], 1702204169)
    assert url.startswith("https://x/s?search_type=video&keyword=%E5%85%AD%20(%E5%9B%9B)&page=1&wts=1702204169&w_rid=")
    with pytest.raises(ValueError):
        bilibili.mixin_key("short", VECTOR["sub_key"])


# --------------------------------------------------------------------------- the loopback platform

# term -> (status, content type, fixture page); the truism and the control term get results
PAGE_FOR = {
    "结果": (200, "application/json", "not_censored.json"),
    "空": (200, "application/json", "no_results.json"),
    "空二": (200, "application/json", "no_results_result_null.json"),
    "拦截": (412, "application/json", "request_intercepted.json"),
    "风控页": (412, "text/html; charset=utf-8", "http412_error_page.html"),
    "风控": (200, "application/json", "risk_control_352.json"),
    "凭证": (200, "application/json", "v_voucher_code0.json"),
    "非法": (200, "application/json", "risk_control_401.json"),
    "未知": (200, "application/json", "unknown_code.json"),
}
EXPECTED = {
    "结果": ("not_censored", None, "results"),
    "空": ("hard", None, "silent_empty_with_truism"),
    "空二": ("hard", None, "silent_empty_with_truism"),
    "拦截": ("failure", "session_invalid", "request_intercepted"),
    "风控页": ("failure", "session_invalid", "risk_control_page"),
    "风控": ("failure", "session_invalid", "risk_control"),
    "凭证": ("failure", "session_invalid", "v_voucher"),
    "非法": ("failure", "session_invalid", "illegal_access"),
    "未知": ("failure", "unexpected_page", None),
    "天气": ("not_censored", None, "results"),
}


def page(name: str, status: int = 200, ctype: str = "application/json") -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": ctype}, (PAGES / name).read_bytes()


def bilibili_server(req: Request) -> tuple[int, dict[str, str], bytes]:
    """finger/spi, nav and the signed search, as the real API answers them (fixture pages)."""
    if req.path == "/x/frontend/finger/spi":
        return page("finger_spi.json")
    if req.path == "/x/web-interface/nav":
        return page("nav_wbi_img.json")
    if req.path != "/x/web-interface/wbi/search/type":
        return 404, {"Content-Type": "text/plain"}, b"not found"
    if req.cookies().get("buvid3") != BUVID3 or not req.headers.get("referer", "").startswith("https://search.bilibili.com"):
        return page("request_intercepted.json", 412)  # search_request.md: cookies and Referer are checked
    params = dict(parse_qsl(req.raw_query, keep_blank_values=True))
    w_rid, wts = params.pop("w_rid", None), params.pop("wts", None)
    if w_rid is None or wts is None or abs(int(wts) - time.time()) > 300:
        return page("v_voucher_code0.json")
    expected = hashlib.md5((bilibili.signed_query(params, int(wts)) + VECTOR["mixin_key"]).encode()).hexdigest()
    if w_rid != expected:
        return page("v_voucher_code0.json")  # wbi.md: a missing or wrong signature answers v_voucher
    term = params["keyword"].removesuffix(" 的")
    if params["keyword"] == "的" or term == "天气":
        return page("not_censored.json")
    status, ctype, name = PAGE_FOR[term]
    return page(name, status, ctype)


def test_a_run_of_the_builtin_spec_gives_the_right_verdict_for_every_page(tmp_path):
    with Replay(bilibili_server) as server:
        probes, truisms, st = run_builtin("bilibili", server.url, list(PAGE_FOR), tmp_path)
        searches = [r for r in server.requests if r.path.endswith("/search/type")]
        spi_calls = [r for r in server.requests if r.path.endswith("/finger/spi")]
    assert truisms and all(t.verdict is Verdict.not_censored for t in truisms)
    for term, (verdict, code, signal) in EXPECTED.items():
        m = probes[term]
        assert (m.verdict.value, m.failure) == (verdict, code), (term, m.verdict, m.failure, m.test_keys.signals)
        if signal:
            assert signal in m.test_keys.signals, (term, m.test_keys.signals)
        assert m.test_keys.attempts == 1, "risk control is not retried"
    # every search carried the cookie the session got from finger/spi and a valid signature (else: v_voucher)
    assert all(r.cookies().get("buvid3") == BUVID3 and "w_rid" in r.params for r in searches)
    # the first rejection re-primed the session once; later ones within REPRIME_MIN_S did not
    assert len(spi_calls) == 2
    # the primed cookies never reach the store: not in URLs, headers, run metadata or bodies
    st.close()
    stored = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and "replay.db" in p.name)
    for secret in (BUVID3, SPI["data"]["b_4"]):
        assert secret.encode() not in stored
    assert all("w_rid=REDACTED" in (m.evidence.final_url or "w_rid=REDACTED") for m in probes.values())


def test_a_wrong_signature_is_refused_by_the_server_and_never_read_as_a_verdict(tmp_path, monkeypatch):
    monkeypatch.setattr(bilibili, "mixin_key", lambda img, sub: "0" * 32)
    with Replay(bilibili_server) as server:
        probes, truisms, st = run_builtin("bilibili", server.url, ["结果", "空"], tmp_path)
        st.close()
    assert truisms and all(t.failure == "session_invalid" and "v_voucher" in t.test_keys.signals for t in truisms)
    assert not probes  # the truism never works: the platform is given up and no probe is sent (issue 12a)


def test_a_session_that_cannot_be_primed_is_session_invalid(tmp_path):
    def no_spi(req: Request) -> tuple[int, dict[str, str], bytes]:
        if req.path == "/x/frontend/finger/spi":
            return page("request_intercepted.json", 412)
        return bilibili_server(req)

    with Replay(no_spi) as server:
        probes, truisms, st = run_builtin("bilibili", server.url, ["结果"], tmp_path)
        st.close()
        searched = [r for r in server.requests if r.path.endswith("/search/type")]
    assert truisms[0].failure == "session_invalid" and "prime:finger_spi:status:412" in truisms[0].test_keys.signals
    assert not searched, "no search is sent without a session"
