"""A game worker's side of the supervisor: the sockets it was given, and what it may ask.

The supervisor starts each worker with the listening socket (and the other
ports', ``HOTMUD_LISTEN_FDS``), a control
socket to itself and, for a restart, a socket to the worker it replaces
(``HOTMUD_*`` variables name the descriptors).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from engine.hot import wire

log = logging.getLogger(__name__)


@dataclass
class HotLink:
    """The sockets from the supervisor, and facts about this worker for ``status``."""

    control: socket.socket
    listener: socket.socket
    #: To the worker this one replaces (None at a first start).
    handover: socket.socket | None = None
    generation: int = 0
    restarts: int = 0
    #: When the server (the supervisor) started.
    started_at: float = field(default_factory=time.time)
    #: The other listening sockets, by name (``engine.web.listeners``: "web", "proxy").
    listeners: dict[str, socket.socket] = field(default_factory=dict)
    #: Called with each message the supervisor sends (and its descriptors).
    on_message: Callable[[dict[str, Any], list[int]], None] = lambda message, fds: None

    @classmethod
    def from_environment(cls) -> HotLink | None:
        """The link the supervisor gave this process, or None when run on its own."""
        control = os.environ.get("HOTMUD_CONTROL_FD")
        listen = os.environ.get("HOTMUD_LISTEN_FD")
        if control is None or listen is None:
            return None
        handover = os.environ.get("HOTMUD_HANDOVER_FD")
        extra = os.environ.get("HOTMUD_LISTEN_FDS", "")
        return cls(
            control=socket.socket(fileno=int(control)),
            listener=socket.socket(fileno=int(listen)),
            handover=socket.socket(fileno=int(handover)) if handover else None,
            listeners={
                name: socket.socket(fileno=int(fd))
                for name, _, fd in (entry.partition("=") for entry in extra.split())
            },
            generation=int(os.environ.get("HOTMUD_GENERATION", "0")),
            restarts=int(os.environ.get("HOTMUD_RESTARTS", "0")),
            started_at=float(os.environ.get("HOTMUD_STARTED_AT", time.time())),
        )

    def tell(self, message: dict[str, Any], fds: list[int] | None = None) -> None:
        """One message to the supervisor; a supervisor that is gone is not an error here."""
        try:
            wire.send(self.control, message, fds or [])
        except OSError as exc:
            log.warning("cannot reach the supervisor: %s", exc)

    def listen(self) -> None:
        """Read the supervisor's messages on the event loop from now on."""
        loop = asyncio.get_running_loop()
        loop.add_reader(self.control.fileno(), self._readable)

    def _readable(self) -> None:
        try:
            message, fds = wire.recv(self.control)
        except (OSError, ValueError):
            # The supervisor is gone: the kernel ends this process too (PDEATHSIG).
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self.control.fileno())
            return
        self.on_message(message, fds)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            asyncio.get_running_loop().remove_reader(self.control.fileno())
