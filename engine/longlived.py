"""Keeping the cyclic garbage collector off what lives as long as the game.

A full (generation 2) collection walks every tracked object: with the
world, the loaded content and thousands of sessions that is long enough to
hold the game (measured with ``scripts/bench_play.py``: action p99 of 180 ms
at 1,000 players without this, 5 ms with it; 700 ms at 5,000).  What
start-up made is frozen out of those passes (``gc.freeze``), and so is
whatever survives a full collection afterwards: it has proved long-lived.
A reload makes old content versions garbage, and players who left may
leave cycles behind, so everything is thawed at each reload and every
``THAW_EVERY`` seconds: the next full collection frees what is garbage and
freezes the rest again.  One full pass per period instead of one every few
seconds.
"""

from __future__ import annotations

import gc
import time
from typing import Any

#: Seconds between thaws, when the next full collection walks everything once.
THAW_EVERY = 600.0


class LongLived:
    """Freeze at start and after each full collection; thaw at reloads and every so often."""

    def __init__(self, thaw_every: float = THAW_EVERY) -> None:
        self.thaw_every = thaw_every
        self._thawed_at = time.monotonic()
        self._active = False

    def start(self) -> None:
        gc.freeze()
        gc.callbacks.append(self._collected)
        self._active = True

    def reloaded(self) -> None:
        """Old content versions may now be garbage: let the next full collection see them."""
        if self._active:
            self._thaw()

    def _thaw(self) -> None:
        gc.unfreeze()
        self._thawed_at = time.monotonic()

    def stop(self) -> None:
        if self._active:
            self._active = False
            gc.callbacks.remove(self._collected)
            gc.unfreeze()

    def _collected(self, phase: str, info: dict[str, Any]) -> None:
        if phase != "stop" or info.get("generation") != 2:
            return
        if time.monotonic() - self._thawed_at > self.thaw_every:
            self._thaw()  # the next full collection walks everything once
        else:
            gc.freeze()
