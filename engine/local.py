"""A whole game in one process, without sockets: for tests of what commands do.

``LocalGame`` loads ``content/`` as the server does (the real loader, guard
and command registry, the engine's fallbacks behind content's commands),
builds the starter world in memory, and lets players log in and type lines.
Each player is a ``LocalPlayer`` with the reading side of a telnet test
client (``command``, ``expect``, ``transcript``), so a test of command logic
reads like the socket tests but runs in milliseconds::

    game = LocalGame()
    alice, bob = await game.players("Alice", "Bob")   # Alice, the first, is an admin
    await bob.command("get lamp", "You find no 'lamp' here.")

The network, login, durability and reloads are tested over real sockets;
this covers what happens between a line and its answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from engine.accounts.account import Account, Role
from engine.commands import fallback
from engine.commands.base import Context
from engine.commands.dispatch import parse, resolve
from engine.commands.registry import Registry
from engine.content.guard import ContentGuard
from engine.content.manager import ContentManager
from engine.content.run import run_command
from engine.content.typeclasses import TypeclassWatch
from engine.net.session import as_sent
from engine.paths import starter_content
from engine.services import Connection, GameServices
from engine.testing import CommandTestGame, RecordingSession
from engine.world.model import World
from engine.world.objects import Character

#: The width text is wrapped at for a client that does not report its own.
WIDTH = 80


class LocalPlayer:
    """One player of a ``LocalGame``: what they type, and everything they were sent."""

    def __init__(self, game: LocalGame, character: Character, session: RecordingSession) -> None:
        self.game = game
        self.character = character
        self.session = session
        #: How many of the session's messages are already in ``transcript``.
        self._taken = 0
        #: Everything sent, as on the wire: a ``> `` prompt before each line typed.
        self.transcript = ""
        self._unread = ""

    @property
    def name(self) -> str:
        return self.character.name

    def _take(self, extra: str = "") -> None:
        sent = self.session.sent[self._taken :]
        width = self.game.width
        new = "".join(as_sent(text, width, self.session.colour) for text in sent) + extra
        self._taken = len(self.session.sent)
        self.transcript += new
        self._unread += new

    def send(self, line: str) -> None:
        """Type ``line``; it runs before the next ``expect`` of any player."""
        self.game.typed.append((self, line))

    async def expect(self, text: str) -> str:
        """The output up to and including ``text``; fails if it has not been sent."""
        await self.game.run_typed()
        self._take()
        at = self._unread.find(text)
        if at < 0:
            raise AssertionError(f"no {text!r} was sent to {self.name}; got {self._unread!r}")
        end = at + len(text)
        seen, self._unread = self._unread[:end], self._unread[end:]
        return seen

    async def command(self, line: str, text: str) -> str:
        """Type ``line``; the output up to and including ``text``."""
        self.send(line)
        return await self.expect(text)

    async def expect_closed(self) -> str:
        """What was left to read once the connection is closed; fails if it is open."""
        await self.expect("")
        if not self.session.closed:
            raise AssertionError(f"{self.name}'s connection is still open")
        rest, self._unread = self._unread, ""
        return rest


class LocalGame:
    """The starter game in memory: content loaded, the world built, no sockets."""

    def __init__(
        self, content_dir: Path | None = None, budget: float = 1.0, width: int = WIDTH
    ) -> None:
        directory = content_dir or starter_content()
        #: The window width every player's text is wrapped at.
        self.width = width
        #: Lines typed with ``LocalPlayer.send``, in the order they were typed.
        self.typed: list[tuple[LocalPlayer, str]] = []
        self._players: list[LocalPlayer] = []
        self.registry = Registry(fallback.COMMANDS, fallback.MODULE)
        self.guard = ContentGuard(directory, budget)
        self.content = ContentManager(directory, self.registry, lambda text: None, guard=self.guard)
        report = self.content.load_all()
        if not report.ok:
            raise RuntimeError("content does not load: " + "; ".join(report.failures))
        self.world = World(resolver=self.content.resolve_class)
        #: Every notice builders were sent (type classes that do not load, refusals).
        self.notices: list[str] = []
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
        self.services: GameServices = CommandTestGame(self.world, self.registry)

    async def player(self, name: str, role: Role | None = None) -> LocalPlayer:
        """Log ``name`` in (the first account is an admin, as on a new server) and look."""
        if role is None:
            role = Role.ADMIN if not self._players else Role.PLAYER
        account = Account(len(self._players) + 1, name, role)
        character = self.world.character_for(account.id, account.name)
        if character.location is None:
            character.location = self.world.start_room
        session = RecordingSession(name, role)
        session.account = account
        character.session = session
        player = LocalPlayer(self, character, session)
        for other in self._players:
            if other.character.location is character.location:
                other.session.send(f"{name} has entered the game.")
        self._players.append(player)
        await self.execute(player, "look")
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
        for player in self._players:
            if player.session.role >= Role.BUILDER:
                player.session.send(f"[{tag}] {text}", held=False)

    async def run_typed(self) -> None:
        """Run every line typed so far, in order."""
        while self.typed:
            player, line = self.typed.pop(0)
            await self.execute(player, line)

    async def execute(self, player: LocalPlayer, line: str) -> None:
        """Run ``line`` as ``player`` typed it, then prompt for the next, as the play loop does."""
        if player.session.closed:
            return
        verb, args = parse(line)
        if verb:
            found = resolve(
                self.registry, verb, args, player.session.role, player.character.location
            )
            if found.command is None:
                player.session.send(found.error)
            else:
                ctx = Context(
                    player.character,
                    player.session,
                    self.services,
                    verb,
                    found.args,
                    found.switches,
                )
                await run_command(found.command, ctx, self.guard)
        if player.session.closed:
            self._leave(player)
        else:
            player._take("> ")

    def _leave(self, player: LocalPlayer) -> None:
        """The player quit: the character stays, asleep, and the others are told."""
        player.character.session = None
        self._players.remove(player)
        for other in self._players:
            if other.character.location is player.character.location:
                other.session.send(f"{player.name} has left the game.")
