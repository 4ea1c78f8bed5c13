"""The helpers package's layers: dependencies point one way, and nothing imports in a cycle.

Layers, top to bottom: tools -> checks -> topics / exercises -> aws -> measure -> runtime.
Each module's imports are read with ast (every import, also those inside functions).
"""

from __future__ import annotations

import ast
from pathlib import Path

import helpers

ROOT = Path(helpers.__file__).parent

# What each layer may import (itself included). helpers/__init__.py is the facade and may import
# any layer below tools.
ALLOWED = {
    "runtime": {"runtime"},
    "measure": {"measure", "runtime"},
    "aws": {"aws", "measure", "runtime"},
    "exercises": {"exercises", "runtime"},
    "topics": {"topics", "exercises", "aws", "measure", "runtime"},
    "checks": {"checks", "topics", "exercises", "aws", "measure", "runtime"},
    "tools": {"tools", "checks", "topics", "exercises", "aws", "measure", "runtime"},
    "": {"checks", "topics", "exercises", "aws", "measure", "runtime"},
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer(module: str) -> str:
    if module == "helpers.__main__":  # `python -m helpers`: the command line
        return "tools"
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ALLOWED else ""


def imports(path: Path) -> set[str]:
    """Absolute names of the helpers modules that `path` imports."""
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "helpers"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "helpers":
                continue
            for a in node.names:  # `from helpers.x import y` may name a module y
                sub = f"{target}.{a.name}"
                found.add(sub if _is_module(sub) else target)
    found.discard(me)
    return found


def _is_module(name: str) -> bool:
    rel = Path(*name.split(".")[1:])
    return (ROOT / rel).with_suffix(".py").exists() or (ROOT / rel / "__init__.py").exists()


MODULES = {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}
GRAPH = {name: imports(path) for name, path in MODULES.items()}


def test_every_layer_is_a_package_named_for_what_it_holds():
    assert {p.name for p in ROOT.iterdir() if (p / "__init__.py").exists()} == set(ALLOWED) - {""}


def test_no_module_imports_upward():
    upward = [f"{mod} imports {dep}" for mod, deps in GRAPH.items() for dep in sorted(deps)
              if mod != "helpers" and dep != "helpers" and layer(dep) not in ALLOWED[layer(mod)]]
    assert upward == []


def test_only_the_facade_is_imported_from_the_top():
    """`from helpers import X` (the facade) is for notebooks and tools, not for the layers below."""
    offenders = [mod for mod, deps in GRAPH.items() if "helpers" in deps and layer(mod) not in ("tools", "")]
    assert offenders == []


def test_no_import_cycles_between_modules():
    cycles: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in sorted(GRAPH.get(node, ())):
            if dep not in GRAPH or dep == "helpers":
                continue
            if state.get(dep) == 1:
                cycles.append(path[path.index(dep):] + [dep] if dep in path else [node, dep])
            elif dep not in state:
                visit(dep, path + [dep])
        state[node] = 2

    for mod in GRAPH:
        if mod not in state:
            visit(mod, [mod])
    assert cycles == []


def test_nothing_is_imported_by_a_name_held_in_a_string():
    offenders = [mod for mod, path in MODULES.items()
                 if "import_module(" in path.read_text() or "__import__(" in path.read_text()]
    assert offenders == []
