"""Atomic content: a command either completes or never happened (DGD's atomic functions).

While content runs, a ``Transaction`` is open.  The world records the state
of each object before its first change in the transaction (fields,
attributes, location and contents, class, whether it exists), and of each
world's counters before they change; sessions hold their output in it.

- ``commit``: the changes stand, and the held output is delivered in order.
- ``rollback``: every touched object gets its recorded state back (created
  objects vanish, destroyed ones return), the restored objects are staged
  again so SQLite gets them as they were, and the held output is dropped,
  except the caller's own text, which the caller may see before the error.

Nothing of a transaction can reach SQLite before it ends: the world is
committed by a task on the event loop, which cannot run while synchronous
content holds the loop.

Transactions nest (a lifecycle hook run during a reload a command started):
an inner commit hands its records and output to the outer transaction, an
inner rollback undoes only its own changes.

A committed transaction is done in memory, not yet on disk: its records go to
its world's ``Undo`` log until the commit to SQLite that holds its changes
succeeds.  If that commit fails (a full disk), the world undoes them
(``Undo.undo``), and the output they held, which was waiting for the commit
as ``HeldOutput``, is dropped instead of sent (``engine.world.durability``).

A transaction may be capped (``begin(limit=...)``, the ``max_changes``
setting for content): it records at most that many objects (created,
changed or destroyed, and the world's counters).  The change that would
record one more raises ``TooManyChanges`` before it changes anything, and so
does every later one; whoever ends the transaction rolls it back.  Undoing
is then bounded too, and so is the memory the records hold.  An inner
transaction gets what room its parent has left.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from engine.world.model import World
    from engine.world.objects import GameObject

#: What held output is: player-visible text, GMCP data, or a connection control (close).
OutputKind = Literal["text", "gmcp", "control"]

#: Runs one output action for a connection, after the world changes it reports are durable.
Deliver = Callable[[Callable[[], None]], None]


class Receiver(Protocol):
    """A connection whose output a transaction holds (``engine.net.session.Session``)."""

    def deliver(self, action: Callable[[], None]) -> None:
        """Run ``action`` once the changes made so far are durable."""
        ...

    def deliver_unchanged(self, action: Callable[[], None]) -> None:
        """Run ``action`` at once (it reports nothing that changed)."""
        ...

    def send(self, text: str, newline: bool = True, *, held: bool = True) -> None:
        """One message (``held=False``: not held by a transaction)."""
        ...


#: The open transaction, innermost first; content runs on one thread, the loop's.
_current: Transaction | None = None
#: True while recorded states are being put back (a rollback, an undo).
_restoring = False


def current() -> Transaction | None:
    return _current


class TooManyChanges(Exception):
    """A capped transaction was asked to record one object more than its cap allows.

    Raised before the change is made; the transaction refuses every further
    change and is rolled back when it ends (``engine.guard.guard`` says so
    to the player and to builders).
    """

    def __init__(self, cap: int) -> None:
        super().__init__(f"changed too much at once (more than {cap:,} changes)")
        self.cap = cap


def recording() -> bool:
    """Whether a change made now can be undone: a transaction records it, or it is an undo.

    The world notes changes made otherwise (the engine's own, outside
    content); a batch that holds one cannot be undone when its commit fails.
    """
    return _current is not None or _restoring


class HeldOutput:
    """Output a transaction held, on its way to a connection after the commit.

    Tagged so that, when the commit it waits for fails and the changes are
    undone, the durability layer knows whose output it drops
    (``engine.world.durability``).
    """

    __slots__ = ("action", "kind", "receiver")

    def __init__(self, receiver: Receiver, action: Callable[[], None], kind: OutputKind) -> None:
        self.receiver = receiver
        self.action = action
        self.kind = kind

    def __call__(self) -> None:
        self.action()


class _ObjectState:
    """An object as it was before its first change in a transaction."""

    __slots__ = (
        "aliases",
        "attributes",
        "cls",
        "contents",
        "created",
        "fields",
        "location",
        "member",
        "obj",
        "world",
    )

    def __init__(self, obj: GameObject, created: bool) -> None:
        values = vars(obj)
        self.obj = obj
        self.created = created
        self.cls = type(obj)
        self.world = values.get("_world")
        self.member = (
            not created and self.world is not None and self.world.objects.get(obj.id) is obj
        )
        self.fields = {
            name: values.get(name)
            for name in ("name", "description", "typeclass", "account_id", "destination")
        }
        self.aliases = list(values.get("aliases") or ())
        self.location = values.get("_location")
        self.contents = list(values.get("contents") or ())
        self.attributes = values["attributes"].to_json() if "attributes" in values else "{}"

    def restore(self) -> None:
        obj = self.obj
        # Into the object's own fields, never through its class: a type class may
        # override any of them (even with a property that raises), and an undo
        # must always complete.
        data = vars(obj)
        typeclass_changed = data.get("typeclass") != self.fields["typeclass"]
        data.update(self.fields)
        data["aliases"] = self.aliases
        data["_location"] = self.location
        data["contents"] = self.contents
        data["_seen"] = None  # a room's sorted contents may name undone objects
        data["attributes"]._values = json.loads(self.attributes)
        set_ = object.__setattr__
        world = self.world
        if world is None:
            world = vars(obj).get("_world")
        set_(obj, "_world", None if self.created else self.world)
        if world is None:
            return
        if self.member:
            world.objects[obj.id] = obj
            world._deleted.discard(obj.id)
            if type(obj).__name__ != self.cls.__name__ or typeclass_changed:
                # The class its (restored) path names now: a reload may have
                # replaced the class recorded at the first change.
                world.refresh(obj)
            world.stage(obj)
        else:
            if world.objects.get(obj.id) is obj:
                del world.objects[obj.id]
            world._dirty.pop(obj.id, None)
            if self.created:
                # Usually never written; deleting covers content that forced a commit.
                world._deleted.add(obj.id)
                world.on_change()


class _CreatedState(_ObjectState):
    """An object created in the transaction: undoing it takes it out of the world.

    Nothing of its state is recorded (it had none before), which keeps a
    command that creates thousands of objects cheap to record and to undo.
    Undoing also cuts what ties it to other objects and to itself (its
    location, contents, destination, its attributes' owner), so that
    reference counting frees it at once, even when a full collection has
    frozen it (``engine.longlived``); content that kept it holds an object
    outside every world.
    """

    __slots__ = ()

    def __init__(self, obj: GameObject) -> None:
        self.obj = obj
        self.created = True
        self.member = False
        self.world = vars(obj).get("_world")

    def restore(self) -> None:
        obj = self.obj
        # Into the object's own fields, never through its class (see ``_ObjectState``).
        data = vars(obj)
        world = self.world
        if world is None:
            world = data.get("_world")
        data["_world"] = None
        data["_location"] = None
        data["contents"] = []
        data["destination"] = None
        data["_seen"] = None
        attributes = data.get("attributes")
        if attributes is not None:
            attributes._owner = _detached()
        if world is None:
            return
        if world.objects.get(obj.id) is obj:
            del world.objects[obj.id]
        world._dirty.pop(obj.id, None)
        # Usually never written; deleting covers content that forced a commit.
        world._deleted.add(obj.id)
        world.on_change()


#: The owner of undone objects' attributes (see ``_CreatedState``), made on first use.
_DETACHED: GameObject | None = None


def _detached() -> GameObject:
    """An object in no world: setting an undone object's attribute stages nothing."""
    global _DETACHED
    if _DETACHED is None:
        from engine.world.objects import GameObject  # objects imports this module

        _DETACHED = GameObject(None, 0, "undone")
    return _DETACHED


class _WorldState:
    """A world's counters and pending meta values before a transaction changed them."""

    __slots__ = ("meta", "next_id", "start_room", "world")

    def __init__(self, world: World) -> None:
        self.world = world
        self.next_id = world._next_id
        self.start_room = world.start_room
        self.meta = dict(world._meta)

    def restore(self) -> None:
        world = self.world
        world._next_id = self.next_id
        world.start_room = self.start_room
        world._meta = self.meta


#: The room of a transaction without a cap.
UNCAPPED = sys.maxsize


class Transaction:
    """The undo records and held output of one stretch of content."""

    __slots__ = ("_held", "_records", "caller", "cap", "done", "parent", "refused", "room")

    def __init__(
        self,
        caller: Receiver | None = None,
        parent: Transaction | None = None,
        limit: int | None = None,
    ) -> None:
        self.caller = caller
        self.parent = parent
        #: id(object or world) -> its state before the first change; made on first use.
        self._records: dict[int, _ObjectState | _WorldState] | None = None
        self._held: list[tuple[Receiver, Callable[[], None], OutputKind]] = []
        self.done = False
        #: How many objects this transaction may record, and the cap said in the refusal.
        room = cap = UNCAPPED
        if parent is not None:
            room = parent.room - len(parent._records or ())
            cap = parent.cap
        if limit is not None and limit < room:
            room = cap = limit
        self.room: int = room
        self.cap: int = cap
        #: Where the first change refused for the cap was asked for, innermost call
        #: first, as (file, line, function); None while none was.  Once set the
        #: transaction must be rolled back.
        self.refused: list[tuple[str, int, str]] | None = None

    # -- recording (called by the world and by sessions) --------------------------

    def touch(self, obj: GameObject, created: bool = False) -> None:
        """Record ``obj`` as it is now, unless it was recorded already in this transaction."""
        records = self._records
        if records is None:
            records = self._records = {}
        key = id(obj)
        if key not in records:
            if len(records) >= self.room:
                self._refuse()
            records[key] = _CreatedState(obj) if created else _ObjectState(obj, False)

    def touch_world(self, world: World) -> None:
        records = self._records
        if records is None:
            records = self._records = {}
        key = id(world)
        if key not in records:
            if len(records) >= self.room:
                self._refuse()
            records[key] = _WorldState(world)

    def _refuse(self) -> None:
        if self.refused is None:
            # Plain data, not frames: the undo log must not outlive the rollback.
            where = []
            frame: FrameType | None = sys._getframe(1)
            while frame is not None:
                code = frame.f_code
                where.append((code.co_filename, frame.f_lineno, code.co_name))
                frame = frame.f_back
            self.refused = where
        raise TooManyChanges(self.cap)

    def hold(self, session: Receiver, action: Callable[[], None], kind: OutputKind) -> None:
        self._held.append((session, action, kind))

    @property
    def changed(self) -> bool:
        return bool(self._records)

    # -- ending -----------------------------------------------------------------------

    def commit(self) -> None:
        """Keep the changes; deliver the held output (or hand both to the outer transaction)."""
        self._end()
        parent = self.parent
        if parent is not None:
            if self._records:
                if parent._records is None:
                    parent._records = {}
                for key, state in self._records.items():
                    parent._records.setdefault(key, state)
            parent._held.extend(self._held)
            return
        changed = self.changed
        if changed:
            # Undoable until the commit to disk that holds these changes succeeds.
            for world in self._worlds():
                world.keep(self)
        for session, action, kind in self._held:
            output = HeldOutput(session, action, kind)
            if changed:
                session.deliver(output)  # waits for this stretch's changes to be durable
            else:
                session.deliver_unchanged(output)

    def rollback(self, keep_caller_text: bool = True) -> None:
        """Undo every change; deliver only the caller's text and connection controls.

        ``keep_caller_text=False`` drops the caller's text too (a refused
        change: what it said would contradict the refusal).
        """
        self._end()
        records, self._records = self._records, None
        _restore(list((records or {}).values()))
        del records  # the undo log goes now, not with the transaction
        kept = [
            (session, action, kind)
            for session, action, kind in self._held
            if kind == "control" or (keep_caller_text and kind == "text" and session is self.caller)
        ]
        if self.parent is not None:
            self.parent._held.extend(kept)
            return
        for session, action, _kind in kept:
            session.deliver_unchanged(action)

    def _worlds(self) -> list[World]:
        """The worlds whose objects or counters this transaction changed."""
        worlds: dict[int, World] = {}
        for state in (self._records or {}).values():
            if isinstance(state, _WorldState):
                world: World | None = state.world
            else:
                world = state.world or vars(state.obj).get("_world")
            if world is not None:
                worlds[id(world)] = world
        return list(worlds.values())

    def _end(self) -> None:
        global _current
        if self.done:
            raise RuntimeError("transaction ended twice")
        self.done = True
        if _current is self:
            _current = self.parent


def _restore(states: list[_ObjectState | _WorldState]) -> None:
    """Put recorded states back, newest first."""
    global _restoring
    outer = _restoring
    _restoring = True
    try:
        for state in reversed(states):
            state.restore()
    finally:
        _restoring = outer


class Undo:
    """How to undo changes committed in memory whose commit to disk has not succeeded yet.

    The states before the first change of each object (and of the world's
    counters) since the last commit that reached the disk, gathered from the
    transactions that made them, and who made them.  A world keeps one per
    batch of changes (``engine.world.model.World.keep``).
    """

    __slots__ = ("_callers", "_records")

    def __init__(self) -> None:
        self._records: dict[int, _ObjectState | _WorldState] = {}
        self._callers: dict[int, Receiver] = {}

    def add(self, txn: Transaction) -> None:
        """Remember ``txn``'s records; an object's earliest state wins."""
        records = self._records
        for key, state in (txn._records or {}).items():
            records.setdefault(key, state)
        caller = txn.caller
        if caller is not None:
            self._callers.setdefault(id(caller), caller)

    def extend(self, other: Undo) -> None:
        """Take ``other``'s records and callers, which come after this log's."""
        for key, state in other._records.items():
            self._records.setdefault(key, state)
        for key, caller in other._callers.items():
            self._callers.setdefault(key, caller)

    def __bool__(self) -> bool:
        return bool(self._records)

    def strands_a_player(self) -> bool:
        """Whether undoing would take a character someone plays out of the world, or nowhere.

        The connection holds on to its character (a first login creates it,
        an entry puts it in a room): undone, it would play an object the
        world no longer has, whose id the next object may take.
        """
        return any(
            isinstance(state, _ObjectState)
            and vars(state.obj).get("session") is not None
            and (state.created or state.location is None)
            for state in self._records.values()
        )

    def undo(self) -> list[Receiver]:
        """Put every recorded state back; returns who made the changes, first come first."""
        _restore(list(self._records.values()))
        callers = list(self._callers.values())
        self._records = {}
        self._callers = {}
        return callers


def begin(caller: Receiver | None = None, limit: int | None = None) -> Transaction:
    """Open a transaction inside the current one (if any) and make it current.

    ``limit``: the most objects it may record (``TooManyChanges`` past it);
    a nested transaction gets no more room than its parent has left.
    """
    global _current
    txn = Transaction(caller, _current, limit)
    _current = txn
    return txn


def touch(obj: GameObject, created: bool = False) -> None:
    """Record ``obj`` in the open transaction, if there is one (the world calls this)."""
    txn = _current
    if txn is not None:
        txn.touch(obj, created)


def touch_world(world: World) -> None:
    txn = _current
    if txn is not None:
        txn.touch_world(world)
