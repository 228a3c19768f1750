"""Building the world from inside the game: rooms, exits, things and their data."""

import json

from engine.api import Command, Context, GameObject, Role, WorldError


class BuilderCommand(Command):
    """Shared settings of building commands (no key: not registered itself)."""

    permission = Role.BUILDER
    category = "Building"


def _place_name(obj: GameObject | None) -> str:
    return f"{obj.name} ({obj.dbref})" if obj is not None else "nowhere"


class CmdDig(BuilderCommand):
    """Create a room, optionally with exits to it and back.

    Usage: dig <room> [= <exit there>[, <exit back>]]
    Example: dig Library = north, south
    """

    key = "dig"

    def run(self, ctx: Context) -> None:
        name = ctx.lhs
        if not name:
            ctx.msg("Usage: dig <room> [= <exit there>, <exit back>]")
            return
        there, back = "", ""
        if ctx.rhs:
            there, _, back = (part.strip() for part in ctx.rhs.partition(","))
        if (there or back) and ctx.here is None:
            ctx.msg("You are nowhere, so no exits can be opened from here.")
            return
        if there and ctx.here.find_exit(there):
            ctx.msg(f"{ctx.here.name} has an exit called {there} already.")
            return
        room = ctx.world.create_room(name)
        lines = [f"Dug room {room.name} ({room.dbref})."]
        if there:
            exit_ = ctx.world.open_exit(ctx.here, there, room)
            lines.append(f"Opened exit {exit_.name} ({exit_.dbref}) from here to {room.name}.")
        if back:
            exit_ = ctx.world.open_exit(room, back, ctx.here)
            lines.append(f"Opened exit {exit_.name} ({exit_.dbref}) from {room.name} back here.")
        ctx.msg("\n".join(lines))


class CmdOpen(BuilderCommand):
    """Open an exit from this room to another.

    Usage: open <exit> = <room>
    """

    key = "open"

    def run(self, ctx: Context) -> None:
        if not ctx.lhs or not ctx.rhs:
            ctx.msg("Usage: open <exit> = <room>")
            return
        if ctx.here is None:
            ctx.msg("You are nowhere.")
            return
        room = ctx.search(ctx.rhs, candidates=ctx.world.rooms(), where="in the world")
        if room is None:
            return
        try:
            exit_ = ctx.world.open_exit(ctx.here, ctx.lhs, room)
        except WorldError as exc:
            ctx.msg(f"Cannot open that exit: {exc}.")
            return
        ctx.msg(f"Opened exit {exit_.name} ({exit_.dbref}) from here to {_place_name(room)}.")


class CmdCreate(BuilderCommand):
    """Create a thing and hold it.

    Usage: create <name> [= <type class>]
    Example: create brass lamp = content.typeclasses.things.Lamp
    """

    key = "create"

    def run(self, ctx: Context) -> None:
        if not ctx.lhs:
            ctx.msg("Usage: create <name> [= <type class>]")
            return
        path = ctx.rhs or ""
        if path:
            problem = ctx.game.typeclass_problem(path, "thing")
            if problem:
                ctx.msg(f"Type class {path} cannot be used: {problem}")
                return
        thing = ctx.world.create("thing", ctx.lhs, location=ctx.caller, typeclass=path)
        ctx.msg(f"Created {thing.name} ({thing.dbref}, {thing.typeclass}). You hold it.")


class CmdDescribe(BuilderCommand):
    """Set the description of something.

    Usage: describe <target> = <text>
    """

    key = "describe"
    aliases = ("desc",)

    def run(self, ctx: Context) -> None:
        if not ctx.lhs or ctx.rhs is None:
            ctx.msg("Usage: describe <target> = <text>")
            return
        target = ctx.search(ctx.lhs, anywhere=True)
        if target is None:
            return
        target.description = ctx.rhs.replace("\\n", "\n")
        ctx.msg(f"Described {_place_name(target)}.")


class CmdName(BuilderCommand):
    """Rename something.

    Usage: name <target> = <new name>
    """

    key = "name"
    aliases = ("rename",)

    def run(self, ctx: Context) -> None:
        if not ctx.lhs or not ctx.rhs:
            ctx.msg("Usage: name <target> = <new name>")
            return
        target = ctx.search(ctx.lhs, anywhere=True)
        if target is None:
            return
        if target.kind == "character":
            ctx.msg("Characters keep their account's name.")
            return
        old = target.name
        target.name = ctx.rhs
        ctx.msg(f"Renamed {old} ({target.dbref}) to {target.name}.")


class CmdDestroy(BuilderCommand):
    """Destroy something, and say exactly what goes with it.

    Usage: destroy <target>
    A room goes with its exits, the exits leading to it and the things in it.
    A room with players in it is not destroyed.
    """

    key = "destroy"
    prefix = False

    def run(self, ctx: Context) -> None:
        if not ctx.args:
            ctx.msg("Usage: destroy <target>")
            return
        target = ctx.search(ctx.args, anywhere=True)
        if target is None:
            return
        if target.kind == "character":
            ctx.msg("Characters cannot be destroyed.")
            return
        # Checked before "has players in it": the caller is one of them, so
        # this refusal was never reached.
        if target is ctx.here and target.kind == "room":
            ctx.msg("You are standing in it; go elsewhere first.")
            return
        if target.kind == "room" and target.characters():
            names = ", ".join(c.name for c in target.characters())
            ctx.msg(f"{target.name} has players in it ({names}); it is not destroyed.")
            return
        try:
            gone = ctx.world.destroy(target)
        except WorldError as exc:
            ctx.msg(f"Not destroyed: {exc}.")
            return
        listed = ", ".join(f"{o.kind} {o.name} ({o.dbref})" for o in gone)
        ctx.msg(f"Destroyed {len(gone)} object(s): {listed}.")


class CmdTeleport(BuilderCommand):
    """Move something (or yourself) anywhere at once.

    Usage: teleport <target> = <place>    or: teleport <place>
    """

    key = "teleport"
    aliases = ("tel",)

    def run(self, ctx: Context) -> None:
        what, where = (ctx.lhs, ctx.rhs) if ctx.rhs is not None else ("me", ctx.args)
        if not what or not where:
            ctx.msg("Usage: teleport <target> = <place>")
            return
        target = ctx.search(what, anywhere=True)
        if target is None:
            return
        place = ctx.search(where, anywhere=True)
        if place is None:
            return
        leaving = target.location
        try:
            target.move_to(place, by=ctx.caller)
        except WorldError as refused:
            ctx.msg(str(refused))
            return
        if target.kind == "character" and leaving is not None:
            ctx.to_room(f"{target.name} vanishes.", room=leaving)
        if target.kind == "character":
            ctx.to_room(f"{target.name} appears.", room=place)
            if target.session is not None:
                target.session.send(place.appearance(target))
        ctx.msg(f"Teleported {_place_name(target)} to {_place_name(place)}.")


class CmdExamine(BuilderCommand):
    """Show every field of an object, its attributes and its type class.

    Usage: examine <target>
    """

    key = "examine"
    aliases = ("ex",)

    def run(self, ctx: Context) -> None:
        target = ctx.search(ctx.args or "here", anywhere=True)
        if target is None:
            return
        status = ctx.game.typeclass_status(target)
        article = "an" if target.kind[0] in "aeiou" else "a"  # "an exit", not "a exit"
        lines = [
            f"{target.name} ({target.dbref}), {article} {target.kind}",
            f"  type class:  {target.typeclass} {status}",
            f"  aliases:     {', '.join(target.aliases) or '-'}",
            f"  location:    {_place_name(target.location)}",
        ]
        if target.kind == "exit":
            lines.append(f"  destination: {_place_name(target.destination)}")
        if target.kind == "character":
            lines.append(f"  account:     {target.account_id}  online: {target.online}")
        lines.append(f"  description: {target.description or '-'}")
        contents = ", ".join(_place_name(o) for o in target.contents)
        lines.append(f"  contents:    {contents or '-'}")
        if target.attributes:
            lines.append("  attributes:")
            for key in sorted(target.attributes):
                lines.append(f"    {key} = {json.dumps(target.attributes[key])}")
        else:
            lines.append("  attributes:  -")
        ctx.msg("\n".join(lines))


class CmdSet(BuilderCommand):
    """Set (or clear) an attribute of an object.

    Usage: set <target>/<attribute> = <value>
    The value is read as JSON when it can be (5, true, "text", [1, 2]),
    otherwise as text. An empty value removes the attribute.
    """

    key = "set"

    def run(self, ctx: Context) -> None:
        if not ctx.lhs or "/" not in ctx.lhs or ctx.rhs is None:
            ctx.msg("Usage: set <target>/<attribute> = <value>")
            return
        what, _, attribute = ctx.lhs.rpartition("/")
        attribute = attribute.strip()
        if not attribute:
            ctx.msg("Name the attribute: set <target>/<attribute> = <value>")
            return
        target = ctx.search(what, anywhere=True)
        if target is None:
            return
        if ctx.rhs == "":
            if attribute in target.attributes:
                del target.attributes[attribute]
                ctx.msg(f"Removed {attribute} from {_place_name(target)}.")
            else:
                ctx.msg(f"{_place_name(target)} has no attribute {attribute}.")
            return
        try:
            value = json.loads(ctx.rhs)
        except ValueError:
            value = ctx.rhs
        target.attributes[attribute] = value
        ctx.msg(f"Set {_place_name(target)}/{attribute} = {json.dumps(value)}.")


class CmdFind(BuilderCommand):
    """Find objects anywhere in the world by part of their name.

    Usage: find <text>
    """

    key = "find"

    def run(self, ctx: Context) -> None:
        text = ctx.args.strip().lower()
        if not text:
            ctx.msg("Usage: find <text>")
            return
        found = [
            o for o in ctx.world.objects.values()
            if text in o.name.lower() or any(text in a.lower() for a in o.aliases)
        ]  # fmt: skip
        if not found:
            ctx.msg(f"Nothing in the world matches '{ctx.args}'.")
            return
        lines = [f"{len(found)} match(es):"]
        lines += [
            f"  {o.dbref:<6} {o.kind:<9} {o.name}  (in {_place_name(o.location)})"
            for o in found[:50]
        ]
        if len(found) > 50:
            lines.append(f"  ... and {len(found) - 50} more.")
        ctx.msg("\n".join(lines))


class CmdTypeclass(BuilderCommand):
    """Give an object another type class (its behaviour); its data stays.

    Usage: typeclass <target> = <dotted path>
    Example: typeclass lamp = content.typeclasses.things.Lamp
    Refused, with the reason, if the path does not load.
    """

    key = "typeclass"

    def run(self, ctx: Context) -> None:
        if not ctx.lhs or not ctx.rhs:
            ctx.msg("Usage: typeclass <target> = <dotted path>")
            return
        target = ctx.search(ctx.lhs, anywhere=True)
        if target is None:
            return
        problem = ctx.game.typeclass_problem(ctx.rhs, target.kind)
        if problem:
            ctx.msg(f"Type class {ctx.rhs} cannot be used: {problem}")
            return
        target.typeclass = ctx.rhs
        ctx.world.refresh(target)
        ctx.msg(f"{_place_name(target)} is now a {ctx.rhs}.")
