"""Playing: talking, moving, help, errors, takeovers.

In process (``LocalGame``), on the game's own play loop: what a player types
takes the road it takes over telnet, whose own tests are the login, limits
and protocol ones.
"""

from __future__ import annotations

import logging

import pytest

from engine.local import LocalGame, LocalPlayer

BOOM = """
    from engine.api import Command, Context


    class CmdBoom(Command):
        \"\"\"Always fails, to show what a broken command does.\"\"\"

        key = "boom"

        def run(self, ctx: Context) -> None:
            ctx.msg("About to fail.")
            raise RuntimeError("kaboom from content")
"""


async def two_players_here(local: LocalGame) -> tuple[LocalPlayer, LocalPlayer]:
    """Alice (the admin, first account) and Bob (a player), both in the square, in process."""
    alice = await local.player("Alice")
    bob = await local.player("Bob")
    text = await bob.expect("> ")
    assert "Here: Alice." in text
    await alice.expect("Bob has entered the game.")
    return alice, bob


async def test_players_in_a_room_hear_each_other(local: LocalGame) -> None:
    alice, bob = await two_players_here(local)
    await alice.command("say Hello, Bob!", 'You say, "Hello, Bob!"')
    await bob.expect('Alice says, "Hello, Bob!"')
    bob.send("'Hi there")
    await bob.expect('You say, "Hi there"')
    await alice.expect('Bob says, "Hi there"')
    bob.send(":waves.")
    await alice.expect("Bob waves.")


async def test_players_see_each_other_leave_and_arrive(local: LocalGame) -> None:
    alice, bob = await two_players_here(local)
    text = await bob.command("north", "Exits:")
    assert "The Quiet Library" in text
    await alice.expect("Bob leaves north.")
    alice.send("n")  # the short form of the exit
    text = await alice.expect("Exits:")
    assert "The Quiet Library" in text
    await alice.expect("Here: Bob.")
    await bob.expect("Alice arrives.")
    # Someone left behind no longer hears the room.
    await bob.command("go south", "The Village Square")
    await alice.command("say only the library hears this", "You say")
    await bob.command("look", "Exits:")
    assert "only the library hears this" not in bob.transcript


async def test_quit_tells_the_others(local: LocalGame) -> None:
    alice, bob = await two_players_here(local)
    bob.send("quit")
    assert "Goodbye. Come back soon!" in await bob.expect_closed()
    await alice.expect("Bob has left the game.")
    await alice.command("who", "1 player online")


async def test_a_returning_player_stands_where_they_left(local: LocalGame) -> None:
    alice, bob = await two_players_here(local)
    await bob.command("down", "A Damp Cellar")
    bob.send("quit")
    await bob.expect_closed()
    await alice.command("down", "A Damp Cellar")
    again = await local.player("Bob")
    text = await again.expect("\r\n> ")
    assert "A Damp Cellar" in text
    # Arrivals are told to the room they happen in: Alice is there now.
    await alice.expect("Bob has entered the game.")


async def test_help_lists_commands_and_explains_one(local: LocalGame) -> None:
    alice, bob = await two_players_here(local)
    listing = await bob.command("help", "Type 'help <command>' for more.")
    for key in ("look", "say", "go", "who", "quit", "help"):
        assert f"  {key} " in listing
    assert "Look around you" in listing
    # A player is not shown what they may not use; the admin is.
    assert "shutdown" not in listing
    assert "shutdown" in await alice.command("help", "Type 'help <command>' for more.")

    page = await bob.command("help look", "who else is here.")
    assert "Help on look (aliases: l):" in page
    assert "Usage: look" in page
    await bob.command("help nosuchthing", "There is no help on 'nosuchthing'.")


async def test_unknown_command_gets_a_hint(local: LocalGame) -> None:
    alice = await local.player("Alice")
    await alice.expect("\r\n> ")  # the look on entering
    await alice.command("xyzzy", "Unknown command 'xyzzy'. Type 'help' for a list of commands.")
    # The session goes on.
    await alice.command("look", "Exits:")


async def test_prefixes_resolve_in_play(local: LocalGame) -> None:
    alice = await local.player("Alice")
    await alice.expect("\r\n> ")  # the look on entering
    await alice.command("lo", "The Village Square")
    await alice.command("wh", "1 player online")
    await alice.command("de", "'de' could mean: describe, destroy. Type more letters.")
    await alice.command("s", "You can't go that way.")
    await alice.command("sh", "Type 'shutdown' in full to use it.")


async def test_a_player_cannot_shut_down_the_server(local: LocalGame) -> None:
    alice, bob = await two_players_here(local)
    await bob.command("shutdown now", "You are not allowed to use 'shutdown'.")
    await bob.command("reload", "You are not allowed to use 'reload'.")
    # Nothing happened: everyone is still served.
    await alice.command("who", "2 players online")
    await bob.command("look", "Exits:")
    assert "shutting down" not in alice.transcript + bob.transcript


@pytest.mark.game(files={"commands/boom.py": BOOM})
async def test_an_exception_in_a_command_gives_a_short_error(
    local: LocalGame, caplog: pytest.LogCaptureFixture
) -> None:
    alice, bob = await two_players_here(local)
    with caplog.at_level(logging.ERROR, logger="engine.guard.run"):
        text = await bob.command("boom", "That did not work; the builders have been told.")
    assert "About to fail." in text
    assert "kaboom" not in bob.transcript
    assert "Traceback" not in bob.transcript
    # The log has the traceback, pointing at the content file.
    assert "kaboom from content" in caplog.text
    assert "boom.py" in caplog.text
    # The session and the server go on.
    await bob.command("say still here", 'You say, "still here"')
    await alice.expect('Bob says, "still here"')


async def test_a_second_login_takes_the_character_over(local: LocalGame) -> None:
    alice, bob = await two_players_here(local)
    await bob.command("north", "The Quiet Library")
    await alice.expect("Bob leaves north.")

    second = await local.player("Bob")
    text = await second.expect("\r\n> ")
    assert "You take over your character from your other connection." in text
    # The character kept its place.
    assert "The Quiet Library" in text

    rest = await bob.expect_closed()
    assert "Your character has been taken over by a new connection. Goodbye." in rest

    await second.command("who", "2 players online")
    await second.command("south", "The Village Square")
    await alice.expect("Bob arrives.")
    await alice.command("say welcome back", 'You say, "welcome back"')
    await second.expect('Alice says, "welcome back"')
    # A takeover is not leaving and entering the game.
    assert "Bob has left the game." not in alice.transcript
    assert alice.transcript.count("Bob has entered the game.") == 1
    assert len(local.world.online()) == 2


async def test_arrivals_and_departures_are_told_to_their_room_only(local: LocalGame) -> None:
    alice, bob = await local.players("Alice", "Bob")
    await alice.command("north", "The Quiet Library")
    carol = await local.player("Carol")
    await bob.expect("Carol has entered the game.")
    carol.send("quit")
    await carol.expect_closed()
    await bob.expect("Carol has left the game.")
    assert "Carol" not in alice.transcript
    await alice.command("who", "2 players online:")
