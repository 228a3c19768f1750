"""The starter world: built once, when the server starts.

Editing this file reloads the module but does not rebuild a running world
(world persistence and in-game building come in a later version).
"""

from engine.api import World


def build(world: World) -> None:
    """Create the rooms and exits of a new game."""
    world.add_room(
        "square",
        "The Village Square",
        "Cobblestones ring a dry fountain. A signpost points north to the library,\n"
        "east to the market and down a narrow stair to the cellar.",
    )
    world.add_room(
        "library",
        "The Quiet Library",
        "Shelves climb into the dark. Somebody has left a book open on a reading desk.",
    )
    world.add_room(
        "market",
        "The Market",
        "Empty stalls stand in rows, awaiting traders who have not arrived yet.",
    )
    world.add_room(
        "cellar",
        "A Damp Cellar",
        "Water drips somewhere. The stair leads back up to the square.",
    )
    world.link("square", "north", "library", back="south")
    world.link("square", "east", "market", back="west")
    world.link("square", "down", "cellar", back="up")
