"""Carrying things (content/commands/items.py): get, drop, give, inventory, use."""

from engine.local import LocalGame


async def test_get_the_lamp_in_the_cellar(game: LocalGame) -> None:
    (pat,) = await game.players("Pat")
    await pat.command("down", "You see: a brass lamp.")
    await pat.command("get lamp", "You pick up a brass lamp.")
    await pat.command("inventory", "You carry: a brass lamp.")


async def test_the_statue_will_not_budge(game: LocalGame) -> None:
    (pat,) = await game.players("Pat")
    await pat.command("get statue", "The stone statue will not budge.")
    await pat.command("inventory", "You carry nothing.")


async def test_use_lamp_lights_it(game: LocalGame) -> None:
    (pat,) = await game.players("Pat")
    await pat.command("down", "A Damp Cellar")
    await pat.command("get lamp", "You pick up a brass lamp.")
    await pat.command("use lamp", "You switch the brass lamp on.")
    await pat.command("i", "You carry: a brass lamp (lit).")


async def test_give_the_lamp_to_another_player(game: LocalGame) -> None:
    alice, bob = await game.players("Alice", "Bob")
    await alice.command("down", "A Damp Cellar")
    await bob.command("down", "Here: Alice.")
    await alice.command("get lamp", "You pick up a brass lamp.")
    await alice.command("give lamp to Bob", "You give a brass lamp to Bob.")
    await bob.expect("Alice gives you a brass lamp.")
    await bob.command("drop lamp", "You drop a brass lamp.")
    await alice.expect("Bob drops a brass lamp.")
