"""The package's import graph has no cycle: every import (top-level, in a function, or for type
checking only) runs down a layering from the CLI to the formulas, so no module imports one above it."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "hybrid"


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """``{module: modules of hybrid it imports}``, every import statement counted."""
    modules = {_module(p): p for p in ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    base = ".".join([*parts[: len(parts) - node.level + 1], base]).strip(".")
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            graph[name] |= {t for t in targets if t in modules and t != name and t != "hybrid"}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str]:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph[n]):
            if state.get(m) == 1:
                return [*stack[stack.index(m) :], m]
            if m not in state and (found := visit(m)):
                return found
        state[n] = 2
        stack.pop()
        return []

    for n in sorted(graph):
        if n not in state and (found := visit(n)):
            return found
    return []


def test_the_import_graph_has_no_cycle() -> None:
    graph = import_graph()
    assert len(graph) > 40 and graph["hybrid.cli"]  # it read the package
    assert _cycle(graph) == []


def test_a_cycle_would_be_found() -> None:
    graph = import_graph()
    graph["hybrid.geometry"] = graph["hybrid.geometry"] | {"hybrid.workload"}  # workload imports geometry
    assert _cycle(graph)[0] == _cycle(graph)[-1]


def test_presets_sit_above_families_and_pipelines_and_below_the_workload() -> None:
    graph = import_graph()
    assert {"hybrid.pipelines", "hybrid.models.wan_dit"} <= graph["hybrid.presets"]
    assert "hybrid.presets" in graph["hybrid.workload"]
    below = {"hybrid.geometry", "hybrid.pipelines", "hybrid.ops", "hybrid.rows", "hybrid.timing"}
    below |= {m for m in graph if m.startswith("hybrid.models.")}
    assert not any("hybrid.presets" in graph[m] or "hybrid.workload" in graph[m] for m in below)
