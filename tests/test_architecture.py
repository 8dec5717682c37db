"""The package's shape: stages layered, no import circles, the public API where it was promised.

The stage contract itself is in ``pyproject.toml`` (``[tool.importlinter]``) and is run
here; ``docs/architecture.md`` explains it.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

REPO = Path(__file__).resolve().parent.parent


def test_the_stage_contract_holds():
    # in a child process: import-linter reconfigures logging (it disables existing loggers)
    proc = subprocess.run([sys.executable, "-c", "import sys; from importlinter.cli import lint_imports; "
                           f"sys.exit(lint_imports(config_filename={str(REPO / 'pyproject.toml')!r}))"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 kept, 0 broken" in proc.stdout


def _stage_layers() -> list[grimp.Layer]:
    """The layers of the contract in pyproject.toml, as grimp layers."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    (contract,) = [c for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers"]
    return [grimp.Layer(*(part.strip() for part in line.split("|"))) for line in contract["layers"]]


def test_the_contract_catches_a_lower_stage_importing_a_higher_one():
    graph = grimp.build_graph("harness", exclude_type_checking_imports=False)
    layers = _stage_layers()
    assert graph.find_illegal_dependencies_for_layers(layers=layers) == set()
    graph.add_import(importer="harness.store.sqlite", imported="harness.measure.engine")  # store -> measure
    graph.add_import(importer="harness.keywords.lists", imported="harness.platforms.spec")  # independent siblings
    illegal = {(d.importer, d.imported) for d in graph.find_illegal_dependencies_for_layers(layers=layers)}
    assert illegal == {("harness.store", "harness.measure"), ("harness.keywords", "harness.platforms")}


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    m = stack.pop()
                    on_stack.discard(m)
                    component.append(m)
                    if m == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_module_imports_itself_in_a_circle():
    # type-checking imports and imports inside functions count too
    graph = grimp.build_graph("harness", exclude_type_checking_imports=False)
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_circle():
    graph = grimp.ImportGraph()
    for m in ("p.a", "p.b", "p.c"):
        graph.add_module(m)
    graph.add_import(importer="p.a", imported="p.b")
    graph.add_import(importer="p.b", imported="p.c")
    assert _cycles(graph) == []
    graph.add_import(importer="p.c", imported="p.a")
    assert _cycles(graph) == [["p.a", "p.b", "p.c"]]


PUBLIC_API = {
    "harness.isolation": ["InconsistentOracle", "IsolationResult", "Params", "aisolate", "component_probability",
                          "isolate"],
    "harness.store": ["DEFAULT_STORE_PATH", "Store", "StoreTarget", "is_postgres", "iso", "parse_iso", "redact", "utcnow"],
    "harness.platforms": ["BUILTIN_DIR", "Extractor", "ItemRegistry", "ItemSpec", "Matcher", "PlatformRegistry",
                          "PlatformSpec", "RequestTemplate", "Signals", "SoftTest", "load_item_spec", "load_spec"],
    "harness.platforms.adapters": None,  # the adapter interface: module exists, names below
    "harness.keywords": ["LoadedList", "ValidationReport", "default_search_dirs", "entry_key", "find_list",
                         "load_keyword_list", "search_lists", "select_entries", "validate_lists", "variant_key"],
    "harness.measure": ["Engine", "ProbeTask", "RunOptions", "RunPlan", "RunSummary", "Vantage", "load_probe_set",
                        "plan_run", "run_sync"],
    "harness.analysis": ["DiffResult", "ItemDiff", "diff_items", "diff_runs", "item_timeline", "resolve_run",
                         "survival"],
    "harness.watch": ["LoadedWatchList", "add_items", "default_watch_dirs", "find_watch_list", "items_from_file",
                      "load_watch_list", "remove_items", "select_items"],
    "harness.operations": ["RunRequest", "execute", "prepare"],
    "harness.sandbox": ["DEFAULT_RULES_PATH", "Sandbox", "SandboxRules", "load_rules"],
    "harness.cli": ["app", "main"],
}


@pytest.mark.parametrize("module", sorted(PUBLIC_API))
def test_public_names_are_pinned(module):
    mod = importlib.import_module(module)
    expected = PUBLIC_API[module]
    if expected is not None:
        assert sorted(mod.__all__) == sorted(expected)
        for name in expected:
            assert getattr(mod, name) is not None


def test_the_adapter_interface_and_the_models_stay_where_plugins_find_them():
    from harness import models
    from harness.platforms import adapters

    for name in ("BuiltRequest", "ENTRY_POINT_GROUP", "register_adapter", "get_adapter", "Classification"):
        assert hasattr(adapters, name)
    assert adapters.ENTRY_POINT_GROUP == "harness.platforms"
    for name in ("Keyword", "KeywordList", "ProbeSet", "Measurement", "Run", "Verdict", "TestKeys", "Evidence"):
        assert hasattr(models, name)


def test_every_module_states_its_contract_and_long_ones_say_why_they_are_one_piece():
    for path in sorted((REPO / "harness").rglob("*.py")):
        if path.name == "__main__.py":
            continue
        mod_name = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        mod = importlib.import_module(mod_name)
        assert mod.__doc__ and mod.__doc__.strip(), f"{mod_name} has no module docstring"
        if len(path.read_text(encoding="utf-8").splitlines()) > 800:
            assert "one piece" in mod.__doc__.lower(), f"{mod_name} is over 800 lines and does not say why"
