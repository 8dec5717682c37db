"""The prior-free "table" model: character-exact ends, fitted start/end/done rates, optimal probes."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.isolation.algorithm import Params, _alphabetic_roots, _weighted_search, isolate

from .test_isolation import Rules, as_set, oracle, run, truth

MODELS = [Params(), Params(model="table-nofreq"), Params(model="power")]

# Real words, so that jieba's HMM glues a component's edge to its neighbours
# (e.g. "晓" + "是" -> one word "晓是"): the component then starts or ends
# inside a jieba word.
WORDS = ["借助", "朱雅琼", "是", "在", "高等院校", "汉中", "数学", "痛", "学生", "长安", "的", "了",
         "人", "工作", "一招", "裁定", "而", "中国", "因", "便", "防范", "观察员", "他们", "说"]
COMPS = ["晓", "售", "贺龍", "枪", "二十年", "天安门", "VPN", "法輪", "六四日記", "军"]


@st.composite
def worded(draw: st.DrawFn) -> tuple[str, Rules]:
    comps = draw(st.lists(st.sampled_from(COMPS), min_size=1, max_size=3, unique=True))
    words = draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=40))
    for c in comps:
        words.insert(draw(st.integers(0, len(words))), c)
    text = "".join(words)
    return text, [tuple(comps)]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worded(), st.sampled_from(range(len(MODELS))))
def test_property_every_model_is_exact_and_terminates_on_real_words(sc: tuple[str, Rules], m: int) -> None:
    text, rules = sc
    seen: set[str] = set()
    res = isolate(text, oracle(rules, seen), budget=400, params=MODELS[m])
    assert res.complete  # the budget was not exhausted (a guess ending inside a word once looped)
    assert as_set(res.rules) == truth(text, rules)
    assert res.queries == len(seen)


@pytest.mark.parametrize("rule", [("中", "华人民"), ("中华人民", "共和国"), ("中", "华"), ("华", "人民共")])
def test_components_side_by_side_inside_one_dictionary_word(rule: tuple[str, ...]) -> None:
    # "中华人民共和国" is one word in both cuts; with every end offered, a guess can end
    # inside it with the next component starting right there (this once looped forever)
    text = "他们说中国的学生在高等院校工作了中华人民共和国的人而便因防范观察员借助汉中数学长安"
    for params in (Params(end_min_rate=0.0), Params()):
        assert run(text, [rule], params=params).rules == [rule]


def test_component_ending_inside_a_jieba_word_needs_no_repair() -> None:
    # jieba (HMM) cuts ".../惜近/平过/...": the component "惜近平" ends inside a word
    text = "他们说中国的学生在高等院校工作了直播起来惜近平过应用的人而便因防范观察员借助汉中数学长安"
    repair = "惜近平 近平过"  # the certificate's "is the guess 惜近平过 minimal?" query
    table = run(text, [("惜近平",)])
    power = run(text, [("惜近平",)], params=Params(model="power"))
    assert table.rules == power.rules == [("惜近平",)]
    # the old model guesses the word end "惜近平过" and needs the certificate's
    # repair; the character-level end search lands on the exact end
    assert repair in [q for q, _ in power.trace]
    assert repair not in [q for q, _ in table.trace]
    assert table.queries < power.queries


def test_traditional_characters_are_located_sooner() -> None:
    filler = "他们说中国的学生在高等院校工作了人而便因防范观察员借助汉中数学长安"
    text = filler[:20] + "法輪" + filler[20:]
    table = run(text, [("法輪",)])
    nofreq = run(text, [("法輪",)], params=Params(model="table-nofreq"))
    power = run(text, [("法輪",)], params=Params(model="power"))
    assert table.rules == nofreq.rules == power.rules == [("法輪",)]
    assert table.queries < power.queries


def _search(mass: list[float], answer: int) -> tuple[int, int]:
    gen = _weighted_search(mass, lambda i: _probe(i, answer))
    probes = 0
    try:
        q = next(gen)
        while True:
            probes += 1
            q = gen.send(int(q) <= answer)
    except StopIteration as stop:
        return stop.value, probes


def _probe(i: int, answer: int):  # type: ignore[no-untyped-def]
    verdict = yield str(i)
    return verdict


@pytest.mark.parametrize("mass", [[0.002, 0.49, 0.27, 0.005, 0.11, 0.1, 0.02], [1.0] * 9, [0.9] + [0.01] * 10])
def test_weighted_search_finds_every_answer_with_an_optimal_tree(mass: list[float]) -> None:
    expected = 0.0
    for answer in range(len(mass)):
        got, probes = _search(mass, answer)
        assert got == answer
        expected += mass[answer] * probes
    # brute-force optimum of the alphabetic tree (small n)
    total = [0.0, *itertools.accumulate(mass)]

    def best(i: int, j: int) -> float:
        if j - i == 1:
            return 0.0
        return total[j] - total[i] + min(best(i, k) + best(k, j) for k in range(i + 1, j))

    assert expected == pytest.approx(best(0, len(mass)))
    roots = _alphabetic_roots(total, 0, len(mass))
    assert all(i < roots[(i, j)] < j for (i, j) in roots if j - i > 1)


def _bisection_cost(mass: list[float]) -> float:
    """Expected probes of the plain weighted bisection (the search before the optimal tree)."""
    total = [0.0, *itertools.accumulate(mass)]

    def cost(lo: int, hi: int) -> float:
        if hi - lo <= 1:
            return 0.0
        target = (total[lo] + total[hi]) / 2
        k = min(range(lo + 1, hi), key=lambda i: abs(total[i] - target))
        return total[hi] - total[lo] + cost(lo, k) + cost(k, hi)

    return cost(0, len(mass))


def test_skewed_prior_beats_plain_bisection() -> None:
    # two likely outcomes at the ends, unlikely ones between: splitting the mass
    # in half first is not the cheapest tree
    mass = [0.176, 0.002, 0.011, 0.048, 0.002, 0.007, 0.118]
    exp = sum(mass[a] * _search(mass, a)[1] for a in range(len(mass)))
    assert exp < _bisection_cost(mass) - 0.1
