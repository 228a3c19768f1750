"""The live generation of one source tree, rebuilt in all-or-nothing batches.

A ``LiveTree`` owns the modules of one package directory (``content/``) as
exocet loads them.  ``prepare`` builds a new generation of the changed modules
and of every module that depends on them, without touching the live one;
``commit`` makes it live.  A batch that fails to load is simply dropped: the
old generation was never modified, so the old code runs on.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from reloader import exocet
from reloader.graph import ImportGraph


@dataclass(frozen=True)
class LoadFailure:
    """Why one module could not be built, located at the builder's file and line."""

    module: str
    path: str | None
    line: int | None
    message: str
    details: str = ""

    def __str__(self) -> str:
        where = self.path or self.module
        if self.line is not None:
            where = f"{where}:{self.line}"
        return f"{where}: {self.message}"


class BatchError(Exception):
    """A batch did not build; nothing of it was applied."""

    def __init__(self, failures: list[LoadFailure]) -> None:
        self.failures = failures
        super().__init__("; ".join(str(failure) for failure in failures))


class _ImportRecorder:
    """Where a batch's modules report their imports: the batch's own edges, then the graph.

    Every loaded module's import function holds its recorder for life, so
    the recorder holds neither the batch nor any module.
    """

    def __init__(self, package: str) -> None:
        self.package = package
        self.edges: dict[str, set[str]] = {}
        self.graph: ImportGraph | None = None

    def __call__(self, importer: str, imported: str) -> None:
        if not (imported == self.package or imported.startswith(self.package + ".")):
            return
        if self.graph is not None:
            self.graph.add(importer, imported)
        else:
            self.edges.setdefault(importer, set()).add(imported)


class _LiveView(exocet.Mapper):
    """The current generation as a mapper: what committed modules import from then on."""

    def __init__(self, live: dict[str, ModuleType]) -> None:
        self._live = live

    def lookup(self, name: str) -> ModuleType:
        try:
            return self._live[name]
        except KeyError:
            raise self._missing(name, "not in the live generation") from None

    def contains(self, name: str) -> bool:
        return name in self._live

    def __repr__(self) -> str:
        return "the live generation"


class _ReuseView(Mapping[str, ModuleType]):
    """The live modules a batch keeps, without copying the (possibly large) live dict."""

    def __init__(self, live: dict[str, ModuleType], rebuilt: frozenset[str]) -> None:
        self._live = live
        self._rebuilt = rebuilt

    def __getitem__(self, name: str) -> ModuleType:
        if name in self._rebuilt:
            raise KeyError(name)
        return self._live[name]

    def __iter__(self) -> Iterator[str]:
        return (name for name in self._live if name not in self._rebuilt)

    def __len__(self) -> int:
        return sum(1 for _ in self)


@dataclass
class Batch:
    """A prepared, not yet live, generation of some modules of a tree."""

    requested: frozenset[str]
    modules: dict[str, ModuleType]
    removed: frozenset[str]
    recorder: _ImportRecorder
    context: exocet.PackageContext | None = None
    committed: bool = False

    @property
    def imports(self) -> dict[str, set[str]]:
        return self.recorder.edges

    @property
    def names(self) -> list[str]:
        return sorted(self.modules)


def describe_failure(exc: BaseException, module: str, root: str) -> LoadFailure:
    """Turn an exception raised while loading ``module`` into a builder-facing failure.

    The line reported is the deepest one inside the tree ``root``: that is the
    builder's own code, not the loader's or the standard library's.
    """
    details = "".join(traceback.format_exception(exc))
    if isinstance(exc, SyntaxError):
        message = f"{type(exc).__name__}: {exc.msg}"
        return LoadFailure(module, exc.filename, exc.lineno, message, details)
    path: str | None = None
    line: int | None = None
    for frame in traceback.extract_tb(exc.__traceback__):
        # A path test, not a string one: a file beside the tree sharing its
        # name as a prefix (``content_helpers.py`` next to ``content/``) is
        # not the builder's.
        if frame.filename and Path(os.path.abspath(frame.filename)).is_relative_to(root):
            path, line = frame.filename, frame.lineno
    return LoadFailure(module, path, line, f"{type(exc).__name__}: {exc}", details)


class LiveTree:
    """The current generation of the modules under one package directory.

    ``package`` is the dotted name the directory is imported as (``content``)
    and ``directory`` where its files are; they need not be on ``sys.path``.
    Imports of names outside the package go to ``mapper``.
    """

    def __init__(
        self,
        package: str,
        directory: str | os.PathLike[str],
        mapper: exocet.Mapper,
        around_exec: exocet.ExecWrapper | None = None,
    ) -> None:
        self.package = package
        #: Entered around each module body a batch executes (see ``exocet.PackageContext``).
        self.around_exec = around_exec
        self.directory = Path(directory).resolve()
        self.mapper = mapper
        self.live: dict[str, ModuleType] = {}
        self.graph = ImportGraph()
        self._view = _LiveView(self.live)

    # -- names and files ------------------------------------------------------

    def module_name(self, path: str | os.PathLike[str]) -> str | None:
        """The dotted name of a file or directory inside the tree, or None outside it."""
        # ``self.directory`` has its symlinks resolved; a path spelled through
        # a symlinked directory (``/tmp`` on macOS) must still be found.  The
        # path as given is tried first (a symlinked file inside the tree stays
        # inside it), then with its symlinks resolved.
        for candidate in (os.path.abspath(path), os.path.realpath(path)):
            try:
                relative = Path(candidate).relative_to(self.directory)
                break
            except ValueError:
                continue
        else:
            return None
        parts = list(relative.parts)
        if parts and parts[-1].endswith(".py"):
            parts[-1] = parts[-1][: -len(".py")]
            if parts[-1] == "__init__":
                parts.pop()
        if not all(part.isidentifier() for part in parts):
            return None
        return ".".join([self.package, *parts])

    def discover(self) -> set[str]:
        """Every module name with a source file under the tree right now."""
        names: set[str] = set()
        for root, dirs, files in os.walk(self.directory):
            dirs[:] = [d for d in dirs if d.isidentifier()]
            for filename in files:
                if filename.endswith(".py"):
                    name = self.module_name(os.path.join(root, filename))
                    if name is not None:
                        names.add(name)
        names.add(self.package)
        return names

    def under(self, name: str) -> set[str]:
        """Live modules named ``name`` or inside it (a deleted directory's modules)."""
        return {live for live in self.live if live == name or live.startswith(name + ".")}

    def _root_source(self) -> exocet.ModuleSource:
        init = self.directory / "__init__.py"
        return exocet.ModuleSource(
            self.package,
            str(init) if init.is_file() else None,
            (str(self.directory),),
        )

    # -- batches --------------------------------------------------------------

    def prepare(self, changed: Iterable[str], removed: Iterable[str] = ()) -> Batch:
        """Build the new generation of ``changed`` and of everything that depends on them.

        Imports between the rebuilt modules resolve to their new versions,
        imports of other modules of the tree to the live ones.  Raises
        ``BatchError`` if any module fails; the live generation is untouched.
        """
        gone = frozenset(removed)
        requested = frozenset(changed) - gone
        targets = (requested | self.graph.dependents(requested | gone)) - gone
        reuse = _ReuseView(self.live, targets | gone)
        batch = Batch(requested, {}, gone, _ImportRecorder(self.package))
        current = ""
        # A removed module must not be found as an attribute of its live
        # parent package (``from . import gone`` in a dependent must fail).
        # It is taken off the parent while the batch builds and put back
        # after: prepare runs synchronously, so nothing else sees the gap, and
        # the live generation is as it was when prepare returns or raises.
        detached = self._detach(gone)
        try:
            context = exocet.PackageContext(
                self._root_source(), self.mapper, reuse, batch.recorder, self.around_exec
            )
            batch.context = context
            for current in self.graph.order(targets):
                context.loadNamed(current)
        except (Exception, SystemExit) as exc:
            # SystemExit too: content calling sys.exit() at import must not
            # stop the reloader (KeyboardInterrupt still goes through).  An
            # ``around_exec`` that stops a module turns that into an Exception.
            raise BatchError(
                [describe_failure(exc, current or self.package, str(self.directory))]
            ) from exc
        finally:
            for parent, leaf, module in detached:
                setattr(parent, leaf, module)
        batch.modules = context.loaded()
        self._adopt_children(batch)
        return batch

    def _detach(self, removed: Iterable[str]) -> list[tuple[ModuleType, str, ModuleType]]:
        """Take removed modules off their live parent packages; what was taken, to put back."""
        detached: list[tuple[ModuleType, str, ModuleType]] = []
        for name in removed:
            module = self.live.get(name)
            parent_name, _, leaf = name.rpartition(".")
            parent = self.live.get(parent_name)
            if module is None or parent is None:
                continue
            bound: object = vars(parent).get(leaf)
            if bound is module:
                delattr(parent, leaf)
                detached.append((parent, leaf, module))
        return detached

    def _adopt_children(self, batch: Batch) -> None:
        """A rebuilt package keeps its live submodules as attributes, as import would."""
        for name, module in batch.modules.items():
            if not hasattr(module, "__path__"):
                continue
            for child, child_module in self.live.items():
                parent, _, leaf = child.rpartition(".")
                # An attribute the package's own code set under the submodule's
                # name (``from .board import board``) is kept, as plain Python
                # keeps it.
                if (
                    parent == name
                    and child not in batch.modules
                    and child not in batch.removed
                    and leaf not in vars(module)
                ):
                    setattr(module, leaf, child_module)

    def commit(self, batch: Batch) -> None:
        """Make a prepared batch the live generation, in one synchronous step.

        From here on the batch's modules resolve their imports of the tree
        through the live generation, and report new imports to the graph.
        """
        # Removed modules leave their live parent package too, or they would
        # stay alive and importable (see ``prepare``).
        self._detach(batch.removed)
        for name in batch.removed:
            self.live.pop(name, None)
            self.graph.forget(name)
        for name, module in batch.modules.items():
            self.live[name] = module
            self.graph.replace(name, batch.imports.get(name, ()))
        if batch.context is not None:
            batch.context.handoff(self._view)
        batch.recorder.graph = self.graph
        batch.recorder.edges = {}
        batch.committed = True
