import pytest

from harness.analysis.diff import Transition, classify_transition, default_pair, diff_runs, resolve_run
from harness.errors import NotFoundError
from harness.store.sqlite import Store

from .conftest import FIXTURES, run_probe_set

MINI = FIXTURES / "probes" / "mini.yaml"


@pytest.mark.parametrize(
    "before,after,expected",
    [
        ("not_censored", "hard", Transition.newly_censored),
        ("no_results", "soft", Transition.newly_censored),
        ("unknown", "hard", Transition.first_observation),
        ("hard", "not_censored", Transition.newly_uncensored),
        ("soft", "no_results", Transition.newly_uncensored),
        ("hard", "soft", Transition.hard_to_soft),
        ("soft", "hard", Transition.soft_to_hard),
        ("hard", "unknown", Transition.became_unknown),
        (None, "hard", Transition.new_term),
        ("hard", None, Transition.dropped_term),
        ("hard", "hard", None),
        ("not_censored", "no_results", None),
        ("unknown", "not_censored", Transition.first_observation),
        ("unknown", "unknown", None),
    ],
)
def test_transition_kinds(before, after, expected):
    assert classify_transition(before, after) is expected


def test_diff_of_two_real_runs_across_a_rule_change(sandbox, store_target):
    first = run_probe_set(MINI, store_target, sandbox)
    sandbox.set_epoch("2026-11")
    second = run_probe_set(MINI, store_target, sandbox)
    with Store(store_target, readonly=True) as st:
        a, b = default_pair(st, None, None)
        assert (a.run_id, b.run_id) == (first.run_id, second.run_id)
        result = diff_runs(st, a.run_id, b.run_id)
    got = {c.term: c.transition for c in result.changes}
    assert got == {
        "李克强": Transition.newly_censored,
        "白纸": Transition.newly_censored,
        "彭帅": Transition.soft_to_hard,
        "达赖喇嘛": Transition.hard_to_soft,
    }
    assert all(c.confirmed for c in result.changes)
    assert result.counts == {"newly_censored": 2, "soft_to_hard": 1, "hard_to_soft": 1}


def test_failures_never_erase_a_known_verdict(sandbox, store_target):
    first = run_probe_set(MINI, store_target, sandbox)

    def outage(handler, query):
        if "六四" in query:
            handler.send_body(503, b"down", "text/plain")
            return True
        return False

    sandbox.responder = outage
    second = run_probe_set(MINI, store_target, sandbox)
    with Store(store_target, readonly=True) as st:
        result = diff_runs(st, first.run_id, second.run_id)
    assert [(c.term, c.transition, c.after) for c in result.changes] == [("六四", Transition.became_unknown, "unknown")]


def test_run_references(sandbox, store_target):
    first = run_probe_set(MINI, store_target, sandbox)
    second = run_probe_set(MINI, store_target, sandbox, new=True)
    with Store(store_target, readonly=True) as st:
        assert resolve_run(st, "latest").run_id == second.run_id
        assert resolve_run(st, "latest~1").run_id == first.run_id
        assert resolve_run(st, first.run_id[:20]).run_id == first.run_id
        with pytest.raises(NotFoundError):
            resolve_run(st, "latest~5")
        with pytest.raises(NotFoundError):
            resolve_run(st, "no-such-run")


def _interrupted_run(sandbox, store_path, after: int) -> str:
    import asyncio

    from harness.measure.engine import Engine
    from harness.operations.runs import RunRequest, prepare

    from .conftest import fast_options

    req = RunRequest(MINI, store_path, base_urls={"sandbox": sandbox.url}, new=True, options=fast_options())
    plan = prepare(req)
    seen = []

    def stop_after(m):
        seen.append(m)
        if len(seen) == after:
            raise KeyboardInterrupt

    with Store(store_path) as st, pytest.raises(KeyboardInterrupt):
        asyncio.run(Engine(st, req.options).run(plan, progress=stop_after))
    with Store(store_path, readonly=True) as st:
        run = st.list_runs()[0]
    assert run.status == "interrupted"
    return run.run_id


def test_an_unfinished_run_is_never_latest_and_its_unreached_terms_are_not_dropped(sandbox, store_target):
    import json

    from .conftest import run_cli

    first = run_probe_set(MINI, store_target, sandbox)
    partial = _interrupted_run(sandbox, store_target, after=4)
    with Store(store_target, readonly=True) as st:
        assert resolve_run(st, "latest").run_id == first.run_id
        with pytest.raises(NotFoundError, match=f"only one complete run.*unfinished.*{partial}"):
            default_pair(st, None, None)
        result = diff_runs(st, first.run_id, partial)  # named by id: compared, with a note
    assert result.status_b == "interrupted"
    assert "dropped_term" not in result.counts
    assert result.not_reached >= 12 - 4 - 1  # mini has 12 probes; 4 or so were stored before the stop
    assert result.notes and "interrupted" in result.notes[0]
    cli = run_cli("diff", first.run_id, partial, "--store", str(store_target))
    assert cli.returncode == 0, cli.stderr
    assert "not complete" in cli.stdout + cli.stderr and "dropped_term" not in cli.stdout
    as_json = json.loads(run_cli("diff", first.run_id, partial, "--store", str(store_target), "--json").stdout)
    assert as_json["not_reached"] == result.not_reached and "interrupted" in as_json["notes"][0]
    # once resumed to completion, it is the latest run again
    run_probe_set(MINI, store_target, sandbox)
    with Store(store_target, readonly=True) as st:
        assert resolve_run(st, "latest").run_id == partial
        assert default_pair(st, None, None)[0].run_id == first.run_id
