"""exocet package contexts: modules of one package that import each other."""

from __future__ import annotations

import gc
import importlib
import json
import sys
import weakref
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from exocet_tree import SourceTree, tree_fixture  # noqa: F401 - tree_fixture provides ``tree``

from reloader.exocet import (
    PackageContext,
    canonicalName,
    getModule,
    loadPackage,
    loadPackageNamed,
    pep302Mapper,
    purgeCollected,
)

XPKG = {
    "xpkg/__init__.py": """
        from .util import helper
        NAME = "xpkg"
        """,
    "xpkg/util.py": """
        def helper():
            return "helped"
        """,
    "xpkg/user.py": """
        import xpkg
        import xpkg.util
        from xpkg.util import helper
        from .util import helper as relative_helper
        from . import util
        from .sub import deep
        import json
        """,
    "xpkg/sub/__init__.py": """
        from .. import util
        """,
    "xpkg/sub/deep.py": """
        from ..util import helper
        from .. import util
        from . import sibling
        import xpkg.sub.sibling
        """,
    "xpkg/sub/sibling.py": "",
}

# Circular pairs: (import statement, expression naming the partner at call time).
CIRCULAR_STYLES = {
    "from-dot": ("from . import {partner}", "{partner}"),
    "from-absolute": ("from xpkg import {partner}", "{partner}"),
    "import-as": ("import xpkg.{partner} as {partner}", "{partner}"),
    "import-dotted": ("import xpkg.{partner}", "xpkg.{partner}"),
}

CIRCULAR_MODULE = """
{statement}

NAME = "{me}"

def name():
    return NAME

def call():
    return NAME + {expression}.name()
"""


def _write(tree: SourceTree, files: dict[str, str]) -> None:
    for relpath, text in files.items():
        tree.write(relpath, text)


def _write_pair(tree: SourceTree, style: str) -> None:
    statement, expression = CIRCULAR_STYLES[style]
    for me, partner in (("a", "b"), ("b", "a")):
        tree.module(
            f"xpkg.{me}",
            CIRCULAR_MODULE.format(
                me=me,
                statement=statement.format(partner=partner),
                expression=expression.format(partner=partner),
            ),
        )


@pytest.fixture
def xpkg(tree: SourceTree) -> SourceTree:
    _write(tree, XPKG)
    return tree


def test_the_modules_of_a_context_import_each_other_consistently(xpkg: SourceTree) -> None:
    ctx = loadPackageNamed("xpkg", pep302Mapper)
    user = ctx.loadNamed("xpkg.user")
    util = ctx.modules["xpkg.util"]
    deep = ctx.modules["xpkg.sub.deep"]

    assert ctx.package.NAME == "xpkg"
    assert user.xpkg is ctx.package
    assert user.xpkg.util is util
    assert user.util is util
    assert user.helper is util.helper
    assert user.relative_helper is util.helper
    assert ctx.package.helper is util.helper
    assert user.deep is deep
    assert deep.util is util
    assert deep.helper is util.helper
    assert ctx.modules["xpkg.sub"].util is util
    assert deep.sibling is ctx.modules["xpkg.sub.sibling"]
    assert deep.xpkg.sub.sibling is deep.sibling
    assert ctx.package.sub is ctx.modules["xpkg.sub"]
    assert user.json is json
    assert ctx.loadNamed("xpkg.util") is util
    assert set(ctx.modules) == {
        "xpkg",
        "xpkg.util",
        "xpkg.user",
        "xpkg.sub",
        "xpkg.sub.deep",
        "xpkg.sub.sibling",
    }
    for name, module in ctx.modules.items():
        assert canonicalName(module.__name__) == name
        assert name not in sys.modules


def test_a_context_is_a_mapper(xpkg: SourceTree) -> None:
    ctx = loadPackageNamed("xpkg", pep302Mapper)

    assert ctx.contains("xpkg.util")
    assert ctx.contains("xpkg.sub.deep")
    assert ctx.contains("json")
    assert not ctx.contains("xpkg.nosuch")
    assert ctx.lookup("json") is json
    assert ctx.lookup("xpkg.util") is ctx.modules["xpkg.util"]


def test_loadPackage_takes_what_getModule_returns(xpkg: SourceTree) -> None:
    ctx = loadPackage(getModule("xpkg"), pep302Mapper)

    assert ctx.package.NAME == "xpkg"
    assert ctx.load(getModule("xpkg.util")) is ctx.modules["xpkg.util"]
    assert ctx.load(getModule("xpkg.util")) is ctx.loadNamed("xpkg.util")


def test_a_context_refuses_modules_outside_its_package(xpkg: SourceTree) -> None:
    xpkg.module("xother", "")
    ctx = loadPackageNamed("xpkg", pep302Mapper)

    with pytest.raises(ImportError, match="xother"):
        ctx.loadNamed("xother")
    with pytest.raises(ImportError, match="xpkgextra"):
        ctx.loadNamed("xpkgextra.mod")
    with pytest.raises(ImportError, match="not a package"):
        loadPackageNamed("xother", pep302Mapper)


@pytest.mark.parametrize("first", ["a", "b"])
@pytest.mark.parametrize("style", sorted(CIRCULAR_STYLES))
def test_circular_imports_work_both_ways(tree: SourceTree, style: str, first: str) -> None:
    tree.package("xpkg")
    _write_pair(tree, style)
    second = "b" if first == "a" else "a"

    ctx = loadPackageNamed("xpkg", pep302Mapper)
    one = ctx.loadNamed(f"xpkg.{first}")
    other = ctx.modules[f"xpkg.{second}"]

    assert one.call() == first + second
    assert other.call() == second + first
    assert ctx.loadNamed(f"xpkg.{second}") is other
    assert ctx.package.a is ctx.modules["xpkg.a"]
    assert ctx.package.b is ctx.modules["xpkg.b"]
    if style == "import-dotted":
        assert one.xpkg.b.call() == "ba"
    else:
        assert getattr(one, second) is other
        assert getattr(other, first) is one


@pytest.mark.parametrize("style", sorted(CIRCULAR_STYLES))
def test_plain_python_allows_the_same_circular_imports(tree: SourceTree, style: str) -> None:
    """The circular pairs above are ones the normal import system accepts."""
    tree.package("xpkg")
    _write_pair(tree, style)

    assert importlib.import_module("xpkg.a").call() == "ab"
    assert importlib.import_module("xpkg.b").call() == "ba"


def test_two_contexts_share_no_module_objects(xpkg: SourceTree) -> None:
    _write_pair(xpkg, "from-dot")
    one = loadPackageNamed("xpkg", pep302Mapper)
    two = loadPackageNamed("xpkg", pep302Mapper)
    for ctx in (one, two):
        ctx.loadNamed("xpkg.user")
        ctx.loadNamed("xpkg.a")

    assert set(one.modules) == set(two.modules)
    for name in one.modules:
        assert one.modules[name] is not two.modules[name]
    assert one.modules["xpkg.a"].b is one.modules["xpkg.b"]
    assert two.modules["xpkg.a"].b is two.modules["xpkg.b"]
    assert one.modules["xpkg.user"].util is one.modules["xpkg.util"]
    assert two.modules["xpkg.user"].util is two.modules["xpkg.util"]
    package: Any = one.package  # a loaded module's attributes are its source's
    package.NAME = "changed"
    assert two.package.NAME == "xpkg"


def test_a_context_executes_no_normal_import_of_its_package(xpkg: SourceTree) -> None:
    xpkg.module("xrec", "calls = []\n")
    xpkg.write("xpkg/__init__.py", "import xrec\nxrec.calls.append(__name__)\n")
    xrec = importlib.import_module("xrec")

    ctx = loadPackageNamed("xpkg", pep302Mapper)
    ctx.loadNamed("xpkg.user")

    assert xrec.calls == [ctx.package.__name__]
    assert "xpkg" not in sys.modules
    assert "xpkg.util" not in sys.modules


def test_a_failed_module_is_not_kept_by_the_context(xpkg: SourceTree) -> None:
    path = xpkg.module("xpkg.bad", "from . import util\nraise RuntimeError('bad at import')\n")
    ctx = loadPackageNamed("xpkg", pep302Mapper)
    before = set(sys.modules.copy())

    with pytest.raises(RuntimeError, match="bad at import"):
        ctx.loadNamed("xpkg.bad")

    assert "xpkg.bad" not in ctx.modules
    assert not hasattr(ctx.package, "bad")
    assert not any(canonicalName(name) == "xpkg.bad" for name in set(sys.modules.copy()) - before)

    path.write_text("from . import util\nFIXED = True\n")
    fixed = ctx.loadNamed("xpkg.bad")
    assert fixed.FIXED is True
    assert fixed.util is ctx.modules["xpkg.util"]
    assert ctx.package.bad is fixed


def test_a_missing_module_in_a_context_names_it_and_the_context(xpkg: SourceTree) -> None:
    xpkg.module("xpkg.wants", "import xpkg.nosuch\n")
    ctx = loadPackageNamed("xpkg", pep302Mapper)

    with pytest.raises(ImportError) as excinfo:
        ctx.loadNamed("xpkg.wants")
    assert "'xpkg.nosuch'" in str(excinfo.value)
    assert repr(ctx) in str(excinfo.value)
    assert "xpkg.wants" not in ctx.modules

    xpkg.module("xpkg.wants2", "import xnosuch_outside\n")
    with pytest.raises(ImportError) as excinfo:
        ctx.loadNamed("xpkg.wants2")
    assert "'xnosuch_outside'" in str(excinfo.value)
    assert repr(ctx) in str(excinfo.value)


def test_a_dropped_context_is_collected(xpkg: SourceTree) -> None:

    ctx = loadPackageNamed("xpkg", pep302Mapper)
    ctx.loadNamed("xpkg.user")
    refs = [weakref.ref(module) for module in ctx.modules.values()]
    names = [module.__name__ for module in ctx.modules.values()]
    del ctx
    gc.collect()
    purgeCollected()

    assert [ref for ref in refs if ref() is not None] == []
    assert not any(name in sys.modules for name in names)


# --------------------------------------------------------------------------
# reuse, on_import, publish
# --------------------------------------------------------------------------

XLIVE = {
    "xrec.py": "calls = []\n",
    "xlive/__init__.py": """
        import xrec
        xrec.calls.append(__name__)
        from . import base
        """,
    "xlive/base.py": """
        import xrec
        xrec.calls.append(__name__)
        """,
    "xlive/dep.py": """
        import xrec
        xrec.calls.append(__name__)
        import json
        from . import base

        def later():
            import collections
            return collections
        """,
    "xlive/user.py": """
        import xrec
        xrec.calls.append(__name__)
        from . import dep
        import xlive.base
        """,
}


@pytest.fixture
def xlive(tree: SourceTree) -> ModuleType:
    _write(tree, XLIVE)
    return importlib.import_module("xrec")


def _executed(xrec: ModuleType) -> list[str]:
    return [canonicalName(name) for name in xrec.calls]


def _live_generation() -> PackageContext:
    live = loadPackageNamed("xlive", pep302Mapper)
    live.loadNamed("xlive.user")
    return live


def test_reuse_returns_the_same_objects_without_executing_them(xlive: ModuleType) -> None:
    live = _live_generation()
    assert _executed(xlive) == ["xlive", "xlive.base", "xlive.user", "xlive.dep"]
    xlive.calls.clear()
    reuse = {name: live.modules[name] for name in ("xlive", "xlive.base")}

    ctx = PackageContext(getModule("xlive"), pep302Mapper, reuse=reuse)

    assert ctx.package is live.package
    assert ctx.loadNamed("xlive.base") is live.modules["xlive.base"]
    assert _executed(xlive) == []
    dep = ctx.loadNamed("xlive.dep")
    assert dep is not live.modules["xlive.dep"]
    assert dep.base is live.modules["xlive.base"]
    assert _executed(xlive) == ["xlive.dep"]
    assert ctx.loaded() == {"xlive.dep": dep}
    reuse["xlive.dep"] = "not seen"  # type: ignore[assignment]  # not a module: never read
    assert ctx.modules["xlive.dep"] is dep


def test_on_import_receives_importer_and_imported_names(xlive: ModuleType) -> None:
    pairs = []
    ctx = PackageContext(
        getModule("xlive"), pep302Mapper, on_import=lambda *pair: pairs.append(pair)
    )
    assert ("xlive", "xrec") in pairs
    assert ("xlive", "xlive.base") in pairs

    pairs.clear()
    dep = ctx.loadNamed("xlive.dep")

    # ``base`` was already an attribute of the package: still recorded.
    assert set(pairs) >= {
        ("xlive.dep", "xrec"),
        ("xlive.dep", "json"),
        ("xlive.dep", "xlive.base"),
    }
    assert all(importer == "xlive.dep" for importer, _ in pairs)

    pairs.clear()
    dep.later()
    assert pairs == [("xlive.dep", "collections")]

    pairs.clear()
    ctx.loadNamed("xlive.user")
    assert ("xlive.user", "xlive.dep") in pairs
    assert ("xlive.user", "xlive.base") in pairs


def test_on_import_with_reuse_records_only_the_new_executions(xlive: ModuleType) -> None:
    live = _live_generation()
    pairs: list[tuple[str, str]] = []
    reuse = {name: live.modules[name] for name in ("xlive", "xlive.base")}

    ctx = PackageContext(getModule("xlive"), pep302Mapper, reuse=reuse, on_import=_adder(pairs))
    assert pairs == []
    ctx.loadNamed("xlive.dep")
    assert ("xlive.dep", "xlive.base") in pairs
    assert {importer for importer, _ in pairs} == {"xlive.dep"}


def _adder(pairs: list[tuple[str, str]]) -> Callable[[str, str], None]:
    return lambda importer, imported: pairs.append((importer, imported))


def test_binding_onto_reused_parents_waits_for_publish(xlive: ModuleType, tree: SourceTree) -> None:
    live = _live_generation()
    old_dep, old_user = live.modules["xlive.dep"], live.modules["xlive.user"]
    assert live.package.dep is old_dep
    tree.module("xlive.extra", "from . import dep\n")
    reuse = {name: live.modules[name] for name in ("xlive", "xlive.base")}

    ctx = PackageContext(getModule("xlive"), pep302Mapper, reuse=reuse)
    new_user = ctx.loadNamed("xlive.user")
    new_dep = ctx.modules["xlive.dep"]
    extra = ctx.loadNamed("xlive.extra")

    # Inside the new context the new modules are the ones imported...
    assert new_dep is not old_dep
    assert new_user.dep is new_dep
    assert extra.dep is new_dep
    # ...while the reused package is untouched until publish().
    assert live.package.dep is old_dep
    assert live.package.user is old_user
    assert not hasattr(live.package, "extra")

    ctx.publish()

    assert live.package.dep is new_dep
    assert live.package.user is new_user
    assert live.package.extra is extra


def test_a_discarded_context_leaves_reused_modules_untouched(xlive: ModuleType) -> None:
    live = _live_generation()
    old_dep = live.modules["xlive.dep"]
    reuse = {name: live.modules[name] for name in ("xlive", "xlive.base")}

    ctx = PackageContext(getModule("xlive"), pep302Mapper, reuse=reuse)
    ctx.loadNamed("xlive.dep")
    del ctx
    gc.collect()

    assert live.package.dep is old_dep
    assert live.package.base is live.modules["xlive.base"]
