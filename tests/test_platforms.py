"""Built-in platform specs against fixture pages in the shape of each platform's answers."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness.errors import PlatformSpecError
from harness.models import Verdict
from harness.platforms.classify import apply_soft_test, apply_truism_method, classify_http
from harness.platforms.fixtures import FixtureCase, classify_case, classify_file, load_unverified
from harness.platforms.registry import BUILTIN_DIR, PlatformRegistry, load_spec

from .conftest import FIXTURES

PAGES = FIXTURES / "platforms"
BUILTIN = ["baidu", "baidu_zhidao", "bilibili", "bing", "douyin", "jingdong", "sogou", "toutiao", "weibo"]


@pytest.fixture(scope="module")
def registry() -> PlatformRegistry:
    return PlatformRegistry.default(include_cwd=False)


def outcome_of(spec, case: dict):
    """The classification of one expected.yaml case, as the engine would reach it."""
    return classify_case(spec, PAGES / spec.name, FixtureCase.model_validate(case))


def unverified(name: str) -> dict[str, str]:
    """Outcomes a spec can give that no public page shows (``unverified.yaml``: outcome -> why)."""
    return load_unverified(PAGES / name)


def cases():
    for name in BUILTIN:
        for i, case in enumerate(yaml.safe_load((PAGES / name / "expected.yaml").read_text())):
            yield pytest.param(name, case, id=f"{name}-{i}-{case['file']}")


def test_all_nine_builtin_platforms_load_and_validate(registry):
    assert set(BUILTIN) <= set(registry.names())
    for path in BUILTIN_DIR.glob("*.yaml"):  # the registry finds built-ins by file name
        assert load_spec(path).name == path.stem
    for name in BUILTIN:
        spec = load_spec(BUILTIN_DIR / f"{name}.yaml")
        assert spec.name == name and spec.truism
        assert spec.sources or spec.notes, "a built-in spec says where its signals come from"


@pytest.mark.parametrize("name,case", list(cases()))
def test_fixture_page_gives_the_expected_verdict(registry, name, case):
    spec = registry.get(name)
    c = outcome_of(spec, case)
    assert c.verdict.value == case["verdict"], (c.verdict, c.failure, c.signals)
    assert c.failure == case.get("failure")
    assert set(case.get("signals", [])) <= set(c.signals), c.signals
    if "result_items" in case:
        assert c.result_items == case["result_items"]
    if "result_count" in case:
        assert c.result_count == case["result_count"]


@pytest.mark.parametrize("name", BUILTIN)
def test_every_outcome_a_spec_can_give_has_a_fixture(registry, name):
    spec = registry.get(name)
    covered = set()
    for case in yaml.safe_load((PAGES / name / "expected.yaml").read_text()):
        c = outcome_of(spec, case)
        covered.add(f"failure:{c.failure}" if c.verdict is Verdict.failure else c.verdict.value)
    # unexpected_page is the rule for any page without the markers (test_a_page_without_any_marker_...);
    # a platform need not have a real page of that kind
    missing = spec.possible_outcomes() - covered - set(unverified(name)) - {"failure:unexpected_page"}
    assert not missing, missing


@pytest.mark.parametrize("name", ["baidu", "baidu_zhidao", "bing", "jingdong", "sogou", "weibo"])
def test_a_page_without_any_marker_is_unexpected_page_never_a_verdict(registry, name):
    """A layout change: a page with none of the spec's markers (here another platform's results page)."""
    spec = registry.get(name)
    other = PAGES / ("weibo" if name != "weibo" else "baidu") / ("not_censored.html" if name != "weibo"
                                                                 else "not_censored_2018.html")
    for body in (b"<html><head><title>x</title></head><body><div id=app></div></body></html>", other.read_bytes()):
        c = classify_http(spec, 200, {"content-type": "text/html; charset=utf-8"}, body)
        assert (c.verdict, c.failure) == (Verdict.failure, "unexpected_page"), (c.verdict, c.signals)


@pytest.mark.parametrize("name", [*BUILTIN, "weixin_sogou"])
def test_what_no_fixture_shows_is_said_in_the_docs(name):
    """Every built-in platform has its section in docs/platform-specs.md saying what its fixtures
    show and what no evidence shows; an outcome without a fixture is listed there as unverified."""
    doc = (Path(__file__).resolve().parent.parent / "docs" / "platform-specs.md").read_text()
    assert f"\n#### {name}\n" in doc, f"docs/platform-specs.md has no section for {name}"
    section = doc[doc.index(f"\n#### {name}\n") + 1:]
    section = section[: section.find("\n#") if "\n#" in section else None]
    assert "Fixtures:" in section and "Unverified:" in section, name
    for outcome in unverified(name):
        assert f"`{outcome}`" in section, (name, outcome)


@pytest.mark.parametrize("name", [*BUILTIN, "weixin_sogou"])
def test_every_fixture_has_its_source_written_beside_it(name):
    sources = (PAGES / name / "SOURCES.md").read_text()
    for path in sorted((PAGES / name).iterdir()):
        if path.name in ("SOURCES.md", "expected.yaml", "unverified.yaml") or path.name.endswith(".response.yaml"):
            continue
        assert path.name in sources, f"{name}/{path.name} has no source in SOURCES.md"
    listed = {c["file"] for c in yaml.safe_load((PAGES / name / "expected.yaml").read_text())}
    assert listed <= {p.name for p in (PAGES / name).iterdir()}


@pytest.mark.parametrize("name", BUILTIN)
def test_undocumented_signals_rely_on_the_truism(registry, name):
    spec = registry.get(name)
    if "hard" in spec.undocumented or not (spec.signals.hard or spec.signals.soft):
        assert spec.hard_needs_truism, "no documented notice: hard censorship must come from the truism method"


def test_a_quoted_notice_in_a_result_is_not_censorship(registry):
    """Baidu's notice is matched in its notice box only, not anywhere in the page."""
    c = outcome_of(registry.get("baidu"), {"file": "quoted_notice_not_censored.html"})
    assert c.verdict is Verdict.not_censored


def test_no_results_without_a_working_control_is_not_hard(registry):
    spec = registry.get("toutiao")
    path = PAGES / "toutiao" / "no_results_card.html"
    c = classify_file(spec, path)
    assert apply_truism_method(spec, c, sent_with_truism=True, control_ok=False).verdict is Verdict.no_results
    assert apply_truism_method(spec, c, sent_with_truism=True, control_ok=None).verdict is Verdict.no_results


def test_a_failed_soft_probe_is_a_failure_not_a_verdict(registry):
    spec = registry.get("baidu")
    main = outcome_of(spec, {"file": "not_censored_2018.html"})
    captcha = outcome_of(spec, {"file": "captcha_200.html"})
    c = apply_soft_test(main, captcha)
    assert c.verdict is Verdict.failure and c.failure == "captcha"


def test_zhidao_query_is_sent_gbk_encoded(registry):
    from harness.measure.request import build_request

    built = build_request(registry.get("baidu_zhidao"), "六四 的")
    assert "word=%C1%F9%CB%C4%20%B5%C4" in built.url
    built = build_request(registry.get("baidu"), "六四 的")
    assert "wd=%E5%85%AD%E5%9B%9B%20%E7%9A%84" in built.url


def test_space_style_and_json_bodies(tmp_path):
    from harness.measure.request import build_request

    spec = write_spec(tmp_path, """
        name: api
        base_url: http://127.0.0.1:1
        request:
          method: POST
          url: "{base_url}/api/search"
          params: {q: "{query}"}
          space: "+"
          json_body: {query: "{query}", page: 1, filters: ["{truism}"]}
        response_format: json
        truism: 的
        signals:
          no_results: [{json: total, values: [0]}]
          result_item: {json: "items.*.id"}
        """)
    built = build_request(spec, "新疆 集中营")
    assert built.url.endswith("?q=%E6%96%B0%E7%96%86+%E9%9B%86%E4%B8%AD%E8%90%A5")
    assert built.json == {"query": "新疆 集中营", "page": 1, "filters": ["的"]}


def write_spec(tmp_path: Path, text: str):
    import textwrap

    path = tmp_path / "spec.yaml"
    path.write_text(textwrap.dedent(text))
    return load_spec(path)


@pytest.mark.parametrize("body,problem", [
    ("request: {url: '{base_url}/s'}", "never uses {query}"),
    ("signals: {no_results: [{regex: '(unclosed'}], result_item: {css: div}}", "invalid regular expression"),
    ("signals: {no_results: [{css: 'div[['}], result_item: {css: div}}", "invalid CSS selector"),
    ("signals: {result_item: {css: div}}", "at least one of no_results"),
    ("undocumented: [hard]", "hard_needs_truism"),
    ("undocumented: [colour]", "undocumented names unknown"),
    ("soft_test: {probe: '{query} site:x', domains: [a.com]}", "must contain {domain}"),
    ("request: {params: {q: '{query}'}, query_encoding: klingon}", "unknown charset"),
    ("base_url: ftp://x", "base_url must start with http"),
])
def test_bad_specs_are_refused_with_file_and_line(tmp_path, body, problem):
    base = {
        "name": "x", "base_url": "http://127.0.0.1:1", "truism": "的",
        "request": {"params": {"q": "{query}"}},
        "signals": {"no_results": ["none"], "result_item": {"css": "div.r"}},
    }
    base.update(yaml.safe_load(body))
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(base, allow_unicode=True))
    with pytest.raises(PlatformSpecError) as exc:
        load_spec(path)
    assert problem in str(exc.value) and str(path) in str(exc.value)


def test_registry_loads_cwd_platforms_folder_and_later_overrides(tmp_path, monkeypatch):
    d = tmp_path / "platforms"
    d.mkdir()
    (d / "baidu.yaml").write_text((BUILTIN_DIR / "baidu.yaml").read_text().replace("truism: \"的\"", "truism: \"是\""))
    monkeypatch.chdir(tmp_path)
    reg = PlatformRegistry.default()
    assert reg.get("baidu").truism == "是"
    assert reg.origin("baidu").resolve() == (d / "baidu.yaml").resolve()
    assert reg.get("bing").truism == "的"  # the others stay built in


def test_failure_codes_are_documented_in_one_place():
    import re

    from harness.failures import DESCRIPTIONS, FailureCode

    doc = (Path(__file__).resolve().parent.parent / "docs" / "failures.md").read_text()
    documented = set(re.findall(r"^\| `([a-z0-9_]+)` \|", doc, re.M))
    assert documented == {c.value for c in FailureCode}
    assert set(DESCRIPTIONS) == set(FailureCode)
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", c.value) for c in FailureCode)


def test_an_adapter_cannot_invent_a_failure_code(registry):
    from harness.platforms.adapters import register_adapter, unregister_adapter
    from harness.platforms.classification import Classification

    class Inventive:
        def classify(self, spec, status, headers, body):
            return Classification(Verdict.failure, "looks_bad")

    register_adapter("inventive", Inventive())
    try:
        spec = registry.get("sandbox").model_copy(update={"adapter": "inventive"})
        c = classify_http(spec, 200, {}, b"<html></html>")
        assert c.failure == "adapter_error" and "unknown_failure_code:looks_bad" in c.signals
    finally:
        unregister_adapter("inventive")


def test_platforms_check_against_the_sandbox(sandbox):
    from harness.measure.check import check_platform_sync

    spec = PlatformRegistry.default(include_cwd=False).get("sandbox").model_copy(update={"base_url": sandbox.url})
    report = check_platform_sync(spec)
    assert report.healthy
    assert report.truism.matched == {} and set(report.truism.missing) == {"captcha", "rate_limited", "hard", "no_results"}
    assert report.truism.result_items >= 3 and report.truism.result_count > 0
    assert report.soft_control.query == "的 site:sohu.com" and report.soft_control.verdict == "not_censored"
    hard = check_platform_sync(spec, query="六四")
    assert not hard.healthy and hard.truism.matched == {"hard": ["legal_notice"]}
