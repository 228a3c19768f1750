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
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

P = TypeVar("P")


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
    thread and makes the snapshot durable.  A snapshot whose write failed is
    written again, before any newer one, until it succeeds.
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
        while self.committed < self.staged:
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
                self._retry = (payload, target)
                # A failed commit keeps the changes staged; retry after a pause
                # rather than telling anyone that something happened.
                self.failures += 1
                if self.trouble is None:
                    self.trouble = describe_failure(exc)
                    log.exception("committing world changes failed; retrying")
                    self._on_trouble(self.trouble)
                await asyncio.sleep(min(2.0, 0.1 * self.failures))
                continue
            self.failures = 0
            self.committed = target
            self._release()
            if self.trouble is not None:
                log.info("committing world changes works again")
                self.trouble = None
                self._on_recovery()
        self._idle.set()

    def _release(self) -> None:
        while self._held and self._held[0][0] <= self.committed:
            _, action = self._held.popleft()
            try:
                action()
            except Exception:
                log.exception("delivering output after commit failed")

    async def wait(self) -> None:
        """Until everything staged so far is committed and its output delivered."""
        while self.committed < self.staged or self._held:
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
