"""The play loop: one connection from banner to goodbye, and each line a player types.

A connection logs in (``engine.accounts.login``), enters the game as its
account's character, then reads lines and runs them as commands until it
closes.  Each command runs in a ``Context`` that offers content the game's
services (``engine.services.GameServices``) and nothing more.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from engine.accounts.account import Account, Accounts, Role
from engine.accounts.guards import CreationLimiter, LoginGuard
from engine.accounts.login import login
from engine.commands.dispatch import DIRECTIONS
from engine.commands.registry import Registry
from engine.commands.runner import run_line, start_line
from engine.config import Config
from engine.guard.guard import ContentFailed, ContentGuard
from engine.guard.run import GuardedCommands
from engine.net.lines import LineTooLong
from engine.net.session import Flooding, Session
from engine.net.text import clean_line
from engine.players import Players
from engine.services import GameServices
from engine.world.model import World
from engine.world.objects import GameObject

log = logging.getLogger(__name__)

#: Lines read ahead while a command runs; past this, input waits in the socket.
QUEUE_LIMIT = 20
#: Told once per command to a player who types while their previous command runs.
BUSY = "Your last command is still running; what you type next will run after it."


class PlayLoop:
    """Logs connections in, puts their characters in the world and runs their commands."""

    def __init__(
        self,
        *,
        config: Config,
        players: Players,
        accounts: Accounts,
        world: World,
        registry: Registry,
        guard: ContentGuard,
        services: GameServices,
        login_guard: LoginGuard | None = None,
        creations: CreationLimiter | None = None,
        builder_briefing: Callable[[], list[str]] = list,
    ) -> None:
        self.config = config
        self.players = players
        self.accounts = accounts
        self.world = world
        self.registry = registry
        self.guard = guard
        #: The guard as the road from a line to a command takes it (``engine.commands.runner``).
        self.commands = GuardedCommands(guard)
        self.services = services
        #: Failed logins back off, and new accounts per address are limited, as ``config``
        #: says unless given.
        if login_guard is None:
            login_guard = LoginGuard(config.login_backoff, config.login_backoff_max)
        self.login_guard = login_guard
        if creations is None:
            creations = CreationLimiter(
                config.account_creations, config.account_creation_window, config.limit_loopback
            )
        self.creations = creations
        #: What a builder is told on entering (content that does not load, errors).
        self.builder_briefing = builder_briefing
        #: Set while a hot restart hands the connections over: no command starts.
        self.paused = asyncio.Event()
        self.resumed = asyncio.Event()
        #: Players back in the game after a hot restart handed their connections here.
        self.returned = 0
        #: Commands running now.
        self.running: set[asyncio.Future[None]] = set()

    async def handle(self, session: Session) -> None:
        """Everything one connection does, from banner to goodbye."""
        self.players.add(session)
        log.info("connect %r", session)
        try:
            # A deadline from connecting, not an idle timer: a client that sends
            # a byte now and then cannot hold a connection open forever.
            remaining = self.config.login_timeout - (time.time() - session.connected_at)
            adopted = session.adopted
            if adopted is not None:
                session.lines.put_back(adopted.get("input", []), adopted.get("partial", ""))
            account = await self._adopted_account(session) if adopted else None
            if account is not None:
                self.enter(session, account, returning=True)
                self.returned += 1
                notice = (
                    self.config.recovery_notice
                    if adopted and adopted.get("recovered")
                    else self.config.restart_done
                )
                if notice:
                    session.send(notice)
            else:
                if adopted is not None and adopted.get("recovered"):
                    # Where the dead worker's dialogue stood is not known: start it again.
                    session.show_typing()
                    session.send("The game had a problem and is back; please log in again.")
                try:
                    account = await asyncio.wait_for(
                        login(
                            session,
                            self.accounts,
                            self.config,
                            self.login_guard,
                            self.creations,
                            is_command=self.is_command,
                            resume=_stage(adopted),
                        ),
                        max(remaining, 0.01) if self.config.login_timeout else None,
                    )
                except TimeoutError:
                    session.close("You took too long to log in. Goodbye.")
                    log.info("%r closed: not logged in within the login timeout", session)
                    return
                if account is None:
                    return
                self.enter(session, account)
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
            self._gone(session)

    async def play(self, session: Session, account: Account) -> None:
        """A connection logged in by other means (``engine.local``): enter, look, its lines.

        What ``handle`` does once a login succeeded, to the same end.
        """
        self.players.add(session)
        try:
            self.enter(session, account)
            await self.execute(session, "look")
            await self._play(session)
        finally:
            self._gone(session)

    def _gone(self, session: Session) -> None:
        """The connection's play is over: its character sleeps, and the session goes."""
        self.leave(session)
        session.close()
        self.players.discard(session)
        if self.paused.is_set():
            log.debug("%r ends here: handed over to the new engine", session)
        else:
            log.info("disconnect %r", session)

    async def _adopted_account(self, session: Session) -> Account | None:
        """The account of a connection handed over in the game, or None if it was logging in."""
        adopted = session.adopted or {}
        account_id = adopted.get("account_id")
        if account_id is None:
            return None
        account = await self.accounts.get(int(account_id))
        if account is None:
            log.warning("%r was handed over for account %s, which is gone", session, account_id)
        return account

    def pause(self) -> None:
        """Run no more commands (a hot restart is under way); lines read are kept queued."""
        self.resumed.clear()
        self.paused.set()

    def resume(self) -> None:
        """Run commands again (a handover failed midway)."""
        self.paused.clear()
        self.resumed.set()

    async def settle(self, timeout: float) -> None:
        """Wait (up to ``timeout`` s) for the commands running now to finish."""
        if self.running:
            await asyncio.wait(list(self.running), timeout=timeout)

    def is_command(self, word: str) -> bool:
        """True if ``word`` names a command or a direction: no account may be called that."""
        return self.registry.get(word) is not None or word in DIRECTIONS

    def enter(self, session: Session, account: Account, returning: bool = False) -> None:
        """Put ``account``'s character in the world, played by ``session``.

        A second login to the same account takes the character over; the
        older connection is told and closed.  ``returning``: a connection
        handed over by a hot restart, which nobody else hears about.

        Entering runs type class code (the character's and its room's hooks,
        names, what others hear), so it runs under the guard: a type class
        that raises, even in attribute access, is reported to builders with
        file and line and never keeps a player out (``_enter_plainly``).
        """
        try:
            self.guard.call(
                "entering the game",
                self._enter,
                session,
                account,
                returning,
                caller=session,
                context=f"{account.name} entering the game",
            )
        except ContentFailed:
            self._enter_plainly(session, account)

    def _enter(self, session: Session, account: Account, returning: bool) -> None:
        character = self.world.character_for(account.id, account.name)
        if character.location is None:
            character.location = self.world.start_room
        session.log_in(account)
        previous = self.players.entered(session)
        session.character = character
        character.session = session
        if previous is not None:
            previous.superseded = True
            previous.character = None
            previous.close("Your character has been taken over by a new connection. Goodbye.")
            log.info("login %s from %s (took over %r)", account.name, session.peer, previous)
            session.send("You take over your character from your other connection.")
        elif not returning:
            log.info("login %s (%s) from %s", account.name, account.role, session.peer)
            _tell_room(character, f"{account.name} has entered the game.")
        if session.role >= Role.BUILDER and not returning:
            briefing = self.builder_briefing()
            if briefing:
                session.send("\n".join(briefing))
        session.gmcp("Char.Name", {"name": account.name, "fullname": account.name})
        session.gmcp("Char.Status", {"name": account.name, "role": str(account.role)})
        session.room_changed(character.location)

    def _enter_plainly(self, session: Session, account: Account) -> None:
        """Entering failed in content: the character plays on its kind's engine class.

        The guard has told builders what failed and where.  Only engine code
        runs here; the character is back on its type class at the next
        reload of that class (``World.refresh``).
        """
        character = self.world.find_character(account.id)
        if character is None:
            character = self.world.character_for(account.id, account.name)
        self.world.plain(character)
        if character.location is None:
            character.location = self.world.start_room
        session.log_in(account)
        previous = self.players.entered(session)
        if previous is not None:
            previous.superseded = True
            previous.character = None
            previous.close("Your character has been taken over by a new connection. Goodbye.")
        session.character = character
        character.session = session
        log.warning(
            "%s entered on the engine's own class: entering failed in content", account.name
        )
        self.players.notify_builders(
            f"{account.name} entered the game, but type class code failed on the way (see "
            f"errors): their character plays on the engine's plain {type(character).__name__} "
            "class until its type class is reloaded.",
            tag="error",
        )

    def leave(self, session: Session) -> None:
        """The character stays where it stands, asleep, until its player returns."""
        character = session.character
        if character is None or session.superseded:
            return
        if self.paused.is_set():
            return  # handed over to a new engine process: the player has not left
        session.character = None
        character.session = None
        self.players.changed()
        name = session.name
        # On a failure builders were told; nobody hears of the departure.
        with contextlib.suppress(ContentFailed):
            self.guard.call(
                "leaving the game",
                _tell_room,
                character,
                f"{name} has left the game.",
                context=f"{name} leaving the game",
            )

    async def _play(self, session: Session) -> None:
        """Read lines and run them one at a time, in the order they were typed.

        While a command is still running (an ``async`` one waiting on a timer,
        say), the next lines are read and queued, and the player is told once
        that they wait; a quit typed meanwhile waits its turn too.  While a hot
        restart is under way no command starts: lines stay queued for the new
        engine process.
        """
        queued = session.queued
        try:
            while not session.closed:
                if queued:
                    line = queued.popleft()
                else:
                    session.prompt()
                    typed = await self._read(session)
                    if typed is None:
                        return
                    line = typed
                if self.paused.is_set():
                    queued.appendleft(line)
                    await self.resumed.wait()  # or the process ends, handed over
                    continue
                rest = self.start(session, clean_line(line))
                if rest is None:
                    continue  # done already: a plain command, the common case
                running = asyncio.ensure_future(rest)
                self.running.add(running)
                running.add_done_callback(self.running.discard)
                told = False
                while not running.done():
                    if len(queued) >= QUEUE_LIMIT:
                        # Enough is waiting: the rest waits in the socket (flow control).
                        await asyncio.wait((running,))
                        break
                    reading = session.reading or self._start_read(session)
                    await asyncio.wait((running, reading), return_when=asyncio.FIRST_COMPLETED)
                    if not reading.done():
                        continue
                    more = await self._read(session)  # raises what reading raised
                    if more is None:
                        await running  # the player is gone; the command still finishes
                        return
                    queued.append(more)
                    if not told:
                        told = True
                        session.send(BUSY, held=False)
                running.result()
        finally:
            if session.reading is not None and not session.reading.done():
                session.reading.cancel()

    def _start_read(self, session: Session) -> asyncio.Future[str | None]:
        session.reading = asyncio.ensure_future(session.readline())
        return session.reading

    async def _read(self, session: Session) -> str | None:
        """The next line, from the read in progress if there is one.

        With none in progress the line is awaited here, not in a task of its
        own: a task per line read costs more than the read.
        """
        reading = session.reading
        if reading is None:
            return await session.readline()
        try:
            return await reading
        finally:
            session.reading = None

    async def execute(self, session: Session, line: str) -> None:
        """Run one line typed by a logged-in player, to the end."""
        await run_line(
            line, session, registry=self.registry, services=self.services, guard=self.commands
        )

    def start(self, session: Session, line: str) -> Coroutine[Any, Any, None] | None:
        """Run one line: a plain command now; return the rest to await, or None.

        ``engine.commands.runner.start_line``: an ``async`` command comes back
        whole, dispatched again when it is awaited.
        """
        return start_line(
            line, session, registry=self.registry, services=self.services, guard=self.commands
        )


def _stage(adopted: dict[str, Any] | None) -> tuple[str, str] | None:
    """Where a handed-over connection stood in the login dialogue."""
    if adopted is None:
        return None
    stage, name = [*(adopted.get("login") or []), "name", ""][:2]
    return str(stage), str(name)


def _tell_room(character: GameObject, text: str) -> None:
    """Arrivals and departures are told to the room they happen in (``who`` lists everyone).

    Telling the whole game made every login cost as many messages as there
    are players: a login storm of N players cost N squared (65 s of logins
    for 2,000 players in ``scripts/bench_play.py``).
    """
    room = character.location
    if room is None:
        return
    for other in room.contents:
        if other is not character and other.session is not None:
            other.session.send(text)
