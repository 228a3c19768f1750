"""The world model without a server: objects, the world, search, durability, the store rows."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from engine.accounts.account import Role
from engine.commands.base import Context
from engine.guard.guard import ContentFailed, ContentGuard
from engine.world import objectstore
from engine.world.durability import DurableOutput
from engine.world.model import World, WorldError
from engine.world.objects import KINDS, UNLOADED, Character, Exit, GameObject, Room, Thing
from engine.world.search import describe_matches, find, nearby
from engine.world.store import Store


class Shiny(Thing):
    """A content-like type class, resolved by the test resolver below."""

    def at_use(self, user: GameObject) -> str:
        return "It shines."


class NotAThing(Room):
    pass


def small_world(store: Store | None = None) -> tuple[World, Room, Room, Character]:
    world = World(store)
    square = world.create_room("Square", "A square.")
    library = world.create_room("Library")
    world.link(square, "north", library, back="south")
    alice = world.create("character", "Alice", location=square, account_id=1)
    return world, square, library, alice


# -- objects and the world ------------------------------------------------------------


def test_the_first_room_is_the_start_room_and_ids_count_up() -> None:
    world, square, library, alice = small_world()
    assert world.start_room is square
    assert [square.id, library.id] == [1, 2]
    assert alice.id == max(world.objects)
    assert world.get(square.id) is square
    assert world.get(999) is None


def test_linked_rooms_get_compass_short_forms_and_exits_both_ways() -> None:
    world, square, library, _ = small_world()
    north = square.find_exit("n")
    south = library.find_exit("south")
    assert isinstance(north, Exit) and isinstance(south, Exit)
    assert north.name == "north" and north.aliases == ["n"]
    assert north.destination is library and south.destination is square
    assert square.exits == [north] and library.exits == [south]
    named = world.open_exit(square, "gate", library)
    assert named.aliases == []


def test_a_duplicate_exit_and_an_exit_not_between_rooms_are_refused() -> None:
    world, square, library, alice = small_world()
    with pytest.raises(WorldError, match="Square has an exit called NORTH already"):
        world.open_exit(square, "NORTH", library)
    with pytest.raises(WorldError, match="has an exit called n already"):
        world.open_exit(square, "n", library)  # an alias counts too
    with pytest.raises(WorldError, match="from a room to a room"):
        world.open_exit(square, "inside", alice)
    with pytest.raises(WorldError, match="a name is needed"):
        world.create("thing", "   ")
    with pytest.raises(WorldError, match="unknown kind"):
        world.create("dragon", "Smaug")


def test_moving_keeps_contents_of_both_places_right() -> None:
    world, square, library, alice = small_world()
    lamp = world.create("thing", "lamp", location=square)
    assert lamp in square.contents
    lamp.location = alice
    assert lamp not in square.contents and alice.contents == [lamp]
    alice.location = library
    assert alice in library.contents and alice not in square.contents
    assert lamp.location is alice
    lamp.location = None
    assert alice.contents == []


def test_room_appearance_lists_things_exits_and_online_people_only() -> None:
    world, square, _, alice = small_world()
    world.create("thing", "lamp", location=square)
    bob = world.create("character", "Bob", location=square, account_id=2)
    text = square.appearance(alice)
    assert text.splitlines() == ["Square", "A square.", "You see: a lamp.", "Exits: north."]
    bob.session = Listening()  # online
    assert square.appearance(alice).endswith("Here: Bob.")
    assert "Here:" not in square.appearance(bob)  # nobody sees themselves; Alice is offline


class Listening:
    """A stand-in for the connection playing a character."""

    def send(self, text: str) -> None:
        pass

    def room_changed(self, room: GameObject | None) -> None:
        pass


def test_what_look_shows_follows_every_change_of_who_and_what_is_here() -> None:
    """``look`` keeps what it sorted out of a room until it changes: it must change with it."""
    world, square, library, alice = small_world()
    alice.session = Listening()
    crowd = [
        world.create("character", f"P{i}", location=square, account_id=10 + i) for i in range(20)
    ]
    for person in crowd:
        person.session = Listening()
    shown = ", ".join(p.name for p in crowd[: Room.CROWD])
    assert square.appearance(alice).endswith(f"Here: {shown} and 5 others.")

    crowd[0].location = library  # leaves
    crowd[1].session = None  # falls asleep
    shown = ", ".join(p.name for p in crowd[2 : 2 + Room.CROWD])
    assert square.appearance(alice).endswith(f"Here: {shown} and 3 others.")
    assert library.appearance(alice).endswith("Here: P0.")

    lamp = world.create("thing", "lamp", location=square)
    assert "You see: a lamp." in square.appearance(alice)
    alice.location = library  # looking in from elsewhere: still 18 others
    assert square.appearance(alice).endswith(f"Here: {shown} and 3 others.")

    # A move undone by a failed transaction puts the old contents lists back.
    guard = ContentGuard()

    def moves_then_fails() -> None:
        lamp.location = library
        crowd[2].location = library
        raise ValueError("undone")

    with pytest.raises(ContentFailed):
        guard.call("'fails'", moves_then_fails)
    assert "You see: a lamp." in square.appearance(alice)
    assert square.appearance(alice).endswith(f"Here: {shown} and 3 others.")
    assert library.appearance(alice).endswith("Here: P0.")


def test_attributes_take_json_data_only_and_stage_every_change() -> None:
    world, square, _, _ = small_world()
    world.take_snapshot()
    changes: list[int] = []
    world.on_change = lambda: changes.append(1)
    lamp = world.create("thing", "lamp", location=square)
    world.take_snapshot()
    changes.clear()
    lamp.attributes["lit"] = True
    lamp.attributes["colours"] = ("red", "blue")  # stored as JSON: a list
    assert dict(lamp.attributes) == {"lit": True, "colours": ["red", "blue"]}
    with pytest.raises(TypeError, match="JSON"):
        lamp.attributes["bad"] = object()
    with pytest.raises(TypeError, match="non-empty strings"):
        lamp.attributes[""] = 1
    assert "bad" not in lamp.attributes
    assert len(changes) == 2
    snap = world.take_snapshot()
    assert [row[0] for row in snap.rows] == [lamp.id]
    assert snap.rows[0][-1] == '{"colours": ["red", "blue"], "lit": true}'
    del lamp.attributes["lit"]
    lamp.description = "Dented."
    assert [row[0] for row in world.take_snapshot().rows] == [lamp.id]
    # Fields that are not persisted stage nothing.
    lamp.session = None
    assert not world.take_snapshot()


def test_destruction_takes_exits_both_ways_and_contents_but_not_characters() -> None:
    world, square, _library, _alice = small_world()
    vault = world.create_room("Vault")
    west, east = world.open_exit(square, "west", vault), world.open_exit(vault, "east", square)
    bag = world.create("thing", "bag", location=vault)
    pearl = world.create("thing", "pearl", location=bag)
    bob = world.create("character", "Bob", location=vault, account_id=2)
    doomed = world.destruction_of(vault)
    assert {o.id for o in doomed} == {vault.id, west.id, east.id, bag.id, pearl.id}
    world.take_snapshot()
    gone = world.destroy(vault)
    assert {o.id for o in gone} == {o.id for o in doomed}
    for obj in gone:
        assert obj.id not in world.objects
    assert square.exits == [square.find_exit("north")]
    # Characters are never destroyed: Bob wakes up in the start room.
    assert bob.location is square and bob.id in world.objects
    snap = world.take_snapshot()
    assert snap.deleted == sorted(o.id for o in gone)
    assert bob.id in [row[0] for row in snap.rows]
    assert not {row[0] for row in snap.rows} & set(snap.deleted)


def test_the_start_room_and_characters_in_play_are_not_destroyed() -> None:
    world, square, _, alice = small_world()
    with pytest.raises(WorldError, match="start room"):
        world.destroy(square)
    object.__setattr__(alice, "session", object())  # in the game
    with pytest.raises(WorldError, match="Alice is in the game now"):
        world.destroy(alice)
    assert square.id in world.objects and alice.id in world.objects
    object.__setattr__(alice, "session", None)  # away: a builder may destroy it
    assert world.destroy(alice) == [alice]


def test_a_character_is_made_once_per_account_in_the_start_room() -> None:
    world, square, library, _ = small_world()
    carol = world.character_for(7, "Carol")
    assert carol.location is square and carol.account_id == 7
    carol.location = library
    assert world.character_for(7, "Carol") is carol
    assert world.find_character(8) is None


# -- type classes ---------------------------------------------------------------------


def test_refresh_moves_objects_onto_their_class_or_their_kinds_stand_in() -> None:
    classes: dict[str, type] = {"content.typeclasses.things.Shiny": Shiny}

    def resolve(path: str) -> type:
        if path not in classes:
            raise LookupError(f"{path} is gone")
        return classes[path]

    world = World()
    world.resolver = resolve
    gem = world.create("thing", "gem", typeclass="content.typeclasses.things.Shiny")
    assert type(gem) is Shiny and gem.at_use(gem) == "It shines."
    gem.attributes["carat"] = 3
    world.take_snapshot()

    del classes["content.typeclasses.things.Shiny"]
    assert world.refresh_paths(["content.typeclasses.things"])[0].objects == (gem.id,)
    # Not the kind's base class, which would let anything happen: the stand-in refuses.
    assert type(gem) is UNLOADED["thing"] and isinstance(gem, KINDS["thing"])
    assert gem.at_use(gem) == "The gem cannot be handled just now; the builders have been told."
    assert world.broken == {
        "content.typeclasses.things.Shiny": "LookupError: content.typeclasses.things.Shiny is gone"
    }
    # The data and the stored path stay, and nothing is rewritten in the store.
    assert gem.typeclass == "content.typeclasses.things.Shiny"
    assert dict(gem.attributes) == {"carat": 3}
    assert not world.take_snapshot()

    classes["content.typeclasses.things.Shiny"] = NotAThing
    world.refresh_paths(["content.typeclasses.things"])
    assert type(gem) is UNLOADED["thing"]
    assert "is not a Thing class" in world.broken["content.typeclasses.things.Shiny"]

    classes["content.typeclasses.things.Shiny"] = Shiny
    assert world.refresh_paths(["content.typeclasses.other"]) == []
    assert type(gem) is Shiny and world.broken == {}


# -- search ---------------------------------------------------------------------------


def test_search_by_name_alias_prefix_id_me_and_here() -> None:
    world, square, _, alice = small_world()
    statue = world.create("thing", "stone statue", aliases=["statue"], location=square)
    box1 = world.create("thing", "box", location=square)
    box2 = world.create("thing", "box", location=alice)
    pool = nearby(alice)
    assert pool[0] is box2 and square in pool and alice not in pool

    def look(text: str) -> list[GameObject]:
        return find(text, alice, pool, world.get)

    assert look("stone statue") == [statue]
    assert look("STATUE") == [statue]
    assert look("sto") == [statue]
    assert look("me") == [alice] and look("self") == [alice]
    assert look("here") == [square]
    assert look(f"#{statue.id}") == [statue]
    assert look("#999") == [] and look("") == [] and look("unicorn") == []
    assert look("box") == [box2, box1]
    assert describe_matches(look("box")) == f"box (#{box2.id}), box (#{box1.id})"
    # An exact name or alias beats a prefix of another one.
    world.create("thing", "boxer", location=square)
    assert look("box") == [box2, box1]
    assert look("n") == [square.find_exit("north")]


class _Session:
    role = Role.BUILDER

    def __init__(self) -> None:
        self.sent: list[str] = []

    def send(self, text: str) -> None:
        self.sent.append(text)


class _Game:
    def __init__(self, world: World) -> None:
        self.world = world


def test_context_search_reports_ambiguity_and_absence_and_splits_on_equals() -> None:
    world, square, library, alice = small_world()
    box1 = world.create("thing", "box", location=square)
    box2 = world.create("thing", "box", location=square)
    far = world.create("thing", "globe", location=library)
    session = _Session()
    ctx = Context(alice, session, _Game(world), "x", "box = the shelf = top")  # type: ignore[arg-type]
    assert ctx.lhs == "box" and ctx.rhs == "the shelf = top"
    assert Context(alice, session, _Game(world), "x", "box").rhs is None  # type: ignore[arg-type]
    assert ctx.search("box") is None
    assert session.sent[-1] == (
        f"Which 'box' do you mean: box (#{box1.id}), box (#{box2.id})? "
        "Type 1.box, 2.box and so on to choose."
    )
    assert ctx.search("2.box") is box2 and ctx.search("1.box") is box1
    assert ctx.search("3.box") is None
    assert ctx.search("globe") is None
    assert session.sent[-1] == "You find no 'globe' here."
    assert ctx.search("globe", anywhere=True) is far
    assert ctx.search("atlantis", anywhere=True) is None
    assert session.sent[-1] == "You find no 'atlantis' anywhere."


# -- rows in SQLite -------------------------------------------------------------------


def test_a_world_written_and_loaded_again_is_the_same(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite3")
    world, square, library, alice = small_world(store)
    lamp = world.create(
        "thing", "lamp", aliases=["light"], location=alice, description="Dented.",
        typeclass="content.typeclasses.things.Lamp", attributes={"lit": True},
    )  # fmt: skip
    world.set_start(library)
    world.commit_now()
    rows = {o.id: objectstore.row_of(o) for o in world.objects.values()}
    store.close()

    store = Store(tmp_path / "db.sqlite3")
    again = World(store)
    assert again.load() == len(rows)
    assert {o.id: objectstore.row_of(o) for o in again.objects.values()} == rows
    assert again.start_room is not None and again.start_room.id == library.id
    loaded_lamp = again.get(lamp.id)
    assert loaded_lamp is not None and loaded_lamp.location is again.get(alice.id)
    assert again.get(alice.id).contents == [loaded_lamp]  # type: ignore[union-attr]
    north = again.get(square.id).find_exit("north")  # type: ignore[union-attr]
    assert north.destination is again.get(library.id)
    # Without a resolver every object runs its kind's base class.
    assert type(loaded_lamp) is Thing and loaded_lamp.typeclass.endswith(".Lamp")
    # New ids continue after the highest stored one.
    assert again.create("thing", "new").id == max(rows) + 1
    store.close()


def test_destroyed_objects_leave_the_database(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite3")
    world, _square, library, _ = small_world(store)
    world.commit_now()
    gone = world.destroy(library)
    world.commit_now()
    ids = {r[0] for r in store._db.execute("SELECT id FROM objects")}
    assert ids == set(world.objects)
    assert not ids & {o.id for o in gone}
    store.close()


def test_a_failed_write_keeps_the_rows_for_the_next_commit(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite3")
    world, square, _, _ = small_world(store)
    world.commit_now()
    square.description = "Rebuilt."
    snap = world.take_snapshot()
    store._db.execute("BEGIN IMMEDIATE")  # a transaction in the way makes the write fail
    with pytest.raises(sqlite3.OperationalError):
        objectstore.write(store, snap)
    store._db.execute("ROLLBACK")
    objectstore.write(store, snap)
    (desc,) = store._db.execute(
        "SELECT description FROM objects WHERE id = ?", (square.id,)
    ).fetchone()
    assert desc == "Rebuilt."
    store.close()


# -- durable on acknowledgement -------------------------------------------------------


async def test_output_after_a_change_waits_until_the_write_has_finished() -> None:
    gate = threading.Event()
    written: list[str] = []
    delivered: list[str] = []

    def write(payload: str) -> None:
        assert gate.wait(5), "the test never opened the gate"
        written.append(payload)

    durable: DurableOutput[str] = DurableOutput(lambda: "snapshot", write)
    durable.changed()
    durable.after_commit(lambda: delivered.append("You pick up the lamp."))
    durable.after_commit(lambda: delivered.append("> "))
    await asyncio.sleep(0.1)
    assert written == [] and delivered == []  # the write is still running
    gate.set()
    await asyncio.wait_for(durable.wait(), 2)
    assert written == ["snapshot"]
    assert delivered == ["You pick up the lamp.", "> "]
    # Output that follows no change goes out at once, synchronously.
    durable.after_commit(lambda: delivered.append("You see nothing new."))
    assert delivered[-1] == "You see nothing new."


async def test_output_that_follows_no_change_is_not_held() -> None:
    durable: DurableOutput[str] = DurableOutput(lambda: "unused", lambda p: None)
    delivered: list[str] = []
    durable.after_commit(lambda: delivered.append("hello"))
    assert delivered == ["hello"]
    await asyncio.wait_for(durable.wait(), 1)
    assert durable.staged == durable.committed == 0


async def test_each_message_waits_for_its_own_changes_only() -> None:
    gates = [threading.Event(), threading.Event()]
    written: list[int] = []
    delivered: list[str] = []
    taken = iter(range(2))

    def write(payload: int) -> None:
        assert gates[payload].wait(5)
        written.append(payload)

    durable: DurableOutput[int] = DurableOutput(lambda: next(taken), write)
    durable.changed()
    durable.after_commit(lambda: delivered.append("first"))
    await asyncio.sleep(0.05)  # the first write is under way
    durable.changed()
    durable.after_commit(lambda: delivered.append("second"))
    gates[0].set()
    for _ in range(100):
        if delivered:
            break
        await asyncio.sleep(0.01)
    assert delivered == ["first"] and written == [0]
    await asyncio.sleep(0.05)
    assert delivered == ["first"]  # the second change is not on disk yet
    gates[1].set()
    await asyncio.wait_for(durable.wait(), 2)
    assert delivered == ["first", "second"] and written == [0, 1]


async def test_a_failed_commit_is_retried_and_holds_its_output() -> None:
    attempts: list[str] = []
    delivered: list[str] = []

    def write(payload: str) -> None:
        attempts.append(payload)
        if len(attempts) == 1:
            raise OSError("disk full")

    durable: DurableOutput[str] = DurableOutput(lambda: "rows", write)
    durable.changed()
    durable.after_commit(lambda: delivered.append("done"))
    for _ in range(100):
        if attempts:
            break
        await asyncio.sleep(0.005)
    assert attempts == ["rows"] and delivered == []
    await asyncio.wait_for(durable.wait(), 3)
    # The same snapshot is written again; nobody was told before it succeeded.
    assert attempts == ["rows", "rows"] and delivered == ["done"]


def test_an_accounts_character_is_found_again_and_never_once_destroyed() -> None:
    world, _, _, alice = small_world()
    assert world.find_character(1) is alice
    assert world.find_character(1) is alice  # remembered
    world.destroy(alice)
    assert world.find_character(1) is None, "a destroyed character was still found"
    again = world.character_for(1, "Alice")
    assert again is not alice and world.find_character(1) is again
