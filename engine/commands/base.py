"""The command protocol between the engine and content: ``Command`` and ``Context``.

Content subclasses ``Command`` (the Evennia shape builders know: a key,
aliases, a permission, help in the docstring) and the engine runs it with a
``Context`` holding everything one invocation needs.  The engine keeps command
instances only in the registry, so a reload's old generation can be freed.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from engine.accounts.account import Role
from engine.world.objects import Room
from engine.world.search import describe_matches, find, is_near, nearby

if TYPE_CHECKING:
    from engine.accounts.account import Account
    from engine.services import Connection, GameServices
    from engine.world.model import World
    from engine.world.objects import Character, GameObject


class Command:
    """Base class of every command; subclass it in ``content/commands/``.

    The first line of the docstring is the summary shown by ``help``; the
    whole docstring is the help page.  ``run`` may be a plain method or a
    coroutine; a command already running when its module is reloaded
    finishes on the code it started with.
    """

    key: ClassVar[str] = ""
    aliases: ClassVar[tuple[str, ...]] = ()
    permission: ClassVar[Role] = Role.PLAYER
    #: Heading under which ``help`` lists the command.
    category: ClassVar[str] = "General"
    #: Whether a unique prefix runs it.  False for commands that end a session or
    #: destroy (``quit``, ``shutdown``, ``destroy``): those are typed in full.
    prefix: ClassVar[bool] = True

    def run(self, ctx: Context) -> Awaitable[None] | None:
        raise NotImplementedError

    @classmethod
    def help_text(cls) -> str:
        return inspect.cleandoc(cls.__doc__ or "") or "No help is written for this command."

    @classmethod
    def summary(cls) -> str:
        return cls.help_text().splitlines()[0]

    @property
    def names(self) -> tuple[str, ...]:
        return (self.key, *self.aliases)

    def __repr__(self) -> str:
        return f"<{type(self).__module__}.{type(self).__qualname__} {self.key!r}>"


def _within(pool: list[GameObject]) -> Callable[[int], GameObject | None]:
    def by_id(obj_id: int) -> GameObject | None:
        return next((o for o in pool if o.id == obj_id), None)

    return by_id


@dataclass
class Context:
    """One invocation of a command: who, where, with what arguments."""

    caller: Character
    session: Connection
    #: What content may ask of the running game (``engine.services.GameServices``).
    game: GameServices
    verb: str
    args: str
    #: Switches typed after the verb: ``destroy/force`` gives ``("force",)``.
    switches: tuple[str, ...] = ()

    @property
    def world(self) -> World:
        return self.game.world

    @property
    def here(self) -> GameObject | None:
        """Where the caller is: a room, or whatever content put it inside."""
        return self.caller.location

    @property
    def room(self) -> Room | None:
        """The room the caller stands in; None when it is nowhere (or content put it elsewhere)."""
        where = self.caller.location
        return where if isinstance(where, Room) else None

    @property
    def account(self) -> Account:
        """The caller's account: commands are run only for a player who has logged in."""
        account = self.session.account
        if account is None:
            raise RuntimeError(f"{self.caller.name} runs a command without being logged in")
        return account

    @property
    def role(self) -> Role:
        return self.session.role

    @property
    def lhs(self) -> str:
        """The arguments left of the first ``=`` (all of them if there is none)."""
        return self.args.partition("=")[0].strip()

    @property
    def rhs(self) -> str | None:
        """The arguments right of the first ``=``, or None if there is no ``=``."""
        _, sign, right = self.args.partition("=")
        return right.strip() if sign else None

    def search(
        self,
        text: str,
        candidates: Iterable[GameObject] | None = None,
        where: str = "here",
        anywhere: bool = False,
    ) -> GameObject | None:
        """The one object ``text`` names, or None after telling the caller why not.

        ``candidates`` default to what the caller carries and what is in its
        room; ``anywhere`` widens a search that found nothing near to the
        whole world (say where it was found with ``label``).  ``me`` and
        ``here`` always work; ``#id`` reaches any object for builders and
        admins, and only the candidates for players.  ``2.lamp`` picks the
        second of several.
        """
        pool = nearby(self.caller) if candidates is None else list(candidates)
        # ``#id`` reaches anything for builders; players reach what is near them.
        by_id = self.world.get if self.role >= Role.BUILDER else _within(pool)
        matches = find(text, self.caller, pool, by_id)
        if not matches and anywhere:
            matches = find(text, self.caller, self.world.objects.values(), self.world.get)
            where = "anywhere"
        if len(matches) == 1:
            return matches[0]
        typed = " ".join(text.split())
        if matches:
            self.msg(
                f"Which '{typed}' do you mean: {describe_matches(matches)}? "
                f"Type 1.{typed}, 2.{typed} and so on to choose."
            )
        else:
            self.msg(f"You find no '{typed}' {where}.")
        return None

    def label(self, obj: GameObject | None) -> str:
        """``brass lamp (#11)``; ``brass lamp (#11, in Garden)`` when it is not near the caller.

        Builders' commands reach the whole world when nothing near matches;
        the reply says where the object was, so nobody changes the wrong one
        unknowingly.
        """
        if obj is None:
            return "nowhere"
        place = obj.location
        if place is None or is_near(obj, self.caller):
            return f"{obj.name} ({obj.dbref})"
        return f"{obj.name} ({obj.dbref}, in {place.name})"

    def msg(self, text: str) -> None:
        """Send ``text`` to the caller."""
        self.session.send(text)

    def to_room(
        self, text: str, exclude_caller: bool = True, room: GameObject | None = None
    ) -> None:
        """Send ``text`` to everyone online in ``room`` (the caller's place by default)."""
        room = room or self.here
        if room is None:
            return
        for other in room.contents:
            session = other.session
            if session is not None and not (exclude_caller and other is self.caller):
                session.send(text)

    def to_all(self, text: str) -> None:
        """Send ``text`` to every player in the game."""
        self.game.broadcast(text)
