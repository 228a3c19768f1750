"""The worker's side of ``engine.hot.ledger``: it tells the supervisor of every connection.

``Players`` calls it as sessions come, enter the game and go.  Each
connection gets a key that stays the same for its whole life, across hot
restarts and crashes (it travels in the handover state), so that the
supervisor's copy of a connection is replaced, never doubled, when a new
worker takes it over.

A connection that ends here is shut down (``MudTelnetServer.connection_lost``)
so that its client sees the end at once, though the supervisor still holds a
copy of the socket until it hears of it.
"""

from __future__ import annotations

import itertools
import logging
from typing import TYPE_CHECKING, Any, cast

from engine.net.telnet import MudTelnetServer, export_state

if TYPE_CHECKING:
    import asyncio

    from engine.hot.link import HotLink
    from engine.net.session import Session

log = logging.getLogger(__name__)


class ConnectionKeeper:
    """Keeps the supervisor's ledger of this worker's connections up to date."""

    def __init__(self, link: HotLink) -> None:
        self.link = link
        self._numbers = itertools.count(1)
        #: Set when the connections go to a new worker: their end here is not an end.
        self.handing_over = False

    def added(self, session: Session) -> None:
        adopted = session.adopted or {}
        session.key = str(adopted.get("key") or f"{self.link.generation}.{next(self._numbers)}")
        sock = _transport(session).get_extra_info("socket")
        if sock is None:
            return
        state = state_of(session)
        if state["account_id"] is None:
            # Handed over in the game: it is still that account's until proven otherwise.
            state["account_id"] = adopted.get("account_id")
        message = {"kind": "conn", "key": session.key, "state": state}
        self.link.tell(message, [sock.fileno()])

    def entered(self, session: Session) -> None:
        self.changed(session)

    def changed(self, session: Session) -> None:
        """Its state changed (its player entered, an MCCP2 stream began): tell it again."""
        if session.key:
            message = {"kind": "conn-state", "key": session.key, "state": state_of(session)}
            self.link.tell(message)

    def discarded(self, session: Session) -> None:
        if not self.handing_over and session.key:
            self.link.tell({"kind": "conn-gone", "key": session.key})


def state_of(session: Session) -> dict[str, Any]:
    """What a new worker needs to carry ``session`` on if this one dies now."""
    account = session.account
    protocol = cast(MudTelnetServer, session.writer.protocol)
    return {
        "account_id": account.id if account is not None else None,
        "connected_at": session.connected_at,
        "telnet": export_state(protocol),
    }


def _transport(session: Session) -> asyncio.Transport:
    return cast("asyncio.Transport", session.writer.transport)
