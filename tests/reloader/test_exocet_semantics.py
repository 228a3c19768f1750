"""What works in a normally imported module works in a loaded one."""

from __future__ import annotations

import dataclasses
import enum
import inspect
import json
import linecache
import traceback
import typing
from types import ModuleType, SimpleNamespace
from typing import Any, Protocol, cast

import pytest
from exocet_tree import SourceTree, tree_fixture  # noqa: F401 - tree_fixture provides ``tree``

from reloader.exocet import (
    DictMapper,
    canonicalName,
    getModule,
    loadNamed,
    loadPackageNamed,
    pep302Mapper,
    proxyModule,
)


class SourceLoader(Protocol):
    """What a loaded module's ``__loader__`` offers ``inspect`` and ``linecache``."""

    def get_source(self, name: str) -> str: ...

    def is_package(self, name: str) -> bool: ...


def loader_of(module: ModuleType) -> SourceLoader:
    return cast(SourceLoader, module.__loader__)


# --------------------------------------------------------------------------
# Module attributes
# --------------------------------------------------------------------------


def test_module_attributes_are_those_of_an_imported_module(tree: SourceTree) -> None:
    tree.package("xpkg")
    path = tree.module(
        "xpkg.mod",
        """
        seen = (__name__, __file__, __package__, __spec__.name, __spec__.origin)
        """,
    )

    module = loadNamed("xpkg.mod", pep302Mapper)

    assert canonicalName(module.__name__) == "xpkg.mod"
    assert module.__file__ == str(path)
    assert module.__package__ == "xpkg"
    assert module.__spec__ is not None
    assert module.__spec__.origin == module.__file__
    assert module.__spec__.name == module.__name__
    assert module.__spec__.has_location
    assert module.__spec__.parent == "xpkg"
    assert loader_of(module).get_source(module.__name__) == path.read_text()
    assert module.seen == (module.__name__, str(path), "xpkg", module.__name__, str(path))
    assert not hasattr(module, "__path__")


def test_a_package_knows_it_is_its_own_package(tree: SourceTree) -> None:
    init = tree.package("xpkg", "SEEN = __package__\n")

    package = loadNamed("xpkg", pep302Mapper)

    assert package.__package__ == "xpkg"
    assert package.SEEN == "xpkg"
    assert package.__spec__ is not None
    assert package.__spec__.origin == str(init)
    assert loader_of(package).is_package(package.__name__)


def test_a_top_level_module_has_an_empty_package(tree: SourceTree) -> None:
    tree.module("xmod", "SEEN = __package__\n")
    assert loadNamed("xmod", pep302Mapper).SEEN == ""


def test_relative_imports_resolve_from___package__(tree: SourceTree) -> None:
    tree.package("xpkg")
    tree.package("xpkg.sub")
    tree.module(
        "xpkg.sub.mod",
        """
        from . import sibling
        from .sibling import VALUE
        from .. import top
        from ..top import TOP

        def later():
            from .sibling import VALUE
            return VALUE
        """,
    )
    sibling = SimpleNamespace(VALUE="sibling value")
    top = SimpleNamespace(TOP="top value")
    mapper = DictMapper(
        {
            "xpkg": SimpleNamespace(top=top),
            "xpkg.sub": SimpleNamespace(),
            "xpkg.sub.sibling": sibling,
            "xpkg.top": top,
        }
    )

    module = loadNamed("xpkg.sub.mod", mapper)

    assert module.sibling is sibling
    assert module.VALUE == "sibling value"
    assert module.top is top
    assert module.TOP == "top value"
    assert module.later() == "sibling value"


def test_a_relative_import_beyond_the_top_level_package_fails(tree: SourceTree) -> None:
    tree.package("xpkg")
    tree.module("xpkg.mod", "from ... import nothing\n")
    tree.module("xtop", "from . import nothing\n")

    with pytest.raises(ImportError, match="beyond top-level package"):
        loadNamed("xpkg.mod", DictMapper({}))
    with pytest.raises(ImportError, match="no known parent package"):
        loadNamed("xtop", DictMapper({}))


def test_star_imports(tree: SourceTree) -> None:
    tree.package("xpkg")
    tree.package("xpkg.names", "__all__ = ['PUBLIC', 'leaf']\nPUBLIC = 1\nHIDDEN = 2\n")
    tree.module("xpkg.names.leaf", "")
    tree.module("xpkg.mod", "from .names import *\nfrom json import *\n")
    ctx = loadPackageNamed("xpkg", pep302Mapper)

    module = ctx.loadNamed("xpkg.mod")

    assert module.PUBLIC == 1
    assert module.leaf is ctx.modules["xpkg.names.leaf"]
    assert not hasattr(module, "HIDDEN")
    assert module.dumps is json.dumps


def test_a_dotted_import_reaches_the_submodule_the_mapper_gives(tree: SourceTree) -> None:
    tree.module("xmod", "import xfake.sub\nimport xfake.sub as sub\n")
    parent = SimpleNamespace(name="parent")
    child = SimpleNamespace(name="child")

    module = loadNamed("xmod", DictMapper({"xfake": parent, "xfake.sub": child}))

    assert module.xfake.sub is child
    assert module.xfake.name == "parent"
    assert module.sub is child
    assert not hasattr(parent, "sub")


def test_a_source_encoding_declaration_is_honoured(tree: SourceTree) -> None:
    path = tree.root / "xlatin.py"
    path.write_bytes(
        b"# -*- coding: latin-1 -*-\nVALUE = '\xe9t\xe9'\n\ndef f():\n    return VALUE\n"
    )

    module = loadNamed("xlatin", pep302Mapper)

    assert module.VALUE == "\u00e9t\u00e9"
    assert inspect.getsource(module.f) == "def f():\n    return VALUE\n"
    assert loader_of(module).get_source(module.__name__).splitlines()[1] == "VALUE = 'été'"


# --------------------------------------------------------------------------
# Tracebacks and inspect.getsource after the file changed on disk
# --------------------------------------------------------------------------


ORIGINAL = '''\
def boom():
    raise ValueError("boom marker")


class Thing:
    """A class."""

    def method(self):
        return "thing marker"


def decorate(function):
    function.decorated = True
    return function


@decorate
def decorated():
    return "decorated marker"
'''


def test_tracebacks_and_getsource_show_the_loaded_text_after_the_file_changed(
    tree: SourceTree,
) -> None:
    path = tree.module("xmod", ORIGINAL)
    module = loadNamed("xmod", pep302Mapper)

    edited = "# inserted line\n" * 5 + ORIGINAL.replace("marker", "EDITED")
    path.write_text(edited)
    assert "boom marker" not in path.read_text()
    linecache.checkcache()

    with pytest.raises(ValueError) as excinfo:
        module.boom()
    formatted = "".join(traceback.format_exception(excinfo.value))
    assert f'File "{path}", line 2, in boom' in formatted
    assert 'raise ValueError("boom marker")' in formatted
    assert "EDITED" not in formatted
    frame = traceback.extract_tb(excinfo.value.__traceback__)[-1]
    assert (frame.filename, frame.lineno, frame.name) == (str(path), 2, "boom")
    assert frame.line == 'raise ValueError("boom marker")'

    try:
        module.boom()
    except ValueError:
        assert 'raise ValueError("boom marker")' in traceback.format_exc()

    assert inspect.getsource(module.boom) == 'def boom():\n    raise ValueError("boom marker")\n'
    assert inspect.getsource(module.Thing).startswith('class Thing:\n    """A class."""')
    assert '"thing marker"' in inspect.getsource(module.Thing)
    assert inspect.getsourcelines(module.Thing)[1] == 5
    assert inspect.getsource(module.Thing.method).strip().endswith('return "thing marker"')
    assert inspect.getsource(module.decorated).startswith("@decorate\ndef decorated():")
    assert inspect.getfile(module.Thing) == str(path)
    assert inspect.getsourcefile(module.boom) == str(path)


def test_a_new_load_shows_the_new_text(tree: SourceTree) -> None:
    path = tree.module("xmod", ORIGINAL)
    loadNamed("xmod", pep302Mapper)
    path.write_text("# inserted line\n" + ORIGINAL.replace("marker", "EDITED"))

    module = loadNamed("xmod", pep302Mapper)

    with pytest.raises(ValueError, match="boom EDITED") as excinfo:
        module.boom()
    frame = traceback.extract_tb(excinfo.value.__traceback__)[-1]
    assert frame.lineno == 3
    assert frame.line == 'raise ValueError("boom EDITED")'
    assert '"thing EDITED"' in inspect.getsource(module.Thing)


# --------------------------------------------------------------------------
# dataclasses, enums, type hints, decorators, class attributes
# --------------------------------------------------------------------------


DATACLASSES = """
from dataclasses import dataclass, field, fields
from typing import ClassVar


@dataclass
class Point:
    x: int
    y: int = 0
    tags: list[str] = field(default_factory=list)
    COUNT: ClassVar[int] = 0


@dataclass(frozen=True, order=True)
class Frozen:
    name: str


@dataclass(slots=True)
class Slotted:
    value: int


FIELDS = [f.name for f in fields(Point)]
"""


@pytest.mark.parametrize("future", [False, True], ids=["plain", "future-annotations"])
def test_dataclasses(tree: SourceTree, future: bool) -> None:
    prefix = "from __future__ import annotations\n" if future else ""
    tree.module("xmod", prefix + DATACLASSES)

    module = loadNamed("xmod", pep302Mapper)

    assert module.FIELDS == ["x", "y", "tags"]
    point = module.Point(1)
    assert point == module.Point(1, 0, [])
    assert point != module.Point(2)
    assert repr(point) == "Point(x=1, y=0, tags=[])"
    assert module.Point.COUNT == 0
    assert module.Frozen("a") < module.Frozen("b")
    with pytest.raises(dataclasses.FrozenInstanceError):
        module.Frozen("a").name = "b"
    assert module.Slotted(3).value == 3
    assert not hasattr(module.Slotted(3), "__dict__")
    assert canonicalName(module.Point.__module__) == "xmod"


def test_dataclasses_of_two_loads_are_distinct_classes(tree: SourceTree) -> None:
    tree.module("xmod", "from __future__ import annotations\n" + DATACLASSES)

    one = loadNamed("xmod", pep302Mapper)
    two = loadNamed("xmod", pep302Mapper)

    assert one.Point is not two.Point
    assert one.Point(1) != two.Point(1)
    assert one.Point.__qualname__ == two.Point.__qualname__
    assert canonicalName(one.Point.__module__) == canonicalName(two.Point.__module__)


def test_enums(tree: SourceTree) -> None:
    tree.module(
        "xmod",
        """
        from enum import Enum, Flag, IntEnum, auto

        class Color(Enum):
            RED = 1
            GREEN = auto()

            def describe(self):
                return self.name.lower()

        class Perm(Flag):
            R = auto()
            W = auto()

        class Level(IntEnum):
            LOW = 1
            HIGH = 2

        Shape = Enum("Shape", "SQUARE CIRCLE")
        """,
    )

    module = loadNamed("xmod", pep302Mapper)

    assert module.Color(1) is module.Color.RED
    assert module.Color["GREEN"].value == 2
    assert [c.describe() for c in module.Color] == ["red", "green"]
    assert module.Perm(3) == module.Perm.R | module.Perm.W
    assert module.Level.HIGH > module.Level.LOW
    assert isinstance(module.Color.RED, enum.Enum)
    assert [s.name for s in module.Shape] == ["SQUARE", "CIRCLE"]
    assert module.Shape.__module__ == module.__name__


@pytest.mark.parametrize("future", [False, True], ids=["plain", "future-annotations"])
def test_get_type_hints(tree: SourceTree, future: bool) -> None:
    prefix = "from __future__ import annotations\n" if future else ""
    tree.module(
        "xmod",
        prefix
        + """
from typing import Optional


class Node:
    value: int
    child: Optional["Node"]

    def walk(self, depth: int) -> list["Node"]:
        return [self]


def build(value: int) -> Node:
    return Node()
""",
    )

    module = loadNamed("xmod", pep302Mapper)

    assert typing.get_type_hints(module.Node) == {
        "value": int,
        "child": typing.Optional[module.Node],  # noqa: UP045 - what get_type_hints returns
    }
    assert typing.get_type_hints(module.build) == {"value": int, "return": module.Node}
    assert typing.get_type_hints(module.Node.walk) == {
        "depth": int,
        "return": list[module.Node],  # type: ignore[name-defined]  # a runtime class
    }


def test_decorators_and_class_attributes(tree: SourceTree) -> None:
    tree.module(
        "xmod",
        """
        import functools

        registry = {}

        def register(name):
            def decorator(cls):
                registry[name] = cls
                return cls
            return decorator

        def logged(function):
            @functools.wraps(function)
            def wrapper(*args, **kwargs):
                return ("logged", function(*args, **kwargs))
            return wrapper

        class Base:
            kinds = []

            def __init_subclass__(cls, **kwargs):
                super().__init_subclass__(**kwargs)
                Base.kinds.append(cls.__name__)

            def hello(self):
                return "base"

        @register("child")
        class Child(Base):
            counter = 0

            def __init__(self):
                type(self).counter += 1

            def hello(self):
                return "child+" + super().hello()

            @classmethod
            def make(cls):
                return cls()

            @staticmethod
            def static():
                return "static"

            @property
            def prop(self):
                return "prop"

        @logged
        def greet(who):
            \"\"\"Say hello.\"\"\"
            return f"hello {who}"
        """,
    )

    module = loadNamed("xmod", pep302Mapper)

    assert module.registry == {"child": module.Child}
    assert module.Base.kinds == ["Child"]
    child = module.Child.make()
    assert child.hello() == "child+base"
    assert module.Child.counter == 1
    assert module.Child.static() == "static"
    assert child.prop == "prop"
    assert module.greet("you") == ("logged", "hello you")
    assert module.greet.__name__ == "greet"
    assert module.greet.__doc__ == "Say hello."
    assert module.greet.__wrapped__("me") == "hello me"
    assert module.greet.__module__ == module.__name__


def test_inspect_finds_the_module_of_a_loaded_class(tree: SourceTree) -> None:
    path = tree.module("xmod", "class Thing:\n    pass\n")

    module = loadNamed("xmod", pep302Mapper)

    found = inspect.getmodule(module.Thing)
    assert found is not None
    assert found.__dict__ is module.__dict__
    assert found.__file__ == str(path)


def test_m_loaded_through_getModule_has_the_same_attributes(tree: SourceTree) -> None:
    path = tree.module("xmod", "seen = __file__\n")
    target = ModuleType("target")
    getModule("xmod").load(pep302Mapper, target)
    assert target.seen == str(path)
    assert target.__spec__ is not None
    assert target.__spec__.origin == str(path)


# --------------------------------------------------------------------------
# proxyModule
# --------------------------------------------------------------------------


def test_proxyModule_answers_replacements_and_delegates_the_rest() -> None:
    original: Any = ModuleType("original", "The original's docstring.")
    original.kept = "kept"
    original.replaced = "old"

    proxy = proxyModule(original, replaced="new", added="added")

    assert proxy.kept == "kept"
    assert proxy.replaced == "new"
    assert proxy.added == "added"
    assert original.replaced == "old"
    assert not hasattr(original, "added")
    original.kept = "changed later"
    assert proxy.kept == "changed later"
    assert proxy.__name__ == "original"
    assert proxy.__doc__ == "The original's docstring."
    assert isinstance(proxy, ModuleType)
    assert {"kept", "replaced", "added"} <= set(dir(proxy))
    with pytest.raises(AttributeError):
        proxy.missing  # noqa: B018


def test_proxyModule_replacements_win_over_dunder_attributes() -> None:
    original = ModuleType("original", "doc")
    proxy = proxyModule(original, __doc__="replaced doc", __name__="replaced name")
    assert proxy.__doc__ == "replaced doc"
    assert proxy.__name__ == "replaced name"


def test_proxyModule_in_an_import(tree: SourceTree) -> None:
    tree.module("xmod", "from xfake import kept, replaced\nimport xfake\n")
    original = SimpleNamespace(kept="kept", replaced="old")
    proxy = proxyModule(original, replaced="new")

    module = loadNamed("xmod", DictMapper({"xfake": proxy}))

    assert (module.kept, module.replaced) == ("kept", "new")
    assert module.xfake is proxy
