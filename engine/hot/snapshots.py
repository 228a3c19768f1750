"""The last engine code that served: a copy to fall back on when the code on disk keeps crashing.

Workers import the engine from disk when they start.  A save that breaks it
in a way only serving shows (a crash while adopting connections, say) would
have every worker after it crash too.  So the supervisor copies the engine's
code as each worker starts; the copy becomes "the last good code" once that
worker serves.  When workers from the code on disk keep dying, the next one
runs from that copy, until a restart with fixed code replaces it.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from pathlib import Path

from engine.paths import CODE_ROOT

#: The packages a worker runs from.
PACKAGES = ("engine", "reloader")


class CodeSnapshots:
    """Copies of the engine's code: one per worker starting, the last good one kept."""

    def __init__(self) -> None:
        self._root = Path(tempfile.mkdtemp(prefix="hotmud-code-"))
        self._count = 0
        #: The copy of the code the last worker that served started from, and when.
        self.good: Path | None = None
        self.good_since = 0.0

    def take(self) -> Path | None:
        """Copy the code on disk now; None if it cannot be copied (the worker runs anyway)."""
        self._count += 1
        copy = self._root / str(self._count)
        try:
            for package in PACKAGES:
                shutil.copytree(
                    CODE_ROOT / package,
                    copy / package,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "starter"),
                )
        except OSError:
            shutil.rmtree(copy, ignore_errors=True)
            return None
        return copy

    def served(self, copy: Path | None) -> None:
        """The worker started from ``copy`` serves: it is the last good code now."""
        if copy is None or copy == self.good:
            return
        old, self.good, self.good_since = self.good, copy, time.time()
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def discard(self, copy: Path | None) -> None:
        """A worker's copy that never served (and is not the good one)."""
        if copy is not None and copy != self.good:
            shutil.rmtree(copy, ignore_errors=True)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            shutil.rmtree(self._root)
