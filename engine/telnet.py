"""The telnet edge: telnetlib3's server with flow control, and a shell that always cleans up.

telnetlib3 5.0.1 never pauses reading from a flooding client (FIELD-NOTES);
handing the transport to the reader restores asyncio's flow control, so a
client's unread input stays within twice the reader's limit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import telnetlib3

from engine.config import Config
from engine.session import Deliver, Session

log = logging.getLogger(__name__)

#: telnetlib3's reader pauses the socket once it buffers twice this many bytes.
READER_LIMIT = 16 * 1024


class MudTelnetServer(telnetlib3.TelnetServer):
    """telnetlib3's server protocol with read flow control switched on."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.reader.set_transport(transport)


async def serve(
    config: Config, handle: Callable[[Session], Awaitable[None]], deliver: Deliver
) -> Any:
    """Start listening; every connection becomes a ``Session`` passed to ``handle``.

    ``deliver`` is how sessions write (the game's durability gate).
    """

    async def shell(reader: Any, writer: Any) -> None:
        session = Session(reader, writer, config, deliver)
        session.task = asyncio.current_task()
        try:
            await handle(session)
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("session %r crashed", session)
        finally:
            # Every exit path closes the connection (an escaped exception
            # would otherwise leave it open until the idle timeout).
            session.close()

    return await telnetlib3.create_server(
        host=config.host,
        port=config.port,
        protocol_factory=MudTelnetServer,
        shell=shell,
        encoding="utf8",
        encoding_errors="replace",
        force_binary=True,
        line_mode=True,
        connect_maxwait=config.connect_maxwait,
        # Not int(): that turned 0.5 s into 0, which switched the timeout off.
        timeout=config.login_timeout or False,
        limit=READER_LIMIT,
    )
