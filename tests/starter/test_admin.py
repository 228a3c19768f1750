"""Running the game (content/commands/admin.py): roles, granted and refused."""

from engine.local import LocalGame


async def test_grant_makes_a_builder(game: LocalGame) -> None:
    alice, bob = await game.players("Alice", "Bob")  # the first account is the admin
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
