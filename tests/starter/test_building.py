"""Building from inside the game (content/commands/building.py): dig, create, describe."""

from engine.local import LocalGame


async def test_dig_makes_a_room_one_can_walk_to(game: LocalGame) -> None:
    (alice,) = await game.players("Alice")  # the first player is an admin, who may build
    await alice.command("dig Rose Garden = west, east", "Dug room Rose Garden")
    await alice.command("west", "Rose Garden")
    await alice.command("describe here = Roses climb an old wall.", "Described Rose Garden")
    await alice.command("look", "Roses climb an old wall.")
    await alice.command("east", "The Village Square")


async def test_create_makes_a_thing_in_hand(game: LocalGame) -> None:
    (alice,) = await game.players("Alice")
    await alice.command("create glass jar;jar", "Created a glass jar")
    await alice.command("drop jar", "You drop a glass jar.")
    await alice.command("look", "You see: a stone statue, a glass jar.")


async def test_a_player_may_not_dig(game: LocalGame) -> None:
    _, bob = await game.players("Alice", "Bob")
    await bob.command("dig Den", "You are not allowed to use 'dig'.")
    await bob.command("create gem", "You are not allowed to use 'create'.")
