"""Issue 14 item 2, walked over the whole CLI: every command that takes a run accepts the same
references and fails the same clear way on one that names no run; the options that reach a
platform or a store are spelled (and explained) the same on every command that has them.

Commands run through the real entry point (``harness.cli.main``) with stdout captured (not a
terminal); one run per command goes through ``python -m harness`` at COLUMNS=80 as a user types it.
"""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from harness.exitcodes import ExitCode

from .comparator_helpers import build_three_runs
from .test_cli_ux import harness as harness_subprocess
from .test_schedule_support import cli_inprocess


@pytest.fixture(scope="module")
def three(tmp_path_factory):
    root = tmp_path_factory.mktemp("grammar")
    db, ids = build_three_runs(root)
    return root, db, ids


def _run_of_json(key):
    def pick(out: str) -> str:
        return json.loads(out)[key]
    return pick


def _run_of_jsonl(out: str) -> str:
    (run_id,) = {json.loads(line)["report_id"] for line in out.splitlines() if line.strip()}
    return run_id


def _run_of_show(out: str) -> str:
    (run_id,) = {m["run_id"] for m in json.loads(out)}
    return run_id


def _run_of_profile(out: str) -> str:
    return re.search(r"in run (\S+)", " ".join(out.split())).group(1)


# command (REF stands for the reference) → how to read which run it used from its stdout
RUN_TAKING = {
    "diff": (("diff", "{first}", "REF", "--json"), _run_of_json("run_b")),
    "runs show": (("runs", "show", "REF", "--json"), _run_of_json("run_id")),
    "export --run": (("export", "--run", "REF", "--format", "jsonl"), _run_of_jsonl),
    "show --run": (("show", "甲一", "--run", "REF", "--json"), _run_of_show),
    "reclassify": (("reclassify", "REF", "--dry-run", "--json"), _run_of_json("run_id")),
    "platforms profile": (("platforms", "profile", "REF"), _run_of_profile),
}


def test_the_list_of_run_taking_commands_is_complete():
    """A new command that takes a run (a RUN metavar) must join RUN_TAKING (and the docs' list)."""
    from harness.cli import _register
    from harness.cli._app import build_command

    from .test_cli_ux import _commands

    _register()
    found = set()
    for path, cmd in _commands(build_command()):
        for p in getattr(cmd, "params", []):
            if getattr(p, "metavar", None) == "RUN" or (p.name in ("a", "b") and path[-1] == "diff"):
                opt = next((o for o in p.opts if o.startswith("--")), None)
                found.add(" ".join(path[1:]) + (f" {opt}" if opt else ""))
    assert found == set(RUN_TAKING)


@pytest.mark.parametrize("command", sorted(RUN_TAKING))
def test_every_run_taking_command_takes_every_reference(three, capsys, command):
    root, db, ids = three
    args, run_of = RUN_TAKING[command]
    today = dt.datetime.now(dt.timezone.utc).date().isoformat()
    names = {
        ids[1]: ids[1],                 # a whole id
        ids[1][:-3]: ids[1],            # a unique prefix
        "latest": ids[2],
        "latest~1": ids[1],
        today: ids[2],                  # a date: the newest complete run started on or before it
        "0h": ids[2],                   # an age
        "latest~1@lab": ids[1],         # @VANTAGE
        f"{today}@lab": ids[2],
    }
    for ref, want in names.items():
        argv = [a.replace("REF", ref).replace("{first}", ids[0]) for a in args]
        res = cli_inprocess(capsys, *argv, "--store", str(db))
        assert res.returncode == 0, (command, ref, res.stderr)
        assert run_of(res.stdout) == want, (command, ref)
    for ref, says in {"2000-01-01": "no complete run started on or before 2000-01-01",
                      "latest~9": "no complete run 'latest~9'",
                      "latest@nowhere": "at vantage 'nowhere'",
                      "9999": "9999",
                      "2026-13-45": "not a valid date"}.items():
        argv = [a.replace("REF", ref).replace("{first}", ids[0]) for a in args]
        res = cli_inprocess(capsys, *argv, "--store", str(db))
        assert res.returncode == ExitCode.BAD_INPUT, (command, ref, res.stdout, res.stderr)
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and says in lines[0] and "Traceback" not in res.stderr, (command, ref, res.stderr)
    # as a user types it: a pipe at 80 columns; a reference that names no run is one line, exit 2
    argv = [a.replace("REF", "2000-01-01").replace("{first}", ids[0]) for a in args]
    res = harness_subprocess(*argv, "--store", str(db))
    assert res.returncode == ExitCode.BAD_INPUT and res.stderr.count("\n") == 1 and res.stdout == "", res.stderr


def test_diff_never_compares_a_run_with_itself(three, capsys):
    root, db, ids = three
    for a, b in (("2030-01-01", "latest"), ("latest", "latest"), (ids[2], "latest"), ("0h", ids[2])):
        res = cli_inprocess(capsys, "diff", a, b, "--store", str(db))
        assert res.returncode == ExitCode.BAD_INPUT and "both name run" in res.stderr, (a, b, res.stderr)
    res = cli_inprocess(capsys, "diff", "latest~2", "latest~1", "--store", str(db), "--json")
    assert res.returncode == 0 and (json.loads(res.stdout)["run_a"], json.loads(res.stdout)["run_b"]) == tuple(ids[:2])
    # a date or an age as A counts back from B's start
    today = dt.datetime.now(dt.timezone.utc).date().isoformat()
    res = cli_inprocess(capsys, "diff", ids[0], "latest~1", "--store", str(db), "--json")
    assert res.returncode == 0 and json.loads(res.stdout)["run_b"] == ids[1]
    res = cli_inprocess(capsys, "diff", today, ids[1], "--store", str(db), "--json")  # never ids[2], after B
    assert res.returncode == ExitCode.BAD_INPUT and "both name run " + ids[1] in res.stderr


def _options_of(path_prefix: tuple[str, ...] = ()):
    from harness.cli import _register
    from harness.cli._app import build_command

    from .test_cli_ux import _commands

    _register()
    for path, cmd in _commands(build_command()):
        for p in getattr(cmd, "params", []):
            yield " ".join(path[1:]), p


# commands that send requests to a platform: each takes --base-url, --cookies and --proxy
REACHES_A_PLATFORM = {"run", "isolate", "discover", "platforms check", "platforms record"}


def test_network_and_store_options_are_one_spelling_everywhere():
    seen: dict[str, dict[str, tuple]] = {}
    for command, p in _options_of():
        for opt in ("--base-url", "--cookies", "--proxy", "--store", "--specs", "--config",
                    "--probe-cc", "--probe-asn", "--retry-backoff"):
            if opt in p.opts:
                seen.setdefault(opt, {})[command] = (tuple(p.opts), p.metavar, p.help, p.envvar)
    for command in REACHES_A_PLATFORM:
        for opt in ("--base-url", "--cookies", "--proxy"):
            assert command in seen[opt], f"{command} has no {opt}"
    for opt in ("--base-url", "--cookies", "--proxy"):
        # the scheduler passes --base-url on to the runs it starts (schedule install writes it into the line)
        allowed = {"schedule run", "schedule install"} if opt == "--base-url" else {"schedule run"}
        assert set(seen[opt]) - REACHES_A_PLATFORM <= allowed, seen[opt].keys()
    # the demo's --store is the one exception: a SQLite file to keep its runs in, never $HARNESS_STORE
    # (a demo must not write sandbox runs into the researcher's own store)
    assert seen["--store"].pop("demo")[:2] == (("--store", "-s"), "PATH")
    for opt, where in seen.items():
        spellings = {(opts, metavar) for opts, metavar, _, _ in where.values()}
        assert len(spellings) == 1, f"{opt} is written {len(spellings)} ways: {where}"
    # the store option reads $HARNESS_STORE everywhere (schedule install carries it)
    assert {envvar for _, _, _, envvar in seen["--store"].values()} == {"HARNESS_STORE"}
    # every command that opens the store takes --store (the demo's own temporary store included)
    for command in ("diff", "runs list", "runs show", "history", "export", "import", "show", "timeline", "report",
                    "reclassify", "platforms profile", "isolate", "discover", "run", "schedule install",
                    "schedule run", "store check", "store prune"):
        assert command in seen["--store"], f"{command} has no --store"
