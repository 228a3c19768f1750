"""Which module imports which: the reloader's dependency graph.

Edges come from what a loader's mapper actually resolved, not from parsing
source, so an import inside a function is recorded the first time it runs.
"""

from __future__ import annotations

from collections.abc import Iterable


class ImportGraph:
    """Directed edges ``importer -> imported`` between the modules of one tree.

    Both directions are indexed, so finding what depends on a module costs
    what depends on it, not the size of the whole graph.
    """

    def __init__(self) -> None:
        self._imports: dict[str, set[str]] = {}
        self._importers: dict[str, set[str]] = {}

    def add(self, importer: str, imported: str) -> None:
        if importer != imported:
            self._imports.setdefault(importer, set()).add(imported)
            self._importers.setdefault(imported, set()).add(importer)

    def _drop_edges_of(self, importer: str) -> None:
        for name in self._imports.pop(importer, ()):
            importers = self._importers.get(name)
            if importers is not None:
                importers.discard(importer)
                if not importers:
                    del self._importers[name]

    def replace(self, importer: str, imported: Iterable[str]) -> None:
        """Set everything ``importer`` imports (after it was rebuilt)."""
        self._drop_edges_of(importer)
        self._imports[importer] = set()
        for name in imported:
            self.add(importer, name)

    def forget(self, name: str) -> None:
        """Drop a module that no longer exists; edges pointing at it stay as evidence."""
        self._drop_edges_of(name)

    def imports_of(self, name: str) -> frozenset[str]:
        return frozenset(self._imports.get(name, ()))

    def importers_of(self, name: str) -> set[str]:
        return set(self._importers.get(name, ()))

    def dependents(self, names: Iterable[str]) -> set[str]:
        """Every module that imports any of ``names``, directly or transitively."""
        # ``names`` is read once: it may be a generator.
        start = set(names)
        seen: set[str] = set()
        stack = list(start)
        while stack:
            for importer in self._importers.get(stack.pop(), ()):
                if importer not in seen:
                    seen.add(importer)
                    stack.append(importer)
        return seen - start

    def order(self, names: Iterable[str]) -> list[str]:
        """``names`` with every module after the ones it imports (cycles broken by name)."""
        wanted = set(names)
        done: set[str] = set()
        result: list[str] = []

        def visit(name: str, path: set[str]) -> None:
            if name in done or name in path:
                return
            path.add(name)
            for dependency in sorted(self._imports.get(name, ())):
                if dependency in wanted:
                    visit(dependency, path)
            path.discard(name)
            done.add(name)
            result.append(name)

        for name in sorted(wanted):
            visit(name, set())
        return result
