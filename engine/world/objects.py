"""World objects: data owned by the engine, behaviour from a reloadable type class.

Every object is an instance of the class its ``typeclass`` path names in
content (``content.typeclasses.things.Lamp``), which subclasses one of the
engine's kinds below.  The data lives in the instance's fields and
attributes; the class is only behaviour, so the engine can move an object
onto a new version of its class (after a reload), or onto the stand-in for
its kind (``Unloaded``, while the path does not load), without touching its
data.  A missing type class never loosens the world: the stand-in refuses
what the real class might have refused.

Assigning a persisted field (``obj.description = ...``) or an attribute
(``obj.attributes["lit"] = True``) stages the change for the store; the
engine commits it before any output that follows reaches a player.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from engine.world import atomic, grammar

#: Fields stored in the database; assigning one stages the object for commit.
PERSISTED = frozenset({"name", "aliases", "description", "typeclass", "account_id", "destination"})


class Stager(Protocol):
    """The world an object belongs to (``engine.world.model.World``), as the object sees it."""

    def stage(self, obj: GameObject) -> None:
        """Queue ``obj``'s changed fields for the next commit."""
        ...

    def refused(self, obj: GameObject, actor: GameObject | None, doing: str) -> None:
        """``obj``, whose type class does not load, refused ``actor`` ``doing``: tell builders."""
        ...


class Listener(Protocol):
    """The connection playing a character (``engine.net.session.Session``), as the world sees it."""

    def send(self, text: str) -> None:
        """One message to the player."""
        ...

    def room_changed(self, room: GameObject | None) -> None:
        """The character now stands in ``room`` (clients with a mapper are told)."""
        ...


@dataclass(slots=True)
class Present:
    """What is in a room, as ``look`` shows it: things, exits and the characters played now."""

    things: list[GameObject]
    exits: list[GameObject]
    awake: list[GameObject]


class WorldError(Exception):
    """A world operation that cannot be done, with a message for the builder or player."""


class Attributes(MutableMapping[str, Any]):
    """An object's attributes: JSON values, checked when set, persisted on change."""

    def __init__(self, owner: GameObject, values: dict[str, Any] | None = None) -> None:
        self._owner = owner
        self._values: dict[str, Any] = dict(values or {})

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __setitem__(self, key: str, value: Any) -> None:
        if not isinstance(key, str) or not key:
            raise TypeError(f"attribute names are non-empty strings, not {key!r}")
        try:
            value = json.loads(json.dumps(value))
        except (TypeError, ValueError) as exc:
            raise TypeError(f"attribute {key!r} must be JSON data: {exc}") from None
        atomic.touch(self._owner)
        self._values[key] = value
        self._owner._changed()

    def __delitem__(self, key: str) -> None:
        if key not in self._values:
            raise KeyError(key)
        atomic.touch(self._owner)
        del self._values[key]
        self._owner._changed()

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def to_json(self) -> str:
        return json.dumps(self._values, sort_keys=True)

    def __repr__(self) -> str:
        return f"Attributes({self._values!r})"


class GameObject:
    """What every world object has and does; the engine's fallback behaviour.

    Subclass the kinds (``Room``, ``Exit``, ``Thing``, ``Character``) in
    content and override the hooks: ``appearance``, ``at_get``, ``at_drop``,
    ``at_use``, ``at_traverse``.
    """

    kind: ClassVar[str] = "thing"
    #: The content class a new object of this kind gets unless told otherwise.
    default_typeclass: ClassVar[str] = "content.typeclasses.things.Thing"

    # The fields every object has, set in ``__init__`` past ``__setattr__`` (which
    # stages persisted ones for the store).
    _world: Stager | None
    id: int
    name: str
    aliases: list[str]
    description: str
    typeclass: str
    account_id: int | None
    destination: GameObject | None
    _location: GameObject | None
    contents: list[GameObject]
    attributes: Attributes
    #: The connection playing this object (characters only), None while offline.
    session: Listener | None
    #: What ``Room.appearance`` sorted out of ``contents``, until it changes (``_sorted``).
    _seen: tuple[list[GameObject], int, Present] | None

    def __init__(
        self,
        world: Stager | None,
        id: int,
        name: str,
        *,
        aliases: list[str] | tuple[str, ...] = (),
        description: str = "",
        typeclass: str = "",
        attributes: dict[str, Any] | None = None,
        account_id: int | None = None,
    ) -> None:
        set_ = object.__setattr__
        set_(self, "_world", None)
        set_(self, "id", id)
        set_(self, "name", name)
        set_(self, "aliases", list(aliases))
        set_(self, "description", description)
        set_(self, "typeclass", typeclass or self.default_typeclass)
        set_(self, "account_id", account_id)
        set_(self, "destination", None)
        set_(self, "_location", None)
        set_(self, "contents", [])
        set_(self, "attributes", Attributes(self, attributes))
        set_(self, "session", None)
        set_(self, "_seen", None)
        set_(self, "_world", world)

    # -- persistence ------------------------------------------------------------

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "aliases":
            value = [str(a) for a in value]
        if name in PERSISTED:
            atomic.touch(self)
            object.__setattr__(self, name, value)
            self._changed()
        else:
            object.__setattr__(self, name, value)
            if name == "session" and self._location is not None:
                object.__setattr__(self._location, "_seen", None)  # woke or fell asleep

    def _changed(self) -> None:
        world = self._world
        if world is not None:
            world.stage(self)

    @property
    def location(self) -> GameObject | None:
        return self._location

    @location.setter
    def location(self, where: GameObject | None) -> None:
        """Moving keeps both rooms' ``contents`` right and stages the change."""
        old = self._location
        if old is where:
            return
        if atomic.current() is not None:
            atomic.touch(self)
            if old is not None:
                atomic.touch(old)
            if where is not None:
                atomic.touch(where)
        set_ = object.__setattr__
        if old is not None:
            set_(old, "_seen", None)
            if self in old.contents:
                old.contents.remove(self)
        set_(self, "_location", where)
        if where is not None:
            set_(where, "_seen", None)
            where.contents.append(self)
        self._changed()
        self._moved(where)

    def _moved(self, where: GameObject | None) -> None:
        """Called by the engine after every move (``Character`` tells the client)."""

    # -- moving: the world's rules, then the type classes' hooks -----------------

    def move_to(
        self, destination: GameObject | None, *, quiet: bool = False, by: GameObject | None = None
    ) -> None:
        """Move into ``destination``, or raise ``WorldError`` saying why not.

        Every move a command makes goes through here: first the world's rules
        (``move_problem``), then ``at_pre_move``, which a type class may use
        to refuse, then the move, then ``at_post_move``.  ``by`` is who makes
        the move (None: the object itself or the engine); ``quiet`` asks the
        hooks not to announce it.

        Nothing goes into an object whose type class does not load
        (``Unloaded.refuse_entry``): the missing class may be the one that
        keeps things out, and a missing class never loosens the world.
        """
        problem = self.move_problem(destination)
        if problem is None and isinstance(destination, Unloaded):
            problem = destination.refuse_entry(self, by=by)
        if problem is None:
            problem = self.at_pre_move(destination, by=by)
        if problem:
            raise WorldError(problem)
        source = self.location
        self.location = destination
        self.at_post_move(source, by=by, quiet=quiet)

    def move_problem(self, destination: GameObject | None) -> str | None:
        """Why the world forbids moving into ``destination``, or None.

        Rooms and exits stay where they are; nothing goes into an exit;
        nothing goes inside itself or inside what it holds; characters stand
        only in rooms.
        """
        if destination is None:
            return None
        if self.kind in ("room", "exit") or destination.kind == "exit":
            return "Rooms and exits stay where they are, and nothing goes into an exit."
        holder: GameObject | None = destination
        while holder is not None:
            if holder is self:
                return f"{self.name} cannot go inside itself."
            holder = holder.location
        if self.kind == "character" and destination.kind != "room":
            return "Characters can only be teleported into rooms."
        return None

    def at_pre_move(self, destination: GameObject | None, *, by: GameObject | None) -> str | None:
        """Return a refusal to keep this from moving to ``destination``, or None to allow it."""
        return None

    def at_post_move(
        self, source: GameObject | None, *, by: GameObject | None, quiet: bool
    ) -> None:
        """Called after a move from ``source`` to where this now is."""

    # -- speech -----------------------------------------------------------------

    def at_say(self, text: str) -> str:
        """What this character says when its player types ``say text`` (change it here)."""
        return text

    def at_speech(self, speaker: GameObject, text: str) -> str:
        """How this place carries ``speaker``'s words (an echoing hall, a muffled cellar)."""
        return text

    def at_hear(self, speaker: GameObject, text: str) -> str:
        """What this character hears when ``speaker`` says ``text`` (a deaf ear, a translator)."""
        return text

    # -- naming -------------------------------------------------------------------

    @property
    def dbref(self) -> str:
        return f"#{self.id}"

    def matches(self, word: str) -> bool:
        """True if ``word`` is this object's name or one of its aliases (any case)."""
        word = word.strip().lower()
        return word == self.name.lower() or word in (a.lower() for a in self.aliases)

    def display_name(self, looker: GameObject | None = None) -> str:
        """The name as ``looker`` sees it (a lit lamp says so); type classes override it."""
        return self.name

    def a_name(self, looker: GameObject | None = None) -> str:
        """``a brass lamp``, ``an iron key``; characters and proper names without an article."""
        shown = self.display_name(looker)
        if self.kind in ("character", "room") or grammar.is_proper(self.name):
            return shown
        return f"{grammar.article_for(self.name)} {shown}"

    def the_name(self, looker: GameObject | None = None, capital: bool = False) -> str:
        """``the brass lamp`` (``The`` with ``capital``); characters and proper names bare."""
        shown = self.display_name(looker)
        if self.kind in ("character", "room") or grammar.is_proper(self.name):
            return shown
        return f"{'The' if capital else 'the'} {shown}"

    # -- behaviour hooks (type classes override these) ------------------------

    def appearance(self, looker: GameObject) -> str:
        """What ``looker`` sees when looking at this object."""
        return "\n".join(filter(None, [self.display_name(looker), self.description]))

    def at_get(self, getter: GameObject) -> str | None:
        """Return a refusal to keep ``getter`` from picking this up, or None to allow it."""
        return None

    def at_drop(self, dropper: GameObject) -> None:
        """Called after ``dropper`` put this down."""

    def at_use(self, user: GameObject) -> str:
        """What happens when ``user`` uses this; the text is shown to the user."""
        return f"You cannot think of a way to use {self.the_name(user)}."

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.dbref} {self.name!r}>"


class Room(GameObject):
    kind = "room"
    default_typeclass = "content.typeclasses.rooms.Room"
    #: How many other characters ``look`` names before summing up the rest.
    CROWD: ClassVar[int] = 15

    @property
    def exits(self) -> list[Exit]:
        return [o for o in self.contents if isinstance(o, Exit)]

    def find_exit(self, word: str) -> Exit | None:
        return next((e for e in self.exits if e.matches(word)), None)

    def characters(self, online_only: bool = True) -> list[Character]:
        return [
            o for o in self.contents
            if isinstance(o, Character) and (o.online or not online_only)
        ]  # fmt: skip

    def things(self) -> list[GameObject]:
        return [o for o in self.contents if o.kind == "thing"]

    def appearance(self, looker: GameObject) -> str:
        lines = [self.display_name(looker)]
        if self.description:
            lines.append(self.description)
        present = self._sorted()
        if present.things:
            lines.append(f"You see: {', '.join(t.a_name(looker) for t in present.things)}.")
        names = ", ".join(e.display_name(looker) for e in present.exits)
        lines.append(f"Exits: {names}." if names else "There is no obvious way out.")
        awake = present.awake
        # The looker is among them exactly when it is here and played now.
        count = len(awake) - (looker.location is self and looker.session is not None)
        if count > 0:
            # A crowd is summed up: a list of 200 names helps nobody, and the
            # cost of a look should not grow with the room's population.
            shown = [c for c in awake[: self.CROWD + 1] if c is not looker][: self.CROWD]
            names = ", ".join(c.display_name(looker) for c in shown)
            more = count - len(shown)
            lines.append(f"Here: {names}" + (f" and {more} others." if more > 0 else "."))
        return "\n".join(lines)

    def _sorted(self) -> Present:
        """The contents sorted out for ``appearance``, kept until they change.

        Moving in or out and a character here waking or falling asleep clear
        it; a transaction undone puts back a new contents list, which the
        check against the list itself catches.  Every ``look`` in a crowded
        room would otherwise walk the whole crowd: most of its cost.
        """
        contents = self.contents
        seen = self._seen
        if seen is not None and seen[0] is contents and seen[1] == len(contents):
            return seen[2]
        present = Present([], [], [])
        for item in contents:
            if item.session is not None:  # only a character played now has one
                present.awake.append(item)
            elif item.kind == "thing":
                present.things.append(item)
            elif item.kind == "exit":
                present.exits.append(item)
        object.__setattr__(self, "_seen", (contents, len(contents), present))
        return present


class Exit(GameObject):
    """A one-way way out of its ``location`` to its ``destination``."""

    kind = "exit"
    default_typeclass = "content.typeclasses.exits.Exit"

    def appearance(self, looker: GameObject) -> str:
        where = self.destination.display_name(looker) if self.destination else "nowhere"
        text = self.description or f"The way {self.display_name(looker)} leads to {where}."
        return text

    def at_traverse(self, traveller: GameObject) -> str | None:
        """Return a refusal to keep ``traveller`` from passing, or None to let it through."""
        if self.destination is None:
            return "That way leads nowhere."
        return None


class Thing(GameObject):
    kind = "thing"
    default_typeclass = "content.typeclasses.things.Thing"


class Character(GameObject):
    """A player's body; ``session`` is the connection playing it, None while offline."""

    kind = "character"
    default_typeclass = "content.typeclasses.characters.Character"
    session: Listener | None

    @property
    def online(self) -> bool:
        return self.session is not None

    def _moved(self, where: GameObject | None) -> None:
        """Moving also tells the player's client (GMCP ``Room.Info``) where it is."""
        if self.session is not None:
            self.session.room_changed(where)

    def appearance(self, looker: GameObject) -> str:
        text = self.description or f"{self.display_name(looker)} looks like an adventurer."
        carried = [t.a_name(looker) for t in self.contents]
        if carried:
            text += f"\nCarrying: {', '.join(carried)}."
        if not self.online:
            text += f"\n{self.display_name(looker)} is asleep."
        return text


#: The engine's base class of each kind (the class of every object of a world without content).
KINDS: dict[str, type[GameObject]] = {
    "room": Room,
    "exit": Exit,
    "thing": Thing,
    "character": Character,
}

#: What the refusals end with: the player knows it is not their doing, nor for good.
TOLD = "just now; the builders have been told."


class Unloaded(GameObject):
    """The behaviour of an object whose type class does not load: its data, held still.

    The rule: a missing type class never loosens the world.  The class that
    does not load (its file deleted, renamed, stashed) may be the very one
    that refuses: a statue that will not budge, a door that stays locked, a
    room that keeps people out.  Falling back on the kind's base class would
    allow all of that, so while the path does not load the object is on the
    stand-in for its kind (``UNLOADED``, chosen by ``World.refresh``):

    - it is not taken (``at_get``), used (``at_use``), moved (``at_pre_move``:
      no ``drop``, ``give``, ``teleport``, and a character does not walk) or
      passed through (``at_traverse``);
    - nothing is moved into it (``refuse_entry``, checked by ``move_to``): no
      walking into a room, giving to a character or putting into a thing;
    - what is already inside may leave, and it can be looked at: its name,
      description, attributes and stored path are its data, untouched;
    - speech hooks (``at_say``, ``at_speech``, ``at_hear``) and
      ``appearance`` run the plain behaviour of its kind.

    Each refusal is one line for the player, and the world is told
    (``Stager.refused``), which tells builders at most once a minute per
    object.  Since the hooks live here, in the engine, every game's commands
    get the refusals, not only the starter's.  When the path loads again the
    object goes back onto its class and the refusals stop.
    """

    def _subject(self, looker: GameObject | None) -> str:
        """How a refusal names this object: ``The stone statue``, ``The way north``."""
        if self.kind == "exit":
            return f"The way {self.display_name(looker)}"
        return self.the_name(looker, capital=True)

    def _refuse(self, actor: GameObject | None, doing: str, line: str) -> str:
        """Tell the world (and so builders) what was refused; ``line`` for the player."""
        world = self._world
        if world is not None:
            world.refused(self, actor, doing)
        return line

    def _label(self) -> str:
        return f"{self.name} {self.dbref}"

    def at_get(self, getter: GameObject) -> str | None:
        """Refused: the missing class may keep it where it is."""
        verb = "cannot be handled" if self.kind == "thing" else "cannot be taken"
        line = f"{self._subject(getter)} {verb} {TOLD}"
        return self._refuse(getter, f"get {self._label()}", line)

    def at_use(self, user: GameObject) -> str:
        """Refused: only the missing class knows what using it does."""
        verb = "cannot be handled" if self.kind == "thing" else "cannot be used"
        line = f"{self._subject(user)} {verb} {TOLD}"
        return self._refuse(user, f"use {self._label()}", line)

    def at_traverse(self, traveller: GameObject) -> str | None:
        """Refused: the missing class may be a locked door."""
        line = f"{self._subject(traveller)} cannot be used {TOLD}"
        return self._refuse(traveller, f"pass through {self._label()}", line)

    def at_pre_move(self, destination: GameObject | None, *, by: GameObject | None) -> str | None:
        """Refused: no move of it (get, drop, give, teleport, walking) while its class is out."""
        if self.kind == "character" and by in (None, self):
            line = f"You cannot move {TOLD}"
        elif self.kind == "thing":
            line = f"{self._subject(by)} cannot be handled {TOLD}"
        else:
            line = f"{self._subject(by)} cannot be moved {TOLD}"
        return self._refuse(by or self, f"move {self._label()}", line)

    def refuse_entry(self, mover: GameObject, *, by: GameObject | None) -> str:
        """Why ``mover`` may not go in: the missing class may be the one that keeps it out."""
        looker = by or mover
        if self.kind == "room":
            if mover.kind == "character":
                line = f"{self._subject(looker)} cannot be entered {TOLD}"
            else:
                line = f"Nothing can be left in {self.the_name(looker)} {TOLD}"
        elif self.kind == "character":
            if looker is self:
                line = f"You cannot take anything {TOLD}"
            else:
                line = f"{self._subject(looker)} cannot take anything {TOLD}"
        else:
            line = f"Nothing can be put in {self.the_name(looker)} {TOLD}"
        return self._refuse(looker, f"move {mover.name} {mover.dbref} into {self._label()}", line)


class UnloadedRoom(Unloaded, Room):
    """A room whose type class does not load (see ``Unloaded``)."""


class UnloadedExit(Unloaded, Exit):
    """An exit whose type class does not load (see ``Unloaded``)."""


class UnloadedThing(Unloaded, Thing):
    """A thing whose type class does not load (see ``Unloaded``)."""


class UnloadedCharacter(Unloaded, Character):
    """A character whose type class does not load (see ``Unloaded``)."""


#: The stand-in of each kind: what an object runs while its type class path does not load.
UNLOADED: dict[str, type[GameObject]] = {
    "room": UnloadedRoom,
    "exit": UnloadedExit,
    "thing": UnloadedThing,
    "character": UnloadedCharacter,
}
