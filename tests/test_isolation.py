"""Behavioural tests for harness.isolation (fast, offline, no ../shared)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.isolation.algorithm import IsolationResult, aisolate, isolate

Rules = list[tuple[str, ...]]


def oracle(rules: Rules, seen: set[str] | None = None) -> Callable[[str], bool]:
    def is_censored(q: str) -> bool:
        if seen is not None:
            if q in seen:
                raise AssertionError(f"query sent twice: {q!r}")
            seen.add(q)
        return any(all(c in q for c in r) for r in rules)

    return is_censored


def as_set(rules: Iterable[Iterable[str]]) -> set[frozenset[str]]:
    return {frozenset(r) for r in rules}


def run(text: str, rules: Rules, **kw: object) -> IsolationResult:
    seen: set[str] = set()
    res = isolate(text, oracle(rules, seen), **kw)  # type: ignore[arg-type]
    assert res.queries == len(seen)
    assert res.complete
    return res


FILLER = "今天天气很好我们一起去公园散步然后回家吃饭晚上看电视新闻节目大家都很开心"


def test_single_component() -> None:
    text = FILLER[:20] + "法轮功" + FILLER[20:]
    res = run(text, [("法轮功",)])
    assert res.rules == [("法轮功",)]


@pytest.mark.parametrize("k", [2, 3, 4, 5, 6])
def test_combinations_of_2_to_6(k: int) -> None:
    comps = ["六四", "坦克", "学生", "广场", "镇压", "屠杀"][:k]
    parts = [FILLER[i * 6 : i * 6 + 6] for i in range(k + 1)]
    text = "".join(p + c for p, c in zip(parts, comps)) + parts[-1]
    res = run(text, [tuple(comps)])
    assert res.rules == [tuple(comps)]


def test_overlapping_components() -> None:
    text = "一帶來二二調整體三三三領域四四四四"
    rule = ("帶來", "調整", "整體", "領域")
    res = run(text, [rule])
    assert res.rules == [rule]


def test_sub_word_components() -> None:
    text = FILLER[:10] + "学习近平讲话" + FILLER[10:]
    assert run(text, [("近平",)]).rules == [("近平",)]
    assert run(text, [("习",)]).rules == [("习",)]


def test_repeated_components() -> None:
    text = "香港" + FILLER[:15] + "游行" + FILLER[15:30] + "香港" + "游行" + FILLER[30:]
    res = run(text, [("香港", "游行")])
    assert res.rules == [("香港", "游行")]


def test_two_rules() -> None:
    text = FILLER[:8] + "天安门" + FILLER[8:20] + "六四" + FILLER[20:30] + "法轮功" + FILLER[30:]
    rules: Rules = [("天安门", "六四"), ("法轮功",)]
    assert as_set(run(text, rules).rules) == as_set(rules)


def test_two_rules_sharing_a_component() -> None:
    text = FILLER[:8] + "香港" + FILLER[8:20] + "游行" + FILLER[20:30] + "独立" + FILLER[30:]
    rules: Rules = [("香港", "游行"), ("香港", "独立")]
    assert as_set(run(text, rules).rules) == as_set(rules)


def test_three_rules() -> None:
    text = FILLER[:8] + "天安门" + FILLER[8:16] + "六四" + FILLER[16:24] + "法轮功" + FILLER[24:32] + "达赖" + FILLER[32:]
    rules: Rules = [("天安门", "六四"), ("法轮功",), ("六四", "达赖")]
    assert as_set(run(text, rules).rules) == as_set(rules)


def test_traditional_latin_digits() -> None:
    text = "今天我們討論了1989年的事情以及Falun功的歷史還有VPN翻牆軟體的下載方式"
    rules: Rules = [("1989", "歷史"), ("VPN", "翻牆")]
    res = run(text, rules, separator="\n")
    assert as_set(res.rules) == as_set(rules)
    assert res.rules == [("1989", "歷史"), ("VPN", "翻牆")]


def test_long_text() -> None:
    rng = random.Random(5)
    chars = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处理府研质"
    body = "".join(rng.choice(chars) for _ in range(2000))
    body = body.replace("达", "")  # make sure the components occur only where inserted
    body = body.replace("赖", "").replace("喇", "").replace("嘛", "")
    text = body[:500] + "达赖" + body[500:1500] + "喇嘛" + body[1500:]
    text = text[:2000]
    assert len(text) == 2000 and "达赖" in text and "喇嘛" in text
    res = run(text, [("达赖", "喇嘛")])
    assert res.rules == [("达赖", "喇嘛")]


def test_uncensored_text_costs_one_query() -> None:
    res = run(FILLER, [("法轮功",)])
    assert res.rules == [] and res.queries == 1 and res.complete


def test_cache_never_repeats_a_query() -> None:
    text = FILLER[:10] + "六四" + FILLER[10:20] + "坦克" + FILLER[20:]
    seen: set[str] = set()
    res = isolate(text, oracle([("六四", "坦克"), ("坦克", "学生")], seen))
    assert res.queries == len(seen) == len(res.trace)


def test_budget() -> None:
    text = FILLER[:10] + "六四" + FILLER[10:20] + "坦克" + FILLER[20:]
    full = run(text, [("六四", "坦克")])
    for budget in (0, 1, 3, full.queries - 1):
        res = isolate(text, oracle([("六四", "坦克")]), budget=budget)
        assert res.complete is False
        assert res.queries <= budget
    res = isolate(text, oracle([("六四", "坦克")]), budget=full.queries)
    assert res.complete and res.rules == full.rules


def test_budget_keeps_rules_found_so_far() -> None:
    text = FILLER[:8] + "天安门" + FILLER[8:20] + "六四" + FILLER[20:30] + "法轮功" + FILLER[30:]
    rules: Rules = [("天安门", "六四"), ("法轮功",)]
    full = run(text, rules)
    res = isolate(text, oracle(rules), budget=full.queries - 1)
    assert not res.complete
    assert as_set(res.rules) <= as_set(rules)


def test_aisolate_matches_isolate() -> None:
    text = "一帶來二二調整體三三三領域四四四四" + FILLER
    rules: Rules = [("帶來", "調整", "整體", "領域"), ("公园", "电视")]
    sync = isolate(text, oracle(rules))

    async def ais(q: str) -> bool:
        await asyncio.sleep(0)
        return oracle(rules)(q)

    res = asyncio.run(aisolate(text, ais))
    assert res.rules == sync.rules and res.queries == sync.queries
    assert res.trace == sync.trace


def test_separator_is_used() -> None:
    text = FILLER[:10] + "六四" + FILLER[10:20] + "坦克" + FILLER[20:]
    res = run(text, [("六四", "坦克")], separator="|")
    assert res.rules == [("六四", "坦克")]
    assert any(q == "六四|坦克" for q, _ in res.trace)
    assert all(" " not in q for q, _ in res.trace)


def test_known_rules_verify_cheaply() -> None:
    text = FILLER[:10] + "六四" + FILLER[10:20] + "坦克" + FILLER[20:]
    plain = run(text, [("六四", "坦克")])
    hinted = run(text, [("六四", "坦克")], known_rules=[("坦克", "六四"), ("法轮功",)])
    assert hinted.rules == plain.rules
    assert hinted.queries <= 4 < plain.queries
    # a wrong hint costs little and does not change the answer
    wrong = run(text, [("六四", "坦克")], known_rules=[("公园", "电视")])
    assert wrong.rules == plain.rules


ALPHA = "甲乙丙丁戊己庚辛壬癸子丑寅卯辰巳午未申酉戌亥ab12"


@st.composite
def scenario(draw: st.DrawFn) -> tuple[str, Rules]:
    n_rules = draw(st.integers(1, 3))
    comp = st.text(alphabet=ALPHA[:14], min_size=1, max_size=4)
    rules: Rules = []
    for _ in range(n_rules):
        rules.append(tuple(draw(st.lists(comp, min_size=1, max_size=4, unique=True))))
    filler = draw(st.text(alphabet=ALPHA, min_size=0, max_size=80))
    units = [c for r in rules for c in r]
    positions = draw(st.lists(st.integers(0, len(filler)), min_size=len(units), max_size=len(units)))
    text = filler
    for u, p in sorted(zip(units, positions), key=lambda x: -x[1]):
        text = text[:p] + u + text[p:]
    return text, rules


def truth(text: str, rules: Rules) -> set[frozenset[str]]:
    """Reduced set of rules present in text (see the module docstring)."""
    present = []
    for r in rules:
        if all(c in text for c in r):
            red = [c for c in set(r) if not any(c != d and c in d for d in r)]
            present.append(frozenset(red))
    out = set()
    for r in present:
        dominated = any(o != r and all(any(a in b for b in r) for a in o) for o in present)
        if not dominated:
            out.add(r)
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario())
def test_property_exact_and_no_duplicate_queries(sc: tuple[str, Rules]) -> None:
    text, rules = sc
    seen: set[str] = set()
    res = isolate(text, oracle(rules, seen), separator="\n")
    assert res.complete
    assert as_set(res.rules) == truth(text, rules)
    assert res.queries == len(seen)
    for r in res.rules:  # components in text order
        assert list(r) == sorted(r, key=lambda c: (text.find(c), len(c)))


def test_a_text_holding_the_separator_never_sends_the_same_string_twice() -> None:
    # different piece sets can join into one string when the text itself holds the separator
    # (here "这个 2.0" as one piece and "这个", "2.0" as two)
    for text, rules in (("说2.0 这个 2.0 不好", [("2.0", "这个"), ("2.0", "说")]),
                        ("这个 U盘 USB 2.0 接口 很慢 法轮功 学员 说 USB 2.0 不好 用", [("法轮功",), ("USB", "不好")])):
        seen: set[str] = set()
        res = isolate(text, oracle(rules, seen))  # the oracle fails on a repeated string
        assert res.complete and res.queries == len(seen)
        assert as_set(res.rules) == truth(text, rules)
