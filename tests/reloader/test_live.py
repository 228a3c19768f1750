"""reloader.live: a package directory's live generation, rebuilt in all-or-nothing batches.

Every test works on a throw-away package ``xgame`` in a tmp dir that is not
on ``sys.path``; the ``LiveTree`` is handed the directory itself.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from live_tree import (
    PACKAGE,
    Markers,
    PackageDir,
    Tracker,
    build,
    live_aliases,
    package_fixture,  # noqa: F401 - provides the ``pkg`` fixture
    reload,
)

from reloader import exocet
from reloader.live import BatchError, LiveTree


def snapshot(tree: LiveTree) -> dict[str, object]:
    """What must not change when a batch fails: live objects, graph edges, package attributes."""
    state: dict[str, object] = {f"live {n}": m for n, m in tree.live.items()}
    for name, module in tree.live.items():
        state[f"imports {name}"] = tree.graph.imports_of(name)
        state[f"importers {name}"] = frozenset(tree.graph.importers_of(name))
        state[f"attrs {name}"] = dict(vars(module))
    return state


def assert_unchanged(before: dict[str, object], tree: LiveTree) -> None:
    after = snapshot(tree)
    assert after.keys() == before.keys()
    for key, value in before.items():
        if isinstance(value, dict):
            assert after[key].keys() == value.keys(), key  # type: ignore[attr-defined]
            for attr, obj in value.items():
                assert after[key][attr] is obj, f"{key}.{attr}"  # type: ignore[index]
        elif key.startswith("live "):
            assert after[key] is value, key
        else:
            assert after[key] == value, key


# -- names and files -------------------------------------------------------------


def test_discover_lists_every_module_with_a_source_file(pkg: PackageDir) -> None:
    pkg.write("base")
    pkg.write("sub/")
    pkg.write("sub/deep")
    pkg.write("plain/mod")  # a directory without __init__.py
    pkg.write(".hidden/secret")
    (pkg.directory / "bad-name.py").write_text("", encoding="utf-8")
    (pkg.directory / "notes.txt").write_text("", encoding="utf-8")
    (pkg.directory / "__pycache__").mkdir()
    (pkg.directory / "__pycache__" / "base.cpython-311.pyc").write_bytes(b"")
    (pkg.directory / "data").mkdir()
    assert pkg.tree().discover() == {
        "xgame",
        "xgame.base",
        "xgame.sub",
        "xgame.sub.deep",
        "xgame.plain.mod",
    }


def test_discover_always_names_the_package_itself(pkg: PackageDir) -> None:
    pkg.remove("")
    pkg.write("base")
    assert pkg.tree().discover() == {"xgame", "xgame.base"}


def test_module_name_of_files_packages_and_directories(pkg: PackageDir) -> None:
    tree = pkg.tree()
    d = pkg.directory
    assert tree.module_name(d / "base.py") == "xgame.base"
    assert tree.module_name(str(d / "base.py")) == "xgame.base"
    assert tree.module_name(d / "sub" / "deep.py") == "xgame.sub.deep"
    assert tree.module_name(d / "sub" / "__init__.py") == "xgame.sub"
    assert tree.module_name(d / "__init__.py") == "xgame"
    assert tree.module_name(d / "sub") == "xgame.sub"
    assert tree.module_name(d) == "xgame"
    assert tree.module_name(d / "sub" / ".." / "base.py") == "xgame.base"
    # Files need not exist: a deleted file still has its name.
    assert tree.module_name(d / "gone" / "away.py") == "xgame.gone.away"


def test_module_name_is_none_outside_the_tree_or_for_non_modules(pkg: PackageDir) -> None:
    tree = pkg.tree()
    d = pkg.directory
    assert tree.module_name(d.parent / "elsewhere.py") is None
    assert tree.module_name(d.parent) is None
    assert tree.module_name(d.parent / "xgame2" / "base.py") is None  # same prefix, other dir
    assert tree.module_name("/") is None
    assert tree.module_name(d / "notes.txt") is None
    assert tree.module_name(d / "bad-name.py") is None
    assert tree.module_name(d / ".hidden" / "x.py") is None
    assert tree.module_name(d / "base.py.swp") is None
    assert tree.module_name(d / "4913") is None


def test_module_name_through_a_symlinked_directory(pkg: PackageDir, tmp_path: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(pkg.directory, target_is_directory=True)
    through_link = LiveTree(PACKAGE, link, exocet.pep302Mapper)
    assert through_link.module_name(link / "base.py") == "xgame.base"
    assert through_link.module_name(pkg.directory / "base.py") == "xgame.base"
    assert pkg.tree().module_name(link / "sub" / "__init__.py") == "xgame.sub"
    assert through_link.module_name(tmp_path / "other.py") is None


def test_under_names_a_live_module_and_everything_inside_it(pkg: PackageDir) -> None:
    pkg.write("quests/")
    pkg.write("quests/board")
    pkg.write("questsmore")
    tree = pkg.tree()
    build(tree)
    assert tree.under("xgame.quests") == {"xgame.quests", "xgame.quests.board"}
    assert tree.under("xgame.nothing") == set()


# -- the first batch ---------------------------------------------------------------


def test_prepare_and_commit_of_the_whole_tree(pkg: PackageDir) -> None:
    pkg.write("", "from . import base\nNAME = 'root'\n")
    pkg.write("base", "VALUE = 1\n")
    pkg.write("mid", "from xgame.base import VALUE\nDOUBLE = VALUE * 2\n")
    pkg.write("sub/", "")
    pkg.write("sub/deep", "from ..mid import DOUBLE\nfrom .. import base\n")
    tree = pkg.tree()

    batch = tree.prepare(tree.discover())
    expected = ["xgame", "xgame.base", "xgame.mid", "xgame.sub", "xgame.sub.deep"]
    assert batch.names == expected
    assert tree.live == {}, "prepare alone must not make anything live"
    assert not batch.committed
    tree.commit(batch)
    assert batch.committed
    assert sorted(tree.live) == expected
    assert {n: exocet.canonicalName(m.__name__) for n, m in tree.live.items()} == {
        n: n for n in expected
    }
    for name, module in tree.live.items():
        assert module.__name__ != name and name not in sys.modules
        assert module.__file__ is not None
        assert module.__file__.startswith(str(pkg.directory))
    live = tree.live
    assert live["xgame.sub.deep"].DOUBLE == 2
    assert live["xgame.sub.deep"].base is live["xgame.base"]
    assert live["xgame"].base is live["xgame.base"]
    assert live["xgame"].sub is live["xgame.sub"]
    assert live["xgame.sub"].deep is live["xgame.sub.deep"]
    assert tree.graph.imports_of("xgame") == {"xgame.base"}
    assert tree.graph.imports_of("xgame.mid") == {"xgame.base"}
    assert tree.graph.imports_of("xgame.sub.deep") >= {"xgame.mid", "xgame.base"}
    assert tree.graph.imports_of("xgame.base") == frozenset()


def test_a_broken_package_init_fails_the_first_batch(pkg: PackageDir) -> None:
    pkg.write("", "x = (\n")
    pkg.write("base")
    tree = pkg.tree()
    with pytest.raises(BatchError) as excinfo:
        tree.prepare(tree.discover())
    [failure] = excinfo.value.failures
    assert failure.module == "xgame"
    assert failure.path == str(pkg.path(""))
    assert failure.line == 1
    assert "SyntaxError" in failure.message
    assert tree.live == {}


# -- later batches -------------------------------------------------------------------

BASE = "VALUE = {n}\n"
MID = "from xgame.base import VALUE\n"
TOP = """
from . import base
from . import mid
def value():
    return base.VALUE, mid.VALUE
"""
DOTTED = """
import xgame.base
def value():
    return xgame.base.VALUE
"""
LEAF = "LEAF = {n}\n"


@pytest.fixture
def chain(pkg: PackageDir) -> LiveTree:
    """base <- mid <- top, base <- dotted; leaf and root stand alone."""
    pkg.write("base", BASE.format(n=1))
    pkg.write("mid", MID)
    pkg.write("top", TOP)
    pkg.write("dotted", DOTTED)
    pkg.write("leaf", LEAF.format(n=1))
    tree = pkg.tree()
    build(tree)
    return tree


def test_changing_a_leaf_rebuilds_only_the_leaf(pkg: PackageDir, chain: LiveTree) -> None:
    before = dict(chain.live)
    pkg.write("leaf", LEAF.format(n=2))
    assert reload(chain, "leaf") == ["leaf"]
    assert chain.live["xgame.leaf"] is not before["xgame.leaf"]
    assert chain.live["xgame.leaf"].LEAF == 2
    for name, module in before.items():
        if name != "xgame.leaf":
            assert chain.live[name] is module, name
    # The live package now carries the new leaf.
    assert chain.live["xgame"].leaf is chain.live["xgame.leaf"]


def test_prepare_does_not_touch_the_live_generation_until_commit(
    pkg: PackageDir, chain: LiveTree
) -> None:
    before = snapshot(chain)
    pkg.write("leaf", LEAF.format(n=2))
    batch = chain.prepare({"xgame.leaf"})
    assert batch.modules["xgame.leaf"].LEAF == 2
    assert_unchanged(before, chain)
    assert chain.live["xgame"].leaf.LEAF == 1
    chain.commit(batch)
    assert chain.live["xgame"].leaf.LEAF == 2


def test_changing_a_module_rebuilds_its_transitive_dependents(
    pkg: PackageDir, chain: LiveTree
) -> None:
    before = dict(chain.live)
    pkg.write("base", BASE.format(n=2))
    assert reload(chain, "base") == ["base", "dotted", "mid", "top"]
    live = chain.live
    for name in ("xgame", "xgame.leaf"):
        assert live[name] is before[name]
    for name in ("xgame.base", "xgame.mid", "xgame.top", "xgame.dotted"):
        assert live[name] is not before[name]
    assert live["xgame.mid"].VALUE == 2
    assert live["xgame.top"].base is live["xgame.base"]
    assert live["xgame.top"].mid is live["xgame.mid"]
    assert live["xgame.top"].value() == (2, 2)
    assert live["xgame.dotted"].value() == 2
    assert live["xgame.dotted"].xgame.base is live["xgame.base"]


def test_dependents_are_rebuilt_in_order_across_several_rounds(
    pkg: PackageDir, chain: LiveTree
) -> None:
    for n in range(2, 6):
        pkg.write("base", BASE.format(n=n))
        reload(chain, "base")
        assert chain.live["xgame.top"].value() == (n, n)
        assert chain.live["xgame.dotted"].value() == n
    pkg.write("mid", MID + "VALUE = -VALUE\n")
    assert reload(chain, "mid") == ["mid", "top"]
    assert chain.live["xgame.top"].value() == (5, -5)


def test_a_new_module_imported_by_a_changed_one_joins_the_batch(
    pkg: PackageDir, chain: LiveTree
) -> None:
    pkg.write("extra", "EXTRA = 'new'\n")
    pkg.write("leaf", "from .extra import EXTRA\n")
    assert reload(chain, "leaf") == ["extra", "leaf"]
    assert chain.live["xgame.leaf"].EXTRA == "new"
    assert chain.live["xgame"].extra is chain.live["xgame.extra"]
    assert chain.graph.imports_of("xgame.leaf") == {"xgame.extra"}


def test_a_circular_pair_is_rebuilt_together_and_consistently(pkg: PackageDir) -> None:
    pkg.write("ping", "from . import pong\nN = 1\ndef other():\n    return pong.N\n")
    pkg.write("pong", "from . import ping\nN = 10\ndef other():\n    return ping.N\n")
    tree = pkg.tree()
    build(tree)
    pkg.write("ping", "from . import pong\nN = 2\ndef other():\n    return pong.N\n")
    assert reload(tree, "ping") == ["ping", "pong"]
    ping, pong = tree.live["xgame.ping"], tree.live["xgame.pong"]
    assert ping.pong is pong and pong.ping is ping
    assert (ping.other(), pong.other()) == (10, 2)


# -- all or nothing ---------------------------------------------------------------------

BROKEN = {
    "syntax": ("from xgame.base import VALUE\n\ndef broken(:\n    pass\n", 3, "SyntaxError"),
    "runtime": ("from xgame.base import VALUE\nX = 1\nY = VALUE / 0\n", 3, "ZeroDivisionError"),
    "name": ("from xgame.base import VALUE\n\n\nmissing_name + 1\n", 4, "NameError"),
    "import": ("from xgame.base import VALUE, NOPE\n", 1, "ImportError"),
}


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_a_failing_dependent_fails_the_whole_batch(
    pkg: PackageDir, chain: LiveTree, kind: str
) -> None:
    source, line, error = BROKEN[kind]
    before = snapshot(chain)
    aliases = pkg.loaded_aliases()
    pkg.write("base", BASE.format(n=2))  # fine on its own, and built first
    mid = pkg.write("mid", source)
    with pytest.raises(BatchError) as excinfo:
        chain.prepare({"xgame.base"})
    [failure] = excinfo.value.failures
    assert failure.module == "xgame.mid"
    assert failure.path == str(mid)
    assert failure.line == line
    assert failure.message.startswith(error), failure.message
    assert f"{mid}:{line}: {error}" in str(excinfo.value)
    assert error in failure.details
    del excinfo
    assert_unchanged(before, chain)
    assert chain.live["xgame"].base.VALUE == 1
    assert chain.live["xgame.top"].value() == (1, 1)
    assert pkg.loaded_aliases() == aliases, "the failed batch's modules must be gone"

    # Fixing the file makes the very same change go through.
    pkg.write("mid", MID)
    assert reload(chain, "base") == ["base", "dotted", "mid", "top"]
    assert chain.live["xgame.top"].value() == (2, 2)


def test_a_failure_is_located_at_the_deepest_line_inside_the_tree(
    pkg: PackageDir, tmp_path: Path
) -> None:
    # xgame_helpers.py sits beside xgame/ and shares its name as a prefix;
    # it is outside the tree, so its line is not the builder's.
    helper_path = tmp_path / "xgame_helpers.py"
    helper_path.write_text("def explode():\n    raise ValueError('boom')\n", encoding="utf-8")
    helpers = exocet.load(exocet.ModuleSource("xhelpers", str(helper_path)), exocet.pep302Mapper)
    mapper = exocet.pep302Mapper.withOverrides({"xhelpers": helpers})
    pkg.write("util", "def check(value):\n    if value:\n        raise KeyError(value)\n")
    pkg.write("mid", "from . import util\n\nutil.check(0)\nutil.check(1)\n")
    calls_helper = pkg.write("top", "import xhelpers\n\nxhelpers.explode()\n")
    tree = pkg.tree(mapper)

    with pytest.raises(BatchError) as excinfo:
        tree.prepare({"xgame", "xgame.util", "xgame.mid"})
    [failure] = excinfo.value.failures
    assert (failure.path, failure.line) == (str(pkg.path("util")), 3)
    assert failure.message == "KeyError: 1"

    with pytest.raises(BatchError) as excinfo:
        tree.prepare({"xgame", "xgame.top"})
    [failure] = excinfo.value.failures
    assert (failure.path, failure.line) == (str(calls_helper), 3)
    assert failure.message == "ValueError: boom"


def test_system_exit_at_import_is_a_batch_error(pkg: PackageDir, chain: LiveTree) -> None:
    before = snapshot(chain)
    pkg.write("leaf", "import sys\n\nsys.exit(3)\n")
    with pytest.raises(BatchError) as excinfo:
        chain.prepare({"xgame.leaf"})
    [failure] = excinfo.value.failures
    assert (failure.module, failure.path, failure.line) == ("xgame.leaf", str(pkg.path("leaf")), 3)
    assert failure.message.startswith("SystemExit")
    assert isinstance(excinfo.value.__cause__, SystemExit)
    assert_unchanged(before, chain)


def test_keyboard_interrupt_at_import_is_not_swallowed(pkg: PackageDir, chain: LiveTree) -> None:
    pkg.write("leaf", "raise KeyboardInterrupt\n")
    with pytest.raises(KeyboardInterrupt):
        chain.prepare({"xgame.leaf"})


# -- removed modules -------------------------------------------------------------------

STILL_IMPORTS_EXTRA = {
    "from-module": "from xgame.extra import EXTRA\n",
    "import-dotted": "import xgame.extra\n",
    "from-dot": "from . import extra\n",
    "from-package": "from xgame import extra\n",
    "relative-from": "from .extra import EXTRA\n",
}


@pytest.fixture
def with_extra(pkg: PackageDir) -> LiveTree:
    pkg.write("extra", "EXTRA = 'extra'\n")
    pkg.write("bystander", "VALUE = 1\n")
    return pkg.tree()


@pytest.mark.parametrize("style", sorted(STILL_IMPORTS_EXTRA))
def test_a_dependent_that_still_imports_a_removed_module_fails_the_batch(
    pkg: PackageDir, with_extra: LiveTree, style: str
) -> None:
    tree = with_extra
    user = pkg.write("user", STILL_IMPORTS_EXTRA[style])
    build(tree)
    assert "xgame.extra" in tree.graph.imports_of("xgame.user")
    before = snapshot(tree)
    pkg.remove("extra")
    with pytest.raises(BatchError) as excinfo:
        tree.prepare((), {"xgame.extra"})
    [failure] = excinfo.value.failures
    assert failure.module == "xgame.user"
    assert (failure.path, failure.line) == (str(user), 1)
    assert "extra" in failure.message
    del excinfo
    assert_unchanged(before, tree)
    assert tree.live["xgame"].extra is tree.live["xgame.extra"]

    # Once the dependent lets go, the removal goes through.
    pkg.write("user", "USER = 1\n")
    assert reload(tree, "user", removed={"xgame.extra"}) == ["user"]
    assert "xgame.extra" not in tree.live
    assert not hasattr(tree.live["xgame"], "extra")


def test_a_removed_module_leaves_the_live_generation_and_is_freed(
    pkg: PackageDir, with_extra: LiveTree
) -> None:
    tree = with_extra
    pkg.write("user", "from xgame.extra import EXTRA\n")
    build(tree)
    old = Tracker()
    old.track([tree.live["xgame.extra"], tree.live["xgame.user"]])
    bystander = tree.live["xgame.bystander"]
    pkg.remove("extra")
    pkg.write("user", "EXTRA = 'own'\n")
    assert reload(tree, "user", removed={"xgame.extra"}) == ["user"]
    assert sorted(tree.live) == ["xgame", "xgame.bystander", "xgame.user"]
    assert tree.live["xgame.bystander"] is bystander
    assert tree.live["xgame.user"].EXTRA == "own"
    # The package no longer carries it, and nothing keeps the old version alive.
    assert not hasattr(tree.live["xgame"], "extra")
    assert tree.graph.imports_of("xgame.user") == frozenset()
    assert old.alive() == []
    assert pkg.loaded_aliases() == live_aliases(tree)

    # A function-level import of it now fails, as it would in plain Python.
    pkg.write("user", "def get():\n    from xgame import extra\n    return extra\n")
    reload(tree, "user")
    with pytest.raises(ImportError):
        tree.live["xgame.user"].get()


def test_removing_a_subpackage_removes_its_modules(pkg: PackageDir) -> None:
    pkg.write("quests/", "from . import board\n")
    pkg.write("quests/board", "BOARD = 1\n")
    pkg.write("other", "OTHER = 1\n")
    tree = pkg.tree()
    build(tree)
    old = Tracker()
    old.track([tree.live["xgame.quests"], tree.live["xgame.quests.board"]])
    (pkg.directory / "quests" / "board.py").unlink()
    (pkg.directory / "quests" / "__init__.py").unlink()
    (pkg.directory / "quests").rmdir()
    gone = tree.under("xgame.quests")
    assert reload(tree, removed=gone) == []
    assert sorted(tree.live) == ["xgame", "xgame.other"]
    assert not hasattr(tree.live["xgame"], "quests")
    assert tree.graph.imports_of("xgame.quests") == frozenset()
    assert old.alive() == []


# -- packages -----------------------------------------------------------------------------


def test_a_rebuilt_package_keeps_its_live_submodules_as_attributes(
    pkg: PackageDir, chain: LiveTree
) -> None:
    pkg.write("sub/", "SUB = 1\n")
    pkg.write("sub/inner", "INNER = 1\n")
    reload(chain, "sub", "sub.inner")
    before = dict(chain.live)

    pkg.write("", "ROOT = 2\n")
    pkg.write("sub/", "SUB = 2\n")
    assert reload(chain, "", "sub") == ["", "dotted", "sub", "top"]
    root, sub = chain.live["xgame"], chain.live["xgame.sub"]
    assert root is not before["xgame"] and root.ROOT == 2
    assert sub is not before["xgame.sub"] and sub.SUB == 2
    assert root.leaf is before["xgame.leaf"] is chain.live["xgame.leaf"]
    assert root.sub is sub
    assert sub.inner is before["xgame.sub.inner"] is chain.live["xgame.sub.inner"]
    for name in ("base", "mid", "top", "dotted"):
        assert getattr(root, name) is chain.live[f"xgame.{name}"]


def test_a_rebuilt_package_keeps_its_own_attribute_named_like_a_submodule(
    pkg: PackageDir,
) -> None:
    # ``from .leaf import leaf``: the package's ``leaf`` is the function, as in
    # plain Python, and stays the function when only the package is rebuilt.
    pkg.write("", "from .leaf import leaf\n")
    pkg.write("leaf", "def leaf():\n    return 'function'\n")
    tree = pkg.tree()
    build(tree)
    assert tree.live["xgame"].leaf() == "function"
    pkg.write("", "from .leaf import leaf\nROOT = 2\n")
    assert reload(tree, "") == [""]
    assert tree.live["xgame"].ROOT == 2
    assert tree.live["xgame"].leaf() == "function"


# -- function-level imports ------------------------------------------------------------------

LAZY = """
def get_b():
    from xgame import b
    return b

def get_b_dotted():
    import xgame.b
    return xgame.b

def get_b_relative():
    from .b import B
    return B
"""


def test_function_level_imports_resolve_to_the_current_generation(pkg: PackageDir) -> None:
    pkg.write("a", LAZY)
    pkg.write("b", "B = 1\n")
    tree = pkg.tree()
    build(tree)
    a = tree.live["xgame.a"]
    assert tree.graph.imports_of("xgame.a") == frozenset()
    pkg.write("b", "B = 2\n")
    assert reload(tree, "b") == ["b"]  # nothing is known to import b yet
    assert tree.live["xgame.a"] is a
    assert a.get_b() is tree.live["xgame.b"]
    assert a.get_b().B == 2
    assert a.get_b_dotted() is tree.live["xgame.b"]
    assert a.get_b_relative() == 2

    # The imports that ran after commit are in the graph now, so the next
    # change of b rebuilds a with it.
    assert tree.graph.imports_of("xgame.a") == {"xgame", "xgame.b"}
    pkg.write("b", "B = 3\n")
    assert reload(tree, "b") == ["a", "b"]
    assert tree.live["xgame.a"] is not a
    assert tree.live["xgame.a"].get_b().B == 3
    # An old version still running somewhere also sees the current generation.
    assert a.get_b().B == 3


def test_an_import_inside_a_failed_batch_is_not_recorded(pkg: PackageDir) -> None:
    pkg.write("a", "A = 1\n")
    pkg.write("b", "B = 1\n")
    tree = pkg.tree()
    build(tree)
    pkg.write("a", "from . import b\nraise RuntimeError\n")
    with pytest.raises(BatchError):
        tree.prepare({"xgame.a"})
    assert tree.graph.imports_of("xgame.a") == frozenset()
    assert tree.graph.dependents({"xgame.b"}) == set()


# -- no leaks ------------------------------------------------------------------------------------

LEAK_A = """
from __future__ import annotations
from dataclasses import dataclass

VERSION = {n}

@dataclass
class Thing:
    value: int = VERSION

def fa():
    return VERSION

def later():
    from xgame import b
    return b.fb()
"""
LEAK_B = """
VERSION = {n}

class Base:
    def fb(self):
        return VERSION

fb = Base().fb
"""
LEAK_C = """
import xgame.a
from xgame.a import fa, Thing
from . import b
from .b import Base

VERSION = {n}

class Sub(Base):
    pass

INSTANCE = Sub()
THING = Thing()

def total():
    return (fa(), b.fb(), xgame.a.VERSION, INSTANCE.fb(), THING.value, VERSION)
"""
LEAK_SOURCES = {"a": LEAK_A, "b": LEAK_B, "c": LEAK_C}


@pytest.fixture
def abc(pkg: PackageDir) -> LiveTree:
    """Modules a, b, c where c imports a and b."""
    for name, source in LEAK_SOURCES.items():
        pkg.write(name, source.format(n=0))
    tree = pkg.tree()
    build(tree)
    return tree


def test_no_replaced_version_stays_alive_after_many_reloads(pkg: PackageDir, abc: LiveTree) -> None:
    tree = abc
    replaced = Tracker()
    versions = {"a": 0, "b": 0, "c": 0}
    # a's function-level import of b (run after every batch) makes a a dependent of b.
    rebuilds = {"a": ["a", "c"], "b": ["a", "b", "c"], "c": ["c"]}
    sequence = ["a", "b", "a", "c"]
    n = 0
    for _round in range(50):
        for name in sequence:
            n += 1
            versions[name] = n
            pkg.write(name, LEAK_SOURCES[name].format(n=n))
            before = dict(tree.live)
            rebuilt = reload(tree, name)
            assert rebuilt == rebuilds[name]
            replaced.track(before[f"xgame.{m}"] for m in rebuilt)
            del before
            c = tree.live["xgame.c"]
            a, b = versions["a"], versions["b"]
            assert c.total() == (a, b, a, b, a, versions["c"])
            assert tree.live["xgame.a"].later() == b
    assert len(replaced) == 50 * (2 + 3 + 2 + 1)
    assert replaced.alive() == []
    assert pkg.loaded_aliases() == live_aliases(tree)
    assert len(live_aliases(tree)) == 4


def test_the_first_batch_is_freed_module_by_module(pkg: PackageDir, abc: LiveTree) -> None:
    tree = abc
    old = Tracker()
    old.track([tree.live["xgame.a"], tree.live["xgame.c"]])
    first_b, first_package = tree.live["xgame.b"], tree.live["xgame"]
    pkg.write("a", LEAK_A.format(n=1))
    assert reload(tree, "a") == ["a", "c"]
    # b and the package are still those of the first batch ...
    assert tree.live["xgame.b"] is first_b
    assert tree.live["xgame"] is first_package
    # ... and they do not keep the first batch's a or c alive.
    assert old.alive() == []
    assert pkg.loaded_aliases() == live_aliases(tree)


def test_a_failed_batch_is_freed(pkg: PackageDir) -> None:
    markers = Markers()
    mapper = exocet.pep302Mapper.withOverrides({"xprobe": markers})
    marked = "import xprobe\nMARK = xprobe.mark(__name__)\n"
    pkg.write("a", marked + "A = 1\n")
    pkg.write("b", marked + "B = 1\n")
    pkg.write("c", marked + "from . import a, b\n")
    tree = pkg.tree(mapper)
    build(tree)
    live_marks = {id(m.MARK) for m in tree.live.values() if hasattr(m, "MARK")}
    assert len(live_marks) == 3

    for attempt in range(3):
        pkg.write("a", marked + f"A = {attempt + 2}\n")
        pkg.write("c", marked + "from . import a, b\nraise RuntimeError('late')\n")
        with pytest.raises(BatchError) as excinfo:
            tree.prepare({"xgame.a"})
        assert excinfo.value.failures[0].message == "RuntimeError: late"
        del excinfo
    assert len(markers) == 3 + 3 * 2  # a and c were built each time
    assert {id(m) for m in markers.alive()} == live_marks
    assert pkg.loaded_aliases() == live_aliases(tree)
    assert tree.live["xgame.c"].a.A == 1


def test_a_failed_removal_and_a_system_exit_are_freed(pkg: PackageDir, abc: LiveTree) -> None:
    tree = abc
    pkg.write("b", "import sys\nsys.exit(1)\n")
    with pytest.raises(BatchError):
        tree.prepare({"xgame.b"})
    os.unlink(pkg.path("a"))
    with pytest.raises(BatchError):
        tree.prepare((), {"xgame.a"})
    assert pkg.loaded_aliases() == live_aliases(tree)
