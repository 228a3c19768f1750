"""A missing type class never loosens the world: its objects keep their data and are held.

While an object's type class does not load (its file deleted, renamed,
stashed), the object is on its kind's stand-in (``engine.world.objects.Unloaded``):
it is not taken, used, moved, entered or passed through, the player is told so
in one line, and builders are told which objects, and about refusals at most
once a minute per object.  In process (``LocalGame`` on a copy of content with
a type class file removed); the reload over a socket is in ``test_typeclasses.py``.
"""

from __future__ import annotations

from pathlib import Path

from game_helpers import named

from engine.local import LocalGame
from engine.world.model import World
from engine.world.objects import (
    UNLOADED,
    Character,
    GameObject,
    Room,
    Thing,
    Unloaded,
    WorldError,
)

TOLD = "just now; the builders have been told."
THINGS = "content.typeclasses.things"


def without(content_dir: Path, *files: str) -> LocalGame:
    """The starter game on ``content_dir`` with ``files`` (under ``typeclasses/``) removed.

    Wide enough that no notice is wrapped, so a test can find it whole.
    """
    for name in files:
        (content_dir / "typeclasses" / name).unlink()
    return LocalGame(content_dir, width=500)


async def test_a_thing_whose_class_is_gone_is_not_taken_used_dropped_or_given(
    content_dir: Path,
) -> None:
    local = without(content_dir, "things.py")
    statue, lamp = named(local, "stone statue"), named(local, "brass lamp")
    # Builders are told which objects, by name and #id, before anyone tries.
    assert any(
        f"Type class {THINGS}.Statue does not load" in n and f"stone statue #{statue.id}" in n
        for n in local.notices
    ), local.notices
    assert any(f"brass lamp #{lamp.id} keeps its data" in n for n in local.notices)
    alice, bob = await local.players("Alice", "Bob")
    square = statue.location
    assert isinstance(statue, Unloaded) and isinstance(statue, Thing)

    await bob.command("get statue", f"The stone statue cannot be handled {TOLD}")
    assert statue.location is square
    # It keeps its data: looking at it still works.
    await bob.command("look statue", "A weathered statue of the village founder.")
    # Alice, an admin, is told once who was refused what, not on every attempt.
    told = await alice.expect(f"get stone statue #{statue.id}, whose type class")
    assert f"[reload] Bob #{named(local, 'Bob').id} was refused" in told
    await bob.command("take statue", f"The stone statue cannot be handled {TOLD}")
    await alice.expect("")
    assert alice.transcript.count("was refused") == 1
    assert "[reload]" not in bob.transcript
    # Nor does a builder's teleport move it.
    await alice.command(
        "teleport statue = The Market", f"The stone statue cannot be handled {TOLD}"
    )
    assert statue.location is square

    await bob.command("down", "A Damp Cellar")
    await bob.command("use lamp", f"The brass lamp cannot be handled {TOLD}")
    await bob.command("get lamp", f"The brass lamp cannot be handled {TOLD}")
    assert "lit" not in lamp.attributes and lamp.location is named(local, "A Damp Cellar")

    # Something already carried stays with its holder.
    bob_char = named(local, "Bob")
    pebble = local.world.create("thing", "pebble", location=bob_char, typeclass=f"{THINGS}.Pebble")
    await bob.command("drop pebble", f"The pebble cannot be handled {TOLD}")
    await bob.command("up", "The Village Square")
    await bob.command("give pebble = Alice", f"The pebble cannot be handled {TOLD}")
    assert pebble.location is bob_char
    await bob.command("inventory", "You carry: a pebble.")


async def test_an_exit_whose_class_is_gone_is_not_passed(content_dir: Path) -> None:
    local = without(content_dir, "exits.py")
    alice, bob = await local.players("Alice", "Bob")
    north = named(local, "north")
    square = named(local, "Bob").location
    assert isinstance(north, UNLOADED["exit"])

    await bob.command("north", f"The way north cannot be used {TOLD}")
    await bob.command("go north", f"The way north cannot be used {TOLD}")
    assert named(local, "Bob").location is square
    await bob.command("look north", "The way north leads to The Quiet Library.")
    await bob.command("look", "Exits: north, east, down.")
    await alice.expect(f"pass through north #{north.id}, whose type class")
    assert alice.transcript.count("was refused") == 1


async def test_a_room_whose_class_is_gone_is_not_entered_but_may_be_left(
    content_dir: Path,
) -> None:
    local = without(content_dir, "rooms.py")
    _, bob = await local.players("Alice", "Bob")
    bob_char = named(local, "Bob")
    square, library = named(local, "The Village Square"), named(local, "The Quiet Library")

    await bob.command("north", f"The Quiet Library cannot be entered {TOLD}")
    assert bob_char.location is square
    await bob.command("look", "The Village Square")
    # Nothing is left in it either.
    lamp = local.world.create("thing", "tin lamp", location=bob_char, typeclass=f"{THINGS}.Lamp")
    await bob.command("drop tin lamp", f"Nothing can be left in The Village Square {TOLD}")
    assert lamp.location is bob_char
    bob_char.location = library  # placed by the engine, as at login
    await bob.command("home", f"The Village Square cannot be entered {TOLD}")
    assert bob_char.location is library
    # What is inside may leave: the missing class can only have kept things out.
    crate = local.world.create("thing", "crate", location=library)
    crate.move_to(bob_char, by=bob_char)
    assert crate.location is bob_char


async def test_a_character_whose_class_is_gone_does_not_move_or_take(content_dir: Path) -> None:
    local = without(content_dir, "characters.py")
    _, bob = await local.players("Alice", "Bob")
    bob_char = named(local, "Bob")
    square = bob_char.location
    assert isinstance(bob_char, UNLOADED["character"])

    await bob.command("north", f"You cannot move {TOLD}")
    assert bob_char.location is square
    local.world.create("thing", "tin lamp", location=square, typeclass=f"{THINGS}.Lamp")
    await bob.command("get tin lamp", f"You cannot take anything {TOLD}")
    await bob.command("use tin lamp", "You switch the tin lamp on.")  # the lamp's class loads


def test_refusals_stop_when_the_class_loads_again() -> None:
    classes: dict[str, type] = {}

    class Statue(Thing):
        def at_get(self, getter: GameObject) -> str | None:
            return "It will not budge."

    def resolve(path: str) -> type:
        if path not in classes:
            raise LookupError(f"{path} is gone")
        return classes[path]

    classes["rooms.Room"] = Room
    classes["characters.Character"] = Character
    world = World(resolver=resolve)
    room = world.create_room("Hall", typeclass="rooms.Room")
    pat = world.create("character", "Pat", location=room, typeclass="characters.Character")
    statue = world.create("thing", "statue", location=room, typeclass="things.Statue")
    refused: list[str] = []
    world.on_refused = lambda obj, actor, doing: refused.append(doing)

    assert isinstance(statue, Unloaded)
    assert statue.at_get(pat) == f"The statue cannot be handled {TOLD}"
    try:
        statue.move_to(pat, by=pat)
    except WorldError as refusal:
        assert str(refusal) == f"The statue cannot be handled {TOLD}"
    else:
        raise AssertionError("a held statue moved")
    assert statue.location is room
    assert refused == [f"get statue #{statue.id}", f"move statue #{statue.id}"]

    classes["things.Statue"] = Statue
    assert world.refresh_paths(["things"]) == []
    # refresh_paths moved it onto Statue, behind mypy's back (it was narrowed to Unloaded).
    assert type(statue) is Statue and statue.at_get(pat) == "It will not budge."  # type: ignore[comparison-overlap]
    statue.move_to(pat, by=pat)  # its own class allows moves other than `get`
    assert statue.location is pat and len(refused) == 2


async def test_builders_hear_of_refusals_once_a_minute_per_object(content_dir: Path) -> None:
    local = without(content_dir, "things.py")
    now = [1000.0]
    local.typeclasses.clock = lambda: now[0]
    alice, bob = await local.players("Alice", "Bob")
    statue = named(local, "stone statue")

    for _ in range(3):
        await bob.command("get statue", f"The stone statue cannot be handled {TOLD}")
    await alice.expect(f"get stone statue #{statue.id}")
    await alice.expect("")
    assert alice.transcript.count("was refused") == 1

    now[0] += 61
    await bob.command("get statue", f"The stone statue cannot be handled {TOLD}")
    told = await alice.expect("more refused since the last notice.")
    assert "2 more refused since the last notice." in told
    assert alice.transcript.count("was refused") == 2
