"""Type classes under a running game: edited, broken, deleted and missing at start.

While a type class does not load, its objects keep their data but are held
(``engine.world.objects.Unloaded``): a missing class never loosens the world.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import textwrap
import weakref
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from game_helpers import named

from engine.app import Game
from engine.config import Config
from engine.world.objects import UNLOADED, GameObject

if TYPE_CHECKING:
    from conftest import Client, Connect, MakeClient

PATH = "content.typeclasses.custom.Gadget"
RELOAD_WAIT = 3.0
#: The end of every refusal by an object whose type class does not load.
TOLD = "just now; the builders have been told."
STATUE = "content.typeclasses.things.Statue"
HELD = "to be taken, used, moved, entered or passed through until it"

CUSTOM = """
    from engine.api import GameObject, Thing


    class Gadget(Thing):
        \"\"\"A gadget whose answer shows which version of its class runs.\"\"\"

        def at_use(self, user: GameObject) -> str:
            return f"The {self.name} hums v1."
"""

FILES = {"typeclasses/custom.py": CUSTOM}


def source(version: str = "v1", name: str = "Gadget") -> str:
    text = textwrap.dedent(CUSTOM).lstrip("\n")
    return text.replace("v1", version).replace("class Gadget", f"class {name}")


def stored_typeclass(db_path: Path, obj_id: int) -> str:
    db = sqlite3.connect(db_path)
    try:
        (path,) = db.execute("SELECT typeclass FROM objects WHERE id = ?", (obj_id,)).fetchone()
    finally:
        db.close()
    return str(path)


async def builder_and_player(make_client: MakeClient) -> tuple[Client, Client]:
    alice = await make_client()
    await alice.login_new("Alice")  # the first account: an admin, told about type classes
    bob = await make_client()
    await bob.login_new("Bob")
    await alice.expect("Bob has entered the game.")
    return alice, bob


async def make_gadget(alice: Client, game: Game) -> GameObject:
    await alice.command(f"create gadget = {PATH}", "You hold it.")
    await alice.command("set gadget/colour = teal", "Set colour on gadget")
    gadget = named(game, "gadget")
    assert gadget.typeclass == PATH
    return gadget


@pytest.mark.game(reload=True, files=FILES)
async def test_an_edited_type_class_reaches_its_existing_objects(
    game: Game, make_client: MakeClient, content_dir: Path
) -> None:
    alice, bob = await builder_and_player(make_client)
    gadget = await make_gadget(alice, game)
    await alice.command("create spare = " + PATH, "You hold it.")
    await alice.command("teleport spare = The Market", "Teleported spare")
    spare = named(game, "spare")
    await alice.command("drop gadget", "You drop a gadget.")
    await bob.command("use gadget", "The gadget hums v1.")
    old_class = weakref.ref(type(gadget))
    before = (gadget.id, gadget.location, gadget.typeclass, dict(gadget.attributes))

    (content_dir / "typeclasses" / "custom.py").write_text(source("v2"), encoding="utf-8")
    await alice.expect("[reload] Reloaded typeclasses.custom", timeout=RELOAD_WAIT)
    await bob.command("use gadget", "The gadget hums v2.")
    # The same object with the same data, on the new class.
    assert game.world.get(before[0]) is gadget
    assert (gadget.id, gadget.location, gadget.typeclass, dict(gadget.attributes)) == before
    new_class = game.content.resolve_class(PATH)
    assert type(gadget) is new_class and type(spare) is new_class
    assert type(gadget) is not old_class()
    assert new_class.__qualname__ == "Gadget"
    assert "[reload]" not in bob.transcript
    assert stored_typeclass(game.config.db_path, gadget.id) == PATH
    # Nothing holds the old generation of the class.
    await asyncio.sleep(0)
    # What a reload retires goes at the next thaw of everything (engine.longlived).
    game.long_lived.collect_all()
    assert old_class() is None, "an object or the engine still holds the replaced class"


@pytest.mark.game(reload=True, files=FILES)
async def test_a_renamed_class_holds_its_objects_and_they_recover(
    game: Game, make_client: MakeClient, content_dir: Path
) -> None:
    alice, bob = await builder_and_player(make_client)
    gadget = await make_gadget(alice, game)
    await bob.command(f"use #{gadget.id}", f"You find no '#{gadget.id}' here.")
    await alice.command("use gadget", "The gadget hums v1.")
    custom = content_dir / "typeclasses" / "custom.py"

    custom.write_text(source(name="Gizmo"), encoding="utf-8")
    error = "LookupError: content.typeclasses.custom has no class Gadget"
    line = await alice.expect("until it does.", timeout=RELOAD_WAIT)
    assert (
        f"[reload] Type class {PATH} does not load ({error}); "
        f"gadget #{gadget.id} keeps its data but refuses {HELD} does."
    ) in line
    await alice.expect("[reload] Reloaded typeclasses.custom", timeout=RELOAD_WAIT)
    # Held, not loosened: its class might have refused what the base class allows.
    await alice.command("use gadget", f"The gadget cannot be handled {TOLD}")
    await alice.command(
        "examine gadget", f"type class:  {PATH} (NOT LOADING: {error}; refuses {HELD} loads)"
    )
    assert type(gadget) is UNLOADED["thing"]
    assert gadget.typeclass == PATH and dict(gadget.attributes) == {"colour": "teal"}
    assert stored_typeclass(game.config.db_path, gadget.id) == PATH
    await alice.command("give gadget = Bob", f"The gadget cannot be handled {TOLD}")
    assert gadget.location is named(game, "Alice")
    assert "[reload]" not in bob.transcript

    custom.write_text(source(), encoding="utf-8")
    await alice.expect(
        f"[reload] Type class {PATH} loads again; its objects are back on it.",
        timeout=RELOAD_WAIT,
    )
    await alice.command("give gadget = Bob", "You give a gadget to Bob.")
    await bob.command("use gadget", "The gadget hums v1.")
    assert type(gadget) is game.content.resolve_class(PATH)
    await alice.command("examine gadget", f"type class:  {PATH} (loaded)")
    assert not game.world.broken


@pytest.mark.game(reload=True, files=FILES)
async def test_a_deleted_module_holds_its_objects_until_it_is_restored(
    game: Game, make_client: MakeClient, content_dir: Path
) -> None:
    alice, _ = await builder_and_player(make_client)
    gadget = await make_gadget(alice, game)
    custom = content_dir / "typeclasses" / "custom.py"
    saved = custom.read_text(encoding="utf-8")

    custom.unlink()
    error = "LookupError: module content.typeclasses.custom is not loaded"
    await alice.expect(
        f"Type class {PATH} does not load ({error}); gadget #{gadget.id}", RELOAD_WAIT
    )
    await alice.expect("[reload] Reloaded", timeout=RELOAD_WAIT)
    await alice.command("use gadget", f"The gadget cannot be handled {TOLD}")
    await alice.command("drop gadget", f"The gadget cannot be handled {TOLD}")
    await alice.command("examine gadget", f"(NOT LOADING: {error}; refuses {HELD} loads)")
    # Meanwhile the path cannot be given to anything new.
    await alice.command(f"create other = {PATH}", f"Type class {PATH} cannot be used: {error}")
    assert type(gadget) is UNLOADED["thing"] and gadget.typeclass == PATH
    assert gadget.location is named(game, "Alice")

    custom.write_text(saved, encoding="utf-8")
    await alice.expect(f"Type class {PATH} loads again", timeout=RELOAD_WAIT)
    await alice.command("use gadget", "The gadget hums v1.")
    assert type(gadget) is game.content.resolve_class(PATH)


@pytest.mark.game(reload=True)
async def test_a_stashed_type_class_file_holds_its_objects_until_it_is_back(
    game: Game, make_client: MakeClient, content_dir: Path
) -> None:
    alice, bob = await builder_and_player(make_client)
    statue, lamp = named(game, "stone statue"), named(game, "brass lamp")
    things = content_dir / "typeclasses" / "things.py"
    saved = things.read_text(encoding="utf-8")

    things.unlink()  # as `git stash` would
    # Builders hear which objects, by name and #id.
    await alice.expect(f"brass lamp #{lamp.id} keeps its data", timeout=RELOAD_WAIT)
    await alice.expect(f"stone statue #{statue.id} keeps its data", timeout=RELOAD_WAIT)
    square = statue.location
    await bob.command("get statue", f"The stone statue cannot be handled {TOLD}")
    await alice.expect(f"was refused: get stone statue #{statue.id}", timeout=RELOAD_WAIT)
    await bob.command("get statue", f"The stone statue cannot be handled {TOLD}")
    await bob.command("look statue", "A weathered statue of the village founder.")
    await bob.command("down", "A Damp Cellar")
    await bob.command("use lamp", f"The brass lamp cannot be handled {TOLD}")
    await alice.command("ping", "Pong.")
    # Once per object, not on every attempt; players never see the notices.
    assert alice.transcript.count("was refused") == 2, alice.transcript
    assert "[reload]" not in bob.transcript
    assert statue.location is square and "lit" not in lamp.attributes

    things.write_text(saved, encoding="utf-8")
    await alice.expect(f"Type class {STATUE} loads again", timeout=RELOAD_WAIT)
    await bob.command("use lamp", "You switch the brass lamp on.")
    await alice.command("get statue", "The stone statue will not budge.")
    assert not game.world.broken


@pytest.mark.game(reload=True, files=FILES)
async def test_a_broken_edit_keeps_the_objects_on_the_class_that_worked(
    game: Game, make_client: MakeClient, content_dir: Path
) -> None:
    alice, _ = await builder_and_player(make_client)
    gadget = await make_gadget(alice, game)
    working = type(gadget)
    custom = content_dir / "typeclasses" / "custom.py"
    custom.write_text(source("v2").replace("def at_use", "def at_use("), encoding="utf-8")
    await alice.expect("Reload failed", timeout=RELOAD_WAIT)
    await alice.expect("content/typeclasses/custom.py:")
    await alice.command("use gadget", "The gadget hums v1.")
    assert type(gadget) is working and not game.world.broken
    assert "does not load" not in alice.transcript


async def test_a_path_that_does_not_exist_at_start_is_held_and_kept(
    content_dir: Path,
    tmp_path: Path,
    connect: Connect,
    watchdog: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = Config(
        host="127.0.0.1",
        port=0,
        content_dir=content_dir,
        db_path=tmp_path / "db.sqlite3",
        reload=False,
    )
    custom = content_dir / "typeclasses" / "custom.py"
    custom.write_text(source(), encoding="utf-8")

    async def started() -> Game:
        game = Game(config)
        await asyncio.wait_for(game.start(), 5)
        return game

    game = await started()
    try:
        gadget: GameObject = game.world.create(
            "thing", "gadget", location=game.world.start_room, typeclass=PATH,
            attributes={"colour": "teal"},
        )  # fmt: skip
        assert type(gadget) is game.content.resolve_class(PATH)
        gadget_id = gadget.id
    finally:
        await asyncio.wait_for(game.close(), 10)
    # The statue's path is changed in the database behind the game's back.
    db = sqlite3.connect(config.db_path)
    with db:
        db.execute(
            "UPDATE objects SET typeclass = 'content.typeclasses.things.Vanished' "
            "WHERE name = 'stone statue'"
        )
    db.close()
    custom.unlink()

    with caplog.at_level(logging.WARNING, logger="engine.live.typeclasses"):
        game = await started()
    try:
        gadget = game.world.objects[gadget_id]
        statue = named(game, "stone statue")
        assert type(gadget) is UNLOADED["thing"] and type(statue) is UNLOADED["thing"]
        assert gadget.typeclass == PATH and dict(gadget.attributes) == {"colour": "teal"}
        assert statue.typeclass == "content.typeclasses.things.Vanished"
        assert f"Type class {PATH} does not load" in caplog.text
        assert f"gadget #{gadget_id} keeps its data" in caplog.text
        alice = await connect(game.port)
        await alice.login_new("Alice")
        await alice.command("use gadget", f"The gadget cannot be handled {TOLD}")
        await alice.command("examine gadget", f"{PATH} (NOT LOADING: LookupError: module")
        # Held, not loosened: the statue still refuses to be picked up.
        await alice.command("get statue", f"The stone statue cannot be handled {TOLD}")
        assert statue.location is game.world.start_room
        await alice.command("examine statue", "content.typeclasses.things.Vanished (NOT LOADING")
    finally:
        await asyncio.wait_for(game.close(), 10)
    # Never silently rewritten, not even by the close that writes everything out.
    assert stored_typeclass(config.db_path, gadget_id) == PATH
    assert stored_typeclass(config.db_path, statue.id) == "content.typeclasses.things.Vanished"

    custom.write_text(source("v3"), encoding="utf-8")
    game = await started()
    try:
        gadget = game.world.objects[gadget_id]
        assert type(gadget) is game.content.resolve_class(PATH)
        assert gadget.at_use(gadget) == "The gadget hums v3."
        assert list(game.world.broken) == ["content.typeclasses.things.Vanished"]
    finally:
        await asyncio.wait_for(game.close(), 10)
