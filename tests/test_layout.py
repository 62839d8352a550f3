"""The shape of the source tree: no import cycles between packages, no oversized modules.

Packages are the first two dotted parts of a module's name under ``assistant``
(``assistant.chat``, ``assistant.api``, ``assistant.core``), and ``connectors`` as a whole. Imports are read from the syntax
tree, so imports inside functions and under ``TYPE_CHECKING`` count too: a cycle that only
runs lazily is still a cycle in the design.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE_ROOTS = ("assistant", "connectors")
MAX_LINES = 500


def _modules() -> Iterator[tuple[str, Path]]:
    for root in SOURCE_ROOTS:
        for path in sorted((ROOT / root).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            yield ".".join(parts), path


def _package(module: str) -> str:
    parts = module.split(".")
    # ``connectors`` is one package of one module per source kind; ``assistant`` is many.
    return ".".join(parts[:2]) if parts[0] == "assistant" else parts[0]


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def _imported_modules(module: str, path: Path) -> Iterator[str]:
    """Absolute names of the modules ``path`` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text("utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                base = node.module or ""
            else:
                # ``from . import x`` in a package's __init__ is relative to the package itself.
                anchor = module.split(".")
                drop = node.level - 1 if _is_package(path) else node.level
                anchor = anchor[: len(anchor) - drop]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            yield base
            # ``from assistant import cli`` imports the submodule ``assistant.cli``.
            for alias in node.names:
                yield f"{base}.{alias.name}"


def package_graph() -> dict[str, set[str]]:
    """Package → the other first-party packages its modules import."""
    modules = dict(_modules())
    packages = {_package(name) for name in modules}
    graph: dict[str, set[str]] = {package: set() for package in packages}
    for module, path in modules.items():
        source = _package(module)
        for imported in _imported_modules(module, path):
            if imported.split(".")[0] not in SOURCE_ROOTS:
                continue
            target = _package(imported)
            # ``from assistant import x`` names the top package, whose __init__ re-exports; and
            # ``from assistant.chat import Answer`` yields the non-module ``assistant.chat.Answer``
            # too: only packages that exist count.
            if target in packages and target != source:
                graph[source].add(target)
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one package (Tarjan), as sorted lists."""
    index: dict[str, int] = {}
    lowlink: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = lowlink[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                lowlink[node] = min(lowlink[node], lowlink[target])
            elif target in on_stack:
                lowlink[node] = min(lowlink[node], index[target])
        if lowlink[node] == index[node]:
            group: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(groups)


def test_find_cycles_reports_each_cycle_once() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"f"}, "f": {"e"}, "g": set()}
    assert find_cycles(graph) == [["a", "b", "c"], ["e", "f"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_packages_import_each_other_without_cycles() -> None:
    graph = package_graph()
    # The walk must see the packages it is about, or an empty graph would pass.
    assert {"assistant.api", "assistant.chat", "assistant.knowledge", "connectors"} <= set(graph)
    cycles = find_cycles(graph)
    details = {
        " ↔ ".join(group): {p: sorted(graph[p] & set(group)) for p in group} for group in cycles
    }
    assert cycles == [], details


def test_modules_import_each_other_without_cycles() -> None:
    # Inside a package too: two modules that import each other are one module in two files.
    modules = dict(_modules())
    graph: dict[str, set[str]] = {module: set() for module in modules}
    for module, path in modules.items():
        for imported in _imported_modules(module, path):
            # A module importing its own package's ``__init__`` (re-exports) is not a cycle.
            if imported in modules and not f"{module}.".startswith(f"{imported}."):
                graph[module].add(imported)
    assert find_cycles(graph) == []


def test_connectors_never_import_the_assistant() -> None:
    modules = dict(_modules())
    offenders = sorted(
        f"{module} imports {imported}"
        for module, path in modules.items()
        if module.split(".")[0] == "connectors"
        for imported in _imported_modules(module, path)
        if imported.split(".")[0] == "assistant"
    )
    assert offenders == []


def test_no_module_is_over_500_lines() -> None:
    oversized = {
        str(path.relative_to(ROOT)): count
        for _, path in _modules()
        if (count := len(path.read_text("utf-8").splitlines())) > MAX_LINES
    }
    assert oversized == {}
