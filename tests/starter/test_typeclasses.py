"""Type classes (content/typeclasses/): their hooks called directly, no command needed."""

from engine.local import LocalGame


async def test_the_lamp_is_lit_and_put_out_by_use(game: LocalGame) -> None:
    (pat,) = await game.players("Pat")
    lamp = next(o for o in game.world.objects.values() if o.name == "brass lamp")
    assert lamp.at_use(pat.character) == "You switch the brass lamp on."
    assert lamp.attributes["lit"] is True
    assert lamp.display_name() == "brass lamp (lit)"
    assert lamp.at_use(pat.character) == "You switch the brass lamp off."
    assert lamp.attributes["lit"] is False


async def test_the_statue_refuses_to_be_picked_up(game: LocalGame) -> None:
    (pat,) = await game.players("Pat")
    statue = next(o for o in game.world.objects.values() if o.name == "stone statue")
    assert statue.at_get(pat.character) == "The stone statue will not budge."
