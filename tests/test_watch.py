"""Watch lists: the format, editing that keeps the file, `harness watch`, planning items, search feeding the list."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from harness.errors import HarnessError, ProbeSetError, WatchListError
from harness.measure.plan import load_probe_set, plan_run
from harness.models import WatchedItem, WatchList
from harness.platforms.items import ItemRegistry
from harness.platforms.registry import PlatformRegistry
from harness.store.sqlite import Store
from harness.watch.lists import add_items, items_from_file, load_watch_list, remove_items

from .comparator_helpers import cli
from .conftest import FIXTURES, run_probe_set

HAND_WRITTEN = """\
# my articles
name: mine
items:
  # the first one
  - url: https://mp.weixin.qq.com/s/AbCdEfGhIjKlMn#rd
    why: "quoted in a report"   # trailing comment
  - https://weibo.com/1642909335/I2vZiwWsP

# the end
"""


def test_items_are_validated_and_normalised():
    wl = WatchList(name="x", items=["https://MP.weixin.qq.com/s/AbCdEfGh#wechat_redirect"])
    assert wl.items[0].url == "https://mp.weixin.qq.com/s/AbCdEfGh"
    for bad in ("ftp://a.example/x", "https://a.example/x y", "https://user:pw@a.example/x", "not a url", ""):
        with pytest.raises(ValueError):
            WatchedItem(url=bad)
    with pytest.raises(ValueError, match="repeats the URL"):
        WatchList(name="x", items=["https://a.example/1", "https://A.example/1#frag"])


def test_adding_and_removing_keeps_the_hand_written_file(tmp_path):
    p = tmp_path / "mine.yaml"
    p.write_text(HAND_WRITTEN, encoding="utf-8")
    res = add_items(p, [WatchedItem(url="https://mp.weixin.qq.com/s/NewNewNewNew", tags=["x"]),
                        WatchedItem(url="https://mp.weixin.qq.com/s/AbCdEfGhIjKlMn")])
    assert [i.url for i in res.added] == ["https://mp.weixin.qq.com/s/NewNewNewNew"]
    assert res.already == ["https://mp.weixin.qq.com/s/AbCdEfGhIjKlMn"]
    text = p.read_text(encoding="utf-8")
    assert text.startswith(HAND_WRITTEN.split("\n\n")[0])  # everything before the end comment is untouched
    assert "# the end" in text and '"tags": ["x"]' in text
    removed, missing = remove_items(p, ["https://mp.weixin.qq.com/s/AbCdEfGhIjKlMn#rd", "https://a.example/none"])
    assert removed == ["https://mp.weixin.qq.com/s/AbCdEfGhIjKlMn"] and missing == ["https://a.example/none"]
    text = p.read_text(encoding="utf-8")
    assert "quoted in a report" not in text and "# my articles" in text and "# the end" in text
    assert [i.url for i in load_watch_list(p).watch_list.items] == [
        "https://weibo.com/1642909335/I2vZiwWsP", "https://mp.weixin.qq.com/s/NewNewNewNew"]
    remove_items(p, ["https://weibo.com/1642909335/I2vZiwWsP", "https://mp.weixin.qq.com/s/NewNewNewNew"])
    assert load_watch_list(p).watch_list.items == []
    add_items(p, [WatchedItem(url="https://mp.weixin.qq.com/s/AgainAgainAg")])
    assert len(load_watch_list(p).watch_list.items) == 1


def test_import_reads_text_csv_and_json_and_names_the_bad_line(tmp_path):
    txt = tmp_path / "urls.txt"
    txt.write_text("# from a report\nhttps://mp.weixin.qq.com/s/AbCdEfGhIjKlMn\n\nhttps://weibo.com/1/I2vZiwWsP\n")
    assert [i.url for i in items_from_file(txt, defaults={"tags": ["r"]})][1] == "https://weibo.com/1/I2vZiwWsP"
    csv_file = tmp_path / "items.csv"
    csv_file.write_text("url,title,tags\nhttps://mp.weixin.qq.com/s/AbCdEfGhIjKlMn,一篇,a;b\n", encoding="utf-8")
    (item,) = items_from_file(csv_file)
    assert item.title == "一篇" and item.tags == ["a", "b"]
    js = tmp_path / "items.json"
    js.write_text(json.dumps(["https://mp.weixin.qq.com/s/AbCdEfGhIjKlMn", {"url": "https://weibo.com/1/I2vZiwWsP"}]))
    assert len(items_from_file(js)) == 2
    txt.write_text("https://mp.weixin.qq.com/s/AbCdEfGhIjKlMn\nhttps://bad example\n")
    with pytest.raises(WatchListError) as exc:
        items_from_file(txt)
    assert str(exc.value).startswith(f"{txt}:2: url: the URL contains whitespace")


def test_watch_commands(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = cli("watch", "add", "https://mp.weixin.qq.com/s/AbCdEfGhIjKlMn", "https://weibo.com/1/I2vZiwWsP",
              "--why", "test", "--tag", "t", "--json")
    assert res.returncode == 0, res.exception
    assert json.loads(res.stdout)["created"] is True
    data = yaml.safe_load((tmp_path / "watch" / "watched.yaml").read_text(encoding="utf-8"))
    assert [i["platform"] for i in data["items"]] == ["wechat", "weibo"] and data["items"][0]["date_added"]
    res = cli("watch", "list", "--json")
    assert [(r["platform"], r["spec"]) for r in json.loads(res.stdout)] == [("wechat", "wechat_article"),
                                                                            ("weibo", "weibo_mobile")]
    # a title carrying terminal escapes is refused; in a pipe the list is one row per item, the URL whole
    res = cli("watch", "add", "https://mp.weixin.qq.com/s/ZyXwVuTsRqPoNm", "--title", "\x1b]0;pwned\x07\x1b[2Jtitle")
    assert isinstance(res.exception, HarnessError) and "title: contains a control character" in str(res.exception)
    res = cli("watch", "add", "https://mp.weixin.qq.com/s/ZyXwVuTsRqPoNm", "--title", "标题 <b>\"a\"</b>", "--control")
    assert res.returncode == 0, res.exception
    res = cli("watch", "list")
    rows = [line.split("\t") for line in res.stdout.splitlines()]
    assert rows[0] == ["list", "platform", "url", "title", "category", "tags", "spec"] and len(rows) == 4
    assert rows[1][:3] == ["watched", "wechat", "https://mp.weixin.qq.com/s/AbCdEfGhIjKlMn"]
    assert rows[3][2:4] == ["https://mp.weixin.qq.com/s/ZyXwVuTsRqPoNm", '[control] 标题 <b>"a"</b>']
    res = cli("watch", "specs")
    assert any(line.startswith("wechat_article (default)\twechat\t") for line in res.stdout.splitlines())
    for args, needle in ((("watch", "add", "https://example.org/page"), "no item spec reads https://example.org/page"),
                         (("watch", "add", "javascript:alert(1)"), "URL 1 ('javascript:alert(1)')"),
                         (("watch", "remove", "https://a.example/none"), None)):
        res = cli(*args)  # in process, a user error comes back as the exception main() turns into exit code 2
        if needle:
            assert isinstance(res.exception, HarnessError) and needle in str(res.exception)
        else:
            assert res.returncode == 2
    res = cli("watch", "specs", "--json")
    specs = {s["name"]: s for s in json.loads(res.stdout)}
    assert specs["douyin_video"]["transport"] == "browser" and "removed_censored" in specs["toutiao_article"]["undocumented"]


def _ps(tmp: Path, text: str, watch: str) -> Path:
    (tmp / "probes").mkdir(exist_ok=True)
    (tmp / "watch").mkdir(exist_ok=True)
    (tmp / "watch" / "w.yaml").write_text(watch, encoding="utf-8")
    p = tmp / "probes" / "p.yaml"
    p.write_text(text, encoding="utf-8")
    return p


def _plan(p: Path):
    ps, doc = load_probe_set(p)
    return plan_run(ps, PlatformRegistry.default(include_cwd=False), doc=doc, items=ItemRegistry.default(include_cwd=False))


def test_planning_items_names_the_problem_and_its_line(tmp_path):
    ok = "name: w\nitems:\n  - {url: 'https://mp.weixin.qq.com/s/AbCdEfGhIjKlMn', control: true}\n" \
         "  - https://mp.weixin.qq.com/s/OtherOtherOt\n  - https://weibo.com/1/I2vZiwWsP\n"
    p = _ps(tmp_path, "name: p\nitems:\n  - list: w\ncontrols: {truism: false}\n", ok)
    plan = _plan(p)
    assert [(t.platform, t.role) for t in plan.tasks] == [("wechat_article", "item"), ("weibo_mobile", "item")] * 1
    assert plan.specs["wechat_article"].truism == "https://mp.weixin.qq.com/s/AbCdEfGhIjKlMn"
    assert plan.platform_of("weibo_mobile") == "weibo"
    # a probe set may choose the spec that reads a platform's items
    p = _ps(tmp_path, "name: p\nitems:\n  - list: w\nplatforms:\n  - name: weibo_api\ncontrols: {truism: false}\n", ok)
    assert "weibo_api" in _plan(p).item_specs
    # without a control item the run cannot tell an outage from removals
    p = _ps(tmp_path, "name: p\nitems:\n  - list: w\n", ok)
    with pytest.raises(ProbeSetError, match=r"weibo items \(weibo_mobile\) have no control item") as exc:
        _plan(p)
    assert exc.value.line == 2
    p = _ps(tmp_path, "name: p\nitems:\n  - list: w\n", "name: w\nitems:\n  - https://mp.weixin.qq.com/s/AbCdEfGhIjKl\n"
            "  - https://example.org/not-an-item\n")
    with pytest.raises(WatchListError) as exc:
        _plan(p)
    assert exc.value.line == 4 and "no item spec reads https://example.org/not-an-item" in str(exc.value)
    p = _ps(tmp_path, "name: p\nitems:\n  - list: w\n", "name: w\nitems:\n  - {url: 'https://weibo.com/1/I2vZiwWsP', "
            "platform: wechat}\n")
    with pytest.raises(WatchListError, match="is a weibo item"):
        _plan(p)


def test_search_results_feed_the_watch_list_and_their_removal_is_seen(tmp_path, sandbox):
    kw = FIXTURES / "keywords" / "mini.yaml"
    p = _ps(tmp_path, f"name: wr\nkeywords:\n  - list: {kw}\nplatforms:\n  - name: sandbox\n"
                      "    rate_limit: {interval_s: 0, jitter: 0, concurrency: 4}\n"
                      "items:\n  - list: wr-results\nwatch_results: {terms: [白纸, 六四], top: 3}\n"
                      "controls: {truism: true, every: 25, lists: []}\n", "name: w\nitems: []\n")
    db = tmp_path / "wr.db"
    first = run_probe_set(p, db, sandbox)
    # 白纸 has results in the first epoch: its top three result items are enrolled; 六四 is censored: nothing
    assert first.enrolled["added"] == 3 and first.enrolled["terms"] == 1
    enrolled = load_watch_list(tmp_path / "watch" / "wr-results.yaml").watch_list.items
    assert all(i.platform == "sandbox" and "白纸" in (i.why or "") and "search-result" in i.tags for i in enrolled)
    second = run_probe_set(p, db, sandbox)  # the enrolled items are fetched from the next run on: available
    assert second.counts["sandbox"]["available"] == 3 and second.enrolled["added"] == 0
    sandbox.set_epoch(1)  # the sandbox takes 白纸's results down
    third = run_probe_set(p, db, sandbox)
    assert third.counts["sandbox"]["removed_censored"] == 3
    with Store(db, readonly=True) as st:
        from harness.analysis.items import diff_items

        changes = diff_items(st, second.run_id, third.run_id).changes
    assert sorted(c.transition.value for c in changes) == ["removed_censored"] * 3


def test_lists_the_harness_writes_are_read_fast_and_exactly_as_yaml_reads_them(tmp_path):
    from harness.watch.lists import _fast_parse, render_watch_list
    from harness.yamlio import load_yaml, validate_located

    wl = WatchList(name="big", items=[WatchedItem(url=f"https://mp.weixin.qq.com/s/Abcdefgh{i:06d}", category="c",
                                                  tags=["t", "引号\"和\\斜杠"], title=f"标题 {i}", control=i == 0)
                                      for i in range(300)])
    p = tmp_path / "big.yaml"
    p.write_text(render_watch_list(wl), encoding="utf-8")
    fast = load_watch_list(p)
    assert fast.item_lines is not None and fast.line_of_item(2) == 5  # name, items:, then one line each
    assert fast.watch_list == validate_located(load_yaml(p), WatchList)  # what YAML reads
    # a bad item on line 7: the error names it
    lines = p.read_text(encoding="utf-8").splitlines()
    lines[6] = '  - {"url": "ftp://nope.example/x"}'
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(WatchListError) as exc:
        load_watch_list(p)
    assert exc.value.line == 7 and "items.4.url" in str(exc.value)
    # not the harness's layout (a comment between items): read as YAML, same answer
    assert _fast_parse(p, HAND_WRITTEN) is None
