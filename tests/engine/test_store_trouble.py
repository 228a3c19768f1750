"""Acknowledged means durable, also while the database cannot be written.

A property test drives ``engine.world.durability.DurableOutput`` alone through
random changes, failing commits and kill points; integration tests run a
real game whose commits fail (injected, then on a real full filesystem).
"""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from game_helpers import named, players, stored_rows, until, world_state
from hypothesis import given, settings
from hypothesis import strategies as st
from server_helpers import can_mount, fill, small_disk

from engine.app import Game
from engine.guard.guard import ContentGuard
from engine.world import objectstore
from engine.world.atomic import HeldOutput
from engine.world.durability import DurableOutput
from engine.world.model import World, WorldError
from engine.world.store import Store

if TYPE_CHECKING:
    from conftest import MakeClient, MakeGame

# -- the property ------------------------------------------------------------------------

STEPS = st.lists(st.sampled_from(["change", "fail", "heal", "run"]), min_size=1, max_size=40)


async def scenario(steps: list[str]) -> None:
    database: set[int] = set()
    pending: list[int] = []
    told: list[int] = []
    failing = False

    def take() -> list[int]:
        taken = list(pending)
        pending.clear()
        return taken

    def write(snapshot: list[int]) -> None:
        if failing:
            raise sqlite3.OperationalError("database or disk is full")
        database.update(snapshot)

    durable: DurableOutput[list[int]] = DurableOutput(take, write)
    number = 0
    for step in steps:
        if step == "change":
            number += 1
            pending.append(number)
            durable.changed()
            durable.after_commit(lambda n=number: told.append(n))  # type: ignore[misc]
        elif step == "fail":
            failing = True
        elif step == "heal":
            failing = False
        else:
            await asyncio.sleep(0.02)
        # A kill could come at any moment: whatever a player was told is stored.
        assert set(told) <= database, f"told {sorted(set(told) - database)} before storing them"
    failing = False
    await asyncio.wait_for(durable.wait(), 10)
    assert told == list(range(1, number + 1)), "everything is told, in order, once stored"
    assert set(told) <= database


@settings(max_examples=40, deadline=None)
@given(steps=STEPS)
def test_output_is_released_only_for_changes_that_reached_the_database(steps: list[str]) -> None:
    asyncio.run(scenario(steps))


# -- undoable batches: what a failed commit held is undone, never told -------------------


class Player:
    """A connection as the durability layer sees it: what it was sent, at once or held."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.sent: list[str] = []

    def deliver(self, action: Callable[[], None]) -> None:
        action()

    deliver_unchanged = deliver

    def send(self, text: str, newline: bool = True, *, held: bool = True) -> None:
        self.sent.append(text)

    def room_changed(self, room: object) -> None:
        return None


UNDO_STEPS = st.lists(
    st.sampled_from(["change", "change", "look", "fail", "heal", "run"]), min_size=1, max_size=40
)


async def undo_scenario(steps: list[str]) -> None:
    memory: set[int] = set()  # changes made in memory
    database: set[int] = set()
    pending: list[int] = []  # staged, not taken
    told: list[int] = []
    looks: list[bool] = []  # whether what each look showed was stored when it was shown
    undone: set[int] = set()
    failing = False
    player = Player("Pat")

    class Changes:
        def __init__(self, numbers: list[int]) -> None:
            self.numbers = numbers

        def undo(self) -> list[Player]:
            gone = set(self.numbers) | set(pending)
            memory.difference_update(gone)
            undone.update(gone)
            pending.clear()
            return [player] if gone else []

        def probe(self) -> None:
            if failing:
                raise OSError(28, "No space left on device")

    def take() -> Changes:
        taken = Changes(list(pending))
        pending.clear()
        return taken

    def write(changes: Changes) -> None:
        if failing:
            raise sqlite3.OperationalError("database or disk is full")
        database.update(changes.numbers)

    durable: DurableOutput[Changes] = DurableOutput(take, write)
    number = 0
    for step in steps:
        if step == "change" and durable.trouble is None:  # the guard refuses while troubled
            number += 1
            memory.add(number)
            pending.append(number)
            durable.changed()
            output = HeldOutput(player, lambda n=number: told.append(n), "text")  # type: ignore[misc]
            durable.after_commit(output)
        elif step == "look":
            seen = frozenset(memory)
            output = HeldOutput(player, lambda s=seen: looks.append(s <= database), "text")  # type: ignore[misc]
            durable.unless_troubled(output)
        elif step == "fail":
            failing = True
        elif step == "heal":
            failing = False
        else:
            await asyncio.sleep(0.02)
        # Whatever a player was told is stored, and nothing undone was ever told.
        assert set(told) <= database, f"told {sorted(set(told) - database)} before storing them"
        assert not set(told) & undone
        assert not memory & undone and not database & undone
    failing = False
    await asyncio.wait_for(durable.wait(), 10)
    await asyncio.wait_for(until(lambda: durable.trouble is None, timeout=10), 11)
    assert told == sorted(memory), "every change that stands is told, in order, once stored"
    assert database == memory
    assert all(looks), "a look showed a change before it was stored"
    if undone:
        assert REFUSAL_OF_ANY in " ".join(player.sent)


#: How the refusal starts, whatever the reason.
REFUSAL_OF_ANY = "The world cannot be saved right now:"


@settings(max_examples=40, deadline=None)
@given(steps=UNDO_STEPS)
def test_a_failed_commit_is_undone_and_refused_and_nothing_undone_is_ever_told(
    steps: list[str],
) -> None:
    asyncio.run(undo_scenario(steps))


def durable_world(path: Path) -> World:
    world = World(Store(path))
    square = world.create_room("Square", "A square.")
    cellar = world.create_room("Cellar", "Damp.")
    world.link(square, "down", cellar, back="up")
    world.create("thing", "lamp", location=square, attributes={"lit": False})
    world.create("thing", "box", location=cellar)
    world.create("character", "Pat", location=square, account_id=1)
    world.commit_now()
    return world


def operate(world: World, op: tuple[str, int, int]) -> None:
    kind, a, b = op
    objects = list(world.objects.values())
    first, second = objects[a % len(objects)], objects[b % len(objects)]
    rooms = world.rooms()
    try:
        if kind == "create":
            world.create("thing", f"made {a}", location=second, attributes={"n": b})
        elif kind == "move":
            first.move_to(second)
        elif kind == "setattr":
            first.attributes[f"k{b % 3}"] = [a, b]
        elif kind == "rename":
            first.name = f"renamed {b}"
        elif kind == "destroy":
            world.destroy(first)
        elif kind == "start":
            world.set_start(rooms[a % len(rooms)])
        elif kind == "exit" and len(rooms) > 1:
            world.open_exit(rooms[a % len(rooms)], f"way{b}", rooms[b % len(rooms)])
    except WorldError:
        pass


OP = st.tuples(
    st.sampled_from(["create", "move", "setattr", "rename", "destroy", "start", "exit"]),
    st.integers(0, 50),
    st.integers(0, 50),
)
STRETCHES = st.lists(st.lists(OP, min_size=1, max_size=5), max_size=4)


@settings(max_examples=60, deadline=None)
@given(taken=STRETCHES, since=STRETCHES, landed=st.booleans())
def test_undoing_a_batch_whose_write_failed_puts_the_world_back_as_the_disk_has_it(
    taken: list[list[tuple[str, int, int]]], since: list[list[tuple[str, int, int]]], landed: bool
) -> None:
    """Stretches committed in memory, some in the batch that fails, some staged after it.

    ``landed``: the failed write reached the disk after all (a commit whose
    sync failed); the probe writes the rows back as memory has them.
    """
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "db.sqlite3"
        world = durable_world(path)
        store = world.store
        assert store is not None
        try:
            before, rows = world_state(world), stored_rows(path)
            guard = ContentGuard(Path(tmp) / "content")
            alice, bob = Player("Alice"), Player("Bob")

            def stretch(ops: list[tuple[str, int, int]], caller: Player) -> None:
                def run() -> None:
                    for op in ops:
                        operate(world, op)

                # A Player is only what the durability layer uses of a connection.
                guard.call("'ops'", run, caller=caller)  # type: ignore[arg-type]

            for ops in taken:
                stretch(ops, alice)
            batch = world.take_snapshot()
            for ops in since:
                stretch(ops, bob)
            if landed:
                objectstore.write(store, batch)
            callers = batch.undo()  # its write failed
            assert callers is not None
            assert {c.name for c in callers} <= {"Alice", "Bob"}  # type: ignore[attr-defined]
            assert world_state(world) == before
            # Memory is what the disk holds: a shutdown now has nothing to write.
            assert not world.take_snapshot()
            batch.probe()
            assert stored_rows(path) == rows
            # The world goes on from there, in memory and on disk alike.
            for ops in taken:
                stretch(ops, alice)
            world.commit_now()
            assert stored_rows(path) == sorted(
                objectstore.row_of(o) for o in world.objects.values()
            )
        finally:
            store.close()


def test_a_batch_with_a_change_made_outside_content_is_not_undone(tmp_path: Path) -> None:
    world = durable_world(tmp_path / "db.sqlite3")
    square = world.rooms()[0]
    guard = ContentGuard(tmp_path / "content")
    guard.call("'dig'", lambda: world.create_room("Vault"), caller=Player("Alice"))  # type: ignore[arg-type]
    world.character_for(2, "Lee")  # the engine's own change: a first login
    state = world_state(world)
    batch = world.take_snapshot()
    assert batch.untracked
    assert batch.undo() is None  # written again until it succeeds, as before
    assert world_state(world) == state
    # Without it, the dig is undone, and Alice is the one to tell.
    world.commit_now()
    guard.call("'dig'", lambda: world.create_room("Attic"), caller=Player("Alice"))  # type: ignore[arg-type]
    square.description = "Changed by content."  # outside a stretch: untracked as well
    assert world.take_snapshot().undo() is None
    world.commit_now()
    guard.call("'dig'", lambda: world.create_room("Cave"), caller=Player("Alice"))  # type: ignore[arg-type]
    batch = world.take_snapshot()
    callers = batch.undo()
    assert [c.name for c in callers or []] == ["Alice"]  # type: ignore[attr-defined]
    assert "Cave" not in {o.name for o in world.objects.values()}
    assert world.store is not None
    world.store.close()


def test_the_character_someone_just_entered_the_game_with_is_not_undone(tmp_path: Path) -> None:
    """Entering runs as a stretch: undone, the session would play a character the world lost."""
    world = durable_world(tmp_path / "db.sqlite3")
    guard = ContentGuard(tmp_path / "content")
    lee = Player("Lee")

    def enter() -> None:
        character = world.character_for(2, "Lee")  # a first login makes the character
        object.__setattr__(character, "session", lee)

    guard.call("entering the game", enter, caller=lee)  # type: ignore[arg-type]
    guard.call("'dig'", lambda: world.create_room("Vault"), caller=Player("Alice"))  # type: ignore[arg-type]
    state = world_state(world)
    batch = world.take_snapshot()
    assert batch.undo() is None  # written again until it succeeds, as before
    assert world_state(world) == state
    # Once it is stored, what the player does later is undone as anyone's.
    world.commit_now()
    lee_character = world.find_character(2)
    assert lee_character is not None
    square = lee_character.location
    guard.call("'north'", lambda: lee_character.move_to(world.rooms()[1]), caller=lee)  # type: ignore[arg-type]
    assert world.take_snapshot().undo() == [lee]
    assert lee_character.location is square
    assert world.store is not None
    world.store.close()


# -- a game whose database fails ----------------------------------------------------------

#: What a player whose change is refused, or undone, because saving fails is told.
REFUSAL = "The world cannot be saved right now: disk full. Nothing was changed."


def stored(db_path: Path, sql: str, *args: object) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db_path) as db:
        return db.execute(sql, args).fetchall()


async def settled(game: Game) -> None:
    """Until every change staged so far is committed and no output waits."""
    await until(
        lambda: game.durable.committed == game.durable.staged and not game.durable._held,
        "the game's changes committed",
    )


@pytest.mark.game()
async def test_while_saving_fails_changes_are_refused_and_everything_else_flows(
    game: Game, make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, bob = await players(make_client, "Alice", "Bob")
    await settled(game)
    real_write = objectstore.write
    broken = {"on": True}

    def failing_write(store: object, snap: objectstore.Snapshot) -> None:
        if broken["on"]:
            raise sqlite3.OperationalError("database or disk is full")
        real_write(store, snap)  # type: ignore[arg-type]

    monkeypatch.setattr(objectstore, "write", failing_write)
    # The first change meets the failure: it is undone, and Bob is told so at
    # once instead of waiting for the disk; builders are told why.
    bob.send("down")
    await bob.expect(REFUSAL, timeout=2)
    await alice.expect("[world] Saving the world fails: disk full.")
    assert named(game, "Bob").location is named(game, "The Village Square")
    assert "A Damp Cellar" not in bob.transcript
    await bob.command("look", "The Village Square", timeout=1)
    # Changes are refused at once from now on; what changes nothing flows.
    await alice.command("dig Vault", REFUSAL)
    await alice.command("look", "Exits:")
    await alice.command("say hello", 'You say, "hello"')
    await alice.command("who", "online:")
    assert not [o for o in game.world.objects.values() if o.name == "Vault"]
    # It recovers by itself; the undone move never reached the database.
    broken["on"] = False
    await alice.expect("[world] Saving the world works again.", timeout=5)
    await settled(game)
    square = named(game, "The Village Square").id
    assert stored(game.config.db_path, "SELECT location FROM objects WHERE name = 'Bob'") == [
        (square,)
    ]
    await bob.command("down", "A Damp Cellar")
    await alice.command("dig Vault", "Dug room Vault")


@pytest.mark.skipif(not can_mount(), reason="mounting a tmpfs needs root")
async def test_a_real_full_disk_refuses_changes_loses_nothing_and_recovers(
    make_game: MakeGame, tmp_path: Path
) -> None:
    with small_disk(tmp_path) as disk:
        game = await make_game(db_path=disk / "db.sqlite3")
        client = await _connect(game)
        await client.login_new("Alice")
        fill(disk)
        answered = []
        for n in range(40):  # enough pages to need more room than is left
            client.send(f"set here/n{n} = {'x' * 2000}")
            text = await client.expect("\r\n", timeout=3)
            if REFUSAL in text:
                break  # this change met the full disk: undone, and refused at once
            answered.append(n)
            await client.expect("> ")
        else:
            raise AssertionError("the disk never filled")
        await client.command("set here/more = 1", REFUSAL)
        await client.command("look", "Exits:")
        (disk / "filler").unlink()
        await client.expect("[world] Saving the world works again.", timeout=5)
        await settled(game)
        ((attributes,),) = stored(
            disk / "db.sqlite3", "SELECT attributes FROM objects WHERE name = 'The Village Square'"
        )
        # Every change that was answered is in the database; the one that met
        # the full disk was undone, in memory too, and so was the refused one.
        for n in answered:
            assert f'"n{n}"' in attributes, n
        met = len(answered)
        for name in (f"n{met}", "more"):
            assert f'"{name}"' not in attributes
            assert name not in named(game, "The Village Square").attributes
        assert f"Set n{met} on" not in client.transcript  # its answer was dropped
        assert "Set more on" not in client.transcript  # a refused command says only that
        await game.close()


@pytest.mark.skipif(not can_mount(), reason="mounting a tmpfs needs root")
async def test_a_dig_that_meets_a_full_disk_is_undone_and_refused_and_nobody_waits(
    make_game: MakeGame, tmp_path: Path
) -> None:
    with small_disk(tmp_path) as disk:
        db_path = disk / "db.sqlite3"
        game = await make_game(db_path=db_path)
        alice = await _connect(game)
        await alice.login_new("Alice")  # the first account: an admin, who may dig
        bob = await _connect(game)
        await bob.login_new("Bob")
        await alice.expect("Bob has entered the game.")
        await settled(game)
        # Empty the write-ahead log: room left in it from earlier commits would
        # take a small commit even on a full disk.
        game.store.read(lambda db: db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall())
        filler = fill(disk)

        started = time.monotonic()
        alice.send("dig Vault = west, east")
        await alice.expect(REFUSAL, timeout=2)
        refused_after = time.monotonic() - started
        await alice.expect("> ", timeout=1)  # the prompt that followed the dig
        await alice.expect("[world] Saving the world fails: disk full.", timeout=1)
        assert refused_after < 2
        assert "Dug room" not in alice.transcript
        # The game answers at once; the room and its exits are gone from memory.
        started = time.monotonic()
        await alice.command("look", "Exits: north, east, down.", timeout=1)
        assert time.monotonic() - started < 0.5
        assert not [o for o in game.world.objects.values() if o.name == "Vault"]
        await bob.command("west", "You can't go west.", timeout=1)
        # Changes are refused at once while the disk is full, as before.
        await alice.command("dig Vault = west, east", REFUSAL, timeout=1)

        filler.unlink()
        await alice.expect("[world] Saving the world works again.", timeout=5)
        await alice.command("dig Attic = west, east", "Dug room Attic")
        await bob.command("west", "Attic")
        await settled(game)
        names = {name for (name,) in stored(db_path, "SELECT name FROM objects")}
        assert "Attic" in names and "Vault" not in names
        await game.close()

        # After a restart the database decides: the attic stands, the vault never was.
        again = await make_game(db_path=db_path)
        names = {o.name for o in again.world.objects.values()}
        assert "Attic" in names and "Vault" not in names
        await again.close()


async def _connect(game: Game):  # type: ignore[no-untyped-def]
    from conftest import Client

    return await Client.connect(game.port)
