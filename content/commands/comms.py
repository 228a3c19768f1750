"""Talking beyond the room: the global chat channel and private pages."""

from engine.api import Command, Context


class CmdChat(Command):
    """Talk on the global chat channel, heard by every player online.

    Usage: chat <text>   (alias: ooc)
    """

    key = "chat"
    aliases = ("ooc",)
    category = "Communication"

    def run(self, ctx: Context) -> None:
        if not ctx.args:
            ctx.msg("Chat what?")
            return
        ctx.to_all(f"[chat] {ctx.caller.name}: {ctx.args}")


class CmdPage(Command):
    """Send a private message to a player anywhere in the game.

    Usage: page <player> = <text>
    """

    key = "page"
    aliases = ("tell",)
    category = "Communication"

    def run(self, ctx: Context) -> None:
        if not ctx.lhs or not ctx.rhs:
            ctx.msg("Usage: page <player> = <text>")
            return
        target = ctx.world.find_online(ctx.lhs)
        if target is None or target.session is None:
            ctx.msg(f"Nobody called {ctx.lhs} is online.")
            return
        target.session.send(f"{ctx.caller.name} pages: {ctx.rhs}")
        ctx.msg(f"You page {target.name}: {ctx.rhs}")
