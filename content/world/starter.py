"""The starter world, created on the first start of an empty database.

It is never created again once the database holds a world: after that,
builders shape the world in the game (dig, describe, create ...).
"""

from engine.api import World


def build(world: World) -> None:
    """Create the rooms, exits and things of a new game."""
    square = world.create_room(
        "The Village Square",
        "Cobblestones ring a dry fountain. A signpost points north to the library,\n"
        "east to the market and down a narrow stair to the cellar.",
    )
    library = world.create_room(
        "The Quiet Library",
        "Shelves climb into the dark. Somebody has left a book open on a reading desk.",
    )
    market = world.create_room(
        "The Market",
        "Empty stalls stand in rows, awaiting traders who have not arrived yet.",
    )
    cellar = world.create_room(
        "A Damp Cellar",
        "Water drips somewhere. The stair leads back up to the square.",
    )
    world.set_start(square)
    world.link(square, "north", library, back="south")
    world.link(square, "east", market, back="west")
    world.link(square, "down", cellar, back="up")
    world.create(
        "thing",
        "brass lamp",
        aliases=("lamp",),
        location=cellar,
        description="A dented brass lamp. It might still work.",
        typeclass="content.typeclasses.things.Lamp",
    )
    world.create(
        "thing",
        "stone statue",
        aliases=("statue",),
        location=square,
        description="A weathered statue of the village founder.",
        typeclass="content.typeclasses.things.Statue",
    )
