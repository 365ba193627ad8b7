"""The layer contract of DESIGN.md ("Layout"): data flows one way, file -> io -> core Instance
-> model -> solve -> Solution -> studies and report. A module imports only from its own layer or
lower ones, and no two modules import each other, directly or round a cycle. Every import
counts, inside functions and under `if TYPE_CHECKING:` too."""

from __future__ import annotations

import ast
from pathlib import Path

SOURCE = Path(__file__).resolve().parent.parent / "src" / "layerdef"
LAYERS = ["errors", "core", "io", "model", "solve", "studies", "report", "api", "cli"]


def module_name(path: Path) -> str:
    parts = path.relative_to(SOURCE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in SOURCE.rglob("*.py")}


def layer(module: str) -> int:
    """The rank of a module's layer; the package's own __init__ sits above the API."""
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 else len(LAYERS)


def imports(path: Path) -> set[str]:
    """The layerdef modules a file imports (a `from package import submodule` names the
    submodule)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("layerdef")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("layerdef"):
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                found.add(child if child in MODULES else node.module)
    return found


GRAPH = {module: imports(path) for module, path in MODULES.items()}


def test_every_module_is_in_a_layer():
    for module in MODULES:
        assert module == "layerdef" or module.split(".")[1] in LAYERS, module


def upward(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    return [(module, target) for module, targets in graph.items() for target in targets
            if layer(target) > layer(module)]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Depth-first search over the module graph; a back edge closes a cycle."""
    state: dict[str, int] = {}
    found = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph.get(module, ())):
            if target == module or target not in graph:
                continue
            if state.get(target) == 1:
                found.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target, path + [target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    return found


def test_no_module_imports_a_higher_layer():
    wrong = upward(GRAPH)
    assert not wrong, "imports against the data flow: " + ", ".join(f"{a} -> {b}" for a, b in wrong)


def test_no_import_cycles():
    found = cycles(GRAPH)
    assert not found, "import cycles: " + "; ".join(" -> ".join(c) for c in found)


def test_the_checks_find_a_planted_violation():
    """Not vacuous: the graph has edges across layers, and an upward import and a cycle
    planted in a copy of it are found."""
    assert sum(len(targets) for targets in GRAPH.values()) > 40
    planted = {module: set(targets) for module, targets in GRAPH.items()}
    planted["layerdef.core.instance"].add("layerdef.cli")
    assert ("layerdef.core.instance", "layerdef.cli") in upward(planted)
    planted["layerdef.solve.deterministic"].add("layerdef.solve.hedged")
    assert any("layerdef.solve.hedged" in cycle for cycle in cycles(planted))
