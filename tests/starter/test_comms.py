"""Talking beyond the room (content/commands/comms.py): chat and page."""

from engine.local import LocalGame


async def test_chat_reaches_a_player_in_another_room(game: LocalGame) -> None:
    alice, bob = await game.players("Alice", "Bob")
    await bob.command("north", "The Quiet Library")
    await alice.command("chat Anyone for cards?", "[chat] Alice: Anyone for cards?")
    await bob.expect("[chat] Alice: Anyone for cards?")


async def test_page_reaches_only_the_one_paged(game: LocalGame) -> None:
    alice, bob, carol = await game.players("Alice", "Bob", "Carol")
    await alice.command("page Bob = Meet me in the cellar.", "You page Bob: Meet me in the cellar.")
    await bob.expect("Alice pages: Meet me in the cellar.")
    assert "pages" not in carol.transcript
    await alice.command("page Zed = Hello?", "Nobody called Zed is online.")
