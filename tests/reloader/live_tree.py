"""The ``pkg`` fixture of the LiveTree tests: a throw-away package directory.

Like ``exocet_tree``, deliberately not a ``conftest.py`` (see there why): test
modules import ``package_fixture`` and pytest offers it as ``pkg``.  The
directory is *not* put on ``sys.path``: a ``LiveTree`` is handed the
directory itself, and nothing here is ever imported the normal way.
"""

from __future__ import annotations

import gc
import linecache
import sys
import textwrap
import weakref
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from reloader import exocet
from reloader.live import LiveTree

PACKAGE = "xgame"


class PackageDir:
    """A package directory ``xgame/`` in which a test writes and deletes modules.

    ``write("base", src)`` writes ``xgame/base.py``, ``write("sub/", src)``
    writes ``xgame/sub/__init__.py`` and ``write("", src)`` the package's own
    ``__init__.py``.  Source text is dedented, so tests can indent it.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, name: str) -> Path:
        if name == "" or name.endswith("/"):
            return self.directory / name / "__init__.py"
        return self.directory / f"{name}.py"

    def write(self, name: str, text: str = "") -> Path:
        path = self.path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    def remove(self, name: str) -> None:
        self.path(name).unlink()

    def tree(self, mapper: exocet.Mapper = exocet.pep302Mapper) -> LiveTree:
        return LiveTree(PACKAGE, self.directory, mapper)

    def loaded_aliases(self) -> set[str]:
        """``sys.modules`` names of every module loaded from this directory still alive.

        Garbage is collected first; only this test's directory counts, so a
        module a failed earlier test still holds cannot fail this one.
        """
        gc.collect()
        exocet.purgeCollected()
        found: set[str] = set()
        for name, entry in sys.modules.copy().items():
            if exocet.canonicalName(name).split(".")[0] != PACKAGE:
                continue
            paths = [getattr(entry, "__file__", None), *(getattr(entry, "__path__", None) or ())]
            if any(isinstance(p, str) and p.startswith(str(self.directory)) for p in paths):
                found.add(name)
        return found


def build(tree: LiveTree) -> None:
    """The first, full batch: every module of the directory, committed."""
    tree.commit(tree.prepare(tree.discover()))


def reload(tree: LiveTree, *changed: str, removed: Iterable[str] = ()) -> list[str]:
    """Prepare and commit one batch; the names of the modules it rebuilt."""
    batch = tree.prepare({f"{PACKAGE}.{name}" if name else PACKAGE for name in changed}, removed)
    tree.commit(batch)
    return [short(name) for name in batch.names]


def short(name: str) -> str:
    return name.removeprefix(PACKAGE).removeprefix(".")


def live_aliases(tree: LiveTree) -> set[str]:
    return {module.__name__ for module in tree.live.values()}


class Tracker:
    """Weak references to module versions, to tell which ones are still alive."""

    def __init__(self) -> None:
        self._refs: list[tuple[str, weakref.ref[Any]]] = []

    def track(self, modules: Iterable[ModuleType]) -> None:
        self._refs.extend((module.__name__, weakref.ref(module)) for module in modules)

    def __len__(self) -> int:
        return len(self._refs)

    def alive(self) -> list[str]:
        gc.collect()
        return [name for name, ref in self._refs if ref() is not None]


class Marker:
    """One module version's marker object (weakly referenced by ``Markers``)."""

    def __init__(self, module: str) -> None:
        self.module = module


class Markers:
    """Handed to modules as ``xprobe``: ``MARK = xprobe.mark(__name__)``.

    A marker lives as long as the namespace of the module version that made
    it, which lets a test see module versions it never got hold of, such as
    those of a batch that failed.
    """

    def __init__(self) -> None:
        self._refs: list[weakref.ref[Marker]] = []

    def mark(self, module: str) -> Marker:
        marker = Marker(module)
        self._refs.append(weakref.ref(marker))
        return marker

    def __len__(self) -> int:
        return len(self._refs)

    def alive(self) -> list[Marker]:
        gc.collect()
        return [marker for ref in self._refs if (marker := ref()) is not None]


@pytest.fixture(name="pkg")
def package_fixture(tmp_path: Path) -> Iterator[PackageDir]:
    """An empty package directory ``xgame`` (with an empty ``__init__.py``)."""
    directory = (tmp_path / PACKAGE).resolve()
    directory.mkdir()
    (directory / "__init__.py").write_text("", encoding="utf-8")
    try:
        yield PackageDir(directory)
    finally:
        for filename in list(linecache.cache):
            if filename.startswith(str(directory.parent)):
                linecache.cache.pop(filename, None)
        gc.collect()
        exocet.purgeCollected()
