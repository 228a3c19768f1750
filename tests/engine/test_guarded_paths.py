"""Engine paths that run type class code (entering, leaving, a handover) are guarded.

A type class that raises, even on attribute access, is reported to builders
with its file and line and never drops a player or keeps one out.
"""

from __future__ import annotations

import pytest

from engine.local import LocalGame, LocalPlayer

RAISING_CHARACTER = '''
from engine.api import Character as BaseCharacter


class Character(BaseCharacter):
    """A character whose code is broken in two ways."""

    def __getattr__(self, name: str) -> object:
        raise RuntimeError(f"no {name} here")

    @property
    def name(self) -> str:
        raise RuntimeError("nameless")

    @name.setter
    def name(self, value: str) -> None:
        raise RuntimeError("nameless")

    def at_post_move(self, source, by=None, quiet=False) -> None:
        raise RuntimeError("moving broke")
'''

RAISING_ROOM = '''
from engine.api import Room as BaseRoom


class Room(BaseRoom):
    """A room that cannot say who is in it."""

    def at_speech(self, speaker, text):
        raise RuntimeError("the room is deaf")

    def __getattr__(self, name: str) -> object:
        raise RuntimeError(f"no {name} in this room")

    @property
    def name(self) -> str:
        raise RuntimeError("a room with no name")

    @name.setter
    def name(self, value: str) -> None:
        raise RuntimeError("a room with no name")
'''


async def enter_new(local: LocalGame, name: str) -> tuple[LocalPlayer, str]:
    """A new account enters; the player, and the text up to their first prompt in the game."""
    player = await local.player(name)
    return player, await player.expect("\r\n> ")


@pytest.mark.game(files={"typeclasses/rooms.py": RAISING_ROOM})
async def test_a_room_class_that_raises_keeps_nobody_out(local: LocalGame) -> None:
    alice, text = await enter_new(local, "Alice")
    assert "[error] content/typeclasses/rooms.py:" in text
    bob, _ = await enter_new(local, "Bob")
    bob.send("say hi")
    await bob.expect("> ")
    alice.send("who")  # typed as Bob's connection drops
    bob.disconnect()
    await alice.expect("2 players online:")
    await alice.expect("Alice")


@pytest.mark.game(files={"typeclasses/characters.py": RAISING_CHARACTER})
async def test_a_character_class_that_raises_keeps_nobody_out(local: LocalGame) -> None:
    alice, _ = await enter_new(local, "Alice")  # the first account: an admin, told of errors
    bob, text = await enter_new(local, "Bob")
    # Bob is in (his look fails in content: the builders are told where).
    assert "That did not work; the builders have been told." in text
    await alice.expect("content/typeclasses/characters.py:")
    bob.send("say hello")
    await bob.expect("> ")
    alice.send("who")  # typed as Bob's connection drops
    bob.disconnect()  # leaving runs content too
    await alice.expect("players online")
    assert local.sessions.online() and len(local.sessions.sessions) >= 1
