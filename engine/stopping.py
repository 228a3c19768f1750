"""Stopping on SIGTERM and Ctrl-C, promptly, even while content holds the event loop.

A plain signal handler (not the loop's) runs in the main thread at the next
bytecode even while the loop is held: it interrupts the content running now
(through the watchdog, which also sees signals from its own thread) and
schedules the shutdown.  If the process is still alive ``stop_grace``
seconds later (a C call that never returns), the watchdog ends it:
acknowledged changes are on disk already.  A second signal ends it at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable, Iterator
from functools import partial
from types import FrameType

from engine.guard.watchdog import WATCHDOG

log = logging.getLogger(__name__)


class StopSignals:
    """SIGTERM and SIGINT call ``shutdown`` (once; a second one ends the process)."""

    def __init__(self, shutdown: Callable[[], None], grace: float) -> None:
        self.shutdown = shutdown
        self.grace = grace
        self.received = 0

    @contextlib.contextmanager
    def caught(self) -> Iterator[None]:
        """While inside, the signals stop the game; the handlers before are put back after."""
        loop = asyncio.get_running_loop()
        previous = {}
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(ValueError):  # not the main thread
                previous[signum] = signal.signal(signum, partial(self._handler, loop))
        if previous:
            WATCHDOG.watch_signals(lambda n: self._begin(loop, n))
        try:
            yield
        finally:
            if previous:
                WATCHDOG.stop_watching_signals()
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _begin(self, loop: asyncio.AbstractEventLoop, signum: int) -> None:
        """A stop signal, seen by the watchdog thread even while the main thread is blocked."""
        if signum in (signal.SIGTERM, signal.SIGINT):
            WATCHDOG.request_stop(self.grace)
            loop.call_soon_threadsafe(self.shutdown)

    def _handler(
        self, loop: asyncio.AbstractEventLoop, signum: int, frame: FrameType | None
    ) -> None:
        self.received += 1
        name = signal.Signals(signum).name
        if self.received > 1:
            log.warning("%s again: stopping at once", name)
            logging.shutdown()
            os._exit(1)
        log.info("%s received: shutting down", name)
        self._begin(loop, signum)
