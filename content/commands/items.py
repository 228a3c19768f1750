"""Carrying things: get, drop, give, inventory, use."""

from engine.api import Command, Context, WorldError


class CmdGet(Command):
    """Pick something up.

    Usage: get <thing>
    """

    key = "get"
    aliases = ("take",)

    def run(self, ctx: Context) -> None:
        if not ctx.args:
            ctx.msg("Get what?")
            return
        thing = ctx.search(ctx.args, candidates=ctx.here.contents if ctx.here else [])
        if thing is None:
            return
        if thing.kind != "thing":
            shown = "an exit" if thing.kind == "exit" else thing.the_name(ctx.caller)
            ctx.msg(f"You cannot pick up {shown}.")
            return
        # ``#id`` reaches any object in the world; only what lies here can be taken.
        if thing.location is not ctx.here:
            ctx.msg(f"You find no '{ctx.args}' here.")
            return
        refusal = thing.at_get(ctx.caller)
        if refusal:
            ctx.msg(refusal)
            return
        try:
            thing.move_to(ctx.caller, by=ctx.caller)
        except WorldError as refused:
            ctx.msg(str(refused))
            return
        ctx.msg(f"You pick up {thing.a_name(ctx.caller)}.")
        ctx.to_room(f"{ctx.caller.name} picks up {thing.a_name()}.")


class CmdDrop(Command):
    """Put down something you carry.

    Usage: drop <thing>
    """

    key = "drop"

    def run(self, ctx: Context) -> None:
        if not ctx.args:
            ctx.msg("Drop what?")
            return
        thing = ctx.search(ctx.args, candidates=ctx.caller.contents, where="you carry")
        if thing is None:
            return
        # ``#id`` and ``here`` reach beyond what is carried: "drop here" put the
        # room inside itself.
        if thing.location is not ctx.caller:
            ctx.msg(f"You do not carry {thing.the_name(ctx.caller)}.")
            return
        try:
            thing.move_to(ctx.here, by=ctx.caller)
        except WorldError as refused:
            ctx.msg(str(refused))
            return
        thing.at_drop(ctx.caller)
        ctx.msg(f"You drop {thing.a_name(ctx.caller)}.")
        ctx.to_room(f"{ctx.caller.name} drops {thing.a_name()}.")


class CmdGive(Command):
    """Give something you carry to someone here.

    Usage: give <thing> = <character>   (or: give <thing> to <character>)
    """

    key = "give"

    def run(self, ctx: Context) -> None:
        what, whom = ctx.lhs, ctx.rhs
        if whom is None and " to " in ctx.args:
            what, _, whom = ctx.args.partition(" to ")
        if not what or not whom:
            ctx.msg("Usage: give <thing> = <character>")
            return
        thing = ctx.search(what.strip(), candidates=ctx.caller.contents, where="you carry")
        if thing is None:
            return
        # ``#id`` and ``here`` reach beyond the candidates: without these checks
        # anything anywhere could be given, to anything anywhere (itself included).
        if thing.location is not ctx.caller:
            ctx.msg(f"You do not carry {thing.the_name(ctx.caller)}.")
            return
        people = ctx.room.characters() if ctx.room is not None else []
        receiver = ctx.search(whom.strip(), candidates=people)
        if receiver is None:
            return
        if receiver is ctx.caller:
            ctx.msg("You already have it.")
            return
        if receiver not in people:
            ctx.msg(f"You find no '{whom.strip()}' here.")
            return
        try:
            thing.move_to(receiver, by=ctx.caller)
        except WorldError as refused:
            ctx.msg(str(refused))
            return
        ctx.msg(f"You give {thing.a_name(ctx.caller)} to {receiver.name}.")
        if receiver.session is not None:
            receiver.session.send(f"{ctx.caller.name} gives you {thing.a_name(receiver)}.")
        for other in people:
            if other not in (ctx.caller, receiver) and other.session is not None:
                other.session.send(
                    f"{ctx.caller.name} gives {thing.a_name(other)} to {receiver.name}."
                )


class CmdInventory(Command):
    """List what you carry.

    Usage: inventory
    """

    key = "inventory"
    aliases = ("i", "inv")

    def run(self, ctx: Context) -> None:
        carried = [t.a_name(ctx.caller) for t in ctx.caller.contents]
        ctx.msg(f"You carry: {', '.join(carried)}." if carried else "You carry nothing.")


class CmdUse(Command):
    """Use something you carry or that is here.

    Usage: use <thing>
    """

    key = "use"

    def run(self, ctx: Context) -> None:
        if not ctx.args:
            ctx.msg("Use what?")
            return
        thing = ctx.search(ctx.args)
        if thing is None:
            return
        # ``#id`` reaches any object in the world; only what is at hand can be used.
        if thing not in (ctx.caller, ctx.here) and thing.location not in (ctx.caller, ctx.here):
            ctx.msg(f"You find no '{ctx.args}' here.")
            return
        ctx.msg(thing.at_use(ctx.caller))
