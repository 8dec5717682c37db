"""One rule for every command, driven through a corpus of hostile inputs (issue 15).

Every leaf command of the CLI is invoked in-process with hostile values: special files
(a FIFO, a folder, /dev/zero), deep nesting, NUL bytes, bytes that are not UTF-8, numbers too
large for the store, a corrupt store, a foreign file as store, output targets that are a
folder, under a file, or a full device (/dev/full). Each invocation must end with a documented
exit code other than "internal error", no traceback, at most a few lines on stderr, and leave
an existing target untouched and no stray temporary behind. Hypothesis adds generated file
contents for every parser. Signals and read-only or full file systems run in real
subprocesses (tests/test_hostile_processes.py).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from harness.exitcodes import EXIT_CODES, ExitCode
from harness.operations.logs import setup_logging

from .conftest import FIXTURES

COMPAT = FIXTURES / "compat"


@dataclass
class Result:
    code: int
    out: str
    err: str


def invoke(*args: str) -> Result:
    """``harness ARGS`` through the real entry point, in this process, output captured."""
    from harness.cli import main

    out, err = io.StringIO(), io.StringIO()
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("HARNESS_")}
    code: int = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(list(args))
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        os.environ.update(saved)
        setup_logging(None)
    return Result(code, out.getvalue(), err.getvalue())


def check(res: Result, *, allowed: set[int] | None = None, what: object = "", max_lines: int = 4) -> None:
    assert res.code in EXIT_CODES, (what, res.code, res.err)
    assert res.code != ExitCode.INTERNAL_ERROR, (what, res.err)
    for text in (res.err, res.out):
        assert "Traceback" not in text and "internal error" not in text, (what, text[-2000:])
    if res.code not in (ExitCode.OK, ExitCode.FOUND):
        assert 1 <= len(res.err.strip().splitlines()) <= max_lines, (what, res.err)  # usage errors show 3 lines
    if allowed is not None:
        assert res.code in allowed, (what, res.code, res.err)


class FifoGuard:
    """Opens the FIFO for writing when a reader waits on it, so code that (wrongly) reads it does not
    hang the suite but fails the test."""

    def __init__(self, fifo: Path, after_s: float = 3.0):
        self.fifo, self.fired = fifo, False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(after_s,), daemon=True)

    def _run(self, after_s: float) -> None:
        while not self._stop.wait(after_s):
            try:  # succeeds only when a reader has the FIFO open: then it was waiting on it
                fd = os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:  # ENXIO: nobody reads it; a slow command (a loaded machine) is not a hang
                continue
            self.fired = True
            os.close(fd)
            return

    def __enter__(self) -> "FifoGuard":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hostile")
    c: dict[str, Path] = {"root": root}
    c["fifo"] = root / "fifo"
    os.mkfifo(c["fifo"])
    c["dir"] = root / "a-folder"
    c["dir"].mkdir()
    c["zero"] = Path("/dev/zero")
    c["deep_yaml"] = root / "deep.yaml"
    c["deep_yaml"].write_text("name: x\nkeywords: " + "[" * 1000 + "]" * 1000 + "\n")
    c["nul_yaml"] = root / "nul.yaml"
    c["nul_yaml"].write_bytes(b"name: x\nkeywords:\n  - list: a\x00b\nplatforms: []\n")
    c["latin1"] = root / "latin1.yaml"
    c["latin1"].write_bytes("name: caf\xe9\n".encode("latin-1"))
    c["huge_num"] = root / "huge.yaml"
    c["huge_num"].write_text("name: x\nkeywords: [{list: mini}]\nplatforms: [{name: sandbox}]\nrepeats: 1" + "0" * 400 + "\n")
    c["deep_toml"] = root / "deep.toml"
    c["deep_toml"].write_text("store = " + "[" * 1000 + "]" * 1000 + "\n")
    c["deep_json"] = root / "deep.json"
    c["deep_json"].write_text("[" * 100000 + "]" * 100000)
    c["store"] = root / "good.db"
    shutil.copyfile(COMPAT / "store-v1.db", c["store"])
    c["corrupt"] = root / "corrupt.db"
    shutil.copyfile(COMPAT / "store-v1.db", c["corrupt"])
    with open(c["corrupt"], "r+b") as fh:
        fh.seek(20000)
        fh.write(b"\xaa" * 8000)
    c["foreign"] = root / "notes.txt"
    c["foreign"].write_text("not a store")
    first = (COMPAT / "export-v1.jsonl").read_text(encoding="utf-8").splitlines()[0]
    rec = json.loads(first)
    bad_code = json.loads(first)
    bad_code["test_keys"].update(verdict="failure", failure="not_a_code")
    huge = json.loads(first)
    huge["test_keys"]["result_count"] = 10**400
    c["jsonl_bad_code"] = root / "bad_code.jsonl"
    c["jsonl_bad_code"].write_text(json.dumps(bad_code) + "\n")
    c["jsonl_huge"] = root / "huge.jsonl"
    c["jsonl_huge"].write_text(json.dumps(huge) + "\n")
    c["jsonl_latin1"] = root / "latin1.jsonl"
    c["jsonl_latin1"].write_bytes(json.dumps(rec).encode() + b"\n" + b"{\"x\": \"\xe9\"}\n")
    c["jsonl_deep"] = root / "deep.jsonl"
    c["jsonl_deep"].write_text("[" * 100000 + "]" * 100000 + "\n")
    c["jsonl_digits"] = root / "digits.jsonl"
    c["jsonl_digits"].write_text('{"a": ' + "9" * 5000 + "}\n")
    c["a_file"] = root / "plain.txt"
    c["a_file"].write_text("a file\n")
    c["good_target"] = root / "keep" / "existing.out"
    c["good_target"].parent.mkdir()
    c["good_target"].write_text("the previous good output\n")
    return c


# Every leaf command, with hostile invocations. {name} is replaced by the corpus path.
CASES: dict[str, list[list[str]]] = {
    "diff": [["--store", "{corrupt}"], ["--store", "{foreign}"], ["--store", "{fifo}"], ["--store", "{dir}"],
             ["latest~99999999999999999999", "latest", "--store", "{store}"], ["--drop-threshold", "1e400", "--store", "{store}"]],
    "run": [["{fifo}"], ["{dir}"], ["{zero}"], ["{deep_yaml}"], ["{nul_yaml}"], ["{latin1}"], ["{huge_num}"],
            ["{deep_yaml}", "--config", "{deep_toml}"], ["{deep_yaml}", "--cookies", "sandbox={deep_json}"],
            ["{deep_yaml}", "--platforms", "{fifo}"]],
    "demo": [["--probe-set", "{fifo}"], ["--probe-set", "{deep_yaml}"]],
    "export": [["--store", "{corrupt}", "-o", "{good_target}"], ["--store", "{store}", "-o", "{dir}"],
               ["--store", "{store}", "-o", "{a_file}/x.jsonl"], ["--store", "{store}", "-o", "/dev/full"],
               ["--store", "{store}", "-o", "/dev/full", "--format", "csv"],
               ["--store", "{store}", "-o", "{dir}/", "--format", "parquet"], ["--store", "{fifo}"]],
    "import": [["{fifo}", "--store", "{root}/i1.db"], ["{dir}", "--store", "{root}/i1.db"], ["{zero}", "--store", "{root}/i1.db"],
               ["{jsonl_bad_code}", "--store", "{root}/i1.db"], ["{jsonl_huge}", "--store", "{root}/i1.db"],
               ["{jsonl_latin1}", "--store", "{root}/i1.db"], ["{jsonl_deep}", "--store", "{root}/i1.db"],
               ["{jsonl_digits}", "--store", "{root}/i1.db"], ["{jsonl_bad_code}", "--store", "{corrupt}"]],
    "init": [["{foreign}"], ["{fifo}"], ["{zero}"], ["{foreign}/sub"]],
    "show": [["x", "--store", "{corrupt}"], ["x", "--store", "{foreign}"], ["x", "--store", "{fifo}"],
             ["\x1b]0;PWNED\x07", "--store", "{store}"], ["x", "--run", "2030-01-01", "--store", "{store}"],
             ["x", "--store", "{store}", "--save", "{dir}"], ["x", "--store", "{store}", "--save", "{foreign}/out.html"]],
    "isolate": [["x", "--platform", "sandbox", "--file", "{fifo}"], ["--platform", "sandbox", "--file", "{zero}"],
                ["x", "--platform", "sandbox", "--platforms", "{deep_yaml}"], ["x", "--platform", "sandbox", "--priors", "{fifo}"]],
    "discover": [["--platform", "sandbox", "--texts", "{fifo}"], ["--platform", "sandbox", "--texts", "{dir}"],
                 ["--platform", "sandbox", "--texts", "{zero}"]],
    "reclassify": [["latest", "--store", "{corrupt}"], ["x", "--store", "{foreign}"], ["x", "--store", "{store}", "--platforms", "{fifo}"]],
    "report": [["--store", "{corrupt}", "-o", "{good_target}"], ["--store", "{store}", "-o", "{dir}"],
               ["--store", "{store}", "-o", "/dev/full"], ["--store", "{store}", "-o", "{a_file}/r.html"]],
    "timeline": [["x", "--store", "{corrupt}"], ["\x1b]0;PWNED\x07", "--store", "{store}"]],
    "history": [["--store", "{corrupt}"], ["--limit", "9" * 30, "--store", "{store}"]],
    "config show": [["--config", "{deep_toml}"], ["--config", "{fifo}"], ["--config", "{zero}"], ["--config", "{latin1}"]],
    "keywords validate": [["{fifo}"], ["{zero}"], ["{deep_yaml}"], ["{nul_yaml}"], ["{latin1}"]],
    "keywords import": [["{fifo}"], ["{zero}"], ["{dir}"], ["{latin1}", "--out", "{dir}"]],
    "keywords add": [["{fifo}", "x"], ["{deep_yaml}", "x"], ["{zero}", "x"]],
    "keywords stats": [["{fifo}"], ["{zero}"], ["{deep_yaml}"]],
    "keywords export": [["{fifo}"], ["{deep_yaml}"], [str(FIXTURES / "keywords" / "mini.yaml"), "--out", "/dev/full"],
                        [str(FIXTURES / "keywords" / "mini.yaml"), "--out", "{dir}"]],
    "keywords search": [["x", "{fifo}"], ["x", "{zero}"]],
    "platforms list": [["--platforms", "{fifo}"], ["--platforms", "{deep_yaml}"], ["--platforms", "{zero}"]],
    "platforms show": [["x", "--platforms", "{deep_yaml}"]],
    "platforms record": [["sandbox", "--out", "{a_file}/rec", "--base-url", "http://127.0.0.1:9"],
                         ["sandbox", "--out", "{root}", "--base-url", "http://127.0.0.1:9"],
                         ["sandbox", "--out", "{root}/rec1", "--cookies", "{fifo}", "--base-url", "http://127.0.0.1:9"],
                         ["sandbox", "--out", "{root}/rec2", "--platforms", "{deep_yaml}"]],
    "platforms check": [["sandbox", "--cookies", "{deep_json}", "--base-url", "http://127.0.0.1:9"],
                        ["sandbox", "--cookies", "{fifo}", "--base-url", "http://127.0.0.1:9"]],
    "platforms profile": [["x", "--store", "{corrupt}"], ["x", "--store", "{fifo}"]],
    "runs list": [["--store", "{corrupt}"], ["--store", "{fifo}"], ["--store", "{dir}"], ["--store", "{zero}"]],
    "runs show": [["x", "--store", "{corrupt}"], ["\x1b[31m", "--store", "{store}"]],
    "sandbox serve": [["--rules", "{fifo}"], ["--rules", "{deep_yaml}"], ["--faults", "{zero}"]],
    "schedule run": [["{fifo}", "--once"], ["--once", "--config", "{deep_toml}"]],
    "schedule status": [["{fifo}"], ["--config", "{deep_toml}"], ["--store", "{corrupt}"]],
    "schedule install": [["{fifo}", "--crontab"], ["--crontab", "--config", "{deep_toml}"]],
    "store check": [["--store", "{corrupt}"], ["--store", "{fifo}"], ["--store", "{foreign}"]],
    "store prune": [["--keep-evidence", "1d", "--store", "{corrupt}"], ["--keep-evidence", "9" * 400 + "d", "--store", "{store}"]],
    "store vacuum": [["--store", "{corrupt}"], ["--store", "{fifo}"]],
    "watch add": [["http://x.example/\x00", "--list", "{fifo}"], ["https://mp.weixin.qq.com/s/x", "--platforms", "{deep_yaml}"]],
    "watch import": [["{fifo}"], ["{zero}"], ["{dir}"], ["{deep_yaml}"], ["{latin1}"]],
    "watch remove": [["x", "--list", "{fifo}"], ["x", "--list", "{deep_yaml}"]],
    "watch list": [["--list", "{fifo}"], ["--list", "{deep_yaml}"], ["--platforms", "{fifo}"]],
    "watch specs": [["--platforms", "{fifo}"], ["--platforms", "{deep_yaml}"], ["--platforms", "{zero}"]],
}


def leaf_commands() -> list[str]:
    import typer

    from harness.cli import _register, app

    _register()

    def walk(cmd, path):
        if hasattr(cmd, "list_commands"):
            for name in cmd.list_commands(None):
                yield from walk(cmd.get_command(None, name), path + [name])
        else:
            yield " ".join(path)

    return sorted(walk(typer.main.get_command(app), []))


def test_the_corpus_covers_every_command():
    assert sorted(CASES) == leaf_commands(), "a new command needs hostile cases in CASES"


def _fill(args: list[str], c: dict[str, Path]) -> list[str]:
    return [a.format(**{k: str(v) for k, v in c.items()}) if "{" in a and "}" in a and "\x1b" not in a else a
            for a in args]


def _strays(c: dict[str, Path]) -> list[Path]:
    return [p for p in c["root"].rglob("*.part")]


@pytest.mark.parametrize("command", sorted(CASES))
def test_every_command_survives_hostile_inputs(command, corpus, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    before = corpus["good_target"].read_bytes()
    for args in CASES[command]:
        argv = command.split() + _fill(args, corpus)
        with FifoGuard(corpus["fifo"]) as guard:
            res = invoke(*argv)
        assert not guard.fired, f"{argv} opened a FIFO and waited on it"
        check(res, what=argv)
        assert res.code != ExitCode.OK or command in ("timeline", "history", "runs show", "diff"), (argv, res.out[-500:])
        assert corpus["good_target"].read_bytes() == before, argv
        assert not _strays(corpus), argv
        for text in (res.out, res.err):
            assert "\x1b]0;" not in text and "\x1b[31m" not in text, argv  # control characters neutralised


def test_the_documented_codes_for_each_kind_of_trouble(corpus, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    c = {k: str(v) for k, v in corpus.items()}
    expect = [
        (["runs", "list", "--store", c["corrupt"]], ExitCode.STORE_UNUSABLE, "store check"),
        (["export", "--store", c["store"], "-o", "/dev/full"], ExitCode.CANNOT_WRITE, "disk is full"),
        (["export", "--store", c["store"], "-o", c["dir"]], ExitCode.CANNOT_WRITE, "is a folder"),
        (["report", "--store", c["store"], "-o", c["a_file"] + "/r.html"], ExitCode.CANNOT_WRITE, "cannot"),
        (["run", c["fifo"]], ExitCode.BAD_INPUT, "FIFO"),
        (["run", c["deep_yaml"]], ExitCode.BAD_INPUT, "nested"),
        (["run", c["nul_yaml"]], ExitCode.BAD_INPUT, "nul.yaml:3"),
        (["import", c["jsonl_bad_code"], "--store", str(tmp_path / "x.db")], ExitCode.BAD_INPUT, "unknown failure code"),
        (["import", c["jsonl_latin1"], "--store", str(tmp_path / "x.db")], ExitCode.BAD_INPUT, "latin1.jsonl:2"),
        (["diff", "--bogus"], ExitCode.BAD_INPUT, "No such option"),
    ]
    for argv, code, words in expect:
        res = invoke(*argv)
        check(res, what=argv)
        assert res.code == code and words in res.err, (argv, res.code, res.err)
    assert c["corrupt"] in invoke("runs", "list", "--store", c["corrupt"]).err  # the line names the file


def test_a_probe_set_of_200000_entries_is_refused_at_once(tmp_path):
    """Refused by its size before it is parsed: parsing these 5 MB of YAML costs tens of CPU seconds.

    CPU time of this process (the command runs in it), not wall time: another job on the
    machine can stretch the wall clock, not the work done here (about 0.05 s)."""
    import time

    big = tmp_path / "big.yaml"
    big.write_text("name: big\nentries:\n" + "".join(f"  - {{term: t{i}}}\n" for i in range(200_000)))
    cpu0 = time.process_time()
    res = invoke("run", str(big))
    cpu = time.process_time() - cpu0
    assert res.code == ExitCode.BAD_INPUT and "more than" in res.err, res.err
    assert cpu < 2, cpu


# --------------------------------------------------------------------------- generated inputs

TEXT = st.one_of(
    st.text(max_size=300),
    st.binary(max_size=300).map(lambda b: b.decode("latin-1")),
    st.recursive(st.one_of(st.integers(min_value=-(10**30), max_value=10**30), st.text(max_size=20), st.none(),
                           st.booleans(), st.floats()),
                 lambda kids: st.one_of(st.lists(kids, max_size=4), st.dictionaries(st.text(max_size=8), kids, max_size=4)),
                 max_leaves=30).map(lambda v: json.dumps(v, ensure_ascii=False)),
)
PARSERS = {
    "probe set": lambda p: ["run", str(p)],
    "keyword list": lambda p: ["keywords", "validate", str(p)],
    "platform spec": lambda p: ["platforms", "list", "--platforms", str(p.parent)],
    "harness.toml": lambda p: ["config", "show", "--config", str(p)],
    "import": lambda p: ["import", str(p), "--store", str(p.parent / "imp.db")],
    "cookies": lambda p: ["run", str(p.parent / "none.yaml"), "--cookies", f"sandbox={p}"],
}


@settings(max_examples=10, deadline=None, phases=(Phase.explicit, Phase.reuse, Phase.generate),
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(kind=st.sampled_from(sorted(PARSERS)), text=TEXT, prefix=st.sampled_from(["", "name: x\n", "name: x\nentries:\n  - ",
                                                                                   "[[", "{\"a\": "]))
def test_generated_inputs_never_crash_a_parser(tmp_path_factory, kind, text, prefix):
    d = tmp_path_factory.mktemp("gen")
    p = d / ("input.yaml" if kind != "import" else "input.jsonl")
    p.write_bytes((prefix + text).encode("utf-8", "surrogatepass"))
    res = invoke(*PARSERS[kind](p))
    check(res, what=(kind, prefix + text), max_lines=50)  # `keywords validate` lists every problem
