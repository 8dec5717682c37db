"""A small world for the comparator tests: tailored sandbox rules, lists and probe sets.

Real runs of the engine against real loopback sandboxes; the rules' two epochs are chosen so
that every transition kind happens between a run at epoch "before" and one at epoch "after".
"""

from __future__ import annotations

from pathlib import Path

from harness.measure.engine import Vantage
from harness.operations.runs import RunRequest, execute, prepare
from harness.sandbox import Sandbox, SandboxRules
from harness.sandbox.server import SearchOutcome, render_page

from .conftest import fast_options

BUILTIN_SANDBOX_SPEC = Path(__file__).resolve().parent.parent / "harness" / "platforms" / "builtin" / "sandbox.yaml"

# term: (state at epoch "before", state at epoch "after")
PLAN = {
    "甲一": ("not_censored", "hard"),   # newly_censored
    "乙二": ("hard", "not_censored"),   # newly_uncensored
    "丙三": ("hard", "soft"),           # hard_to_soft
    "丁四": ("soft", "hard"),           # soft_to_hard
    "戊五": ("hard", "hard"),           # became_unknown (outage in the second run)
    "己六": ("not_censored", "not_censored"),  # results_dropped (purge served in the second run)
    "庚七": ("not_censored", "not_censored"),  # dropped_term (leaves the list)
    "辛八": ("not_censored", "not_censored"),  # new_term (joins the list)
    "壬九": ("soft", "soft"),           # unchanged
}
OUTAGE_TERM, PURGED_TERM, DROPPED_TERM, NEW_TERM = "戊五", "己六", "庚七", "辛八"


def rules() -> SandboxRules:
    def epoch(name: str, i: int) -> dict:
        return {"name": name, "hard": [[t] for t, s in PLAN.items() if s[i] == "hard"],
                "soft": [[t] for t, s in PLAN.items() if s[i] == "soft"]}

    return SandboxRules(authorized_domains=["people.com.cn", "xinhuanet.com", "cctv.com"],
                        other_domains=["sohu.com", "zhihu.com", "163.com", "ifeng.com"],
                        empty=["zzqxw"], epochs=[epoch("before", 0), epoch("after", 1)])


def keyword_list(include_new: bool, hostile: bool = False) -> str:
    lines = ["name: cmp", "description: comparator test list", "entries:"]
    for i, term in enumerate(PLAN):
        if term == DROPPED_TERM and include_new:
            continue
        if term == NEW_TERM and not include_new:
            continue
        tags = "[watch]" if i % 2 == 0 else "[]"
        cat = "alpha" if i < 4 else "beta"
        lines.append(f"  - {{term: {term}, category: {cat}, tags: {tags}}}")
    if hostile:
        lines.append("  - {term: '<script>document.title=\"PWNED\"</script>', category: '\" onmouseover=\"alert(1)', tags: [x]}")
        lines.append("  - {term: '<img src=x onerror=alert(1)>', category: beta}")
    return "\n".join(lines) + "\n"


def make_world(root: Path, *, two_platforms: bool = False, flip_retest: bool = True, hostile: bool = False) -> Path:
    """Write keywords/, probes/cmp.yaml and a second sandbox platform spec under ``root``."""
    (root / "keywords").mkdir(parents=True, exist_ok=True)
    (root / "probes").mkdir(exist_ok=True)
    (root / "keywords" / "cmp.yaml").write_text(keyword_list(False, hostile), encoding="utf-8")
    (root / "keywords" / "controls.yaml").write_text(
        "name: controls\nentries:\n  - {term: 天气预报, category: control}\n", encoding="utf-8")
    spec2 = BUILTIN_SANDBOX_SPEC.read_text(encoding="utf-8").replace("name: sandbox\n", "name: sandbox2\n", 1)
    (root / "probes" / "sandbox2.yaml").write_text(spec2, encoding="utf-8")
    platforms = "  - {name: sandbox, rate_limit: {interval_s: 0, jitter: 0, concurrency: 4}}\n"
    if two_platforms:
        platforms += "  - {name: sandbox2, spec: sandbox2.yaml, rate_limit: {interval_s: 0, jitter: 0, concurrency: 4}}\n"
    (root / "probes" / "cmp.yaml").write_text(
        "name: cmp\nkeywords:\n  - list: cmp\nplatforms:\n" + platforms
        + "controls: {every: 20, lists: [controls]}\ntimeout_s: 5\nretries: 0\n"
        + f"flip_retest: {str(flip_retest).lower()}\n", encoding="utf-8")
    return root / "probes" / "cmp.yaml"


def switch_list(root: Path, include_new: bool, hostile: bool = False) -> None:
    (root / "keywords" / "cmp.yaml").write_text(keyword_list(include_new, hostile), encoding="utf-8")


def run(probe_set: Path, store: Path, urls: dict[str, str], vantage: str = "lab"):
    req = RunRequest(probe_set, store, base_urls=urls, new=True,
                     options=fast_options(vantage=Vantage("CN", "AS4134", vantage)))
    return execute(req, prepare(req))


def outage_and_purge(handler, query: str) -> bool:
    """Second-run faults: the outage term gets 503s; the purged term keeps few results."""
    if OUTAGE_TERM in query:
        handler.send_body(503, b"service unavailable", "text/plain")
        return True
    if query == PURGED_TERM:
        page = render_page(query, SearchOutcome(kind="results", domains=["sohu.com", "zhihu.com", "163.com"], count=7))
        handler.send_body(200, page.encode("utf-8"), "text/html; charset=utf-8")
        return True
    return False


def sandboxes(n: int = 1) -> list[Sandbox]:
    return [Sandbox(rules=rules()).start() for _ in range(n)]


class CliResult:
    def __init__(self, returncode: int, stdout: str, exception: BaseException | None):
        self.returncode, self.stdout, self.exception = returncode, stdout, exception


def cli(*args: str) -> CliResult:
    """Run a harness command in this process (fast); errors come back as ``exception``."""
    from typer.testing import CliRunner

    from harness.cli import _register, app

    _register()
    res = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    exc = res.exception if not isinstance(res.exception, SystemExit) else None
    return CliResult(res.exit_code, res.stdout, exc)


def build_three_runs(root: Path) -> tuple[Path, list[str]]:
    """Three runs at vantage 'lab': epoch before; epoch after with an outage and a purge; epoch after again."""
    ps = make_world(root)
    [sb] = sandboxes()
    db = root / "store.db"
    try:
        r1 = run(ps, db, {"sandbox": sb.url})
        sb.set_epoch("after")
        switch_list(root, include_new=True)
        sb.responder = outage_and_purge
        r2 = run(ps, db, {"sandbox": sb.url})
        sb.responder = None
        r3 = run(ps, db, {"sandbox": sb.url})
    finally:
        sb.stop()
    return db, [r1.run_id, r2.run_id, r3.run_id]
