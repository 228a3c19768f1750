"""Running the game (content/commands/admin.py): roles. Accounts live in the server's
database, which the in-memory game has not got, so grant is tested on a real server."""

from collections.abc import Awaitable, Callable

from engine.local import LocalGame
from engine.testing import MudClient


async def test_grant_makes_a_builder(connect: Callable[[str], Awaitable[MudClient]]) -> None:
    alice = await connect("Alice")  # the first account is the admin
    bob = await connect("Bob")
    await bob.command("dig Den", "You are not allowed to use 'dig'.")
    await alice.command("grant Bob = builder", "Bob is now a builder.")
    await bob.expect("You are now a builder.")
    await bob.command("dig Den", "Dug room Den")


async def test_a_player_cannot_grant(game: LocalGame) -> None:
    _, bob = await game.players("Alice", "Bob")
    await bob.command("grant Bob = admin", "You are not allowed to use 'grant'.")
    await bob.command("shutdown", "You are not allowed to use 'shutdown'.")
    help_text = await bob.command("help", "Type 'help <command>' for more.")
    assert "grant" not in help_text
