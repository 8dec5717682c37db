import pytest

from harness.models import Verdict
from harness.platforms.classify import classify_http, domain_of
from harness.platforms.registry import PlatformRegistry
from harness.sandbox.server import SearchOutcome, render_page


@pytest.fixture(scope="module")
def spec():
    return PlatformRegistry.default(include_cwd=False).get("sandbox")


def page(kind, domains=(), count=0):
    return render_page("q", SearchOutcome(kind=kind, domains=list(domains), count=count)).encode()


HTML = {"content-type": "text/html; charset=utf-8"}


def test_results_page_is_not_censored(spec):
    c = classify_http(spec, 200, HTML, page("results", ["sohu.com", "people.com.cn"], 12345))
    assert c.verdict is Verdict.not_censored
    assert c.result_items == 2 and c.result_count == 12345
    assert c.result_domains == ["sohu.com", "people.com.cn"]


def test_notice_page_is_hard(spec):
    c = classify_http(spec, 200, HTML, page("hard"))
    assert c.verdict is Verdict.hard and c.signals == ["legal_notice"]


def test_empty_page_is_no_results_not_censorship(spec):
    c = classify_http(spec, 200, HTML, page("empty"))
    assert c.verdict is Verdict.no_results


def test_only_authorized_sources_is_recorded_as_a_signal(spec):
    c = classify_http(spec, 200, HTML, page("results", ["people.com.cn", "xinhuanet.com"], 10))
    assert "only_authorized_sources" in c.signals


@pytest.mark.parametrize(
    "status,body,code",
    [
        (429, b"slow down", "http_429"),
        (503, b"unavailable", "http_5xx"),
        (403, b"forbidden", "http_4xx"),
        (200, "<html>请完成安全验证</html>".encode(), "captcha"),
        (200, "<html>访问过于频繁</html>".encode(), "rate_limited"),
        (200, b"<html><body>a changed layout</body></html>", "unexpected_page"),
        (200, "<html>根据相关法律法规和政策</html>".encode("gbk"), "decode_error"),
    ],
)
def test_outages_and_unreadable_pages_are_failures(spec, status, body, code):
    c = classify_http(spec, status, HTML, body)
    assert c.verdict is Verdict.failure
    assert c.failure == code


def test_captcha_wins_over_a_notice(spec):
    body = "<html>请完成安全验证 根据相关法律法规和政策</html>".encode()
    assert classify_http(spec, 200, HTML, body).failure == "captcha"


def test_charset_from_the_page_is_used(spec):
    body = '<html><meta charset="gbk"><div class="hint_boldline">根据相关法律法规和政策</div></html>'.encode("gbk")
    assert classify_http(spec, 200, {"content-type": "text/html"}, body).verdict is Verdict.hard


@pytest.mark.parametrize("value,host", [
    ("https://www.sohu.com/a/1.html", "www.sohu.com"),
    ("www.people.com.cn/a/2.html", "www.people.com.cn"),
    ("//m.weibo.cn/x", "m.weibo.cn"),
    ("XinhuaNet.com", "xinhuanet.com"),
])
def test_domain_of(value, host):
    assert domain_of(value) == host
