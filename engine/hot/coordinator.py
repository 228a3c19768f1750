"""The worker's side of hot restarts: its state, its messages with the supervisor, the watcher.

One object owns what a restart needs in a running worker: the link to the
supervisor and the ledger keeper (``engine.hot.keeper``); taking the
connections over at start (from an old worker, or from the supervisor after
a crash); asking for a restart and hearing whether it failed; handing every
connection to a new worker (``engine.hot.handover``, for which it is the
``Handing`` game); and the watcher that asks for a restart when engine code
is saved.  ``engine.app.Game`` builds it and calls it at the right moments.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

import watchfiles

from engine import paths
from engine.accounts.account import Role
from engine.hot import handover
from engine.hot.handover import GameParts
from engine.hot.keeper import ConnectionKeeper
from engine.net import telnet
from engine.web.server import WebServer, needs_web

if TYPE_CHECKING:
    from engine.config import Config
    from engine.hot.link import HotLink
    from engine.net.session import Session
    from engine.services import Connection

log = logging.getLogger(__name__)

Spawn = Callable[[Coroutine[Any, Any, None], str], object]


class RestartCoordinator:
    """Restart state and the supervisor's messages, for one worker (or none, without one)."""

    def __init__(
        self,
        config: Config,
        hot: HotLink | None,
        parts: GameParts,
        *,
        spawn: Spawn,
        stop_accepting: Callable[[], None],
        serve_again: Callable[[], Coroutine[Any, Any, None]],
        stop: Callable[[], None],
    ) -> None:
        self.config = config
        #: The supervisor's sockets, when this game runs as its worker.
        self.hot = hot
        self.players = parts.players
        self.play = parts.play
        self.content = parts.content
        self.tasks = parts.tasks
        self.world = parts.world
        self.durable = parts.durable
        self.db_lock = parts.db_lock
        self.store = parts.store
        self._spawn = spawn
        self._stop_accepting = stop_accepting
        self._serve_again = serve_again
        self._stop = stop
        #: Keeps the supervisor's copy of every connection (None without a supervisor).
        self.keeper = ConnectionKeeper(hot) if hot is not None else None
        self.players.observer = self.keeper
        telnet.MudTelnetServer.on_state_change = (
            self.keeper.changed if self.keeper is not None else None
        )
        #: Why the previous worker died, when this one took its connections from the
        #: supervisor instead (engine.hot.ledger); "" otherwise.
        self.recovered_from = ""
        #: What players are told before a restart the admin gave a reason for.
        self.restart_message = ""
        #: Who asked for the restart under way, to hear if it fails.
        self._requester: Connection | None = None
        #: The connections went to a newer worker: nothing is closed or saved here.
        self.handed_over = False
        self.version = paths.describe()

    # -- starting ----------------------------------------------------------------------

    @property
    def taking_over(self) -> bool:
        """Started to take the connections of an old worker (or of a dead one)."""
        return self.hot is not None and self.hot.handover is not None

    async def take_over(self, open_store: Callable[[], None]) -> list[tuple[dict[str, Any], int]]:
        """Take the lock, the store and the connections; (session state, socket) of each.

        Engine and content are loaded by now: the old worker stops and hands
        over.  Until this worker says it has taken everything, the old one
        can serve on; a store that will not open here is its cue.
        """
        assert self.hot is not None and self.hot.handover is not None
        message, fds = await handover.receive(self.hot.handover)
        sock, self.hot.handover = self.hot.handover, None
        try:
            if message.get("lock", True):
                self.db_lock.adopt(fds.pop(0))
            else:
                self.db_lock.acquire()
            open_store()
        except BaseException as exc:
            for fd in fds:
                os.close(fd)
            self.db_lock.forget()
            handover.taken(sock, error=str(exc) or type(exc).__name__)
            sock.close()
            raise
        handover.taken(sock)
        sock.close()
        # From here this worker carries the game on, even if the old one dies now.
        self.hot.tell({"kind": "adopting"})
        self.recovered_from = str(message.get("recovered") or "")
        return list(zip(message["sessions"], fds, strict=True))

    async def adopt(
        self, server: Any, adopted: list[tuple[dict[str, Any], int]], web: WebServer | None = None
    ) -> None:
        """Serve the connections taken over; their input runs once every player is back.

        A line typed during the restart must not run before the players it
        speaks to are back in their characters, or they would miss it.
        """
        self.play.pause()
        playing = 0
        for state, fd in adopted:
            try:
                if needs_web(state):
                    await _adopt_web(web, socket.socket(fileno=fd), state)
                else:
                    await telnet.adopt(server, socket.socket(fileno=fd), state)
            except OSError as exc:
                log.warning("a handed-over connection could not be served: %s", exc)
                continue
            playing += state.get("account_id") is not None
        deadline = time.monotonic() + 5.0
        while self.play.returned < playing and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        self.play.resume()
        self.took_over(len(adopted))

    def took_over(self, count: int) -> None:
        """The connections are served again; after a crash, builders hear why."""
        log.info("took over %d connection%s", count, "s" if count != 1 else "")
        if self.recovered_from:
            line = (
                f"The game's engine process ended unexpectedly ({self.recovered_from}); "
                f"a new one took over its {count} connection{'s' if count != 1 else ''}."
            )
            log.error("%s", line)
            self.players.notify_builders(line, tag="restart")

    def ready(self, port: int, stop: asyncio.Event) -> None:
        """Serving: tell the supervisor (with a copy of the lock) and watch engine code."""
        hot = self.hot
        if hot is None:
            return
        if self.config.port not in (0, port):
            # The supervisor holds the port it started on: hotmud.toml changed since.
            line = (
                f"The settings now say port {self.config.port}, but the game listens on "
                f"{port}: a new port needs the server stopped and started again."
            )
            log.warning("%s", line)
            self.players.notify_builders(line, tag="restart")
        hot.on_message = self.on_message
        hot.listen()
        # The supervisor keeps a copy of the lock: a crash of this worker never frees it.
        lock = self.db_lock.hand_over()
        hot.tell({"kind": "ready"}, [lock] if lock is not None else [])
        if self.config.reload and paths.FROM_SOURCE:
            # Only a source tree's engine is edited; an installed one is upgraded.
            self._spawn(self.watch_engine(stop), "engine watcher")

    def stopping(self) -> None:
        """The game stops as asked: its end is no crash for the supervisor to recover from."""
        if self.hot is not None and not self.handed_over:
            self.hot.tell({"kind": "stopping"})

    def close(self) -> None:
        if self.hot is not None:
            self.hot.close()

    # -- asking for a restart ------------------------------------------------------------

    def restart(self, message: str = "", requester: Connection | None = None) -> str:
        """Ask the supervisor for a hot restart; the line to show whoever asked."""
        if self.hot is None:
            return (
                "This game runs without its supervisor, so it cannot restart itself; "
                "start it with hotmud run (or make run) to restart without "
                "disconnecting anyone."
            )
        self.restart_message = message
        self._requester = requester
        who = requester.name if requester is not None else "an admin"
        self.hot.tell({"kind": "restart", "reason": f"asked by {who}"})
        return "Restarting: the new engine is starting beside this one."

    def on_message(self, message: dict[str, Any], fds: list[int]) -> None:
        """What the supervisor says: hand over, or a restart failed or is busy."""
        kind = message.get("kind")
        if kind == "handover" and fds:
            self._spawn(self.hand_over(socket.socket(fileno=fds[0])), "handover")
            return
        for fd in fds:
            os.close(fd)
        if kind == "restart-failed":
            error = str(message.get("error", "no reason given"))
            self.failed(f"The restart failed: {sentence(error)} The game goes on as it was.")
        elif kind == "restart-busy":
            self.failed("A restart is under way already.")

    def failed(self, line: str) -> None:
        log.error("%s", line)
        self.players.notify_builders(line, tag="restart")
        requester, self._requester = self._requester, None
        if requester is not None and requester.role < Role.BUILDER:
            requester.send(f"[restart] {line}", held=False)
        self.restart_message = ""

    # -- handing over ------------------------------------------------------------------

    async def hand_over(self, sock: socket.socket) -> None:
        """Give every connection to the new worker, then stop (see ``engine.hot.handover``)."""
        try:
            paused = await handover.hand_over(self, sock)
        except handover.HandoverFailed as exc:
            log.warning("hot restart: %s", exc)
            if exc.ours and self.hot is not None:
                self.hot.tell({"kind": "restart-abandoned", "error": str(exc)})
                self.failed(f"The restart failed: {sentence(str(exc))} The game goes on as it was.")
            return
        except Exception:
            log.exception("hot restart: the handover failed")
            return
        finally:
            sock.close()
        log.info("handed over %d connections (input paused %.0f ms)",
                 len(self.players.sessions), paused * 1000)  # fmt: skip
        self.handed_over = True
        if self.keeper is not None:
            self.keeper.handing_over = True
        if self.hot is not None:
            self.hot.tell({"kind": "handed-over"})
        handover.let_go(self.players.sessions)
        self.store.close()
        self.db_lock.forget()
        self._stop()

    def stop_accepting(self) -> None:
        self._stop_accepting()

    def resume_serving(self, sessions: list[Session]) -> None:
        """A handover that failed midway: accept, read and run commands again."""
        if self.hot is not None:
            self._spawn(self._serve_again(), "serve again")
        for session in sessions:
            transport = session.writer.transport
            if transport is not None and not transport.is_closing():
                transport.resume_reading()
        self.play.resume()

    async def watch_engine(self, stop: asyncio.Event) -> None:
        """A save under engine/ asks the supervisor for a hot restart."""
        root = paths.CODE_ROOT
        async for changes in watchfiles.awatch(
            paths.ENGINE_DIR,
            watch_filter=watchfiles.PythonFilter(),
            stop_event=stop,
            step=self.config.reload_step_ms,
        ):
            names = sorted({os.path.relpath(path, root) for _, path in changes})
            log.info("engine code changed (%s): restarting", ", ".join(names))
            if self.hot is not None:
                self.hot.tell({"kind": "restart", "reason": f"{', '.join(names)} changed"})


async def _adopt_web(web: WebServer | None, sock: socket.socket, state: dict[str, Any]) -> None:
    """A websocket, or a connection of the PROXY port, handed over: the web side goes on with it."""
    if web is None:
        sock.close()
        raise OSError("a websocket or a proxied connection was handed over, but neither is served")
    await web.adopt(sock, state)


def sentence(text: str) -> str:
    """``text`` as a sentence: a full stop at its end unless it has one (or a ? or !)."""
    text = text.rstrip()
    return text if text.endswith((".", "?", "!")) else f"{text}."
