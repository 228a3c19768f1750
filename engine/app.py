"""The composition root: builds the store, world, registry, content and telnet server.

``Game`` is also what commands see as ``ctx.game``: the services content may
call (broadcast, reload, shutdown, accounts, the list of who is online).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from typing import Any

from engine import telnet
from engine.accounts import Account, Accounts, Role
from engine.commands import Context
from engine.config import Config
from engine.content import ContentManager, ReloadReport
from engine.dispatch import parse, resolve, run_command
from engine.durability import DurableOutput
from engine.lifecycle import Lifecycle
from engine.limits import LoginGuard
from engine.lines import LineTooLong
from engine.login import login
from engine.objects import KINDS, GameObject
from engine.registry import Registry
from engine.session import Flooding, Session
from engine.store import Store
from engine.tasks import TaskScheduler
from engine.world import BrokenTypeclass, World

log = logging.getLogger(__name__)


class Game:
    """One running game: its services, its sessions and its lifetime."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.store = Store(config.db_path)
        self.accounts = Accounts(self.store)
        self.registry = Registry()
        self.world = World(self.store)
        self.content = ContentManager(
            config.content_dir, self.registry, self.notify_builders, config.reload_step_ms
        )
        self.content.on_commit = self._content_committed
        self.tasks = TaskScheduler()
        self.content.lifecycle = Lifecycle(self, self.tasks)
        self.world.resolver = self.content.resolve_class
        self.durable: DurableOutput[Any] = DurableOutput(
            self.world.take_snapshot, self.world.write_snapshot
        )
        self.sessions: set[Session] = set()
        self.login_guard = LoginGuard(config.login_backoff, config.login_backoff_max)
        self.started_at = time.time()
        self.server: Any = None
        self._stop = asyncio.Event()
        self._watcher: asyncio.Task[None] | None = None
        self._reported_broken: dict[str, str] = {}

    # -- lifetime ---------------------------------------------------------------

    async def start(self) -> None:
        # Fix: the modules' setup hooks used to run inside load_all, before the
        # world was restored: a setup saw no objects and no start room, and an
        # object it created took id 1 and was then written over stored #1.
        # Content loads first (the world needs its type classes), the setups
        # run once the world is open and its changes are committed.
        lifecycle, self.content.lifecycle = self.content.lifecycle, None
        report = self.content.load_all()
        for failure in report.failures:
            log.error("content failed to load: %s", failure)
        log.info(
            "content loaded: %d modules, %d commands",
            len(self.content.tree.live),
            len(self.registry.commands()),
        )
        self._open_world()
        self.world.on_change = self.durable.changed
        self.content.lifecycle = lifecycle
        if lifecycle is not None:
            for problem in lifecycle.start(list(self.content.tree.live.values())):
                log.warning("%s", problem)
        self.server = await telnet.serve(
            self.config, self.handle, self.durable.after_commit, self.mssp_status
        )
        log.info("listening on %s:%d", self.config.host, self.port)
        if self.config.reload:
            self._watcher = asyncio.create_task(self.content.watch(self._stop), name="watcher")

    @property
    def port(self) -> int:
        return int(self.server.sockets[0].getsockname()[1])

    def _open_world(self) -> None:
        """Restore the world from the store, or build the starter world into an empty one."""
        count = self.world.load()
        if count:
            log.info("world restored: %d objects", count)
        else:
            self._build_starter()
        if self.world.start_room is None:
            rooms = self.world.rooms()
            if rooms:
                self.world.set_start(rooms[0])
            else:
                self.world.set_start(self.world.create_room("The Void", "Nothing is here yet."))
        self.world.commit_now()
        self._report_broken(self.world.broken_report())

    def _build_starter(self) -> None:
        starter = self.content.module("world.starter")
        build = getattr(starter, "build", None)
        if build is None:
            log.warning("content.world.starter has no build(world); starting with one room")
            return
        build(self.world)
        self.world.commit_now()
        log.info("starter world built: %d objects", len(self.world.objects))

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
        # Fix: a second close() (a test's, after a shutdown's) used to run every
        # module's teardown again, on a closed store, then wait 5 s for a
        # commit that could not happen.  Only live hooks are torn down, once.
        lifecycle, self.content.lifecycle = self.content.lifecycle, None
        if lifecycle is not None:
            for problem in lifecycle.retire(self.content.tree.live.values()):
                log.warning("%s", problem)
        self.tasks.retire_all()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.durable.wait(), 5)
        for session in list(self.sessions):
            session.close()
        tasks = [s.task for s in self.sessions if s.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=2)
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 2)
        self.world.commit_now()
        self.store.close()
        log.info("server stopped")

    # -- type classes -------------------------------------------------------------

    def _content_committed(self, modules: list[str]) -> None:
        """After a reload, objects of the reloaded type classes run the new code."""
        self._report_broken(self.world.refresh_paths(modules))

    def _report_broken(self, broken: list[BrokenTypeclass]) -> None:
        """Tell builders when a type class path starts or stops failing, once each."""
        now = {b.path: b.error for b in broken}
        for item in broken:
            if self._reported_broken.get(item.path) != item.error:
                ids = ", ".join(f"#{i}" for i in item.objects)
                line = (
                    f"Type class {item.path} does not load ({item.error}); "
                    f"{ids} run the base behaviour of their kind until it does."
                )
                log.warning("%s", line)
                self.notify_builders(line)
        for path in self._reported_broken.keys() - now.keys():
            line = f"Type class {path} loads again; its objects are back on it."
            log.info("%s", line)
            self.notify_builders(line)
        self._reported_broken = now

    def typeclass_problem(self, path: str, kind: str) -> str | None:
        """Why ``path`` cannot be the type class of a ``kind`` object, or None if it can."""
        try:
            cls = self.content.resolve_class(path)
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"
        base = KINDS[kind]
        if not (isinstance(cls, type) and issubclass(cls, base)):
            return (
                f"it is not a {base.__name__} class (it must subclass engine.api.{base.__name__})"
            )
        return None

    def typeclass_status(self, obj: GameObject) -> str:
        if obj.typeclass in self.world.broken:
            return f"(NOT LOADING: {self.world.broken[obj.typeclass]}; running base behaviour)"
        return "(loaded)"

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

    async def set_role(self, name: str, role: Role) -> bool:
        """Change an account's role, for its connected session too."""
        changed = await self.accounts.set_role(name, role)
        for session in self.sessions:
            if session.account is not None and session.account.name.lower() == name.lower():
                session.account.role = role
                session.send(f"You are now {role}.")
        return changed

    def mssp_status(self) -> dict[str, str | list[str]]:
        """What MUD listings (MSSP crawlers) are told about this server."""
        return {
            "NAME": self.config.server_name,
            "PLAYERS": str(len(self.online())),
            "UPTIME": str(int(self.started_at)),
            "CODEBASE": "HotMUD 0.1",
            "FAMILY": "Custom",
            "LANGUAGE": "English",
            "ANSI": "1",
            "GMCP": "1",
            "MCCP": "1" if self.config.compression else "0",
            "UTF-8": "1",
            "XTERM 256 COLORS": "1",
            "XTERM TRUE COLORS": "1",
            "CRAWL DELAY": "-1",
        }

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
            account = await login(session, self.accounts, self.config, self.login_guard)
            if account is None:
                return
            self._enter(session, account)
            await self.execute(session, "look")
            await self._play(session)
        except LineTooLong:
            session.close("Too many overlong lines. Goodbye.")
            log.warning("%r disconnected for overlong lines", session)
        except Flooding as exc:
            session.close("You are flooding the game with commands. Goodbye.")
            log.warning("%r disconnected for flooding: %s", session, exc)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._leave(session)
            session.close()
            self.sessions.discard(session)
            log.info("disconnect %r", session)

    def _enter(self, session: Session, account: Account) -> None:
        previous = next(
            (
                s
                for s in self.sessions
                if s is not session and s.account is not None and s.account.id == account.id
            ),
            None,
        )
        character = self.world.character_for(account.id, account.name)
        if character.location is None:
            character.location = self.world.start_room
        session.logged_in(account)
        session.character = character
        character.session = session
        if previous is not None:
            previous.superseded = True
            previous.character = None
            previous.close("Your character has been taken over by a new connection. Goodbye.")
            log.info("login %s from %s (took over %r)", account.name, session.peer, previous)
            session.send("You take over your character from your other connection.")
        else:
            log.info("login %s (%s) from %s", account.name, account.role, session.peer)
            self.broadcast_except(session, f"{account.name} has entered the game.")
        session.gmcp("Char.Name", {"name": account.name, "fullname": account.name})
        session.gmcp("Char.Status", {"name": account.name, "role": str(account.role)})
        session.room_changed(character.location)

    def broadcast_except(self, session: Session, text: str) -> None:
        for other in list(self.sessions):
            if other is not session and other.character is not None:
                other.send(text)

    def _leave(self, session: Session) -> None:
        """The character stays where it stands, asleep, until its player returns."""
        character = session.character
        if character is None or session.superseded:
            return
        session.character = None
        character.session = None
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
