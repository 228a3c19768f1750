"""From a typed line to a command run: the one road every way of playing takes.

The rule: a line becomes a command here and nowhere else.  ``start_line``
(and ``run_line``, which awaits it to the end) parses the line, resolves its
verb (exact name or alias, an exit of the room, a direction, a unique
prefix; permission: ``engine.commands.dispatch``), builds the ``Context`` and
runs the command through the guard (watchdog section, transaction, the one
line a player gets when it fails).  The play loop (``engine.play``), the game
in memory (``engine.local``), ``engine.testing.call_command`` and any new
transport call these two functions; none of them parses, resolves or builds a
``Context`` itself, so what one of them does with a line, all of them do.

The guard lives in a layer above this one (``engine.guard``): it comes in
as a ``CommandGuard``, which ``engine.guard.run.GuardedCommands`` meets.

A plain (not ``async``) command runs to the end inside ``start_line``, in
the caller's own task: no task and no trip through the event loop, which is
most of what a command costs under load (``docs/architecture.md``, "Where a
command's time goes").  An ``async`` command comes back as a coroutine to
await; it dispatches the line again when it starts, so its command class
and the content it uses come from the same side of a reload.
"""

from __future__ import annotations

import inspect
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Protocol

from engine.commands.base import Command, Context
from engine.commands.dispatch import parse, resolve
from engine.services import Connection

if TYPE_CHECKING:
    from engine.commands.registry import Registry
    from engine.services import GameServices
    from engine.world.objects import Character


class Typist(Connection, Protocol):
    """Who typed the line: a connection (``ctx.session``) and the character it plays.

    ``engine.net.session.Session`` in the game, ``engine.local``'s and
    ``engine.testing``'s recording sessions in process.  A connection that
    plays no character (not in the game yet, or taken over) runs nothing.
    """

    @property
    def character(self) -> Character | None: ...


class CommandGuard(Protocol):
    """Runs one command as content (``engine.guard.run.GuardedCommands``).

    Runs it now, up to what it returns to await, and returns that to await
    (or None): atomic, under the time budget, its failure told.
    """

    def start(self, command: Command, ctx: Context) -> Coroutine[Any, Any, None] | None: ...


def start_line(
    line: str,
    session: Typist,
    *,
    registry: Registry,
    services: GameServices,
    guard: CommandGuard,
) -> Coroutine[Any, Any, None] | None:
    """Run ``line`` as typed on ``session``: a plain command now; the rest to await, or None.

    The command runs as ``session.character``.  An unknown or forbidden
    verb is answered on the session; an empty line does nothing.
    """
    prepared = _prepare(line, session, registry, services)
    if prepared is None:
        return None
    command, ctx = prepared
    if inspect.iscoroutinefunction(command.run):
        return run_line(line, session, registry=registry, services=services, guard=guard)
    return guard.start(command, ctx)


async def run_line(
    line: str,
    session: Typist,
    *,
    registry: Registry,
    services: GameServices,
    guard: CommandGuard,
) -> None:
    """Run ``line`` as typed on ``session``, to the end (an ``async`` command's last await too)."""
    prepared = _prepare(line, session, registry, services)
    if prepared is None:
        return
    rest = guard.start(*prepared)
    if rest is not None:
        await rest


def _prepare(
    line: str, session: Typist, registry: Registry, services: GameServices
) -> tuple[Command, Context] | None:
    """The command ``line`` names and its context; None once the player was told why not."""
    character = session.character
    if character is None:
        return None
    verb, args = parse(line)
    if not verb:
        return None
    found = resolve(registry, verb, args, session.role, character.location)
    if found.command is None:
        session.send(found.error)
        return None
    ctx = Context(
        caller=character,
        session=session,
        game=services,
        verb=verb,
        args=found.args,
        switches=found.switches,
    )
    return found.command, ctx
