"""`harness run` with the built-in specs against a loopback server that replays each platform's
fixture pages (real markup from public evidence, redirect answers included): every page gives
the verdict and failure code its ``expected.yaml`` names.

Each case of ``tests/fixtures/platforms/<name>/expected.yaml`` becomes one probe term; the
server answers that term (alone, or + truism on platforms that censor silently) with the case's
file, the truism and the restricted truism with a results page, and the soft probe with the
case's file (or, for ``after:`` cases, the file the soft probe got).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from harness.models import Verdict
from harness.operations.runs import RunRequest, execute, prepare
from harness.platforms.fixtures import answer_of
from harness.platforms.registry import BUILTIN_DIR, PlatformRegistry
from harness.store.sqlite import Store

from .conftest import FIXTURES, fast_options
from .platform_replay import Replay, Request

PAGES = FIXTURES / "platforms"
MINE = ["baidu", "baidu_zhidao", "bing", "jingdong", "sogou", "weibo", "weixin_sogou"]
# a page with results each platform's truism and restricted truism get
RESULTS_PAGE = {"baidu": "not_censored_2018.html", "baidu_zhidao": "not_censored.html",
                "bing": "cn_legal_notice_benign.html", "jingdong": "not_censored_2018.html",
                "sogou": "not_censored_2017.html", "weibo": "not_censored.html",
                "weixin_sogou": "results_current.html"}
PARAM = {"baidu": "wd", "baidu_zhidao": "word", "bing": "q", "jingdong": "keyword", "sogou": "query", "weibo": "q",
         "weixin_sogou": "query"}


def answer(platform: str, name: str) -> tuple[int, dict[str, str], bytes]:
    """What the server sends for a fixture file: a redirect, or the page with its recorded status/headers."""
    status, headers, body = answer_of(PAGES / platform / name)
    return status, {k.title(): v for k, v in headers.items()}, body


def run_cases(platform: str, tmp_path: Path):
    spec = PlatformRegistry.default(include_cwd=False).get(platform)
    cases = yaml.safe_load((PAGES / platform / "expected.yaml").read_text())
    terms = {f"t{i:02d}": c for i, c in enumerate(cases)}
    then_truism: list[str] = []

    def handler(req: Request) -> tuple[int, dict[str, str], bytes]:
        from urllib.parse import unquote_plus

        raw = dict(p.partition("=")[::2] for p in req.raw_query.split("&"))
        query = unquote_plus(raw.get(PARAM[platform], ""), encoding=spec.request.query_encoding)
        words = query.split()
        site = any(w.startswith("site:") for w in words)
        term = next((w for w in words if w in terms), None)
        if term is None:  # the truism, or the restricted truism (soft-test control)
            if then_truism and not site:
                return answer(platform, then_truism.pop())
            return answer(platform, RESULTS_PAGE[platform])
        case = terms[term]
        if site:  # the soft probe
            return answer(platform, case["file"] if "after" in case else RESULTS_PAGE[platform])
        if "then_truism" in case:
            then_truism.append(case["then_truism"])
        return answer(platform, case.get("after", case["file"]))

    kw = tmp_path / "terms.yaml"
    kw.write_text("name: terms\nentries:\n" + "".join(f"  - {{term: {t}, category: other}}\n" for t in terms))
    ps = tmp_path / "ps.yaml"
    ps.write_text(textwrap.dedent(f"""\
        name: fixtures-{platform}
        keywords: [{{list: {kw}}}]
        platforms: [{{name: {platform}}}]
        controls: {{every: 100, lists: [], positive: {{lists: []}}, drift_after: 100}}
        rate_limit: {{interval_s: 0, jitter: 0, concurrency: 1}}
        timeout_s: 10
        retries: 1
        flip_retest: false
        """))
    with Replay(handler) as server:
        req = RunRequest(ps, tmp_path / "s.db", base_urls={platform: server.url}, new=True, options=fast_options())
        summary = execute(req, prepare(req))
    with Store(tmp_path / "s.db", readonly=True) as st:
        by_term = {m.input: m for m in st.measurements(summary.run_id, role="probe")}
    return summary, terms, by_term


@pytest.mark.parametrize("platform", MINE)
def test_harness_run_gives_every_fixture_page_its_verdict_and_failure_code(platform, tmp_path):
    summary, terms, by_term = run_cases(platform, tmp_path)
    assert summary.status == "complete" and not summary.stopped
    wrong = []
    for term, case in terms.items():
        m = by_term[term]
        want = case.get("run", case["verdict"] if case["verdict"] != "failure" else f"failure:{case['failure']}")
        got = m.verdict.value if m.verdict is not Verdict.failure else f"failure:{m.failure}"
        if got != want:
            wrong.append((case["file"], case.get("after"), want, got, m.test_keys.signals))
    assert not wrong, wrong
    # retried CAPTCHAs, a login wall never retried
    for term, case in terms.items():
        m = by_term[term]
        if m.failure == "captcha":
            assert m.test_keys.attempts == 2, case
        if m.failure in ("session_required", "query_too_long"):
            assert m.test_keys.attempts == 1, case


def test_baidu_never_sends_a_query_longer_than_its_38_character_limit(tmp_path):
    """LINX (2015, 2017): Baidu ignores the words after 38 characters; the verdict would be about another query."""
    from .platform_replay import run_builtin

    long_term, mid_term, short_term = "六" * 39, "四" * 25, "五" * 20
    with Replay(lambda req: answer("baidu", RESULTS_PAGE["baidu"])) as server:
        probes, _, st = run_builtin("baidu", server.url, [long_term, mid_term, short_term], tmp_path)
        st.close()
        sent = [r.params.get("wd", "") for r in server.requests]
    assert (probes[long_term].failure, probes[long_term].test_keys.signals) == ("query_too_long", ["chars:39>38"])
    assert not any(long_term in q for q in sent)
    # 25 characters go out, but the soft probe (term 的 site:sohu.com, 41) would be cut: no soft test, no verdict
    assert mid_term in sent and probes[mid_term].failure == "query_too_long"
    assert probes[short_term].verdict is Verdict.not_censored  # 20 + 16 = 36: the soft test runs


def test_every_fixture_page_of_every_builtin_platform_goes_through_a_run():
    """No page is checked by classification alone: the platforms whose run needs a server of its
    own (a signed API, a JSON payload, the browser) name every page of their expected.yaml in
    their run test's answer table; the others run above, case by case."""
    from . import test_bilibili, test_douyin, test_toutiao

    served = {"bilibili": {name for _, _, name in test_bilibili.PAGE_FOR.values()},
              "toutiao": set(test_toutiao.PAGE_FOR.values()),
              "douyin": set(test_douyin.ANSWER_FOR.values())}
    builtin = {p.stem for p in BUILTIN_DIR.glob("*.yaml")} - {"sandbox", "sandbox_browser"}
    assert builtin == set(MINE) | set(served), "a built-in platform without a run test of its fixture pages"
    for platform, names in served.items():
        files = {c["file"] for c in yaml.safe_load((PAGES / platform / "expected.yaml").read_text())}
        assert files <= names, (platform, files - names)
    for platform in MINE:  # every file of the folder is a case (redirects included)
        files = {c["file"] for c in yaml.safe_load((PAGES / platform / "expected.yaml").read_text())}
        pages = {p.name for p in (PAGES / platform).iterdir() if p.name not in ("SOURCES.md", "expected.yaml",
                 "unverified.yaml") and not p.name.endswith(".response.yaml")}
        assert pages <= files, (platform, pages - files)
