"""telnetlib3's private names are used in engine/net/telnet.py only.

The engine leans on telnetlib3's insides (its server's listening socket, its
reader's buffer, its MCCP2 state): each such use sits behind a function of
``engine.net.telnet``, so an upgrade of telnetlib3 is checked in one file.

"A private name of telnetlib3" is found from telnetlib3's own source: every
underscored name it defines as an attribute (assigned on an object, or
defined in a class body) or at the top of a module.  A name the engine also
defines on its own objects (``_closed``, ``_write`` ...) cannot be told
apart by its spelling and is not watched.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

import telnetlib3

from engine.paths import CODE_ROOT

ENGINE = CODE_ROOT / "engine"
#: The one module that may use telnetlib3's insides.
TELNET = ENGINE / "net" / "telnet.py"
#: Private names telnetlib3 shares with the standard library, used elsewhere on those objects.
NOT_TELNETLIB3 = {
    "_waiters",  # asyncio.Lock's waiters (engine/accounts/guards.py): telnetlib3 has its own
}
#: Calls that name an attribute by a string.
BY_NAME = {"getattr", "setattr", "hasattr", "delattr"}


def _private(name: str) -> bool:
    return name.startswith("_") and not name.endswith("__")


def attribute_names(files: Iterable[Path], top_level: bool) -> set[str]:
    """Private names the files define on objects (and, if ``top_level``, in their modules)."""
    names: set[str] = set()
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        bodies = [n.body for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]
        if top_level:
            bodies.append(tree.body)
        for body in bodies:
            for item in body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                    names.add(item.name)
                elif isinstance(item, ast.Assign):
                    names.update(t.id for t in item.targets if isinstance(t, ast.Name))
                elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    names.add(item.target.id)
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store | ast.Del):
                names.add(node.attr)
    return {name for name in names if _private(name)}


def uses(path: Path, watched: set[str]) -> list[str]:
    """``file:line: name`` for each watched name ``path`` reads, writes or imports."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Attribute) and node.attr in watched:
            found.append((node.lineno, node.attr))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in BY_NAME
            and len(node.args) > 1
            and isinstance(node.args[1], ast.Constant)
            and node.args[1].value in watched
        ):
            found.append((node.lineno, str(node.args[1].value)))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("telnetlib3"):
            found += [(node.lineno, a.name) for a in node.names if _private(a.name)]
    where = path.relative_to(CODE_ROOT)
    return [f"{where}:{line}: {name}" for line, name in sorted(found)]


def engine_files() -> list[Path]:
    return sorted(p for p in ENGINE.rglob("*.py") if p != TELNET)


def watched_names() -> set[str]:
    telnetlib3_files = Path(telnetlib3.__file__).parent.rglob("*.py")
    theirs = attribute_names(telnetlib3_files, top_level=True)
    ours = attribute_names(engine_files(), top_level=False)
    return theirs - ours - NOT_TELNETLIB3


def test_telnetlib3s_private_names_are_used_in_engine_net_telnet_only() -> None:
    watched = watched_names()
    found = [line for path in engine_files() for line in uses(path, watched)]
    assert found == [], "use a function of engine/net/telnet.py instead:\n" + "\n".join(found)


def test_the_check_sees_what_engine_net_telnet_uses() -> None:
    """The names the check watches are those telnet.py reaches for, so it would see them."""
    watched = watched_names()
    seen = {line.rsplit(" ", 1)[1] for line in uses(TELNET, watched)}
    assert {"_server", "_transport", "_mccp2_compressor", "_protocols"} <= seen
