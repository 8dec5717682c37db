"""Item specs (harness/platforms/builtin_items) against fixture pages from public evidence (tests/fixtures/items)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
import yaml

from harness.errors import PlatformSpecError
from harness.measure.request import fetch
from harness.measure.transport import Sender
from harness.models import Verdict
from harness.platforms.items import (
    BUILTIN_ITEMS_DIR,
    ITEM_SIGNAL_KINDS,
    ItemRegistry,
    ItemSpec,
    classify_item,
    load_item_spec,
    weibo_bid_to_mid,
)

from .conftest import FIXTURES

PAGES = FIXTURES / "items"
PLATFORMS = ["wechat", "weibo", "douyin", "toutiao"]


@pytest.fixture(scope="module")
def registry() -> ItemRegistry:
    return ItemRegistry.default(include_cwd=False)


def answer(path: Path) -> tuple[int, dict[str, str], bytes]:
    if path.name.endswith(".response.yaml"):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        body = str(doc.get("body", "")).encode()
        return int(doc["status"]), {"content-type": "application/json"}, body
    ctype = "application/json; charset=utf-8" if path.suffix in (".json", ".txt") else "text/html"
    return 200, {"content-type": ctype}, path.read_bytes()


def cases():
    for platform in PLATFORMS:
        for i, case in enumerate(yaml.safe_load((PAGES / platform / "expected.yaml").read_text(encoding="utf-8"))):
            yield pytest.param(platform, case, id=f"{platform}-{i}-{case['file']}")


def test_builtin_item_specs_load_and_say_where_they_come_from(registry):
    assert {"wechat_article", "weibo_mobile", "weibo_api", "douyin_video", "toutiao_article", "sandbox_item"} <= set(
        registry.names())
    for path in BUILTIN_ITEMS_DIR.glob("*.yaml"):
        spec = load_item_spec(path)
        assert spec.name == path.stem  # the registry finds built-ins by file name
        if spec.platform != "sandbox":
            assert spec.sources and spec.notes, f"{spec.name}: sources and notes say what is documented"
    # one default spec per platform
    defaults = [s.platform for s in registry.all() if s.default]
    assert len(defaults) == len(set(defaults))


@pytest.mark.parametrize("platform,case", list(cases()))
def test_fixture_page_gives_the_expected_state(registry, platform, case):
    spec = registry.get(case["spec"])
    status, headers, body = answer(PAGES / platform / case["file"])
    c = classify_item(spec, case.get("status", status), headers, body)
    assert c.verdict.value == case["verdict"], (c.verdict, c.failure, c.signals)
    assert c.failure == case.get("failure")
    assert set(case.get("signals", [])) <= set(c.signals), c.signals
    if case["verdict"] == "failure" and not case.get("signals"):
        assert c.signals == [], "a page no marker explains carries no signal"


@pytest.mark.parametrize("name", ["wechat_article", "weibo_mobile", "weibo_api", "douyin_video", "toutiao_article"])
def test_every_signal_kind_of_a_spec_is_tested_on_a_fixture(registry, name):
    spec = registry.get(name)
    produced: set[str] = set()
    for platform, case in ((p.values[0], p.values[1]) for p in cases()):
        if case["spec"] != name:
            continue
        status, headers, body = answer(PAGES / platform / case["file"])
        c = classify_item(spec, case.get("status", status), headers, body)
        labels = set(c.signals)
        for kind in ITEM_SIGNAL_KINDS:
            names = {m.label for m in getattr(spec.signals, kind)}
            if kind == "unverified":
                names = {"unverified:" + n for n in names}
            if names & labels:
                produced.add(kind)
    defined = {k for k in ITEM_SIGNAL_KINDS if getattr(spec.signals, k)}
    assert defined <= produced, f"{name}: no fixture shows {sorted(defined - produced)}"


def test_unverified_states_are_never_removals(registry):
    """Douyin's undocumented reasons and any Toutiao page without the article are stored, not read as removals."""
    for platform, name in (("douyin", "detail_removed_audit.json"), ("douyin", "detail_removed_deleted.json"),
                           ("toutiao", "no_article_markup.html")):
        spec = registry.spec_for({"douyin": "https://www.douyin.com/video/7578091056131901007",
                                  "toutiao": "https://www.toutiao.com/article/7300000000000000000/"}[platform])
        c = classify_item(spec, *answer(PAGES / platform / name))
        assert c.verdict is Verdict.failure and not c.verdict.is_removed


def test_item_urls_choose_their_spec_and_build_the_request(registry):
    assert registry.spec_for("https://mp.weixin.qq.com/s/AbCdEfGhIjKlMnOp").name == "wechat_article"
    assert registry.spec_for("https://weibo.com/1642909335/I2vZiwWsP").name == "weibo_mobile"  # the default
    assert registry.spec_for("https://weibo.com/1642909335/I2vZiwWsP", prefer=["weibo_api"]).name == "weibo_api"
    assert registry.spec_for("https://example.org/a") is None
    api = registry.get("weibo_api")
    req = api.request_for("https://weibo.com/1642909335/I2vZiwWsP", env={"WEIBO_APP_KEY": "k&1"})
    assert req.url == "https://api.weibo.com/2/statuses/show.json?source=k%261&id=4405996207851235"
    wechat = registry.get("wechat_article")
    assert wechat.request_for("https://mp.weixin.qq.com/s?__biz=MzA5&mid=2&idx=1&sn=ab",
                              base_url="http://127.0.0.1:9/").url == "http://127.0.0.1:9/s?__biz=MzA5&mid=2&idx=1&sn=ab"
    # a URL whose groups would smuggle characters into the request is not read
    assert not wechat.reads('https://mp.weixin.qq.com/s?__biz=a"b')


def test_weibo_bid_is_converted_like_weiboscope():
    # a real Weibo timeline record (YaoZeyuan/stablog weibo.d.ts) carries both: bid I2vZiwWsP, mid 4405996207851235
    assert weibo_bid_to_mid("I2vZiwWsP") == "4405996207851235"
    assert weibo_bid_to_mid("4405996207851235") == "4405996207851235"
    with pytest.raises(ValueError):
        weibo_bid_to_mid("not-an-id")


def _replay(spec: ItemSpec, url: str, routes: dict[str, tuple[int, dict[str, str], bytes]]):
    def handler(request: httpx.Request) -> httpx.Response:
        key = request.url.path + (("?" + request.url.query.decode()) if request.url.query else "")
        for prefix, (status, headers, body) in routes.items():
            if key.startswith(prefix):
                return httpx.Response(status, headers=headers, content=body)
        return httpx.Response(404)

    async def go():
        async with Sender.open(5.0, transport=httpx.MockTransport(handler)) as sender:
            return await fetch(sender, spec.as_platform_spec(), url)

    return asyncio.run(go())


def test_redirect_fixtures_replayed_through_the_engine_fetch(registry):
    wechat = registry.get("wechat_article")
    doc = yaml.safe_load((PAGES / "wechat" / "captcha.redirect.yaml").read_text(encoding="utf-8"))
    captcha = (PAGES / "wechat" / "captcha.html").read_bytes()
    got = _replay(wechat, "https://mp.weixin.qq.com/s?__biz=BIZ&mid=MID&idx=1&sn=SN", {
        "/s?": (doc["status"], {"location": doc["location"]}, b""),
        "/mp/wappoc_appmsgcaptcha": (200, {"content-type": "text/html; charset=utf-8"}, captcha)})
    assert got.classification.failure == "captcha"  # read on the redirect itself (location: signal)
    assert "captcha_redirect" in got.classification.signals
    assert "POC_TOKEN" not in (got.final_url or "") + str(got.headers)  # token-like values redacted from evidence
    without = wechat.model_copy(deep=True)  # without the location signal: followed on the same host, read as a page
    without.signals.captcha = [m for m in without.signals.captcha if m.location is None]
    got = _replay(without, "https://mp.weixin.qq.com/s?__biz=BIZ&mid=MID&idx=1&sn=SN", {
        "/s?": (doc["status"], {"location": doc["location"]}, b""),
        "/mp/wappoc_appmsgcaptcha": (200, {"content-type": "text/html; charset=utf-8"}, captcha)})
    assert got.classification.failure == "captcha" and "verify_page_mid" in got.classification.signals
    mobile = registry.get("weibo_mobile")
    for name, code in (("visitor_wall.redirect.yaml", "session_required"), ("pagenotfound.redirect.yaml", "redirect_offsite")):
        doc = yaml.safe_load((PAGES / "weibo" / name).read_text(encoding="utf-8"))
        got = _replay(mobile, "https://m.weibo.cn/detail/4405996207851235",
                      {"/detail/": (doc["status"], {"location": doc["location"]}, b"")})
        assert got.classification.verdict is Verdict.failure and got.classification.failure == code, name


def test_a_broken_item_spec_is_one_clear_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nplatform: y\nbase_url: https://a.example\nurls:\n  - {pattern: '^https://a/(?P<id>\\d+)', "
                   "request: '{base_url}/{nope}'}\nsignals: {available: [{css: '#a'}]}\n", encoding="utf-8")
    with pytest.raises(PlatformSpecError) as exc:
        load_item_spec(bad)
    assert str(exc.value).startswith(f"{bad}:5: urls.0: request uses {{nope}}")


def test_reclassify_reads_stored_item_pages_with_the_current_item_spec(tmp_path, sandbox):
    """A corrected item spec (here: the sandbox's violation notice read as removed_other) re-classifies stored pages."""
    from harness.analysis.reclassify import reclassify_run
    from harness.platforms.registry import PlatformRegistry
    from harness.store.sqlite import Store

    from .conftest import run_probe_set

    ps = FIXTURES / "probes" / "items.yaml"
    db = tmp_path / "r.db"
    sandbox.set_epoch(1)
    summary = run_probe_set(ps, db, sandbox)
    spec = load_item_spec(BUILTIN_ITEMS_DIR / "sandbox_item.yaml").model_dump(mode="json", by_alias=True,
                                                                             exclude_none=True)
    spec["signals"]["removed_other"].append(spec["signals"].pop("removed_censored")[0] | {"name": "violation_reread"})
    text = yaml.safe_dump(spec, allow_unicode=True)
    (tmp_path / "specs" / "items").mkdir(parents=True)
    (tmp_path / "specs" / "items" / "sandbox_item.yaml").write_text(text, encoding="utf-8")
    with Store(db) as st:
        result = reclassify_run(st, summary.run_id, PlatformRegistry.default(include_cwd=False),
                                items=ItemRegistry.default([tmp_path / "specs"], include_cwd=False))
    moved = {(c.input.rsplit("/", 1)[-1], c.old_verdict, c.new_verdict) for c in result.changes}
    assert moved == {("likeqiang", "removed_censored", "removed_other"), ("baizhi", "removed_censored", "removed_other"),
                     ("june4", "removed_censored", "removed_other")}
    assert "sandbox_item" in result.spec_sha256


def test_the_weibo_app_key_is_sent_but_never_kept(registry, monkeypatch):
    """weibo_api sends WEIBO_APP_KEY as Weiboscope did (source=...); the evidence URL never carries it."""
    from harness.measure.sessions import PlatformSession

    monkeypatch.setenv("WEIBO_APP_KEY", "k3y-0f-the-app-1234")
    shim = registry.get("weibo_api").as_platform_spec()
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(400, headers={"content-type": "application/json"},
                              content=(PAGES / "weibo" / "api_permission_denied.json").read_bytes())

    async def go():
        session = PlatformSession.build(env_names=shim.request.env_names(), platform="weibo_api")
        async with Sender.open(5.0, transport=httpx.MockTransport(handler)) as sender:
            return await fetch(sender, shim, "https://weibo.com/1642909335/I2vZiwWsP", session=session)

    got = asyncio.run(go())
    assert seen == ["https://api.weibo.com/2/statuses/show.json?source=k3y-0f-the-app-1234&id=4405996207851235"]
    assert got.classification.verdict is Verdict.removed_censored
    assert "k3y-0f-the-app" not in (got.final_url or "") and "id=4405996207851235" in got.final_url
