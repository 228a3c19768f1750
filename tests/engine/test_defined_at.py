"""Where a content class is defined, as builders are told (``live.manager.defined_at``)."""

from __future__ import annotations

from pathlib import Path

from engine.live.manager import defined_at
from reloader.exocet import ModuleSource, pep302Mapper

SOURCE = """\
import functools


class Plain:
    pass


@functools.total_ordering
class Decorated:
    def __lt__(self, other):
        return False

    class Inner:
        pass


def make():
    class Local:
        pass

    return Local
"""


def test_each_class_is_found_at_its_line_decorators_nesting_and_locals_included(
    tmp_path: Path,
) -> None:
    path = tmp_path / "content" / "things.py"
    path.parent.mkdir()
    path.write_text(SOURCE)
    module = ModuleSource("things", str(path)).load(pep302Mapper)
    assert defined_at(module.Plain, tmp_path) == "content/things.py:4"
    assert defined_at(module.Decorated, tmp_path) == "content/things.py:8"
    assert defined_at(module.Decorated.Inner, tmp_path) == "content/things.py:13"
    assert defined_at(module.make(), tmp_path) == "content/things.py:18"
    assert defined_at(None, tmp_path) is None
    assert defined_at(int, tmp_path) is None


def test_the_line_is_the_one_in_the_text_that_ran_not_the_file_now(tmp_path: Path) -> None:
    path = tmp_path / "content" / "things.py"
    path.parent.mkdir()
    path.write_text(SOURCE)
    module = ModuleSource("things", str(path)).load(pep302Mapper)
    path.write_text("\n\n\n" + SOURCE)  # saved since, not loaded
    assert defined_at(module.Plain, tmp_path) == "content/things.py:4"
