"""Commands for those who run the game: reloading, shutting down, accounts and roles."""

from engine.api import Command, Context, Role, plural


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
    prefix = False
    permission = Role.ADMIN
    category = "Admin"

    def run(self, ctx: Context) -> None:
        ctx.game.shutdown(ctx.args)


class CmdRestart(Command):
    """Restart the engine with the code now on disk, without disconnecting anyone.

    Usage: restart [message]
    A new engine starts beside this one; once it is ready, every connection
    moves to it (players at the login prompt too) and nothing typed is lost.
    The message, if given, is what players are told just before. If the new
    engine fails to start, you are told why and the game goes on as it was.
    """

    key = "restart"
    prefix = False
    permission = Role.ADMIN
    category = "Admin"

    def run(self, ctx: Context) -> None:
        ctx.msg(ctx.game.restart(ctx.args.strip(), requester=ctx.session))


class CmdStatus(Command):
    """Show the server's process, version, uptime, hot restarts and players.

    Usage: status
    """

    key = "status"
    permission = Role.ADMIN
    category = "Admin"

    def run(self, ctx: Context) -> None:
        facts = ctx.game.status()
        width = max(len(k) for k in facts) + 1
        ctx.msg("\n".join(f"{key + ':':<{width}} {value}" for key, value in facts.items()))


class CmdGrant(Command):
    """Give an account a role.

    Usage: grant <account> = player||builder||admin
    """

    key = "grant"
    permission = Role.ADMIN
    category = "Admin"

    async def run(self, ctx: Context) -> None:
        if not ctx.lhs or not ctx.rhs:
            ctx.msg("Usage: grant <account> = player||builder||admin")
            return
        try:
            role = Role.parse(ctx.rhs)
        except KeyError:
            ctx.msg(f"There is no role {ctx.rhs}: choose player, builder or admin.")
            return
        account = await ctx.game.find_account(ctx.lhs)
        if account is None:
            ctx.msg(f"There is no account {ctx.lhs}.")
            return
        if account.id == ctx.session.account.id and role < Role.ADMIN:
            ctx.msg("You cannot take your own admin role away.")
            return
        await ctx.game.set_role(account.name, role)
        ctx.msg(f"{account.name} is now {role.with_article()}.")


class CmdAccounts(Command):
    """List every account, its role and whether it is online.

    Usage: accounts
    """

    key = "accounts"
    permission = Role.ADMIN
    category = "Admin"

    async def run(self, ctx: Context) -> None:
        accounts = await ctx.game.all_accounts()
        online = {s.account.id for s in ctx.game.online() if s.account is not None}
        lines = [f"{plural(len(accounts), 'account')}:"]
        for account in accounts:
            flag = "online" if account.id in online else ""
            lines.append(f"  {account.name:<20} {account.role!s:<8} {flag}")
        ctx.msg("\n".join(lines))
