"""The engine's public API: everything content may import from the engine.

Content imports from here only, so the engine's insides can change without
breaking builders' files::

    from engine.api import Command, Context, Role
    from engine.api import Thing  # base class of a thing type class
"""

from __future__ import annotations

from engine.accounts import Role
from engine.commands import Command, Context
from engine.objects import Character, Exit, GameObject, Room, Thing
from engine.services import GameServices
from engine.world import SHORT_DIRECTIONS, World, WorldError

__all__ = [
    "SHORT_DIRECTIONS",
    "Character",
    "Command",
    "Context",
    "Exit",
    "GameObject",
    "GameServices",
    "Role",
    "Room",
    "Thing",
    "World",
    "WorldError",
]
