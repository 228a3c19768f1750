"""Building from inside the game, and who may do it: in process (``LocalGame``), and over
telnet where the database or the accounts are part of it.

Alice is the first account, so an admin (and a builder); Bob is a player.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from game_helpers import named, players, room_named

from engine.app import Game
from engine.local import LocalGame, LocalPlayer

if TYPE_CHECKING:
    from conftest import Client, MakeClient


def stored_ids(game: Game) -> set[int]:
    db = sqlite3.connect(game.config.db_path)
    try:
        return {row[0] for row in db.execute("SELECT id FROM objects")}
    finally:
        db.close()


def lines(text: str) -> list[str]:
    return text.replace("\r\n", "\n").split("\n")


async def reply(client: Client | LocalPlayer, line: str, end: str) -> list[str]:
    """The lines of the answer to ``line``, whose last line contains ``end``.

    Everything up to the prompt before the answer is left out.
    """
    text = await client.command(line, end) + await client.expect("\r\n")
    answer: list[str] = []
    for row in lines(text):
        if row.startswith("> "):
            answer = []
            row = row[2:]
        answer.append(row)
    return [row for row in answer if row]


BUILDER_COMMANDS = [
    ("dig Den", "dig"),
    ("open gate = The Market", "open"),
    ("create gem", "create"),
    ("describe statue = Shiny.", "describe"),
    ("desc statue = Shiny.", "describe"),
    ("name statue = idol", "name"),
    ("destroy statue", "destroy"),
    ("teleport The Market", "teleport"),
    ("tel statue = The Market", "teleport"),
    ("examine statue", "examine"),
    ("ex me", "examine"),
    ("set statue/weight = 9", "set"),
    ("find statue", "find"),
    ("typeclass statue = content.typeclasses.things.Lamp", "typeclass"),
    ("reload", "reload"),
    ("grant Bob = admin", "grant"),
    ("accounts", "accounts"),
    ("shutdown now", "shutdown"),
]


async def test_a_player_is_refused_every_builder_and_admin_command(local: LocalGame) -> None:
    alice, bob = await local.players("Alice", "Bob")
    before = {o.id: (o.name, o.description, o.location, dict(o.attributes), o.typeclass)
              for o in local.world.objects.values()}  # fmt: skip
    for line, key in BUILDER_COMMANDS:
        verb = line.split()[0]
        if verb == key:
            await bob.command(line, f"You are not allowed to use '{key}'.")
        else:  # an alias of a command Bob may not use means nothing to him
            answer = await bob.command(line, "> ")
            assert "not allowed" not in answer, line
    after = {o.id: (o.name, o.description, o.location, dict(o.attributes), o.typeclass)
             for o in local.world.objects.values()}  # fmt: skip
    assert after == before
    assert "Dug" not in bob.transcript and "Created" not in bob.transcript
    await bob.command("help", "Type 'help <command>' for more.")
    assert "Building:" not in bob.transcript
    await alice.command("who", "2 players online")


async def test_dig_with_and_without_exits(game: Game, make_client: MakeClient) -> None:
    (alice,) = await players(make_client, "Alice")
    square = room_named(game, "The Village Square")
    answer = await reply(alice, "dig Closet", "Dug room Closet")
    closet = room_named(game, "Closet")
    assert answer == [f"Dug room Closet (#{closet.id})."]
    assert closet.exits == [] and len(square.exits) == 3
    assert closet.id in stored_ids(game)

    # The square has a north exit already: nothing is dug.
    rooms = len(game.world.rooms())
    await alice.command("dig Library = north, south", "The Village Square has an exit called north")
    assert len(game.world.rooms()) == rooms

    await alice.command("east", "The Market")
    answer = await reply(alice, "dig Library = north, south", "back here.")
    library = room_named(game, "Library")
    market = room_named(game, "The Market")
    north, south = market.find_exit("north"), library.find_exit("south")
    assert north is not None and south is not None
    assert answer == [
        f"Dug room Library (#{library.id}).",
        f"Opened exit north (#{north.id}) from here to Library.",
        f"Opened exit south (#{south.id}) from Library back here.",
    ]
    assert north.destination is library and south.destination is market
    assert north.aliases == ["n"] and south.aliases == ["s"]
    await alice.command("n", "Library")
    await alice.command("s", "The Market")
    await alice.command("dig Attic = up", f"Opened exit up (#{north.id + 3}) from here to Attic.")
    attic = room_named(game, "Attic")
    assert attic.exits == []
    await alice.command("dig", "Usage: dig <room>")


async def test_open_an_exit_to_a_room_by_name_or_id(local: LocalGame) -> None:
    (alice,) = await local.players("Alice")
    await alice.command("dig Closet", "Dug room Closet")
    closet = named(local, "Closet")
    square = room_named(local, "The Village Square")
    answer = await reply(alice, "open gate = Closet", "Closet (#")
    gate = square.find_exit("gate")
    assert gate is not None and gate.destination is closet
    assert answer == [f"Opened exit gate (#{gate.id}) from here to Closet (#{closet.id})."]
    await alice.command(
        "open gate = Closet", "Cannot open that exit: The Village Square has an exit called gate"
    )
    await alice.command("open door = Atlantis", "You find no 'Atlantis' in the world.")
    await alice.command("open door = stone statue", "You find no 'stone statue' in the world.")
    await alice.command("open door", "Usage: open <exit> = <room>")
    assert [e.name for e in square.exits] == ["north", "east", "down", "gate"]
    await alice.command("gate", "Closet")
    await alice.command(f"open back = #{square.id}", "from here to The Village Square")
    await alice.command("back", "The Village Square")


async def test_create_a_thing_with_or_without_a_type_class(
    game: Game, make_client: MakeClient
) -> None:
    (alice,) = await players(make_client, "Alice")
    text = await alice.command("create gem", "You hold it.")
    gem = named(game, "gem")
    assert text.endswith(
        f"Created a gem (#{gem.id}, content.typeclasses.things.Thing). You hold it."
    )
    assert gem.location is named(game, "Alice") and gem.kind == "thing"
    assert gem.id in stored_ids(game)

    await alice.command("create torch = content.typeclasses.things.Lamp", "You hold it.")
    await alice.command("use torch", "You switch the torch on.")

    count = len(game.world.objects)
    refusals = {
        "content.typeclasses.things.Nope": (
            "LookupError: content.typeclasses.things has no class Nope"
        ),
        "content.typeclasses.rooms.Room": (
            "it is not a Thing class (it must subclass engine.api.Thing)"
        ),
        "content.typeclasses.nosuch.Thing": (
            "LookupError: module content.typeclasses.nosuch is not loaded"
        ),
        "os.path.Thing": "LookupError: os.path.Thing is not inside content/",
    }
    for path, reason in refusals.items():
        await alice.command(f"create junk = {path}", f"Type class {path} cannot be used: {reason}")
    assert len(game.world.objects) == count
    await alice.command("create", "Usage: create <name>")


async def test_describe_and_name(local: LocalGame) -> None:
    alice, bob = await local.players("Alice", "Bob")
    statue = named(local, "stone statue")
    await alice.command(
        r"describe statue = Freshly scrubbed.\nIt gleams.",
        f"Described stone statue (#{statue.id}).",
    )
    assert statue.description == "Freshly scrubbed.\nIt gleams."
    await bob.command("look statue", "stone statue\r\nFreshly scrubbed.\r\nIt gleams.")
    await alice.command("desc here = A busy square.", "Described The Village Square")
    await bob.command("look", "The Village Square\r\nA busy square.")
    # Far away objects are found too.
    lamp = named(local, "brass lamp")
    await alice.command(
        "describe brass lamp = Polished.", f"Described brass lamp (#{lamp.id}, in A Damp Cellar)."
    )
    assert lamp.description == "Polished."
    await alice.command("describe statue", "Usage: describe <target> = <text>")

    await alice.command("name statue = marble idol", f"Renamed stone statue (#{statue.id}) to")
    assert statue.name == "marble idol" and statue.aliases == ["statue"]
    await bob.command("look", "You see: a marble idol.")
    await alice.command("name Bob = Robert", "Characters keep their account's name.")
    await alice.command("rename me = Queen", "Characters keep their account's name.")
    assert named(local, "Bob").name == "Bob" and named(local, "Alice").name == "Alice"
    await alice.command("name idol =", "Usage: name <target> = <new name>")


async def test_destroy_a_room_says_what_goes_with_it(game: Game, make_client: MakeClient) -> None:
    alice, bob = await players(make_client, "Alice", "Bob")
    await alice.command("dig Vault = west, east", "back here.")
    vault = room_named(game, "Vault")
    for thing in ("coin", "bag"):
        await alice.command(f"create {thing}", "You hold it.")
        await alice.command(f"teleport {thing} = Vault", f"to Vault (#{vault.id}).")
    await alice.command("create pearl", "You hold it.")
    await alice.command("teleport pearl = bag", "Teleported pearl")
    west = room_named(game, "The Village Square").find_exit("west")
    east = vault.find_exit("east")
    assert west is not None and east is not None
    coin, bag, pearl = named(game, "coin"), named(game, "bag"), named(game, "pearl")

    # Refused while a player is in it, and while the builder stands in it.
    await bob.command("west", "Vault")
    await alice.command("destroy Vault", "Vault has players in it (Bob); it is not destroyed.")
    await bob.command("east", "The Village Square")
    await alice.command("west", "Vault")
    await alice.command("destroy here", "You are standing in it; go elsewhere first.")
    await alice.command("east", "The Village Square")
    # A player who left the game does not keep it standing: they wake in the start room.
    await bob.command("west", "Vault")
    bob.send("quit")
    await bob.expect_closed()
    # Departures are told to the room (the Vault); the game's list shows it.
    await alice.command("who", "1 player online:")

    doomed = [vault, west, east, coin, bag, pearl]
    ids = {o.id for o in doomed}
    listed = ", ".join(f"{o.kind} {o.name} (#{o.id})" for o in doomed)
    answer = await reply(alice, "destroy Vault", f"(#{pearl.id}).")
    assert answer == [f"Destroyed 6 objects: {listed}."]
    assert not ids & set(game.world.objects)
    assert not ids & stored_ids(game)
    await alice.command("look", "Exits: north, east, down.")
    assert named(game, "Bob").location is named(game, "The Village Square")
    again = await make_client()
    assert "The Village Square" in await again.login("Bob")


async def test_destroy_refuses_the_start_room_and_characters(local: LocalGame) -> None:
    alice, bob = await local.players("Alice", "Bob")
    await bob.command("north", "The Quiet Library")
    await alice.command("east", "The Market")
    square = room_named(local, "The Village Square")
    await alice.command(
        "destroy The Village Square", "Not destroyed: the start room cannot be destroyed."
    )
    await alice.command(f"destroy #{square.id}", "Not destroyed: the start room")
    in_game = "is in the game now; a character is destroyed only while its player is away."
    await alice.command("destroy Bob", f"Bob {in_game}")
    await alice.command("destroy me", f"Alice {in_game}")
    await alice.command("destroy", "Usage: destroy <target>")
    assert square.id in local.world.objects and len(square.exits) == 3
    # A thing goes alone; an exit goes alone and only one way.
    await alice.command("create gem", "You hold it.")
    gem = named(local, "gem")
    await alice.command("destroy gem", f"Destroyed 1 object: thing gem (#{gem.id}).")
    west = room_named(local, "The Market").find_exit("west")
    assert west is not None
    await alice.command("destroy west", f"Destroyed 1 object: exit west (#{west.id}).")
    assert square.find_exit("east") is not None


async def test_teleport_things_people_and_yourself(local: LocalGame) -> None:
    alice, bob = await local.players("Alice", "Bob")
    carol, = await local.players("Carol")  # fmt: skip
    market = named(local, "The Market")
    bob_char = named(local, "Bob")
    await alice.command(
        "teleport Bob = The Market",
        f"Teleported Bob (#{bob_char.id}) to The Market (#{market.id}).",
    )
    await bob.expect("Alice teleports you to The Market.\r\nThe Market\r\nEmpty stalls")
    await carol.expect("Bob vanishes.")
    assert bob_char.location is market

    # A builder who teleports is told where, then sees the new place.
    await alice.command("teleport The Quiet Library", "You teleport to The Quiet Library.")
    await alice.expect("The Quiet Library\r\nShelves climb")
    assert named(local, "Alice").location is named(local, "The Quiet Library")
    await alice.command("tel Carol = here", "Teleported Carol")
    await carol.expect("The Quiet Library")

    await alice.command("create box", "You hold it.")
    await alice.command("create crate", "You hold it.")
    await alice.command("teleport crate = box", "Teleported crate")
    box, crate = named(local, "box"), named(local, "crate")
    assert crate.location is box
    await alice.command("teleport box = box", "box cannot go inside itself.")
    await alice.command(f"teleport box = #{crate.id}", "box cannot go inside itself.")
    await alice.command("teleport me = me", "Alice cannot go inside itself.")
    assert box.location is named(local, "Alice") and crate.location is box
    await alice.command("teleport box = south", "Rooms and exits stay where they are")
    await alice.command("teleport here = The Market", "Rooms and exits stay where they are")
    await alice.command("teleport Atlantis", "You find no 'Atlantis' anywhere.")
    # A character goes into rooms only, not into a thing or another character.
    carol_char = named(local, "Carol")
    library = carol_char.location
    await alice.command("teleport Carol = box", "Characters can only be teleported into rooms.")
    await alice.command("teleport me = Carol", "Characters can only be teleported into rooms.")
    assert carol_char.location is library and named(local, "Alice").location is library
    # Should content put one there anyway, the player is still served.
    carol_char.location = box
    await carol.command("xyzzy", "Unknown command 'xyzzy'.")
    await carol.command("look", "box")
    carol_char.location = library
    await alice.command("teleport box =", "Usage: teleport <target> = <place>")


async def test_examine_shows_every_field(local: LocalGame) -> None:
    alice, _bob = await local.players("Alice", "Bob")
    alice_char = named(local, "Alice")
    await alice.command("create torch = content.typeclasses.things.Lamp", "You hold it.")
    torch = named(local, "torch")
    await alice.command("set torch/colour = red", "Set colour on torch")
    await alice.command("set torch/weight = 3", "Set weight on torch")
    await alice.command("use torch", "You switch the torch on.")
    await alice.command("describe torch = Smoky.", "Described torch")
    torch.aliases = ["light", "flame"]
    answer = await reply(alice, "examine torch", "weight = 3")
    assert answer == [
        f"torch (#{torch.id}), a thing",
        "  type class:  content.typeclasses.things.Lamp (loaded)",
        "  aliases:     light, flame",
        f"  location:    Alice (#{alice_char.id})",
        "  description: Smoky.",
        "  contents:    -",
        "  attributes:",
        '    colour = "red"',
        "    lit = true",
        "    weight = 3",
    ]

    north = room_named(local, "The Village Square").find_exit("north")
    assert north is not None
    text = "\n".join(await reply(alice, "ex north", "attributes:  -"))
    assert text.startswith(f"north (#{north.id}), an exit\n")
    assert f"  destination: The Quiet Library (#{north.destination.id})" in text  # type: ignore[union-attr]
    assert "  type class:  content.typeclasses.exits.Exit (loaded)" in text
    assert "  aliases:     n" in text

    bob_char = named(local, "Bob")
    text = "\n".join(await reply(alice, "examine Bob", "attributes:  -"))
    assert f"  account:     {bob_char.account_id} (in the game)" in text
    assert "content.typeclasses.characters.Character (loaded)" in text
    text = "\n".join(await reply(alice, "examine", "attributes:  -"))  # here
    square = room_named(local, "The Village Square")
    assert text.startswith(f"The Village Square (#{square.id}), a room\n")
    assert f"Alice (#{alice_char.id})" in text and f"Bob (#{bob_char.id})" in text
    assert f"north (#{north.id})" in text
    await alice.command("examine #9999", "You find no '#9999' anywhere.")


async def test_set_reads_json_or_text_and_an_empty_value_removes(
    game: Game, make_client: MakeClient
) -> None:
    (alice,) = await players(make_client, "Alice")
    statue = named(game, "stone statue")
    ref = f"stone statue (#{statue.id})"
    await alice.command(
        "set statue/colour = grey granite", f'Set colour on {ref} to "grey granite".'
    )
    await alice.command("set statue/weight = 900", f"Set weight on {ref} to 900.")
    await alice.command('set statue/code = "42"', f'Set code on {ref} to "42".')
    await alice.command(
        "set statue/tags = [1, true, null]", f"Set tags on {ref} to [1, true, null]."
    )
    await alice.command('set statue/meta = {"a": 1}', f'Set meta on {ref} to {{"a": 1}}.')
    assert dict(statue.attributes) == {
        "colour": "grey granite", "weight": 900, "code": "42", "tags": [1, True, None],
        "meta": {"a": 1},
    }  # fmt: skip
    await alice.command("set statue/colour =", f"Removed colour from {ref}.")
    await alice.command("set statue/colour =", f"{ref} has no attribute colour.")
    assert "colour" not in statue.attributes
    db = sqlite3.connect(game.config.db_path)
    try:
        (stored,) = db.execute(
            "SELECT attributes FROM objects WHERE id = ?", (statue.id,)
        ).fetchone()
    finally:
        db.close()
    assert stored == statue.attributes.to_json()
    await alice.command("set statue = 5", "Usage: set <target>/<attribute> = <value>")
    await alice.command("set statue/ = 5", "Name the attribute")
    await alice.command("set unicorn/horn = 1", "You find no 'unicorn' anywhere.")
    await alice.command("set here/weather = rain", "Set weather on The Village Square")
    assert named(game, "The Village Square").attributes["weather"] == "rain"


async def test_find_lists_matches_anywhere(local: LocalGame) -> None:
    (alice,) = await local.players("Alice")
    lamp = named(local, "brass lamp")
    cellar = named(local, "A Damp Cellar")
    answer = await reply(alice, "find LAMP", "(in A Damp Cellar")
    assert answer == [
        "1 match:",
        f"  #{lamp.id:<5} thing     brass lamp  (in A Damp Cellar (#{cellar.id}))",
    ]
    answer = await reply(alice, "find the", "The Market  (in")
    # The Village Square, The Quiet Library, The Market
    assert answer[0] == "3 matches:" and len(answer) == 4
    await alice.command("find zzz", "Nothing in the world matches 'zzz'.")
    await alice.command("find", "Usage: find <text>")


async def test_typeclass_changes_behaviour_or_is_refused_with_the_reason(
    local: LocalGame,
) -> None:
    (alice,) = await local.players("Alice")
    statue = named(local, "stone statue")
    ref = f"stone statue (#{statue.id})"
    await alice.command("get statue", "The stone statue will not budge.")
    for path, reason in {
        "content.typeclasses.things.Nope": "content.typeclasses.things has no class Nope",
        "content.typeclasses.rooms.Room": "it is not a Thing class",
        "content.typeclasses.gone.Thing": "module content.typeclasses.gone is not loaded",
    }.items():
        await alice.command(f"typeclass statue = {path}", f"Type class {path} cannot be used: ")
        await alice.expect(reason)
    await alice.command(
        "typeclass here = content.typeclasses.things.Lamp", "it is not a Room class"
    )
    assert statue.typeclass == "content.typeclasses.things.Statue"
    await alice.command(
        "typeclass statue = content.typeclasses.things.Lamp",
        f"{ref} now runs content.typeclasses.things.Lamp.",
    )
    assert statue.typeclass == "content.typeclasses.things.Lamp"
    assert type(statue) is local.content.resolve_class("content.typeclasses.things.Lamp")
    await alice.command("use statue", "You switch the stone statue on.")
    await alice.command("get statue", "You pick up a stone statue")
    await alice.command("typeclass statue", "Usage: typeclass <target> = <dotted path>")


async def test_grant_gives_a_role_that_the_session_learns_at_once(
    game: Game, make_client: MakeClient
) -> None:
    alice, bob, carol = await players(make_client, "Alice", "Bob", "Carol")
    carol.send("quit")
    await carol.expect_closed()
    await bob.command("dig Den", "You are not allowed to use 'dig'.")
    await alice.command("grant Bob = builder", "Bob is now a builder.")
    await bob.expect("You are now a builder.")
    await bob.command("dig Den", "Dug room Den")
    await bob.command("grant Carol = builder", "You are not allowed to use 'grant'.")

    await alice.command("grant Nobody = builder", "There is no account Nobody.")
    await alice.command("grant Bob = wizard", "There is no role wizard")
    await alice.command("grant Alice = player", "You cannot take your own admin role away.")
    await alice.command("grant Bob", "Usage: grant <account> = player|builder|admin")

    rows = [line.split() for line in await reply(alice, "accounts", "Carol")]
    assert rows[0] == ["3", "accounts:"]
    assert rows[1:] == [
        ["Alice", "admin", "online"],
        ["Bob", "builder", "online"],
        ["Carol", "player"],
    ]
    # The role is stored, not only known to the session.
    account = await game.accounts.find("Bob")
    assert account is not None and str(account.role) == "builder"
    await alice.command("grant Bob = player", "Bob is now a player.")
    await bob.expect("You are now a player.")
    await bob.command("dig Den", "You are not allowed to use 'dig'.")


async def test_targets_by_name_alias_prefix_id_me_here_and_ambiguity(local: LocalGame) -> None:
    (alice,) = await local.players("Alice")
    statue = named(local, "stone statue")
    square = room_named(local, "The Village Square")
    alice_char = named(local, "Alice")
    for target in ("stone statue", "statue", "STATUE", "ston", f"#{statue.id}"):
        await alice.command(f"examine {target}", f"stone statue (#{statue.id}), a thing")
    await alice.command("examine me", f"Alice (#{alice_char.id}), a character")
    await alice.command("examine here", f"The Village Square (#{square.id}), a room")

    await alice.command("create box", "You hold it.")
    await alice.command("create box", "You hold it.")
    first, second = sorted(
        (o for o in local.world.objects.values() if o.name == "box"), key=lambda o: o.id
    )
    which = f"Which 'box' do you mean: box (#{first.id}), box (#{second.id})?"
    for line in ("look box", "examine box", "drop box", "destroy box", "set box/a = 1"):
        await alice.command(line, which)
    assert first.id in local.world.objects and second.id in local.world.objects
    assert "a" not in first.attributes and "a" not in second.attributes
    # An #id settles it.
    await alice.command(f"drop #{first.id}", "You drop a box.")
    assert first.location is square and second.location is alice_char
    await alice.command("get box", "You pick up a box.")  # only one lies here
    # What was picked up last is listed last.
    await alice.command("drop box", f"box (#{second.id}), box (#{first.id})?")
