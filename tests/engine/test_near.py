"""Players see what is near: ``#id`` reaches anything only for builders; ``who`` shows names."""

from __future__ import annotations

from game_helpers import named

from engine.local import LocalGame


async def test_a_player_reaches_only_what_is_near_by_id_and_a_builder_anything(
    local: LocalGame,
) -> None:
    alice, bob = await local.players("Alice", "Bob")  # Alice: the admin
    square = named(local, "The Village Square")
    statue = named(local, "stone statue")
    await bob.command("down", "Exits: up.\r\n> ")
    reply = await bob.command(f"look #{square.id}", "\r\n> ")
    assert f"You find no '#{square.id}' here." in reply
    assert "Here:" not in reply and "Alice" not in reply
    await bob.command(f"look #{statue.id}", f"You find no '#{statue.id}' here.")
    # What is near still answers to its id.
    cellar = named(local, "A Damp Cellar")
    await bob.command(f"look #{cellar.id}", "A Damp Cellar")
    # Builders reach anything.
    await alice.command(f"look #{named(local, 'A Damp Cellar').id}", "A Damp Cellar")


async def test_who_shows_players_names_and_staff_idle_times_and_roles(local: LocalGame) -> None:
    alice, bob = await local.players("Alice", "Bob")
    await bob.expect("\r\n> ")  # the look on entering
    text = await bob.command("who", "\r\n> ")
    assert "  Alice\r\n" in text and "  Bob\r\n" in text
    assert "idle" not in text and "[admin]" not in text
    text = await alice.command("who", "\r\n> ")
    assert "idle" in text and "[admin]" in text
