"""A whole game in one process, without sockets: for tests of what commands do.

``LocalGame`` loads ``content/`` as the server does (the real loader, guard
and command registry, the engine's fallbacks behind content's commands),
builds the starter world in memory, and runs the game's own play loop
(``engine.play.PlayLoop``) for each player, on a connection kept in memory.
What a player types takes the road every line takes in the game (entering,
each line in turn, an ``async`` command's lines queued behind it, leaving),
so what a test sees is what the game does.  Each player is a ``LocalPlayer``
with the reading side of the telnet test client (``command``, ``expect``,
``transcript``), so a test of command logic reads like the socket tests but
runs in milliseconds::

    game = LocalGame()
    alice, bob = await game.players("Alice", "Bob")   # Alice, the first, is an admin
    await bob.command("get lamp", "You find no 'lamp' here.")

The network, login, durability and reloads are tested over real sockets;
this covers what happens between a line and its answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, cast

from engine.accounts.account import Account, Accounts, Role
from engine.accounts.guards import CreationLimiter, LoginGuard
from engine.commands import fallback
from engine.commands.registry import Registry
from engine.config import Config
from engine.guard.errors import ContentError, ContentErrors
from engine.guard.guard import ContentGuard
from engine.live.manager import LiveContent
from engine.live.typeclasses import TypeclassWatch
from engine.net.colour import Depth
from engine.net.session import Session, as_sent
from engine.paths import starter_content
from engine.play import PlayLoop
from engine.players import Players
from engine.services import Connection, GameServices
from engine.testing import CommandTestGame, RecordingSession
from engine.world.model import World
from engine.world.objects import Character, GameObject
from engine.world.store import Store

#: The width text is wrapped at for a client that does not report its own.
WIDTH = 80
#: How long ``expect`` waits for the lines typed so far to be run, in seconds.
SETTLE_TIMEOUT = 10.0


class LocalSession(RecordingSession):
    """A player's connection in a ``LocalGame``: lines typed and text sent, in memory.

    It has what the play loop uses of a ``Session`` (``engine.net.session``),
    and records what is sent as a telnet client would show it.
    """

    def __init__(self, account: Account, width: int, wake: Callable[[], None]) -> None:
        super().__init__(account.name, account.role)
        self.account = account
        self.width = width
        self.peer = "in process"
        self.connected_at = time.time()
        self.superseded = False
        self.adopted: dict[str, Any] | None = None
        #: Lines the play loop read and has not run yet (see ``PlayLoop._play``).
        self.queued: deque[str] = deque()
        self.reading: asyncio.Future[str | None] | None = None
        #: Everything sent, as the client shows it (lines end in CR LF).
        self.output: list[str] = []
        #: True from a prompt until the next line typed: the play loop waits for the player.
        self.prompted = False
        self._typed: deque[str] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._wake = wake

    def type(self, line: str) -> None:
        """The player types ``line`` (and presses return)."""
        self._typed.append(line)
        self.prompted = False
        self._resume()

    @property
    def waiting(self) -> bool:
        """True while the play loop waits for a line and none is typed."""
        return self.prompted and not self._typed

    async def readline(self) -> str | None:
        """The next line typed, or None once the connection is closed."""
        while not self._typed:
            if self.closed:
                return None
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        if self.closed:
            return None
        self.last_input = time.time()
        return self._typed.popleft()

    def _resume(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _record(self, text: str, newline: bool) -> None:
        super()._record(text, newline)
        depth = self.colour if "|" in text else Depth.NONE
        self.output.append(as_sent(text, self.width if newline else 0, depth, newline))

    def prompt(self, text: str = "> ") -> None:
        if not self.closed:
            self.output.append(as_sent(text, 0, Depth.NONE, newline=False))
            self.prompted = True
            self._wake()

    def close(self, message: str | None = None) -> None:
        super().close(message)
        self._resume()
        self._wake()

    def log_in(self, account: Account) -> None:
        self.account = account

    def show_typing(self) -> None:
        return None


class LocalPlayer:
    """One player of a ``LocalGame``: what they type, and everything they were sent."""

    def __init__(self, game: LocalGame, session: LocalSession) -> None:
        self.game = game
        self.session = session
        #: The play loop playing this connection (``PlayLoop.play``), until it closes.
        self.task: asyncio.Future[None] | None = None
        self._character: Character | None = None
        #: How many of the session's outputs are already in ``transcript``.
        self._taken = 0
        #: Everything sent, as on the wire: a ``> `` prompt before each line typed.
        self.transcript = ""
        self._unread = ""

    @property
    def name(self) -> str:
        return self.session.name

    @property
    def character(self) -> Character:
        """The character this player plays (or played, once gone)."""
        character = self.session.character or self._character
        if character is None:
            raise AssertionError(f"{self.name} has not entered the game")
        self._character = character
        return character

    @property
    def idle(self) -> bool:
        """True when the play loop has nothing left to do for this player until they type."""
        return self.task is None or self.task.done() or self.session.waiting

    def _take(self) -> None:
        output = self.session.output
        new = "".join(output[self._taken :])
        self._taken = len(output)
        self.transcript += new
        self._unread += new

    def send(self, line: str) -> None:
        """Type ``line``; it runs before the next ``expect`` of any player returns."""
        self.session.type(line)

    async def expect(self, text: str, timeout: float = SETTLE_TIMEOUT) -> str:
        """The output up to and including ``text``; fails if it has not been sent.

        Every line typed so far, by anyone, runs first (an ``async`` command
        to its end), until each player's play loop waits for the next line;
        that must happen within ``timeout`` seconds.
        """
        await self.game.settle(timeout)
        self._take()
        at = self._unread.find(text)
        if at < 0:
            raise AssertionError(f"no {text!r} was sent to {self.name}; got {self._unread!r}")
        end = at + len(text)
        seen, self._unread = self._unread[:end], self._unread[end:]
        return seen

    async def command(self, line: str, text: str, timeout: float = SETTLE_TIMEOUT) -> str:
        """Type ``line``; the output up to and including ``text``."""
        self.send(line)
        return await self.expect(text, timeout)

    def disconnect(self) -> None:
        """The connection drops, without a ``quit``: the play loop ends, the character sleeps."""
        self.session.close()

    async def expect_closed(self) -> str:
        """What was left to read once the connection is closed; fails if it is open."""
        await self.expect("")
        if not self.session.closed:
            raise AssertionError(f"{self.name}'s connection is still open")
        rest, self._unread = self._unread, ""
        return rest


class LocalServices(CommandTestGame):
    """``ctx.game`` in a ``LocalGame``: the world, its players, and its content's state.

    Type class checks and content errors come from the game's own parts, as
    in the server; what needs a server (accounts, reloads, restarts) says so.
    """

    def __init__(self, game: LocalGame) -> None:
        super().__init__(game.world, game.registry)
        self._game = game

    def typeclass_problem(self, path: str, kind: str) -> str | None:
        return self._game.typeclasses.problem(path, kind)

    def typeclass_status(self, obj: GameObject) -> str:
        return self._game.typeclasses.status(obj)

    def content_errors(self) -> list[ContentError]:
        return self._game.errors.recent()

    def forget_content_errors(self) -> int:
        return self._game.errors.clear()

    def broken_content(self) -> list[str]:
        return self._game.content.broken_lines()

    # Accounts live in memory here, one per name a test logged in.

    async def find_account(self, name: str) -> Account | None:
        return self._game.accounts.get(name.lower())

    async def all_accounts(self) -> list[Account]:
        return sorted(self._game.accounts.values(), key=lambda account: account.id)

    async def save_settings(self, account: Account) -> None:
        """Nothing to write: the account object is all there is."""

    async def set_role(self, name: str, role: Role) -> bool:
        """Change an account's role, for its connected session too (as the server does)."""
        account = self._game.accounts.get(name.lower())
        if account is None:
            return False
        account.role = role
        for session in self._game.sessions.of_account(name):
            if session.account is not None:
                session.account.role = role
                session.send(f"You are now {role.with_article()}.")
        return True


class LocalGame:
    """The starter game in memory: content loaded, the world built, the play loop, no sockets."""

    def __init__(
        self, content_dir: Path | None = None, budget: float = 1.0, width: int = WIDTH
    ) -> None:
        directory = content_dir or starter_content()
        #: The window width every player's text is wrapped at.
        self.width = width
        self._players: list[LocalPlayer] = []
        #: Accounts by name (lower case): a player who comes back plays their character again.
        self.accounts: dict[str, Account] = {}
        #: Every notice builders were sent (type classes that do not load, refusals, errors).
        self.notices: list[str] = []
        #: Set when a player's play loop may have become idle (``settle``).
        self._changed = asyncio.Event()
        self.sessions = Players()
        self.registry = Registry(fallback.COMMANDS, fallback.MODULE)
        self.errors = ContentErrors(partial(self.notify_builders, tag="error"))
        self.guard = ContentGuard(directory, budget, self.errors)
        self.content = LiveContent(
            directory, self.registry, partial(self.notify_builders, tag="content"), guard=self.guard
        )
        report = self.content.load_all()
        if not report.ok:
            raise RuntimeError("content does not load: " + "; ".join(report.failures))
        self.world = World(resolver=self.content.resolve_class)
        self.typeclasses = TypeclassWatch(
            self.world, self.content.resolve_class, self.guard, self.notify_builders
        )
        starter = self.content.module("world.starter")
        build = getattr(starter, "build", None)
        if build is not None:
            build(self.world)
        if self.world.start_room is None:
            self.world.set_start(self.world.create_room("The Void"))
        self.typeclasses.report(self.world.broken_report())
        config = Config(content_dir=directory, content_budget=budget)
        #: The game's own play loop: entering, each line, leaving.
        self.play = PlayLoop(
            config=config,
            players=self.sessions,
            # Players log in by name here (``player``): the login dialogue and the
            # account store are the server's, tested over sockets.
            accounts=Accounts(Store(":memory:", open_now=False)),
            world=self.world,
            registry=self.registry,
            guard=self.guard,
            services=LocalServices(self),
            login_guard=LoginGuard(),
            creations=CreationLimiter(config.account_creations, config.account_creation_window),
        )

    @property
    def services(self) -> GameServices:
        """``ctx.game`` of every command; a test may put its own in place."""
        return self.play.services

    @services.setter
    def services(self, services: GameServices) -> None:
        self.play.services = services

    async def player(self, name: str, role: Role | None = None) -> LocalPlayer:
        """Log ``name`` in (the first account is an admin, as on a new server) and look.

        A name that played before plays its character again, where it stands;
        one that is playing now is taken over, as a second login is.
        """
        account = self.accounts.get(name.lower())
        if account is None:
            if role is None:
                role = Role.ADMIN if not self.accounts else Role.PLAYER
            account = self.accounts[name.lower()] = Account(len(self.accounts) + 1, name, role)
        elif role is not None:
            account.role = role
        session = LocalSession(account, self.width, self._changed.set)
        player = LocalPlayer(self, session)
        # A Session as far as the play loop uses one: see LocalSession.
        player.task = asyncio.ensure_future(self.play.play(cast(Session, session), account))
        player.task.add_done_callback(lambda _: self._changed.set())
        self._players.append(player)
        await self.settle()
        return player

    async def players(self, *names: str) -> list[LocalPlayer]:
        """Log each in turn; each has seen the later ones arrive."""
        joined: list[LocalPlayer] = []
        for name in names:
            player = await self.player(name)
            for earlier in joined:
                await earlier.expect(f"{name} has entered the game.")
            joined.append(player)
        return joined

    def online(self) -> Sequence[Connection]:
        return self.services.online()

    def notify_builders(self, text: str, tag: str = "reload") -> None:
        """An engine notice, as the server sends it: to builders in the game, never held."""
        self.notices.append(text)
        self.sessions.notify_builders(text, tag)

    async def settle(self, timeout: float = SETTLE_TIMEOUT) -> None:
        """Wait until every line typed has run and each play loop waits for the next.

        A play loop that failed raises its error here; one still busy after
        ``timeout`` seconds (a command that never ends) fails the test.
        """
        deadline = time.monotonic() + timeout
        while True:
            self._changed.clear()
            for player in self._players:
                if player.task is not None and player.task.done():
                    player.task.result()
            if not self.play.running and all(player.idle for player in self._players):
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                busy = [p.name for p in self._players if not p.idle]
                raise AssertionError(f"still running after {timeout} s: {busy or 'commands'}")
            # Woken by a prompt, a close or a play loop's end; polled besides, to be sure.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.05))
