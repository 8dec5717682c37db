"""Every signal of the four item specs and of the built-in search specs (the nine platforms of issue 12 and WeChat
search) names its public source (or says "unverified"), and each one, on its own, is shown by a fixture page whose
expected outcome is that signal's, unless its row says "no page" and why.

The sources are read from the table "Signal sources" of each fixture folder's SOURCES.md (one row per signal:
spec, kind, signal, source keys of the folder's "Key sources" table, or ``unverified``). A signal is exercised
when its matcher alone matches a fixture page whose expected outcome (expected.yaml) is the outcome of the
signal's kind; a ``location:`` signal when a ``*.redirect.yaml`` fixture, replayed through the engine's fetch, is
read with it. Both halves fail when a signal is added to a spec without a source or without a page showing it.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx
import pytest
import yaml

from harness.measure.request import fetch
from harness.measure.transport import Sender
from harness.platforms.classify import Page, decode_body, matches
from harness.platforms.items import ITEM_SIGNAL_KINDS, ItemRegistry, ItemSpec, _applies
from harness.platforms.registry import PlatformRegistry
from harness.platforms.classify import extract
from harness.platforms.spec import EXTRACTOR_KINDS, FAILURE_KINDS, SIGNAL_KINDS, Extractor, Matcher, PlatformSpec

from .conftest import FIXTURES

ITEMS = FIXTURES / "items"
SPECS = {  # spec -> fixture folder
    "wechat_article": ITEMS / "wechat", "weibo_mobile": ITEMS / "weibo", "weibo_api": ITEMS / "weibo",
    "douyin_video": ITEMS / "douyin", "toutiao_article": ITEMS / "toutiao",
    "weixin_sogou": FIXTURES / "platforms" / "weixin_sogou",
    **{name: FIXTURES / "platforms" / name for name in (  # the nine search platforms (issue 12)
        "baidu", "baidu_zhidao", "bilibili", "bing", "douyin", "jingdong", "sogou", "toutiao", "weibo")},
}
URLS = {  # an item URL each item spec reads (for replaying redirects)
    "wechat_article": "https://mp.weixin.qq.com/s?__biz=BIZ&mid=MID&idx=1&sn=SN",
    "weibo_mobile": "https://m.weibo.cn/detail/4405996207851235", "weibo_api": "https://weibo.com/1642909335/I2vZiwWsP",
    "douyin_video": "https://www.douyin.com/video/7578091056131901007",
    "toutiao_article": "https://www.toutiao.com/article/7300000000000000000/",
}
ITEM_FAILURE_KINDS = {"captcha": "captcha", "rate_limited": "rate_limited", "session_invalid": "session_invalid",
                      "login_wall": "session_required"}


def _spec(name: str) -> ItemSpec | PlatformSpec:
    if SPECS[name].parent.name == "platforms":
        return PlatformRegistry.default(include_cwd=False).get(name)
    return ItemRegistry.default(include_cwd=False).get(name)


def _kinds(spec: ItemSpec | PlatformSpec) -> tuple[str, ...]:
    return ITEM_SIGNAL_KINDS if isinstance(spec, ItemSpec) else SIGNAL_KINDS


def _signals(spec: ItemSpec | PlatformSpec) -> list[tuple[str, Matcher]]:
    return [(kind, m) for kind in _kinds(spec) for m in getattr(spec.signals, kind)]


def _extractors(spec: ItemSpec | PlatformSpec) -> list[tuple[str, Extractor]]:
    """A search spec's extractors (result_item, result_count, ...): their row's signal is the kind's name."""
    if isinstance(spec, ItemSpec):
        return []
    return [(k, getattr(spec.signals, k)) for k in EXTRACTOR_KINDS if getattr(spec.signals, k) is not None]


def _table(text: str, heading: str) -> list[list[str]]:
    """The rows (cells stripped, header and rule left out) of the first table under ``## heading``."""
    mo = re.search(rf"^## {re.escape(heading)}\s*$(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert mo, f"no section '## {heading}'"
    rows = [line.strip().strip("|").split("|") for line in mo.group(1).splitlines() if line.startswith("|")]
    return [[c.strip() for c in r] for r in rows[2:]]


def _sources(folder: Path) -> tuple[set[str], dict[tuple[str, str], tuple[str, list[str]]]]:
    text = (folder / "SOURCES.md").read_text(encoding="utf-8")
    keys = {row[0].strip("`") for row in _table(text, "Key sources")}
    rows = {}
    for spec, kind, signal, cited in (r[:4] for r in _table(text, "Signal sources")):
        assert (spec, signal.strip("`")) not in rows, f"{folder.name}: {spec} {signal} listed twice"
        rows[(spec, signal.strip("`"))] = (kind, [c.strip() for c in cited.split(",") if c.strip()])
    return keys, rows


def _outcome(spec: ItemSpec | PlatformSpec, kind: str) -> set[str]:
    """The outcomes (verdict, or failure:CODE) of a page whose first signal is of this kind."""
    if isinstance(spec, ItemSpec):
        if kind in ITEM_FAILURE_KINDS:
            return {f"failure:{ITEM_FAILURE_KINDS[kind]}"}
        if kind in ("unreadable", "unverified"):
            return {"failure:unexpected_page"}
        return {kind}
    if kind in FAILURE_KINDS:
        return {f"failure:{FAILURE_KINDS[kind]}"}
    return {"no_results": {"no_results", "hard"}, "page_ok": {"no_results"}, "shell": {"failure:empty_shell"},
            "hard": {"hard"}, "soft": {"soft"}}[kind]


def _pages(name: str) -> list[tuple[str, int, Page]]:
    """(expected outcome, status, decoded page) of every fixture case of this spec."""
    folder, spec = SPECS[name], _spec(name)
    out = []
    for case in yaml.safe_load((folder / "expected.yaml").read_text(encoding="utf-8")):
        if case.get("spec", name) != name:
            continue
        path = folder / case["file"]
        status = 200
        if path.name.endswith(".response.yaml"):
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
            status, body = int(doc["status"]), str(doc.get("body", "")).encode()
        else:
            body = path.read_bytes()
        status = case.get("status", status)
        headers = {"content-type": "application/json" if spec.response_format == "json" else "text/html"}
        page = decode_body(spec, headers, body)
        if not isinstance(page, Page):  # as classify_item does: failure markers are read in a body that is not JSON
            page = Page(body.decode("utf-8", "replace"), "html")
        expected = case["verdict"] if case["verdict"] != "failure" else f"failure:{case['failure']}"
        out.append((expected, status, page))
    return out


def _redirect_signals(name: str) -> set[str]:
    """The signals the engine's fetch records for each ``*.redirect.yaml`` fixture of this spec's folder."""
    spec = _spec(name)
    shim = spec.as_platform_spec() if isinstance(spec, ItemSpec) else spec
    url = URLS.get(name, "query")
    seen: set[str] = set()
    for path in sorted(SPECS[name].glob("*.redirect.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        hops = []

        def handler(request: httpx.Request, doc=doc, hops=hops) -> httpx.Response:
            hops.append(str(request.url))
            if len(hops) == 1:
                return httpx.Response(doc["status"], headers={"location": doc["location"]})
            return httpx.Response(404)

        async def go():
            async with Sender.open(5.0, transport=httpx.MockTransport(handler)) as sender:
                return await fetch(sender, shim, url)

        seen |= set(asyncio.run(go()).classification.signals)
    return seen


@pytest.mark.parametrize("name", list(SPECS))
def test_every_signal_names_its_source_or_says_unverified(name):
    spec = _spec(name)
    keys, rows = _sources(SPECS[name])
    signals = _signals(spec)
    assert signals
    for kind, m in signals:
        assert (name, m.label) in rows, f"{name}: signal {m.label} ({kind}) has no row in Signal sources"
        listed_kind, cited = rows[(name, m.label)]
        assert listed_kind == kind, f"{name}: {m.label} is a {kind} signal, the table says {listed_kind}"
        assert cited, f"{name}: {m.label} names no source"
        if cited == ["unverified"]:
            # an unverified signal is declared so in the spec too (or is of the kind that is never a verdict)
            assert kind in spec.undocumented or kind == "unverified", \
                f"{name}: {m.label} is unverified but {kind} is not in the spec's undocumented list"
        else:
            unknown = [c for c in cited if c not in keys]
            assert not unknown, f"{name}: {m.label} cites {unknown}, not in the Key sources table"
    for kind, _ in _extractors(spec):  # where results are read from names its source too
        assert (name, kind) in rows, f"{name}: extractor {kind} has no row in Signal sources"
        listed_kind, cited = rows[(name, kind)]
        assert listed_kind == kind and cited, f"{name}: {kind}'s row names no source"
        if cited == ["unverified"]:
            assert kind in spec.undocumented, f"{name}: {kind} is unverified but not in the spec's undocumented list"
        else:
            unknown = [c for c in cited if c not in keys]
            assert not unknown, f"{name}: {kind} cites {unknown}, not in the Key sources table"
    # no row for a signal the spec no longer has
    stale = {s for (n, s) in rows if n == name} - {m.label for _, m in signals} - {k for k, _ in _extractors(spec)}
    assert not stale, f"{name}: Signal sources lists signals the spec does not have: {sorted(stale)}"


def _no_page(folder: Path) -> dict[tuple[str, str], str]:
    """Signals whose row's note starts "no page": why no public evidence shows them on a page."""
    text = (folder / "SOURCES.md").read_text(encoding="utf-8")
    return {(r[0], r[2].strip("`")): r[4] for r in _table(text, "Signal sources")
            if len(r) > 4 and r[4].startswith("no page")}


@pytest.mark.parametrize("name", list(SPECS))
def test_every_signal_is_shown_by_a_fixture_page(name):
    spec = _spec(name)
    pages = _pages(name)
    redirects = None
    missing = []
    no_page = _no_page(SPECS[name])
    for kind, m in _signals(spec):
        if m.location is not None:
            if redirects is None:
                redirects = _redirect_signals(name)
            shown = m.label in redirects
        else:
            wanted = _outcome(spec, kind)
            shown = False
            for expected, status, page in pages:
                if expected not in wanted:
                    continue
                if m.status is not None and status not in m.status:
                    continue
                if isinstance(spec, ItemSpec) and not _applies(spec, m, status):
                    continue
                if m.text is None and m.regex is None and m.css is None and m.json_path is None:
                    shown = True  # a status-only signal: the fixture's status is the evidence
                elif (page.fmt == spec.response_format or m.json_path is None) and matches(page, m):
                    shown = True
                if shown:
                    break
        if (name, m.label) in no_page:
            # said to have no page: keep it honest (a page that shows it ends the exemption)
            assert not shown, f"{name}: {m.label} is shown by a fixture page: drop 'no page' from its row"
        elif not shown:
            missing.append(f"{kind}:{m.label}")
    for kind, ex in _extractors(spec):  # an extractor reads something on a page with results
        shown = any(expected in ("not_censored", "soft") and (page.fmt == spec.response_format or ex.json_path is None)
                    and extract(page, ex) for expected, _, page in pages)
        if (name, kind) in no_page:
            assert not shown, f"{name}: {kind} is shown by a fixture page: drop 'no page' from its row"
        elif not shown:
            missing.append(kind)
    assert not missing, f"{name}: no fixture page shows {missing}"
