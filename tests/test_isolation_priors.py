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
