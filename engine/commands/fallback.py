"""The engine's own commands: what answers when content does not.

Content that fails to load must never leave a game without a way to look,
get help, see who is on, leave, reload the fixed file or read what broke.
These commands live in the engine, are never reloaded, and stand behind the
content's commands: a content command with the same key hides the fallback
entirely (its aliases too), so content stays in charge of how the game plays.
``errors`` has no content counterpart and is always the engine's.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from engine.accounts.account import Role
from engine.audit import audit
from engine.commands.base import Command, Context
from engine.world.grammar import plural

if TYPE_CHECKING:
    from engine.services import ErrorReport

#: The registry's name for the module these commands belong to.
MODULE = "engine.commands.fallback"


class FallbackLook(Command):
    """Look around you, or at something or someone.

    Usage: look [target]
    """

    key = "look"
    aliases = ("l",)

    def run(self, ctx: Context) -> None:
        if ctx.args:
            target = ctx.search(ctx.args)
            if target is not None:
                ctx.msg(target.appearance(ctx.caller))
            return
        if ctx.here is None:
            ctx.msg("You are nowhere at all.")
            return
        ctx.msg(ctx.here.appearance(ctx.caller))


class FallbackHelp(Command):
    """List the commands you can use, or show help on one.

    Usage: help [command]
    """

    key = "help"
    aliases = ("?",)

    def run(self, ctx: Context) -> None:
        usable = [c for c in ctx.game.commands() if c.permission <= ctx.role]
        topic = ctx.args.strip().lower()
        if topic:
            match = next((c for c in usable if topic in (n.lower() for n in c.names)), None)
            if match is None:
                ctx.msg(f"There is no help on '{ctx.args}'. Type 'help' for a list.")
                return
            ctx.msg(f"Help on {match.key}:\n{match.help_text()}")
            return
        lines = ["Commands:"]
        lines.extend(f"  {c.key:<10} {c.summary()}" for c in usable)
        lines.append("Type 'help <command>' for more.")
        ctx.msg("\n".join(lines))


class FallbackWho(Command):
    """List the players in the game.

    Usage: who
    """

    key = "who"

    def run(self, ctx: Context) -> None:
        sessions = ctx.game.online()
        lines = [f"{plural(len(sessions), 'player')} online:"]
        lines.extend(f"  {s.name}" for s in sessions)
        ctx.msg("\n".join(lines))


class FallbackQuit(Command):
    """Leave the game. Your character waits where you stand.

    Usage: quit
    """

    key = "quit"
    prefix = False

    def run(self, ctx: Context) -> None:
        ctx.session.close("Goodbye. Come back soon!")


class FallbackReload(Command):
    """Reload content modules now, without waiting for a save.

    Usage: reload [module]
           reload/force [module]   (admins: without the game's tests)
    """

    key = "reload"
    permission = Role.BUILDER
    category = "Building"

    async def run(self, ctx: Context) -> None:
        force = "force" in ctx.switches
        if force and ctx.role < Role.ADMIN:
            ctx.msg("Only an admin may reload/force: it puts content live without its tests.")
            return
        name = ctx.args.strip()
        names = [name if name.startswith("content") else f"content.{name}"] if name else None
        await ctx.game.reload(names, force=force)
        shown = name.removeprefix("content.") if name else "every module"
        if force:
            audit(ctx.session.name, "forced content live without its tests", detail=shown)
        else:
            audit(ctx.session.name, "reloaded content by hand", detail=shown)


class FallbackErrors(Command):
    """List recent errors in content, newest first, with how often each happened.

    Usage: errors          (the list)
           errors/clear    (forget them)
    """

    key = "errors"
    aliases = ("errors/clear",)
    permission = Role.BUILDER
    category = "Building"

    def run(self, ctx: Context) -> None:
        if ctx.verb == "errors/clear":
            count = ctx.game.forget_content_errors()
            ctx.msg(f"Forgot {count} error{'s' if count != 1 else ''}.")
            return
        recent = ctx.game.content_errors()
        broken = ctx.game.broken_content()
        if not recent and not broken:
            ctx.msg("No content errors since the server started.")
            return
        lines = []
        if broken:
            lines.append("Content that does not load:")
            lines.extend(f"  {line}" for line in broken)
        if recent:
            lines.append(f"Recent content errors ({len(recent)}), newest first:")
            lines.extend(f"  {_entry(error)}" for error in recent)
        ctx.msg("\n".join(lines))


def _entry(error: ErrorReport) -> str:
    ago = _ago(time.time() - error.last)
    times = f"{error.count} time{'s' if error.count != 1 else ''}"
    return f"{error.line()} [{times}, last {ago}]"


def _ago(seconds: float) -> str:
    if seconds < 60:
        return f"{int(seconds)} s ago"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    return f"{int(seconds // 3600)} h ago"


#: One instance of each, in the order ``help`` lists them.
COMMANDS: tuple[Command, ...] = (
    FallbackLook(),
    FallbackHelp(),
    FallbackWho(),
    FallbackQuit(),
    FallbackReload(),
    FallbackErrors(),
)
