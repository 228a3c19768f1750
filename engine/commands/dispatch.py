"""From a typed line to the command it names: parse, resolve, check permission.

Resolution order, so that the words players rely on keep their meaning:

1. an exact key or alias of a command the caller may use (an alias of a
   command the caller may not use is as if it did not exist; its exact key
   is answered with "not allowed");
2. an exit of the caller's room (``north``, ``n``, ``gate``), run as ``go``;
3. a direction word with no such exit: ``You can't go west.`` (``You can't
   go that way.`` for the short forms), never a command that starts with it;
4. a unique prefix among the commands the caller may use, except commands
   that end a session or destroy (``prefix = False``): ``q`` does not quit.

A verb may carry switches: ``destroy/force`` runs ``destroy`` with the switch
``force`` (``ctx.switches``).  ``engine.commands.runner`` takes a typed line through
this to the command run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine.commands.base import Command
from engine.world.model import SHORT_DIRECTIONS
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


#: Direction words, long and short; a room's exits answer to them before any command.
DIRECTIONS: dict[str, str] = {
    **{long: long for long in SHORT_DIRECTIONS},
    **{short: long for long, short in SHORT_DIRECTIONS.items()},
}


@dataclass(frozen=True)
class Resolution:
    """What a verb resolved to: a command and its arguments, or a message why not."""

    command: Command | None = None
    args: str = ""
    error: str = ""
    #: The verb's switches (``destroy/force`` -> ``("force",)``).
    switches: tuple[str, ...] = ()


def resolve(
    registry: Registry, verb: str, args: str, role: Role, room: GameObject | None
) -> Resolution:
    """The command ``verb`` names for a caller of ``role`` standing in ``room``."""
    switches: tuple[str, ...] = ()
    if "/" in verb and registry.get(verb) is None:
        verb, *rest = verb.split("/")
        switches = tuple(s for s in rest if s)
    command = registry.get(verb)
    if command is not None:
        if command.permission <= role:
            return Resolution(command, args, switches=switches)
        if verb == command.key.lower():
            return Resolution(error=f"You are not allowed to use '{command.key}'.")
    # Exits are tried only in a room: content can put a character inside
    # something else, where an unknown word is just unknown.
    if isinstance(room, Room):
        exit_ = room.find_exit(verb)
        go = registry.get("go")
        if exit_ is not None and go is not None:
            return Resolution(go, exit_.name)
    if verb in DIRECTIONS:
        if verb in SHORT_DIRECTIONS:
            return Resolution(error=f"You can't go {verb}.")
        return Resolution(error="You can't go that way.")
    candidates = [c for c in registry.starting_with(verb) if c.permission <= role]
    if len(candidates) == 1 and candidates[0].prefix:
        return Resolution(candidates[0], args, switches=switches)
    if len(candidates) == 1:
        key = candidates[0].key
        return Resolution(error=f"Type '{key}' in full to use it.")
    if candidates:
        names = ", ".join(c.key for c in candidates)
        return Resolution(error=f"'{verb}' could mean: {names}. Type more letters.")
    return Resolution(error=f"Unknown command '{verb}'. Type 'help' for a list of commands.")
