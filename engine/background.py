"""The game's background tasks, all under one ``asyncio.TaskGroup``.

The watchers, a handover, a stop trigger: each is spawned here and nowhere
tracked by hand.  What a task raises is logged, never fatal (a task of the
game must not end the game); the group closes once the stop event is set and
every task in it has ended (each one ends with the stop event).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

log = logging.getLogger(__name__)


class Background:
    """A TaskGroup opened by ``open`` and closed by ``close`` (from one task or two)."""

    def __init__(self, stop: asyncio.Event) -> None:
        self.stop = stop
        self._group: asyncio.TaskGroup | None = None
        self._exits = contextlib.AsyncExitStack()

    async def open(self) -> None:
        self._group = await self._exits.enter_async_context(asyncio.TaskGroup())

    def spawn(self, coroutine: Coroutine[Any, Any, None], name: str) -> None:
        """Run ``coroutine`` in the group; what it raises is logged."""
        assert self._group is not None, "spawn before open"
        self._group.create_task(_logged(coroutine, name), name=name)

    def stop_when(self, trigger: Callable[[], Awaitable[object]], stop: Callable[[], None]) -> None:
        """Call ``stop`` once ``trigger`` returns, unless the game stops first."""
        self.spawn(self._when(trigger, stop), "stop trigger")

    async def _when(
        self, trigger: Callable[[], Awaitable[object]], stop: Callable[[], None]
    ) -> None:
        waiting = asyncio.ensure_future(trigger())
        stopped = asyncio.ensure_future(self.stop.wait())
        done, _ = await asyncio.wait({waiting, stopped}, return_when=asyncio.FIRST_COMPLETED)
        for future in (waiting, stopped):
            future.cancel()
        if waiting in done:
            stop()

    async def close(self) -> None:
        """Wait for every task (they end with the stop event), then close the group."""
        await self._exits.aclose()
        self._group = None


async def _logged(coroutine: Coroutine[Any, Any, None], name: str) -> None:
    try:
        await coroutine
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("the game's task %r failed", name)
