"""Running a command: content code, under the guard like all content.

A command that raises or is stopped changes nothing (see
``engine.guard.guard``); the failure is logged with its traceback and told
to builders, the player gets a short line, and the session goes on.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Coroutine
from typing import Any

from engine.commands.base import Command, Context
from engine.guard.guard import ContentFailed, ContentGuard


async def run_command(command: Command, ctx: Context, guard: ContentGuard | None = None) -> None:
    """Run one command as content: atomic, under the time budget, failures told.

    A command that raises or is stopped changes nothing (see
    ``engine.guard.guard``); the caller gets one line saying so.
    """
    rest = start_command(command, ctx, guard)
    if rest is not None:
        await rest


def start_command(
    command: Command, ctx: Context, guard: ContentGuard | None = None
) -> Coroutine[Any, Any, None] | None:
    """Run a command now, up to what it returns to await; return that to await, or None.

    Most commands are plain functions: they run to the end here, with no
    task and no trip through the event loop, which is most of what a
    command costs under load (see docs/running.md, "How many players one
    process holds").  An ``async`` command's coroutine comes back unstarted (the
    play loop gives those a task of their own, see ``PlayLoop.start``).
    """
    guard = guard if guard is not None else _PLAIN
    label = f"'{command.key}'"
    context = f"running '{command.key}' for {_player_name(ctx)}"
    try:
        result = guard.step(label, ctx.session, context, command.run, ctx)
    except ContentFailed as failure:
        ctx.msg(failure.message)
        return None
    if result is not None and inspect.isawaitable(result):
        return _finish(result, ctx, guard, label, context)
    return None


def _player_name(ctx: Context) -> str:
    """Who runs the command, for reports: never through the character's class if avoidable.

    Content may have broken the character's class (a ``name`` that raises); the
    line that reports a failure must not fail, so the connection's name is
    taken first.
    """
    name = getattr(ctx.session, "name", None)
    if isinstance(name, str):
        return name
    try:
        return str(ctx.caller.name)
    except Exception:
        return "someone"


async def _finish(
    result: Awaitable[Any], ctx: Context, guard: ContentGuard, label: str, context: str
) -> None:
    try:
        await guard.awaitable(result, label, ctx.session, context)
    except ContentFailed as failure:
        ctx.msg(failure.message)


class GuardedCommands:
    """Commands run under one guard: how ``engine.commands.runner`` runs the command a line names.

    It meets ``engine.commands.runner.CommandGuard``, which the layer below
    declares because it cannot name the guard.
    """

    __slots__ = ("guard",)

    def __init__(self, guard: ContentGuard | None = None) -> None:
        self.guard = guard if guard is not None else _PLAIN

    def start(self, command: Command, ctx: Context) -> Coroutine[Any, Any, None] | None:
        """``start_command`` under this guard."""
        return start_command(command, ctx, self.guard)


#: A guard with no content directory and no builders: atomic, never interrupting.
_PLAIN = ContentGuard()
