"""A websocket as a connection of the game's telnet protocol.

The game's telnet protocol (``engine.net.telnet.MudTelnetServer``) does
everything a connection needs: the limits on connections per address and
logins pending, the login deadline, negotiation, GMCP, the session and its
line, rate and flood limits, the play loop, and the state a hot restart
hands over.  A websocket gets all of it by being one more transport under
that protocol: ``WebTransport`` is an ``asyncio.Transport`` whose ``write``
sends frames and whose frames received are the protocol's
``data_received``, translated for the subprotocol chosen
(``engine.web.subprotocols``).  Its peer address is the player's (from a
trusted reverse proxy's ``X-Forwarded-For`` when there is one).

``WebConnection`` is websockets' asyncio server connection, with data
frames handed to the transport as they are parsed (no queue, no task per
message), and what a hot restart needs: the raw bytes of a message the
client has not finished sending (``InFlight``), and a way to go on with an
open websocket on a socket handed over by the previous engine process.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from typing import Any

from telnetlib3.telopt import GMCP
from websockets.asyncio.connection import Connection
from websockets.asyncio.server import ServerConnection
from websockets.frames import CONT, DATA_OPCODES, PONG, TEXT, Frame
from websockets.protocol import OPEN, Event

from engine.net import telnet
from engine.web.subprotocols import (
    GMCP_PROTOCOL,
    PAGE_TTYPES,
    TELNET,
    TERMINAL_TTYPES,
    WINDOW_PACKAGE,
    ClientSide,
    gmcp_to_telnet,
    lines_to_telnet,
)

log = logging.getLogger(__name__)

WINDOW = WINDOW_PACKAGE.encode() + b" "

#: GMCP messages a page may send before the game has agreed to GMCP; they wait for it.
GMCP_WAITING = 16
#: Frames received between the handshake and the game's protocol taking the connection.
EARLY_FRAMES = 64

#: The keys of the telnet protocol's extra information that a hot restart carries for a
#: websocket (``engine.net.telnet.export_state`` keeps its plain values).
MODE = "web_mode"
SUBPROTOCOL = "web_subprotocol"
PEER = "web_peer"
PEER_PORT = "web_peer_port"
DEFLATE = "web_deflate"
PARTIAL = "web_partial"


class InFlight:
    """The raw bytes of the websocket message the client is still sending.

    Frame headers are read as the bytes arrive (RFC 6455 section 5.2: two
    bytes, an extended length, a mask), so it is known where each frame
    ends and whether it ends a message.  What is kept is every byte since
    the last message ended: a new engine process that takes the socket over
    feeds them to its own parser first, and the message arrives whole (with
    permessage-deflate negotiated without context takeover, a message
    decompresses on its own).
    """

    __slots__ = ("_in_message", "_start", "raw")

    def __init__(self) -> None:
        self.raw = bytearray()
        #: Where the frame being received starts in ``raw``.
        self._start = 0
        #: A data message began (TEXT or BINARY without FIN) and has not ended.
        self._in_message = False

    def feed(self, data: bytes) -> None:
        raw = self.raw
        raw += data
        start = self._start
        size = len(raw)
        while size - start >= 2:
            head1, head2 = raw[start], raw[start + 1]
            length = head2 & 0x7F
            header = 2
            if length == 126:
                header = 4
                if size - start < header:
                    break
                length = int.from_bytes(raw[start + 2 : start + 4], "big")
            elif length == 127:
                header = 10
                if size - start < header:
                    break
                length = int.from_bytes(raw[start + 2 : start + 10], "big")
            if head2 & 0x80:
                header += 4
            end = start + header + length
            if end > size:
                break
            opcode, fin = head1 & 0x0F, head1 & 0x80
            if opcode in (1, 2):
                self._in_message = not fin
            elif opcode == 0 and fin:
                self._in_message = False
            start = end
            if not self._in_message:
                del raw[:start]
                size -= start
                start = 0
        self._start = start


class WebTransport(asyncio.Transport):
    """The telnet protocol's transport for one websocket: frames out, frames in.

    ``mode`` is the subprotocol: ``TELNET`` passes the telnet stream both
    ways; otherwise a ``ClientSide`` answers the game's telnet and text
    lines (and, for ``GMCP_PROTOCOL``, GMCP messages) cross.
    """

    def __init__(self, connection: WebConnection, mode: str, peer: tuple[str, int]) -> None:
        super().__init__()
        self._connection: WebConnection | None = connection
        self.mode = mode
        self._peer = peer
        self._protocol: asyncio.Protocol | None = None
        self.client: ClientSide | None = None
        if mode != TELNET:
            gmcp = mode == GMCP_PROTOCOL
            self.client = ClientSide(gmcp, PAGE_TTYPES if gmcp else TERMINAL_TTYPES)
        self._closing = False
        self._lost = False
        self._parts: list[bytes] = []
        self._parts_text = False
        self._answers = bytearray()
        self._gmcp_waiting: list[bytes] = []

    def __repr__(self) -> str:
        return f"<WebTransport {self.mode} {self._peer[0]}:{self._peer[1]}>"

    # -- the game's side: asyncio's Transport ----------------------------------------------

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "peername":
            return self._peer
        connection = self._connection
        if connection is None or getattr(connection, "transport", None) is None:
            return default
        found = connection.transport.get_extra_info(name, default)
        if name == "socket" and found is not None:
            return WebSocket(self, found)
        return found

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol  # type: ignore[assignment]  # telnetlib3 detaches with a plain one

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol  # type: ignore[return-value]

    def is_closing(self) -> bool:
        connection = self._connection
        return self._closing or connection is None or connection.protocol.state is not OPEN

    def write(self, data: bytes | bytearray | memoryview) -> None:
        connection = self._connection
        if not data or self._closing or connection is None:
            return
        protocol = connection.protocol
        if protocol.state is not OPEN:
            return
        client = self.client
        if client is None:
            protocol.send_binary(bytes(data))
        else:
            had_gmcp = self._gmcp_agreed()
            frames, answers = client.from_game(bytes(data))
            for gmcp, payload in frames:
                if gmcp:
                    protocol.send_text(payload)
                else:
                    protocol.send_binary(payload)
            if answers:
                self._answer(answers)
            if not had_gmcp and self._gmcp_waiting and self._gmcp_agreed():
                waiting, self._gmcp_waiting = self._gmcp_waiting, []
                self._answer(b"".join(gmcp_to_telnet(m) for m in waiting))
        connection.send_data()

    def writelines(self, list_of_data: Any) -> None:
        self.write(b"".join(list_of_data))

    def can_write_eof(self) -> bool:
        return False

    def write_eof(self) -> None:
        raise NotImplementedError("a websocket is closed, never half-closed")

    def get_write_buffer_size(self) -> int:
        connection = self._connection
        if connection is None or connection.transport.is_closing():
            return 0
        return int(connection.transport.get_write_buffer_size())

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        if self._connection is not None:
            self._connection.transport.set_write_buffer_limits(high, low)

    def pause_reading(self) -> None:
        if self._connection is not None and not self._connection.transport.is_closing():
            self._connection.transport.pause_reading()

    def resume_reading(self) -> None:
        if self._connection is not None and not self._connection.transport.is_closing():
            self._connection.transport.resume_reading()

    def is_reading(self) -> bool:
        connection = self._connection
        return connection is not None and bool(connection.transport.is_reading())

    def close(self) -> None:
        """Close the websocket (code 1000, after everything written); the end comes later."""
        if self._closing:
            return
        self._closing = True
        connection = self._connection
        if connection is None:
            return
        if connection.protocol.state is OPEN:
            connection.protocol.send_close(1000)
            with contextlib.suppress(Exception):
                connection.send_data()
        connection.finish()

    def abort(self) -> None:
        """Drop the connection at once (a hot restart: the socket lives on in the new process)."""
        self._closing = True
        connection = self._connection
        if connection is not None:
            connection.transport.abort()
            connection.finish()

    # -- the client's side ---------------------------------------------------------------

    def attach(self, protocol: asyncio.Protocol) -> None:
        """The game's protocol takes this connection (it may refuse it and close)."""
        self._protocol = protocol
        protocol.connection_made(self)

    def frame(self, frame: Frame) -> None:
        """A data frame from the client; a message once its last fragment came."""
        if self._closing or self._protocol is None:
            return
        if frame.opcode is CONT:
            self._parts.append(bytes(frame.data))
            if not frame.fin:
                return
            data, text = b"".join(self._parts), self._parts_text
            self._parts = []
        elif not frame.fin:
            self._parts = [bytes(frame.data)]
            self._parts_text = frame.opcode is TEXT
            return
        else:
            data, text = bytes(frame.data), frame.opcode is TEXT
        self._message(text, data)

    def _message(self, text: bool, data: bytes) -> None:
        protocol = self._protocol
        if protocol is None:
            return
        if self.client is None:
            protocol.data_received(data)
        elif text and self.client.gmcp:
            if data.startswith(WINDOW):
                naws = self.client.resize(data)
                if naws:
                    protocol.data_received(naws)
            elif self._gmcp_agreed():
                protocol.data_received(gmcp_to_telnet(data))
            elif len(self._gmcp_waiting) < GMCP_WAITING:
                self._gmcp_waiting.append(data)
        else:
            protocol.data_received(lines_to_telnet(data))

    def _gmcp_agreed(self) -> bool:
        client = self.client
        return client is not None and client.gmcp and GMCP in client.game_does

    def _answer(self, data: bytes) -> None:
        """Answers to the game's negotiation, as if the client sent them: after this turn.

        Never from inside ``write``: the game's parser may be the caller.
        """
        if not self._answers:
            asyncio.get_running_loop().call_soon(self._send_answers)
        self._answers += data

    def _send_answers(self) -> None:
        data, self._answers = bytes(self._answers), bytearray()
        protocol = self._protocol
        if data and protocol is not None and not self._closing:
            protocol.data_received(data)

    def lost(self, exc: Exception | None) -> None:
        """The websocket is closed: the game's protocol hears it once, and lets go."""
        if self._lost:
            return
        self._lost = True
        self._closing = True
        protocol = self._protocol
        if protocol is not None:
            try:
                protocol.connection_lost(exc)
            except Exception:
                log.exception("closing %r failed", self)
        self._protocol = None
        self._connection = None


class WebSocket:
    """The websocket's TCP socket as the game's code sees it (``get_extra_info("socket")``).

    Its descriptor is the socket's (a hot restart hands it over).  The game
    shuts a socket down when its connection ends, so that a client sees the
    end at once although the supervisor holds a copy of the socket: for an
    open websocket that is the websocket's own end, a close frame first.
    """

    def __init__(self, transport: WebTransport, sock: Any) -> None:
        self._web = transport
        self._sock = sock

    def fileno(self) -> int:
        return int(self._sock.fileno())

    def shutdown(self, how: int) -> None:
        if not self._web.is_closing():
            self._web.close()
        else:
            self._sock.shutdown(how)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class WebConnection(ServerConnection):
    """websockets' server connection, its data frames going straight to a ``WebTransport``."""

    #: The player's address (from a trusted proxy's X-Forwarded-For, or the peer's).
    peer: tuple[str, int] = ("?", 0)
    #: The subprotocol chosen: ``engine.web.subprotocols.TERMINAL`` unless the client asked.
    mode: str = ""
    #: The game's transport for this connection, once its protocol took it.
    bridge: WebTransport | None = None
    #: A connection handed over by the previous engine process (its session state).
    adopted: dict[str, Any] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.in_flight = InFlight()
        self._early: list[Frame] = []
        #: Set when the connection is done with: closing, closed or dropped.
        self.finished: asyncio.Future[None] = self.loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.adopted is None:
            super().connection_made(transport)
            return
        # A websocket open in another process: no handshake, no handler from the
        # server's factory (``engine.web.server`` runs its own).
        Connection.connection_made(self, transport)

    def data_received(self, data: bytes) -> None:
        if self.protocol.state is OPEN:
            self.in_flight.feed(data)
        super().data_received(data)
        bridge = self.bridge
        if bridge is not None:
            _note_partial(bridge, self.in_flight.raw)

    def process_event(self, event: Event) -> None:
        if self.request is None:
            super().process_event(event)  # the handshake's request
            return
        if not isinstance(event, Frame):
            return
        if event.opcode in DATA_OPCODES:
            if self.bridge is not None:
                self.bridge.frame(event)
            elif len(self._early) < EARLY_FRAMES:
                self._early.append(event)
            else:
                self.protocol.fail(1008, "too many frames before the game was ready")
        elif event.opcode is PONG:
            self.awaiting_pong = False
            self.acknowledge_pings(bytes(event.data))

    #: A keepalive ping went unanswered so far.
    awaiting_pong = False

    def keepalive_round(self) -> None:
        """A round of the server's keepalive: drop the connection if the last ping got no
        pong, else ping it.  One read paused (a handover, a full reader) is left alone."""
        if self.protocol.state is not OPEN or not self.transport.is_reading():
            return
        if self.awaiting_pong:
            self.logger.info("no pong to a keepalive ping; closing")
            self.transport.abort()
            return
        self.awaiting_pong = True
        self.protocol.send_ping(b"")
        self.send_data()

    def take(self, bridge: WebTransport, protocol: asyncio.Protocol) -> None:
        """The game's ``protocol`` takes this connection through ``bridge``."""
        self.bridge = bridge
        bridge.attach(protocol)
        early, self._early = self._early, []
        for frame in early:
            bridge.frame(frame)

    def finish(self) -> None:
        if not self.finished.done():
            self.finished.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        bridge, self.bridge = self.bridge, None
        if bridge is not None:
            bridge.lost(exc)
        self.finish()
        # websockets' objects refer to each other in cycles, which only a full garbage
        # collection would free (engine.longlived keeps those rare): the parser (a
        # generator over its protocol) and the subprotocol chooser (a closure over this
        # connection) are let go, so the connection is freed when its last task ends.
        protocol: Any = self.protocol
        protocol.parser = None
        vars(protocol).pop("select_subprotocol", None)


def _note_partial(bridge: WebTransport, raw: bytearray) -> None:
    """Keep the message in flight where a hot restart finds it (the protocol's extra info)."""
    protocol = bridge._protocol
    if not isinstance(protocol, telnet.MudTelnetServer):
        return
    extra = telnet.extra_info(protocol)
    if raw:
        extra[PARTIAL] = base64.b64encode(raw).decode("ascii")
    elif PARTIAL in extra:
        del extra[PARTIAL]
