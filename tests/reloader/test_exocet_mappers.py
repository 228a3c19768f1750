"""exocet mappers: what each ``import`` inside a loaded module receives."""

from __future__ import annotations

import importlib
import json
import os
import sys
from types import SimpleNamespace
from typing import Any, NoReturn

import pytest
from exocet_tree import SourceTree, tree_fixture  # noqa: F401 - tree_fixture provides ``tree``

from reloader.exocet import (
    CallableMapper,
    DictMapper,
    ExclusiveMapper,
    Mapper,
    emptyMapper,
    loadNamed,
    pep302Mapper,
)

# --------------------------------------------------------------------------
# pep302Mapper
# --------------------------------------------------------------------------


def test_pep302Mapper_shares_sys_modules() -> None:
    assert pep302Mapper.lookup("json") is sys.modules["json"]
    assert pep302Mapper.lookup("os.path") is os.path
    assert pep302Mapper.contains("json")
    assert pep302Mapper.contains("os.path")
    assert not pep302Mapper.contains("xnosuch_module_zz")


def test_pep302Mapper_lookup_of_a_missing_module_names_it_and_the_mapper() -> None:
    with pytest.raises(ImportError) as excinfo:
        pep302Mapper.lookup("xnosuch_module_zz.child")
    assert "xnosuch_module_zz.child" in str(excinfo.value)
    assert "pep302Mapper" in str(excinfo.value)


def test_pep302Mapper_lets_an_import_error_of_another_module_through(tree: SourceTree) -> None:
    """A module that exists but fails to import is not reported as missing."""
    tree.module("xbroken", "import xnosuch_inner_zz\n")

    with pytest.raises(ModuleNotFoundError) as excinfo:
        pep302Mapper.lookup("xbroken")
    assert excinfo.value.name == "xnosuch_inner_zz"
    assert "pep302Mapper" not in str(excinfo.value)


def test_a_loaded_module_gets_the_very_modules_of_sys_modules(tree: SourceTree) -> None:
    tree.module("xrec", "calls = []\n")
    tree.module("xside", "import xrec\nxrec.calls.append('xside executed')\n")
    tree.module(
        "xmod",
        """
        import json
        import os.path
        from collections import OrderedDict
        import xside
        """,
    )
    xrec = importlib.import_module("xrec")
    xside = importlib.import_module("xside")
    assert xrec.calls == ["xside executed"]

    module = loadNamed("xmod", pep302Mapper)

    assert module.json is sys.modules["json"]
    assert module.os is sys.modules["os"]
    assert module.OrderedDict is sys.modules["collections"].OrderedDict
    assert module.xside is xside
    assert xrec.calls == ["xside executed"]


# --------------------------------------------------------------------------
# emptyMapper
# --------------------------------------------------------------------------


def test_emptyMapper_rejects_everything() -> None:
    for name in ("sys", "builtins", "json", "os.path"):
        assert not emptyMapper.contains(name)
        with pytest.raises(ImportError) as excinfo:
            emptyMapper.lookup(name)
        assert repr(name) in str(excinfo.value)
        assert "emptyMapper" in str(excinfo.value)


@pytest.mark.parametrize("statement", ["import sys", "from os import path", "import json"])
def test_a_module_loaded_through_emptyMapper_cannot_import(
    tree: SourceTree, statement: str
) -> None:
    tree.module("xmod", f"VALUE = 1\n{statement}\n")

    with pytest.raises(ImportError) as excinfo:
        loadNamed("xmod", emptyMapper)
    assert "emptyMapper" in str(excinfo.value)


def test_a_module_without_imports_loads_through_emptyMapper(tree: SourceTree) -> None:
    tree.module("xmod", "VALUE = sum(range(4))\n")
    assert loadNamed("xmod", emptyMapper).VALUE == 6


# --------------------------------------------------------------------------
# DictMapper and CallableMapper
# --------------------------------------------------------------------------


def test_DictMapper_answers_from_its_mapping(tree: SourceTree) -> None:
    fake = SimpleNamespace(thing="fake thing")
    mapper = DictMapper({"xfake": fake, "xfake.sub": SimpleNamespace(leaf="leaf")})
    tree.module(
        "xmod",
        """
        import xfake
        from xfake import thing
        from xfake.sub import leaf
        """,
    )

    assert mapper.lookup("xfake") is fake
    assert mapper.contains("xfake")
    assert not mapper.contains("json")
    with pytest.raises(ImportError) as excinfo:
        mapper.lookup("json")
    assert "'json'" in str(excinfo.value)
    assert "DictMapper" in str(excinfo.value)

    module = loadNamed("xmod", mapper)
    assert module.xfake is fake
    assert module.thing == "fake thing"
    assert module.leaf == "leaf"


def test_DictMapper_copies_its_mapping() -> None:
    mapping = {"a": 1}
    mapper = DictMapper(mapping)
    mapping["b"] = 2
    assert not mapper.contains("b")


def test_CallableMapper_calls_its_function_for_every_import(tree: SourceTree) -> None:
    asked = []

    def resolve(name: str) -> Any:
        asked.append(name)
        return pep302Mapper.lookup(name)

    mapper = CallableMapper(resolve)
    tree.module(
        "xmod",
        """
        import json
        from collections import abc
        """,
    )

    module = loadNamed("xmod", mapper)

    assert module.json is json
    assert asked[:2] == ["json", "collections"]
    assert mapper.contains("json")
    assert not mapper.contains("xnosuch_module_zz")


def test_CallableMapper_failure_names_the_module_and_the_mapper() -> None:
    def refuse(name: str) -> NoReturn:
        raise ImportError("refused")

    mapper = CallableMapper(refuse)

    with pytest.raises(ImportError) as excinfo:
        mapper.lookup("xwanted")
    assert "xwanted" in str(excinfo.value)
    assert "CallableMapper" in str(excinfo.value)
    assert "refused" in str(excinfo.value)
    assert not mapper.contains("xwanted")


# --------------------------------------------------------------------------
# ExclusiveMapper
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("statement", "denied"),
    [("import os", "os"), ("import os.path", "os.path"), ("from os import path", "os")],
)
def test_ExclusiveMapper_denies_a_module_and_its_submodules(
    tree: SourceTree, statement: str, denied: str
) -> None:
    mapper = ExclusiveMapper(pep302Mapper, ["os"])
    tree.module("xmod", f"import json\n{statement}\n")

    with pytest.raises(ImportError) as excinfo:
        loadNamed("xmod", mapper)
    assert repr(denied) in str(excinfo.value)
    assert "ExclusiveMapper" in str(excinfo.value)


def test_ExclusiveMapper_lookup_and_contains() -> None:
    mapper = ExclusiveMapper(pep302Mapper, ["os"])

    assert not mapper.contains("os")
    assert not mapper.contains("os.path")
    assert mapper.contains("json")
    assert mapper.lookup("json") is json
    for name in ("os", "os.path"):
        with pytest.raises(ImportError) as excinfo:
            mapper.lookup(name)
        assert repr(name) in str(excinfo.value)
        assert "ExclusiveMapper" in str(excinfo.value)


def test_ExclusiveMapper_denies_by_dotted_component_not_by_prefix() -> None:
    base = DictMapper({"os": 1, "os.path": 2, "osx": 3, "x.os": 4})
    mapper = ExclusiveMapper(base, ["os"])

    assert mapper.lookup("osx") == 3
    assert mapper.lookup("x.os") == 4
    assert not mapper.contains("os.path")
    with pytest.raises(ImportError):
        mapper.lookup("os.path")


def test_ExclusiveMapper_allows_the_rest(tree: SourceTree) -> None:
    tree.module("xmod", "import json\nfrom collections import OrderedDict\n")
    module = loadNamed("xmod", ExclusiveMapper(pep302Mapper, ["os", "subprocess"]))
    assert module.json is json


# --------------------------------------------------------------------------
# withOverrides
# --------------------------------------------------------------------------


FAKE_JSON = SimpleNamespace(dumps=lambda obj: "fake dumps", marker="fake json")


@pytest.mark.parametrize(
    "mapper",
    [
        pep302Mapper,
        emptyMapper,
        DictMapper({"json": "dict json"}),
        CallableMapper(pep302Mapper.lookup),
        ExclusiveMapper(pep302Mapper, ["json"]),
        pep302Mapper.withOverrides({"json": "inner override"}),
    ],
    ids=["pep302", "empty", "dict", "callable", "exclusive", "overlay"],
)
def test_withOverrides_wins_over_everything_beneath(tree: SourceTree, mapper: Mapper) -> None:
    tree.module("xmod", "import json\nfrom json import marker\n")
    overridden = mapper.withOverrides({"json": FAKE_JSON})

    assert overridden is not mapper
    assert overridden.lookup("json") is FAKE_JSON
    assert overridden.contains("json")
    module = loadNamed("xmod", overridden)
    assert module.json is FAKE_JSON
    assert module.marker == "fake json"
    # The mapper beneath is unchanged.
    assert not mapper.contains("json") or mapper.lookup("json") is not FAKE_JSON


def test_withOverrides_falls_through_to_the_mapper_beneath() -> None:
    assert pep302Mapper.withOverrides({"json": FAKE_JSON}).lookup("os") is os
    strict = emptyMapper.withOverrides({"json": FAKE_JSON})
    assert not strict.contains("os")
    with pytest.raises(ImportError) as excinfo:
        strict.lookup("os")
    assert "'os'" in str(excinfo.value)
    assert "emptyMapper" in str(excinfo.value)
    denied = ExclusiveMapper(pep302Mapper, ["json"]).withOverrides({"json": FAKE_JSON})
    with pytest.raises(ImportError, match=r"json\.decoder"):
        denied.lookup("json.decoder")


def test_withOverrides_can_be_stacked() -> None:
    mapper = DictMapper({"a": 0}).withOverrides({"a": 1, "b": 1}).withOverrides({"a": 2})
    assert mapper.lookup("a") == 2
    assert mapper.lookup("b") == 1


# --------------------------------------------------------------------------
# Imports inside functions go through the mapper too
# --------------------------------------------------------------------------


LATER_IMPORTS = """
import collections

def later():
    import json
    return json

def later_from():
    from json import dumps
    return dumps

def later_relative_free():
    import json.decoder
    return json
"""


def test_a_function_level_import_goes_through_an_override(tree: SourceTree) -> None:
    tree.module("xmod", LATER_IMPORTS)

    module = loadNamed("xmod", pep302Mapper.withOverrides({"json": FAKE_JSON}))

    assert module.later() is FAKE_JSON
    assert module.later_from() is FAKE_JSON.dumps
    # The normal import system is not affected.
    namespace: dict[str, Any] = {}
    exec("import json", namespace)
    assert namespace["json"] is json


def test_a_function_level_import_goes_through_a_CallableMapper(tree: SourceTree) -> None:
    asked = []

    def resolve(name: str) -> Any:
        asked.append(name)
        return pep302Mapper.lookup(name)

    tree.module("xmod", LATER_IMPORTS)

    module = loadNamed("xmod", CallableMapper(resolve))
    assert asked == ["collections"]

    assert module.later() is json
    assert asked == ["collections", "json"]
    module.later_from()
    assert asked[-1] == "json"
    asked.clear()
    assert module.later_relative_free() is json
    assert set(asked) == {"json", "json.decoder"}


# --------------------------------------------------------------------------
# __future__
# --------------------------------------------------------------------------


FUTURE = """
from __future__ import annotations

def f(x: Undefined) -> AlsoUndefined:
    return x

ANNOTATIONS = f.__annotations__
"""


@pytest.mark.parametrize("mapper", [emptyMapper, DictMapper({})], ids=["empty", "dict"])
def test_future_imports_work_under_any_mapper(tree: SourceTree, mapper: Mapper) -> None:
    tree.module("xmod", FUTURE)

    module = loadNamed("xmod", mapper)

    assert module.ANNOTATIONS == {"x": "Undefined", "return": "AlsoUndefined"}
    assert module.annotations.__class__.__name__ == "_Feature"


def test_without_the_future_import_the_annotations_are_evaluated(tree: SourceTree) -> None:
    """The counterpart of the test above: the directive is what makes it load."""
    tree.module("xmod", FUTURE.replace("from __future__ import annotations", ""))
    with pytest.raises(NameError, match="Undefined"):
        loadNamed("xmod", emptyMapper)
