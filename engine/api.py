"""The engine's public API: everything content may import from the engine.

Content imports from here only, so the engine's insides can change without
breaking builders' files::

    from engine.api import Command, Context, Role
    from engine.api import Thing  # base class of a thing type class

A privileged act (a role granted, a player teleported, something destroyed)
is logged with ``audit`` once it has happened; ``engine.audit`` lists them.
"""

from __future__ import annotations

from engine.accounts.account import Role
from engine.audit import audit
from engine.commands.base import Command, Context
from engine.services import CommandInfo, GameServices
from engine.world.grammar import definite, indefinite, join_names, plural, possessive
from engine.world.model import SHORT_DIRECTIONS, World, WorldError
from engine.world.objects import Character, Exit, GameObject, Room, Thing

__all__ = [
    "SHORT_DIRECTIONS",
    "Character",
    "Command",
    "CommandInfo",
    "Context",
    "Exit",
    "GameObject",
    "GameServices",
    "Role",
    "Room",
    "Thing",
    "World",
    "WorldError",
    "audit",
    "definite",
    "indefinite",
    "join_names",
    "plural",
    "possessive",
]
