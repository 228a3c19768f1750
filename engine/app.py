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
import socket
import time
from functools import partial
from types import FrameType
from typing import Any

import watchfiles

from engine import paths
from engine.accounts.account import Account, Accounts, Role
from engine.accounts.guards import CreationLimiter, LoginGuard
from engine.commands import fallback
from engine.commands.base import Command
from engine.commands.registry import Registry
from engine.config import Config
from engine.content.crashes import CrashMarkers, trial_load
from engine.content.errors import ContentError, ContentErrors
from engine.content.guard import ContentFailed, ContentGuard
from engine.content.lifecycle import Lifecycle
from engine.content.manager import ContentManager
from engine.content.tasks import TaskScheduler
from engine.content.threads import ThreadWatch
from engine.content.typeclasses import TypeclassWatch
from engine.content.versions import ReloadTimes
from engine.content.watchdog import WATCHDOG
from engine.hot import handover
from engine.hot.keeper import ConnectionKeeper
from engine.hot.link import HotLink
from engine.longlived import LongLived
from engine.net import telnet
from engine.net.session import Session
from engine.play import PlayLoop
from engine.players import Players
from engine.services import Connection
from engine.startup import DatabaseLock, StartupError, check_port
from engine.world.durability import DurableOutput, SaveState
from engine.world.model import World
from engine.world.objects import GameObject
from engine.world.store import Store, UnusableDatabase

log = logging.getLogger(__name__)


class Game:
    """One running game: its services, its sessions and its lifetime."""

    def __init__(self, config: Config, hot: HotLink | None = None) -> None:
        self.config = config
        #: The supervisor's sockets, when this game runs as its worker.
        self.hot = hot
        # One server per database: the lock is taken (or handed over) in start(),
        # and the store opened once it is held.
        self.db_lock = DatabaseLock(config.db_path)
        self.store = Store(config.db_path, open_now=False)
        # Each part is built with what it needs, in the order they need each other.
        self.players = Players()
        self.accounts = Accounts(self.store)
        self.registry = Registry(fallback.COMMANDS, fallback.MODULE)
        self.errors = ContentErrors(partial(self.players.notify_builders, tag="error"))
        self.saving = SaveState()
        self.reloads = ReloadTimes()
        self.guard = ContentGuard(
            config.content_dir,
            config.content_budget,
            self.errors,
            refusal=self.saving.refusal,
            reload_age=self.reloads.age,
        )
        self.crashes = CrashMarkers(
            config.db_path.with_name(config.db_path.name + ".loading"),
            config.db_path.with_name(config.db_path.name + ".crashed.json"),
        )
        self.tasks = TaskScheduler(self.guard)
        #: Builders hear where content starts a thread (outside the guard).
        self.threads = ThreadWatch(
            config.content_dir, partial(self.players.notify_builders, tag="content")
        )
        self.content = ContentManager(
            config.content_dir,
            self.registry,
            self.players.notify_builders,
            config.reload_step_ms,
            guard=self.guard,
            crashes=self.crashes,
            lifecycle=Lifecycle(self, self.tasks, self.guard),
            on_commit=self._content_committed,
            times=self.reloads,
        )
        self.world = World(self.store, resolver=self.content.resolve_class)
        self.typeclasses = TypeclassWatch(
            self.world, self.content.resolve_class, self.guard, self.players.notify_builders
        )
        self.durable: DurableOutput[Any] = DurableOutput(
            self.world.take_snapshot,
            self.world.write_snapshot,
            on_trouble=self._saving_fails,
            on_recovery=self._saving_works,
            state=self.saving,
        )
        self.play = PlayLoop(
            config=config,
            players=self.players,
            accounts=self.accounts,
            world=self.world,
            registry=self.registry,
            guard=self.guard,
            services=self,
            login_guard=LoginGuard(config.login_backoff, config.login_backoff_max),
            creations=CreationLimiter(
                config.account_creations, config.account_creation_window, config.limit_loopback
            ),
            builder_briefing=self._builder_briefing,
        )
        self.started_at = time.time()
        self.server: Any = None
        self._stop = asyncio.Event()
        self._watcher: asyncio.Task[None] | None = None
        self._previous_factory: Any = None
        self._stop_signals = 0
        self._closed = False
        self._engine_watcher: asyncio.Task[None] | None = None
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
        self._restart_requester: Connection | None = None
        #: The connections went to a newer worker: nothing is closed or saved here.
        self._handed_over = False
        self.version = paths.describe()
        #: What lives long is kept out of full garbage collections (engine.longlived).
        self.long_lived = LongLived(config.gc_interval, config.gc_max_interval)

    # -- lifetime ---------------------------------------------------------------

    async def start(self) -> None:
        hot = self.hot
        taking_over = hot is not None and hot.handover is not None
        if hot is None:
            # A busy port costs one line, before anything is loaded.
            check_port(self.config.host, self.config.port)
        if not taking_over:
            self.db_lock.acquire()  # raises StartupError at once if another server has it
            self._open_store()
        self.threads.install()
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
        report = self.content.load_all()
        for failure in report.failures:
            log.error("content failed to load: %s", failure)
        log.info(
            "content loaded: %d modules, %d commands",
            len(self.content.tree.live),
            len(self.registry.commands()),
        )
        adopted: list[tuple[dict[str, Any], int]] = []
        if hot is not None and hot.handover is not None:
            # Engine and content are loaded: the old worker stops and hands over.
            message, fds = await handover.receive(hot.handover)
            sock, hot.handover = hot.handover, None
            try:
                if message.get("lock", True):
                    self.db_lock.adopt(fds.pop(0))
                else:
                    self.db_lock.acquire()
                self._open_store()
            except BaseException as exc:
                # The old worker still has everything: it serves on.
                for fd in fds:
                    os.close(fd)
                self.db_lock.forget()
                handover.taken(sock, error=str(exc) or type(exc).__name__)
                sock.close()
                raise
            handover.taken(sock)
            sock.close()
            # From here this worker carries the game on, even if the old one dies now.
            hot.tell({"kind": "adopting"})
            adopted = list(zip(message["sessions"], fds, strict=True))
            self.recovered_from = str(message.get("recovered") or "")
        self._open_world()
        # From here on every change is committed before the output that follows it.
        self.world.on_change = self.durable.changed
        for problem in self.content.start_hooks():
            log.warning("%s", problem)
        await self._serve()
        if adopted:
            await self._adopt(adopted)
        self.db_lock.note(self.port)
        log.info("listening on %s:%d", self.config.host, self.port)
        if hot is not None and self.config.port not in (0, self.port):
            # The supervisor holds the port it started on: hotmud.toml changed since.
            line = (
                f"The settings now say port {self.config.port}, but the game listens on "
                f"{self.port}: a new port needs the server stopped and started again."
            )
            log.warning("%s", line)
            self.notify_builders(line, tag="restart")
        if self.config.reload:
            self._watcher = asyncio.create_task(self.content.watch(self._stop), name="watcher")
        self.long_lived.start()
        if hot is not None:
            hot.on_message = self._supervisor_says
            hot.listen()
            # The supervisor keeps a copy of the lock: a crash of this worker never frees it.
            lock = self.db_lock.hand_over()
            hot.tell({"kind": "ready"}, [lock] if lock is not None else [])
            if self.config.reload and paths.FROM_SOURCE:
                # Only a source tree's engine is edited; an installed one is upgraded.
                self._engine_watcher = asyncio.create_task(
                    self._watch_engine(), name="engine watcher"
                )

    async def _adopt(self, adopted: list[tuple[dict[str, Any], int]]) -> None:
        """Serve the connections handed over; their input runs once every player is back.

        A line typed during the restart must not run before the players it
        speaks to are back in their characters, or they would miss it.
        """
        self.play.pause()
        playing = 0
        for state, fd in adopted:
            try:
                await telnet.adopt(self.server, socket.socket(fileno=fd), state)
            except OSError as exc:
                log.warning("a handed-over connection could not be served: %s", exc)
                continue
            playing += state.get("account_id") is not None
        deadline = time.monotonic() + 5.0
        while self.play.returned < playing and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        self.play.resume()
        log.info("took over %d connection%s", len(adopted), "s" if len(adopted) != 1 else "")
        if self.recovered_from:
            count = len(adopted)
            line = (
                f"The game's engine process ended unexpectedly ({self.recovered_from}); "
                f"a new one took over its {count} connection{'s' if count != 1 else ''}."
            )
            log.error("%s", line)
            self.notify_builders(line, tag="restart")

    def _open_store(self) -> None:
        try:
            self.store.open()
        except UnusableDatabase as exc:
            self.db_lock.release()
            raise StartupError(str(exc)) from None

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
        self.typeclasses.report(self.world.broken_report())

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
            if self.hot is not None and not self._handed_over:
                self.hot.tell({"kind": "stopping"})  # its end is no crash to recover from
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
        for watcher in (self._watcher, self._engine_watcher):
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await watcher
        if self.hot is not None:
            self.hot.close()
        self.threads.uninstall()
        self.long_lived.stop()
        if not self._handed_over:
            # Live hooks are torn down once, while the store is still open.
            for problem in self.content.retire_hooks():
                log.warning("%s", problem)
            self.tasks.retire_all()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.durable.wait(), 5)
            for session in list(self.players.sessions):
                session.close()
        tasks = [s.task for s in self.players.sessions if s.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=2)
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 2)
        if self.store.is_open and not self._handed_over:
            self.world.commit_now()
            self.store.close()
            self.db_lock.release()
        loop = asyncio.get_running_loop()
        if loop.get_task_factory() == self.tasks.factory:
            loop.set_task_factory(self._previous_factory)
        if self._handed_over:
            log.info("handed the game over to the new engine; this one stops")
        elif self.server is not None:
            log.info("server stopped")

    # -- hot restart ------------------------------------------------------------------

    def restart(self, message: str = "", requester: Connection | None = None) -> str:
        """Ask the supervisor for a hot restart; the line to show whoever asked."""
        if self.hot is None:
            return (
                "This game runs without its supervisor, so it cannot restart itself; "
                "start it with python -m engine (make run) to restart without "
                "disconnecting anyone."
            )
        self.restart_message = message
        self._restart_requester = requester
        who = requester.name if requester is not None else "an admin"
        self.hot.tell({"kind": "restart", "reason": f"asked by {who}"})
        return "Restarting: the new engine is starting beside this one."

    def status(self) -> dict[str, str]:
        """Facts about this server for the ``status`` command."""
        hot = self.hot
        started = hot.started_at if hot is not None else self.started_at
        supervisor = os.environ.get("HOTMUD_SUPERVISOR")
        process = f"{supervisor} (engine worker {os.getpid()})" if supervisor else str(os.getpid())
        return {
            "process id": process,
            "version": self.version,
            "started at": time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(started)),
            "uptime": _duration(time.time() - started),
            "hot restarts": str(hot.restarts if hot is not None else 0),
            "players online": str(len(self.online())),
            "world changes saved": str(self.durable.committed),
            "garbage collection": (
                f"{self.long_lived.full_collections} full passes "
                f"({self.long_lived.thaws} of everything), "
                f"longest pause {self.long_lived.longest_pause * 1000:.0f} ms"
            ),
        }

    def _supervisor_says(self, message: dict[str, Any], fds: list[int]) -> None:
        kind = message.get("kind")
        if kind == "handover" and fds:
            asyncio.get_running_loop().create_task(
                self._hand_over(socket.socket(fileno=fds[0])), name="handover"
            )
            return
        for fd in fds:
            os.close(fd)
        if kind == "restart-failed":
            error = str(message.get("error", "no reason given"))
            self._restart_failed(f"The restart failed: {_ended(error)} The game goes on as it was.")
        elif kind == "restart-busy":
            self._restart_failed("A restart is under way already.")

    def _restart_failed(self, line: str) -> None:
        log.error("%s", line)
        self.notify_builders(line, tag="restart")
        requester, self._restart_requester = self._restart_requester, None
        if requester is not None and requester.role < Role.BUILDER:
            requester.send(f"[restart] {line}", held=False)
        self.restart_message = ""

    async def _hand_over(self, sock: socket.socket) -> None:
        """Give every connection to the new worker, then stop (see ``engine.hot.handover``)."""
        try:
            paused = await handover.hand_over(self, sock)
        except handover.HandoverFailed as exc:
            log.warning("hot restart: %s", exc)
            if exc.ours and self.hot is not None:
                self.hot.tell({"kind": "restart-abandoned", "error": str(exc)})
                self._restart_failed(
                    f"The restart failed: {_ended(str(exc))} The game goes on as it was."
                )
            return
        except Exception:
            log.exception("hot restart: the handover failed")
            return
        finally:
            sock.close()
        log.info("handed over %d connections (input paused %.0f ms)",
                 len(self.players.sessions), paused * 1000)  # fmt: skip
        self._handed_over = True
        if self.keeper is not None:
            self.keeper.handing_over = True
        if self.hot is not None:
            self.hot.tell({"kind": "handed-over"})
        for session in list(self.players.sessions):
            # This process's hold only: the new one has the socket, which stays up.
            telnet.hand_off(session)
            session.abort()
        self.store.close()
        self.db_lock.forget()
        self._stop.set()

    def stop_accepting(self) -> None:
        """No new connections here (a handover is under way); the open ones stay.

        telnetlib3's ``Server.close`` would close every client too: only the
        listening server beneath it is closed.
        """
        if self.server is not None:
            self.server._server.close()

    def resume_serving(self, sessions: list[Session]) -> None:
        """A handover that failed midway: accept, read and run commands again."""
        if self.hot is not None:
            asyncio.get_running_loop().create_task(self._serve(), name="serve again")
        for session in sessions:
            transport = session.writer.transport
            if transport is not None and not transport.is_closing():
                transport.resume_reading()
        self.play.resume()

    async def _serve(self) -> None:
        """Accept connections: on the supervisor's listener (a copy, which closing
        leaves open for a handover that fails), or on a socket of our own."""
        self.server = await telnet.serve(
            self.config,
            self.play.handle,
            self.durable.after_commit,
            self.mssp_status,
            self.durable.unless_troubled,
            sock=self.hot.listener.dup() if self.hot is not None else None,
        )

    async def _watch_engine(self) -> None:
        """A save under engine/ asks the supervisor for a hot restart."""
        root = paths.CODE_ROOT
        engine_dir = paths.ENGINE_DIR
        async for changes in watchfiles.awatch(
            engine_dir,
            watch_filter=watchfiles.PythonFilter(),
            stop_event=self._stop,
            step=self.config.reload_step_ms,
        ):
            names = sorted({os.path.relpath(path, root) for _, path in changes})
            log.info("engine code changed (%s): restarting", ", ".join(names))
            if self.hot is not None:
                self.hot.tell({"kind": "restart", "reason": f"{', '.join(names)} changed"})

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
        """After a reload, objects of the reloaded type classes run the new code."""
        self.long_lived.reloaded()
        return self.typeclasses.reloaded(modules)

    def typeclass_problem(self, path: str, kind: str) -> str | None:
        return self.typeclasses.problem(path, kind)

    def typeclass_status(self, obj: GameObject) -> str:
        return self.typeclasses.status(obj)

    # -- services for content ---------------------------------------------------

    def broadcast(self, text: str) -> None:
        self.players.broadcast(text)

    def notify_builders(self, text: str, tag: str = "reload") -> None:
        """One line to every connected builder and admin (reload reports, content errors)."""
        self.players.notify_builders(text, tag)

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
        for session in self.players.of_account(name):
            if session.account is not None:
                session.account.role = role
                session.send(f"You are now {role.with_article()}.")
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
        return self.players.online()

    @property
    def sessions(self) -> set[Session]:
        """Every open connection, logged in or not."""
        return self.players.sessions

    async def execute(self, session: Session, line: str) -> None:
        """Run one line as if ``session``'s player typed it."""
        await self.play.execute(session, line)

    def _builder_briefing(self) -> list[str]:
        """What a builder is told on entering: content that does not load, errors recorded."""
        lines = []
        broken = self.content.broken_lines()
        if broken:
            standing = [
                c.key
                for c in fallback.COMMANDS
                if c.key != "errors" and self.registry.get(c.key) is c
            ]
            lines.append("[reload] Content that does not load:")
            lines.extend(f"[reload]   {line}" for line in broken)
            if standing:
                lines.append(
                    f"[reload] The engine's own {', '.join(standing)} stand in for the "
                    "missing commands; save a fixed file and it loads."
                )
        count = len(self.errors.recent())
        if count:
            lines.append(
                f"[error] {count} content error{'s' if count != 1 else ''} recorded; "
                "type 'errors' to see them."
            )
        return lines


def _ended(text: str) -> str:
    """``text`` as a sentence: a full stop at its end unless it has one (or a ? or !)."""
    text = text.rstrip()
    return text if text.endswith((".", "?", "!")) else f"{text}."


def _duration(seconds: float) -> str:
    """``3 d 4 h``, ``2 h 5 min``, ``12 min 3 s``, ``42 s``."""
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"
