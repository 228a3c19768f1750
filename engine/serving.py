"""The game's listening servers: telnet, and the web client beside it (with the PROXY port).

Under the supervisor both listen on copies of its sockets (closing a copy
leaves the socket open for a handover that fails); on its own, the game
binds its own.  A handover stops them accepting without closing any client.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from engine.net import telnet
from engine.web import server as web

if TYPE_CHECKING:
    from engine.config import Config
    from engine.hot.link import HotLink
    from engine.net.session import Session
    from engine.world.atomic import Deliver


class Listeners:
    """The telnet listener and the web server, started, stopped and closed together.

    Built with what every connection is served with: ``handle`` plays a
    session, ``deliver`` sends output once the changes before it are
    committed (``deliver_unchanged`` when nothing changed), ``mssp`` answers
    MUD listings; ``hot`` is the supervisor's link, if there is one.
    """

    def __init__(
        self,
        config: Config,
        handle: Callable[[Session], Awaitable[None]],
        deliver: Deliver,
        mssp: telnet.MsspProvider,
        deliver_unchanged: Deliver,
        hot: HotLink | None,
    ) -> None:
        self.config = config
        self.handle = handle
        self.deliver = deliver
        self.mssp = mssp
        self.deliver_unchanged = deliver_unchanged
        self.hot = hot
        self.telnet: telnet.Listener | None = None
        self.web: web.WebServer | None = None

    async def start(self) -> None:
        """Accept connections: on the supervisor's listeners, or on sockets of our own."""
        hot = self.hot
        self.telnet = await telnet.serve(
            self.config,
            self.handle,
            self.deliver,
            self.mssp,
            self.deliver_unchanged,
            sock=hot.listener.dup() if hot is not None else None,
        )
        inherited = hot.listeners if hot is not None else None
        self.web = await web.start(self.config, self.telnet, inherited)

    def stop_accepting(self) -> None:
        """No new connections (a handover is under way); the open ones stay."""
        if self.telnet is not None:
            self.telnet.stop_accepting()
        if self.web is not None:
            self.web.stop_accepting()

    async def close(self) -> None:
        if self.telnet is not None:
            self.telnet.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.telnet.wait_closed(), 2)
        if self.web is not None:
            self.web.close()
            await self.web.wait_closed()

    @property
    def port(self) -> int:
        assert self.telnet is not None
        return int(self.telnet.sockets[0].getsockname()[1])
