"""The package's import graph: layers that only point down, and no import cycles.

Every ``import snnprof.X`` / ``from snnprof.X import ...`` in the package counts, including the lazy
imports inside functions. Run ``python -m tests.test_layers`` to print the graph between rooms.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "snnprof"

#: The layers, bottom first. A room (a subpackage or a top-level module of ``snnprof``) may import
#: rooms of lower layers only; rooms of one layer do not import each other.
LAYERS: tuple[frozenset[str], ...] = tuple(frozenset(layer) for layer in (
    {"version", "errors", "io", "units", "quiet", "hardware_profiles"},
    {"validation", "guard", "native_build"},
    {"kernels", "counting", "data"},
    {"energy", "models", "interop"},
    {"views", "export", "convert"},
    {"config"},
    {"dataset"},
    {"workload"},
    {"run"},
    {"comparison"},
    {"pipeline"},
    {"reference_impls"},
    {"render"},
    {"reports"},
    {"cli_common"},
    {"commands"},
    {"cli", "demo_summary"},
    {"__main__", "snnprof"},
))


def modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package."""
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _targets(tree: ast.AST) -> Iterator[str]:
    """Every ``snnprof...`` name imported anywhere in a module (``from a import b`` gives ``a.b``)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def module_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports."""
    mods = modules()

    def resolve(name: str) -> str:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name

    graph: dict[str, set[str]] = {name: set() for name in mods}
    for name, path in mods.items():
        for target in _targets(ast.parse(path.read_text(encoding="utf-8"))):
            found = resolve(target) if target.startswith("snnprof") else ""
            if found and found != name:
                graph[name].add(found)
    return graph


def room(module: str) -> str:
    """The room of a module: ``snnprof.counting.rules.conv`` -> ``counting``; the package itself -> ``snnprof``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "snnprof"


def room_graph() -> dict[str, set[str]]:
    """Room -> the other rooms it imports."""
    graph: dict[str, set[str]] = defaultdict(set)
    for module, targets in module_graph().items():
        graph[room(module)] |= {room(t) for t in targets} - {room(module)}
    return dict(graph)


def render(graph: dict[str, set[str]]) -> str:
    """One line per room, bottom layer first: ``room -> imported rooms``."""
    order = {name: i for i, layer in enumerate(LAYERS) for name in layer}
    rows = sorted(graph, key=lambda r: (order.get(r, -1), r))
    return "\n".join(f"{r:16} -> {', '.join(sorted(graph[r])) or '-'}" for r in rows)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_every_room_has_a_layer() -> None:
    placed = set().union(*LAYERS)
    assert set(room_graph()) <= placed, f"rooms without a layer: {sorted(set(room_graph()) - placed)}"


@pytest.mark.parametrize("name", sorted({r for layer in LAYERS for r in layer}))
def test_room_imports_point_down(name: str) -> None:
    graph = room_graph()
    level = {r: i for i, layer in enumerate(LAYERS) for r in layer}
    upward = sorted(t for t in graph.get(name, ()) if level.get(t, len(LAYERS)) >= level[name])
    assert not upward, f"{name} imports {upward} (same or higher layer)\n{render(graph)}"


def test_readme_layout_matches_the_tree() -> None:
    readme = (PACKAGE.parent / "README.md").read_text(encoding="utf-8")
    block = readme.split("## Layout", 1)[1].split("```", 2)[1]
    listed = [line.split()[0] for line in block.splitlines() if line.strip()]
    missing = [p for p in listed if not (PACKAGE.parent / p).exists()]
    assert not missing, f"README layout lists paths that do not exist: {missing}"
    rooms = {r for r in room_graph() if r not in ("snnprof", "__main__", "demo_summary")}
    named = {Path(p).stem if p.endswith(".py") else Path(p).name for p in listed if p.startswith("snnprof/")}
    assert rooms <= named, f"README layout misses rooms: {sorted(rooms - named)}"


def test_no_import_cycles() -> None:
    found = cycles(module_graph())
    assert not found, f"import cycles: {found}"


if __name__ == "__main__":
    sys.stdout.write(render(room_graph()) + "\n")
