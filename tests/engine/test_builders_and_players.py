"""What builders and players meet every day: matching, aliases, acting on the right thing,
command words, names, messages, getting home.

Command logic runs in process (``LocalGame``); names and busy sessions go over sockets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from game_helpers import named, room_named

from engine.accounts.account import normalise_name, valid_name
from engine.local import LocalGame

if TYPE_CHECKING:
    from conftest import MakeClient

    from engine.app import Game
    from engine.world.objects import GameObject


# -- matching ------------------------------------------------------------------------


async def test_a_word_finds_any_word_of_a_name_by_its_start(local: LocalGame) -> None:
    (alice,) = await local.players("Alice")
    await alice.command("create brass lamp", "You hold it.")
    mine = named_in(local, "brass lamp", carried_by="Alice")
    for word in ("lamp", "bra", "brass l", "BRASS LAMP", "la"):
        await alice.command(
            f"set {word}/polish = 1", f"Set polish on brass lamp (#{mine.id}) to 1."
        )
    await alice.command("set lamp brass/polish = 2", "You find no 'lamp brass' anywhere.")


async def test_an_ordinal_picks_among_equals_and_ambiguity_lists_them(local: LocalGame) -> None:
    (alice,) = await local.players("Alice")
    await alice.command("create red box", "You hold it.")
    await alice.command("create blue box", "You hold it.")
    red, blue = named(local, "red box"), named(local, "blue box")
    await alice.command(
        "examine box",
        f"Which 'box' do you mean: red box (#{red.id}), blue box (#{blue.id})? "
        "Type 1.box, 2.box and so on to choose.",
    )
    await alice.command("examine 2.box", f"blue box (#{blue.id}), a thing")
    await alice.command("drop 1.box", "You drop a red box.")
    await alice.command("examine 3.box", "You find no '3.box' anywhere.")


async def test_aliases_from_semicolons_and_the_alias_command(local: LocalGame) -> None:
    (alice,) = await local.players("Alice")
    await alice.command("create glass jar;jar;bottle", "(aliases: jar, bottle). You hold it.")
    jar = named(local, "glass jar")
    assert jar.aliases == ["jar", "bottle"]
    await alice.command("drop bottle", "You drop a glass jar.")
    await alice.command(
        "alias jar = vessel, urn", f"glass jar (#{jar.id}) now also answers to vessel, urn."
    )
    assert jar.aliases == ["vessel", "urn"]
    await alice.command("alias urn", f"glass jar (#{jar.id}) has vessel, urn.")
    await alice.command("name urn = clay pot;pot", f"Renamed glass jar (#{jar.id}) to clay pot")
    assert (jar.name, jar.aliases) == ("clay pot", ["pot"])
    await alice.command("alias pot =", f"clay pot (#{jar.id}) has no aliases now.")
    assert jar.aliases == []
    await alice.command("dig Attic = ladder;l, down", "back here.")
    ladder = room_named(local, "The Village Square").find_exit("ladder")
    assert ladder is not None and ladder.aliases == ["l"]


async def test_a_builder_acts_on_what_is_near_and_is_told_where_a_far_one_was(
    local: LocalGame,
) -> None:
    (alice,) = await local.players("Alice")
    cellar_lamp = named(local, "brass lamp")
    await alice.command("create brass lamp", "You hold it.")
    mine = named_in(local, "brass lamp", carried_by="Alice")
    await alice.command("set lamp/lit = true", f"Set lit on brass lamp (#{mine.id}) to true.")
    assert mine.attributes["lit"] is True and "lit" not in cellar_lamp.attributes
    # Nothing near matches 'statue' once Alice is in the market: the far one is used, and said so.
    await alice.command("east", "The Market")
    statue = named(local, "stone statue")
    await alice.command(
        "set statue/weight = 9",
        f"Set weight on stone statue (#{statue.id}, in The Village Square) to 9.",
    )
    await alice.command(
        f"describe #{cellar_lamp.id} = Dusty.",
        f"Described brass lamp (#{cellar_lamp.id}, in A Damp Cellar).",
    )


async def test_destroying_a_players_character_or_a_carried_thing_needs_force(
    local: LocalGame,
) -> None:
    alice, bob = await local.players("Alice", "Bob")
    await alice.command("create gem", "You hold it.")
    await alice.command("give gem = Bob", "You give a gem to Bob.")
    gem = named(local, "gem")
    await alice.command(
        "destroy gem", "The gem is carried by Bob; type destroy/force gem to destroy it anyway."
    )
    assert gem.id in local.world.objects
    await alice.command("destroy/force gem", f"Destroyed 1 object: thing gem (#{gem.id}).")
    await bob.expect("A gem vanishes from your hands.")
    assert gem.id not in local.world.objects

    bob.send("quit")
    await bob.expect_closed()
    bob_char = named(local, "Bob")
    await alice.command(
        "destroy Bob", "Bob is a player's character; type destroy/force Bob to destroy it anyway."
    )
    assert bob_char.id in local.world.objects
    await alice.command("destroy/force Bob", f"Destroyed 1 object: character Bob (#{bob_char.id}).")
    # Destroy is typed in full: no prefix runs it.
    await alice.command("dest me", "Type 'destroy' in full to use it.")


async def test_teleport_tells_the_old_room_the_new_room_and_the_player_in_order(
    local: LocalGame,
) -> None:
    alice, bob, carol, dan = await local.players("Alice", "Bob", "Carol", "Dan")
    await dan.command("east", "The Market")
    await alice.command("teleport Bob = The Market", "Teleported Bob")
    await carol.expect("Bob vanishes.")
    told = await bob.expect("Empty stalls")
    assert told.index("Alice teleports you to The Market.") < told.index("The Market\r\nEmpty")
    await dan.expect("Bob appears.")
    assert "vanishes" not in dan.transcript and "appears" not in carol.transcript
    await alice.command("teleport statue = The Market", "Teleported stone statue")
    await carol.expect("The stone statue vanishes.")
    await dan.expect("The stone statue appears.")


async def test_home_takes_a_player_home_and_builders_set_homes(local: LocalGame) -> None:
    alice, bob = await local.players("Alice", "Bob")
    await bob.command("home", "You are home already.")
    await bob.command("down", "A Damp Cellar")
    await bob.command("home", "You go home to The Village Square.")
    await alice.expect("Bob arrives.")
    assert named(local, "Bob").location is named(local, "The Village Square")
    library = named(local, "The Quiet Library")
    await alice.command(
        "sethome Bob = The Quiet Library", f"Bob's home is now The Quiet Library (#{library.id})."
    )
    await bob.command("home", "You go home to The Quiet Library.")
    await alice.command("sethome Bob", "Bob's home is the start room again.")
    await bob.command("home", "You go home to The Village Square.")
    await bob.command("sethome Bob = here", "You are not allowed to use 'sethome'.")


async def test_examine_indents_multi_line_values_and_describe_takes_line_breaks(
    local: LocalGame,
) -> None:
    (alice,) = await local.players("Alice")
    await alice.command("describe statue = Old.|/Very old.|/Older than the square.", "Described")
    statue = named(local, "stone statue")
    assert statue.description == "Old.\nVery old.\nOlder than the square."
    text = await alice.command("examine statue", "contents:")
    assert (
        "  description: Old.\r\n               Very old.\r\n               Older than the square."
        in text
    )


async def test_short_forms_and_directions_keep_their_meaning(local: LocalGame) -> None:
    (alice,) = await local.players("Alice")
    for word in ("e", "u", "w"):
        await alice.command("look", "Exits:")
        if word == "e":
            await alice.command(word, "The Market")
            await alice.command("w", "The Village Square")
        else:
            await alice.command(word, "You can't go that way.")
    await alice.command("west", "You can't go west.")
    await alice.command("go west", "You can't go west.")
    await alice.command("q", "Type 'quit' in full to use it.")
    await alice.command("i", "You carry nothing.")
    await alice.command("l", "The Village Square")
    await alice.command("'hello", 'You say, "hello"')
    await alice.command(":waves.", "Alice waves.")


# -- names -----------------------------------------------------------------------------


def test_names_are_normalised_and_checked_with_a_clear_rule() -> None:
    assert normalise_name("  pat ") == "Pat"
    assert normalise_name("\uff30\uff41\uff54") == "Pat"  # full-width letters
    for good in ("Pat", "Jean-Luc", "O'Brien", "Al"):
        assert valid_name(good) is None, good
    rule = valid_name("x")
    assert rule is not None and "2 to 20 letters from A to Z" in rule
    for bad in ("P", "P" * 21, "Pat2", "Pat Smith", "-Pat", "Jean--Luc", "P\u0430t", "Pat\x07"):
        assert valid_name(bad) == rule, bad
    for word in ("Here", "Me", "Self", "All"):
        assert "means something else" in (valid_name(word) or ""), word
    assert "command" in (valid_name("Look", lambda w: w == "look") or "")


async def test_a_name_is_checked_at_creation_over_telnet(
    game: Game, make_client: MakeClient
) -> None:
    client = await make_client()
    await client.expect("known? ")
    client.send("look")
    await client.expect("'Look' is a word the game uses as a command; choose another name.")
    client.send("north")
    await client.expect("'North' is a word the game uses as a command")
    client.send("me")
    await client.expect("'Me' means something else in the game; choose another name.")
    client.send("P\u0430t")  # a Cyrillic a
    await client.expect("Names are 2 to 20 letters from A to Z")
    client.send("pat")
    await client.expect("(yes/no) ")
    client.send("yes")
    await client.login_new_password()
    pat = await make_client()
    await pat.expect("known? ")
    pat.send("PAT")
    await pat.expect("Password: ")


def named_in(local: LocalGame, name: str, carried_by: str) -> GameObject:
    """The object called ``name`` that ``carried_by`` holds."""
    holder = named(local, carried_by)
    return next(o for o in holder.contents if o.name == name)


async def test_who_shows_at_most_fifty_names_and_finds_by_the_start_of_a_name(
    local: LocalGame,
) -> None:
    names = [f"Pl{chr(97 + n // 26)}{chr(97 + n % 26)}" for n in range(60)]
    players = await local.players(*names)
    first = players[0]
    text = await first.command("who", "to find someone.")
    assert "60 players online:" in text
    assert "... and 10 more. Type 'who <start of a name>' to find someone." in text
    assert text.count("\r\n  Pl") == 50
    await first.command("who plb", "26 players online:")
    await first.command("who zz", "Nobody online has a name starting with 'zz'.")
