"""The composition root: builds the game's parts, wires them, and runs its lifetime.

``Game`` only wires: what content may ask of the game is ``Services``
(``engine.game_services``), what a hot restart needs of a worker is the
``RestartCoordinator`` (``engine.hot.coordinator``).  Start, serve and stop
run under one ``asyncio.TaskGroup`` (the watchers, a handover, an injected
stop trigger), so no task is tracked by hand; the group ends when the stop
event is set and every task in it has ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from engine.accounts.account import Accounts
from engine.background import Background
from engine.commands import fallback
from engine.commands.registry import Registry
from engine.config import Config
from engine.game_services import Services
from engine.guard.errors import ContentErrors
from engine.guard.guard import ContentGuard
from engine.guard.tasks import TaskScheduler
from engine.guard.threads import ThreadWatch
from engine.hot.coordinator import RestartCoordinator
from engine.hot.link import HotLink
from engine.live.lifecycle import Lifecycle
from engine.live.manager import LiveContent
from engine.live.typeclasses import TypeclassWatch
from engine.live.versions import ReloadTimes
from engine.longlived import LongLived
from engine.net import telnet
from engine.opening import open_world
from engine.play import PlayLoop
from engine.players import Players
from engine.serving import Listeners
from engine.startup import DatabaseLock, StartupError, check_port
from engine.stopping import StopSignals
from engine.world.durability import DurableOutput, SaveState
from engine.world.model import World
from engine.world.store import Store, UnusableDatabase

log = logging.getLogger(__name__)


class Game:
    """One running game: its parts, wired, and its lifetime."""

    def __init__(self, config: Config, hot: HotLink | None = None) -> None:
        self.config = config
        self.hot = hot
        self._stop = asyncio.Event()
        #: The watchers, a handover, a stop trigger: one TaskGroup (engine.background).
        self.background = Background(self._stop)
        # One server per database: the lock is taken (or handed over) in start(),
        # and the store opened once it is held.
        self.db_lock = DatabaseLock(config.db_path)
        self.store = Store(config.db_path, open_now=False)
        # Each part is built with what it needs, in the order they need each other.
        self.players = players = Players()
        self.accounts = Accounts(self.store, config.password_cost)
        self.registry = Registry(fallback.COMMANDS, fallback.MODULE)
        self.errors = ContentErrors(partial(players.notify_builders, tag="error"))
        self.saving = SaveState()
        self.reloads = ReloadTimes()
        self.guard = ContentGuard.for_config(
            config, self.errors, self.saving.refusal, self.reloads.age
        )
        self.tasks = TaskScheduler(self.guard)
        self.threads = ThreadWatch(
            config.content_dir, partial(players.notify_builders, tag="content")
        )
        self.world = World(self.store)
        self.services = services = Services(
            config, self.world, players, self.accounts, self.registry, self.errors, self.shutdown
        )
        self.content = LiveContent.for_game(
            config,
            self.registry,
            players.notify_builders,
            self.guard,
            Lifecycle(services, self.tasks, self.guard),
            self._content_committed,
            self.reloads,
        )
        self.world.resolver = self.content.resolve_class
        self.typeclasses = TypeclassWatch(
            self.world, self.content.resolve_class, self.guard, players.notify_builders
        )
        self.durable: DurableOutput[Any] = DurableOutput(
            self.world.take_snapshot,
            self.world.write_snapshot,
            on_trouble=services.saving_fails,
            on_recovery=services.saving_works,
            state=self.saving,
        )
        self.play = PlayLoop(
            config=config,
            players=players,
            accounts=self.accounts,
            world=self.world,
            registry=self.registry,
            guard=self.guard,
            services=services,
            builder_briefing=services.builder_briefing,
        )
        #: The telnet listener and the web server (engine.serving).
        self.listeners = Listeners(
            config,
            self.play.handle,
            self.durable.after_commit,
            services.mssp_status,
            self.durable.unless_troubled,
            hot,
        )
        #: What lives long is kept out of full garbage collections (engine.longlived).
        self.long_lived = LongLived(config.gc_interval, config.gc_max_interval)
        self.restarts = RestartCoordinator(
            config,
            hot,
            self,
            spawn=self.background.spawn,
            stop_accepting=self.listeners.stop_accepting,
            serve_again=self.listeners.start,
            stop=self._stop.set,
        )
        services.wire(
            self.content, self.typeclasses, self.play, self.restarts, self.durable, self.long_lived
        )
        services.tasks = self.tasks
        self._closed = False

    # -- lifetime ---------------------------------------------------------------

    async def start(self) -> None:
        """Lock, load, open the world, serve; ready for players when it returns."""
        await self.background.open()
        restarts = self.restarts
        if self.hot is None:
            check_port(self.config.host, self.config.port)  # a busy port: one line, at once
        if not restarts.taking_over:
            self.db_lock.acquire()  # raises StartupError at once if another server has it
            self._open_store()
        self.threads.install()
        self.tasks.install()
        self.content.load_at_start(self.config.content_budget)
        adopted = await restarts.take_over(self._open_store) if restarts.taking_over else []
        open_world(self.world, self.content, self.guard)
        self.typeclasses.report(self.world.broken_report())
        # From here on every change is committed before the output that follows it.
        self.world.on_change = self.durable.changed
        for problem in self.content.start_hooks():
            log.warning("%s", problem)
        await self.listeners.start()
        if adopted:
            await restarts.adopt(self.listeners.telnet, adopted, self.listeners.web)
        self.db_lock.note(self.port)
        log.info("listening on %s:%d", self.config.host, self.port)
        if self.config.reload:
            self.background.spawn(self.content.watch(self._stop), "watcher")
        self.long_lived.start()
        restarts.ready(self.port, self._stop)

    async def run(self, stop_trigger: Callable[[], Awaitable[object]] | None = None) -> None:
        """Serve until ``shutdown``, SIGTERM, Ctrl-C or, if given, ``stop_trigger`` returns."""
        try:
            await self.start()
        except BaseException:
            await self.close()
            raise
        if stop_trigger is not None:
            self.background.stop_when(stop_trigger, self.shutdown)
        with StopSignals(self.shutdown, self.config.stop_grace).caught():
            try:
                await self._stop.wait()
            finally:
                self.restarts.stopping()
                await self.close()

    async def close(self) -> None:
        """Stop serving: players told and disconnected, every change committed, lock let go."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        handed_over = self.restarts.handed_over
        self.restarts.close()
        self.threads.uninstall()
        self.long_lived.stop()
        if not handed_over:
            # Live hooks are torn down once, while the store is still open.
            for problem in self.content.retire_hooks():
                log.warning("%s", problem)
            self.tasks.retire_all()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.durable.wait(), 5)
        await self.players.close_all(disconnect=not handed_over, timeout=2)
        await self.listeners.close()
        if self.store.is_open and not handed_over:
            self.world.commit_now()
            self.store.close()
            self.db_lock.release()
        self.tasks.uninstall()
        await self.background.close()
        if handed_over:
            log.info("handed the game over to the new engine; this one stops")
        elif self.listeners.telnet is not None:
            log.info("server stopped")

    def shutdown(self, message: str = "") -> None:
        """Tell every player, then stop serving (the caller's command finishes first)."""
        if self._stop.is_set():
            return
        text = "The server is shutting down" + (f": {message}" if message else ".")
        log.info("shutdown requested: %s", message or "(no message)")
        self.players.broadcast(f"*** {text} ***")
        self._stop.set()

    # -- the parts' start ------------------------------------------------------------

    def _open_store(self) -> None:
        try:
            self.store.open()
        except UnusableDatabase as exc:
            self.db_lock.release()
            raise StartupError(str(exc)) from None

    def _content_committed(self, modules: list[str]) -> list[str]:
        """After a reload, objects of the reloaded type classes run the new code."""
        self.long_lived.reloaded()
        return self.typeclasses.reloaded(modules)

    # -- serving -------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self.listeners.port

    @property
    def server(self) -> telnet.Listener:
        """The telnet listener, once ``start`` has begun serving."""
        listener = self.listeners.telnet
        assert listener is not None, "the game does not serve yet"
        return listener
