"""What content may ask of the running game: ``ctx.game``, and nothing more.

Commands receive the game as a ``GameServices``: the players online, the
commands (for help), accounts and their settings, roles, reloads, shutdown,
broadcasts, type class checks and the content errors.  The engine's parts
(registry, store, sessions' insides, the content manager) stay behind it,
so they can change without breaking a builder's file.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from engine.accounts.account import Account, Role
    from engine.net.clientinfo import ClientInfo
    from engine.net.colour import Depth
    from engine.world.model import World
    from engine.world.objects import GameObject


class Connection(Protocol):
    """A player's connection as a command sees it (``ctx.session``).

    ``engine.net.session.Session`` in the game; ``engine.testing``'s
    recording session in ``call_command``.
    """

    @property
    def account(self) -> Account | None: ...

    @property
    def name(self) -> str: ...

    @property
    def role(self) -> Role: ...

    @property
    def closed(self) -> bool: ...

    @property
    def last_input(self) -> float:
        """When the player last typed a line (``time.time()``)."""
        ...

    @property
    def client(self) -> ClientInfo:
        """What the client said of itself (terminal type, width, colour support)."""
        ...

    @property
    def colour(self) -> Depth:
        """The colour depth text is rendered at for this player."""
        ...

    def deliver(self, action: Callable[[], None]) -> None:
        """Run an output action once the changes made so far are durable."""
        ...

    def deliver_unchanged(self, action: Callable[[], None]) -> None:
        """Run an output action at once."""
        ...

    def send(self, text: str, newline: bool = True, *, held: bool = True) -> None:
        """One message to the player (held by the open transaction unless ``held=False``)."""
        ...

    def close(self, message: str | None = None) -> None:
        """Say ``message``, then end the connection."""
        ...

    def gmcp(self, package: str, data: Any) -> None:
        """One GMCP message, for clients that asked for GMCP."""
        ...


class ErrorReport(Protocol):
    """One distinct content error as builders read it (``engine.guard.errors.ContentError``)."""

    @property
    def count(self) -> int:
        """How many times it happened."""
        ...

    @property
    def last(self) -> float:
        """When it last happened (``time.time()``)."""
        ...

    def line(self) -> str:
        """Where and what: ``content/commands/fun.py:12, in run: ZeroDivisionError: ...``."""
        ...


class CommandInfo(Protocol):
    """A command as ``help`` sees it (``engine.commands.base.Command``)."""

    @property
    def key(self) -> str: ...

    @property
    def aliases(self) -> tuple[str, ...]: ...

    @property
    def permission(self) -> Role: ...

    @property
    def category(self) -> str: ...

    @property
    def names(self) -> tuple[str, ...]:
        """The key, then the aliases."""
        ...

    def help_text(self) -> str:
        """The whole help page."""
        ...

    def summary(self) -> str:
        """The first line of the help page."""
        ...


class GameServices(Protocol):
    """The running game as content sees it (``ctx.game``)."""

    @property
    def world(self) -> World:
        """Every room, exit, thing and character (also ``ctx.world``)."""
        ...

    def online(self) -> Sequence[Connection]:
        """The sessions of the players in the game, by name."""
        ...

    def commands(self) -> Sequence[CommandInfo]:
        """Every command that answers now (content's and the engine's own), by key."""
        ...

    def broadcast(self, text: str) -> None:
        """One line to every player in the game."""
        ...

    async def find_account(self, name: str) -> Account | None:
        """The account called ``name`` (any case), or None."""
        ...

    async def all_accounts(self) -> list[Account]:
        """Every account, by name."""
        ...

    async def save_settings(self, account: Account) -> None:
        """Store ``account.settings`` (colour and the like)."""
        ...

    async def set_role(self, name: str, role: Role) -> bool:
        """Give the account ``name`` a role; its session learns it at once."""
        ...

    async def reload(self, names: list[str] | None = None, force: bool = False) -> None:
        """Reload content modules now (every module when None); builders hear the outcome.

        Where the game has tests, the reload goes live once they pass, as a
        save does; ``force`` puts it live at once without them, with every
        save they hold back (``reload/force``, an admin's).
        """
        ...

    def restart(self, message: str = "", requester: Connection | None = None) -> str:
        """Start a hot restart: a new engine takes every connection over (``message`` to players).

        Returns the line to show whoever asked, which begins with
        ``Restarting`` when the restart has begun (``restart`` audits it
        then); if the restart fails, builders and the requester are told why,
        and the game goes on as it was.
        """
        ...

    def status(self) -> dict[str, str]:
        """Process id, version, started at, uptime, hot restarts so far, players online."""
        ...

    def shutdown(self, message: str = "") -> None:
        """Tell every player, then stop the server."""
        ...

    def typeclass_problem(self, path: str, kind: str) -> str | None:
        """Why ``path`` cannot be the type class of a ``kind`` object, or None if it can."""
        ...

    def typeclass_status(self, obj: GameObject) -> str:
        """Whether ``obj``'s type class loads, in a few words for ``examine``."""
        ...

    def content_errors(self) -> Sequence[ErrorReport]:
        """Recent distinct content errors, the most recent first."""
        ...

    def forget_content_errors(self) -> int:
        """Forget the recorded content errors; how many there were."""
        ...

    def broken_content(self) -> list[str]:
        """What does not load right now, one line per module."""
        ...
