from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.measure.engine import RunOptions
from harness.operations.runs import RunRequest, execute, prepare
from harness.sandbox import Sandbox

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).resolve().parent.parent


def skip_without(component: str, reason: str) -> None:
    """Skip a test that needs a system part this machine lacks (PostgreSQL, Chromium), saying why.

    CI installs those parts and sets ``HARNESS_CI_REQUIRE`` (``.ci/run``): there a missing part
    is a failure, so a test that CI is meant to run for real can never pass by skipping.
    """
    if component in os.environ.get("HARNESS_CI_REQUIRE", "").split():
        pytest.fail(f"{component} is required in CI but missing: {reason}")
    pytest.skip(reason)


@pytest.fixture
def sandbox():
    with Sandbox() as sb:
        yield sb


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "store.db"


def fast_options(**kw) -> RunOptions:
    base = dict(retry_backoff_s=0.01, control_backoff_s=0.01, give_up_after_s=1.0, seed=1)
    base.update(kw)
    return RunOptions(**base)


def run_probe_set(probe_set: Path, store: Path, sb: Sandbox, new: bool = False, **opts):
    req = RunRequest(probe_set, store, base_urls={"sandbox": sb.url}, new=new, options=fast_options(**opts))
    return execute(req, prepare(req))


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("HARNESS_STORE", None)
    return subprocess.run(
        [sys.executable, "-m", "harness", *args], cwd=cwd or REPO, capture_output=True, text=True,
        timeout=timeout, env=env,
    )


@pytest.fixture(scope="session")
def browser():
    """ONE headless Chromium for the whole test session (tests using it carry
    ``pytest.mark.xdist_group("chromium")``, so under ``-n 2`` they share one worker and one browser)."""
    from harness.measure.browser import Browser, browser_problem

    problem = browser_problem()
    if problem is not None:
        skip_without("chromium", f"the browser transport needs Chromium and Playwright: {problem}")
    b = Browser.launch()
    yield b
    b.close()


# --------------------------------------------------------------------------- PostgreSQL (the team store)


@pytest.fixture(scope="session")
def pg_server():
    """One throwaway PostgreSQL server per test process (each xdist worker starts its own, ~1-2 s)."""
    from tests import pgserver

    why = pgserver.unavailable_reason()
    if why:
        skip_without("postgresql", why)
    try:
        server = pgserver.start()
    except RuntimeError as exc:
        skip_without("postgresql", str(exc))
    yield server
    server.stop()


@pytest.fixture
def pg_url(pg_server) -> str:
    """A fresh, empty PostgreSQL store (a schema of its own) as a postgresql:// URL."""
    return pg_server.new_schema()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_target(request, tmp_path: Path):
    """A fresh store on each backend: a SQLite path, then a postgresql:// URL."""
    if request.param == "sqlite":
        return tmp_path / "store.db"
    return request.getfixturevalue("pg_url")
