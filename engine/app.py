"""The composition root: builds the store, world, registry, content and telnet server.

``Game`` is also what commands see as ``ctx.game``: the services content may
call (broadcast, reload, shutdown, the list of who is online).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from typing import Any

from engine import telnet
from engine.accounts import Accounts, Role
from engine.commands import Context
from engine.config import Config
from engine.content import ContentManager, ReloadReport
from engine.dispatch import parse, resolve, run_command
from engine.lines import LineTooLong
from engine.login import login
from engine.registry import Registry
from engine.session import Session
from engine.store import Store
from engine.world import World

log = logging.getLogger(__name__)


class Game:
    """One running game: its services, its sessions and its lifetime."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.store = Store(config.db_path)
        self.accounts = Accounts(self.store)
        self.registry = Registry()
        self.world = World()
        self.content = ContentManager(
            config.content_dir, self.registry, self.notify_builders, config.reload_step_ms
        )
        self.sessions: set[Session] = set()
        self.started_at = time.time()
        self.server: Any = None
        self._stop = asyncio.Event()
        self._watcher: asyncio.Task[None] | None = None

    # -- lifetime ---------------------------------------------------------------

    async def start(self) -> None:
        report = self.content.load_all()
        for failure in report.failures:
            log.error("content failed to load: %s", failure)
        log.info(
            "content loaded: %d modules, %d commands",
            len(self.content.tree.live),
            len(self.registry.commands()),
        )
        self._build_world()
        self.server = await telnet.serve(self.config, self.handle)
        log.info("listening on %s:%d", self.config.host, self.port)
        if self.config.reload:
            self._watcher = asyncio.create_task(self.content.watch(self._stop), name="watcher")

    @property
    def port(self) -> int:
        return int(self.server.sockets[0].getsockname()[1])

    def _build_world(self) -> None:
        starter = self.content.module("world.starter")
        build = getattr(starter, "build", None)
        if build is None:
            log.warning("content.world.starter has no build(world); using an empty room")
            self.world.add_room("void", "The Void", "Nothing is here yet.")
            return
        build(self.world)
        log.info("world built: %d rooms", len(self.world.rooms))

    async def run(self) -> None:
        """Serve until ``shutdown``."""
        await self.start()
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGTERM, self.shutdown)
        try:
            await self._stop.wait()
        finally:
            await self.close()

    def shutdown(self, message: str = "") -> None:
        """Tell every player, then stop serving (the caller's command finishes first)."""
        text = "The server is shutting down" + (f": {message}" if message else ".")
        log.info("shutdown requested: %s", message or "(no message)")
        self.broadcast(f"*** {text} ***")
        self._stop.set()

    async def close(self) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._watcher
        for session in list(self.sessions):
            session.close()
        tasks = [s.task for s in self.sessions if s.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=2)
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 2)
        self.store.close()
        log.info("server stopped")

    # -- services for content ---------------------------------------------------

    def broadcast(self, text: str) -> None:
        for session in list(self.sessions):
            if session.character is not None:
                session.send(text)

    def notify_builders(self, text: str) -> None:
        """One line to every connected builder and admin (reload reports, errors)."""
        for session in list(self.sessions):
            if session.character is not None and session.role >= Role.BUILDER:
                session.send(f"[reload] {text}")

    async def reload(self, names: list[str] | None = None) -> ReloadReport:
        return await self.content.reload(names)

    def online(self) -> list[Session]:
        return sorted(
            (s for s in self.sessions if s.character is not None and not s.closed),
            key=lambda s: s.name.lower(),
        )

    # -- one connection ---------------------------------------------------------

    async def handle(self, session: Session) -> None:
        """Everything one connection does, from banner to goodbye."""
        self.sessions.add(session)
        log.info("connect %r", session)
        try:
            account = await login(session, self.accounts, self.config)
            if account is None:
                return
            self._enter(session, account)
            await self.execute(session, "look")
            await self._play(session)
        except LineTooLong:
            session.close("Too many overlong lines. Goodbye.")
            log.warning("%r disconnected for overlong lines", session)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._leave(session)
            session.close()
            self.sessions.discard(session)
            log.info("disconnect %r", session)

    def _enter(self, session: Session, account: Any) -> None:
        previous = next(
            (
                s
                for s in self.sessions
                if s is not session and s.account is not None and s.account.id == account.id
            ),
            None,
        )
        character = self.world.character_for(account.id, account.name)
        session.logged_in(account)
        session.character = character
        if previous is not None:
            previous.superseded = True
            previous.character = None
            previous.close("Your character has been taken over by a new connection. Goodbye.")
            character.session = session
            log.info("login %s from %s (took over %r)", account.name, session.peer, previous)
            session.send("You take over your character from your other connection.")
        else:
            character.session = session
            self.world.bring_in(character)
            log.info("login %s (%s) from %s", account.name, account.role, session.peer)
            self.broadcast_except(session, f"{account.name} has entered the game.")

    def broadcast_except(self, session: Session, text: str) -> None:
        for other in list(self.sessions):
            if other is not session and other.character is not None:
                other.send(text)

    def _leave(self, session: Session) -> None:
        character = session.character
        if character is None or session.superseded:
            return
        session.character = None
        character.session = None
        self.world.take_out(character)
        self.broadcast_except(session, f"{character.name} has left the game.")

    async def _play(self, session: Session) -> None:
        while not session.closed:
            session.prompt()
            line = await session.readline()
            if line is None:
                return
            await self.execute(session, line)

    async def execute(self, session: Session, line: str) -> None:
        """Dispatch one line typed by a logged-in player."""
        character = session.character
        if character is None:
            return
        verb, args = parse(line)
        if not verb:
            return
        found = resolve(self.registry, verb, args, session.role, character.location)
        if found.command is None:
            session.send(found.error)
            return
        ctx = Context(caller=character, session=session, game=self, verb=verb, args=found.args)
        await run_command(found.command, ctx)
