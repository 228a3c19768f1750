"""Player commands over telnet: get, drop, give, inventory, look, use, chat and page."""

from __future__ import annotations

import json
import sqlite3
from typing import TYPE_CHECKING

from game_helpers import named, players

from engine.app import Game
from engine.local import LocalGame

if TYPE_CHECKING:
    from conftest import MakeClient


def stored_row(game: Game, obj_id: int) -> sqlite3.Row:
    """The object's row as it is in the database file now (a second connection)."""
    db = sqlite3.connect(game.config.db_path)
    db.row_factory = sqlite3.Row
    try:
        row: sqlite3.Row | None = db.execute(
            "SELECT * FROM objects WHERE id = ?", (obj_id,)
        ).fetchone()
    finally:
        db.close()
    assert row is not None, f"#{obj_id} is not in the database"
    return row


async def test_get_picks_up_things_only_and_asks_the_thing(local: LocalGame) -> None:
    alice, bob = await local.players("Alice", "Bob")
    statue = named(local, "stone statue")
    square = statue.location
    await bob.command("get statue", "The stone statue will not budge.")
    await bob.command("get here", "You cannot pick up The Village Square.")
    await bob.command("get north", "You cannot pick up an exit.")
    await bob.command("get Alice", "You cannot pick up Alice.")
    await bob.command("get", "Get what?")
    await bob.command("get unicorn", "You find no 'unicorn' here.")
    # A thing in another room is out of reach, even by its #id.
    lamp = named(local, "brass lamp")
    cellar = lamp.location
    await bob.command(f"get #{lamp.id}", f"You find no '#{lamp.id}' here.")
    assert statue.location is square and lamp.location is cellar
    assert named(local, "Alice").location is square
    assert "picks up" not in alice.transcript

    await bob.command("down", "A Damp Cellar")
    await bob.command("take lamp", "You pick up a brass lamp.")
    assert lamp.location is named(local, "Bob")


async def test_get_drop_and_inventory_move_things_and_tell_the_room(
    game: Game, make_client: MakeClient
) -> None:
    alice, bob = await players(make_client, "Alice", "Bob")
    for client in (alice, bob):
        await client.command("down", "A Damp Cellar")
    await alice.expect("Bob arrives.")
    lamp = named(game, "brass lamp")
    bob_char = named(game, "Bob")

    await bob.command("inventory", "You carry nothing.")
    await bob.command("get lamp", "You pick up a brass lamp.")
    # Durable on acknowledgement: the row is on disk when the player reads this.
    row = stored_row(game, lamp.id)
    assert row is not None and row["location"] == bob_char.id
    await alice.expect("Bob picks up a brass lamp.")
    await alice.command("look", "Exits:")
    await bob.command("i", "You carry: a brass lamp.")
    await alice.command("look Bob", "Carrying: a brass lamp.")

    await bob.command("drop lamp", "You drop a brass lamp.")
    await alice.expect("Bob drops a brass lamp.")
    assert lamp.location is bob_char.location
    assert bob_char.location is not None
    assert stored_row(game, lamp.id)["location"] == bob_char.location.id
    await bob.command("inventory", "You carry nothing.")
    await bob.command("drop lamp", "You find no 'lamp' you carry.")
    await bob.command("drop", "Drop what?")
    await alice.command("look", "You see: a brass lamp.")


async def test_drop_refuses_what_you_do_not_carry_even_by_id_or_here(local: LocalGame) -> None:
    (bob,) = await local.players("Bob")
    square = named(local, "The Village Square")
    statue = named(local, "stone statue")
    lamp = named(local, "brass lamp")
    cellar = lamp.location
    await bob.command("drop here", "You do not carry The Village Square.")
    await bob.command(f"drop #{lamp.id}", "You do not carry the brass lamp.")
    await bob.command("drop statue", "You find no 'statue' you carry.")
    assert square.location is None and square not in square.contents
    assert lamp.location is cellar and statue.location is square
    await bob.command("look", "Exits: north, east, down.")


async def test_give_both_spellings_with_receiver_and_bystander_messages(
    game: Game, make_client: MakeClient
) -> None:
    alice, bob, carol = await players(make_client, "Alice", "Bob", "Carol")
    await alice.command("create gem", "You hold it.")
    gem = named(game, "gem")

    await alice.command("give gem = Bob", "You give a gem to Bob.")
    await bob.expect("Alice gives you a gem.")
    await carol.expect("Alice gives a gem to Bob.")
    assert gem.location is named(game, "Bob")
    assert stored_row(game, gem.id)["location"] == named(game, "Bob").id

    await bob.command("give gem to Alice", "You give a gem to Alice.")
    await alice.expect("Bob gives you a gem.")
    await carol.expect("Bob gives a gem to Alice.")
    assert gem.location is named(game, "Alice")
    # Nobody hears the other spelling's message meant for someone else.
    assert "gives you gem" not in carol.transcript

    await alice.command("give gem = Alice", "You already have it.")
    await alice.command("give gem to me", "You already have it.")
    await alice.command("give gem = Zed", "You find no 'Zed' here.")
    await alice.command(f"give gem = #{gem.id}", f"You find no '#{gem.id}' here.")
    await alice.command("give statue = Bob", "You find no 'statue' you carry.")
    statue = named(game, "stone statue")
    await alice.command(f"give #{statue.id} = Bob", "You do not carry the stone statue.")
    await alice.command("give here = Bob", "You do not carry The Village Square.")
    await alice.command("give gem", "Usage: give <thing> = <character>")
    assert gem.location is named(game, "Alice")
    assert statue.location is named(game, "The Village Square")
    assert named(game, "Bob").contents == []

    # Someone in another room cannot be given anything.
    await bob.command("north", "The Quiet Library")
    await alice.command("give gem = Bob", "You find no 'Bob' here.")
    bob_id = named(game, "Bob").id
    await alice.command(f"give gem = #{bob_id}", f"You find no '#{bob_id}' here.")
    assert gem.location is named(game, "Alice")


async def test_look_at_things_characters_exits_me_and_here(local: LocalGame) -> None:
    alice, bob = await local.players("Alice", "Bob")
    text = await bob.command("look statue", "village founder.")
    assert text.endswith("stone statue\r\nA weathered statue of the village founder.")
    await bob.command("look Alice", "Alice looks like an adventurer.")
    await bob.command("look north", "The way north leads to The Quiet Library.")
    await bob.command("l n", "The way north leads to The Quiet Library.")
    await bob.command("look down", "The way down leads to A Damp Cellar.")
    await bob.command("look me", "Bob looks like an adventurer.")
    here = await bob.command("look here", "Exits: north, east, down.")
    assert "The Village Square\r\nCobblestones ring a dry fountain." in here
    assert "You see: a stone statue." in here
    await bob.command("look", "Here: Alice.")
    await bob.command("look unicorn", "You find no 'unicorn' here.")
    # A character whose player left stays, asleep.
    alice.send("quit")
    await alice.expect_closed()
    await bob.expect("Alice has left the game.")
    await bob.command("look Alice", "Alice is asleep.")


async def test_use_switches_the_lamp_and_the_state_is_stored(
    game: Game, make_client: MakeClient
) -> None:
    (bob,) = await players(make_client, "Bob")
    lamp = named(game, "brass lamp")
    await bob.command("down", "A Damp Cellar")
    await bob.command("use lamp", "You switch the brass lamp on.")
    assert lamp.attributes["lit"] is True
    assert json.loads(stored_row(game, lamp.id)["attributes"]) == {"lit": True}
    await bob.command("look", "You see: a brass lamp (lit).")
    await bob.command("get lamp", "You pick up a brass lamp (lit).")
    await bob.command("inventory", "You carry: a brass lamp (lit).")
    await bob.command("use lamp", "You switch the brass lamp off.")
    assert lamp.attributes["lit"] is False
    assert json.loads(stored_row(game, lamp.id)["attributes"]) == {"lit": False}
    await bob.command("inventory", "You carry: a brass lamp.")
    await bob.command("up", "The Village Square")
    await bob.command("use statue", "You cannot think of a way to use the stone statue.")
    await bob.command("use", "Use what?")
    await bob.command("use unicorn", "You find no 'unicorn' here.")
    # Nothing is used from afar by its #id.
    await bob.command("drop lamp", "You drop a brass lamp.")
    await bob.command("north", "The Quiet Library")
    await bob.command(f"use #{lamp.id}", f"You find no '#{lamp.id}' here.")
    assert lamp.attributes["lit"] is False


async def test_chat_is_heard_by_every_player_online_wherever_they_are(local: LocalGame) -> None:
    alice, bob, carol = await local.players("Alice", "Bob", "Carol")
    await bob.command("north", "The Quiet Library")
    await carol.command("down", "A Damp Cellar")
    alice.send("chat hello all")
    for client in (alice, bob, carol):
        await client.expect("[chat] Alice: hello all")
    bob.send("ooc from the library")
    for client in (alice, bob, carol):
        await client.expect("[chat] Bob: from the library")
    await carol.command("chat", "Chat what?")
    carol.send("quit")
    await carol.expect_closed()
    alice.send("chat after carol left")
    for client in (alice, bob):
        await client.expect("[chat] Alice: after carol left")
    assert "after carol left" not in carol.transcript


async def test_page_reaches_one_player_anywhere_and_not_the_absent(local: LocalGame) -> None:
    alice, bob, carol = await local.players("Alice", "Bob", "Carol")
    await bob.command("north", "The Quiet Library")
    await alice.command("page Bob = meet me at the fountain", "You page Bob: meet me at")
    await bob.expect("Alice pages: meet me at the fountain")
    await bob.command("tell alice = on my way", "You page Alice: on my way")
    await alice.expect("Bob pages: on my way")
    await carol.command("say sync", 'You say, "sync"')
    assert "pages:" not in carol.transcript and "meet me" not in carol.transcript

    await alice.command("page Nobody = hello", "Nobody called Nobody is online.")
    await alice.command("page Bob", "Usage: page <player> = <text>")
    bob.send("quit")
    await bob.expect_closed()
    await alice.command("who", "2 players online:")  # Alice and Carol
    await alice.command("page Bob = are you there?", "Nobody called Bob is online.")
