"""The prior-free text model: where components probably start and end (no keyword inside)."""

from __future__ import annotations

import pytest

from harness.isolation import textmodel
from harness.isolation.fitted_weights import END_WEIGHTS, EXPECTED_STARTS, START_WEIGHTS

# Project-written sentences (no third-party text): ordinary news prose.
HOST = "国务院总理今天在人民大会堂会见了来访的外国客人，双方就经济合作和地区形势交换了意见。"


def test_start_probabilities_are_a_deterministic_calibrated_distribution() -> None:
    text = HOST[:17] + "法轮功" + HOST[17:]
    ps = textmodel.start_probabilities(text)
    assert len(ps) == len(text) and all(0.0 < p < 1.0 for p in ps)
    assert sum(ps) == pytest.approx(EXPECTED_STARTS, abs=0.01)  # a rule's few starts, whatever the length
    assert textmodel.start_probabilities(text) == ps
    long = text * 8
    assert sum(textmodel.start_probabilities(long)) == pytest.approx(EXPECTED_STARTS, abs=0.01)


def test_a_string_dropped_into_the_middle_of_a_word_is_a_likely_start() -> None:
    # "经济" cut by an inserted name: the offset after "经" rejoins "济" after the name
    plain = HOST
    cut = HOST.index("经济") + 1
    text = plain[:cut] + "王小波" + plain[cut:]
    ps = textmodel.start_probabilities(text)
    inside_a_word = [x for x in range(1, len(text)) if textmodel._cohesion(text, x, textmodel._jieba()[0]) > 10000]
    assert ps[cut] > 5 * max(ps[x] for x in inside_a_word if x != cut)
    assert "rj:" + str(textmodel.freq_bucket(textmodel._jieba()[0]["经济"])) in textmodel.start_features(
        text, textmodel.boundary_features(text), cut)


def test_end_scores_favour_the_end_that_rejoins_the_cut_word() -> None:
    cut = HOST.index("经济") + 1
    text = HOST[:cut] + "王小波" + HOST[cut:]
    ends = list(range(cut + 1, cut + 9))
    scores = textmodel.end_scores(text, cut, ends)
    assert sum(scores) == pytest.approx(1.0)
    assert max(range(len(ends)), key=scores.__getitem__) == ends.index(cut + 3)


def test_the_fitted_weights_name_features_not_keywords() -> None:
    groups = {"bias", "k", "key", "f", "l", "s", "nf", "pos", "cs", "n1", "x0", "sp", "ksp", "rj", "rjd", "pl", "p1f"}
    assert {f.split(":")[0] for f in START_WEIGHTS} <= groups
    end_groups = {"len", "bt", "rel", "lbt", "w", "wpos", "eot", "esp", "erj", "n1f"}
    assert {f.split(":")[0] for f in END_WEIGHTS} <= end_groups
