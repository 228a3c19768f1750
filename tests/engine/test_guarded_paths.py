"""Engine paths that run type class code (entering, leaving, a handover) are guarded.

A type class that raises, even on attribute access, is reported to builders
with its file and line and never drops a player or keeps one out.
"""

from __future__ import annotations

import pytest
from conftest import PASSWORD, Client

from engine.app import Game

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


async def enter_new(client: Client, name: str) -> str:
    """Create an account and enter; the text up to the first prompt in the game."""
    await client.expect("By what name are you known? ")
    client.send(name)
    await client.expect("Create a new character? (yes/no) ")
    client.send("yes")
    await client.expect("Choose a password")
    client.send(PASSWORD)
    await client.expect("Type it again: ")
    client.send(PASSWORD)
    return await client.expect("\r\n> ")


@pytest.mark.game(files={"typeclasses/rooms.py": RAISING_ROOM})
async def test_a_room_class_that_raises_keeps_nobody_out(game: Game) -> None:
    alice = await Client.connect(game.port)
    text = await enter_new(alice, "Alice")
    assert "[error] content/typeclasses/rooms.py:" in text
    bob = await Client.connect(game.port)
    await enter_new(bob, "Bob")
    bob.send("say hi")
    await bob.expect("> ")
    bob.writer.close()
    alice.send("who")
    await alice.expect("2 players online:")
    await alice.expect("Alice")


@pytest.mark.game(files={"typeclasses/characters.py": RAISING_CHARACTER})
async def test_a_character_class_that_raises_keeps_nobody_out(game: Game) -> None:
    alice = await Client.connect(game.port)
    await enter_new(alice, "Alice")  # the first account: an admin, told of errors
    bob = await Client.connect(game.port)
    text = await enter_new(bob, "Bob")
    # Bob is in (his look fails in content: the builders are told where).
    assert "Something went wrong running 'look'" in text
    await alice.expect("content/typeclasses/characters.py:")
    bob.send("say hello")
    await bob.expect("> ")
    bob.writer.close()  # leaving runs content too
    alice.send("who")
    await alice.expect("players online")
    assert game.players.online() and len(game.players.sessions) >= 1
