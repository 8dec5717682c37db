import datetime as dt

import pytest
from pydantic import ValidationError

from harness.models import Keyword, Measurement, ProbeSet, Verdict


def test_plain_term_is_one_component():
    kw = Keyword(term="六四")
    assert kw.components == ["六四"]
    assert not kw.is_combination
    assert kw.query(" ") == "六四"


def test_combination_written_with_plus_is_split_into_components():
    kw = Keyword(term="新疆 + 集中营")
    assert kw.components == ["新疆", "集中营"]
    assert kw.query(" ") == "新疆 集中营"
    assert kw.query("") == "新疆集中营"


def test_components_give_the_term():
    kw = Keyword(components=["天安门", "坦克"])
    assert kw.term == "天安门 + 坦克"
    assert kw.is_combination


def test_plus_without_spaces_is_part_of_the_term():
    assert Keyword(term="C++").components == ["C++"]


@pytest.mark.parametrize("bad", ["", "   ", "\t"])
def test_empty_terms_are_rejected(bad):
    with pytest.raises(ValidationError, match="empty"):
        Keyword(term=bad)


def test_control_characters_are_rejected():
    with pytest.raises(ValidationError, match="U\\+0002"):
        Keyword(term="abc\x02")


def test_too_many_components_are_rejected():
    with pytest.raises(ValidationError, match="at most 6"):
        Keyword(components=list("abcdefg"))


def test_unknown_fields_are_rejected():
    with pytest.raises(ValidationError, match="Extra inputs"):
        Keyword(term="x", colour="red")


def test_probe_set_refuses_a_platform_listed_twice():
    with pytest.raises(ValidationError, match="listed twice"):
        ProbeSet(name="x", keywords=[{"list": "a"}], platforms=[{"name": "baidu"}, {"name": "baidu"}])


def test_default_rate_limit_is_conservative():
    ps = ProbeSet(name="x", keywords=[{"list": "a"}], platforms=[{"name": "baidu"}])
    assert ps.rate_limit.interval_s >= 5
    assert ps.rate_limit.jitter > 0
    assert ps.rate_limit.concurrency == 1


def _m(**kw):
    base = dict(measurement_id="m1", run_id="r1", probe_set="p", task_key="k",
                measurement_start_time=dt.datetime.now(dt.timezone.utc), platform="sandbox", input="x", query="x")
    base.update(kw)
    return Measurement(**base)


def test_measurement_failure_code_goes_with_failure_verdict():
    assert _m(verdict=Verdict.failure, failure="timeout").failure == "timeout"
    with pytest.raises(ValidationError):
        _m(verdict=Verdict.failure)
    with pytest.raises(ValidationError):
        _m(verdict=Verdict.hard, failure="timeout")


def test_failures_and_no_results_are_not_censorship():
    assert Verdict.hard.is_censored and Verdict.soft.is_censored
    assert not Verdict.failure.is_censored
    assert not Verdict.no_results.is_censored


def test_measurement_envelope_round_trips_through_json():
    m = _m(verdict=Verdict.soft, probe_cc="CN", probe_asn="AS4134")
    again = Measurement.model_validate_json(m.model_dump_json())
    assert again == m
    doc = m.model_dump(mode="json")
    for key in ("measurement_start_time", "probe_cc", "probe_asn", "input", "test_keys", "software_name"):
        assert key in doc
