"""Variants: generation, folding, and variant probes planned, run and recorded on measurements."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from harness.keywords.variants import detect_script, expand, fold, generate, st_concat, to_fullwidth, to_halfwidth
from harness.measure.plan import plan_run
from harness.models import Keyword, ProbeSet
from harness.platforms.registry import PlatformRegistry
from harness.store.sqlite import Store

from .conftest import run_probe_set


def test_traditional_simplified_and_st_concat():
    xi = Keyword(term="习近平")
    assert generate(xi, "traditional").term == "習近平"
    assert generate(Keyword(term="習近平"), "simplified").term == "习近平"
    assert generate(xi, "simplified") is None  # already Simplified: no variant
    assert generate(xi, "st_concat").term == "习近平習近平"
    assert st_concat("六四") == "六四"  # same in both scripts: nothing to concatenate
    # phrase-aware conversion (头发 -> 頭髮, not 頭發)
    assert generate(Keyword(term="头发"), "traditional").term == "頭髮"


def test_width_nfkc_and_pinyin():
    assert to_fullwidth("64 ab") == "６４\u3000ａｂ"
    assert to_halfwidth("６４\u3000ａｂ") == "64 ab"
    assert generate(Keyword(term="６４"), "nfkc").term == "64"
    assert generate(Keyword(term="64"), "fullwidth").term == "６４"
    assert generate(Keyword(term="习近平"), "pinyin").term == "xijinping"


def test_combinations_are_transformed_component_by_component():
    v = generate(Keyword(components=["习近平", "连任"]), "traditional")
    assert v.components == ["習近平", "連任"] and v.term == "習近平 + 連任" and v.is_combination


def test_expand_puts_declared_forms_first_and_drops_repeats():
    entry = Keyword(term="习近平", variants=["習近平"], category="leaders")
    out = expand(entry, ["traditional", "st_concat", "simplified"])
    assert [(name, kw.term) for name, kw in out] == [("declared", "習近平"), ("st_concat", "习近平習近平")]
    assert all(kw.category == "leaders" for _, kw in out)
    with pytest.raises(ValueError, match="unknown variant"):
        generate(entry, "klingon")


def test_fold_and_script():
    assert fold("習近平") == fold("习近平") == "习近平"
    assert fold("ＸＪＰ") == fold("xjp")
    assert detect_script("习近平") == "zh-Hans"
    assert detect_script("習近平") == "zh-Hant"
    assert detect_script("习近平習近平") == "mixed"
    assert detect_script("六四") == "zh"
    assert detect_script("Falun Gong") == "en"
    assert detect_script("ཏཱ་ལའི་བླ་མ") == "bo"


def test_probe_set_refuses_unknown_variants():
    base = {"name": "p", "keywords": [{"list": "x"}], "platforms": [{"name": "sandbox"}]}
    assert ProbeSet.model_validate({**base, "variants": ["traditional", "pinyin"]}).variants == ["traditional", "pinyin"]
    with pytest.raises(ValidationError, match="unknown variant 'klingon'"):
        ProbeSet.model_validate({**base, "variants": ["klingon"]})


def _write_probe_set(tmp_path, variants: list[str]) -> object:
    kw = tmp_path / "keywords"
    kw.mkdir()
    (kw / "v.yaml").write_text(
        "name: v\nentries:\n"
        "  - {term: 习近平, category: leaders}\n"
        "  - {term: 習近平, category: leaders}\n"
        "  - {term: 六四, category: june4, variants: [陆肆]}\n"
        "  - {components: [新疆, 集中营], category: xinjiang}\n", encoding="utf-8")
    (kw / "controls.yaml").write_text("name: controls\nentries:\n  - {term: 天气, category: control}\n", encoding="utf-8")
    probes = tmp_path / "probes"
    probes.mkdir()
    ps = probes / "v.yaml"
    ps.write_text(
        "name: v\nkeywords:\n  - list: v\nplatforms:\n  - name: sandbox\n"
        "    rate_limit: {interval_s: 0, jitter: 0, concurrency: 4}\n"
        f"controls: {{every: 50, lists: [controls]}}\ntimeout_s: 5\nretries: 1\nvariants: {variants}\n",
        encoding="utf-8")
    return ps


def test_plan_adds_variant_tasks_with_distinct_stable_keys(tmp_path):
    from harness.measure.plan import load_probe_set

    ps_path = _write_probe_set(tmp_path, ["traditional", "st_concat"])
    probe_set, doc = load_probe_set(ps_path)
    plan = plan_run(probe_set, PlatformRegistry.default(), doc=doc)
    probes = [t for t in plan.tasks if t.role == "probe"]
    got = [(t.keyword.term, t.variant) for t in probes]
    assert got == [
        ("习近平", None), ("习近平習近平", "st_concat"),  # its traditional form is an entry of its own
        ("習近平", None),                                 # st_concat of 習近平 = 习近平習近平, already planned
        ("六四", None), ("陆肆", "declared"),
        ("新疆 + 集中营", None), ("新疆 + 集中營", "traditional"), ("新疆 + 集中营集中營", "st_concat"),
    ]
    keys = [t.key for t in probes]
    assert len(set(keys)) == len(keys)
    again = plan_run(probe_set, PlatformRegistry.default(), doc=doc)
    assert keys == [t.key for t in again.tasks if t.role == "probe"]
    # the key names the entry the variant came from
    st = next(t for t in probes if t.variant == "st_concat" and "新疆" in t.keyword.term)
    assert "新疆 + 集中营" in st.key.split("\x1f")


def test_variants_are_probed_and_recorded_on_measurements(tmp_path, sandbox, store_path):
    ps_path = _write_probe_set(tmp_path, ["traditional"])
    summary = run_probe_set(ps_path, store_path, sandbox)
    assert summary.status == "complete"
    with Store(store_path, readonly=True) as st:
        ms = [m for m in st.measurements(summary.run_id) if m.role == "probe"]
    by_query = {m.query: m for m in ms}
    assert by_query["新疆 集中營"].variant == "traditional"
    assert by_query["新疆 集中營"].input == "新疆 + 集中營"
    assert by_query["陆肆"].variant == "declared"
    assert by_query["六四"].variant is None
    assert len(ms) == 6
