"""The composition root: builds the store, world, registry, content and telnet server.

``Game`` is also what commands see as ``ctx.game``, typed for them as
``engine.services.GameServices``: the services content may call, and only those.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from types import FrameType
from typing import Any

from engine.accounts.account import Account, Accounts, Role
from engine.accounts.login import login
from engine.commands import fallback
from engine.commands.base import Command, Context
from engine.commands.dispatch import parse, resolve, run_command
from engine.commands.registry import Registry
from engine.config import Config
from engine.content.crashes import CrashMarkers, trial_load
from engine.content.errors import ContentError, ContentErrors
from engine.content.guard import ContentFailed, ContentGuard
from engine.content.lifecycle import Lifecycle
from engine.content.manager import ContentManager
from engine.content.tasks import TaskScheduler
from engine.content.watchdog import WATCHDOG
from engine.net import telnet
from engine.net.limits import CreationLimiter, LoginGuard
from engine.net.lines import LineTooLong
from engine.net.session import Flooding, Session
from engine.net.text import clean_line
from engine.startup import DatabaseLock, StartupError, check_port
from engine.world import atomic
from engine.world.durability import DurableOutput
from engine.world.model import BrokenTypeclass, World
from engine.world.objects import KINDS, GameObject
from engine.world.store import Store, UnusableDatabase

log = logging.getLogger(__name__)


class Game:
    """One running game: its services, its sessions and its lifetime."""

    def __init__(self, config: Config) -> None:
        self.config = config
        # First of all: one server per database (raises StartupError at once).
        self.db_lock = DatabaseLock(config.db_path)
        self.db_lock.acquire()
        try:
            self.store = Store(config.db_path)
        except UnusableDatabase as exc:
            self.db_lock.release()
            raise StartupError(str(exc)) from None
        except BaseException:
            self.db_lock.release()
            raise
        self.accounts = Accounts(self.store)
        self.registry = Registry(fallback.COMMANDS, fallback.MODULE)
        self.world = World(self.store)
        self.errors = ContentErrors(lambda line: self.notify_builders(line, tag="error"))
        self.guard = ContentGuard(config.content_dir, config.content_budget, self.errors)
        self.crashes = CrashMarkers(
            config.db_path.with_name(config.db_path.name + ".loading"),
            config.db_path.with_name(config.db_path.name + ".crashed.json"),
        )
        self.content = ContentManager(
            config.content_dir,
            self.registry,
            self.notify_builders,
            config.reload_step_ms,
            guard=self.guard,
            crashes=self.crashes,
        )
        self.content.on_commit = self._content_committed
        self.guard.reload_age = self.content.reload_age
        self.tasks = TaskScheduler(self.guard)
        self.content.lifecycle = Lifecycle(self, self.tasks, self.guard)
        self.world.resolver = self.content.resolve_class
        self.durable: DurableOutput[Any] = DurableOutput(
            self.world.take_snapshot,
            self.world.write_snapshot,
            on_trouble=self._saving_fails,
            on_recovery=self._saving_works,
        )
        self.guard.refusal = lambda: self.durable.trouble
        self.sessions: set[Session] = set()
        self.login_guard = LoginGuard(config.login_backoff, config.login_backoff_max)
        self.creations = CreationLimiter(
            config.account_creations, config.account_creation_window, config.limit_loopback
        )
        self.started_at = time.time()
        self.server: Any = None
        self._stop = asyncio.Event()
        self._watcher: asyncio.Task[None] | None = None
        self._reported_broken: dict[str, str] = {}
        self._previous_factory: Any = None
        self._stop_signals = 0
        self._closed = False

    # -- lifetime ---------------------------------------------------------------

    async def start(self) -> None:
        # A busy port costs one line, before anything is loaded.
        check_port(self.config.host, self.config.port)
        loop = asyncio.get_running_loop()
        self._previous_factory = loop.get_task_factory()
        loop.set_task_factory(self.tasks.factory)
        self.crashes.recover()
        # A module that ends the process at import is found in a forked child
        # first, so this process skips it and serves.
        trial_timeout = 5.0 + 3 * self.config.content_budget * len(self.content.tree.discover())
        trial_load(self.content.load_all, self.crashes, trial_timeout)
        # Content loads first (the world needs its type classes); the modules'
        # setup hooks run once the world is open and its changes committed, so
        # a setup sees the restored world and cannot take a stored object's id.
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
            self.config,
            self.handle,
            self.durable.after_commit,
            self.mssp_status,
            self.durable.unless_troubled,
        )
        self.db_lock.note(self.port)
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
        try:
            self.guard.call("build() of world.starter", build, self.world, context="building")
        except ContentFailed as failure:
            log.error("the starter world could not be built: %s", failure.line)
        self.world.commit_now()
        log.info("starter world built: %d objects", len(self.world.objects))

    async def run(self) -> None:
        """Serve until ``shutdown``, SIGTERM or Ctrl-C."""
        try:
            await self.start()
        except BaseException:
            await self.close()
            raise
        loop = asyncio.get_running_loop()
        previous = {}
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(ValueError):  # not the main thread
                previous[signum] = signal.signal(signum, lambda n, f: self._stop_signal(loop, n, f))
        if previous:
            WATCHDOG.watch_signals(lambda n: self._begin_stop(loop, n))
        try:
            await self._stop.wait()
        finally:
            await self.close()
            WATCHDOG.stop_watching_signals()
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _begin_stop(self, loop: asyncio.AbstractEventLoop, signum: int) -> None:
        """A stop signal, seen by the watchdog thread even while the main thread is blocked."""
        if signum in (signal.SIGTERM, signal.SIGINT):
            WATCHDOG.request_stop(self.config.stop_grace)
            loop.call_soon_threadsafe(self.shutdown)

    def _stop_signal(
        self, loop: asyncio.AbstractEventLoop, signum: int, frame: FrameType | None
    ) -> None:
        """SIGTERM or Ctrl-C: stop promptly, even while content holds the loop.

        A plain signal handler (not the loop's) runs in the main thread at the
        next bytecode even while the loop is held; it interrupts the content
        running now and schedules the shutdown.  If the process is still
        alive ``stop_grace`` seconds later (a C call that never returns), the
        watchdog ends it: acknowledged changes are on disk already.  A second
        signal ends it at once.
        """
        self._stop_signals += 1
        name = signal.Signals(signum).name
        if self._stop_signals > 1:
            log.warning("%s again: stopping at once", name)
            logging.shutdown()
            os._exit(1)
        log.info("%s received: shutting down", name)
        self._begin_stop(loop, signum)

    def shutdown(self, message: str = "") -> None:
        """Tell every player, then stop serving (the caller's command finishes first)."""
        if self._stop.is_set():
            return
        text = "The server is shutting down" + (f": {message}" if message else ".")
        log.info("shutdown requested: %s", message or "(no message)")
        self.broadcast(f"*** {text} ***")
        self._stop.set()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._watcher
        # Only live hooks are torn down, once, while the store is still open.
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
        self.db_lock.release()
        loop = asyncio.get_running_loop()
        if loop.get_task_factory() == self.tasks.factory:
            loop.set_task_factory(self._previous_factory)
        if self.server is not None:
            log.info("server stopped")

    def _saving_fails(self, reason: str) -> None:
        self.notify_builders(
            f"Saving the world fails: {reason}. Changes are refused until it works again; "
            "everything else goes on.",
            tag="world",
        )

    def _saving_works(self) -> None:
        self.notify_builders("Saving the world works again.", tag="world")

    # -- type classes -------------------------------------------------------------

    def _content_committed(self, modules: list[str]) -> list[str]:
        """After a reload, objects of the reloaded type classes run the new code.

        Returns warnings for the reload's report: a new type class whose
        ``appearance`` fails is found now, not by the next player to look.
        """
        self._report_broken(self.world.refresh_paths(modules))
        return self._probe_typeclasses(modules)

    def _probe_typeclasses(self, modules: list[str]) -> list[str]:
        """Try ``appearance`` of one object of each reloaded type class; change nothing."""
        prefixes = tuple(f"{m}." for m in modules)
        samples: dict[str, GameObject] = {}
        for obj in self.world.objects.values():
            path = obj.typeclass
            if path.startswith(prefixes) and path not in samples and path not in self.world.broken:
                samples[path] = obj
        if not samples:
            return []
        looker = next((o for o in self.world.objects.values() if o.kind == "character"), None)
        problems = []
        for path, obj in sorted(samples.items()):
            trial = atomic.begin()  # a trial: whatever the hook changes or says is undone
            try:
                self.guard.call(
                    f"{type(obj).__name__}.appearance",
                    obj.appearance,
                    looker or obj,
                    context=f"trying {obj.dbref} after the reload",
                )
            except ContentFailed as failure:
                problems.append(f"{path} fails in appearance() of {obj.dbref}: {failure.line}")
            finally:
                trial.rollback(keep_caller_text=False)
        return problems

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

    def notify_builders(self, text: str, tag: str = "reload") -> None:
        """One line to every connected builder and admin (reload reports, content errors)."""
        for session in list(self.sessions):
            if session.character is not None and session.role >= Role.BUILDER:
                session.send(f"[{tag}] {text}", held=False)

    async def reload(self, names: list[str] | None = None) -> None:
        await self.content.reload(names)

    def commands(self) -> list[Command]:
        return self.registry.commands()

    async def find_account(self, name: str) -> Account | None:
        return await self.accounts.find(name)

    async def all_accounts(self) -> list[Account]:
        return await self.accounts.all()

    async def save_settings(self, account: Account) -> None:
        await self.accounts.save_settings(account)

    def content_errors(self) -> list[ContentError]:
        return self.errors.recent()

    def forget_content_errors(self) -> int:
        return self.errors.clear()

    def broken_content(self) -> list[str]:
        return self.content.broken_lines()

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
            # A deadline from connecting, not an idle timer: a client that sends
            # a byte now and then cannot hold a connection open forever.
            remaining = self.config.login_timeout - (time.time() - session.connected_at)
            try:
                account = await asyncio.wait_for(
                    login(session, self.accounts, self.config, self.login_guard, self.creations),
                    max(remaining, 0.01) if self.config.login_timeout else None,
                )
            except TimeoutError:
                session.close("You took too long to log in. Goodbye.")
                log.info("%r closed: not logged in within the login timeout", session)
                return
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
        if session.role >= Role.BUILDER:
            self._tell_builder_what_is_broken(session)
        session.gmcp("Char.Name", {"name": account.name, "fullname": account.name})
        session.gmcp("Char.Status", {"name": account.name, "role": str(account.role)})
        session.room_changed(character.location)

    def _tell_builder_what_is_broken(self, session: Session) -> None:
        broken = self.content.broken_lines()
        if broken:
            standing = [
                c.key
                for c in fallback.COMMANDS
                if c.key != "errors" and self.registry.get(c.key) is c
            ]
            lines = ["[reload] Content that does not load:"]
            lines.extend(f"[reload]   {line}" for line in broken)
            if standing:
                lines.append(
                    f"[reload] The engine's own {', '.join(standing)} stand in for the "
                    "missing commands; save a fixed file and it loads."
                )
            session.send("\n".join(lines))
        recent = self.errors.recent()
        if recent:
            count = len(recent)
            session.send(
                f"[error] {count} content error{'s' if count != 1 else ''} recorded; "
                "type 'errors' to see them."
            )

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
            await self.execute(session, clean_line(line))

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
        await run_command(found.command, ctx, self.guard)
