"""A websocket player for tests and benchmarks: ``WebClient``, like ``engine.testing.MudClient``.

It speaks one of the MUD Standards subprotocols (``engine.web.subprotocols``)
to the game's web port: lines go out as BINARY frames, text comes back from
BINARY frames and GMCP from TEXT frames (``gmcp``).  ``expect`` waits for a
text with a deadline and fails with what did arrive, as ``MudClient`` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any, Self

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from engine.textclient import ExpectTimeout, TextClient
from engine.web.subprotocols import GMCP_PROTOCOL, TELNET

#: The password ``login_new`` and ``login`` use unless told otherwise.
PASSWORD = "secret1"


class WebClient(TextClient):
    """One websocket connection to the game, read with deadlines."""

    password = PASSWORD

    def __init__(self, ws: ClientConnection, timeout: float | None = None) -> None:
        super().__init__(timeout)
        self.ws = ws
        #: GMCP messages received (``gmcp.mudstandards.org``): (package, data), oldest first.
        self.gmcp: list[tuple[str, Any]] = []
        #: Raw bytes received (``telnet.mudstandards.org`` keeps the telnet in them).
        self.raw = bytearray()
        self.closed = False
        self._sending: set[asyncio.Future[None]] = set()

    def _ended(self) -> bool:
        return self.closed

    @classmethod
    async def connect(
        cls,
        port: int,
        host: str = "127.0.0.1",
        *,
        subprotocol: str | None = GMCP_PROTOCOL,
        origin: str | None = None,
        headers: dict[str, str] | None = None,
        compression: str | None = "deflate",
        timeout: float | None = None,
    ) -> Self:
        """Open ``ws://host:port/ws`` asking for ``subprotocol`` (None: name none)."""
        ws = await asyncio.wait_for(
            connect(
                f"ws://{host}:{port}/ws",
                subprotocols=[Subprotocol(subprotocol)] if subprotocol else None,
                origin=origin,  # type: ignore[arg-type]  # websockets' Origin is a str NewType
                additional_headers=headers,
                compression=compression,
                max_size=None,
                ping_interval=None,
            ),
            timeout if timeout is not None else cls.timeout,
        )
        return cls(ws, timeout)

    @property
    def subprotocol(self) -> str | None:
        return self.ws.subprotocol

    # -- sending ----------------------------------------------------------------------

    def send(self, line: str) -> None:
        """One line, in a frame of its own (with CR LF for the telnet subprotocol)."""
        data = (line + "\r\n" if self.ws.subprotocol == TELNET else line).encode()
        self._spawn(data)

    def send_gmcp(self, package: str, data: Any = None) -> None:
        message = package if data is None else f"{package} {json.dumps(data)}"
        self._spawn(message)

    def _spawn(self, data: bytes | str) -> None:
        """Send in a task of its own (frames go out in the order sent): ``send`` never waits."""
        task = asyncio.ensure_future(self._send(data))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, data: bytes | str) -> None:
        with contextlib.suppress(ConnectionClosed):
            await self.ws.send(data)

    # -- receiving ------------------------------------------------------------------------

    async def _fill(self) -> bool:
        try:
            message = await self.ws.recv()
        except ConnectionClosed:
            self.closed = True
            return False
        if isinstance(message, str):
            package, _, text = message.partition(" ")
            self.gmcp.append((package, json.loads(text) if text.strip() else None))
            return True
        self.raw += message
        text = message.decode("utf-8", "replace")
        self.buffer += text
        self.transcript += text
        return True

    async def expect_gmcp(self, package: str, timeout: float | None = None) -> Any:
        """Wait for the GMCP message ``package`` (the oldest not yet taken); its data."""
        timeout = self.timeout if timeout is None else timeout

        async def wait() -> Any:
            while True:
                for index, (name, data) in enumerate(self.gmcp):
                    if name == package:
                        del self.gmcp[index]
                        return data
                if self.closed or not await self._fill():
                    raise ExpectTimeout(f"connection closed before GMCP {package}")

        try:
            return await asyncio.wait_for(wait(), timeout)
        except TimeoutError:
            seen = [name for name, _ in self.gmcp]
            raise ExpectTimeout(f"no GMCP {package} within {timeout} s; got {seen}") from None

    async def expect_closed(self, timeout: float | None = None) -> int | None:
        """Read until the server closes the websocket; its close code."""
        await self._drain(timeout)
        return self.ws.close_code

    async def close(self) -> None:
        await self.ws.close()
