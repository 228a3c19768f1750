"""Everyday commands: looking, talking, moving, asking for help, leaving.

Save this file while the game runs and the new code answers the next command.
"""

import time

from engine.api import SHORT_DIRECTIONS, Command, CommandInfo, Context, Role, WorldError, plural


class CmdLook(Command):
    """Look around you, or at something or someone.

    Usage: look [target]
    With no target, shows the room you stand in, what is in it, its exits and
    who else is here. A target may be a thing, a character or an exit.
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


class CmdSay(Command):
    """Say something to everyone in the room.

    Usage: say <text>   (or: '<text>)
    """

    key = "say"

    def run(self, ctx: Context) -> None:
        if not ctx.args:
            ctx.msg("Say what?")
            return
        # The speaker's type class, then the room's, then each listener's shape the words.
        text = ctx.caller.at_say(ctx.args)
        if ctx.here is not None:
            text = ctx.here.at_speech(ctx.caller, text)
        ctx.msg(f'You say, "{text}"')
        for other in ctx.here.contents if ctx.here is not None else ():
            if other is not ctx.caller and other.session is not None:
                heard = other.at_hear(ctx.caller, text)
                other.session.send(f'{ctx.caller.name} says, "{heard}"')


class CmdEmote(Command):
    """Show everyone in the room what you do.

    Usage: emote <action>   (or: :<action>)
    Example: emote waves.  ->  Alice waves.
    """

    key = "emote"
    aliases = ("pose",)

    def run(self, ctx: Context) -> None:
        if not ctx.args:
            ctx.msg("Emote what?")
            return
        text = f"{ctx.caller.name} {ctx.args}"
        ctx.msg(text)
        ctx.to_room(text)


class CmdWho(Command):
    """List the players in the game, or those whose name starts with what you type.

    Usage: who [name]
    In a busy game the list shows the first 50 names; give the start of a
    name to find someone.
    """

    key = "who"
    #: Names shown at most: a list of thousands helps nobody (and costs the game).
    LIMIT = 50

    def run(self, ctx: Context) -> None:
        sessions = ctx.game.online()
        wanted = ctx.args.strip().lower()
        if wanted:
            sessions = [s for s in sessions if s.name.lower().startswith(wanted)]
            if not sessions:
                ctx.msg(f"Nobody online has a name starting with '{ctx.args.strip()}'.")
                return
        now = time.time()
        lines = [f"{plural(len(sessions), 'player')} online:"]
        for session in sessions[: self.LIMIT]:
            if ctx.role < Role.BUILDER:
                # Players see who is on; idle times and roles are for staff.
                lines.append(f"  {session.name}")
                continue
            idle = int(now - session.last_input)
            role = "" if session.role == Role.PLAYER else f" [{session.role}]"
            lines.append(f"  {session.name:<20} idle {idle:>4}s{role}")
        more = len(sessions) - self.LIMIT
        if more > 0:
            lines.append(f"  ... and {more:,} more. Type 'who <start of a name>' to find someone.")
        ctx.msg("\n".join(lines))


class CmdGo(Command):
    """Walk through an exit.

    Usage: go <exit>
    You may also type the exit's name alone: north, or n.
    Short forms: n, s, e, w, u, d (and ne, nw, se, sw).
    """

    key = "go"
    aliases = ("walk",)

    def run(self, ctx: Context) -> None:
        if not ctx.args:
            ctx.msg("Go where?")
            return
        exit_ = ctx.room.find_exit(ctx.args) if ctx.room is not None else None
        if exit_ is None:
            word = ctx.args.strip().lower()
            if word in SHORT_DIRECTIONS:
                ctx.msg(f"You can't go {word}.")
            elif word in SHORT_DIRECTIONS.values():
                ctx.msg("You can't go that way.")
            else:
                ctx.msg(f"There is no way called '{ctx.args.strip()}' here.")
            return
        refusal = exit_.at_traverse(ctx.caller)
        if refusal:
            ctx.msg(refusal)
            return
        destination = exit_.destination
        if destination is None:  # refused by at_traverse, unless a type class lets it through
            ctx.msg("That way leads nowhere.")
            return
        leaving = ctx.here
        try:
            ctx.caller.move_to(destination, by=ctx.caller)
        except WorldError as refused:
            ctx.msg(str(refused))
            return
        ctx.to_room(f"{ctx.caller.name} leaves {exit_.name}.", room=leaving)
        ctx.to_room(f"{ctx.caller.name} arrives.")
        ctx.msg(destination.appearance(ctx.caller))


class CmdHome(Command):
    """Go back to your home: the start room, unless a builder gave you another.

    Usage: home
    """

    key = "home"

    def run(self, ctx: Context) -> None:
        home = ctx.world.get(ctx.caller.attributes.get("home", 0))
        if home is None or home.kind != "room":
            home = ctx.world.start_room
        if home is None:
            ctx.msg("There is no home to go to.")
            return
        if home is ctx.here:
            ctx.msg("You are home already.")
            return
        leaving = ctx.here
        try:
            ctx.caller.move_to(home, by=ctx.caller)
        except WorldError as refused:
            ctx.msg(str(refused))
            return
        if leaving is not None:
            ctx.to_room(f"{ctx.caller.name} goes home.", room=leaving)
        ctx.to_room(f"{ctx.caller.name} arrives.")
        ctx.msg(f"You go home to {home.name}.")
        ctx.msg(home.appearance(ctx.caller))


class CmdHelp(Command):
    """List commands, or show help on one.

    Usage: help [command]
    """

    key = "help"
    aliases = ("?",)

    def run(self, ctx: Context) -> None:
        usable = [c for c in ctx.game.commands() if c.permission <= ctx.role]
        if ctx.args:
            topic = ctx.args.lower()
            match = next((c for c in usable if topic in (n.lower() for n in c.names)), None)
            if match is None:
                starts = [c for c in usable if c.key.startswith(topic)]
                match = starts[0] if len(starts) == 1 else None
            if match is None:
                ctx.msg(f"There is no help on '{ctx.args}'. Type 'help' for a list.")
                return
            aliases = f" (aliases: {', '.join(match.aliases)})" if match.aliases else ""
            ctx.msg(f"Help on {match.key}{aliases}:\n{match.help_text()}")
            return
        by_category: dict[str, list[CommandInfo]] = {}
        for command in usable:
            by_category.setdefault(command.category, []).append(command)
        lines = []
        for category in sorted(by_category):
            lines.append(f"{category}:")
            lines.extend(f"  {c.key:<10} {c.summary()}" for c in by_category[category])
        lines.append("Type 'help <command>' for more.")
        ctx.msg("\n".join(lines))


class CmdQuit(Command):
    """Leave the game. Your character waits where you stand.

    Usage: quit
    """

    key = "quit"
    prefix = False

    def run(self, ctx: Context) -> None:
        ctx.session.close("Goodbye. Come back soon!")


class CmdColour(Command):
    """Show or choose whether the game sends you colour.

    Usage: colour [on | off | auto]
    auto (the default) uses what your client says it supports; off sends
    plain text; on sends colour even if your client did not say it can.
    """

    key = "colour"
    aliases = ("color",)

    async def run(self, ctx: Context) -> None:
        account = ctx.account
        choice = ctx.args.strip().lower()
        if choice:
            if choice not in ("on", "off", "auto"):
                ctx.msg("Choose on, off or auto.")
                return
            account.settings["colour"] = choice
            await ctx.game.save_settings(account)
        client = ctx.session.client
        depth = ctx.session.colour
        shown = "no colour" if not depth else f"{min(int(depth), 16_777_216):,} colours"
        ctx.msg(
            f"Colour: {account.settings.get('colour', 'auto')} "
            f"(your client: {client.name or 'unknown'}; sending {shown}).\n"
            "|rred |ggreen |yyellow |bblue |mmagenta |ccyan |wwhite|n"
        )


class CmdPing(Command):
    """Check that the game answers: it replies Pong.

    Usage: ping
    """

    key = "ping"

    def run(self, ctx: Context) -> None:
        ctx.msg("Pong.")
