"""Everyday commands (content/commands/general.py): look, moving, say, help."""

from engine.local import LocalGame
from engine.testing import call_command


async def test_look_shows_the_square(game: LocalGame) -> None:
    (pat,) = await game.players("Pat")
    seen = await pat.command("look", "Exits: north, east, down.")
    assert "The Village Square" in seen
    assert "You see: a stone statue." in seen


async def test_a_move_and_back(game: LocalGame) -> None:
    (pat,) = await game.players("Pat")
    await pat.command("north", "The Quiet Library")
    await pat.command("s", "The Village Square")
    await pat.command("west", "You can't go west.")


async def test_say_is_heard_by_another_player(game: LocalGame) -> None:
    alice, bob = await game.players("Alice", "Bob")
    await alice.command("say Hello, anyone?", 'You say, "Hello, anyone?"')
    await bob.expect('Alice says, "Hello, anyone?"')


async def test_help_lists_a_command_and_explains_it(game: LocalGame) -> None:
    (pat,) = await game.players("Pat")
    await pat.command("help", "look       Look around you, or at something or someone.")
    await pat.command("help home", "Go back to your home")


async def test_home_goes_back_to_the_square(game: LocalGame) -> None:
    (pat,) = await game.players("Pat")
    await pat.command("east", "The Market")
    await pat.command("home", "You go home to The Village Square.")


async def test_say_with_call_command(game: LocalGame) -> None:
    # call_command runs one line and returns what each character was sent, message by message.
    square = game.world.start_room
    pat = game.world.create("character", "Pat", location=square, account_id=1)
    game.world.create("character", "Lee", location=square, account_id=2)
    sent = await call_command("say Hi", pat, commands=game.registry.commands(), world=game.world)
    assert sent == {"Pat": ['You say, "Hi"'], "Lee": ['Pat says, "Hi"']}
