"""Running a command: content code, under the guard like all content.

A command that raises or is stopped changes nothing (see
``engine.content.guard``); the failure is logged with its traceback and told
to builders, the player gets a short line, and the session goes on.
"""

from __future__ import annotations

import inspect

from engine.commands.base import Command, Context
from engine.content.guard import ContentFailed, ContentGuard


async def run_command(command: Command, ctx: Context, guard: ContentGuard | None = None) -> None:
    """Run one command as content: atomic, under the time budget, failures told.

    A command that raises or is stopped changes nothing (see
    ``engine.content.guard``); the caller gets one line saying so.
    """
    guard = guard if guard is not None else _PLAIN
    label = f"'{command.key}'"
    context = f"running '{command.key}' for {ctx.caller.name}"
    try:
        # Called, not awaited through guard.run: most commands are plain
        # functions, and this is the path every command takes.
        result = guard.step(label, ctx.session, context, command.run, ctx)
        if result is not None and inspect.isawaitable(result):
            await guard.awaitable(result, label, ctx.session, context)
    except ContentFailed as failure:
        ctx.msg(failure.message)


#: A guard with no content directory and no builders: atomic, never interrupting.
_PLAIN = ContentGuard()
