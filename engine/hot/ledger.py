"""What the supervisor keeps of every connection, so that a worker's death costs nobody theirs.

A worker tells the supervisor of each connection as its shell starts (with
the socket's descriptor, which the supervisor keeps a copy of), again when
its player enters the game, and when it ends; and it gives the supervisor a
copy of the database lock's descriptor once it serves.  If the worker dies
(a crash, a ``kill -9``, a restart that failed after the handover), the
supervisor starts a new one and hands it these, exactly as an old worker
hands over in a hot restart (``engine.hot.handover``): the connections stay
open in the kernel all along, so players stay on them, and the lock is
never free for another server meanwhile.

What is lost in a crash is what only the dead worker had: input it had read
but not yet run, output it had not sent.  Nothing acknowledged is lost:
output is sent only once the change it reports is committed.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Kept:
    """One connection: the supervisor's copy of its socket and the session state last told."""

    fd: int
    state: dict[str, Any] = field(default_factory=dict)


class Ledger:
    """Every open connection of the game, by the key the worker gave it, and the lock."""

    def __init__(self) -> None:
        self.kept: dict[str, Kept] = {}
        #: A copy of the descriptor holding the database lock (``DatabaseLock.hand_over``).
        self.lock_fd: int | None = None

    def record(self, key: str, fd: int, state: dict[str, Any]) -> None:
        """A connection's shell started (or a new worker took it over): keep it."""
        old = self.kept.pop(key, None)
        if old is not None and old.fd != fd:
            _close(old.fd)
        self.kept[key] = Kept(fd, dict(state))

    def update(self, key: str, state: dict[str, Any]) -> None:
        kept = self.kept.get(key)
        if kept is not None:
            kept.state.update(state)

    def forget(self, key: str) -> None:
        """The connection ended: let go of the copy (the worker shut the socket down)."""
        kept = self.kept.pop(key, None)
        if kept is not None:
            _close(kept.fd)

    def hold_lock(self, fd: int) -> None:
        if self.lock_fd is not None and self.lock_fd != fd:
            _close(self.lock_fd)
        self.lock_fd = fd

    def handover(self, cause: str) -> tuple[dict[str, Any], list[int]]:
        """The state message and descriptors a new worker takes over, as from an old worker."""
        sessions = []
        fds = [] if self.lock_fd is None else [self.lock_fd]
        for key, kept in self.kept.items():
            sessions.append({**kept.state, "key": key, "recovered": True})
            fds.append(kept.fd)
        message = {
            "kind": "state",
            "sessions": sessions,
            "recovered": cause,
            "lock": self.lock_fd is not None,
        }
        return message, fds

    def close(self) -> None:
        for kept in self.kept.values():
            _close(kept.fd)
        self.kept.clear()
        if self.lock_fd is not None:
            _close(self.lock_fd)
            self.lock_fd = None


def _close(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)
