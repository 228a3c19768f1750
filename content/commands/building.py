"""Building the world from inside the game: rooms, exits, things and their data.

What is privileged is written to the audit log (``audit``) once done: every
``destroy``, a ``teleport`` of another player's character, and any change a
builder makes to another player's character (``set``, ``typeclass``,
``sethome``, ``describe``, ``alias``).
"""

import json

from engine.api import (
    Character,
    Command,
    Context,
    GameObject,
    Role,
    Room,
    WorldError,
    audit,
    indefinite,
    plural,
    possessive,
)


class BuilderCommand(Command):
    """Shared settings of building commands (no key: not registered itself)."""

    permission = Role.BUILDER
    category = "Building"


def _place_name(obj: GameObject | None) -> str:
    return f"{obj.name} ({obj.dbref})" if obj is not None else "nowhere"


def _audited(obj: GameObject) -> str:
    """An object as an audit line names it: ``a brass lamp (#17)``, ``Lee (#9)``."""
    shown = indefinite(obj.name) if obj.kind == "thing" else obj.name
    return f"{shown} ({obj.dbref})"


def _someone_else(ctx: Context, obj: GameObject) -> bool:
    """True if ``obj`` is another player's character (what a builder's change to is audited)."""
    return obj.kind == "character" and obj.account_id is not None and obj is not ctx.caller


def split_aliases(text: str) -> tuple[str, list[str]]:
    """``glass jar;jar;bottle`` -> ("glass jar", ["jar", "bottle"]) (Evennia's form)."""
    name, *aliases = (part.strip() for part in text.split(";"))
    return name, [a for a in dict.fromkeys(aliases) if a and a.lower() != name.lower()]


def line_breaks(text: str) -> str:
    """``|/`` (and a typed ``\\n``) start a new line in descriptions."""
    return text.replace("|/", "\n").replace("\\n", "\n")


def _with_aliases(obj: GameObject) -> str:
    return f" (aliases: {', '.join(obj.aliases)})" if obj.aliases else ""


class CmdDig(BuilderCommand):
    """Create a room, optionally with exits to it and back.

    Usage: dig <room> [= <exit there>[, <exit back>]]
    Example: dig Library = west, east
    An exit may carry aliases after semicolons: dig Attic = ladder;l, down
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
        if not there and not back:
            room = ctx.world.create_room(name)
            ctx.msg(f"Dug room {room.name} ({room.dbref}).")
            return
        here = ctx.room
        if here is None:
            ctx.msg("You are nowhere, so no exits can be opened from here.")
            return
        there, there_aliases = split_aliases(there)
        back, back_aliases = split_aliases(back)
        if there and here.find_exit(there):
            ctx.msg(f"{here.name} has an exit called {there} already.")
            return
        room = ctx.world.create_room(name)
        lines = [f"Dug room {room.name} ({room.dbref})."]
        if there:
            exit_ = ctx.world.open_exit(here, there, room)
            if there_aliases:
                exit_.aliases = [*exit_.aliases, *there_aliases]
            lines.append(f"Opened exit {exit_.name} ({exit_.dbref}) from here to {room.name}.")
        if back:
            exit_ = ctx.world.open_exit(room, back, here)
            if back_aliases:
                exit_.aliases = [*exit_.aliases, *back_aliases]
            lines.append(f"Opened exit {exit_.name} ({exit_.dbref}) from {room.name} back here.")
        ctx.msg("\n".join(lines))


class CmdOpen(BuilderCommand):
    """Open an exit from this room to another.

    Usage: open <exit>[;<alias>...] = <room>
    Example: open gate;g = The Market
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
        name, aliases = split_aliases(ctx.lhs)
        try:
            exit_ = ctx.world.open_exit(ctx.here, name, room)
        except WorldError as exc:
            ctx.msg(f"Cannot open that exit: {exc}.")
            return
        if aliases:
            exit_.aliases = [*exit_.aliases, *aliases]
        ctx.msg(f"Opened exit {exit_.name} ({exit_.dbref}) from here to {_place_name(room)}.")


class CmdCreate(BuilderCommand):
    """Create a thing and hold it.

    Usage: create <name>[;<alias>...] [= <type class>]
    Example: create glass jar;jar;bottle
    Example: create brass lamp;lantern = content.typeclasses.things.Lamp
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
        name, aliases = split_aliases(ctx.lhs)
        if not name:
            ctx.msg("Give the thing a name: create <name>[;<alias>...] [= <type class>]")
            return
        thing = ctx.world.create(
            "thing", name, location=ctx.caller, typeclass=path, aliases=aliases
        )
        ctx.msg(
            f"Created {thing.a_name()} ({thing.dbref}, {thing.typeclass}){_with_aliases(thing)}. "
            "You hold it."
        )


class CmdDescribe(BuilderCommand):
    """Set the description of something.

    Usage: describe <target> = <text>
    Type |/ where a new line should start:
      describe here = A quiet room.|/A clock ticks on the wall.
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
        target.description = line_breaks(ctx.rhs)
        ctx.msg(f"Described {ctx.label(target)}.")
        if _someone_else(ctx, target):
            text = json.dumps(target.description, ensure_ascii=False)
            audit(ctx.session.name, "described", _audited(target), text)


class CmdName(BuilderCommand):
    """Rename something.

    Usage: name <target> = <new name>[;<alias>...]
    Aliases given after semicolons replace the old ones: name jar = glass jar;jar;bottle
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
        old = ctx.label(target)
        name, aliases = split_aliases(ctx.rhs)
        if not name:
            ctx.msg("Usage: name <target> = <new name>[;<alias>...]")
            return
        target.name = name
        if ";" in ctx.rhs:
            target.aliases = aliases
        ctx.msg(f"Renamed {old} to {target.name}{_with_aliases(target)}.")


class CmdDestroy(BuilderCommand):
    """Destroy something, and say exactly what goes with it.

    Usage: destroy <target>       or: destroy/force <target>
    A room goes with its exits, the exits leading to it and the things in it.
    A room with players in it is not destroyed. A player's character, or a
    thing someone carries, is destroyed only with /force; the holder is told.
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
        force = "force" in ctx.switches
        holder = target.location if target.kind == "thing" else None
        if holder is not None and holder.kind != "character":
            holder = None
        if isinstance(target, Character) and target.account_id is not None:
            if target.online:
                ctx.msg(f"{target.name} is in the game now; a character is destroyed only "
                        "while its player is away.")  # fmt: skip
                return
            if not force:
                ctx.msg(
                    f"{target.name} is a player's character; type destroy/force "
                    f"{ctx.args.strip()} to destroy it anyway."
                )
                return
        if holder is not None and holder is not ctx.caller and not force:
            ctx.msg(
                f"{target.the_name(capital=True)} is carried by {holder.name}; type "
                f"destroy/force {ctx.args.strip()} to destroy it anyway."
            )
            return
        if target is ctx.here and target.kind == "room":
            ctx.msg("You are standing in it; go elsewhere first.")
            return
        if isinstance(target, Room) and target.characters():
            names = ", ".join(c.name for c in target.characters())
            ctx.msg(f"{target.name} has players in it ({names}); it is not destroyed.")
            return
        shown = target.a_name()
        where = target.location
        forced = force and (
            target.account_id is not None or (holder is not None and holder is not ctx.caller)
        )
        try:
            gone = ctx.world.destroy(target)
        except WorldError as exc:
            ctx.msg(f"Not destroyed: {exc}.")
            return
        if holder is not None and holder is not ctx.caller and holder.session is not None:
            holder.session.send(f"{shown[:1].upper()}{shown[1:]} vanishes from your hands.")
        listed = ", ".join(f"{o.kind} {o.name} ({o.dbref})" for o in gone)
        ctx.msg(f"Destroyed {plural(len(gone), 'object')}: {listed}.")
        audit(ctx.session.name, "destroyed", _destruction(gone, where, forced))


def _destruction(gone: list[GameObject], where: GameObject | None, forced: bool) -> str:
    """``a brass lamp (#17) in The Market (#4)``, then what went with it: for the audit line."""

    def named(obj: GameObject) -> str:
        return _audited(obj) if obj.kind == "thing" else f"the {obj.kind} {_audited(obj)}"

    what = named(gone[0])
    if where is not None:
        what += f" {'carried by' if where.kind == 'character' else 'in'} {_audited(where)}"
    if len(gone) > 1:
        what += ", with " + ", ".join(named(o) for o in gone[1:])
    return what + (", by force" if forced else "")


class CmdTeleport(BuilderCommand):
    """Move something (or yourself) anywhere at once.

    Usage: teleport <target> = <place>    or: teleport <place>
    The room it leaves sees it vanish, the room it reaches sees it appear,
    and a player moved by someone else is told by whom.
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
        shown = ctx.label(target)
        leaving = target.location
        try:
            target.move_to(place, by=ctx.caller)
        except WorldError as refused:
            ctx.msg(str(refused))
            return
        name = target.the_name(capital=True)
        if leaving is not None:
            _tell_room(leaving, f"{name} vanishes.", (target, ctx.caller))
        if target is ctx.caller:
            ctx.msg(f"You teleport to {place.name}.")
            ctx.msg(place.appearance(ctx.caller))
        elif target.session is not None:
            target.session.send(f"{ctx.caller.name} teleports you to {place.name}.")
            target.session.send(place.appearance(target))
        _tell_room(place, f"{name} appears.", (target, ctx.caller))
        if target is not ctx.caller:
            ctx.msg(f"Teleported {shown} to {_place_name(place)}.")
        if _someone_else(ctx, target):
            origin = _audited(leaving) if leaving is not None else "nowhere"
            audit(
                ctx.session.name,
                "teleported",
                f"{_audited(target)} from {origin} to {_audited(place)}",
            )


def _tell_room(room: GameObject, text: str, exclude: tuple[GameObject, ...]) -> None:
    for other in room.contents:
        if other not in exclude and other.session is not None:
            other.session.send(text)


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
            f"{ctx.label(target)}, {article} {target.kind}",
            f"  type class:  {target.typeclass} {status}",
            f"  aliases:     {', '.join(target.aliases) or '-'}",
            f"  location:    {_place_name(target.location)}",
        ]
        if target.kind == "exit":
            lines.append(f"  destination: {_place_name(target.destination)}")
        if isinstance(target, Character):
            online = "in the game" if target.online else "away"
            lines.append(f"  account:     {target.account_id} ({online})")
            home = ctx.world.get(target.attributes.get("home", 0))
            lines.append(f"  home:        {_place_name(home or ctx.world.start_room)}")
        description = (target.description or "-").replace("\n", "\n" + " " * 15)
        lines.append(f"  description: {description}")
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
                ctx.msg(f"Removed {attribute} from {ctx.label(target)}.")
                if _someone_else(ctx, target):
                    audit(
                        ctx.session.name,
                        f"removed the attribute {attribute} from",
                        _audited(target),
                    )
            else:
                ctx.msg(f"{ctx.label(target)} has no attribute {attribute}.")
            return
        try:
            value = json.loads(ctx.rhs)
        except ValueError:
            value = ctx.rhs
        target.attributes[attribute] = value
        ctx.msg(f"Set {attribute} on {ctx.label(target)} to {json.dumps(value)}.")
        if _someone_else(ctx, target):
            shown = json.dumps(value, ensure_ascii=False)
            audit(
                ctx.session.name,
                f"set the attribute {attribute} of",
                f"{_audited(target)} to {shown}",
            )


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
        lines = [f"{plural(len(found), 'match', 'matches')}:"]
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
        ctx.msg(f"{ctx.label(target)} now runs {ctx.rhs}.")
        if _someone_else(ctx, target):
            audit(ctx.session.name, "changed the type class of", f"{_audited(target)} to {ctx.rhs}")


class CmdAlias(BuilderCommand):
    """Show or set the other names something answers to.

    Usage: alias <target>              (show them)
           alias <target> = <a>, <b>   (replace them)
           alias <target> =            (remove them)
    Example: alias jar = bottle, vessel
    """

    key = "alias"

    def run(self, ctx: Context) -> None:
        if not ctx.lhs:
            ctx.msg("Usage: alias <target> = <alias>, <alias>")
            return
        target = ctx.search(ctx.lhs, anywhere=True)
        if target is None:
            return
        if ctx.rhs is None:
            shown = ", ".join(target.aliases) or "no aliases"
            ctx.msg(f"{ctx.label(target)} has {shown}.")
            return
        names = [a.strip() for a in ctx.rhs.replace(";", ",").split(",")]
        target.aliases = [a for a in dict.fromkeys(names) if a and a.lower() != target.name.lower()]
        if target.aliases:
            ctx.msg(f"{ctx.label(target)} now also answers to {', '.join(target.aliases)}.")
        else:
            ctx.msg(f"{ctx.label(target)} has no aliases now.")
        if _someone_else(ctx, target):
            aliases = ", ".join(target.aliases) or "none"
            audit(ctx.session.name, "set the aliases of", f"{_audited(target)} to {aliases}")


class CmdSethome(BuilderCommand):
    """Set where a character's 'home' command takes them.

    Usage: sethome <character> = <room>    (or: sethome <character>, to clear it)
    Without a home of their own, characters go home to the start room.
    """

    key = "sethome"

    def run(self, ctx: Context) -> None:
        if not ctx.lhs:
            ctx.msg("Usage: sethome <character> = <room>")
            return
        who = ctx.search(ctx.lhs, anywhere=True)
        if who is None:
            return
        if who.kind != "character":
            ctx.msg(f"Only characters have homes; {ctx.label(who)} is not one.")
            return
        if not ctx.rhs:
            who.attributes.pop("home", None)
            ctx.msg(f"{possessive(who.name)} home is the start room again.")
            if _someone_else(ctx, who):
                audit(ctx.session.name, "set the home of", f"{_audited(who)} to the start room")
            return
        room = ctx.search(ctx.rhs, candidates=ctx.world.rooms(), where="in the world")
        if room is None:
            return
        who.attributes["home"] = room.id
        ctx.msg(f"{possessive(who.name)} home is now {_place_name(room)}.")
        if _someone_else(ctx, who):
            audit(ctx.session.name, "set the home of", f"{_audited(who)} to {_audited(room)}")
