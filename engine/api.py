"""The engine's public API: everything content may import from the engine.

Content imports from here only, so the engine's insides can change without
breaking builders' files::

    from engine.api import Command, Context, Role
"""

from __future__ import annotations

from engine.accounts import Role
from engine.commands import Command, Context
from engine.world import SHORT_DIRECTIONS, Character, Exit, Room, World, WorldError

__all__ = [
    "SHORT_DIRECTIONS",
    "Character",
    "Command",
    "Context",
    "Exit",
    "Role",
    "Room",
    "World",
    "WorldError",
]
