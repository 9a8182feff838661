"""The shape of the code: imports run bot → retrieval → index, the module graph has no cycle, every
package is installed, and the default path never imports the optional Ray engine.

Modules are read with `ast`, not imported, so an import inside a function counts as much as one at
the top of a file: a cycle closed at run time fails as surely as one closed at import time.
"""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Repository folder → installed package (pyproject.toml's package-dir).
FOLDERS = {"newsqa": "newsqa", "bot": "newsqa.bot", "index": "newsqa.index", "retrieval": "newsqa.retrieval"}
# A part may import only the parts after it in this order.
LAYERS = ("newsqa.bot", "newsqa.retrieval", "newsqa.index")
DEFAULT_PATH = ("newsqa.index.build", "newsqa.index.loader", "newsqa.retrieval.service")
OPTIONAL = "newsqa.index.scale.ray_build"


@dataclass(frozen=True)
class Import:
    target: str  # a module of the product
    line: int
    at_import: bool  # run when the module is imported (not inside a function)


def _module_name(path: Path) -> str:
    relative = path.relative_to(REPO).with_suffix("")
    parts = [FOLDERS[relative.parts[0]], *relative.parts[1:]]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> dict[str, Path]:
    found = {}
    for folder in FOLDERS:
        for path in sorted((REPO / folder).rglob("*.py")):
            if "__pycache__" not in path.parts:
                found[_module_name(path)] = path
    return found


def _walk(node: ast.AST, in_function: bool = False) -> Iterator[tuple[ast.AST, bool]]:
    for child in ast.iter_child_nodes(node):
        yield child, in_function
        nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        yield from _walk(child, nested)


def _resolve(name: str, known: dict[str, Path]) -> str | None:
    """The product module `name` names, or the nearest package above it (None outside the product)."""
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


@cache
def imports(module: str) -> tuple[Import, ...]:
    known = modules()
    path = known[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node, in_function in _walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            # `from package import module` imports the module; `from module import name` the module.
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        for name in names:
            target = _resolve(name, known)
            if target is not None and target != module:
                found.append(Import(target, node.lineno, not in_function))
    return tuple(found)


def _layer(module: str) -> int | None:
    return next((i for i, layer in enumerate(LAYERS) if module == layer or module.startswith(layer + ".")), None)


def test_imports_run_bot_retrieval_index():
    wrong = []
    for module in modules():
        mine = _layer(module)
        if mine is None:
            continue
        for imp in imports(module):
            theirs = _layer(imp.target)
            if theirs is not None and theirs < mine:
                wrong.append(f"{module}:{imp.line} imports {imp.target}")
    assert not wrong, "imports against bot → retrieval → index:\n" + "\n".join(wrong)


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (as a path that returns to its start) through each strongly connected component
    of more than one module, found with Tarjan's algorithm."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return [_cycle_in(graph, set(component)) for component in components]


def strongly_connected(graph: dict[str, set[str]], cycle: list[str]) -> set[str]:
    """Every module on some cycle through the first module of `cycle` (what else to untangle)."""
    def reach(start: str, edges: dict[str, set[str]]) -> set[str]:
        seen, frontier = {start}, [start]
        while frontier:
            for w in edges.get(frontier.pop(), set()):
                if w not in seen:
                    seen.add(w)
                    frontier.append(w)
        return seen

    reverse: dict[str, set[str]] = {}
    for v, targets in graph.items():
        for w in targets:
            reverse.setdefault(w, set()).add(v)
    return reach(cycle[0], graph) & reach(cycle[0], reverse)


def _cycle_in(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest path from the component's first module back to itself, inside the component."""
    start = min(component)
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for v in frontier:
            for w in sorted(graph.get(v, set()) & component):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [*reversed(path), start]
                if w not in previous:
                    previous[w] = v
                    following.append(w)
        frontier = following
    raise AssertionError(f"no cycle through {start}")  # a strongly connected component always has one


def test_find_cycles_reports_the_path():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_the_module_graph_has_no_cycle():
    graph = {module: {imp.target for imp in imports(module)} for module in modules()}
    cycles = find_cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(
        f"{' → '.join(cycle)} (modules on cycles with it: {', '.join(sorted(strongly_connected(graph, cycle)))})"
        for cycle in cycles
    )


def test_no_module_imports_another_modules_private_names():
    private = []
    for module, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("newsqa"):
                names = [a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
                private += [f"{module}:{node.lineno} imports {node.module}.{name}" for name in names]
    assert not private, "shared helpers should be public:\n" + "\n".join(private)


def test_every_package_is_installed():
    declared = set(tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"])
    on_disk = {"newsqa"} | {
        _module_name(init)
        for folder in ("bot", "index", "retrieval")
        for init in (REPO / folder).rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    assert declared == on_disk, (
        f"pyproject.toml's packages and the folders with __init__.py differ: "
        f"not listed {sorted(on_disk - declared)}, listed but absent {sorted(declared - on_disk)}"
    )


def test_the_default_path_does_not_import_ray_at_import_time():
    """Ray is an optional extra: importing the default build, loader or service must not reach the
    Ray engine through any chain of imports run at import time."""
    for start in DEFAULT_PATH:
        assert start in modules(), start
        seen, via = {start}, {start: start}
        frontier = [start]
        while frontier:
            module = frontier.pop()
            for imp in imports(module):
                if imp.at_import and imp.target not in seen:
                    seen.add(imp.target)
                    via[imp.target] = module
                    frontier.append(imp.target)
        if OPTIONAL in seen:
            chain = [OPTIONAL]
            while chain[-1] != start:
                chain.append(via[chain[-1]])
            raise AssertionError(f"{start} imports {OPTIONAL} at import time: {' → '.join(reversed(chain))}")
