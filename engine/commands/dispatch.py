"""From a typed line to the command it names: parse, resolve, check permission.

Resolution order: an exact key or alias; then an exit of the caller's room
(``north``, ``n``, ``gate``), run as ``go <exit>``; then a unique prefix
among the commands the caller may use.  ``engine.content.run`` runs the
command found.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine.commands.base import Command
from engine.world.objects import GameObject, Room

if TYPE_CHECKING:
    from engine.accounts.account import Role
    from engine.commands.registry import Registry

log = logging.getLogger(__name__)

#: Single-character shortcuts MUD players expect: 'hello -> say hello.
SHORTCUTS = {"'": "say", '"': "say", ":": "emote"}


def parse(line: str) -> tuple[str, str]:
    """Split a line into a lower-case verb and the rest, keeping the rest's spacing."""
    line = line.strip()
    if not line:
        return "", ""
    if line[0] in SHORTCUTS:
        return SHORTCUTS[line[0]], line[1:].strip()
    verb, _, args = line.partition(" ")
    return verb.lower(), args.strip()


@dataclass(frozen=True)
class Resolution:
    """What a verb resolved to: a command and its arguments, or a message why not."""

    command: Command | None = None
    args: str = ""
    error: str = ""


def resolve(
    registry: Registry, verb: str, args: str, role: Role, room: GameObject | None
) -> Resolution:
    command = registry.get(verb)
    if command is not None:
        if command.permission > role:
            return Resolution(error=f"You are not allowed to use '{command.key}'.")
        return Resolution(command, args)
    # Exits are tried only in a room: content can put a character inside
    # something else, where an unknown word is just unknown.
    if isinstance(room, Room):
        exit_ = room.find_exit(verb)
        go = registry.get("go")
        if exit_ is not None and go is not None:
            return Resolution(go, exit_.name)
    candidates = [c for c in registry.starting_with(verb) if c.permission <= role]
    if len(candidates) == 1:
        return Resolution(candidates[0], args)
    if candidates:
        names = ", ".join(c.key for c in candidates)
        return Resolution(error=f"'{verb}' could mean: {names}. Type more letters.")
    return Resolution(error=f"Unknown command '{verb}'. Type 'help' for a list of commands.")
