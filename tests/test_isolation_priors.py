"""Component-level priors (known_components): cheaper when right, never inexact when wrong."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.isolation.algorithm import component_probability, isolate

from .test_isolation import FILLER, Rules, as_set, oracle, run, scenario, truth


def test_known_components_make_isolation_cheaper_with_the_same_answer() -> None:
    text = FILLER[:14] + "习近平" + FILLER[14:30] + "连任" + FILLER[30:]
    rules = [("习近平", "连任")]
    plain = run(text, rules)
    hinted = run(text, rules, known_components={"习近平": 40, "连任": 5, "法轮功": 9})
    assert hinted.rules == plain.rules == [("习近平", "连任")]
    assert hinted.queries < plain.queries


def test_misleading_components_cost_queries_not_exactness() -> None:
    text = FILLER[:14] + "习近平" + FILLER[14:30] + "连任" + FILLER[30:]
    rules = [("近平", "连")]  # the known components are longer than the real ones
    res = run(text, rules, known_components={"习近平": 40, "连任": 5, "公园": 30, "晚上看": 3})
    assert res.rules == [("近平", "连")]


def test_component_probability_prefers_rare_words_used_by_many_rules() -> None:
    assert component_probability("习近平", 500, 0) > component_probability("习近平", 1, 0)
    assert component_probability("中国", 500, 200000) < component_probability("翻墙", 500, 50)
    assert component_probability("的", 3000, 300000) < 0.02


@st.composite
def scenario_with_priors(draw: st.DrawFn) -> tuple[str, Rules, dict[str, int]]:
    text, rules = draw(scenario())
    subs = st.tuples(st.integers(0, max(0, len(text) - 1)), st.integers(1, 5)).map(lambda t: text[t[0] : t[0] + t[1]])
    known = {s: draw(st.integers(1, 100)) for s in draw(st.lists(subs, max_size=6)) if s}
    if draw(st.booleans()):  # sometimes the real components are among the priors
        known.update({c: 50 for r in rules for c in r})
    return text, rules, known


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario_with_priors())
def test_property_exact_with_any_component_priors(sc: tuple[str, Rules, dict[str, int]]) -> None:
    text, rules, known = sc
    seen: set[str] = set()
    res = isolate(text, oracle(rules, seen), separator="\n", known_components=known)
    assert res.complete
    assert as_set(res.rules) == truth(text, rules)
    assert res.queries == len(seen)


def test_part_of_speech_prior_keeps_exactness() -> None:
    from harness.isolation.algorithm import Params

    text = FILLER[:14] + "习近平" + FILLER[14:30] + "连任" + FILLER[30:]
    pos = Params(pos_weights=(("d", 0.1), ("r", 0.1), ("nz", 3.0), ("nr", 1.5)))
    res = run(text, [("近平", "连任")], params=pos)
    assert res.rules == [("近平", "连任")]


# --------------------------------------------------------------------------- known rules, group-tested

NEWS = ("国务院总理今天在人民大会堂会见了来访的外国客人双方就经济合作和地区形势交换了意见"
        "会谈结束后两国政府签署了关于加强农业和教育领域合作的协定中国政府一贯支持地区和平")


def test_many_firing_known_rules_are_group_tested_not_tried_one_by_one() -> None:
    # a text of ordinary news where dozens of known rules of common words fire, plus the real one
    text = NEWS[:30] + "法轮功" + NEWS[30:70] + "学员" + NEWS[70:]
    common = ["中国", "政府", "合作", "地区", "经济", "两国", "会见", "人民", "教育", "农业", "和平", "总理"]
    decoys = [(a, b) for i, a in enumerate(common) for b in common[i + 1:]]  # 66 rules, all present
    rule = ("法轮功", "学员")
    hinted = run(text, [rule], known_rules=decoys + [rule])
    plain = run(text, [rule])
    assert hinted.rules == plain.rules == [rule]
    # the rare components make the real rule the first guess: the text, the guess, two certificates
    assert hinted.queries <= 5 < plain.queries


def test_known_rules_that_are_all_wrong_cost_at_most_one_query() -> None:
    text = NEWS[:30] + "法轮功" + NEWS[30:70] + "学员" + NEWS[70:]
    decoys = [("中国", "政府"), ("合作", "地区"), ("经济", "两国")]
    plain = run(text, [("法轮功", "学员")])
    hinted = run(text, [("法轮功", "学员")], known_rules=decoys)
    assert hinted.rules == plain.rules
    assert hinted.queries <= plain.queries + 1


def test_a_rule_made_of_two_known_rules_components_is_still_found_exactly() -> None:
    # the union of the candidates is censored, yet no candidate alone is: the search falls back
    text = NEWS[:30] + "新疆" + NEWS[30:60] + "集中营" + NEWS[60:]
    known = [("新疆", "政府"), ("集中营", "人民")]
    assert all(c in text for r in known for c in r)
    res = run(text, [("新疆", "集中营")], known_rules=known)
    assert res.rules == [("新疆", "集中营")]
    union = [v for q, v in res.trace if set(q.split(" ")) == {"新疆", "政府", "集中营", "人民"}]
    assert union == [True]  # the group test saw it, and no candidate alone explained it


def test_known_rule_weight_prefers_rare_components() -> None:
    from harness.isolation.textmodel import known_rule_weight, natural_presence

    assert natural_presence("的", 200) > 0.9 > natural_presence("法轮功", 200)
    assert natural_presence("中国", 2000) > natural_presence("中国", 20)
    assert known_rule_weight(("法轮功", "学员"), 200) > 100 * known_rule_weight(("中国", "政府"), 200)


@st.composite
def scenario_with_known_rules(draw: st.DrawFn) -> tuple[str, Rules, list[tuple[str, ...]]]:
    text, rules = draw(scenario())
    subs = st.tuples(st.integers(0, max(0, len(text) - 1)), st.integers(1, 4)).map(lambda t: text[t[0] : t[0] + t[1]])
    known = [tuple(x for x in draw(st.lists(subs, min_size=1, max_size=3)) if x) for _ in range(draw(st.integers(0, 8)))]
    if draw(st.booleans()):
        known += rules
    return text, rules, [k for k in known if k]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario_with_known_rules())
def test_property_exact_with_any_known_rules(sc: tuple[str, Rules, list[tuple[str, ...]]]) -> None:
    text, rules, known = sc
    seen: set[str] = set()
    res = isolate(text, oracle(rules, seen), separator="\n", known_rules=known)
    assert res.complete
    assert as_set(res.rules) == truth(text, rules)
    assert res.queries == len(seen)
