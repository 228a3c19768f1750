"""exocet: finding sources, loading them fresh, collecting them, reporting errors."""

from __future__ import annotations

import gc
import importlib
import importlib.util
import os
import py_compile
import sys
import unittest
import warnings
import weakref
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from exocet_tree import SourceTree, tree_fixture  # noqa: F401 - tree_fixture provides ``tree``

from reloader import exocet
from reloader.exocet import Mapper, canonicalName, getModule, load, loadNamed, pep302Mapper


def _aliases(fqn: str) -> set[str]:
    """The weak ``sys.modules`` entries currently registered for loads of ``fqn``."""
    exocet.purgeCollected()
    return {name for name in sys.modules.copy() if canonicalName(name) == fqn and "@" in name}


# --------------------------------------------------------------------------
# loadNamed / load / getModule
# --------------------------------------------------------------------------


def test_loadNamed_executes_the_source_into_a_module_not_in_sys_modules(tree: SourceTree) -> None:
    path = tree.module("xmod", "VALUE = 1\ndef double(x):\n    return 2 * x\n")

    module = loadNamed("xmod", pep302Mapper)

    assert isinstance(module, ModuleType)
    assert module.VALUE == 1
    assert module.double(4) == 8
    assert module.__file__ == str(path)
    assert canonicalName(module.__name__) == "xmod"
    assert "xmod" not in sys.modules


def test_a_text_compiled_once_names_each_file_it_is_loaded_from(
    tree: SourceTree, tmp_path: Path
) -> None:
    text = "def where():\n    def inner():\n        raise ValueError\n    return inner\n"
    first = tree.module("xsame", text)
    other = tmp_path / "elsewhere.py"
    other.write_text(text)
    a = loadNamed("xsame", pep302Mapper)
    b = exocet.ModuleSource("xsame", str(other)).load(pep302Mapper)
    # One parse: the two loads run the same bytecode, each named after its own file
    # (tracebacks, the guard and ``defined_at`` go by ``co_filename``).
    assert a.where.__code__.co_code == b.where.__code__.co_code
    assert a.where.__code__.co_filename == str(first)
    assert b.where.__code__.co_filename == str(other)
    assert b.where().__code__.co_filename == str(other)
    # An edit is compiled afresh: the new text's behaviour, at once.
    tree.module("xsame", "def where():\n    return 'edited'\n")
    assert loadNamed("xsame", pep302Mapper).where() == "edited"


def test_loadNamed_of_a_package_loads_its_init(tree: SourceTree) -> None:
    init = tree.package("xpkg", "WHERE = 'init'\n")
    tree.module("xpkg.other", "WHERE = 'other'\n")

    package = loadNamed("xpkg", pep302Mapper)

    assert package.WHERE == "init"
    assert package.__file__ == str(init)
    assert package.__path__ == [str(init.parent)]
    assert package.__spec__ is not None
    assert package.__spec__.submodule_search_locations == [str(init.parent)]
    assert "xpkg" not in sys.modules


def test_load_takes_what_getModule_returns(tree: SourceTree) -> None:
    path = tree.module("xpkg.mod", "VALUE = 'mod'\n")
    tree.package("xpkg")

    source = getModule("xpkg.mod")

    assert source.name == "xpkg.mod"
    assert source.path == str(path)
    assert not source.is_package
    assert load(source, pep302Mapper).VALUE == "mod"
    assert source.load(pep302Mapper).VALUE == "mod"


def test_load_into_a_given_empty_module(tree: SourceTree) -> None:
    tree.module("xmod", "VALUE = 7\n")
    target = ModuleType("blank")

    result = loadNamed("xmod", pep302Mapper, target)

    assert result is target
    assert target.VALUE == 7
    assert canonicalName(target.__name__) == "xmod"
    target2 = ModuleType("blank2")
    assert load(getModule("xmod"), pep302Mapper, target2) is target2
    assert target2.VALUE == 7


def test_getModule_executes_no_parent_package_init(tree: SourceTree) -> None:
    tree.module("xrec", "calls = []\n")
    tree.package("xpkg", "import xrec\nxrec.calls.append(__name__)\n")
    tree.package("xpkg.sub", "raise RuntimeError('xpkg.sub.__init__ must not run')\n")
    leaf = tree.module("xpkg.sub.leaf", "VALUE = 'leaf'\n")
    xrec = importlib.import_module("xrec")

    source = getModule("xpkg.sub.leaf")
    module = loadNamed("xpkg.sub.leaf", pep302Mapper)

    assert source.path == str(leaf)
    assert module.VALUE == "leaf"
    assert xrec.calls == []
    assert "xpkg" not in sys.modules
    assert "xpkg.sub" not in sys.modules
    # The traps are armed: a real import does run them.
    importlib.import_module("xpkg")
    assert xrec.calls == ["xpkg"]
    with pytest.raises(RuntimeError, match="must not run"):
        importlib.import_module("xpkg.sub")


def test_getModule_reports_a_missing_module(tree: SourceTree) -> None:
    tree.module("xmod", "")

    with pytest.raises(ModuleNotFoundError, match="xnosuch") as excinfo:
        getModule("xnosuch")
    assert excinfo.value.name == "xnosuch"
    with pytest.raises(ModuleNotFoundError, match="not a package"):
        getModule("xmod.child")
    with pytest.raises(ModuleNotFoundError, match="xnosuch"):
        loadNamed("xnosuch", pep302Mapper)


def test_getModule_takes_a_module_file_over_a_plain_directory_of_the_same_name(
    tree: SourceTree,
) -> None:
    """Like the import system: ``xdata.py`` wins over a ``xdata/`` without __init__."""
    tree.write("xdata/readme.txt", "not code\n")
    path = tree.module("xdata", "KIND = 'module'\n")

    assert importlib.import_module("xdata").KIND == "module"
    assert getModule("xdata").path == str(path)
    assert loadNamed("xdata", pep302Mapper).KIND == "module"


def test_getModule_finds_namespace_packages(tree: SourceTree) -> None:
    leaf = tree.module("xns.leaf", "VALUE = 'ns'\n")

    source = getModule("xns")

    assert source.path is None
    assert source.is_package
    assert source.search_locations == (str(leaf.parent),)
    assert getModule("xns.leaf").path == str(leaf)
    assert loadNamed("xns.leaf", pep302Mapper).VALUE == "ns"
    namespace = loadNamed("xns", pep302Mapper)
    assert namespace.__path__ == [str(leaf.parent)]


def test_getModule_searches_an_explicit_path(tree: SourceTree, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "xhidden.py").write_text("VALUE = 'hidden'\n")

    with pytest.raises(ModuleNotFoundError):
        getModule("xhidden")
    source = getModule("xhidden", path=[str(other)])
    assert source.path == str(other / "xhidden.py")
    assert load(source, pep302Mapper).VALUE == "hidden"


# --------------------------------------------------------------------------
# Every load is fresh
# --------------------------------------------------------------------------


def test_two_loads_are_independent_fresh_executions(tree: SourceTree) -> None:
    tree.module("xrec", "calls = []\n")
    tree.module("xmod", "import xrec\nxrec.calls.append(__name__)\nITEMS = []\n")
    xrec = importlib.import_module("xrec")

    # A loaded module's attributes are its source's: Any, to set one it lacks.
    first: Any = loadNamed("xmod", pep302Mapper)
    second = loadNamed("xmod", pep302Mapper)

    assert first is not second
    assert first.__name__ != second.__name__
    assert xrec.calls == [first.__name__, second.__name__]
    first.ITEMS.append(1)
    first.NEW = "only in first"
    assert second.ITEMS == []
    assert not hasattr(second, "NEW")


def test_an_edit_between_loads_is_seen_by_the_next_load(tree: SourceTree) -> None:
    path = tree.module("xmod", "VALUE = 1\n")
    before = loadNamed("xmod", pep302Mapper)

    path.write_text("VALUE = 'two'\nADDED = True\n")
    after = loadNamed("xmod", pep302Mapper)

    assert after.VALUE == "two"
    assert after.ADDED is True
    assert before.VALUE == 1
    assert not hasattr(before, "ADDED")


def test_a_same_second_same_size_edit_is_compiled_from_source_not_pycache(tree: SourceTree) -> None:
    path = tree.module("xmod", "VALUE = 1\n")
    assert importlib.import_module("xmod").VALUE == 1
    cached = importlib.util.cache_from_source(str(path))
    if not os.path.exists(cached):  # PYTHONDONTWRITEBYTECODE
        py_compile.compile(
            str(path), cfile=cached, invalidation_mode=py_compile.PycInvalidationMode.TIMESTAMP
        )
    assert loadNamed("xmod", pep302Mapper).VALUE == 1
    stat = os.stat(path)

    path.write_text("VALUE = 2\n")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))

    assert os.stat(path).st_size == stat.st_size
    assert os.stat(path).st_mtime_ns == stat.st_mtime_ns
    # The trap is armed: the bytecode cache now serves the old value.
    del sys.modules["xmod"]
    assert importlib.import_module("xmod").VALUE == 1
    assert loadNamed("xmod", pep302Mapper).VALUE == 2


# --------------------------------------------------------------------------
# Not registered, not kept alive
# --------------------------------------------------------------------------


def test_the_weak_sys_modules_entry_neither_owns_nor_outlives_the_module(tree: SourceTree) -> None:
    tree.module("xmod", "VALUE = 1\ndef f():\n    return f\n")
    module = loadNamed("xmod", pep302Mapper)
    alias = module.__name__

    assert alias != "xmod"
    assert "@" in alias
    entry = sys.modules[alias]
    assert entry is not module
    assert entry.__dict__ is module.__dict__
    assert entry.VALUE == 1
    assert "xmod" not in sys.modules

    ref = weakref.ref(module)
    del module, entry
    gc.collect()

    assert ref() is None
    # The dead entry answers nothing, and leaves at the next safe point.
    assert not hasattr(sys.modules[alias], "VALUE")
    assert exocet.purgeCollected() >= 1
    assert alias not in sys.modules


def test_collection_never_resizes_sys_modules_under_an_iteration(tree: SourceTree) -> None:
    """A loop over ``sys.modules.items()`` that triggers a collection must not break."""
    tree.module("xmod", "VALUE = 1\n")
    for _ in range(20):
        loadNamed("xmod", pep302Mapper)  # dropped at once: garbage for the collector
    entries = len(sys.modules)
    # The loads' garbage goes at the first collection; the others, spread over
    # the iteration, check that no collection changes sys.modules under it.
    collect_at = {0, 1, 2, entries // 2, entries - 1}
    for index, (_name, _module) in enumerate(sys.modules.items()):
        if index in collect_at:
            gc.collect()


def test_the_weak_entry_forwards_writes_to_the_module(tree: SourceTree) -> None:
    tree.module("xmod", "import warnings\nwarnings.warn('from a loaded module', UserWarning)\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = loadNamed("xmod", pep302Mapper)
    assert [str(w.message) for w in caught] == ["from a loaded module"]
    assert module.__warningregistry__
    entry: Any = sys.modules[module.__name__]  # the weak entry: a module's stand-in

    entry.added = "through the entry"
    assert module.added == "through the entry"
    del entry.added
    assert not hasattr(module, "added")
    # unittest resets the warning registry of every module in sys.modules.
    with unittest.TestCase().assertWarns(UserWarning):
        warnings.warn("inside assertWarns", UserWarning, stacklevel=1)
    assert module.__warningregistry__ == {}


def test_200_loads_leave_only_the_last_one_alive(tree: SourceTree) -> None:
    tree.module(
        "xmod",
        """
        import json

        class Thing:
            def method(self):
                return Thing

        def function():
            return function, Thing()

        INSTANCE = Thing()
        """,
    )
    refs = []
    names = []
    module = None
    for _ in range(200):
        module = loadNamed("xmod", pep302Mapper)
        refs.append(weakref.ref(module))
        names.append(module.__name__)
    gc.collect()

    assert [ref for ref in refs if ref() is not None] == [refs[-1]]
    assert len(set(names)) == 200
    assert _aliases("xmod") == {names[-1]}
    del module
    gc.collect()
    assert refs[-1]() is None
    assert _aliases("xmod") == set()


def test_canonicalName() -> None:
    assert canonicalName("a.b@3") == "a.b"
    assert canonicalName("content.commands.general@17") == "content.commands.general"
    assert canonicalName("a.b") == "a.b"
    assert canonicalName("a@b") == "a@b"
    assert canonicalName("a@") == "a@"


def test_canonicalName_of_a_loaded_module_is_its_dotted_name(tree: SourceTree) -> None:
    tree.package("xpkg")
    tree.module("xpkg.mod", "")
    assert canonicalName(loadNamed("xpkg.mod", pep302Mapper).__name__) == "xpkg.mod"


# --------------------------------------------------------------------------
# Clear errors
# --------------------------------------------------------------------------


def test_a_syntax_error_carries_filename_and_line(tree: SourceTree) -> None:
    path = tree.module("xbad", "VALUE = 1\n\ndef broken(:\n    pass\n")
    before = _aliases("xbad")

    with pytest.raises(SyntaxError) as excinfo:
        loadNamed("xbad", pep302Mapper)

    assert excinfo.value.filename == str(path)
    assert excinfo.value.lineno == 3
    assert _aliases("xbad") == before


def test_a_failure_while_executing_leaves_no_half_loaded_module(tree: SourceTree) -> None:
    path = tree.module(
        "xbad",
        """
        VALUE = 1

        def helper():
            return VALUE

        raise RuntimeError("xbad fails at import")
        """,
    )
    before = set(sys.modules.copy())

    with pytest.raises(RuntimeError, match="xbad fails at import"):
        loadNamed("xbad", pep302Mapper)

    # Withdrawn at once, not merely when the traceback is collected.
    assert _aliases("xbad") == set()
    assert {name for name in set(sys.modules.copy()) - before if "@" in name} == set()
    assert "xbad" not in sys.modules

    # Even while something still holds the failed module, it is not registered.
    target = ModuleType("target")
    with pytest.raises(RuntimeError, match="xbad fails at import"):
        loadNamed("xbad", pep302Mapper, target)
    assert target.VALUE == 1
    assert target.__name__ not in sys.modules
    assert _aliases("xbad") == set()

    path.write_text("VALUE = 'fixed'\n")
    assert loadNamed("xbad", pep302Mapper).VALUE == "fixed"


@pytest.mark.parametrize(
    ("mapper", "label"),
    [
        (pep302Mapper, "pep302Mapper"),
        (exocet.emptyMapper, "emptyMapper"),
        (exocet.DictMapper({"json": object()}), "DictMapper"),
        (exocet.ExclusiveMapper(pep302Mapper, ["os"]), "ExclusiveMapper"),
        (pep302Mapper.withOverrides({"json": object()}), "pep302Mapper"),
    ],
)
def test_a_missing_import_names_the_module_and_the_mapper(
    tree: SourceTree, mapper: Mapper, label: str
) -> None:
    tree.module("xmod", "import xmissing_dependency\n")

    with pytest.raises(ImportError) as excinfo:
        loadNamed("xmod", mapper)

    message = str(excinfo.value)
    assert "xmissing_dependency" in message
    assert label in message
    assert repr(mapper) in message
    assert _aliases("xmod") == set()
