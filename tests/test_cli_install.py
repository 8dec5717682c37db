"""Issue 14 item 3: installed anywhere. The bundled lists and probe sets travel in the wheel,
`harness demo` runs from any folder, `harness init` makes a workspace, the store and config are
found from the workspace and `config show` says where each value came from."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from .conftest import REPO


def harness(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120,
            python: str = sys.executable, pythonpath: str | None = None) -> subprocess.CompletedProcess[str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("HARNESS_")}
    e.update({"COLUMNS": "80"}, **(env or {}))
    if pythonpath is not None:
        e["PYTHONPATH"] = pythonpath
    return subprocess.run([python, "-m", "harness", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env=e)


def test_init_makes_a_workspace_and_commands_find_it_from_below(tmp_path):
    ws = tmp_path / "my study"
    res = harness("init", str(ws), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert (ws / "harness.toml").is_file() and (ws / "results").is_dir()
    assert (ws / "keywords" / "leaders.yaml").read_bytes() == (REPO / "keywords" / "leaders.yaml").read_bytes()
    assert (ws / "probes" / "demo.yaml").is_file()
    # a second init keeps what is there (a user's edit survives)
    (ws / "harness.toml").write_text('store = "elsewhere/db.sqlite"\n[vantage]\nprobe_cc = "CN"\n', encoding="utf-8")
    again = harness("init", str(ws), "--json", cwd=tmp_path)
    assert again.returncode == 0 and json.loads(again.stdout)["created"] == []
    below = ws / "probes"
    shown = harness("config", "show", cwd=below)  # stdout is a pipe: plain TSV, every line complete
    assert shown.returncode == 0, shown.stderr
    rows = {line.split("\t")[0]: line.split("\t") for line in shown.stdout.splitlines()}
    assert rows["store"][1] == str((ws / "elsewhere" / "db.sqlite").resolve())
    assert rows["store"][2] == f"{(ws / 'harness.toml').resolve()}:1"
    assert rows["vantage.probe_cc"][1:] == ["CN", f"{(ws / 'harness.toml').resolve()}:3"]
    assert rows["vantage.probe_asn"][2] == "default" and rows["proxy"][1] == "(not set)"
    assert "None" not in shown.stdout and "\x1b" not in shown.stdout
    env = harness("config", "show", "--format", "json", cwd=below, env={"HARNESS_STORE": str(tmp_path / "env.db")})
    data = json.loads(env.stdout)
    assert data["values"]["store"] == str(tmp_path / "env.db") and data["sources"]["store"] == "environment $HARNESS_STORE"
    # the store the commands open is the workspace's, from any folder inside it
    runs = harness("runs", "list", cwd=below)  # no store yet: the error names the workspace's store
    assert runs.returncode == 2 and str((ws / "elsewhere" / "db.sqlite").resolve()) in runs.stderr


def _wheel(tmp_path: Path) -> Path:
    out = tmp_path / "dist"
    cmd = [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "-q", "-w", str(out)]
    if importlib.util.find_spec("wheel"):  # the test extra has it: build with this environment's setuptools
        cmd.append("--no-build-isolation")
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    (whl,) = out.glob("*.whl")
    return whl


def test_the_wheel_carries_the_lists_and_the_demo_runs_from_any_folder(tmp_path):
    whl = _wheel(tmp_path)
    names = zipfile.ZipFile(whl).namelist()
    for folder in ("keywords", "probes", "watch"):
        for f in sorted((REPO / folder).glob("*.yaml")):
            assert f"harness/bundled/{folder}/{f.name}" in names
    for f in sorted((REPO / "harness" / "platforms").glob("builtin*/*.yaml")):  # built-in specs, item specs too
        assert f.relative_to(REPO).as_posix() in names
    assert "harness/sandbox/rules.yaml" in names and "harness/analysis/templates/report.html.j2" in names
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    if os.environ.get("CI"):
        # CI: a fresh virtual environment, the wheel and its dependencies from the index, the whole demo
        venv = tmp_path / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
        py = str(venv / "bin" / "python")
        inst = subprocess.run([py, "-m", "pip", "install", "-q", str(whl)], capture_output=True, text=True, timeout=900)
        assert inst.returncode == 0, inst.stderr[-2000:]
        demo = harness("demo", "--json", cwd=elsewhere, python=py, timeout=600)
        assert demo.returncode == 0, demo.stderr[-2000:]
        assert json.loads(demo.stdout)["diff"]["changes"]
        pythonpath, python = None, py
    else:
        # locally (fast): the wheel unpacked on its own path, the dependencies from this environment;
        # the source tree is not on the path, so only what the wheel carries can be found
        target = tmp_path / "site"
        inst = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(whl)],
                              capture_output=True, text=True, timeout=300)
        assert inst.returncode == 0, inst.stderr[-2000:]
        pythonpath, python = f"{target}{os.pathsep}{sysconfig.get_paths()['purelib']}", sys.executable
        where = subprocess.run([python, "-c", "import harness; print(harness.__file__)"], cwd=elsewhere, text=True,
                               capture_output=True, env={**os.environ, "PYTHONPATH": pythonpath})
        assert where.stdout.startswith(str(target)), where.stdout + where.stderr
        plan = harness("run", "--dry-run", "--format", "json", "--base-url", "sandbox=http://127.0.0.1:9",
                       str(target / "harness" / "bundled" / "probes" / "demo.yaml"), cwd=elsewhere, pythonpath=pythonpath)
        assert plan.returncode == 0, plan.stderr[-2000:]
        assert json.loads(plan.stdout)["platforms"][0]["requests"] > 100
    made = harness("init", "ws", cwd=elsewhere, python=python, pythonpath=pythonpath)
    assert made.returncode == 0, made.stderr
    assert (elsewhere / "ws" / "keywords" / "leaders.yaml").is_file() and (elsewhere / "ws" / "harness.toml").is_file()
    valid = harness("keywords", "validate", cwd=elsewhere / "ws", python=python, pythonpath=pythonpath)
    assert valid.returncode == 0, valid.stderr
