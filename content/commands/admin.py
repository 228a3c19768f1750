"""Commands for those who run the game: reloading content and shutting down."""

from engine.api import Command, Context, Role


class CmdReload(Command):
    """Reload content modules now, without waiting for a save.

    Usage: reload [module]
    With no module every content module is rebuilt. A module is named by its
    dotted path with or without 'content.': reload commands.general
    """

    key = "reload"
    permission = Role.BUILDER
    category = "Building"

    async def run(self, ctx: Context) -> None:
        names = None
        if ctx.args:
            name = ctx.args.strip()
            names = [name if name.startswith("content") else f"content.{name}"]
        # The outcome reaches every builder, the caller included, as one line.
        await ctx.game.reload(names)


class CmdShutdown(Command):
    """Stop the server, telling every player first.

    Usage: shutdown [message]
    """

    key = "shutdown"
    permission = Role.ADMIN
    category = "Admin"

    def run(self, ctx: Context) -> None:
        ctx.game.shutdown(ctx.args)
