"""Reload at full strength: dependents, all-or-nothing batches, files that move, live objects.

Every test runs a real game over 127.0.0.1 on a private copy of ``content/``
with the file watcher on, edits files the way editors and ``git`` do, and
reads what a builder is told in game.
"""

from __future__ import annotations

import asyncio
import os
import re
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from game_helpers import until

from engine.app import Game
from engine.world.objects import UNLOADED
from reloader import exocet

if TYPE_CHECKING:
    from conftest import Client, MakeClient

TEXT_V1 = """
    \"\"\"Text helpers shared by several command modules.\"\"\"


    def shout(text: str) -> str:
        return text.upper() + "!"
"""

TEXT_V2 = """
    \"\"\"Text helpers shared by several command modules.\"\"\"


    def shout(text: str) -> str:
        return "~" + text.lower() + "~"
"""

LOUD = """
    from content.lib.text import shout
    from engine.api import Command, Context


    class CmdLoud(Command):
        \"\"\"Say it loud.\"\"\"

        key = "loud"

        def run(self, ctx: Context) -> None:
            ctx.msg("loud: " + shout(ctx.args))
"""

# The other importer uses the other import form: the module, then its attribute.
QUIET = """
    from content.lib import text
    from engine.api import Command, Context


    class CmdQuiet(Command):
        \"\"\"Say it quietly.\"\"\"

        key = "quiet"

        def run(self, ctx: Context) -> None:
            ctx.msg("quiet: " + text.shout(ctx.args))
"""

HELPERS = {
    "lib/__init__.py": '"""Helpers for content modules."""\n',
    "lib/text.py": TEXT_V1,
    "commands/loud.py": LOUD,
    "commands/quiet.py": QUIET,
}


def numbered(i: int, version: str) -> str:
    return f"""
        from engine.api import Command, Context


        class CmdFive{i}(Command):
            \"\"\"One of five commands saved together.\"\"\"

            key = "five{i}"

            def run(self, ctx: Context) -> None:
                ctx.msg("five{i} says {version}")
    """


FIVE = {f"commands/five{i}.py": numbered(i, "v1") for i in range(5)}

ZAP = """
    from engine.api import Command, Context


    class CmdZap(Command):
        \"\"\"Zap.\"\"\"

        key = "zap"

        def run(self, ctx: Context) -> None:
            ctx.msg("Zap from " + __name__.split("@")[0] + ".")
"""

GADGETS_V1 = """
    \"\"\"Gadgets: a type class other type classes build on.\"\"\"

    from engine.api import GameObject, Thing

    MARK = "v1"


    class Gadget(Thing):
        \"\"\"Hums when used.\"\"\"

        def at_use(self, user: GameObject) -> str:
            return f"{self.name} hums {MARK} at charge {self.attributes.get('charge')}."


    class Gizmo(Thing):
        \"\"\"Whirs when used.\"\"\"

        def at_use(self, user: GameObject) -> str:
            return f"{self.name} whirs {MARK}."
"""

WIDGETS = """
    \"\"\"Widgets: gadgets with a twist, in a module that depends on gadgets.\"\"\"

    from content.typeclasses.gadgets import Gadget
    from engine.api import GameObject


    class Widget(Gadget):
        \"\"\"A gadget that says it is a widget.\"\"\"

        def at_use(self, user: GameObject) -> str:
            return "widget: " + super().at_use(user)
"""

OBJECTS = {"typeclasses/gadgets.py": GADGETS_V1, "typeclasses/widgets.py": WIDGETS}


def source(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source(text), encoding="utf-8")


async def admin(make_client: MakeClient) -> Client:
    """The first account is an admin: it sees every reload report."""
    client = await make_client()
    await client.login_new("Alice")
    return client


async def report(client: Client, timeout: float = 3.0) -> str:
    """The next whole ``[reload]`` line a builder receives."""
    await client.expect("[reload] ", timeout)
    return (await client.expect("\r\n", timeout)).rstrip()


async def reports_after(client: Client, mark: int, quiet: float = 0.5) -> list[str]:
    """Every ``[reload]`` line received since ``mark``, after ``quiet`` seconds of calm.

    A command answered after the quiet period proves everything sent before
    it has been read into the transcript.
    """
    await asyncio.sleep(quiet)
    await client.command("who", "online:")
    return re.findall(r"\[reload\] ([^\r\n]*)", client.transcript[mark:])


def spy_commits(game: Game) -> list[list[str]]:
    """Record the modules of every committed batch (the swap itself, not the report)."""
    commits: list[list[str]] = []
    original = game.content.on_commit

    def on_commit(modules: list[str]) -> list[str]:
        commits.append(sorted(modules))
        return original(modules)

    game.content.on_commit = on_commit
    return commits


def class_line(text: str, name: str) -> int:
    lines = source(text).splitlines()
    return next(i for i, line in enumerate(lines, 1) if line.startswith(f"class {name}"))


# -- dependents -----------------------------------------------------------------


@pytest.mark.game(reload=True, files=HELPERS)
async def test_editing_a_helper_reloads_every_importer_in_one_batch(
    game: Game, make_client: MakeClient, content_dir: Path
) -> None:
    alice = await admin(make_client)
    await alice.command("loud hey", "loud: HEY!")
    await alice.command("quiet hey", "quiet: HEY!")
    commits = spy_commits(game)
    mark = len(alice.transcript)

    write(content_dir / "lib" / "text.py", TEXT_V2)
    line = await report(alice)
    assert line.startswith("Reloaded commands.loud, commands.quiet, lib.text: changed loud, quiet")

    await alice.command("loud HEY", "loud: ~hey~")
    await alice.command("quiet HEY", "quiet: ~hey~")
    assert await reports_after(alice, mark) == [line]
    assert commits == [["content.commands.loud", "content.commands.quiet", "content.lib.text"]]
    # Both importers hold the new helper, not a copy of the old one.
    helper = game.content.module("lib.text")
    loud, quiet = game.content.module("commands.loud"), game.content.module("commands.quiet")
    assert helper is not None and loud is not None and quiet is not None
    assert loud.shout is helper.shout
    assert quiet.text is helper


# -- all or nothing ---------------------------------------------------------------

BAD_KEY = """
    from engine.api import Command, Context


    class CmdBad(Command):
        \"\"\"A key no player could type.\"\"\"

        key = "two words"

        def run(self, ctx: Context) -> None:
            ctx.msg("bad")
"""

NO_RUN = """
    from engine.api import Command


    class CmdBad(Command):
        \"\"\"Forgot to say what it does.\"\"\"

        key = "bad"
"""


@pytest.mark.game(reload=True, files=HELPERS)
@pytest.mark.parametrize(
    ("bad", "problem"),
    [(BAD_KEY, "CmdBad.key must be one word"), (NO_RUN, "CmdBad does not define run()")],
    ids=["key-with-space", "run-missing"],
)
async def test_one_invalid_command_keeps_the_whole_batch_out(
    game: Game, make_client: MakeClient, content_dir: Path, bad: str, problem: str
) -> None:
    alice = await admin(make_client)
    before = {c.key for c in game.registry.commands()}
    loud_module = game.content.module("commands.loud")
    mark = len(alice.transcript)

    # A good edit and a bad new file, saved together.
    write(content_dir / "commands" / "loud.py", LOUD.replace('"loud: "', '"LOUD: "'))
    write(content_dir / "commands" / "bad.py", bad)
    line = await report(alice)
    assert line.startswith("Reload failed, the old code keeps running:"), line
    assert f"content/commands/bad.py:{class_line(bad, 'CmdBad')}: {problem}" in line
    assert await reports_after(alice, mark) == [line]

    # Nothing of the batch: the good module's old version still answers.
    await alice.command("loud old", "loud: OLD!")
    assert game.content.module("commands.loud") is loud_module
    assert {c.key for c in game.registry.commands()} == before
    assert "content.commands.bad" not in game.content.tree.live

    # Fixing the bad file brings in the good edit that waited with it.
    write(content_dir / "commands" / "bad.py", BAD_KEY.replace("two words", "bad"))
    line = await report(alice)
    assert line.startswith("Reloaded commands.bad, commands.loud: added bad; changed loud"), line
    await alice.command("loud new", "LOUD: NEW!")
    await alice.command("bad", "bad")


@pytest.mark.game(reload=True, files=FIVE)
async def test_five_files_saved_in_a_tight_loop_arrive_as_one_batch(
    game: Game, make_client: MakeClient, content_dir: Path
) -> None:
    alice = await admin(make_client)
    await alice.command("five3", "five3 says v1")
    commits = spy_commits(game)
    mark = len(alice.transcript)

    for i in range(5):
        write(content_dir / "commands" / f"five{i}.py", numbered(i, "v2"))
    line = await report(alice)
    names = ", ".join(f"commands.five{i}" for i in range(5))
    assert line.startswith(f"Reloaded {names}: changed five0, five1, five2, five3, five4"), line
    for i in range(5):
        await alice.command(f"five{i}", f"five{i} says v2")
    assert await reports_after(alice, mark) == [line]
    assert commits == [[f"content.commands.five{i}" for i in range(5)]]


@pytest.mark.game(reload=True, files=FIVE)
async def test_a_checkout_that_replaces_files_arrives_as_one_batch(
    game: Game, make_client: MakeClient, content_dir: Path, tmp_path: Path
) -> None:
    alice = await admin(make_client)
    commits = spy_commits(game)
    staging = tmp_path / "checkout"
    for i in range(5):
        write(staging / f"five{i}.py", numbered(i, "v3"))
    mark = len(alice.transcript)

    # As git does: whole new files renamed over the old ones.
    for i in range(5):
        os.replace(staging / f"five{i}.py", content_dir / "commands" / f"five{i}.py")
    line = await report(alice)
    names = ", ".join(f"commands.five{i}" for i in range(5))
    assert line.startswith(f"Reloaded {names}: changed"), line
    for i in range(5):
        await alice.command(f"five{i}", f"five{i} says v3")
    assert await reports_after(alice, mark) == [line]
    assert commits == [[f"content.commands.five{i}" for i in range(5)]]


@pytest.mark.game(reload=True, files=HELPERS)
async def test_an_edit_split_over_two_saves_applies_when_the_second_lands(
    game: Game, make_client: MakeClient, content_dir: Path
) -> None:
    alice = await admin(make_client)
    # First part: loud.py uses a helper that text.py does not have yet.
    write(content_dir / "commands" / "loud.py", LOUD.replace("shout", "whisper"))
    line = await report(alice)
    assert line.startswith("Reload failed, the old code keeps running:"), line
    assert "content/commands/loud.py:1: ImportError: cannot import name 'whisper'" in line
    await alice.command("loud still", "loud: STILL!")

    # Second part: the helper arrives; the failed first part is applied with it.
    write(
        content_dir / "lib" / "text.py",
        TEXT_V1 + '\n\n    def whisper(text: str) -> str:\n        return "(" + text + ")"\n',
    )
    line = await report(alice)
    assert line.startswith("Reloaded commands.loud, commands.quiet, lib.text:"), line
    await alice.command("loud psst", "loud: (psst)")
    await alice.command("quiet hey", "quiet: HEY!")


@pytest.mark.game(reload=True, files=HELPERS)
async def test_deleting_a_module_still_imported_fails_until_its_importers_let_go(
    game: Game, make_client: MakeClient, content_dir: Path
) -> None:
    alice = await admin(make_client)
    (content_dir / "lib" / "text.py").unlink()
    line = await report(alice)
    assert line.startswith("Reload failed, the old code keeps running:"), line
    assert "content/commands/loud.py:1" in line or "content/commands/quiet.py:1" in line
    await alice.command("loud on", "loud: ON!")
    assert "content.lib.text" in game.content.tree.live

    # The importers stop importing it: the removal goes through with them.
    loud = LOUD.replace("from content.lib.text import shout\n", "shout = str.title\n")
    quiet = QUIET.replace(
        "from content.lib import text\n",
        "from types import SimpleNamespace\n    text = SimpleNamespace(shout=str.swapcase)\n",
    )
    write(content_dir / "commands" / "loud.py", loud)
    write(content_dir / "commands" / "quiet.py", quiet)
    line = await report(alice)
    assert line.startswith("Reloaded commands.loud, commands.quiet, removed lib.text:"), line
    assert "content.lib.text" not in game.content.tree.live
    await alice.command("loud on and on", "loud: On And On")
    await alice.command("quiet Hey", "quiet: hEY")


# -- files that appear, vanish and move ----------------------------------------------------


@pytest.mark.game(reload=True, files={"commands/alpha.py": ZAP})
async def test_a_module_added_renamed_and_deleted(
    game: Game, make_client: MakeClient, content_dir: Path
) -> None:
    alice = await admin(make_client)
    await alice.command("zap", "Zap from content.commands.alpha.")
    keys = {c.key for c in game.registry.commands()}

    os.rename(content_dir / "commands" / "alpha.py", content_dir / "commands" / "beta.py")
    await until(
        lambda: (
            "content.commands.beta" in game.content.tree.live
            and "content.commands.alpha" not in game.content.tree.live
        )
    )
    await alice.command("zap", "Zap from content.commands.beta.")
    zap = game.registry.get("zap")
    assert zap is not None and game.registry.module_of(zap) == "content.commands.beta"
    assert {c.key for c in game.registry.commands()} == keys, "a rename lost or added commands"
    assert "removed commands.alpha" in alice.transcript

    write(content_dir / "commands" / "gamma.py", ZAP.replace('"zap"', '"zip"'))
    line = await report(alice)
    assert line.startswith("Reloaded commands.gamma: added zip"), line
    await alice.command("zip", "Zap from content.commands.gamma.")

    (content_dir / "commands" / "beta.py").unlink()
    line = await report(alice)
    assert line.startswith("Reloaded nothing, removed commands.beta: removed zap"), line
    await alice.command("zap", "Unknown command 'zap'")
    await alice.command("zip", "Zap from content.commands.gamma.")
    assert {c.key for c in game.registry.commands()} == keys - {"zap"} | {"zip"}


@pytest.mark.game(reload=True)
async def test_a_package_moved_into_commands_from_outside_and_out_again(
    game: Game, make_client: MakeClient, content_dir: Path, tmp_path: Path
) -> None:
    alice = await admin(make_client)
    outside = tmp_path / "quest"
    write(outside / "__init__.py", '"""Quest commands."""\n')
    write(outside / "board.py", ZAP.replace('"zap"', '"board"'))
    outside.rename(content_dir / "commands" / "quest")
    line = await report(alice)
    assert line.startswith("Reloaded commands.quest, commands.quest.board: added board"), line
    await alice.command("board", "Zap from content.commands.quest.board.")

    (content_dir / "commands" / "quest").rename(tmp_path / "quest-again")
    line = await report(alice)
    assert line.startswith("Reloaded nothing, removed commands.quest, commands.quest.board"), line
    await alice.command("board", "Unknown command 'board'")
    assert not game.content.tree.under("content.commands.quest")


# -- live objects -------------------------------------------------------------------------


def canonical(cls: type) -> str:
    return f"{exocet.canonicalName(cls.__module__)}.{cls.__qualname__}"


@pytest.mark.game(reload=True, files=OBJECTS)
async def test_objects_of_a_class_and_of_its_subclass_elsewhere_run_the_new_code(
    game: Game, make_client: MakeClient, content_dir: Path
) -> None:
    alice = await admin(make_client)
    world = game.world
    here = world.start_room
    gadget = world.create(
        "thing", "gadget", location=here, typeclass="content.typeclasses.gadgets.Gadget",
        attributes={"charge": 7},
    )  # fmt: skip
    widget = world.create(
        "thing", "widget", location=here, typeclass="content.typeclasses.widgets.Widget",
        attributes={"charge": 3}, description="Small.",
    )  # fmt: skip
    await alice.command("use gadget", "gadget hums v1 at charge 7.")
    await alice.command("use widget", "widget: widget hums v1 at charge 3.")
    old_gadget_class, old_widget_class = type(gadget), type(widget)
    ids = (gadget.id, widget.id)

    write(content_dir / "typeclasses" / "gadgets.py", GADGETS_V1.replace('"v1"', '"v2"'))
    line = await report(alice)
    assert line.startswith("Reloaded typeclasses.gadgets, typeclasses.widgets:"), line
    await alice.command("use gadget", "gadget hums v2 at charge 7.")
    await alice.command("use widget", "widget: widget hums v2 at charge 3.")

    paths = ["content.typeclasses.gadgets.Gadget", "content.typeclasses.widgets.Widget"]
    for obj, path in zip((gadget, widget), paths, strict=True):
        assert type(obj) is game.content.resolve_class(path)
        assert canonical(type(obj)) == path
    assert type(gadget) is not old_gadget_class and type(widget) is not old_widget_class
    assert type(widget).__mro__[1] is type(gadget), "the subclass kept the old base"
    # The data never moved.
    assert (gadget.name, dict(gadget.attributes)) == ("gadget", {"charge": 7})
    assert (widget.name, widget.description, dict(widget.attributes)) == (
        "widget",
        "Small.",
        {"charge": 3},
    )
    assert world.get(ids[0]) is gadget and world.get(ids[1]) is widget
    assert gadget.location is here and widget.location is here


@pytest.mark.game(reload=True, files=OBJECTS)
async def test_an_object_whose_class_is_removed_is_held_and_builders_are_told(
    game: Game, make_client: MakeClient, content_dir: Path
) -> None:
    alice = await admin(make_client)
    gizmo = game.world.create(
        "thing", "gizmo", location=game.world.start_room,
        typeclass="content.typeclasses.gadgets.Gizmo", attributes={"gears": 12},
    )  # fmt: skip
    await alice.command("use gizmo", "gizmo whirs v1.")

    without = GADGETS_V1[: GADGETS_V1.index("    class Gizmo")]
    write(content_dir / "typeclasses" / "gadgets.py", without)
    # Two lines, the type class warning (told during the swap) and the reload's.
    lines = sorted([await report(alice), await report(alice)])
    assert lines[0].startswith("Reloaded typeclasses.gadgets, typeclasses.widgets:"), lines
    assert lines[1] == (
        "Type class content.typeclasses.gadgets.Gizmo does not load "
        "(LookupError: content.typeclasses.gadgets has no class Gizmo); "
        f"gizmo #{gizmo.id} keeps its data but refuses to be taken, used, moved, entered or "
        "passed through until it does."
    )
    assert type(gizmo) is UNLOADED["thing"]
    assert gizmo.typeclass == "content.typeclasses.gadgets.Gizmo"
    assert dict(gizmo.attributes) == {"gears": 12}
    await alice.command("use gizmo", "The gizmo cannot be handled just now;")
    await alice.command("examine gizmo", "NOT LOADING")

    write(content_dir / "typeclasses" / "gadgets.py", GADGETS_V1.replace('"v1"', '"v3"'))
    lines = sorted([await report(alice), await report(alice)])
    assert lines[0].startswith("Reloaded typeclasses.gadgets, typeclasses.widgets:"), lines
    assert lines[1] == (
        "Type class content.typeclasses.gadgets.Gizmo loads again; its objects are back on it."
    )
    await alice.command("use gizmo", "gizmo whirs v3.")
    assert canonical(type(gizmo)) == "content.typeclasses.gadgets.Gizmo"
