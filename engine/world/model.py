"""The world: every room, exit, thing and character, in memory and in SQLite.

The engine owns world state; content only describes behaviour (type classes)
and the starter world.  Changes are applied in memory at once and staged for
the store; ``engine.world.durability`` commits them before any output that follows
reaches a player.  A reload never touches this state, and a restart restores
it from the database.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, overload

from engine.world import atomic, objectstore
from engine.world.objects import (
    KINDS,
    UNLOADED,
    Character,
    Exit,
    GameObject,
    Room,
    Thing,
    WorldError,
)
from engine.world.store import Store

log = logging.getLogger(__name__)

#: The usual short forms players type for compass and vertical exits.
SHORT_DIRECTIONS: dict[str, str] = {
    "north": "n",
    "south": "s",
    "east": "e",
    "west": "w",
    "up": "u",
    "down": "d",
    "northeast": "ne",
    "northwest": "nw",
    "southeast": "se",
    "southwest": "sw",
}

#: Resolves a type class path to a class, or raises with the reason it cannot.
Resolver = Callable[[str], type]


K = TypeVar("K", bound=GameObject)


def _of(kind: type[K], obj: GameObject) -> K:
    """``obj`` as the kind ``create`` made it (its class is always a subclass of the kind)."""
    if not isinstance(obj, kind):
        raise TypeError(f"{obj!r} is not a {kind.__name__}")
    return obj


@dataclass(frozen=True)
class BrokenTypeclass:
    """A type class path that does not load, and the objects held on their kind's stand-in."""

    path: str
    error: str
    objects: tuple[int, ...]


#: What a probe asks to be free on the database's disk, at least (see ``Batch.probe``).
PROBE_ROOM = 64 * 1024


@dataclass(eq=False)
class Batch(objectstore.Snapshot):
    """A snapshot, and how to undo the changes it holds if writing it fails.

    ``undo_log`` holds the states before the changes of every transaction
    staged into this snapshot.  ``untracked`` is True when a change was made
    outside any transaction (the engine's own): such a batch cannot be
    undone, nor one that made the character someone now plays, and is
    written again until it succeeds.
    """

    undo_log: atomic.Undo = field(default_factory=atomic.Undo)
    untracked: bool = False
    world: World | None = None
    #: After an undo: the rows this batch (and the changes since) touched, as
    #: memory has them again, which the probe writes back (see ``probe``).
    write_back: objectstore.Snapshot | None = None

    def undo(self) -> list[atomic.Receiver] | None:
        """Undo this batch, whose write failed, and everything changed since (on the loop).

        Returns who made the changes undone, or None when they cannot be undone.
        """
        return self.world.undo_uncommitted(self) if self.world is not None else None

    def probe(self) -> None:
        """Raise unless a write of this batch's size can be made durable now (worker thread).

        After a room check and a small write, the rows the undo put back are
        written as they are now: what the database holds already, unless the
        failed write reached the disk after all (a commit whose sync failed).
        """
        store = self.world.store if self.world is not None else None
        if store is not None:
            store.probe(max(PROBE_ROOM, 2 * self.size()))
            if self.write_back is not None:
                objectstore.write(store, self.write_back)
                self.write_back = None

    def size(self) -> int:
        """About how many bytes writing this batch adds to the database's files."""
        pages = len(self.rows) + len(self.deleted) + len(self.meta) + 2
        return 4096 * pages + sum(len(str(column)) for row in self.rows for column in row)


class World:
    """Every object of the running game, indexed by id."""

    def __init__(self, store: Store | None = None, resolver: Resolver | None = None) -> None:
        self.store = store
        self.objects: dict[int, GameObject] = {}
        self.start_room: Room | None = None
        self._next_id = 1
        self._dirty: dict[int, GameObject] = {}
        self._deleted: set[int] = set()
        self._meta: dict[str, str] = {}
        #: How to undo the changes staged since the last snapshot (see ``Batch``).
        self._undo = atomic.Undo()
        #: A change was staged since the last snapshot outside any transaction.
        self._untracked = False
        #: account id -> its character, as last found (``find_character`` checks it).
        self._characters: dict[int, Character] = {}
        #: Called after each staged change.  The game sets it once the world is
        #: open: from then on every change is committed before output that follows it.
        self.on_change: Callable[[], None] = lambda: None
        #: Type class path -> live class (None: every object gets its kind's base class).
        self.resolver = resolver
        #: path -> error for type classes that currently fail to resolve.
        self.broken: dict[str, str] = {}
        #: Called when an object whose type class does not load refuses someone
        #: (``refused``).  ``engine.live.typeclasses.TypeclassWatch`` sets it
        #: when it is made, to tell builders; without one nothing is told.
        self.on_refused: Callable[[GameObject, GameObject | None, str], None] = (
            lambda obj, actor, doing: None
        )

    # -- persistence ------------------------------------------------------------

    def stage(self, obj: GameObject) -> None:
        """Remember that ``obj`` changed; it is written with the next commit."""
        if obj.id in self.objects:
            self._dirty[obj.id] = obj
            self._changed()

    def _changed(self) -> None:
        if not atomic.recording():
            self._untracked = True
        self.on_change()

    def keep(self, txn: atomic.Transaction) -> None:
        """``txn`` committed in memory: keep its records until its changes are on disk.

        Only a world with a store commits to disk; one without keeps nothing.
        """
        if self.store is not None:
            self._undo.add(txn)

    def take_snapshot(self) -> Batch:
        """What changed since the last snapshot, as rows (runs on the event loop)."""
        snap = objectstore.snapshot(self._dirty.values(), self._deleted, self._meta)
        batch = Batch(snap.rows, snap.deleted, snap.meta, self._undo, self._untracked, self)
        self._dirty = {}
        self._deleted = set()
        self._meta = {}
        self._undo = atomic.Undo()
        self._untracked = False
        return batch

    def write_snapshot(self, snap: objectstore.Snapshot) -> None:
        """Store a snapshot (runs in a worker thread)."""
        if self.store is not None:
            objectstore.write(self.store, snap)

    def undo_uncommitted(self, batch: Batch) -> list[atomic.Receiver] | None:
        """Undo ``batch``, whose write failed, and every change staged since it was taken.

        The world is back as the last successful commit left it, which is
        what the database holds.  Nobody was told of these changes: output
        that follows a change waits for its commit.  Returns who made them
        (the callers of their transactions), or None, changing nothing, when
        they cannot be undone: some change was made outside a transaction
        (no record to undo it by), or undoing would take a character someone
        plays out of the world (made at their first login).
        """
        if batch.untracked or self._untracked or atomic.current() is not None:
            return None
        if batch.undo_log.strands_a_player() or self._undo.strands_a_player():
            return None
        undo = batch.undo_log
        undo.extend(self._undo)  # the changes made since come after the batch's
        self._undo = atomic.Undo()
        callers = undo.undo()
        # Memory is what the database holds again, so nothing is left to write:
        # a shutdown now writes nothing, and cannot fail on the disk.  Only if
        # the failed write reached the disk after all do they differ, so the
        # probe writes back every row it and the undo touched, as they are now.
        ids = {row[0] for row in batch.rows} | set(batch.deleted)
        ids |= self._dirty.keys() | self._deleted
        meta = {}
        if self.start_room is not None and ("start_room" in batch.meta or self._meta):
            meta["start_room"] = str(self.start_room.id)
        batch.write_back = objectstore.snapshot(
            (self.objects[i] for i in sorted(ids) if i in self.objects),
            (i for i in ids if i not in self.objects),
            meta,
        )
        self._dirty = {}
        self._deleted = set()
        self._meta = {}
        return callers

    def commit_now(self) -> None:
        """Write everything staged, synchronously (start-up and shutdown only)."""
        self.write_snapshot(self.take_snapshot())

    def load(self) -> int:
        """Restore every object from the store; returns how many there were."""
        if self.store is None:
            return 0
        rows, meta = objectstore.load(self.store)
        for row in rows:
            cls = KINDS[row["kind"]]
            obj = cls(
                None,
                row["id"],
                row["name"],
                aliases=row["aliases"],
                description=row["description"],
                typeclass=row["typeclass"],
                attributes=row["attributes"],
                account_id=row["account_id"],
            )
            self.objects[obj.id] = obj
        for row in rows:
            obj = self.objects[row["id"]]
            container = self.objects.get(row["location"]) if row["location"] is not None else None
            if container is not None:
                object.__setattr__(obj, "_location", container)
                container.contents.append(obj)
            if row["destination"] is not None:
                object.__setattr__(obj, "destination", self.objects.get(row["destination"]))
        for obj in self.objects.values():
            object.__setattr__(obj, "_world", self)
        self._next_id = max(self.objects, default=0) + 1
        start = meta.get("start_room")
        room = self.objects.get(int(start)) if start is not None else None
        if isinstance(room, Room):
            self.start_room = room
        for obj in list(self.objects.values()):
            self.refresh(obj)
        return len(rows)

    # -- type classes -------------------------------------------------------------

    def refresh(self, obj: GameObject) -> bool:
        """Put ``obj`` on the current class its path names, or its kind's stand-in.

        Returns False when the path does not resolve: the object then runs
        its kind's stand-in (``engine.world.objects.Unloaded``), which keeps
        its data and refuses to be taken, used, moved, entered or passed
        through, and ``broken`` says why.  Not the kind's base class: the
        class that does not load may be the one that refuses, and a missing
        class must never loosen the world.  Without a resolver (a world
        without content) every object is on its kind's base class.
        """
        base = KINDS[obj.kind]
        wanted: type = base
        ok = True
        if self.resolver is not None:
            try:
                cls = self.resolver(obj.typeclass)
                if not (isinstance(cls, type) and issubclass(cls, base)):
                    raise TypeError(f"{obj.typeclass} is not a {base.__name__} class")
                wanted = cls
                self.broken.pop(obj.typeclass, None)
            except Exception as exc:
                self.broken[obj.typeclass] = f"{type(exc).__name__}: {exc}"
                wanted = UNLOADED[obj.kind]
                ok = False
        if type(obj) is not wanted:
            object.__setattr__(obj, "__class__", wanted)
        return ok

    def plain(self, obj: GameObject) -> None:
        """Put ``obj`` on its kind's engine class: its type class failed in engine code.

        Until the next ``refresh`` of it (a reload of its type class), it
        behaves as the engine's own kind; its data is untouched.
        """
        for cls in type(obj).__mro__:
            if cls in KINDS.values():
                object.__setattr__(obj, "__class__", cls)
                return

    def refresh_paths(self, modules: Iterable[str]) -> list[BrokenTypeclass]:
        """Move objects whose type class lives in ``modules`` (or is broken) onto current classes.

        Cost grows with the objects concerned, not with the world.
        """
        prefixes = tuple(f"{m}." for m in modules)
        for obj in self.objects.values():
            if obj.typeclass.startswith(prefixes) or obj.typeclass in self.broken:
                self.refresh(obj)
        return self.broken_report()

    def refused(self, obj: GameObject, actor: GameObject | None, doing: str) -> None:
        """``obj``, on its kind's stand-in, refused ``actor`` ``doing`` (``on_refused`` is told)."""
        self.on_refused(obj, actor, doing)

    def broken_report(self) -> list[BrokenTypeclass]:
        """Each type class path that does not load, with the objects that have it."""
        report = []
        for path, error in sorted(self.broken.items()):
            ids = tuple(o.id for o in self.objects.values() if o.typeclass == path)
            if ids:
                report.append(BrokenTypeclass(path, error, ids))
        return report

    # -- creating and destroying ----------------------------------------------------

    # The object is of its kind's class (a type class subclasses it): typed by kind.
    @overload
    def create(
        self,
        kind: Literal["room"],
        name: str,
        *,
        location: GameObject | None = None,
        destination: GameObject | None = None,
        typeclass: str = "",
        description: str = "",
        aliases: Iterable[str] = (),
        account_id: int | None = None,
        attributes: dict[str, Any] | None = None,
    ) -> Room: ...

    @overload
    def create(
        self,
        kind: Literal["exit"],
        name: str,
        *,
        location: GameObject | None = None,
        destination: GameObject | None = None,
        typeclass: str = "",
        description: str = "",
        aliases: Iterable[str] = (),
        account_id: int | None = None,
        attributes: dict[str, Any] | None = None,
    ) -> Exit: ...

    @overload
    def create(
        self,
        kind: Literal["thing"],
        name: str,
        *,
        location: GameObject | None = None,
        destination: GameObject | None = None,
        typeclass: str = "",
        description: str = "",
        aliases: Iterable[str] = (),
        account_id: int | None = None,
        attributes: dict[str, Any] | None = None,
    ) -> Thing: ...

    @overload
    def create(
        self,
        kind: Literal["character"],
        name: str,
        *,
        location: GameObject | None = None,
        destination: GameObject | None = None,
        typeclass: str = "",
        description: str = "",
        aliases: Iterable[str] = (),
        account_id: int | None = None,
        attributes: dict[str, Any] | None = None,
    ) -> Character: ...

    @overload
    def create(
        self,
        kind: str,
        name: str,
        *,
        location: GameObject | None = None,
        destination: GameObject | None = None,
        typeclass: str = "",
        description: str = "",
        aliases: Iterable[str] = (),
        account_id: int | None = None,
        attributes: dict[str, Any] | None = None,
    ) -> GameObject: ...

    def create(
        self,
        kind: str,
        name: str,
        *,
        location: GameObject | None = None,
        destination: GameObject | None = None,
        typeclass: str = "",
        description: str = "",
        aliases: Iterable[str] = (),
        account_id: int | None = None,
        attributes: dict[str, Any] | None = None,
    ) -> GameObject:
        if kind not in KINDS:
            raise WorldError(f"unknown kind {kind!r}")
        name = name.strip()
        if not name:
            raise WorldError("a name is needed")
        atomic.touch_world(self)
        obj = KINDS[kind](
            self,
            self._next_id,
            name,
            aliases=list(aliases),
            description=description,
            typeclass=typeclass,
            attributes=attributes,
            account_id=account_id,
        )
        # Recorded before it joins the world: a transaction past its cap
        # (``atomic.TooManyChanges``) refuses it with nothing left behind.
        atomic.touch(obj, created=True)
        self._next_id += 1
        self.objects[obj.id] = obj
        # A rolled-back object's id may come again; it must not stay marked deleted.
        self._deleted.discard(obj.id)
        obj.destination = destination
        obj.location = location
        self.refresh(obj)
        self.stage(obj)
        return obj

    def create_room(self, name: str, description: str = "", typeclass: str = "") -> Room:
        room = _of(Room, self.create("room", name, description=description, typeclass=typeclass))
        if self.start_room is None:
            self.set_start(room)
        return room

    def set_start(self, room: Room) -> None:
        atomic.touch_world(self)
        self.start_room = room
        self._meta["start_room"] = str(room.id)
        self._changed()

    def open_exit(
        self,
        source: GameObject,
        name: str,
        destination: GameObject,
        aliases: Iterable[str] | None = None,
        typeclass: str = "",
    ) -> Exit:
        """An exit ``name`` from ``source`` to ``destination``; compass names get short forms."""
        if not isinstance(source, Room) or not isinstance(destination, Room):
            raise WorldError("exits lead from a room to a room")
        if source.find_exit(name):
            raise WorldError(f"{source.name} has an exit called {name} already")
        if aliases is None:
            short = SHORT_DIRECTIONS.get(name.lower())
            aliases = (short,) if short else ()
        return _of(Exit, self.create(
            "exit", name, location=source, destination=destination, aliases=aliases,
            typeclass=typeclass,
        ))  # fmt: skip

    def link(self, source: Room, name: str, destination: Room, back: str | None = None) -> Exit:
        """Open ``name`` from ``source`` to ``destination`` and, if named, ``back``."""
        there = self.open_exit(source, name, destination)
        if back:
            self.open_exit(destination, back, source)
        return there

    def destruction_of(self, obj: GameObject) -> list[GameObject]:
        """Everything destroying ``obj`` takes with it: itself, exits in and out, contents."""
        doomed: dict[int, GameObject] = {obj.id: obj}
        if obj.kind == "room":
            for other in self.objects.values():
                if other.kind == "exit" and other.destination is obj:
                    doomed[other.id] = other
        for inner in list(obj.contents):
            if inner.kind != "character":
                for item in self.destruction_of(inner):
                    doomed[item.id] = item
        return list(doomed.values())

    def destroy(self, obj: GameObject) -> list[GameObject]:
        """Destroy ``obj`` and what goes with it; characters inside go to the start room.

        A character is destroyed only while nobody plays it; what it carries
        goes with it.
        """
        if obj.kind == "character" and obj.session is not None:
            raise WorldError(f"{obj.name} is in the game now")
        if obj is self.start_room:
            raise WorldError("the start room cannot be destroyed")
        doomed = self.destruction_of(obj)
        for item in doomed:
            atomic.touch(item)
        for item in doomed:
            for inner in list(item.contents):
                if inner.kind == "character":
                    inner.location = self.start_room
        for item in doomed:
            item.location = None
            object.__setattr__(item, "destination", None)
            self.objects.pop(item.id, None)
            self._dirty.pop(item.id, None)
            self._deleted.add(item.id)
            object.__setattr__(item, "_world", None)
        self._changed()
        return doomed

    # -- characters -------------------------------------------------------------------

    def find_character(self, account_id: int) -> Character | None:
        """The account's character, if it has one.

        Remembered per account and checked before use (still in the world,
        still that account's), so that a login does not look at every object:
        a storm of N logins looked at N times N.
        """
        known = self._characters.get(account_id)
        if (
            known is not None
            and self.objects.get(known.id) is known
            and known.account_id == account_id
        ):
            return known
        found = next(
            (o for o in self.objects.values()
             if isinstance(o, Character) and o.account_id == account_id),
            None,
        )  # fmt: skip
        if found is not None:
            self._characters[account_id] = found
        return found

    def character_for(self, account_id: int, name: str) -> Character:
        """The account's character, created in the start room on first login."""
        character = self.find_character(account_id)
        if character is None:
            character = _of(
                Character,
                self.create("character", name, location=self.start_room, account_id=account_id),
            )
        return character

    def online(self) -> list[Character]:
        return [o for o in self.objects.values() if isinstance(o, Character) and o.online]

    def find_online(self, name: str) -> Character | None:
        name = name.lower()
        return next((c for c in self.online() if c.name.lower() == name), None)

    def rooms(self) -> list[Room]:
        return [o for o in self.objects.values() if isinstance(o, Room)]

    def get(self, obj_id: int) -> GameObject | None:
        return self.objects.get(obj_id)


__all__ = [
    "SHORT_DIRECTIONS",
    "BrokenTypeclass",
    "Character",
    "Exit",
    "GameObject",
    "Room",
    "Thing",
    "World",
    "WorldError",
]
