"""Keeping the cyclic garbage collector off what lives as long as the game.

A full (generation 2) collection walks every tracked object.  With the
world, the loaded content and thousands of sessions (telnetlib3 makes about
150 tracked objects per connection) that holds the game: 570 ms at 5,000
players on the 2-core machine of ``scripts/bench_play.py``.  So what
survives a middle-generation or a full collection is frozen out of the next
ones (``gc.freeze``), and full collections walk only what is new since the
last middle one: freezing only after full ones left a quarter of every
session's objects for each full pass, 45 to 75 ms at 5,000 players with
half of them on websockets.

Frozen objects that become garbage in reference cycles are not freed until
they are thawed.  The engine keeps such cycles out of its own long-lived
objects: a closed connection undoes its cycles (``engine.net.telnet``), so
reference counting frees it (measured: about two objects in cycles are left
per telnet or websocket connection that logs in, plays and quits).  What
remains is what a reload retires (the old versions of content modules,
their classes and functions, all cyclic) and what content itself leaves in
cycles.  For those, everything is thawed and
collected in one full pass, timed so that such passes take at most
``share`` of the game's time: after a reload, once the time since the last
pass is ``1 / share`` times what that pass took (a small game collects
within seconds, a game of 5,000 players waits ten minutes, never longer than
``interval``); without a reload, at the latest ``most`` seconds after the
previous pass.  A pause at a bounded rate, instead of one at every save a
builder makes.

Every collection is timed: how many full ones there were and the longest
pause any collection made are in ``status``; one past ``SLOW`` is logged.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import resource
import time
from typing import Any

log = logging.getLogger(__name__)

#: A collection longer than this is logged: every player waited that long.
SLOW = 0.1
#: Share of the game's time that collections of everything may take.
SHARE = 0.001
#: Seconds a collection of everything takes per MiB of the process's peak memory, until
#: one was timed (0.6 s at 195 MiB in ``scripts/bench_play.py --players 5000``).  Not
#: ``gc.get_freeze_count()``: it walks every frozen object, a stall of its own.
PER_MIB = 0.003
#: Seconds between two checks whether a collection of everything is due.
TURN = 1.0


class LongLived:
    """Freeze what survives each full collection; thaw and collect all at a bounded rate."""

    def __init__(self, interval: float = 600.0, most: float = 3600.0, share: float = SHARE) -> None:
        #: The longest a reload's retired versions wait to be collected (seconds).
        self.interval = interval
        #: Seconds after which everything is thawed and collected even without a reload.
        self.most = most
        #: Share of the game's time collections of everything may take.
        self.share = share
        #: How long the last collection of everything took (None: not timed yet).
        self.last_thaw_pause: float | None = None
        self._active = False
        self._retired = False
        self._began = 0.0
        #: When (``time.monotonic``) everything was last collected, or the start.
        self.last_thaw_at = 0.0
        self._timer: asyncio.TimerHandle | None = None
        #: Full collections since start, thaws among them, the longest pause (s).
        self.full_collections = 0
        self.thaws = 0
        self.longest_pause = 0.0

    def start(self) -> None:
        gc.freeze()
        gc.callbacks.append(self._collected)
        self._active = True
        self.last_thaw_at = time.monotonic()
        self._schedule()

    def reloaded(self) -> None:
        """A reload retired module versions: collect them at the next turn."""
        self._retired = True

    def collect_all(self) -> None:
        """Thaw everything and collect it in one full pass; what survives is frozen again."""
        self._retired = False
        self.thaws += 1
        began = time.perf_counter()
        gc.unfreeze()
        gc.collect()  # ``_collected`` freezes the survivors
        self.last_thaw_pause = time.perf_counter() - began
        self.last_thaw_at = time.monotonic()

    def due(self, now: float) -> bool:
        """Whether a collection of everything is due at ``now`` (``time.monotonic``)."""
        since = now - self.last_thaw_at
        if not self._retired:
            return since >= self.most
        pause = self.last_thaw_pause
        if pause is None:
            pause = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 * PER_MIB
        return since >= min(self.interval, pause / self.share)

    def stop(self) -> None:
        if self._active:
            self._active = False
            gc.callbacks.remove(self._collected)
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            gc.unfreeze()

    def _schedule(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop (a test driving it by hand): thaws are asked for
        self._timer = loop.call_later(TURN, self._turn)

    def _turn(self) -> None:
        if not self._active:
            return
        if self.due(time.monotonic()):
            self.collect_all()
        self._schedule()

    def _collected(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
            return
        pause = time.perf_counter() - self._began
        self.longest_pause = max(self.longest_pause, pause)
        generation = info.get("generation")
        if generation == 0:
            return
        # What survived a middle-generation collection has just moved to the oldest one:
        # frozen now, the next full collection does not walk it.  (Freezing is a list
        # splice, and the two younger generations are empty at this point.)
        gc.freeze()
        if generation != 2:
            return
        self.full_collections += 1
        if pause > SLOW:
            log.warning("a full garbage collection held the game for %.0f ms", pause * 1000)
