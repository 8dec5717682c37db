"""The README's set-up commands are the ones CI runs, and the docs it points to exist."""

import re

from .conftest import REPO


def _setup_commands() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```sh\n(.*?)```", text, re.S)
    assert block and text.index(block.group(0)) < 40, "the set-up commands come first"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_readme_starts_with_the_demo_and_the_test_command():
    demo, tests = _setup_commands()
    assert demo.endswith("harness demo") and "pip install -e ." in demo
    assert '".[test]"' in tests and "pytest" in tests


def test_ci_runs_exactly_the_readme_test_command():
    _, tests = _setup_commands()
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert tests in ci.splitlines()


def test_documents_linked_from_the_readme_exist():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    for target in re.findall(r"\]\(((?:docs|keywords)/[^)#]+)\)", text):
        assert (REPO / target).is_file(), target
