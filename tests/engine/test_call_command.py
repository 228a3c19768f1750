"""``engine.testing.call_command``: a command run in process against a world in memory."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.commands.base import Command, Context
from engine.live.manager import declared_commands
from engine.testing import call_command
from engine.world.model import World
from engine.world.objects import Character, GameObject
from reloader import exocet


@pytest.fixture(scope="module")
def general() -> list[Command]:
    """The starter game's everyday commands, loaded as the engine loads them."""
    return declared_commands(exocet.loadNamed("content.commands.general", exocet.pep302Mapper))


def small_world() -> tuple[World, dict[str, GameObject]]:
    world = World()
    square = world.create_room("Square", "A square.")
    cellar = world.create_room("Cellar", "Damp.")
    world.link(square, "down", cellar, back="up")
    pat = world.create("character", "Pat", location=square, account_id=1)
    lee = world.create("character", "Lee", location=square, account_id=2)
    return world, {"square": square, "cellar": cellar, "pat": pat, "lee": lee}


async def test_look_say_and_go_as_players_would_see_them(general: list[Command]) -> None:
    world, at = small_world()
    pat = at["pat"]
    assert isinstance(pat, Character)
    sent = await call_command("look", pat, commands=general, world=world)
    assert sent["Pat"] == ["Square\nA square.\nExits: down.\nHere: Lee."]
    assert sent["Lee"] == []
    sent = await call_command("say hello", pat, commands=general, world=world)
    assert sent == {"Pat": ['You say, "hello"'], "Lee": ['Pat says, "hello"']}
    sent = await call_command("down", pat, commands=general, world=world)
    assert sent["Lee"] == ["Pat leaves down."]
    assert sent["Pat"][0].startswith("Cellar\nDamp.")
    assert pat.location is at["cellar"]


async def test_a_failing_command_changes_nothing_and_tells_no_one(general: list[Command]) -> None:
    class CmdTrip(Command):
        key = "trip"

        def run(self, ctx: Context) -> None:
            ctx.to_room("Pat trips.")
            ctx.caller.move_to(ctx.world.rooms()[1], by=ctx.caller)
            raise RuntimeError("tripped")

    world, at = small_world()
    pat = at["pat"]
    assert isinstance(pat, Character)
    sent = await call_command("trip", pat, commands=[*general, CmdTrip()], world=world)
    assert sent["Pat"] == ["That did not work; the builders have been told."]
    assert sent["Lee"] == []
    assert pat.location is at["square"]


SPIN = """
from engine.api import Command, Context


class CmdSpin(Command):
    key = "spin"

    def run(self, ctx: Context) -> None:
        while True: pass
"""


async def test_unknown_words_and_runaway_commands(
    general: list[Command], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    world, at = small_world()
    pat = at["pat"]
    assert isinstance(pat, Character)
    sent = await call_command("dance", pat, commands=general, world=world)
    assert sent["Pat"] == ["Unknown command 'dance'. Type 'help' for a list of commands."]
    # Code from a content directory is stopped past the budget, as in the game.
    content = tmp_path / "content"
    content.mkdir()
    namespace: dict[str, object] = {}
    exec(compile(SPIN, str(content / "spin.py"), "exec"), namespace)
    spin = namespace["CmdSpin"]()  # type: ignore[operator]
    sent = await call_command(
        "spin", pat, commands=[spin], world=world, budget=0.2, content_dir=content
    )
    assert sent["Pat"] == ["That did not work; the builders have been told."]
    # Where it stopped is for builders and the log, never for the player.
    assert "Stopped 'spin' after 0.2 s: content/spin.py:9, in run" in caplog.text
