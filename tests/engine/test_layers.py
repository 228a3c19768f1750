"""The engine's layers: imports go one way, down, and no two modules import each other.

Read from the source with ``ast``, type-only imports (under ``TYPE_CHECKING``)
included: a cycle that only the type checker sees still makes a reader hold
both modules in mind at once.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from engine.paths import CODE_ROOT as PROJECT_ROOT

ENGINE = PROJECT_ROOT / "engine"

ARCHITECTURE = PROJECT_ROOT / "docs" / "architecture.md"


def layers_of(text: str) -> list[set[str]]:
    """The ``layers`` block of docs/architecture.md: a layer a line, lowest first."""
    found = re.search(r"^```layers\n(.*?)^```", text, re.S | re.M)
    assert found, "docs/architecture.md has no ```layers block"
    return [set(line.split()) for line in found.group(1).splitlines() if line.strip()]


#: Lowest first.  A module may import its own layer and the layers before it.
LAYERS = layers_of(ARCHITECTURE.read_text(encoding="utf-8"))

#: The one place where modules name each other's types: a transaction records
#: and restores the world's objects, and the objects open transactions.
MUTUAL = {"world"}


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(PROJECT_ROOT).with_suffix("").parts).removesuffix(".__init__")


def part_of(module: str) -> str:
    """``engine.net.session`` -> ``net``; ``engine.app`` -> ``app``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def rank(module: str) -> int:
    part = part_of(module)
    return next(i for i, layer in enumerate(LAYERS) if part in layer)


def imports() -> dict[str, set[str]]:
    """Module -> the engine modules it imports, at run time or for types."""
    modules = {module_name(p): p for p in ENGINE.rglob("*.py")}
    found: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and node.module.startswith("engine")
            ):
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    targets.add(sub if sub in modules else node.module)
            elif isinstance(node, ast.Import):
                targets |= {a.name for a in node.names if a.name.startswith("engine")}
        found[name] = {t for t in targets if t in modules and t != name}
    return found


def test_every_engine_module_is_in_a_layer() -> None:
    for module in imports():
        assert rank(module) >= 0, module


def test_imports_only_go_down() -> None:
    upward = [
        f"{module} imports {target}"
        for module, targets in imports().items()
        for target in targets
        if rank(target) > rank(module)
    ]
    assert upward == []


def test_no_two_modules_need_each_other_outside_the_world() -> None:
    graph = imports()

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            current = todo.pop()
            if current == goal:
                return True
            if current not in seen:
                seen.add(current)
                todo.extend(graph.get(current, ()))
        return False

    cycles = sorted(
        f"{module} <-> {target}"
        for module, targets in graph.items()
        for target in targets
        if reaches(target, module)
        and not (part_of(module) in MUTUAL and part_of(target) == part_of(module))
    )
    assert cycles == []
