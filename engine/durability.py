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


class DurableOutput(Generic[P]):
    """Orders output after the commits it depends on.

    ``take`` runs on the event loop and snapshots what is staged (objects
    change on the loop, so they are read there); ``write`` runs in a worker
    thread and makes the snapshot durable.  A snapshot whose write failed is
    written again, before any newer one, until it succeeds.
    """

    def __init__(self, take: Callable[[], P], write: Callable[[P], object]) -> None:
        self._take = take
        self._write = write
        self._retry: P | None = None
        self.staged = 0
        self.committed = 0
        self._held: deque[tuple[int, Callable[[], None]]] = deque()
        self._flusher: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self.failures = 0

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

    async def _flush(self) -> None:
        while self.committed < self.staged:
            target = self.staged
            payload = self._retry if self._retry is not None else self._take()
            self._retry = None
            try:
                await asyncio.to_thread(self._write, payload)
            except Exception:
                self._retry = payload
                # A failed commit keeps the changes staged; retry after a pause
                # rather than telling anyone that something happened.
                self.failures += 1
                log.exception("committing world changes failed; retrying")
                await asyncio.sleep(min(5.0, 0.1 * self.failures))
                continue
            self.failures = 0
            self.committed = target
            self._release()
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
