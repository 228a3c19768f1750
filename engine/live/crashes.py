"""Content that takes the whole process down while loading is remembered and skipped.

Python cannot catch ``os._exit`` or a crash in a C extension.  So, while a
module body runs, a marker file names it (with a hash of its source); a
load that finishes or fails normally removes the marker.  A marker found at
the next start names the module that ended the last process: it goes on a
list of skipped modules (kept beside the database) and is not loaded again
until its file changes.  A kill -9 that happens to land during a load marks
an innocent module the same way; saving that file (or changing it in any
way) clears it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from engine.guard.watchdog import reset_after_fork

log = logging.getLogger(__name__)


def file_hash(path: str | None) -> str:
    if path is None:
        return ""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return ""


class CrashMarkers:
    """The marker of the module loading now, and the modules that crashed a load before."""

    def __init__(self, marker: Path, skipped: Path) -> None:
        self.marker = marker
        self.skipped_file = skipped
        #: module -> {"path": ..., "hash": ...} for modules skipped until their file changes.
        self.skipped: dict[str, dict[str, str]] = self._read()
        self._loading: list[tuple[str, str | None]] = []

    @classmethod
    def beside(cls, db_path: Path) -> CrashMarkers:
        """The markers of the game whose database is ``db_path``, in files beside it."""
        return cls(
            db_path.with_name(db_path.name + ".loading"),
            db_path.with_name(db_path.name + ".crashed.json"),
        )

    def _read(self) -> dict[str, dict[str, str]]:
        try:
            data = json.loads(self.skipped_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _save(self) -> None:
        try:
            if self.skipped:
                tmp = self.skipped_file.with_suffix(".tmp")
                tmp.write_text(json.dumps(self.skipped, indent=1), encoding="utf-8")
                os.replace(tmp, self.skipped_file)
            else:
                self.skipped_file.unlink(missing_ok=True)
        except OSError:
            log.warning("cannot write %s", self.skipped_file, exc_info=True)

    def recover(self) -> list[str]:
        """At start: the module a marker names ended the last process; skip it from now on."""
        try:
            data = json.loads(self.marker.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, ValueError):
            self.marker.unlink(missing_ok=True)
            return []
        self.marker.unlink(missing_ok=True)
        name, path = data.get("module"), data.get("path")
        if not isinstance(name, str):
            return []
        self.skipped[name] = {"path": str(path or ""), "hash": str(data.get("hash", ""))}
        self._save()
        log.error(
            "the process ended while content module %s was loading; skipping it until it changes",
            name,
        )
        return [name]

    def is_skipped(self, name: str, path: str | None) -> bool:
        """True while ``name`` crashed a load and its file has not changed since."""
        entry = self.skipped.get(name)
        if entry is None:
            return False
        if file_hash(path) == entry.get("hash"):
            return True
        del self.skipped[name]
        self._save()
        return False

    def entering(self, name: str, path: str | None) -> None:
        self._loading.append((name, path))
        self._write(name, path)

    def leaving(self) -> None:
        self._loading.pop()
        if self._loading:
            self._write(*self._loading[-1])
        else:
            self.marker.unlink(missing_ok=True)

    def _write(self, name: str, path: str | None) -> None:
        record = {"module": name, "path": path, "hash": file_hash(path), "pid": os.getpid()}
        try:
            self.marker.write_text(json.dumps(record), encoding="utf-8")
        except OSError:
            log.warning("cannot write %s", self.marker, exc_info=True)


def trial_load(load: Callable[[], object], markers: CrashMarkers, timeout: float) -> list[str]:
    """Load content once in a forked child first; return the modules that killed it.

    A module that ends the process at import would otherwise end this one
    before it ever serves.  The child loads everything (writing the loading
    marker as the real load does) and exits; if it dies instead, the marker
    names the module, which is skipped from then on, and the child is tried
    again without it.  A child that hangs past ``timeout`` is killed and the
    real load goes ahead: the watchdog stops a hang in process.  Nothing the
    child does reaches the world: content loads before the world opens, and
    the child leaves with ``os._exit``.
    """
    if not hasattr(os, "fork"):
        return []
    found: list[str] = []
    for _attempt in range(20):
        pid = os.fork()
        if pid == 0:  # the child
            try:
                logging.disable(logging.CRITICAL)
                reset_after_fork()
                load()
            finally:
                os._exit(0)
        status = _wait(pid, timeout)
        if status is None or not markers.marker.exists():
            return found  # finished (or hung, for the watchdog to stop in process)
        names = markers.recover()
        if not names:
            return found
        log.error("loading %s ended a trial process (status %d)", names[0], status)
        found += names
    return found


def _wait(pid: int, timeout: float) -> int | None:
    """The child's wait status, or None if it had to be killed for taking too long."""
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return None
        time.sleep(0.005)
