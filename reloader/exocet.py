"""exocet's module loader, written anew for Python 3.11+ on importlib.

exocet (Allen Short, 2010-2011) separated *loading* a module from *naming* it:
every load executes the module's current source into a fresh module object
that the import system does not own, and a *mapper* decides what each
``import`` statement inside it receives.  That is what live reload needs: a new
version of a module is just another load, and the old one is garbage collected
once nothing refers to it.

The original patched ``sys.modules``, ``sys.meta_path`` and
``builtins.__import__`` for the whole process.  This version patches nothing
process-wide: each loaded module gets its own ``__builtins__`` dict whose
``__import__`` resolves through the module's mapper, so a thread importing
normally while a load runs is never affected.

The public names are exocet's, so code written for exocet ports by changing
one import line::

    from reloader import exocet
    general = exocet.loadNamed("content.commands.general", exocet.pep302Mapper)

Each loaded module is named ``<fqn>@<n>`` (``content.commands.general@3``):
one unique name per load.  Under that name it is entered in ``sys.modules``
through a *weak* entry, because ``dataclasses``, ``typing.get_type_hints`` and
``inspect`` find a class's module by ``sys.modules[cls.__module__]``; the entry
never keeps the module alive and disappears with it.  ``canonicalName`` turns
such a name back into the dotted name of its source.
"""

from __future__ import annotations
import __future__ as _future

import builtins
import collections
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import itertools
import linecache
import os
import sys
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from types import CodeType, ModuleType
from typing import Any, cast

__all__ = [
    "CallableMapper",
    "DictMapper",
    "ExclusiveMapper",
    "Mapper",
    "ModuleSource",
    "PackageContext",
    "canonicalName",
    "emptyMapper",
    "getModule",
    "load",
    "loadNamed",
    "loadPackage",
    "loadPackageNamed",
    "pep302Mapper",
    "proxyModule",
    "purgeCollected",
]

#: Separates a module's dotted name from its load number in ``__name__``.
GENERATION_MARK = "@"

_load_numbers = itertools.count(1)
_load_numbers_lock = threading.Lock()


def canonicalName(name: str) -> str:
    """Return the dotted source name of a loaded module's ``__name__``.

    ``canonicalName("content.commands.general@3") == "content.commands.general"``;
    names without a load number are returned unchanged.  Engines compare
    classes across versions by ``canonicalName(cls.__module__)`` and
    ``__qualname__``, never by identity.
    """
    base, mark, number = name.rpartition(GENERATION_MARK)
    if mark and number.isdigit():
        return base
    return name


# --------------------------------------------------------------------------
# Mappers: what an ``import`` statement inside a loaded module receives.
# --------------------------------------------------------------------------


class Mapper:
    """Decides what each import of a loaded module resolves to.

    Subclasses implement ``lookup``; ``contains`` defaults to trying it.
    """

    def lookup(self, name: str) -> Any:
        """Return the object for the absolute module name, or raise ImportError."""
        raise NotImplementedError

    def contains(self, name: str) -> bool:
        """Tell whether ``lookup(name)`` would succeed."""
        try:
            self.lookup(name)
        except ImportError:
            return False
        return True

    def withOverrides(self, mapping: Mapping[str, Any]) -> Mapper:
        """A new mapper in which ``mapping`` wins over everything beneath it."""
        return _OverlayMapper(DictMapper(mapping), self)

    def _missing(self, name: str, why: str = "") -> ModuleNotFoundError:
        detail = f": {why}" if why else ""
        return ModuleNotFoundError(f"No module named {name!r} through {self!r}{detail}", name=name)

    def _delegate(self, mapper: Mapper, name: str) -> Any:
        """``mapper.lookup(name)``, with "not found" reported as this mapper's.

        A module missing through a wrapping mapper (``ExclusiveMapper``,
        ``PackageContext``) is reported as missing through that mapper, whose
        ``repr`` names the inner one too.  A failure of some *other* module
        (``exc.name != name``) propagates unchanged.
        """
        try:
            return mapper.lookup(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            raise self._missing(name) from exc


class _PEP302Mapper(Mapper):
    """The normal import system, sharing ``sys.modules`` with the process.

    The standard library and installed packages are imported once, as usual;
    only the modules loaded through exocet are private.
    """

    def lookup(self, name: str) -> Any:
        try:
            return importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name or (exc.name and name.startswith(exc.name + ".")):
                raise self._missing(name) from exc
            raise

    def contains(self, name: str) -> bool:
        if name in sys.modules:
            return sys.modules[name] is not None
        try:
            return importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            return False

    def __repr__(self) -> str:
        return "pep302Mapper"


class _EmptyMapper(Mapper):
    """Resolves nothing at all, ``import sys`` included: the strictest sandbox."""

    def lookup(self, name: str) -> Any:
        raise self._missing(name, "emptyMapper allows no imports")

    def contains(self, name: str) -> bool:
        return False

    def __repr__(self) -> str:
        return "emptyMapper"


class DictMapper(Mapper):
    """Resolves names from a mapping of module name to object."""

    def __init__(self, mapping: Mapping[str, Any]) -> None:
        self._mapping = dict(mapping)

    def lookup(self, name: str) -> Any:
        try:
            return self._mapping[name]
        except KeyError:
            raise self._missing(name) from None

    def contains(self, name: str) -> bool:
        return name in self._mapping

    def __repr__(self) -> str:
        return f"DictMapper({sorted(self._mapping)!r})"


class CallableMapper(Mapper):
    """Resolves names by calling ``fn(name)``, which returns or raises ImportError."""

    def __init__(self, fn: Callable[[str], Any]) -> None:
        self._fn = fn

    def lookup(self, name: str) -> Any:
        # An ImportError ``fn`` raises for ``name`` itself becomes this
        # mapper's own ModuleNotFoundError, naming the module and the mapper
        # and keeping ``fn``'s message as the reason; an error about some
        # other module (``exc.name`` set to another name) passes unchanged.
        try:
            return self._fn(name)
        except ImportError as exc:
            if exc.name not in (None, name):
                raise
            raise self._missing(name, str(exc)) from exc

    def __repr__(self) -> str:
        return f"CallableMapper({self._fn!r})"


class ExclusiveMapper(Mapper):
    """Another mapper minus a deny-list; denying ``os`` also denies ``os.path``."""

    def __init__(self, mapper: Mapper, names: Iterable[str]) -> None:
        self._mapper = mapper
        self._denied = frozenset(names)

    def _is_denied(self, name: str) -> bool:
        parts = name.split(".")
        return any(".".join(parts[:i]) in self._denied for i in range(1, len(parts) + 1))

    def lookup(self, name: str) -> Any:
        if self._is_denied(name):
            raise self._missing(name, "denied")
        return self._delegate(self._mapper, name)

    def contains(self, name: str) -> bool:
        return not self._is_denied(name) and self._mapper.contains(name)

    def __repr__(self) -> str:
        return f"ExclusiveMapper({self._mapper!r}, {sorted(self._denied)!r})"


class _OverlayMapper(Mapper):
    """``top`` wins wherever it has the name; ``bottom`` answers the rest."""

    def __init__(self, top: Mapper, bottom: Mapper) -> None:
        self._top = top
        self._bottom = bottom

    def lookup(self, name: str) -> Any:
        if self._top.contains(name):
            return self._top.lookup(name)
        return self._delegate(self._bottom, name)

    def contains(self, name: str) -> bool:
        return self._top.contains(name) or self._bottom.contains(name)

    def __repr__(self) -> str:
        return f"{self._bottom!r}.withOverrides({self._top!r})"


pep302Mapper: Mapper = _PEP302Mapper()
emptyMapper: Mapper = _EmptyMapper()


# --------------------------------------------------------------------------
# Finding sources without importing anything.
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class ModuleSource:
    """Where a module's source lives: what ``getModule`` returns, ``load`` takes.

    ``path`` is the ``.py`` file to execute (a package's ``__init__.py``), or
    None for a namespace package, which has a directory but no code.
    """

    name: str
    path: str | None
    search_locations: tuple[str, ...] | None = None

    @property
    def is_package(self) -> bool:
        return self.search_locations is not None

    def load(self, mapper: Mapper, m: ModuleType | None = None) -> ModuleType:
        """Load this source through ``mapper`` (exocet's ``maker.load``)."""
        return load(self, mapper, m)


def _find_in(name: str, leaf: str, directories: Iterable[str]) -> ModuleSource | None:
    """Find ``leaf`` as a package or ``.py`` module in the first directory that has it.

    Written against the file system, not importlib's ``FileFinder``: the
    finder caches directory listings, and a reloader must see a file the
    moment it is saved.  Only source files qualify, because exocet always
    compiles from source.

    In one directory the order is the import system's: a package
    (``leaf/__init__.py``), then a module (``leaf.py``), and only then a
    directory without ``__init__.py`` as a namespace portion, so a plain
    ``leaf/`` directory beside ``leaf.py`` (say a data directory) never hides
    the module that ``import leaf`` finds.
    """
    namespace: list[str] = []
    for directory in directories:
        base = os.path.join(directory or os.curdir, leaf)
        init = os.path.join(base, "__init__.py")
        if os.path.isfile(init):
            return ModuleSource(name, os.path.abspath(init), (os.path.abspath(base),))
        candidate = base + ".py"
        if os.path.isfile(candidate):
            return ModuleSource(name, os.path.abspath(candidate))
        if os.path.isdir(base):
            namespace.append(os.path.abspath(base))
    if namespace:
        return ModuleSource(name, None, tuple(namespace))
    return None


def getModule(fqn: str, path: Iterable[str] | None = None) -> ModuleSource:
    """Locate a module's source on ``sys.path`` (or ``path``) without executing anything.

    Parent packages are located, never imported: their ``__init__`` does not
    run.  Raises ``ModuleNotFoundError`` when there is no source file.
    """
    directories: Iterable[str] = list(sys.path if path is None else path)
    found: ModuleSource | None = None
    parts = fqn.split(".")
    for i, leaf in enumerate(parts):
        name = ".".join(parts[: i + 1])
        found = _find_in(name, leaf, directories)
        if found is None:
            raise ModuleNotFoundError(f"No source for module {name!r} on the search path", name=fqn)
        if i < len(parts) - 1:
            if not found.is_package:
                raise ModuleNotFoundError(
                    f"{name!r} is not a package, so {fqn!r} cannot be found", name=fqn
                )
            directories = found.search_locations or ()
    assert found is not None
    return found


# --------------------------------------------------------------------------
# Executing a source into a module.
# --------------------------------------------------------------------------


#: Aliases of collected modules, waiting to leave ``sys.modules`` (see ``purgeCollected``).
_collected: list[tuple[str, weakref.ref[Any]]] = []


def purgeCollected() -> int:
    """Remove the ``sys.modules`` entries of loaded modules that were garbage collected.

    The entries are not removed by the collector itself: it runs at any
    allocation, and a ``sys.modules`` that shrinks in the middle of someone's
    ``for name, module in sys.modules.items()`` raises "dictionary changed
    size during iteration".  Every load purges first; a dead entry in between
    holds nothing and answers no attribute.
    """
    purged = 0
    while _collected:
        alias, entry = _collected.pop()
        current = sys.modules.get(alias)
        if current is not None and current is entry():
            del sys.modules[alias]
            purged += 1
    return purged


class _WeakModuleEntry:
    """A ``sys.modules`` value that answers for a module without owning it.

    ``dataclasses``, ``typing`` and ``inspect`` read ``sys.modules[cls.__module__]``
    (its attributes and ``__dict__``); this entry forwards both.  Once the
    module is collected the entry answers nothing, and the next load (or
    ``purgeCollected``) removes it.
    """

    __slots__ = ("__weakref__", "_ref")

    def __init__(self, module: ModuleType, alias: str) -> None:
        entry = weakref.ref(self)

        def _forget(_ref: weakref.ref[Any], alias: str = alias, entry: Any = entry) -> None:
            _collected.append((alias, entry))

        object.__setattr__(self, "_ref", weakref.ref(module, _forget))

    def _target(self, attribute: str) -> ModuleType:
        module: ModuleType | None = self._ref()
        if module is None:
            raise AttributeError(attribute)
        return module

    @property
    def __dict__(self) -> dict[str, Any]:  # type: ignore[override]  # the module's, forwarded
        return self._target("__dict__").__dict__

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._target(attribute), attribute)

    # Writes are forwarded too: code that sets an attribute on every module
    # in sys.modules must work on this entry (unittest's ``assertWarns`` sets
    # ``__warningregistry__`` on each module that has one).
    def __setattr__(self, attribute: str, value: Any) -> None:
        setattr(self._target(attribute), attribute, value)

    def __delattr__(self, attribute: str) -> None:
        delattr(self._target(attribute), attribute)

    def __repr__(self) -> str:
        return f"<weak entry for {self._ref()!r}>"


class _SourceLoader:
    """The ``__loader__`` of a loaded module: it hands back the source that ran.

    ``linecache`` and ``inspect`` ask a loader for source; giving them the
    text that was executed keeps tracebacks right after the file changes.
    """

    def __init__(self, name: str, path: str | None, source: str) -> None:
        self.name = name
        self.path = path
        self._source = source

    def get_source(self, name: str) -> str:
        return self._source

    def get_filename(self, name: str) -> str | None:
        return self.path

    def is_package(self, name: str) -> bool:
        return bool(self.path) and os.path.basename(self.path or "") == "__init__.py"

    def __repr__(self) -> str:
        return f"<exocet loader for {self.path or self.name!r}>"


_MISSING = object()


def _is_module_named(obj: Any, name: str) -> bool:
    """Tell whether ``obj`` is a module (of any load) of the dotted name ``name``."""
    if not isinstance(obj, ModuleType):
        return False
    return canonicalName(getattr(obj, "__name__", None) or "") == name


def _resolve_relative(name: str, package: str | None, level: int) -> str:
    if not package:
        raise ImportError("attempted relative import with no known parent package")
    bits = package.rsplit(".", level - 1)
    if len(bits) < level:
        raise ImportError("attempted relative import beyond top-level package")
    base = bits[0]
    return f"{base}.{name}" if name else base


class _Importer:
    """The ``__import__`` of one loaded module: every import it runs comes here.

    ``on_resolve(importer_fqn, imported_fqn)`` lets a package context record
    which module imported which (the reloader's dependency graph).
    """

    def __init__(
        self,
        mapper: Mapper,
        fqn: str,
        on_resolve: Callable[[str, str], None] | None = None,
    ) -> None:
        self.mapper = mapper
        self.fqn = fqn
        self.on_resolve = on_resolve

    def _lookup(self, name: str) -> Any:
        result = self.mapper.lookup(name)
        if self.on_resolve is not None:
            self.on_resolve(self.fqn, name)
        return result

    def __call__(
        self,
        name: str,
        globals: Mapping[str, Any] | None = None,
        locals: Mapping[str, Any] | None = None,
        fromlist: Iterable[str] | None = (),
        level: int = 0,
    ) -> Any:
        if level < 0:
            raise ValueError("level must be >= 0")
        if level > 0:
            package = (globals or {}).get("__package__")
            fqn = _resolve_relative(name, package, level)
        else:
            if not name:
                raise ValueError("Empty module name")
            fqn = name
        if fqn == "__future__":
            # A compiler directive that also runs as an import; it grants nothing.
            return _future
        module = self._lookup(fqn)
        if fromlist:
            return self._from(module, fqn, tuple(fromlist))
        if level == 0 and "." in name:
            # ``import a.b.c`` binds ``a``; make sure every step resolves.
            parts = fqn.split(".")
            chain = [module]
            for i in range(len(parts) - 1, 0, -1):
                chain.insert(0, self._lookup(".".join(parts[:i])))
            return self._reaching(chain, parts)
        return module

    @staticmethod
    def _reaching(chain: list[Any], parts: list[str]) -> Any:
        """``chain[0]``, such that ``.b.c`` on it reaches the mapper's ``chain[1:]``.

        ``import a.b.c`` must reach the mapper's ``a.b`` and ``a.b.c`` even when
        ``a`` does not carry ``b`` (yet: ``import pkg.b as b`` in a circular
        pair, as plain Python allows) or carries another ``b`` (a reused parent
        package under a ``PackageContext``).  Where a step does not reach the
        mapper's module, that parent is handed out through a proxy, which
        leaves the parent module itself unmodified, as ``_from`` does.
        """
        result = chain[-1]
        for depth in range(len(chain) - 2, -1, -1):
            parent, leaf = chain[depth], parts[depth + 1]
            if getattr(parent, leaf, _MISSING) is not result:
                result = proxyModule(parent, **{leaf: result})
            else:
                result = parent
        return result

    def _from(self, module: Any, fqn: str, fromlist: tuple[str, ...]) -> Any:
        """``from fqn import a, b``: submodules that are not attributes yet are looked up.

        A submodule still being loaded (a circular import) or one the parent
        does not carry as an attribute is handed out through a proxy, so the
        parent module itself is never modified here.
        """
        names = list(fromlist)
        if "*" in names:
            names.remove("*")
            names.extend(getattr(module, "__all__", ()))
        extra: dict[str, Any] = {}
        for item in names:
            if not isinstance(item, str):
                continue
            child = f"{fqn}.{item}"
            current = getattr(module, item, _MISSING)
            # An attribute that is the submodule ``fqn.item`` itself is resolved
            # through the mapper (under a PackageContext reusing the parent,
            # ``from . import dep`` must give the context's own ``dep``, and
            # ``on_import`` must hear of it); other attributes are kept, as
            # plain ``from fqn import item`` keeps them.
            if current is not _MISSING and not _is_module_named(current, child):
                continue
            try:
                found = self._lookup(child)
            except ModuleNotFoundError as exc:
                if exc.name != child:
                    raise
                continue
            if found is not current:
                extra[item] = found
        if extra:
            return proxyModule(module, **extra)
        return module


#: Code compiled from each recent text (``_compiled``), the most recently used last.
_CODE: collections.OrderedDict[bytes, CodeType] = collections.OrderedDict()
_CODE_KEPT = 256


def _compiled(raw: bytes, path: str) -> CodeType:
    """``raw`` compiled as the module at ``path``, parsed once per text.

    A code object is immutable and holds no module state: each load still
    executes it in a fresh module, so a text loaded again (the dependents a
    reload re-runs unchanged, the same content in another game folder of this
    process) need not be parsed again, only named after its file.  The text
    is the key, so an edit is always compiled, and its errors and warnings
    name its own file.
    """
    code = _CODE.get(raw)
    if code is None:
        code = _CODE[raw] = compile(raw, path, "exec", dont_inherit=True)
        if len(_CODE) > _CODE_KEPT:
            _CODE.popitem(last=False)
        return code
    _CODE.move_to_end(raw)
    return code if code.co_filename == path else _named(code, path)


def _named(code: CodeType, path: str) -> CodeType:
    """``code`` and the code nested in it, with ``co_filename`` set to ``path``."""
    consts = tuple(_named(c, path) if isinstance(c, CodeType) else c for c in code.co_consts)
    return code.replace(co_filename=path, co_consts=consts)


def _read_source(path: str) -> tuple[bytes, str]:
    with open(path, "rb") as handle:
        raw = handle.read()
    return raw, importlib.util.decode_source(raw)


def _register_lines(path: str, text: str) -> None:
    """Pin the executed text in linecache (an mtime of None is never invalidated)."""
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    linecache.cache[path] = (len(text), None, lines, path)


def _next_alias(fqn: str) -> str:
    with _load_numbers_lock:
        number = next(_load_numbers)
    return f"{fqn}{GENERATION_MARK}{number}"


#: Wraps the execution of each module body (a time limit, a crash marker ...).
ExecWrapper = Callable[["ModuleSource"], AbstractContextManager[object]]


def _execute(
    source: ModuleSource,
    mapper: Mapper,
    m: ModuleType | None = None,
    package: str | None = None,
    on_resolve: Callable[[str, str], None] | None = None,
    before_exec: Callable[[ModuleType], None] | None = None,
    around_exec: ExecWrapper | None = None,
) -> ModuleType:
    """Run ``source``'s current text in a fresh module whose imports use ``mapper``.

    On any failure the weak ``sys.modules`` entry is withdrawn before the
    exception propagates, so no half-loaded module stays registered.
    """
    purgeCollected()
    alias = _next_alias(source.name)
    code = None
    text = ""
    if source.path is not None:
        raw, text = _read_source(source.path)
        # Compiled from the text just read, never from __pycache__: a
        # same-second, same-size edit would be served stale from there.
        code = _compiled(raw, source.path)
    module = m if m is not None else ModuleType(alias)
    # Duck-typed: get_source, get_filename and is_package are what inspect,
    # linecache and pickle ask a loader for.
    loader = cast("importlib.abc.Loader", _SourceLoader(alias, source.path, text))
    spec = importlib.machinery.ModuleSpec(
        alias, loader, origin=source.path, is_package=source.is_package
    )
    if source.is_package:
        spec.submodule_search_locations = list(source.search_locations or ())
    spec.has_location = source.path is not None
    if package is None:
        package = source.name if source.is_package else source.name.rpartition(".")[0]
    own_builtins = dict(builtins.__dict__)
    own_builtins["__import__"] = _Importer(mapper, source.name, on_resolve)
    namespace = module.__dict__
    namespace.update(
        __name__=alias,
        __file__=source.path,
        __spec__=spec,
        __loader__=loader,
        __package__=package,
        __cached__=None,
        __builtins__=own_builtins,
    )
    if source.is_package:
        namespace["__path__"] = list(source.search_locations or ())
    if source.path is None:
        namespace.pop("__file__", None)
    # Stands in for the module in sys.modules (it forwards attributes) and
    # vanishes with it.
    entry = cast(ModuleType, _WeakModuleEntry(module, alias))
    sys.modules[alias] = entry
    try:
        if source.path is not None:
            _register_lines(source.path, text)
        if before_exec is not None:
            before_exec(module)
        if code is not None:
            if around_exec is None:
                exec(code, namespace)
            else:
                with around_exec(source):
                    exec(code, namespace)
    except BaseException:
        if sys.modules.get(alias) is entry:
            del sys.modules[alias]
        raise
    return module


def load(maker: ModuleSource, mapper: Mapper, m: ModuleType | None = None) -> ModuleType:
    """Execute ``maker``'s current source into a fresh module (or ``m``) through ``mapper``.

    Two loads of one source give two independent modules; neither is in
    ``sys.modules`` under its own name, and each is freed once dropped.
    """
    return _execute(maker, mapper, m)


def loadNamed(fqn: str, mapper: Mapper, m: ModuleType | None = None) -> ModuleType:
    """Find ``fqn``'s source on ``sys.path`` and load it; a package loads its ``__init__``."""
    return load(getModule(fqn), mapper, m)


# --------------------------------------------------------------------------
# Package contexts: modules of one package that import each other.
# --------------------------------------------------------------------------


class PackageContext(Mapper):
    """Loads the modules of one package so that they import each other consistently.

    The context is itself a mapper: names inside the package resolve to this
    context's modules (loaded from source on first use, shared by every
    sibling, visible while still executing so that circular imports work as
    in plain Python); every other name goes to the base mapper.  Two contexts
    share no module objects, except those handed in as ``reuse``.

    ``reuse`` seeds the context with modules loaded elsewhere (the reloader's
    live generation): they are returned as they are, never executed again.
    Binding a new submodule onto a reused parent package is deferred to
    ``publish()``, so a context that is thrown away leaves them untouched.
    ``on_import(importer, imported)`` is told of every resolved import.

    ``around_exec(source)``, if given, is a context manager entered around
    the execution of each module body the context runs.

    ``handoff(live)`` ends the context's own life as a generation: from then
    on names inside the package resolve through ``live`` (the reloader's view
    of the current generation) and the context lets go of every module.
    Without it, each module's import function would keep its whole batch,
    and every module that batch reused, alive for as long as any one of them.
    """

    def __init__(
        self,
        package: ModuleSource,
        mapper: Mapper,
        reuse: Mapping[str, ModuleType] | None = None,
        on_import: Callable[[str, str], None] | None = None,
        around_exec: ExecWrapper | None = None,
    ) -> None:
        if not package.is_package:
            raise ImportError(f"{package.name!r} is not a package")
        self.root = package
        self.base = mapper
        self.on_import = on_import
        self.around_exec = around_exec
        #: Modules resolved so far: the context's own and the reused ones it handed out.
        self.modules: dict[str, ModuleType] = {}
        # Not copied: a reloader reuses nearly all of a large game, and the
        # cost of a reload must grow with what changed, not with the game.
        self._reuse: Mapping[str, ModuleType] = reuse if reuse is not None else {}
        self._own: set[str] = set()
        self._loading: set[str] = set()
        self._pending_bindings: list[tuple[str, str, ModuleType]] = []
        self._live: Mapper | None = None
        if package.name not in self._reuse:
            self._load(package.name, package)

    @property
    def package(self) -> ModuleType:
        """The package's ``__init__`` module as loaded (or reused) in this context."""
        return cast(ModuleType, self.lookup(self.root.name))

    def owns(self, name: str) -> bool:
        return name == self.root.name or name.startswith(self.root.name + ".")

    def loaded(self) -> dict[str, ModuleType]:
        """The modules this context executed itself (not the reused ones)."""
        return {n: self.modules[n] for n in self._own if n in self.modules}

    def locate(self, name: str) -> ModuleSource:
        """Find ``name``'s source under the package's own directories."""
        if name == self.root.name:
            return self.root
        parent_name, _, leaf = name.rpartition(".")
        parent = self.lookup(parent_name)
        locations = getattr(parent, "__path__", None)
        if locations is None:
            raise ModuleNotFoundError(f"{parent_name!r} is not a package", name=name)
        found = _find_in(name, leaf, locations)
        if found is None:
            raise self._missing(name)
        return found

    def lookup(self, name: str) -> Any:
        module = self.modules.get(name)
        if module is not None:
            return module
        module = self._reuse.get(name)
        if module is not None:
            self.modules[name] = module
            return module
        if not self.owns(name):
            return self._delegate(self.base, name)
        if self._live is not None:
            return self._delegate(self._live, name)
        return self._load(name, self.locate(name))

    def contains(self, name: str) -> bool:
        if self._live is not None and self.owns(name):
            return self._live.contains(name)
        if name in self.modules or name in self._reuse:
            return True
        if not self.owns(name):
            return self.base.contains(name)
        try:
            self.locate(name)
        except ImportError:
            return False
        return True

    def loadNamed(self, fqn: str) -> ModuleType:
        """Load (once) and return the module ``fqn`` of this package."""
        if not self.owns(fqn):
            raise ImportError(f"{fqn!r} is not inside package {self.root.name!r}", name=fqn)
        return cast(ModuleType, self.lookup(fqn))  # names inside the package are modules

    def load(self, maker: ModuleSource) -> ModuleType:
        """Load the module ``maker`` describes as a member of this package."""
        return self.modules.get(maker.name) or self._load(maker.name, maker)

    def _load(self, name: str, source: ModuleSource) -> ModuleType:
        def enter(module: ModuleType) -> None:
            self.modules[name] = module
            self._own.add(name)
            self._loading.add(name)

        try:
            module = _execute(
                source,
                self,
                on_resolve=self.on_import,
                before_exec=enter,
                around_exec=self.around_exec,
            )
        except BaseException:
            self.modules.pop(name, None)
            self._own.discard(name)
            raise
        finally:
            self._loading.discard(name)
        self._bind(name, module)
        return module

    def _bind(self, name: str, module: ModuleType) -> None:
        """Make ``module`` an attribute of its parent package, as import does."""
        parent_name, _, leaf = name.rpartition(".")
        if not parent_name or parent_name not in self.modules:
            return
        if parent_name not in self._own:
            self._pending_bindings.append((parent_name, leaf, module))
        else:
            setattr(self.modules[parent_name], leaf, module)

    def publish(self) -> None:
        """Bind new submodules onto the reused parent packages they belong to."""
        for parent_name, leaf, module in self._pending_bindings:
            setattr(self.modules[parent_name], leaf, module)
        self._pending_bindings.clear()

    def handoff(self, live: Mapper) -> None:
        """Publish, then resolve the package's names through ``live`` and drop every module."""
        self.publish()
        self._live = live
        self.modules = {}
        self._reuse = {}
        self._own = set()

    def __repr__(self) -> str:
        return f"PackageContext({self.root.name!r}, {self.base!r})"


def loadPackage(maker: ModuleSource, mapper: Mapper) -> PackageContext:
    """A package context for ``maker``'s package, its ``__init__`` already loaded."""
    return PackageContext(maker, mapper)


def loadPackageNamed(fqn: str, mapper: Mapper) -> PackageContext:
    """``loadPackage(getModule(fqn), mapper)``."""
    return loadPackage(getModule(fqn), mapper)


# --------------------------------------------------------------------------
# proxyModule
# --------------------------------------------------------------------------


class _ModuleProxy:
    """Answers the replaced attributes itself and delegates every other one.

    Every name is delegated or replaced, ``__doc__``, ``__module__`` and
    ``__class__`` included (``__getattribute__``, as exocet's original had:
    ``__getattr__`` is consulted only for names the proxy class lacks), so a
    proxy of a module passes ``isinstance(proxy, ModuleType)``.
    """

    __slots__ = ("_original", "_replacements")

    def __init__(self, original: Any, replacements: dict[str, Any]) -> None:
        object.__setattr__(self, "_original", original)
        object.__setattr__(self, "_replacements", replacements)

    def __getattribute__(self, name: str) -> Any:
        replacements = object.__getattribute__(self, "_replacements")
        if name in replacements:
            return replacements[name]
        return getattr(object.__getattribute__(self, "_original"), name)

    def __setattr__(self, name: str, value: Any) -> None:
        original = object.__getattribute__(self, "_original")
        raise AttributeError(f"cannot set {name!r} on a proxy of {original!r}")

    def __dir__(self) -> list[str]:
        original = object.__getattribute__(self, "_original")
        replacements = object.__getattribute__(self, "_replacements")
        return sorted(set(dir(original)) | set(replacements))

    def __repr__(self) -> str:
        original = object.__getattribute__(self, "_original")
        replacements = object.__getattribute__(self, "_replacements")
        return f"<proxy of {original!r} replacing {sorted(replacements)}>"


def proxyModule(original: Any, **replacements: Any) -> Any:
    """An object that answers ``replacements`` and delegates the rest to ``original``."""
    return _ModuleProxy(original, replacements)
