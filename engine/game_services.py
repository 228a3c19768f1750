"""``Services``: what content may ask of a running game (``engine.services.GameServices``).

Commands reach it as ``ctx.game``, lifecycle hooks as ``ctx.game``.  Each
service is one step to the part of the game that does it; the parts are
handed over by ``engine.app.Game``, which builds them.  Restarting and the
server's facts go to the restart coordinator (``engine.hot.coordinator``),
stopping to the game's lifetime.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from engine.accounts.account import Account, Accounts, Role
from engine.commands import fallback
from engine.commands.base import Command
from engine.commands.registry import Registry
from engine.config import Config
from engine.guard.errors import ContentError, ContentErrors
from engine.net.session import Session
from engine.players import Players
from engine.services import Connection
from engine.world.model import World
from engine.world.objects import GameObject

if TYPE_CHECKING:
    from engine.guard.tasks import TaskScheduler
    from engine.hot.coordinator import RestartCoordinator
    from engine.live.manager import LiveContent
    from engine.live.typeclasses import TypeclassWatch
    from engine.longlived import LongLived
    from engine.play import PlayLoop
    from engine.world.durability import DurableOutput


class Services:
    """The game's services for content; it implements ``GameServices``."""

    # Parts built after this object (they need it), handed over by ``Game``.
    content: LiveContent
    typeclasses: TypeclassWatch
    play: PlayLoop
    restarts: RestartCoordinator
    durable: DurableOutput[object]
    long_lived: LongLived
    #: Content's timers and tasks (``ctx.game.tasks.after(...)``), scoped to module versions.
    tasks: TaskScheduler

    def __init__(
        self,
        config: Config,
        world: World,
        players: Players,
        accounts: Accounts,
        registry: Registry,
        errors: ContentErrors,
        stop: Callable[[str], None],
    ) -> None:
        self.config = config
        self._world = world
        self.players = players
        self.accounts = accounts
        self.registry = registry
        self.errors = errors
        self._stop = stop
        self.started_at = time.time()

    def wire(
        self,
        content: LiveContent,
        typeclasses: TypeclassWatch,
        play: PlayLoop,
        restarts: RestartCoordinator,
        durable: DurableOutput[object],
        long_lived: LongLived,
    ) -> None:
        """The parts built after this object, which they need: handed over once, by ``Game``."""
        self.content, self.typeclasses, self.play = content, typeclasses, play
        self.restarts, self.durable, self.long_lived = restarts, durable, long_lived

    @property
    def world(self) -> World:
        return self._world

    # -- players ----------------------------------------------------------------------

    def online(self) -> list[Session]:
        return self.players.online()

    def broadcast(self, text: str) -> None:
        self.players.broadcast(text)

    def notify_builders(self, text: str, tag: str = "reload") -> None:
        """One line to every connected builder and admin (reload reports, content errors)."""
        self.players.notify_builders(text, tag)

    async def execute(self, session: Session, line: str) -> None:
        """Run one line as if ``session``'s player typed it."""
        await self.play.execute(session, line)

    # -- accounts ---------------------------------------------------------------------

    async def find_account(self, name: str) -> Account | None:
        return await self.accounts.find(name)

    async def all_accounts(self) -> list[Account]:
        return await self.accounts.all()

    async def save_settings(self, account: Account) -> None:
        await self.accounts.save_settings(account)

    async def set_role(self, name: str, role: Role) -> bool:
        """Change an account's role, for its connected session too."""
        changed = await self.accounts.set_role(name, role)
        for session in self.players.of_account(name):
            if session.account is not None:
                session.account.role = role
                session.send(f"You are now {role.with_article()}.")
        return changed

    # -- content ----------------------------------------------------------------------

    async def reload(self, names: list[str] | None = None, force: bool = False) -> None:
        await self.content.reload(names, force=force)

    def commands(self) -> list[Command]:
        return self.registry.commands()

    def content_errors(self) -> list[ContentError]:
        return self.errors.recent()

    def forget_content_errors(self) -> int:
        return self.errors.clear()

    def broken_content(self) -> list[str]:
        return self.content.broken_lines()

    def typeclass_problem(self, path: str, kind: str) -> str | None:
        return self.typeclasses.problem(path, kind)

    def typeclass_status(self, obj: GameObject) -> str:
        return self.typeclasses.status(obj)

    def builder_briefing(self) -> list[str]:
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

    def saving_fails(self, reason: str) -> None:
        self.notify_builders(
            f"Saving the world fails: {reason}. Changes are refused until it works again; "
            "everything else goes on.",
            tag="world",
        )

    def saving_works(self) -> None:
        self.notify_builders("Saving the world works again.", tag="world")

    # -- the server ---------------------------------------------------------------------

    def restart(self, message: str = "", requester: Connection | None = None) -> str:
        return self.restarts.restart(message, requester)

    def shutdown(self, message: str = "") -> None:
        self._stop(message)

    def status(self) -> dict[str, str]:
        """Facts about this server for the ``status`` command."""
        hot = self.restarts.hot
        started = hot.started_at if hot is not None else self.started_at
        supervisor = os.environ.get("HOTMUD_SUPERVISOR")
        process = f"{supervisor} (engine worker {os.getpid()})" if supervisor else str(os.getpid())
        return {
            "process id": process,
            "version": self.restarts.version,
            "started at": time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(started)),
            "uptime": duration(time.time() - started),
            "hot restarts": str(hot.restarts if hot is not None else 0),
            "players online": str(len(self.online())),
            "world changes saved": str(self.durable.committed),
            "garbage collection": (
                f"{self.long_lived.full_collections} full passes "
                f"({self.long_lived.thaws} of everything), "
                f"longest pause {self.long_lived.longest_pause * 1000:.0f} ms"
            ),
        }

    def mssp_status(self) -> dict[str, str | list[str]]:
        """What MUD listings (MSSP crawlers) are told about this server."""
        status: dict[str, str | list[str]] = {
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
        if self.config.tls_port:
            # The port of telnet over TLS (a proxy in front): Mudlet offers to switch to it.
            status["TLS"] = status["SSL"] = str(self.config.tls_port)
        return status


def duration(seconds: float) -> str:
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
