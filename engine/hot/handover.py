"""Handing the game's connections from a worker to its replacement.

The old worker, told by the supervisor, waits until the new one says it is
prepared (engine imported, content loaded).  Only then does it stop: players
are told, no command starts, input stops being read, running commands get a
moment to finish, lifecycle hooks are torn down, every change is committed
and every byte of output sent (an MCCP2 stream goes on in the new worker).  It then
sends the database lock's descriptor, every connection's socket and each
session's state: account, where a login stood, telnet options and client
facts, and input received but not yet run.  The new worker holds the lock
from that moment, opens the world and serves the connections.

If the new worker fails before it takes the state, the old one takes up
serving again where it stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol, cast

from engine.hot import wire
from engine.net.telnet import MudTelnetServer, export_state, hand_off, take_unread

if TYPE_CHECKING:
    from engine.config import Config
    from engine.guard.tasks import TaskScheduler
    from engine.live.manager import LiveContent
    from engine.net.session import Session
    from engine.play import PlayLoop
    from engine.players import Players
    from engine.startup import DatabaseLock
    from engine.world.durability import DurableOutput
    from engine.world.model import World
    from engine.world.store import Store


class GameParts(Protocol):
    """The parts of a game a restart stops, hands over or takes over (``engine.app.Game``)."""

    players: Players
    play: PlayLoop
    content: LiveContent
    tasks: TaskScheduler
    world: World
    durable: DurableOutput[Any]
    db_lock: DatabaseLock
    store: Store


class Handing(GameParts, Protocol):
    """What a handover stops and collects: the game's parts, its settings and how it serves
    (``engine.hot.coordinator.RestartCoordinator``)."""

    config: Config
    #: What players are told just before (the admin's words, if any).
    restart_message: str

    def stop_accepting(self) -> None: ...

    def resume_serving(self, sessions: list[Session]) -> None: ...


log = logging.getLogger(__name__)

#: Longest wait for running commands, and then for output to drain, in a handover.
SETTLE = 2.0


class HandoverFailed(Exception):
    """The handover did not happen; the old worker serves on.

    ``ours``: this worker's own side failed (the new one is waiting in vain
    and must be ended); otherwise the new worker went away or refused.
    """

    def __init__(self, message: str, ours: bool = False) -> None:
        super().__init__(message)
        self.ours = ours


async def receive(sock: socket.socket) -> tuple[dict[str, Any], list[int]]:
    """The new worker's side: say it is prepared, then take the state and descriptors."""
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, wire.send, sock, {"kind": "prepared"}, [])
    message, fds = await loop.run_in_executor(None, wire.recv, sock)
    if message.get("kind") != "state" or (message.get("lock", True) and not fds):
        raise HandoverFailed(f"unexpected handover message {message.get('kind')!r}")
    return message, fds


async def hand_over(game: Handing, sock: socket.socket) -> float:
    """The old worker's side; how long input was paused, in seconds.

    Raises ``HandoverFailed``, having resumed serving, if the new worker goes
    away or refuses before it has taken the connections, or if a step here
    fails (a full disk refusing the last commit): the old worker never stays
    paused.
    """
    loop = asyncio.get_running_loop()
    try:
        message, _ = await loop.run_in_executor(None, wire.recv, sock)
    except (OSError, ValueError) as exc:
        raise HandoverFailed(f"the new engine went away before it was ready ({exc})") from None
    if message.get("kind") != "prepared":
        raise HandoverFailed(f"unexpected handover message {message.get('kind')!r}")
    paused = time.monotonic()
    sessions = [s for s in game.players.sessions if not s.closed]
    notice = game.restart_message or game.config.restart_notice
    if notice:
        game.players.broadcast(notice)
    game.stop_accepting()
    game.play.pause()
    for session in sessions:
        _transport(session).pause_reading()
    try:
        await _finish(game)
    except Exception as exc:
        log.exception("hot restart: this engine could not finish its side")
        game.resume_serving(sessions)
        raise HandoverFailed(f"this engine could not finish its side: {exc}", ours=True) from None
    await _drain(sessions)
    states = []
    copies: list[int] = []
    for session in sessions:
        copy = _socket_copy(session)
        if copy is not None:
            copies.append(copy)
            states.append(_state_of(session))
    state = {"kind": "state", "sessions": states}
    fds = [game.db_lock.hand_over() or -1, *copies]
    try:
        try:
            await loop.run_in_executor(None, wire.send, sock, state, fds)
        finally:
            for copy in copies:
                os.close(copy)
        answer, _ = await asyncio.wait_for(
            loop.run_in_executor(None, wire.recv, sock), game.config.restart_timeout
        )
    except (OSError, ValueError, TimeoutError) as exc:
        game.resume_serving(sessions)
        raise HandoverFailed(f"the new engine went away during the handover ({exc})") from None
    if answer.get("kind") != "taken":
        game.resume_serving(sessions)
        raise HandoverFailed(f"the new engine could not take over: {answer.get('error', '?')}")
    return time.monotonic() - paused


def let_go(sessions: Iterable[Session]) -> None:
    """After the handover: this process lets each connection go; the new engine serves it.

    The socket stays up (the new engine has it).  Each session's task is
    cancelled too: what it awaited (a line, a login's back-off or its password
    check in a thread) belongs to the new engine now, and going on here would
    meet the store this process closes next ("Cannot operate on a closed
    database", logged as a crashed session).
    """
    current = asyncio.current_task()
    for session in list(sessions):
        hand_off(session)
        session.abort()
        if session.task is not None and session.task is not current:
            session.task.cancel()


async def _finish(game: Handing) -> None:
    """Let running commands end, tear down the live hooks, commit every change."""
    await game.play.settle(SETTLE)
    for problem in game.content.retire_hooks():
        log.warning("%s", problem)
    game.tasks.retire_all()
    game.world.commit_now()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(game.durable.wait(), SETTLE)


def taken(sock: socket.socket, error: str = "") -> None:
    """The new worker's last word to the old: it has taken everything, or it cannot (why).

    Until this, the old worker holds on to its connections, ready to serve
    them again; a supervisor handing over after a crash does not listen.
    """
    message = {"kind": "refused", "error": error} if error else {"kind": "taken"}
    with contextlib.suppress(OSError):
        wire.send(sock, message, [])


def _state_of(session: Session) -> dict[str, Any]:
    """What the new worker needs to go on with ``session`` as if nothing happened."""
    unread = take_unread(session.reader)
    lines, partial = session.lines.take_buffered(unread.decode("utf-8", "replace"))
    waiting = list(session.queued)
    reading = session.reading
    finished = reading is not None and reading.done() and not reading.cancelled()
    if finished and reading is not None and reading.exception() is None:
        line = reading.result()
        if line is not None:
            waiting.append(line)
    playing = session.account is not None and session.character is not None
    return {
        "key": session.key,
        "account_id": session.account.id if playing and session.account else None,
        "login": list(session.login_stage),
        "input": waiting + lines,
        "partial": partial,
        "connected_at": session.connected_at,
        "telnet": export_state(_protocol(session)),
    }


async def _drain(sessions: list[Session]) -> None:
    """Wait (up to ``SETTLE`` s) until every byte queued for the clients is sent."""
    for session in sessions:
        session.flush()
    deadline = time.monotonic() + SETTLE
    while time.monotonic() < deadline:
        if all(_transport(s).get_write_buffer_size() == 0 for s in sessions if not s.closed):
            return
        await asyncio.sleep(0.01)


def _protocol(session: Session) -> MudTelnetServer:
    return cast(MudTelnetServer, session.writer.protocol)


def _socket_copy(session: Session) -> int | None:
    """A descriptor of its own for the session's socket, or None if its connection ended.

    The descriptors are sent from a thread while the event loop goes on: a
    connection that ends meanwhile closes its socket, and its number could
    even be reused by a new one.  A copy stays this socket until it is sent
    (a client gone by then is a connection the new engine finds closed).
    """
    if session.closed:
        return None
    transport = _transport(session)
    raw = transport.get_extra_info("socket")
    if transport.is_closing() or raw is None or raw.fileno() < 0:
        return None
    return os.dup(raw.fileno())


def _transport(session: Session) -> asyncio.Transport:
    return cast(asyncio.Transport, session.writer.transport)
