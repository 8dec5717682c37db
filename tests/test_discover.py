"""`harness discover`: sample testing of texts, rules appended with provenance, resumable."""

from __future__ import annotations

import asyncio
import json

import pytest

from harness.errors import InputError
from harness.isolation.discovery import DiscoveredList, discover, load_texts, state_path
from harness.keywords.lists import load_keyword_list
from harness.sandbox import Sandbox

from .test_isolate_cli import RULES, cli, fast, sandbox_spec
from .test_isolate_cli import workspace  # noqa: F401  (autouse: each test in its own folder)

TITLES = [
    "新疆棉花产业报道：外媒称当地存在集中营",  # 新疆 + 集中营
    "今日股市小幅上涨，科技板块领涨",  # not censored
    "#春运# 返乡高峰开启",  # a hashtag title is a text like any other
    "",
    "香港学者讨论独立调查委员会的设立",  # 香港 + 独立 (soft)
    "集中营历史纪录片在新疆首映",  # the same rule again: not duplicated
    "春季旅游市场回暖明显",  # not censored
]


@pytest.fixture
def rules_sandbox():
    with Sandbox(rules=RULES) as sb:
        yield sb


@pytest.fixture
def titles(tmp_path):
    f = tmp_path / "titles.txt"
    f.write_text("\n".join(TITLES) + "\n", encoding="utf-8")
    return f


def test_discover_cli_appends_new_rules_with_provenance_and_resumes(rules_sandbox, titles, tmp_path):
    kw = tmp_path / "kw"
    args = ["discover", "-p", "sandbox", "--base-url", f"sandbox={rules_sandbox.url}", "--texts", str(titles),
            "--keywords-dir", str(kw), "--json"]
    res = cli(*args)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["texts"] == 6 and out["tested"] == 6 and out["censored"] == 3 and out["failed"] == 0
    assert [r["rule"] for r in out["new_rules"]] == [["新疆", "集中营"], ["香港", "独立"]]

    loaded = load_keyword_list(kw / "discovered-sandbox.yaml")  # a valid KeywordList
    entries = loaded.keyword_list.entries
    assert [e.components for e in entries] == [["新疆", "集中营"], ["香港", "独立"]]
    first = entries[0]
    assert first.category == "other" and "discovered" in first.tags and "platform:sandbox" in first.tags
    assert "titles.txt:1" in first.source and "sandbox" in first.source and "queries" in first.source
    assert first.date_added is not None and first.date_added.isoformat() in first.source
    assert "titles.txt:5" in entries[1].source

    before = sum(rules_sandbox.queries.values())
    res = cli(*args)
    assert res.returncode == 0, res.stderr
    again = json.loads(res.stdout)
    assert again["skipped"] == 6 and again["tested"] == 0 and again["new_rules"] == []
    assert sum(rules_sandbox.queries.values()) == before  # nothing sent, not even the control
    assert load_keyword_list(kw / "discovered-sandbox.yaml").keyword_list.entries == entries


def test_a_failed_text_is_not_marked_done_and_is_retried_on_the_next_run(rules_sandbox, titles, tmp_path):
    kw = tmp_path / "kw"
    texts = load_texts(titles)
    spec = sandbox_spec(rules_sandbox)

    def soft_title_down(handler, query: str) -> bool:
        if "学者" in query:
            handler.send_body(503, b"busy", "text/plain")
            return True
        return False

    rules_sandbox.responder = soft_title_down
    first = asyncio.run(discover(spec, texts, kw, 40, fast(retries=1)))
    assert first.failed == 1 and first.tested == 6 and "titles.txt:5" in first.errors[0]
    done = json.loads(state_path(kw, "sandbox").read_text(encoding="utf-8"))["done"]
    assert len(done) == 5 and all(r["text_id"] != "titles.txt:5" for r in done.values())
    assert [e.components for e in DiscoveredList(kw / "discovered-sandbox.yaml", "sandbox").keyword_list.entries] \
        == [["新疆", "集中营"]]

    rules_sandbox.responder = None
    rules_sandbox.queries.clear()
    second = asyncio.run(discover(spec, texts, kw, 40, fast()))
    assert second.skipped == 5 and second.tested == 1 and second.failed == 0
    assert [r["rule"] for r in second.new_rules] == [["香港", "独立"]]
    assert not any("新疆" in q for q in rules_sandbox.queries)  # finished texts were not resent


def test_discover_budget_per_text_and_a_folder_of_texts(rules_sandbox, tmp_path):
    folder = tmp_path / "news"
    folder.mkdir()
    (folder / "a.txt").write_text("外媒报道新疆\n设施被称为集中营\n", encoding="utf-8")
    (folder / "b.txt").write_text("平常的一天", encoding="utf-8")
    (folder / "notes.md").write_text("新疆 集中营", encoding="utf-8")
    texts = load_texts(folder)
    assert [t.text_id for t in texts] == ["a.txt", "b.txt"]
    summary = asyncio.run(discover(sandbox_spec(rules_sandbox), texts, tmp_path / "kw", 2, fast()))
    assert summary.tested == 2 and summary.incomplete == 1 and summary.queries == 2 + 1
    record = json.loads(state_path(tmp_path / "kw", "sandbox").read_text(encoding="utf-8"))["done"]
    assert sorted((r["text_id"], r["complete"]) for r in record.values()) == [("a.txt", False), ("b.txt", True)]


def test_discover_rejects_bad_inputs_with_one_line(tmp_path):
    long = tmp_path / "long.txt"
    long.write_text("短\n" + "长" * 2001 + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"long\.txt:2: text is 2001 characters"):
        load_texts(long)
    res = cli("discover", "-p", "sandbox", "--texts", str(tmp_path / "none.txt"))
    assert res.returncode == 2 and res.stderr.strip() == f"error: texts not found: {tmp_path / 'none.txt'}"
    bad = tmp_path / "kw"
    bad.mkdir()
    (bad / "discovered-sandbox.yaml").write_text("name: x\nentries:\n  - {term: ''}\n", encoding="utf-8")
    ok = tmp_path / "ok.txt"
    ok.write_text("新疆\n", encoding="utf-8")
    res = cli("discover", "-p", "sandbox", "--base-url", "sandbox=http://127.0.0.1:9", "--texts", str(ok),
                  "--keywords-dir", str(bad))
    assert res.returncode == 2 and "discovered-sandbox.yaml:3" in res.stderr and len(res.stderr.splitlines()) == 1
