"""The package layout, checked from the source: imports flow one way; the product's code outside
a package reaches it through its surface (`__init__.__all__`), never its inner modules; and a
surface exports what the rest of the product uses, nothing more. Tests and benchmarks import
the inner modules they exercise, as Optuna's own tests do."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = {"search.run", "search.final_eval", "search.dashboard", "search.predict"}
CLI = "search.cli"
# Leaves: modules every layer may use, which use nothing of the project above them.
LEAVES = {"search.errors", "search.paths", "search.columns", "search.machine", "search.stopping"}
PACKAGES = ("search.study", "search.storage", "search.execution", "search.evaluation")
SURFACES = (*PACKAGES, "models", "data")  # packages other code reaches through __init__
PRODUCT = ("search", "models", "data")  # tests and benchmarks may reach inside
# What each package may import of the project's search packages (the leaves are always fine).
ALLOWED = {
    "search.study": set(),
    "search.storage": set(),
    "search.execution": {"search.study", "search.storage"},
    "search.evaluation": {"search.study", "search.storage"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[str]:
    """Every project module `path` imports (`from X import` and `import X`)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
    return [m for m in found if m.split(".")[0] in ("search", "models", "data")]


def package_of(module: str) -> str | None:
    return next((p for p in PACKAGES if module == p or module.startswith(p + ".")), None)


def surface_of(module: str) -> str | None:
    return next((p for p in SURFACES if module == p or module.startswith(p + ".")), None)


def sources(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def wrong_arrows(me: str, targets: list[str]) -> list[str]:
    """The imports of module `me` that go against the layout."""
    wrong = []
    mine = package_of(me)
    for target in targets:
        theirs = package_of(target)
        if target == CLI and me not in COMMANDS:
            wrong.append(f"{me} -> {target} (only the commands use the command line)")
        elif me in LEAVES and target.startswith("search.") and target not in LEAVES:
            wrong.append(f"{me} -> {target} (a leaf uses no other part of search)")
        elif mine and theirs and theirs != mine and theirs not in ALLOWED[mine]:
            wrong.append(f"{me} -> {target}")
        elif mine and target in COMMANDS:
            wrong.append(f"{me} -> {target} (a command)")
    return wrong


def test_imports_flow_one_way() -> None:
    wrong = [
        w for path in sources("search") for w in wrong_arrows(module_name(path), imports(path))
    ]
    assert not wrong, "\n".join(wrong)


def test_models_and_data_know_nothing_of_the_search_or_optuna() -> None:
    for path in sources("models", "data"):
        tree = ast.parse(path.read_text())
        names = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        names += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        assert not [n for n in names if n.split(".")[0] in ("search", "optuna")], path


def test_outside_a_package_only_its_surface_is_used() -> None:
    wrong = []
    for path in sources(*PRODUCT):
        me = module_name(path)
        for target in imports(path):
            theirs = surface_of(target)
            if theirs and target != theirs and surface_of(me) != theirs:
                wrong.append(f"{me} -> {target}")
    assert not wrong, "\n".join(wrong)


def used_from_outside(package: str) -> set[str]:
    """The names the product's code outside `package` imports from its surface."""
    used: set[str] = set()
    for path in sources(*PRODUCT):
        if surface_of(module_name(path)) == package:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == package:
                used |= {alias.name for alias in node.names}
    return used


@pytest.mark.parametrize("package", SURFACES)
def test_a_surface_exports_only_what_the_product_uses(package: str) -> None:
    unused = set(importlib.import_module(package).__all__) - used_from_outside(package)
    assert not unused, f"{package} exports names no other part of the product uses: {unused}"


@pytest.mark.parametrize("package", SURFACES)
def test_each_surface_names_what_it_exports(package: str) -> None:
    module = importlib.import_module(package)
    assert module.__doc__ and module.__all__
    assert all(hasattr(module, name) for name in module.__all__)


def test_a_wrong_arrow_is_caught(tmp_path: Path) -> None:
    """The check itself can fail: each kind of wrong import is reported."""
    bad = tmp_path / "bad.py"
    bad.write_text("from search.execution import run\nimport search.cli\nfrom optuna import x\n")
    assert imports(bad) == ["search.execution", "search.cli"]
    assert len(wrong_arrows("search.study.space", imports(bad))) == 2
    assert wrong_arrows("search.evaluation.rounds", ["search.execution.worker"])
    assert wrong_arrows("search.storage.locks", ["search.study"])
    assert wrong_arrows("search.paths", ["search.storage"])
    assert wrong_arrows("search.execution.runner", ["search.run"])
    assert not wrong_arrows("search.execution.runner", ["search.study", "search.storage"])
    assert not wrong_arrows("search.run", ["search.cli", "search.execution"])


def test_an_unused_export_is_caught() -> None:
    """The surface check itself can fail: it sees what the product imports, and only that."""
    used = used_from_outside("search.execution")
    assert "run" in used
    assert "Heartbeat" not in used  # tests use it, from search.execution.heartbeat


def handler_calls(path: Path) -> list[str]:
    """The signal-handler and signal-mask calls in `path` (signal.signal, pthread_sigmask)."""
    return [
        node.func.attr
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ("signal", "pthread_sigmask")
    ]


def test_every_stop_handler_is_installed_in_one_module() -> None:
    """How a command stops is said in search/stopping.py, and done there alone."""
    elsewhere = [module_name(path) for path in sources(*PRODUCT) if handler_calls(path)]
    assert elsewhere == ["search.stopping"]
