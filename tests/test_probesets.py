from pathlib import Path

import pytest

from harness.measure.plan import load_probe_set, plan_run
from harness.platforms.registry import PlatformRegistry

from .conftest import REPO

PROBE_SETS = sorted((REPO / "probes").glob("*.yaml"))


@pytest.mark.parametrize("path", PROBE_SETS, ids=[p.stem for p in PROBE_SETS])
def test_shipped_probe_sets_validate_and_plan(path: Path):
    ps, doc = load_probe_set(path)
    plan = plan_run(ps, PlatformRegistry.default(include_cwd=False), doc=doc)
    assert plan.tasks
    assert {t.platform for t in plan.tasks} == {p.name for p in ps.platforms} | set(plan.item_specs)
    keys = [t.key for t in plan.tasks]
    assert len(keys) == len(set(keys))


def test_the_real_world_probe_set_paces_conservatively():
    ps, doc = load_probe_set(REPO / "probes" / "leaders-xinjiang.yaml")
    plan = plan_run(ps, PlatformRegistry.default(include_cwd=False), doc=doc)
    assert {"toutiao", "baidu"} <= set(plan.specs)
    for limit in plan.rate_limits.values():
        assert limit.interval_s >= 10 and limit.jitter > 0 and limit.concurrency == 1


def test_plans_are_deterministic():
    ps, doc = load_probe_set(REPO / "probes" / "demo.yaml")
    reg = PlatformRegistry.default(include_cwd=False)
    assert [t.key for t in plan_run(ps, reg, doc=doc).tasks] == [t.key for t in plan_run(ps, reg, doc=doc).tasks]
