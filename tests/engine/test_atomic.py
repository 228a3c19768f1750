"""Atomic content: a command that fails changes nothing, in memory, in SQLite, or on screens.

The property test drives ``engine.world.model`` under ``engine.guard.guard`` alone:
random world operations ending in an exception leave the world exactly as
it was.  The integration tests play a real game over 127.0.0.1 (or in process,
``LocalGame``, where the database is not part of it), and one SIGKILLs a real
server process right after the failed command's answer.
"""

from __future__ import annotations

import asyncio
import gc
import sqlite3
import tempfile
import time
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from game_helpers import named, players, stored_rows, world_state
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.app import Game
from engine.guard.errors import ContentErrors
from engine.guard.guard import ContentFailed, ContentGuard
from engine.local import LocalGame
from engine.testing import ServerProcess
from engine.world import atomic, objectstore
from engine.world.model import World, WorldError
from engine.world.objects import GameObject
from engine.world.store import Store

if TYPE_CHECKING:
    from conftest import Connect, MakeClient

TRIPS = '''
import asyncio

from engine.api import Command, Context


class CmdTrip(Command):
    """Change the world in every way, then fail."""

    key = "trip"

    def run(self, ctx: Context) -> None:
        here = ctx.here
        ctx.msg("You set off.")
        ctx.to_room(f"{ctx.caller.name} sets off.")
        cellar = next(e for e in here.exits if e.name == "down").destination
        ctx.caller.location = cellar
        here.attributes["visited"] = True
        here.description = "Scorched."
        ctx.world.create("thing", "souvenir", location=ctx.caller)
        statue = next(t for t in here.things() if t.name == "stone statue")
        ctx.world.destroy(statue)
        ctx.to_all("Something happened.")
        raise RuntimeError("tripped")


class CmdStep(Command):
    """Two stretches: the first stands, the second fails."""

    key = "step"

    async def run(self, ctx: Context) -> None:
        ctx.here.attributes["first"] = 1
        ctx.to_room("First step.")
        await asyncio.sleep(0.01)
        ctx.here.attributes["second"] = 2
        ctx.to_room("Second step.")
        raise RuntimeError("stumbled")
'''


def square_state(game: Game) -> dict[str, Any]:
    square = named(game, "The Village Square")
    return {
        "description": square.description,
        "attributes": dict(square.attributes),
        "contents": [o.id for o in square.contents],
        "objects": sorted(game.world.objects),
    }


@pytest.mark.game(files={"commands/trips.py": TRIPS})
async def test_a_command_that_raises_after_changing_the_world_changes_nothing(
    game: Game, make_client: MakeClient
) -> None:
    alice, bob = await players(make_client, "Alice", "Bob")
    before = square_state(game)
    await game.durable.wait()
    text = await bob.command("trip", "That did not work; the builders have been told.")
    # The caller may see what it was told before the error; nobody else sees anything.
    assert "You set off." in text
    assert square_state(game) == before
    assert named(game, "Bob").location is named(game, "The Village Square")
    assert not [o for o in game.world.objects.values() if o.name == "souvenir"]
    assert named(game, "stone statue").location is named(game, "The Village Square")
    await alice.command("look", "You see: a stone statue.")
    await alice.command("look", "Here: Bob.")
    await game.durable.wait()
    # Builders are told; other players heard nothing of the failed trip.
    assert "[error] content/commands/trips.py:" in alice.transcript
    assert "sets off" not in alice.transcript and "Something happened" not in alice.transcript
    # Nothing of it reached SQLite either.
    with sqlite3.connect(game.config.db_path) as db:
        rows = db.execute("SELECT name, description, attributes FROM objects").fetchall()
    assert ("The Village Square", before["description"], "{}") in rows
    assert not [r for r in rows if r[0] == "souvenir"]
    assert [r for r in rows if r[0] == "stone statue"]


@pytest.mark.game(files={"commands/trips.py": TRIPS})
async def test_each_stretch_of_an_async_command_is_atomic_on_its_own(local: LocalGame) -> None:
    alice, bob = await local.players("Alice", "Bob")
    await bob.command("step", "That did not work; the builders have been told.")
    square = named(local, "The Village Square")
    assert dict(square.attributes) == {"first": 1}
    await alice.expect("Bob")  # the first stretch's message arrived ...
    await alice.command("look", "Exits:")
    assert "First step." in alice.transcript
    assert "Second step." not in alice.transcript  # ... the failed one's did not


async def test_a_failed_command_is_still_undone_after_kill_9_and_restart(
    content_dir: Path, tmp_path: Path, connect: Connect, watchdog: None
) -> None:
    (content_dir / "commands" / "trips.py").write_text(TRIPS.lstrip("\n"), encoding="utf-8")
    server = ServerProcess(tmp_path, ["--no-reload"])
    try:
        await asyncio.to_thread(server.start)
        bob = await connect(server.port)
        await bob.login_new("Bob")
        await bob.command("trip", "That did not work; the builders have been told.")
        assert server.process is not None
        server.process.kill()
        assert await asyncio.to_thread(server.wait) == -9

        await asyncio.to_thread(server.start)
        bob = await connect(server.port)
        text = await bob.login("Bob")
        assert "The Village Square" in text and "Scorched" not in text
        assert "stone statue" in text
        await bob.command("inventory", "You carry nothing")
    finally:
        server.stop()


# -- the property: any sequence of world operations, then an exception -----------------


def small_world(store: Store) -> World:
    world = World(store)
    square = world.create_room("Square", "A square.")
    cellar = world.create_room("Cellar", "Damp.")
    world.link(square, "down", cellar, back="up")
    world.create("thing", "lamp", location=square, attributes={"lit": False})
    world.create("thing", "box", location=cellar)
    world.create("character", "Pat", location=square, account_id=1)
    world.commit_now()
    return world


Op = tuple[str, int, int]
OPS = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "create",
                "move",
                "setattr",
                "delattr",
                "rename",
                "describe",
                "alias",
                "destroy",
                "start",
                "exit",
            ]
        ),
        st.integers(0, 50),
        st.integers(0, 50),
    ),
    max_size=12,
)


def apply(world: World, op: Op) -> None:
    kind, a, b = op
    objects = list(world.objects.values())
    if not objects:
        return
    first, second = objects[a % len(objects)], objects[b % len(objects)]
    rooms = world.rooms()
    try:
        if kind == "create":
            world.create("thing", f"made {a}", location=second, attributes={"n": b})
        elif kind == "move":
            first.move_to(second)  # the world's rules refuse loops and the like
        elif kind == "setattr":
            first.attributes[f"k{b % 3}"] = [a, {"b": b}]
        elif kind == "delattr":
            first.attributes.pop(f"k{b % 3}", None)
        elif kind == "rename":
            first.name = f"renamed {b}"
        elif kind == "describe":
            first.description = f"described {a} {b}"
        elif kind == "alias":
            first.aliases = [f"a{a}", f"b{b}"]
        elif kind == "destroy":
            world.destroy(first)
        elif kind == "start" and rooms:
            world.set_start(rooms[a % len(rooms)])
        elif kind == "exit" and len(rooms) > 1:
            world.open_exit(rooms[a % len(rooms)], f"way{b}", rooms[b % len(rooms)])
    except WorldError:
        pass  # a refused operation is part of the sequence too


@settings(max_examples=60, deadline=None)
@given(ops=OPS)
def test_any_sequence_of_world_operations_that_ends_in_an_exception_changes_nothing(
    ops: list[Op],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "db.sqlite3"
        store = Store(path)
        try:
            world = small_world(store)
            before, stored = world_state(world), stored_rows(path)
            guard = ContentGuard(Path(tmp) / "content")

            def content() -> None:
                for op in ops:
                    apply(world, op)
                raise RuntimeError("the end")

            with pytest.raises(ContentFailed):
                guard.call("'ops'", content)
            assert world_state(world) == before
            world.commit_now()
            assert stored_rows(path) == stored
        finally:
            store.close()


@settings(max_examples=30, deadline=None)
@given(ops=OPS)
def test_the_same_operations_without_an_exception_all_stand(ops: list[Op]) -> None:
    """The control: what a successful stretch does is kept, in memory and in SQLite."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "db.sqlite3"
        store = Store(path)
        try:
            world = small_world(store)
            plain = small_world(Store(":memory:"))
            guard = ContentGuard(Path(tmp) / "content")

            def content() -> None:
                for op in ops:
                    apply(world, op)

            guard.call("'ops'", content)
            for op in ops:
                apply(plain, op)
            assert world_state(world)[0] == world_state(plain)[0]
            world.commit_now()
            assert stored_rows(path) == sorted(
                objectstore.row_of(o) for o in world.objects.values()
            )
        finally:
            store.close()


def test_a_nested_transaction_rolls_back_alone() -> None:
    world = small_world(Store(":memory:"))
    lamp: GameObject = next(o for o in world.objects.values() if o.name == "lamp")
    guard = ContentGuard()

    def inner() -> None:
        lamp.attributes["inner"] = True
        raise ValueError("inner fails")

    def outer() -> None:
        lamp.attributes["outer"] = True
        with pytest.raises(ContentFailed):
            guard.call("'inner'", inner)

    guard.call("'outer'", outer)
    assert dict(lamp.attributes) == {"lit": False, "outer": True}


def test_a_nested_failure_that_is_not_caught_undoes_both_and_is_told_once() -> None:
    world = small_world(Store(":memory:"))
    lamp: GameObject = next(o for o in world.objects.values() if o.name == "lamp")
    told: list[str] = []
    guard = ContentGuard(errors=ContentErrors(told.append))

    def inner() -> None:
        lamp.attributes["inner"] = True
        raise ValueError("inner fails")

    def outer() -> None:
        lamp.attributes["outer"] = True
        guard.call("'inner'", inner)

    with pytest.raises(ContentFailed):
        guard.call("'outer'", outer)
    assert dict(lamp.attributes) == {"lit": False}
    assert len(told) == 1 and "ValueError: inner fails" in told[0]


# -- the cap on changes one stretch may make ------------------------------------------------

MASS = """
def mass(world, room, n):
    for i in range(n):
        world.create("thing", "pebble", location=room)


def stubborn(world, room, n):
    for i in range(n):
        try:
            world.create("thing", "pebble", location=room)
        except Exception:
            pass
"""


def content_functions(tmp: Path) -> dict[str, Any]:
    """MASS's functions, compiled as a file under ``tmp/content`` (errors name its lines)."""
    directory = tmp / "content"
    directory.mkdir(exist_ok=True)
    namespace: dict[str, Any] = {}
    exec(compile(MASS.lstrip("\n"), str(directory / "mass.py"), "exec"), namespace)
    return namespace


@pytest.mark.parametrize("function", ["mass", "stubborn"])
def test_a_stretch_past_the_cap_is_refused_inside_it_and_nothing_it_did_is_kept(
    tmp_path: Path, function: str
) -> None:
    path = tmp_path / "db.sqlite3"
    store = Store(path)
    try:
        world = small_world(store)
        square = next(r for r in world.rooms() if r.name == "Square")
        before, stored = world_state(world), stored_rows(path)
        told: list[str] = []
        guard = ContentGuard(
            tmp_path / "content", errors=ContentErrors(told.append), max_changes=50
        )
        run = content_functions(tmp_path)[function]
        with pytest.raises(ContentFailed) as failed:
            guard.call("'mass'", run, world, square, 200, context="running 'mass' for Pat")
        assert failed.value.message == (
            "This command changed too much at once (more than 50 changes); nothing it did was kept."
        )
        assert told == [
            f"content/mass.py:{3 if function == 'mass' else 9}, in {function}: changed too much "
            "at once (more than 50 changes); nothing it did was kept (running 'mass' for Pat)"
        ]
        assert world_state(world) == before
        world.commit_now()
        assert stored_rows(path) == stored
        # Under the cap the same stretch stands.
        guard.call("'mass'", run, world, square, 40)
        assert sum(o.name == "pebble" for o in world.objects.values()) == 40
    finally:
        store.close()


def test_a_nested_stretch_gets_the_room_its_parent_has_left() -> None:
    world = small_world(Store(":memory:"))
    square = next(r for r in world.rooms() if r.name == "Square")
    guard = ContentGuard(max_changes=50)

    def inner() -> None:
        for _ in range(30):
            world.create("thing", "inner pebble")

    def outer() -> None:
        for _ in range(30):
            world.create("thing", "outer pebble", location=square)
        with pytest.raises(ContentFailed, match="more than 50 changes"):
            guard.call("'inner'", inner)

    guard.call("'outer'", outer)
    names = [o.name for o in world.objects.values()]
    assert names.count("outer pebble") == 30 and "inner pebble" not in names


def test_what_an_undone_stretch_made_is_freed_at_once_with_its_undo_log(tmp_path: Path) -> None:
    """Reference counting frees it: no full collection needed (the game freezes survivors)."""
    world = small_world(Store(":memory:"))
    square = next(r for r in world.rooms() if r.name == "Square")
    guard = ContentGuard(max_changes=500)
    made: list[weakref.ref[GameObject]] = []
    logs: list[atomic.Transaction] = []

    def content(n: int) -> None:
        txn = atomic.current()
        assert txn is not None
        logs.append(txn)
        box = world.create("thing", "box", location=square)
        for i in range(n):
            made.append(weakref.ref(world.create("thing", f"pebble {i}", location=box)))
            box.attributes["count"] = i
        made.append(weakref.ref(box))

    def content_then_fail() -> None:
        content(100)
        raise ZeroDivisionError("division by zero")

    gc.disable()
    try:
        with pytest.raises(ContentFailed):
            guard.call("'mass'", content, 1000)  # refused at the cap
        with pytest.raises(ContentFailed):
            guard.call("'mass'", content_then_fail)  # raised
        assert made and all(ref() is None for ref in made), "an undone object is still alive"
        assert all(txn._records is None for txn in logs), "an undo log outlived its rollback"
    finally:
        gc.enable()


def test_undoing_thousands_of_creations_costs_a_fraction_of_making_them() -> None:
    world = small_world(Store(":memory:"))
    square = next(r for r in world.rooms() if r.name == "Square")
    ratios = []
    for _ in range(3):
        txn = atomic.begin()
        started = time.perf_counter()
        for _ in range(10_000):
            world.create("thing", "pebble", location=square)
        made = time.perf_counter() - started
        started = time.perf_counter()
        txn.rollback()
        ratios.append((time.perf_counter() - started) / made)
        assert len(square.contents) == 3
    assert min(ratios) < 0.3, ratios


@settings(max_examples=60, deadline=None)
@given(ops=OPS, cap=st.integers(1, 8))
def test_any_sequence_of_world_operations_past_the_cap_changes_nothing(
    ops: list[Op], cap: int
) -> None:
    """Refused at any change of any operation, the world is as it was: nothing was half done."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "db.sqlite3"
        store = Store(path)
        try:
            world = small_world(store)
            before, stored = world_state(world), stored_rows(path)
            guard = ContentGuard(Path(tmp) / "content", max_changes=cap)

            def content() -> None:
                for op in ops:
                    apply(world, op)

            try:
                guard.call("'ops'", content)
            except ContentFailed as failed:
                assert "changed too much at once" in failed.message
                assert world_state(world) == before
                world.commit_now()
                assert stored_rows(path) == stored
        finally:
            store.close()
