"""Issue 14 items 1, 2, 5, 6 and 9: output that reads in pipes and at 80 columns, one run grammar,
one meaning per short flag, readable help, ad-hoc input, diff --exit-code and notify, run --dry-run.
Every command runs the way a user runs it: `python -m harness ...` with stdout a pipe, COLUMNS=80."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from harness.exitcodes import ExitCode

from .comparator_helpers import build_three_runs, make_world, run, sandboxes, switch_list
from .conftest import REPO


def harness(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("HARNESS_")}
    e.update({"COLUMNS": "80"}, **(env or {}))
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=cwd or REPO, capture_output=True, text=True,
                          timeout=timeout, env=e)


@pytest.fixture(scope="module")
def three(tmp_path_factory):
    root = tmp_path_factory.mktemp("ux")
    db, ids = build_three_runs(root)
    return root, db, ids


def tsv(text: str) -> list[list[str]]:
    return [line.split("\t") for line in text.splitlines()]


def test_piped_listings_are_complete_tab_separated_rows(three):
    root, db, ids = three
    res = harness("diff", "--store", str(db), ids[0], ids[1])
    assert res.returncode == 0, res.stderr
    rows = tsv(res.stdout)
    assert rows[0] == ["change", "platform", "term", "vantage", "before", "after", "confirmed"]
    changes = {r[2]: r[0] for r in rows[1:]}
    assert changes["甲一"] == "newly_censored" and changes["乙二"] == "newly_uncensored"
    assert all(len(r) == 7 for r in rows) and "…" not in res.stdout and "\x1b" not in res.stdout
    assert "changes (" in res.stderr  # the summary comes first, on stderr, so the pipe gets only rows
    hist = tsv(harness("history", "--store", str(db)).stdout)
    assert {r[0] for r in hist[1:]} == set(ids)  # whole run ids, even at 80 columns
    runs = tsv(harness("runs", "list", "--store", str(db)).stdout)
    assert {r[0] for r in runs[1:]} == set(ids)
    found = tsv(harness("keywords", "search", "甲一", str(root / "keywords")).stdout)
    assert found[1][1] == f"{root / 'keywords' / 'cmp.yaml'}:{found[1][1].rsplit(':', 1)[1]}"
    plats = tsv(harness("platforms", "list").stdout)
    assert "baidu" in {r[0] for r in plats[1:]} and len({len(r) for r in plats}) == 1


def test_every_listing_takes_format_and_json_stays_an_alias(three):
    root, db, ids = three
    for args in (("runs", "list"), ("history",), ("timeline", "甲一")):
        as_json = harness(*args, "--store", str(db), "--json")
        as_fmt = harness(*args, "--store", str(db), "--format", "json")
        assert as_json.returncode == 0 and json.loads(as_json.stdout) == json.loads(as_fmt.stdout)
    as_csv = harness("diff", "--store", str(db), ids[0], ids[1], "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert {r["term"] for r in rows} >= {"甲一", "乙二"} and "transition" in rows[0]
    table = harness("diff", "--store", str(db), ids[0], ids[1], "--format", "table", "--limit", "2")
    assert table.returncode == 0 and "more changes (--all" in table.stdout
    from rich.cells import cell_len

    drawn = [line for line in table.stdout.splitlines() if line[:1] in "┏┃┡│└"]
    assert drawn and all(cell_len(line) <= 80 for line in drawn)
    full = harness("diff", "--store", str(db), ids[0], ids[1], "--format", "table", "--all")
    for term in ("甲一", "乙二", "丙三", "丁四"):  # key columns never cut, even at 80 columns
        assert term in full.stdout
    assert "newly_censored" in full.stdout and "…" not in full.stdout


VERDICTS = ("not_censored", "no_results", "hard", "soft", "unknown")
CONFIRMED = ("yes", "no", "unconfirmed", "(retest)", "(next_run)")


def _row_cells(table: str, term: str) -> list[str]:
    """The cells of the first drawn line of the row whose term is ``term`` (its key columns are on that line)."""
    [line] = [x for x in table.splitlines() if x.startswith("│") and f" {term} " in x]
    return [c.strip() for c in line.strip("│").split("│")]


@pytest.mark.parametrize("width", [80, 120])
def test_diff_table_shows_every_verdict_whole_at_80_and_120_columns(three, width):
    """Issue 16: at 80 columns the before/after verdicts were split (`not_cens` / `ored`) while the key
    columns stayed whole. Every verdict (and, where shown, every confirmation) is now whole on the line
    of its row's term and change; what does not fit is left out with a note, never cut."""
    from rich.cells import cell_len

    root, db, ids = three
    env = {"COLUMNS": str(width)}
    piped = tsv(harness("diff", "--store", str(db), ids[0], ids[1], env=env).stdout)  # complete, unchanged
    assert piped[0] == ["change", "platform", "term", "vantage", "before", "after", "confirmed"]
    expected = piped[1:]
    assert {r[0] for r in expected} >= {"newly_censored", "newly_uncensored", "hard_to_soft", "soft_to_hard",
                                        "became_unknown", "results_dropped", "new_term", "dropped_term"}
    for extra in ((), ("--all",)):
        res = harness("diff", "--store", str(db), ids[0], ids[1], "--format", "table", *extra, env=env)
        assert res.returncode == 0, res.stderr
        drawn = [x for x in res.stdout.splitlines() if x[:1] in "┏┃┡│└"]
        assert drawn and all(cell_len(x) <= width for x in drawn)
        header = [c.strip() for c in drawn[1].strip("┃").split("┃")]
        words = {w for x in drawn if x.startswith("│") for c in x.strip("│").split("│") for w in c.split()}
        # no piece of a verdict or a confirmation anywhere (`not_cens`, `ored`, `unconfir`, `(next_ru`)
        pieces = {w for w in words if len(w) > 2 and w not in VERDICTS + CONFIRMED
                  and any(w != v and (v.startswith(w) or v.endswith(w)) for v in VERDICTS + CONFIRMED)}
        assert not pieces, res.stdout
        for change, _platform, term, _vantage, before, after, confirmed in expected:
            cells = dict(zip(header, _row_cells(res.stdout, term)))
            assert cells["change"] == change and cells["term"] == term  # key columns whole
            assert cells["before"] == before and cells["after"].split()[0] == after.split()[0]
            if "confirmed" in cells:
                assert cells["confirmed"].split()[0] == confirmed.split()[0]
        if width == 80:  # the confirmations do not fit beside the verdicts: left out, and the note says so
            assert "confirmed" not in header and "vantage" in header
            assert "(confirmed left out at 80 columns: --format tsv or --json shows every column)" in res.stdout
        else:
            assert header == piped[0] and "left out" not in res.stdout
    limited = harness("diff", "--store", str(db), ids[0], ids[1], "--format", "table", "--limit", "3", env=env)
    assert sum(x.startswith("│") and x[2:3] != " " for x in limited.stdout.splitlines()) == 3
    assert f"… {len(expected) - 3} more changes (--all" in limited.stdout


@pytest.mark.parametrize("width", [80, 100, 160])
def test_history_and_timeline_never_split_a_date_or_a_header_word(three, width):
    """`history` split `measurements` into `measuremen`/`ts` and `timeline` split its dates
    (`2026-12`/`-01`); each word is now whole in a table, or the rows are `name: value` records."""
    from rich.cells import cell_len

    root, db, ids = three
    env = {"COLUMNS": str(width)}
    for args, headers in ((("history",), {"measurements", "censored", "results", "failures"}),
                          (("timeline", "甲一"), {"platform", "verdict", "seen", "runs", "failed"})):
        res = harness(*args, "--store", str(db), "--format", "table", env=env)
        assert res.returncode == 0, res.stderr
        drawn = [x for x in res.stdout.splitlines() if x and x[0] in "┏┃┡│└"]
        if not drawn:  # too narrow for a table: every field whole on a line of its own
            assert "started (UTC): " in res.stdout or "first seen: " in res.stdout, res.stdout
            continue
        assert all(cell_len(x) <= width for x in drawn)
        words = {w for x in drawn if x[:1] in "┃│" for c in x.strip("┃│").split(x[0]) for w in c.split()}
        assert headers <= words, res.stdout
        dates = [w for w in words if re.match(r"\d{4}-", w)]  # not run ids (20261201T…Z-…)
        assert dates and all(len(w) == 10 and w[4] == w[7] == "-" for w in dates), res.stdout  # 2026-12-01 whole
        assert not [w for w in words if w.startswith("-") or w.endswith("-")], res.stdout


def test_words_columns_wrap_between_words_and_optional_columns_go_first(capsys, monkeypatch):
    """The table rule behind the diff: a `words` column is never narrower than its longest word; when the
    table does not fit, optional columns are left out (named in a note) before anything is cut; when even
    that does not fit, each row is printed as `name: value` lines with every column."""
    from harness.cli import _output
    from harness.cli._output import Col, print_table

    cols = [Col("term", key=True), Col("A", words=True), Col("B", words=True),
            Col("comment", optional=True)]
    rows = [("甲一", "not_censored (still hard, 3 d old)", "no_results", "a long comment that may wrap anywhere"),
            ("乙二", "unknown", "not_censored (−100% results)", "short")]

    def drawn(width: int) -> str:
        monkeypatch.setattr(_output.console, "width", width)
        print_table(cols, rows)
        return capsys.readouterr().out

    for width, left_out in ((60, False), (45, True)):
        out = drawn(width)
        words = {w for x in out.splitlines() if x.startswith("│") for c in x.split("│") for w in c.split()}
        assert {"not_censored", "no_results", "unknown", "甲一", "乙二"} <= words, out
        if left_out:
            assert "(comment left out at 45 columns: --format tsv or --json shows every column)" in out, out
            assert "anywhere" not in out
        else:
            assert "comment" in out and "anywhere" in out and "left out" not in out, out
    records = drawn(30)
    assert "A: not_censored (still hard, 3 d old)" in records and "comment: short" in records and "│" not in records


def test_one_run_grammar_everywhere_and_clear_failures(three, capsys):
    from .test_schedule_support import cli_inprocess as cli  # through harness.cli.main, stdout captured (not a tty)

    root, db, ids = three
    shown = cli(capsys, "runs", "show", "latest", "--store", str(db), "--json")
    assert shown.returncode == 0 and json.loads(shown.stdout)["run_id"] == ids[-1]
    assert json.loads(cli(capsys, "runs", "show", "latest~1", "--store", str(db), "--json").stdout)["run_id"] == ids[1]
    assert json.loads(cli(capsys, "runs", "show", "latest@lab", "--store", str(db), "--json").stdout)["run_id"] == ids[-1]
    exported = cli(capsys, "export", "--run", "latest~2", "--store", str(db), "--format", "jsonl")
    assert exported.returncode == 0 and {json.loads(x)["report_id"] for x in exported.stdout.splitlines()} == {ids[0]}
    same = harness("diff", "2030-01-01", "latest", "--store", str(db))  # as a user types it
    assert same.returncode == ExitCode.BAD_INPUT and "both name run" in same.stderr and "Traceback" not in same.stderr
    none = cli(capsys, "runs", "show", "latest~9", "--store", str(db))
    assert none.returncode == ExitCode.BAD_INPUT and "no complete run" in none.stderr


def test_diff_exit_code_says_whether_something_changed(three, capsys):
    from .test_schedule_support import cli_inprocess as cli

    root, db, ids = three
    assert harness("diff", "--store", str(db), ids[0], ids[1], "--exit-code").returncode == ExitCode.FOUND
    assert cli(capsys, "diff", "--store", str(db), ids[0], ids[1]).returncode == ExitCode.OK
    same = cli(capsys, "diff", "--store", str(db), ids[1], ids[2], "--exit-code", "--platform", "nowhere")
    assert same.returncode == ExitCode.OK, same.stderr


def _commands(cmd, path=("harness",)):
    yield path, cmd
    for name, sub in (getattr(cmd, "commands", None) or {}).items():
        yield from _commands(sub, (*path, name))


def test_short_flags_help_lines_metavars_version_and_completion(capsys):
    from .test_schedule_support import cli_inprocess

    from harness.cli import _register
    from harness.cli._app import build_command

    _register()
    meaning: dict[str, set[str]] = {}
    for path, cmd in _commands(build_command()):
        for p in cmd.params:
            assert getattr(p, "help", None), f"{' '.join(path)} {p.name}: no help line"
            for opt in p.opts:
                if len(opt) == 2:
                    meaning.setdefault(opt, set()).add(p.opts[0] if p.opts[0] != opt else p.name)
    assert {k: v for k, v in meaning.items() if len(v) > 1} == {}, "a short flag with two meanings"
    for path, _ in _commands(build_command()):
        h = cli_inprocess(capsys, *path[1:], "--help")
        assert h.returncode == 0 and "<bool>" not in h.stdout and "<list[" not in h.stdout and "<str>" not in h.stdout, path
    v = harness("--version")
    assert v.returncode == 0 and v.stdout.startswith("harness ")
    comp = harness("--show-completion", env={"SHELL": "/bin/bash"})
    assert comp.returncode == 0 and "complete" in comp.stdout
    old = harness("run", "--platforms", str(REPO / "nowhere"), "probes/demo.yaml", "--dry-run")  # the old spelling of --specs
    assert old.returncode == ExitCode.BAD_INPUT and "nowhere" in old.stderr and "No such option" not in old.stderr


def test_adhoc_input_runs_without_yaml_and_is_diffable(tmp_path):
    [sb] = sandboxes()
    try:
        terms = tmp_path / "terms.txt"
        terms.write_text("# my terms\n甲一\n\n乙二\n", encoding="utf-8")
        db = tmp_path / "s.db"
        args = ("run", "--platform", "sandbox", "--input", "丙三", "--input-file", str(terms), "--store", str(db),
                "--base-url", f"sandbox={sb.url}", "--retry-backoff", "0")
        plan = harness(*args, "--dry-run", "--format", "json")
        assert plan.returncode == 0, plan.stderr
        data = json.loads(plan.stdout)
        assert {"甲一", "乙二", "丙三"} <= set(data["terms"]) and data["platforms"][0]["platform"] == "sandbox"
        assert not db.exists()  # a dry run sends and stores nothing
        first = harness(*args, "--json")
        assert first.returncode == 0, first.stderr
        sb.set_epoch(1)
        second = harness(*args, "--json")
        assert second.returncode == 0, second.stderr
        name = json.loads(harness("runs", "show", "latest", "--store", str(db), "--json").stdout)["probe_set"]
        assert name.startswith("adhoc-sandbox-")
        diff = harness("diff", "--store", str(db), "--format", "json")
        assert diff.returncode == 0 and json.loads(diff.stdout)["probe_set"] == name
    finally:
        sb.stop()


def test_a_bad_adhoc_term_is_reported_where_the_user_wrote_it_and_nothing_is_written(tmp_path):
    terms = tmp_path / "terms.txt"
    terms.write_text("甲一\n\n# a comment\nx\x1b[31m\n", encoding="utf-8")
    db = tmp_path / "s.db"
    res = harness("run", "--platform", "sandbox", "--input-file", str(terms), "--store", str(db), "--dry-run")
    assert res.returncode == ExitCode.BAD_INPUT
    assert res.stderr.strip() == f"error: {terms}:4: the term contains the control character U+001B"
    res = harness("run", "--platform", "sandbox", "--input", "ok", "--input", "a\x07b", "--store", str(db))
    assert res.returncode == ExitCode.BAD_INPUT and res.stderr.strip().startswith("error: --input 2: ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["terms.txt"]  # no half-made ad-hoc probe set, no store


def test_dry_run_estimates_time_at_the_rate_limit(tmp_path):
    ps = tmp_path / "p.yaml"
    ps.write_text("name: slow\nkeywords:\n  - list: june4\nplatforms:\n  - {name: baidu}\n"
                  "rate_limit: {interval_s: 15, jitter: 0.3, concurrency: 1}\ncontrols: {every: 25}\n", encoding="utf-8")
    res = harness("run", str(ps), "--dry-run", "--format", "json", "--store", str(tmp_path / "s.db"))
    assert res.returncode == 0, res.stderr
    d = json.loads(res.stdout)
    p = d["platforms"][0]
    assert p["requests"] == p["probes"] + p["controls"] and p["estimated_s"] == pytest.approx(p["requests"] * 15, abs=1)
    text = harness("run", str(ps), "--dry-run", "--store", str(tmp_path / "s.db"))
    assert text.returncode == 0 and "baidu" in text.stdout and "terms:" in text.stderr and " min" in text.stderr


class _Receiver(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append({"type": self.headers["Content-Type"], "json": json.loads(body)})
        self.send_response(204)
        self.end_headers()

    def log_message(self, *a):
        pass


def test_notify_posts_the_diff_and_runs_a_command_after_a_run_with_changes(tmp_path):
    root = tmp_path
    ps = make_world(root)
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    out = root / "alert.json"
    ps.write_text(ps.read_text(encoding="utf-8") + (
        f"notify:\n  webhook: http://127.0.0.1:{server.server_port}/hook\n"
        f"  command: [{json.dumps(sys.executable)}, -c, \"import sys; open({str(out)!r}, 'w').write(sys.stdin.read())\"]\n"
        "  changes: [newly_censored]\n"), encoding="utf-8")
    [sb] = sandboxes()
    db = root / "s.db"
    try:
        first = run(ps, db, {"sandbox": sb.url})
        assert first.notifications == [] and _Receiver.received == []  # nothing to compare yet
        sb.set_epoch("after")
        switch_list(root, include_new=True)
        second = run(ps, db, {"sandbox": sb.url})
    finally:
        sb.stop()
        server.shutdown()
    assert [o["ok"] for o in second.notifications] == [True, True], second.notifications
    (got,) = _Receiver.received
    assert got["type"] == "application/json" and got["json"]["event"] == "harness.changes"
    assert {c["transition"] for c in got["json"]["changes"]} == {"newly_censored"}
    assert "甲一" in {c["term"] for c in got["json"]["changes"]}
    assert json.loads(out.read_text(encoding="utf-8")) == got["json"]
    assert str(root) not in json.dumps(got["json"])  # no local path in what is sent
    bad = root / "probes" / "bad.yaml"
    bad.write_text(ps.read_text(encoding="utf-8").replace("changes: [newly_censored]", "changes: [newly_censord]"), encoding="utf-8")
    res = harness("run", str(bad), "--dry-run", "--store", str(db))
    assert res.returncode == ExitCode.BAD_INPUT and "newly_censord" in res.stderr and "bad.yaml" in res.stderr


def test_schedule_install_carries_store_config_and_vantage(tmp_path):
    import shlex

    probes = tmp_path / "probes"
    probes.mkdir()
    (probes / "daily.yaml").write_text("name: daily\nkeywords:\n  - list: june4\nplatforms:\n  - {name: baidu}\n"
                                       "schedule: {cron: '0 3 * * *'}\n", encoding="utf-8")
    (tmp_path / "harness.toml").write_text('[vantage]\nprobe_asn = "AS4134"\n', encoding="utf-8")
    env = {"HARNESS_STORE": "team/store.db", "HARNESS_VANTAGE__LABEL": "bj-1"}
    cron = harness("schedule", "install", "probes", "--crontab", "--probe-cc", "CN", "--base-url",
                   "baidu=http://127.0.0.1:9", cwd=tmp_path, env=env)
    assert cron.returncode == 0, cron.stderr
    (line,) = [x for x in cron.stdout.splitlines() if x and not x.startswith("#")]
    argv = shlex.split(line.split(" && ", 1)[1])
    opts = dict(zip(argv, argv[1:]))
    assert opts["--store"] == str((tmp_path / "team" / "store.db").resolve())
    assert opts["--config"] == str((tmp_path / "harness.toml").resolve())
    assert (opts["--probe-cc"], opts["--vantage"]) == ("CN", "bj-1") and "--probe-asn" not in opts  # that one is in the file
    assert opts["--base-url"] == "baidu=http://127.0.0.1:9"
    units = harness("schedule", "install", "probes", "--systemd", "--probe-cc", "CN", "--base-url",
                    "baidu=http://127.0.0.1:9", cwd=tmp_path, env=env)
    assert units.returncode == 0, units.stderr
    (exec_line,) = [x for x in units.stdout.splitlines() if x.startswith("ExecStart=")]
    argv = shlex.split(exec_line.removeprefix("ExecStart="))
    opts = dict(zip(argv, argv[1:]))
    assert argv[argv.index("run") + 1] == str((probes / "daily.yaml").resolve())
    assert opts["--store"] == str((tmp_path / "team" / "store.db").resolve())
    assert (opts["--probe-cc"], opts["--vantage"], opts["--config"]) == ("CN", "bj-1", str((tmp_path / "harness.toml").resolve()))
    assert opts["--base-url"] == "baidu=http://127.0.0.1:9"
    bad = harness("schedule", "install", "probes", "--crontab", "--base-url", "nourl", cwd=tmp_path, env=env)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "Traceback" not in bad.stderr


def test_retry_backoff_from_probe_set_config_and_command_line(tmp_path, capsys, monkeypatch):
    from .test_schedule_support import cli_inprocess as cli

    ps = tmp_path / "p.yaml"
    body = "name: r\nkeywords:\n  - list: june4\nplatforms:\n  - {name: baidu}\n"
    ps.write_text(body, encoding="utf-8")
    monkeypatch.chdir(tmp_path)

    def backoff(*extra: str) -> float:
        res = cli(capsys, "run", str(ps), "--dry-run", "--format", "json", *extra)
        assert res.returncode == 0, res.stderr
        return json.loads(res.stdout)["retry_backoff_s"]

    assert backoff() == 5.0
    (tmp_path / "harness.toml").write_text("retry_backoff_s = 2.5\n", encoding="utf-8")
    assert backoff() == 2.5
    ps.write_text(body + "retry_backoff_s: 1\n", encoding="utf-8")
    assert backoff() == 1.0
    assert backoff("--retry-backoff", "0.5") == 0.5


OONI_TIME = r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$"


def test_exports_for_sharing_ooni_jsonl_and_csv_without_the_machine(three, tmp_path):
    import re
    import socket

    from harness.failures import FAILURES

    root, db, ids = three
    jsonl = harness("export", "--store", str(db), "--format", "jsonl")
    assert jsonl.returncode == 0, jsonl.stderr
    records = [json.loads(x) for x in jsonl.stdout.splitlines()]
    ooni_strings = {f.ooni for f in FAILURES.values()} | {None}
    for r in records:
        assert r["data_format_version"] == "0.2.0"
        assert re.match(OONI_TIME, r["measurement_start_time"]) and re.match(OONI_TIME, r["test_start_time"])
        assert all(isinstance(v, str) for v in r["annotations"].values())
        assert r["test_keys"]["failure"] in ooni_strings
    failed = [r for r in records if r["test_keys"]["harness_failure"]]
    assert failed and {r["test_keys"]["harness_failure"] for r in failed} >= {"http_5xx"}  # the outage, by its own code
    host = socket.gethostname()
    csv_out = harness("export", "--store", str(db), "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(csv_out.stdout)))
    assert {"variant", "query", "ooni_failure"} <= set(rows[0]) and {r["confirmed"] for r in rows} <= {"true", "false", ""}
    assert "True" not in csv_out.stdout and "False" not in csv_out.stdout
    pq = tmp_path / "e.parquet"
    assert harness("export", "--store", str(db), "-o", str(pq)).returncode == 0
    import pyarrow.parquet as papq

    def leaves(value, key=None):  # (key, scalar) of every leaf of a parsed record
        if isinstance(value, dict):
            for k, v in value.items():
                yield from leaves(v, k)
        elif isinstance(value, list):
            for v in value:
                yield from leaves(v, key)
        else:
            yield key, value

    table = papq.read_table(pq).to_pylist()
    # the machine's name ("vm" here) is too short to search for in raw bytes: look at parsed values
    for shared in (records, rows, table):
        seen = [kv for rec in shared for kv in leaves(rec)]
        assert all(v in (None, "") for k, v in seen if k in ("hostname", "pid"))
        assert host not in {v for _, v in seen}
        assert not any(isinstance(v, str) and str(tmp_path) in v for _, v in seen)  # no local path
    again = tmp_path / "again.db"
    (tmp_path / "e.jsonl").write_text(jsonl.stdout, encoding="utf-8")
    imported = harness("import", str(tmp_path / "e.jsonl"), "--store", str(again), "--json")
    assert imported.returncode == 0 and json.loads(imported.stdout)["added"] == len(records)
    back = harness("export", "--store", str(again), "--format", "jsonl")
    assert back.stdout == jsonl.stdout  # lossless through the OONI format


def test_a_rule_in_two_lists_is_a_warning_not_an_error(tmp_path):
    (tmp_path / "a.yaml").write_text("name: a\nentries:\n  - {term: 六四}\n", encoding="utf-8")
    (tmp_path / "b.yaml").write_text("name: b\nentries:\n  - {term: 天安门}\n  - {term: 六四}\n", encoding="utf-8")
    res = harness("keywords", "validate", str(tmp_path))
    assert res.returncode == 0, res.stderr
    assert f"{tmp_path / 'b.yaml'}:4: warning: duplicate term '六四'" in res.stderr and "1 warning(s)" in res.stderr
    (tmp_path / "a.yaml").write_text("name: a\nentries:\n  - {term: 六四}\n  - {term: 六四}\n", encoding="utf-8")
    assert harness("keywords", "validate", str(tmp_path)).returncode == ExitCode.BAD_INPUT


def test_show_prints_the_evidence_neutralised_and_saves_the_page(tmp_path):
    root = tmp_path
    ps = make_world(root)
    hostile = '<html><div class="nums">为您找到相关结果约0个</div>\x1b]0;PWNED\x07\x1b[2J[bold red]x[/]</html>'

    def page(handler, query: str) -> bool:
        if query == "甲一":
            handler.send_body(200, hostile.encode(), "text/html; charset=utf-8")
            return True
        return False

    [sb] = sandboxes()
    sb.responder = page
    db = root / "s.db"
    try:
        run(ps, db, {"sandbox": sb.url})
    finally:
        sb.stop()
    res = harness("show", "甲一", "--store", str(db))
    assert res.returncode == 0, res.stderr
    assert "甲一 on sandbox" in res.stdout and "HTTP status: 200" in res.stdout and "content-type" in res.stdout
    assert "\x1b" not in res.stdout and "\x07" not in res.stdout and "\\x1b]0;PWNED" in res.stdout
    assert "[bold red]x[/]" in res.stdout  # markup in a page is shown, not applied
    saved = root / "page.html"
    got = harness("show", "甲一", "--store", str(db), "--save", str(saved))
    assert got.returncode == 0 and saved.read_bytes() == hostile.encode()
    mid = json.loads(harness("show", "甲一", "--store", str(db), "--json").stdout)[0]["measurement_id"]
    by_id = harness("show", mid[:10], "--store", str(db), "--json")
    assert json.loads(by_id.stdout)[0]["page"] == hostile
    assert harness("show", "nothing-like-this", "--store", str(db)).returncode == ExitCode.BAD_INPUT


def test_cookie_files_are_read_by_http_cookiejar(tmp_path):
    from harness.measure.sessions import cookie_header, load_cookies

    f = tmp_path / "cookies.txt"
    f.write_text("# Netscape HTTP Cookie File\n.example.org\tTRUE\t/\tTRUE\t0\tSID\tabc\n"
                 "#HttpOnly_www.example.org\tFALSE\t/s\tFALSE\t4102444800\tTOK\txyz\n"
                 "other.net\tFALSE\t/\tFALSE\t0\tNO\tpe\n", encoding="utf-8")
    cookies = load_cookies(f)
    assert {(c.name, c.value) for c in cookies} == {("SID", "abc"), ("TOK", "xyz"), ("NO", "pe")}
    assert cookie_header(cookies, "https://www.example.org/s?q=1") == "SID=abc; TOK=xyz"
    bad = tmp_path / "bad.txt"
    bad.write_text("# Netscape HTTP Cookie File\n.example.org\tTRUE\t/\n", encoding="utf-8")
    res = harness("platforms", "check", "sandbox", "--cookies", f"sandbox={bad}", "--base-url", "http://127.0.0.1:9")
    assert res.returncode == ExitCode.BAD_INPUT and f"{bad}:2" in res.stderr
