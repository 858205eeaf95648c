"""Dependencies point one way: no import cycle among the engine's modules (imports made for
type checking only included), podkit never imports a service, and no service imports
another. Read from the source with ast, so every import counts, wherever it is."""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SERVICES = ("sidecar", "ambassador", "adapter", "echoserver", "gitsync", "logagent")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every module `path` imports, absolute names; `from a import b` counts as a.b when
    a.b is a module of ours, else as a."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def package_modules(package: str) -> dict[str, set[str]]:
    """Each module of `package` and the modules of the same package it imports."""
    files = sorted((ROOT / package.replace(".", "/")).rglob("*.py"))
    names = {module_name(path): path for path in files}
    return {
        name: {dep for dep in imports_of(path) if dep in names and dep != name}
        for name, path in names.items()
    }


def test_the_engine_has_no_import_cycle() -> None:
    graph = package_modules("podkit.proxy")
    assert len(graph) > 10  # the engine's modules were found
    # The package's __init__ gathers the public names: it imports, nothing imports it.
    graph = {name: deps - {"podkit.proxy"} for name, deps in graph.items()}
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        pytest.fail(f"import cycle in podkit/proxy: {' -> '.join(exc.args[1])}")
    assert order.index("podkit.proxy.server") > order.index("podkit.proxy.downstream")


def test_the_check_finds_a_cycle() -> None:
    with pytest.raises(CycleError):
        list(TopologicalSorter({"a": {"b"}, "b": {"a"}}).static_order())


@pytest.mark.parametrize("package", ["podkit", *SERVICES])
def test_no_package_imports_a_service_it_is_not(package: str) -> None:
    others = [s for s in SERVICES if s != package]
    wrong = {
        f"{module_name(path)} imports {dep}"
        for path in (ROOT / package).rglob("*.py")
        for dep in imports_of(path)
        if dep.split(".")[0] in others
    }
    assert sorted(wrong) == []
