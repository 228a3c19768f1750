"""Commands for those who run the game: reloading, shutting down, accounts and roles.

Each act that changes the game or an account is written to the audit log
(``audit``) once it has happened.
"""

import json

from engine.api import Command, Context, Role, audit, plural


def quoted(text: str) -> str:
    """A message as an audit line shows it: ``"back soon"`` (nothing for no message)."""
    return json.dumps(text, ensure_ascii=False) if text else ""


class CmdReload(Command):
    """Reload content modules now, without waiting for a save.

    Usage: reload [module]
           reload/force [module]   (admins: without the game's tests)
    With no module every content module is rebuilt. A module is named by its
    dotted path with or without 'content.': reload commands.general
    Where the game has tests, a reload goes live once they pass, as a save
    does; reload/force puts it live at once without them, together with
    every save they hold back.
    """

    key = "reload"
    permission = Role.BUILDER
    category = "Building"

    async def run(self, ctx: Context) -> None:
        force = "force" in ctx.switches
        if force and ctx.role < Role.ADMIN:
            ctx.msg("Only an admin may reload/force: it puts content live without its tests.")
            return
        names = None
        if ctx.args:
            name = ctx.args.strip()
            names = [name if name.startswith("content") else f"content.{name}"]
        # The outcome reaches every builder, the caller included, as one line.
        await ctx.game.reload(names, force=force)
        shown = ctx.args.strip().removeprefix("content.") or "every module"
        if force:
            audit(ctx.session.name, "forced content live without its tests", detail=shown)
        else:
            audit(ctx.session.name, "reloaded content by hand", detail=shown)


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
        message = ctx.args.strip()
        audit(ctx.session.name, "shut the game down", detail=quoted(message))


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
        message = ctx.args.strip()
        answer = ctx.game.restart(message, requester=ctx.session)
        ctx.msg(answer)
        # A game without its supervisor answers why it cannot restart instead.
        if answer.startswith("Restarting"):
            audit(ctx.session.name, "started a hot restart", detail=quoted(message))


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
    """Give an account a role (a lower one takes the higher away).

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
        if account.id == ctx.account.id and role < Role.ADMIN:
            ctx.msg("You cannot take your own admin role away.")
            return
        before = account.role
        changed = await ctx.game.set_role(account.name, role)
        ctx.msg(f"{account.name} is now {role.with_article()}.")
        if not changed or role == before:
            return
        if role > before:
            audit(ctx.session.name, f"granted the {role} role to", account.name)
        else:
            detail = f"now {role.with_article()}"
            audit(ctx.session.name, f"revoked the {before} role from", account.name, detail)


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
