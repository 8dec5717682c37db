import json

import pytest

from harness.exitcodes import ExitCode

from .conftest import FIXTURES, run_cli

MINI = FIXTURES / "probes" / "mini.yaml"


def test_demo_runs_end_to_end_offline_and_quickly(tmp_path):
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    res = run_cli("demo", "--json", cwd=tmp_path)  # from an empty folder: the bundled data, nothing written here
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # CPU seconds, not wall time: the suite shares 2 cores with other work (wall figures: BENCHMARKS.md)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    first, second = out["runs"]
    assert first["status"] == second["status"] == "complete"
    assert first["counts"]["sandbox"]["hard"] > 0 and first["counts"]["sandbox"]["soft"] > 0
    assert first["counts"]["sandbox"].get("failure", 0) == 0
    transitions = {c["term"]: c["transition"] for c in out["diff"]["changes"]}
    assert transitions["李克强"] == "newly_censored"
    assert transitions["达赖喇嘛"] == "hard_to_soft"
    # one removal (and one deletion by the author) next to the keyword changes, with their windows
    items = {c["url"].rsplit("/", 1)[-1]: c for c in out["items"]["changes"]}
    assert {k: c["transition"] for k, c in items.items()} == {"likeqiang": "removed_censored", "diary": "removed_by_author"}
    assert all(c["window_start"] and c["window_end"] and c["signals"] for c in items.values())
    assert cpu < 20, cpu  # about 4 s on this machine


def test_demo_prints_tables_for_people(tmp_path):
    """Piped (stdout not a terminal): every table is a header line and complete tab-separated rows,
    the story (sandbox, epochs, summary lines) goes to stderr; nothing drawn, nothing cut."""
    res = run_cli("demo", "--store", str(tmp_path / "d.db"))
    assert res.returncode == 0, res.stderr
    assert "newly_censored" in res.stdout and "李克强" in res.stdout
    assert "removed_censored" in res.stdout and "removed_by_author" in res.stdout
    assert not set("┏┃│…") & set(res.stdout) and "\x1b" not in res.stdout
    headers = [line for line in res.stdout.splitlines() if line.startswith(("platform\t", "change\t"))]
    assert [h.split("\t")[0] for h in headers] == ["platform", "platform", "change", "change"]
    assert "epoch" in res.stderr and "demo finished" in res.stderr and "watched items" not in res.stdout
    # piped: the keyword and item changes are rows (tsv), one line each, the URL whole; the summaries on stderr
    assert "removed_censored\tsandbox\thttp://sandbox.invalid/item/likeqiang\t" in res.stdout
    assert "items: removed_by_author: 1, removed_censored: 1" in res.stderr
    assert (tmp_path / "d.db").exists()


def test_run_then_diff_through_the_cli(sandbox, tmp_path):
    db = tmp_path / "s.db"
    args = ["run", str(MINI), "--store", str(db), "--base-url", f"sandbox={sandbox.url}", "--probe-cc", "CN"]
    res = run_cli(*args, "--json")
    assert res.returncode == 0, res.stderr
    first = json.loads(res.stdout)
    assert first["counts"]["sandbox"]["hard"] == 5
    sandbox.set_epoch(1)
    res = run_cli(*args, "--quiet")
    assert res.returncode == 0 and res.stdout.count("\n") == 1 and "complete" in res.stdout
    res = run_cli("diff", "--store", str(db), "--json")
    assert res.returncode == 0, res.stderr
    diff = json.loads(res.stdout)
    assert diff["run_a"] == first["run_id"]
    assert diff["counts"]["newly_censored"] == 2


def bad(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


PS_HEAD = f"name: t\nkeywords:\n  - list: {FIXTURES / 'keywords' / 'mini.yaml'}\n"


@pytest.mark.parametrize(
    "text,needle,line",
    [
        ("name: t\nkeywords: [\n", "invalid YAML", 3),
        (PS_HEAD + "platforms:\n  - name: sandbox\n    speed: 3\n", "unknown field", 6),
        (PS_HEAD + "platforms:\n  - name: nowhere\n", "unknown platform 'nowhere'", 5),
        ("name: t\nkeywords:\n  - list: no_such_list\nplatforms:\n  - name: sandbox\n", "unknown keyword list 'no_such_list'", 3),
        (PS_HEAD + "platforms: []\n", "platforms", 4),
    ],
)
def test_bad_probe_sets_give_one_clear_line_and_exit_2(tmp_path, text, needle, line):
    p = bad(tmp_path, "ps.yaml", text)
    res = run_cli("run", str(p), "--store", str(tmp_path / "x.db"))
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    err = " ".join(res.stderr.split())
    assert needle in err
    assert f"{p}:{line}" in err.replace(" ", "")


def test_a_foreign_store_is_refused(tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("not a store")
    res = run_cli("diff", "--store", str(f))
    assert res.returncode == ExitCode.STORE_UNUSABLE and "not a harness store" in res.stderr and "Traceback" not in res.stderr
    res = run_cli("diff", "--store", str(tmp_path))
    assert res.returncode == ExitCode.STORE_UNUSABLE and "directory" in res.stderr


def test_diff_with_a_single_run_says_so(sandbox, tmp_path):
    db = tmp_path / "s.db"
    assert run_cli("run", str(MINI), "--store", str(db), "--base-url", f"sandbox={sandbox.url}", "-q").returncode == 0
    res = run_cli("diff", "--store", str(db))
    assert res.returncode == 2 and "only one complete run" in res.stderr


def test_python_dash_m_and_help():
    res = run_cli("--help")
    assert res.returncode == 0 and "demo" in res.stdout


def test_platforms_list_shows_the_sandbox():
    res = run_cli("platforms", "list", "--json")
    assert res.returncode == 0
    assert "sandbox" in [p["name"] for p in json.loads(res.stdout)]
