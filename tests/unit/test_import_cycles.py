"""No import cycles between the parts of ``pipelines`` (its subpackages and top-level modules).

Every ``import``/``from … import`` in the package's source is read from the AST, including the
ones inside functions (a lazy import is still a dependency; it only hides the cycle until run
time). Imports under ``if TYPE_CHECKING:`` are left out: they never execute.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "pipelines"


def _part(module: str) -> str | None:
    """``pipelines.execution.orders`` -> ``execution``; outside the package -> None."""
    parts = module.split(".")
    if parts[0] != "pipelines" or len(parts) < 2:
        return None
    return parts[1]


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def _module_name(path: Path, package: Path) -> str:
    relative = path.relative_to(package.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def dependency_graph(package: Path = PACKAGE) -> dict[str, dict[str, str]]:
    """``{part: {imported part: "file:line" of one such import}}``."""
    graph: dict[str, dict[str, str]] = {}
    for path in sorted(package.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = _type_checking_lines(tree)
        name = _module_name(path, package)
        here = _part(name)
        if here is None:
            continue
        for node in ast.walk(tree):
            if getattr(node, "lineno", None) in skip:
                continue
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                base = node.module
                if node.level:  # relative import
                    anchor = name.split(".")[
                        : len(name.split(".")) - node.level + (path.stem == "__init__")
                    ]
                    base = ".".join([*anchor, node.module])
                targets = [base] + [f"{base}.{a.name}" for a in node.names]
            for target in targets:
                there = _part(target)
                if there is not None and there != here:
                    graph.setdefault(here, {}).setdefault(there, f"{path.name}:{node.lineno}")
    return graph


def cycles(graph: dict[str, dict[str, str]]) -> list[list[str]]:
    """Every elementary cycle's smallest rotation, found by depth-first search."""
    found: set[tuple[str, ...]] = set()

    def visit(start: str, node: str, path: list[str]) -> None:
        for nxt in graph.get(node, {}):
            if nxt == start:
                cycle = path[:]
                i = cycle.index(min(cycle))
                found.add(tuple(cycle[i:] + cycle[:i]))
            elif nxt not in path and nxt > start:
                visit(start, nxt, [*path, nxt])

    for start in graph:
        visit(start, start, [start])
    return sorted(list(c) for c in found)


def test_the_walker_finds_a_planted_cycle(tmp_path) -> None:
    pkg = tmp_path / "pipelines"
    for sub, body in {
        "a": "from pipelines.b import x\n",
        "b": "def f():\n    import pipelines.a\n",
    }.items():
        (pkg / sub).mkdir(parents=True)
        (pkg / sub / "__init__.py").write_text(body)
    (pkg / "c.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pipelines.a\n"
    )
    graph = dependency_graph(pkg)
    assert cycles(graph) == [["a", "b"]]
    assert "c" not in graph  # a type-checking import is not a dependency


def test_no_import_cycles_between_the_parts_of_pipelines() -> None:
    graph = dependency_graph()
    found = cycles(graph)
    described = [
        " -> ".join(f"{a} ({graph[a][b]})" for a, b in zip(c, [*c[1:], c[0]], strict=True))
        for c in found
    ]
    assert not found, "import cycles: " + "; ".join(described)
