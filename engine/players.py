"""The connections in the game, and lines sent to many of them at once."""

from __future__ import annotations

import asyncio
from typing import Protocol

from engine.accounts.account import Role
from engine.net.session import Session


class SessionObserver(Protocol):
    """Told as sessions come, enter the game and go (``engine.hot.keeper``)."""

    def added(self, session: Session) -> None: ...

    def entered(self, session: Session) -> None: ...

    def discarded(self, session: Session) -> None: ...


class Players:
    """Every open session, and who among them is playing."""

    def __init__(self) -> None:
        #: Told of every session (the supervisor's ledger, when there is one).
        self.observer: SessionObserver | None = None
        self.sessions: set[Session] = set()
        #: The session playing each account (``entered``): a login looks it up, not every session.
        self._by_account: dict[int, Session] = {}
        #: ``online()``, kept until someone enters or leaves (``who`` asks often).
        self._online: list[Session] | None = None

    def add(self, session: Session) -> None:
        self.sessions.add(session)
        self.changed()
        if self.observer is not None:
            self.observer.added(session)

    def discard(self, session: Session) -> None:
        if session not in self.sessions:
            return
        self.sessions.discard(session)
        account = session.account
        if account is not None and self._by_account.get(account.id) is session:
            del self._by_account[account.id]
        self.changed()
        if self.observer is not None:
            self.observer.discarded(session)

    def entered(self, session: Session) -> Session | None:
        """``session`` now plays its account; return the session that played it before, if any."""
        assert session.account is not None
        previous = self._by_account.get(session.account.id)
        self._by_account[session.account.id] = session
        self.changed()
        if self.observer is not None:
            self.observer.entered(session)
        return previous if previous is not session else None

    def changed(self) -> None:
        """Someone entered or left the game: the list of who is online is made again."""
        self._online = None

    def online(self) -> list[Session]:
        """The sessions of players in the game (past login), by name.

        Kept between calls: at 5,000 players a look at every session for
        each ``who`` was a fifth of the server's time (``scripts/bench_play.py
        --profile``).  A session that closed is in the list until its play
        loop ends and discards it; sending to it does nothing.
        """
        listed = self._online
        if listed is None:
            listed = self._online = sorted(
                (s for s in self.sessions if s.character is not None and not s.closed),
                key=lambda s: s.name.lower(),
            )
        return list(listed)

    def of_account(self, name: str) -> list[Session]:
        """The sessions logged in to the account ``name`` (any case)."""
        wanted = name.lower()
        return [
            s for s in self.sessions if s.account is not None and s.account.name.lower() == wanted
        ]

    async def close_all(self, disconnect: bool, timeout: float) -> None:
        """Wait up to ``timeout`` s for every session's task to end; ``disconnect`` closes
        each connection first (not after a hot restart: the new engine serves them)."""
        if disconnect:
            for session in list(self.sessions):
                session.close()
        tasks = [s.task for s in self.sessions if s.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)

    def broadcast(self, text: str) -> None:
        """One line to every player in the game."""
        for session in list(self.sessions):
            if session.character is not None:
                session.send(text)

    def notify_builders(self, text: str, tag: str = "reload") -> None:
        """One engine notice to every builder and admin in the game.

        Notices are never held by a transaction: a reload report or a content
        error must reach builders even when the change around it is undone.
        """
        for session in list(self.sessions):
            if session.character is not None and session.role >= Role.BUILDER:
                session.send(f"[{tag}] {text}", held=False)
