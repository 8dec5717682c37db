import httpx
import pytest

from harness.errors import NotFoundError
from harness.sandbox import Sandbox, load_rules
from harness.sandbox.server import HARD_NOTICE, SandboxEngine


@pytest.fixture
def engine():
    return SandboxEngine(load_rules())


def test_hard_rule_by_combination_of_substrings(engine):
    assert engine.search("天安门 坦克").kind == "hard"
    assert engine.search("北京天安门前的坦克车").kind == "hard"
    assert engine.search("天安门").kind == "results"


def test_soft_rule_keeps_only_authorized_domains(engine):
    out = engine.search("习近平")
    assert out.kind == "results"
    assert set(out.domains) <= set(engine.rules.authorized_domains)


def test_site_restriction_empties_a_soft_censored_query(engine):
    assert engine.search("的 site:sohu.com").kind == "results"
    assert engine.search("习近平 的 site:sohu.com").kind == "empty"
    assert engine.search("天气 的 site:sohu.com").kind == "results"


def test_truism_always_has_results_and_some_queries_are_genuinely_empty(engine):
    assert engine.search(engine.rules.truism).kind == "results"
    assert engine.search("zzqxw").kind == "empty"


def test_epochs_change_the_rules(engine):
    assert engine.search("李克强").kind == "results"
    engine.set_epoch("2026-11")
    assert engine.search("李克强").kind == "hard"
    with pytest.raises(NotFoundError):
        engine.set_epoch("1999")


def test_serves_real_http_on_loopback():
    with Sandbox() as sb:
        assert sb.url.startswith("http://127.0.0.1:")
        r = httpx.get(sb.url + "/s", params={"wd": "六四"})
        assert r.status_code == 200
        assert HARD_NOTICE in r.text
        r = httpx.get(sb.url + "/s", params={"wd": "天气"})
        assert 'class="result' in r.text and "为您找到相关结果约" in r.text
        r = httpx.post(sb.url + "/_sandbox/epoch", params={"name": "2026-11"})
        assert r.json() == {"epoch": "2026-11"}
        assert httpx.get(sb.url + "/_sandbox/state").json()["index"] == 1
        assert sb.queries["六四"] == 1


def test_pages_escape_the_query():
    with Sandbox() as sb:
        r = httpx.get(sb.url + "/s", params={"wd": "<script>alert(1)</script>"})
        assert "<script>alert(1)" not in r.text
