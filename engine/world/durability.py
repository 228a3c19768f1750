"""Durable on acknowledgement: output that follows a change waits for its commit.

World changes are applied in memory at once and staged for SQLite; a
background flusher commits them in a worker thread (group commit: everything
staged meanwhile goes in one transaction).  Every piece of output is tagged
with the newest staged change at the moment it was produced, and is released
only once that change is committed.  So when a player reads "You pick up the
lamp.", the pick-up is on disk, and a ``kill -9`` right after loses nothing
anyone was told.  Output that follows no change goes out at once.

Tagging (not a global pause) keeps a stream of writes from starving output:
each message waits for its own changes only.

When a commit fails (a full disk, an I/O error), the changes it held and
every change made since are undone in memory (``Undoable.undo``): their
output is still held, so nobody was told of them.  That output is dropped,
each player whose command made them, or whose output was dropped with them,
gets the usual refusal instead, and output that reports no change (prompts)
goes out.  Until a probe write succeeds changes are refused (``SaveState``)
and nothing waits on the disk.  A batch holding a change that cannot be
undone (the engine's own, made outside any transaction, or the character a
player has just entered the game with) is written again until it succeeds,
as every batch once was.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Sequence
from typing import Generic, Protocol, TypeVar, runtime_checkable

from engine.world.atomic import HeldOutput, Receiver

log = logging.getLogger(__name__)

P = TypeVar("P")


def refusal_line(reason: str) -> str:
    """What a player is told when a change is refused, or undone, because saving fails."""
    return f"The world cannot be saved right now: {reason}. Nothing was changed."


@runtime_checkable
class Undoable(Protocol):
    """A snapshot whose changes can be undone in memory when writing it fails.

    ``engine.world.model.Batch`` is one; a snapshot that is not is written
    again until it succeeds.
    """

    def undo(self) -> Sequence[Receiver] | None:
        """Undo its changes and all since (on the loop): who made them, or None if it cannot."""
        ...

    def probe(self) -> None:
        """Raise unless a write like this one can be made durable now (in a worker thread)."""
        ...


class SaveState:
    """Whether the world can be saved now: set by ``DurableOutput``, read by the content guard.

    A shared object rather than a callback, so the guard (built before the
    world) and the committer (built after it) need not know each other.
    """

    def __init__(self) -> None:
        #: Why saving fails now ("disk full"), or None while it works.
        self.trouble: str | None = None

    def refusal(self) -> str | None:
        return self.trouble


class DurableOutput(Generic[P]):
    """Orders output after the commits it depends on.

    ``take`` runs on the event loop and snapshots what is staged (objects
    change on the loop, so they are read there); ``write`` runs in a worker
    thread and makes the snapshot durable.  When a write fails, an
    ``Undoable`` snapshot is undone with everything staged since, and probed
    until writing works; any other is written again, before any newer one,
    until it succeeds.
    """

    def __init__(
        self,
        take: Callable[[], P],
        write: Callable[[P], object],
        on_trouble: Callable[[str], None] = lambda reason: None,
        on_recovery: Callable[[], None] = lambda: None,
        state: SaveState | None = None,
    ) -> None:
        self._take = take
        self._write = write
        #: A snapshot whose write failed, with the staged count it makes durable.
        self._retry: tuple[P, int] | None = None
        self.staged = 0
        self.committed = 0
        self._held: deque[tuple[int, Callable[[], None]]] = deque()
        self._flusher: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self.failures = 0
        #: Whether saving works now, shared with those who refuse changes while it does not.
        self.state = state if state is not None else SaveState()
        self._on_trouble = on_trouble
        self._on_recovery = on_recovery
        #: A snapshot whose changes were undone: it is probed until a write works again.
        self._probe: Undoable | None = None

    @property
    def trouble(self) -> str | None:
        """Why the world cannot be saved right now ("disk full"), or None while it can."""
        return self.state.trouble

    @trouble.setter
    def trouble(self, reason: str | None) -> None:
        self.state.trouble = reason

    def changed(self) -> None:
        """A change was staged: output from now on waits until it is committed."""
        self.staged += 1
        self._idle.clear()
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush(), name="commit")

    def after_commit(self, action: Callable[[], None]) -> None:
        """Run ``action`` (a write to a client) once every change staged so far is durable."""
        if self.staged == self.committed and not self._held:
            action()
        else:
            self._held.append((self.staged, action))

    def unless_troubled(self, action: Callable[[], None]) -> None:
        """Output that follows no change of its own: at once while the store is failing.

        Normally the same as ``after_commit`` (output keeps its order).  While
        commits fail, changes already staged cannot be made durable, and
        output that does not depend on them (look, say, who, the login
        banner) must not wait behind them for as long as the outage lasts.
        """
        if self.trouble is not None:
            action()
        else:
            self.after_commit(action)

    async def _flush(self) -> None:
        while True:
            if self._probe is not None:
                try:
                    await asyncio.to_thread(self._probe.probe)
                except Exception:
                    self.failures += 1
                    await asyncio.sleep(self._pause())
                    continue
                # Writing seems to work: a real commit of what is staged (perhaps
                # nothing) decides, and ends the trouble if it succeeds.
                self._probe = None
            elif self.committed >= self.staged:
                break
            if self._retry is not None:
                # The count travels with its snapshot: writing an older snapshot
                # again makes durable what it held, not what was staged since.
                payload, target = self._retry
            else:
                target = self.staged
                payload = self._take()
            self._retry = None
            try:
                await asyncio.to_thread(self._write, payload)
            except Exception as exc:
                self.failures += 1
                first = self.trouble is None
                if first:
                    self.trouble = describe_failure(exc)
                    log.exception("committing world changes failed")
                reason = self.trouble or describe_failure(exc)
                if isinstance(payload, Undoable) and self._undo(payload, reason):
                    # Nobody waits for the disk: what the batch did is undone.
                    self._probe = payload
                else:
                    # Changes that cannot be undone stay staged; retry after a
                    # pause rather than telling anyone that something happened.
                    self._retry = (payload, target)
                    if first:
                        log.warning("the changes not yet saved cannot be undone; retrying")
                if first:
                    self._on_trouble(reason)
                await asyncio.sleep(self._pause())
                continue
            self.failures = 0
            self.committed = max(self.committed, target)
            self._release()
            if self.trouble is not None:
                log.info("committing world changes works again")
                self.trouble = None
                self._on_recovery()
        self._idle.set()

    def _pause(self) -> float:
        """Seconds between two tries while writing fails."""
        return min(2.0, 0.1 * self.failures)

    def _undo(self, payload: Undoable, reason: str) -> bool:
        """Undo what ``payload`` and the changes since did; drop their output, refuse instead.

        Runs on the loop, between two stretches of content, while nothing of
        theirs has been sent: the output that follows them is held here.
        Returns False, changing nothing, if they cannot be undone.
        """
        callers = payload.undo()
        if callers is None:
            return False
        # Memory is back as the database has it: nothing staged so far is waited for.
        self.committed = self.staged
        told: dict[int, Receiver] = {id(caller): caller for caller in callers}
        unchanged: list[Callable[[], None]] = []
        held, self._held = self._held, deque()
        for _, action in held:
            if isinstance(action, HeldOutput) and action.kind != "control":
                # Content's output, after the changes: it may tell of them.
                told.setdefault(id(action.receiver), action.receiver)
            else:
                unchanged.append(action)  # prompts, connection closes, engine notices
        line = refusal_line(reason)
        for receiver in told.values():
            try:
                # Trouble is set: this goes out at once, before the prompts kept below.
                receiver.send(line, held=False)
            except Exception:
                log.exception("telling %r its change was undone failed", receiver)
        for action in unchanged:
            try:
                action()
            except Exception:
                log.exception("delivering output after an undo failed")
        dropped = len(held) - len(unchanged)
        log.log(
            logging.WARNING if told or dropped else logging.DEBUG,
            "saving failed (%s): the changes not yet saved were undone, %d player%s "
            "told so, %d held message%s dropped",
            reason,
            len(told),
            "" if len(told) == 1 else "s",
            dropped,
            "" if dropped == 1 else "s",
        )
        return True

    def _release(self) -> None:
        while self._held and self._held[0][0] <= self.committed:
            _, action = self._held.popleft()
            try:
                action()
            except Exception:
                log.exception("delivering output after commit failed")

    async def wait(self) -> None:
        """Until everything staged so far is committed (or undone) and its output delivered.

        While saving fails after an undo, nothing is waited for: the flusher
        keeps probing, but everything staged so far was undone.
        """
        while self.committed < self.staged or self._held:
            if self._probe is not None and self.committed >= self.staged:
                self._release()
                break
            await self._idle.wait()
            if self.committed >= self.staged:
                self._release()
                break


def describe_failure(exc: BaseException) -> str:
    """A few words for players and builders on why a commit failed."""
    text = str(exc).lower()
    if "full" in text or getattr(exc, "errno", None) == 28:
        return "disk full"
    if "readonly" in text or "read-only" in text or "read only" in text:
        return "the database is read-only"
    if "disk i/o" in text or isinstance(exc, OSError):
        return "a disk error"
    if "locked" in text or "busy" in text:
        return "the database is locked"
    return "the database refused the change"
