"""exocet patches nothing process-wide, not even while a load runs."""

from __future__ import annotations

import builtins
import importlib
import json
import sys
import threading
from typing import Any

from exocet_tree import SourceTree, tree_fixture  # noqa: F401 - tree_fixture provides ``tree``

from reloader.exocet import loadNamed, loadPackageNamed, pep302Mapper


class ImportMachineryProbe:
    """Compares the process-wide import machinery with a snapshot taken earlier.

    A loaded module imports this probe (through its mapper) and calls
    ``check()`` from its own code, so the comparison happens *during* the load.
    """

    def __init__(self) -> None:
        self.import_function = builtins.__import__
        self.builtins_dict = builtins.__dict__
        self.meta_path = list(sys.meta_path)
        self.path_hooks = list(sys.path_hooks)
        self.sys_modules = sys.modules
        self.entries = {
            name: module for name, module in sys.modules.copy().items() if "@" not in name
        }
        self.checked: list[str] = []

    def problems(self) -> list[str]:
        found = []
        if builtins.__import__ is not self.import_function:
            found.append("builtins.__import__ replaced")
        if builtins.__dict__ is not self.builtins_dict:
            found.append("builtins dict replaced")
        if sys.modules is not self.sys_modules:
            found.append("sys.modules replaced")
        if len(sys.meta_path) != len(self.meta_path) or any(
            now is not then for now, then in zip(sys.meta_path, self.meta_path, strict=False)
        ):
            found.append(f"sys.meta_path changed: {sys.meta_path!r}")
        if len(sys.path_hooks) != len(self.path_hooks) or any(
            now is not then for now, then in zip(sys.path_hooks, self.path_hooks, strict=False)
        ):
            found.append(f"sys.path_hooks changed: {sys.path_hooks!r}")
        for name, module in self.entries.items():
            if sys.modules.get(name, None) is not module:
                found.append(f"sys.modules[{name!r}] changed")
        return found

    def check(self, where: str) -> None:
        self.checked.append(where)
        problems = self.problems()
        assert not problems, f"{where}: {problems}"


PROBED = """
import json
import collections.abc
import xprobe

xprobe.check("top level of " + __name__)
OWN_IMPORT = __builtins__["__import__"]

def later():
    import json
    import xprobe
    xprobe.check("function of " + __name__)
    return json
"""


def test_the_import_machinery_is_untouched_before_during_and_after_a_load(tree: SourceTree) -> None:
    tree.module("xmod", PROBED)
    tree.package("xpkg", "from . import inner\n")
    tree.module("xpkg.inner", PROBED)
    probe = ImportMachineryProbe()
    fake_json = {"fake": "json"}
    mapper = pep302Mapper.withOverrides({"xprobe": probe, "json": fake_json})

    module = loadNamed("xmod", mapper)
    assert module.later() is fake_json
    ctx = loadPackageNamed("xpkg", mapper)
    assert ctx.modules["xpkg.inner"].later() is fake_json

    assert probe.checked == [
        "top level of " + module.__name__,
        "function of " + module.__name__,
        "top level of " + ctx.modules["xpkg.inner"].__name__,
        "function of " + ctx.modules["xpkg.inner"].__name__,
    ]
    assert probe.problems() == []
    # The probe ran inside the loaded module, under its own import function.
    assert module.OWN_IMPORT is not builtins.__import__
    assert sys.modules["json"] is json
    assert "xprobe" not in sys.modules


def test_the_probe_detects_a_patched_import_function() -> None:
    """The counterpart: the probe above fails when something is patched."""
    probe = ImportMachineryProbe()
    original = builtins.__import__
    builtins.__import__ = lambda *args, **kwargs: original(*args, **kwargs)
    try:
        assert probe.problems() == ["builtins.__import__ replaced"]
    finally:
        builtins.__import__ = original
    sys.meta_path.append(None)  # type: ignore[arg-type]  # a broken entry, on purpose
    try:
        assert probe.problems() and "meta_path" in probe.problems()[0]
    finally:
        sys.meta_path.pop()
    assert probe.problems() == []


# Pure-Python standard-library leaf modules nothing else here depends on.
STDLIB_NAMES = ["colorsys", "graphlib", "sched", "netrc"]


def test_a_thread_importing_the_standard_library_is_undisturbed_by_loads(tree: SourceTree) -> None:
    tree.module(
        "xmod",
        """
        import json
        import colorsys
        from collections import OrderedDict

        def later():
            import json
            return json
        """,
    )
    fake_json = {"fake": "json"}
    mapper = pep302Mapper.withOverrides({"json": fake_json})
    saved = {name: sys.modules.get(name) for name in STDLIB_NAMES}
    errors: list[BaseException] = []
    rounds = [0]
    stop = threading.Event()
    started = threading.Event()

    def importer() -> None:
        try:
            started.set()
            while not stop.is_set():
                for name in STDLIB_NAMES:
                    sys.modules.pop(name, None)
                    module = importlib.import_module(name)
                    assert module is sys.modules[name], name
                    namespace: dict[str, Any] = {}
                    exec(f"import {name} as imported\nimport json as imported_json", namespace)
                    assert namespace["imported"] is sys.modules[name], name
                    assert namespace["imported_json"] is json
                rounds[0] += 1
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=importer, daemon=True)
    thread.start()
    assert started.wait(timeout=10)
    try:
        for _ in range(100):
            module = loadNamed("xmod", mapper)
            assert module.json is fake_json
            assert module.later() is fake_json
    finally:
        stop.set()
        thread.join(timeout=10)
        for name, previous in saved.items():
            if previous is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = previous

    assert not thread.is_alive()
    assert errors == []
    assert rounds[0] > 0
