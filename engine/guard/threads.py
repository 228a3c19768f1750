"""Builders are told when content starts a thread: threads run outside the guard.

The guard stops content that holds the event loop too long and undoes what a
failing command changed; a thread is beyond both (no budget, no undo), a
reload does not stop it, and it is not safe to touch the world from it.
Content may still start one (a blocking library call, say); builders hear of
each place that does, once, with its file and line.

A worker exits whatever threads content left running (``engine.hot.worker``),
so a thread that never ends cannot keep a retired worker alive.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType

log = logging.getLogger(__name__)

_original_start = threading.Thread.start


class ThreadWatch:
    """While installed, every ``Thread.start`` from content is reported once per place."""

    #: The watch installed now (one per process: it patches ``threading.Thread.start``).
    active: ThreadWatch | None = None

    def __init__(self, content_dir: Path, tell: Callable[[str], None]) -> None:
        self.prefix = str(Path(content_dir).resolve()) + os.sep
        self.shown_from = str(Path(content_dir).resolve().parent) + os.sep
        self.tell = tell
        self.seen: set[tuple[str, int]] = set()

    def install(self) -> None:
        ThreadWatch.active = self
        threading.Thread.start = _watched_start  # type: ignore[method-assign,assignment]

    def uninstall(self) -> None:
        if ThreadWatch.active is self:
            ThreadWatch.active = None
            threading.Thread.start = _original_start  # type: ignore[method-assign]

    def started(self, thread: threading.Thread, frame: FrameType | None) -> None:
        """``thread`` is starting, called from ``frame``: report it if content started it."""
        while frame is not None and not frame.f_code.co_filename.startswith(self.prefix):
            frame = frame.f_back
        if frame is None:
            return
        where = (frame.f_code.co_filename, frame.f_lineno)
        if where in self.seen:
            return
        self.seen.add(where)
        shown = where[0].removeprefix(self.shown_from)
        line = (
            f"{shown}:{where[1]} started a thread ({thread.name}): threads run outside the "
            "guard, with no time budget and no undo, and a reload does not stop them."
        )
        log.warning("%s", line)
        self.tell(line)


def _watched_start(thread: threading.Thread) -> None:
    watch = ThreadWatch.active
    if watch is not None:
        try:
            watch.started(thread, sys._getframe(1))
        except Exception:  # a report must never keep the thread from starting
            log.debug("reporting a content thread failed", exc_info=True)
    _original_start(thread)
