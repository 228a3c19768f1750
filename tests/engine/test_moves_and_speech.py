"""World rules live in the world: every move goes through ``move_to``; speech through hooks.

Unit tests of ``GameObject.move_to`` on a world in memory; the game in
process (``LocalGame``) with type classes that refuse a move or change speech.
"""

from __future__ import annotations

import re

import pytest
from game_helpers import named

from engine.local import LocalGame
from engine.world.model import World
from engine.world.objects import GameObject, Room, Thing, WorldError


def small_world() -> tuple[World, dict[str, GameObject]]:
    world = World()
    square = world.create_room("Square")
    cellar = world.create_room("Cellar")
    exit_ = world.open_exit(square, "down", cellar)
    box = world.create("thing", "box", location=square)
    lamp = world.create("thing", "lamp", location=box)
    pat = world.create("character", "Pat", location=square, account_id=1)
    return world, {
        "square": square, "cellar": cellar, "down": exit_, "box": box, "lamp": lamp, "pat": pat
    }  # fmt: skip


@pytest.mark.parametrize(
    ("what", "where", "problem"),
    [
        ("square", "cellar", "Rooms and exits stay where they are, and nothing goes into an exit."),
        ("down", "cellar", "Rooms and exits stay where they are, and nothing goes into an exit."),
        ("lamp", "down", "Rooms and exits stay where they are, and nothing goes into an exit."),
        ("box", "box", "box cannot go inside itself."),
        ("box", "lamp", "box cannot go inside itself."),
        ("pat", "box", "Characters can only be teleported into rooms."),
    ],
)
def test_the_world_refuses_what_its_rules_forbid(what: str, where: str, problem: str) -> None:
    _world, things = small_world()
    before = things[what].location
    with pytest.raises(WorldError, match=re.escape(problem)):
        things[what].move_to(things[where])
    assert things[what].location is before


def test_a_move_runs_the_hooks_in_order_and_a_hook_may_refuse() -> None:
    calls: list[tuple[str, object, object]] = []

    class Sticky(Thing):
        def at_pre_move(
            self, destination: GameObject | None, *, by: GameObject | None
        ) -> str | None:
            calls.append(("pre", destination, by))
            return "It is stuck." if self.attributes.get("stuck") else None

        def at_post_move(
            self, source: GameObject | None, *, by: GameObject | None, quiet: bool
        ) -> None:
            calls.append(("post", source, quiet))

    _world, things = small_world()
    object.__setattr__(things["box"], "__class__", Sticky)
    things["box"].move_to(things["pat"], by=things["pat"], quiet=True)
    assert things["box"].location is things["pat"]
    assert calls == [("pre", things["pat"], things["pat"]), ("post", things["square"], True)]
    things["box"].attributes["stuck"] = True
    with pytest.raises(WorldError, match=re.escape("It is stuck.")):
        things["box"].move_to(things["cellar"])
    assert things["box"].location is things["pat"]
    assert isinstance(things["cellar"], Room)


# -- in the game -----------------------------------------------------------------------

HOOKS = '''
from engine.api import Room as BaseRoom
from engine.api import Thing as BaseThing


class Anvil(BaseThing):
    """Refuses to be carried off by anyone."""

    def at_pre_move(self, destination, *, by):
        return "The anvil is far too heavy to move." if by is not None else None


class EchoingHall(BaseRoom):
    """Every word said here comes back."""

    def at_speech(self, speaker, text):
        return f"{text}... {text.split()[-1]}..."
'''


@pytest.mark.game(files={"typeclasses/hooks.py": HOOKS})
async def test_type_classes_refuse_moves_and_shape_speech(local: LocalGame) -> None:
    alice, bob = await local.players("Alice", "Bob")
    await alice.command("create anvil = content.typeclasses.hooks.Anvil", "anvil")
    await alice.command("drop anvil", "The anvil is far too heavy to move.")
    assert named(local, "anvil").location is named(local, "Alice")
    await alice.command("typeclass here = content.typeclasses.hooks.EchoingHall", "EchoingHall")
    await bob.command("say hello there", 'You say, "hello there... there..."')
    await alice.expect('Bob says, "hello there... there..."')
