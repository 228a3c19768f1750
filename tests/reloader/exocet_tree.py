"""The ``tree`` fixture of the exocet tests: throw-away source trees on ``sys.path``.

Deliberately not a ``conftest.py``: conftest files without ``__init__.py``
are all imported as the module ``conftest``, so a second one would take
``sys.modules["conftest"]`` from ``tests/conftest.py``, whose helpers other
tests import by that name.  Test modules import ``tree_fixture`` instead;
pytest finds it among their globals and offers it as ``tree``.
"""

from __future__ import annotations

import importlib
import linecache
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest


class SourceTree:
    """A directory on ``sys.path`` in which a test writes modules and packages.

    ``module("xpkg.mod", src)`` writes ``xpkg/mod.py``; ``package("xpkg", src)``
    writes ``xpkg/__init__.py``.  Source text is dedented, so tests can indent it.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, relpath: str, text: str = "") -> Path:
        path = self.root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        importlib.invalidate_caches()
        return path

    def module(self, dotted: str, text: str = "") -> Path:
        return self.write(dotted.replace(".", "/") + ".py", text)

    def package(self, dotted: str, text: str = "") -> Path:
        return self.write(dotted.replace(".", "/") + "/__init__.py", text)


def _under(path: object, root: str) -> bool:
    return isinstance(path, str) and path.startswith(root)


def _from_tree(module: object, root: str) -> bool:
    if _under(getattr(module, "__file__", None), root):
        return True
    return any(_under(p, root) for p in getattr(module, "__path__", None) or ())


@pytest.fixture(name="tree")
def tree_fixture(tmp_path: Path) -> Iterator[SourceTree]:
    """A fresh source directory put first on ``sys.path`` for one test."""
    root = tmp_path / "src"
    root.mkdir()
    entry = str(root)
    sys.path.insert(0, entry)
    importlib.invalidate_caches()
    try:
        yield SourceTree(root)
    finally:
        while entry in sys.path:
            sys.path.remove(entry)
        sys.path_importer_cache.pop(entry, None)
        # Modules the test imported the normal way from this tree.  Iterate a
        # copy: exocet's weak entries leave sys.modules from inside the garbage
        # collector, which may run in the middle of any iteration.
        for name, module in sys.modules.copy().items():
            if "@" not in name and _from_tree(module, entry):
                del sys.modules[name]
        for filename in list(linecache.cache):
            if _under(filename, entry):
                linecache.cache.pop(filename, None)
        importlib.invalidate_caches()
