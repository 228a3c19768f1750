"""The telnet edge: telnetlib3's server with flow control, MUD protocols and connection limits.

telnetlib3 5.0.1 never pauses reading from a flooding client (docs/architecture.md);
handing the transport to the reader restores asyncio's flow control, so a
client's unread input stays within twice the reader's limit.  Everything
protocol-level stays here: offering GMCP, MSSP and EOR, answering an MSSP
crawler, counting connections per address, closing a connection whose
telnet negotiation is malformed or endless, and a larger accept backlog.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import logging
import re
import socket
import time
import zlib
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, cast

import telnetlib3
from telnetlib3 import stream_writer
from telnetlib3.stream_reader import TelnetReaderUnicode
from telnetlib3.stream_writer import TelnetWriterUnicode
from telnetlib3.telopt import (
    AARDWOLF,
    ACCEPTED,
    ATCP,
    BINARY,
    CHARSET,
    COM_PORT_OPTION,
    EOR,
    GMCP,
    IAC,
    IS,
    LFLOW,
    LINEMODE,
    MCCP2_COMPRESS,
    MCCP3_COMPRESS,
    MSDP,
    MSP,
    MSSP,
    MXP,
    NAWS,
    NEW_ENVIRON,
    REJECTED,
    REQUEST,
    SB,
    SNDLOC,
    STATUS,
    TSPEED,
    TTYPE,
    WILL,
    WONT,
    XDISPLOC,
    ZMP,
)

from engine.config import Config
from engine.net.clientinfo import MAX_WIDTH, MIN_WIDTH, clamp
from engine.net.limits import ConnectionLimiter, NegotiationGuard
from engine.net.session import Session
from engine.world.atomic import Deliver

log = logging.getLogger(__name__)

#: telnetlib3's reader pauses the socket once it buffers twice this many bytes.
READER_LIMIT = 16 * 1024

#: Bytes read at a time from a client that sent malformed subnegotiations, or
#: a read mostly negotiation.
SUSPECT_READ = 2048

#: Bytes of a read handed to telnetlib3's parser at a time when the read holds
#: telnet commands: a connection closed for its negotiation mid-read costs at
#: most this much more parsing (about half a millisecond).
PARSE_PIECE = 256

#: Bytes of negotiation parsed in one turn of the event loop from reads that
#: are mostly negotiation, all connections together (``NegotiationQueue``).
TURN_NEGOTIATION = 256

#: Telnet negotiation (commands and subnegotiations, in bytes parsed one at a
#: time) a connection may send: a burst, then so many bytes a second.  A MUD
#: client's whole negotiation at connect is one or two KiB (TTYPE three
#: times, NAWS, CHARSET, NEW-ENVIRON, GMCP Core.Hello and Core.Supports.Set);
#: after it, a resize or a GMCP message now and then.  Past the rate, the
#: connection is closed: 1 KiB a second is about 110 NAWS a second, and costs
#: the event loop about 2 ms a second.
NEGOTIATION_BURST = 8 * 1024
NEGOTIATION_RATE = 1024.0

#: Longest subnegotiation (IAC SB ... IAC SE) kept from a client; longer ones
#: are discarded.  MUD clients send a few hundred bytes (GMCP Core.Supports).
MAX_SUBNEGOTIATION = 16 * 1024

#: Bytes of JSON kept of the GMCP messages a client sent (Core.Hello,
#: Core.Supports.Set: a few hundred); messages past it are not kept.
GMCP_KEEP = 4096

#: Seconds a new connection waits for the client to speak first before telnet
#: negotiation begins: a browser's request comes at once, a telnet client waits.
FIRST_WORD_WAIT = 0.05

#: The first line of an HTTP request (a browser pointed at the telnet port).
HTTP_REQUEST = re.compile(rb"(GET|HEAD|POST|PUT|OPTIONS|DELETE) \S+ HTTP/1\.[01]\r?\n")


def _host_header(data: bytes) -> str:
    """The host named in an HTTP request's Host header, without its port ("" if none)."""
    found = re.search(rb"\r?\nHost: *([A-Za-z0-9.\-\[\]:]{1,255})", data, re.I)
    if not found:
        return ""
    host = found.group(1).decode("ascii")
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


#: NEW-ENVIRON variables kept from a client (USER, LANG, CHARSET ...).
MAX_ENVIRON = 64

MsspProvider = Callable[[], dict[str, str | list[str]]]


class Malformed:
    """The malformed subnegotiations one connection sent: how many, and what the first was."""

    __slots__ = ("count", "first")

    def __init__(self) -> None:
        self.count = 0
        self.first = ""

    def add(self, problem: str) -> None:
        self.count += 1
        if self.count == 1:
            self.first = problem
            log.debug("malformed subnegotiation dropped: %s", problem)


class WriterLog:
    """telnetlib3's writer's logger, but its warnings about broken subnegotiations are counted.

    telnetlib3 ends a subnegotiation that is empty (IAC SB IAC SE),
    interrupted by another command, or overlong with a warning, each time,
    and never hands it on: those count as malformed here (``Malformed``),
    and are not logged one by one (a log record each, thousands a second).
    Everything else goes to the logger unchanged.
    """

    def __init__(self, logger: logging.Logger, malformed: Malformed) -> None:
        self._logger = logger
        self._malformed = malformed
        # Looked up at every byte telnetlib3 parses: plain attributes, not __getattr__.
        self.debug = logger.debug
        self.info = logger.info
        self.error = logger.error
        self.exception = logger.exception
        self.log = logger.log
        self.isEnabledFor = logger.isEnabledFor

    def warning(self, msg: object, *args: object, **kwargs: Any) -> None:
        if isinstance(msg, str) and msg.startswith("sub-negotiation SB"):
            # "... interrupted by IAC x", "... discarded": one broken subnegotiation
            # ended; "... discarding until IAC SE": an overlong one began (counted
            # when it ends).
            if "interrupted" in msg or msg.endswith("discarded"):
                self._malformed.add(msg % args if args else msg)
            return
        self._logger.warning(msg, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._logger, name)


class MudWriter(TelnetWriterUnicode):
    """telnetlib3's writer: answers ``DO MSSP``, and checks subnegotiations first.

    telnetlib3 raises on a malformed subnegotiation (a short NAWS, an empty
    CHARSET request, a TTYPE that is not ASCII) and its caller logs a full
    traceback for each, about a millisecond on the event loop: a client
    sending tens of kilobytes of them stalled everyone and filled the log.
    Each one is checked here before telnetlib3's handlers see it; a bad one
    is dropped and counted (``malformed``), with those telnetlib3 drops
    itself (``WriterLog``).  The server closes the connection past
    ``max_bad_negotiation`` of them, with one log line.
    """

    mssp: MsspProvider | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Malformed subnegotiations this connection sent (dropped).
        self.malformed = Malformed()
        self.log = cast(logging.Logger, WriterLog(self.log, self.malformed))

    def handle_subnegotiation(self, buf: deque[bytes]) -> None:
        problem = subnegotiation_problem(buf)
        if problem is None:
            try:
                super().handle_subnegotiation(buf)
                return
            except Exception as exc:
                # (Only the first is named: a message may hold the whole buffer.)
                problem = f"{type(exc).__name__}: {exc}"[:200] if not self.malformed.count else ""
        self.malformed.add(problem)

    def handle_do(self, opt: bytes) -> bool:
        if opt == MCCP3_COMPRESS:
            # Client-to-server compression is refused (``subnegotiation_problem``).
            if not self.local_option.enabled(opt):
                self.iac(WONT, opt)
            return False
        agreed = super().handle_do(opt)
        if opt == MSSP and agreed and self.mssp is not None:
            self.local_option[MSSP] = True
            try:
                self.send_mssp(self.mssp())
            except Exception:
                log.exception("sending MSSP failed")
        return agreed


#: Subnegotiations (option byte first) and the checks they must pass.
_ASCII_PRINTABLE = frozenset(range(0x20, 0x7F))

#: The options whose subnegotiations telnetlib3 5.0.1 handles
#: (``TelnetWriter.handle_subnegotiation``); it raises on any other, with the
#: whole buffer in the message.
_HANDLED = frozenset(
    {
        LINEMODE, LFLOW, NAWS, SNDLOC, NEW_ENVIRON, CHARSET, TTYPE, TSPEED, XDISPLOC,
        STATUS, COM_PORT_OPTION, GMCP, MSDP, MSSP, MSP, MXP, ZMP, AARDWOLF, ATCP,
        MCCP2_COMPRESS, MCCP3_COMPRESS,
    }
)  # fmt: skip
#: Options telnetlib3 accepts an empty subnegotiation of (IAC SB <option> IAC SE).
_EMPTY_OK = frozenset({MXP, MSP, ZMP, AARDWOLF, ATCP, MCCP2_COMPRESS, MCCP3_COMPRESS})


def subnegotiation_problem(buf: deque[bytes]) -> str | None:
    """Why telnetlib3's handler would fail on ``buf`` (IAC SB <buf> IAC SE), or None.

    Pure and cheap: the option, lengths and byte ranges only, per RFC 1073
    (NAWS), RFC 2066 (CHARSET) and RFC 1091 (TTYPE).
    """
    if not buf:
        return "empty"
    option, size = buf[0], len(buf)
    if option not in _HANDLED:
        return f"option {option[0]} not supported"
    if option == MCCP3_COMPRESS:
        # telnetlib3 would start inflating all the client sends, without a bound:
        # 48 KB of it became 50 MB, and held the game for half a minute.
        return "MCCP3 (client-to-server compression), which the server refuses"
    if option == NAWS:
        return None if size == 5 else f"NAWS of {size - 1} bytes, not 4"
    if option == CHARSET:
        if size < 2:
            return "CHARSET without a command"
        command = buf[1]
        if command == REQUEST:
            offers = b"".join(list(buf)[3:])
            if size < 4 or not offers.strip(buf[2]):
                return "CHARSET request without a character set"
            if any(b not in _ASCII_PRINTABLE for b in offers):
                return "CHARSET request that is not ASCII"
            return None
        if command == ACCEPTED:
            name = b"".join(list(buf)[2:])
            if not name or any(b not in _ASCII_PRINTABLE for b in name):
                return "CHARSET accepted without a printable name"
            return None
        if command == REJECTED:
            return None
        return f"CHARSET command {command!r} not supported"
    if option == TTYPE:
        if size < 2 or buf[1] != IS:
            return "TTYPE that is not IS"
        if any(b[0] not in _ASCII_PRINTABLE for b in list(buf)[2:]):
            return "TTYPE that is not printable ASCII"
        return None
    if size == 1 and option not in _EMPTY_OK:
        return f"option {option[0]} without a payload"
    return None


class NegotiationQueue:
    """Connections whose reads are full of telnet negotiation, taking turns at the parser.

    telnetlib3 parses negotiation a byte at a time on the event loop, about
    2 us a byte, and a command of a player needs several turns of the loop:
    fifty connections each parsing a piece of their flood in every turn made
    every command wait as long.  Here such reads wait, reading from their
    connections paused, and ``per_turn`` bytes of them are parsed in each
    turn of the event loop for all of them together, each in its turn
    (round robin).  What everyone else waits for stays under a millisecond a
    turn, however many connections flood, until each is cut off (its
    ``NegotiationGuard``).  Honest clients hardly ever wait here: their reads
    are text, and their negotiation a few hundred bytes at connect, the
    first ``PARSE_PIECE`` bytes of a read parsed at once.
    """

    def __init__(self, per_turn: int = TURN_NEGOTIATION) -> None:
        self.per_turn = per_turn
        self.waiting: deque[MudTelnetServer] = deque()
        self._scheduled = False

    def add(self, protocol: MudTelnetServer) -> None:
        if protocol not in self.waiting:
            self.waiting.append(protocol)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._turn)

    def _turn(self) -> None:
        self._scheduled = False
        budget = self.per_turn
        while self.waiting and budget > 0:
            protocol = self.waiting.popleft()
            budget -= max(1, protocol.take_turn(budget))
        if self.waiting and not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._turn)


class MudTelnetServer(telnetlib3.TelnetServer):
    """telnetlib3's server protocol with flow control, MUD protocols and connection limits.

    ``serve`` makes a subclass with ``limiter`` and ``mssp`` filled in.
    """

    limiter: ClassVar[ConnectionLimiter | None] = None
    mssp: ClassVar[MsspProvider | None] = None

    #: The server's list of connections (``ClientList``); set by ``serve``.
    clients: ClassVar[ClientList | None] = None

    #: Offer MCCP2 (server-to-client compression); set by ``serve``.
    offer_mccp2: ClassVar[bool] = False

    #: Bytes queued for a client before it is dropped (``Config.max_output_buffer``).
    max_output_buffer: ClassVar[int] = 1 << 20

    #: Malformed subnegotiations tolerated (``Config.max_bad_negotiation``), and
    #: the negotiation a connection may send (``NegotiationGuard``).
    max_bad_negotiation: ClassVar[int] = 5
    negotiation_rate: ClassVar[float] = NEGOTIATION_RATE
    negotiation_burst: ClassVar[float] = NEGOTIATION_BURST
    #: Where reads full of negotiation take turns; set by ``serve`` (None: parsed at once).
    negotiation_queue: ClassVar[NegotiationQueue | None] = None

    #: A connection handed over by the previous engine process: its session state,
    #: with the telnet state (``export_state``) under ``telnet``.  Nothing is
    #: negotiated again; an MCCP2 stream is started anew.
    adopted: dict[str, Any] | None = None

    #: Telnet negotiation began (at once when the client speaks first, else after
    #: ``FIRST_WORD_WAIT``): until then nothing of telnet has been sent.
    _negotiating = False
    #: The web client's port, for a browser that comes to the telnet port (0: none).
    web_port: ClassVar[int] = 0

    #: The connection went to another process (a hot restart): its end here is not an end.
    handed_off = False
    #: An MCCP2 stream taken over from another process (``mccp2_resume``).
    mccp2_resumed = False
    #: Told when a connection's telnet state changes after its shell started (an
    #: MCCP2 stream begins): the supervisor's ledger follows (``engine.hot.keeper``).
    on_state_change: ClassVar[Callable[[Session], None] | None] = None

    #: The session the shell made of this connection, until both have ended.
    session: Session | None = None
    #: The shell has ended (it closed the session); the connection may still be open.
    shell_ended = False
    #: The connection is lost and its objects released: a shell started late stays away.
    released = False
    #: Closed for its telnet negotiation: nothing more it sent is parsed.
    negotiation_closed = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("writer_factory_encoding", MudWriter)
        super().__init__(*args, **kwargs)

        self.admitted_ip: str | None = None
        #: GMCP messages from the client (Core.Hello, Core.Supports.Set ...).
        self.gmcp_from_client: dict[str, Any] = {}
        self._gmcp_sizes: dict[str, int] = {}
        self._gmcp_kept = 0
        self._environ_names: set[str] = set()
        cls = type(self)
        self._negotiation = NegotiationGuard(
            cls.max_bad_negotiation, cls.negotiation_rate, cls.negotiation_burst
        )
        #: telnetlib3's count of bytes it parsed one at a time, when last seen.
        self._parsed = 0
        #: Read but not parsed yet: waiting for a turn in the negotiation queue.
        self._held = bytearray()
        #: A read of this connection was mostly negotiation: it is read in small pieces.
        self._heavy = False

    @property
    def mud_writer(self) -> MudWriter:
        """The connection's writer (``writer_factory_encoding`` makes it a ``MudWriter``)."""
        return cast(MudWriter, self.writer)

    def connection_made(self, base: asyncio.BaseTransport) -> None:
        super().connection_made(base)
        transport = cast(asyncio.Transport, base)
        cast(TelnetReaderUnicode, self.reader).set_transport(transport)
        # One read is parsed at once, a byte at a time (about 2 us a byte), on
        # the event loop: reads of 16 KiB, not asyncio's 256 KiB, let the loop
        # serve everyone else between them (tests/engine/test_fuzz.py floods
        # with option requests).
        _set_read_size(transport, READER_LIMIT)
        writer = self.mud_writer
        writer.mssp = type(self).mssp
        writer.set_ext_callback(GMCP, self._on_gmcp)
        limiter = type(self).limiter
        if limiter is not None:
            ip = (transport.get_extra_info("peername") or ("?",))[0]
            refusal = limiter.admit(ip, key=self, evict=self._give_way)
            if refusal:
                log.warning("refused a connection from %s: %s", ip, refusal)
                transport.write(f"{refusal}\r\n".encode())
                transport.close()
                return
            self.admitted_ip = ip

    def data_received(self, data: bytes) -> None:
        if self.negotiation_closed:
            return
        if not self._negotiating and self.adopted is None:
            # The client spoke first: a browser's request answers over HTTP.
            if HTTP_REQUEST.match(data):
                self._answer_browser(data)
                return
            self._negotiate_now()
        queue = type(self).negotiation_queue
        if self._held and queue is not None:
            # (Read before the pause took effect.)  An earlier read waits for its
            # turn in the negotiation queue: this one goes after it.
            self._held += data
            self._pause()
            queue.add(self)
            return
        self._take(data, None)

    def take_turn(self, budget: int) -> int:
        """The negotiation queue's turn: parse on what is held, ``budget`` bytes of negotiation.

        Returns the bytes of negotiation parsed; what is left waits for the next turn.
        """
        held, self._held = bytes(self._held), bytearray()
        transport: Any = self.writer.transport if self.writer is not None else None
        if not held or self.negotiation_closed or transport is None or transport.is_closing():
            return 0
        spent = self._take(held, budget)
        reader: Any = self.reader
        if not self._held and not transport.is_closing() and not getattr(reader, "_paused", False):
            # All parsed: read again (unless telnetlib3's reader paused the
            # transport itself, its buffer full: it resumes it).
            transport.resume_reading()
        return spent

    def _take(self, data: bytes, budget: int | None) -> int:
        """Parse ``data``; then the limits on output and read size.  Returns the negotiation parsed.

        A read with telnet commands in it is parsed a piece at a time: the
        parsing stops as soon as the connection is closed for its
        negotiation.  A read that turns out to be mostly negotiation (a
        piece of it more than half) leaves the rest to the negotiation queue
        (``NegotiationQueue``), reading paused meanwhile; in a queue's turn
        (``budget`` given), parsing stops once the budget is spent.
        """
        writer = self.mud_writer
        queue = type(self).negotiation_queue
        first = writer.byte_count
        if len(data) <= PARSE_PIECE or (IAC not in data and writer.cmd_received != SB):
            if not self._parse(data):
                return writer.byte_count - first
        else:
            for start in range(0, len(data), PARSE_PIECE):
                before = writer.byte_count
                if not self._parse(data[start : start + PARSE_PIECE]):
                    return writer.byte_count - first
                rest = start + PARSE_PIECE
                if rest >= len(data) or queue is None:
                    continue
                if budget is None:
                    if writer.byte_count - before <= PARSE_PIECE // 2:
                        continue
                    self._heavy = True
                elif writer.byte_count - first < budget:
                    continue
                self._held = bytearray(data[rest:])
                self._pause()
                queue.add(self)
                break
        # telnetlib3 answers every option request itself (IAC DO x gets IAC
        # WONT x, each time), out of sight of the session's output limit: the
        # same limit applies to those answers, so a client that asks and
        # never reads cannot make the server queue without end.
        transport = cast("asyncio.Transport | None", self.writer.transport if self.writer else None)
        if (
            transport is not None
            and not transport.is_closing()
            and transport.get_write_buffer_size() > type(self).max_output_buffer
        ):
            log.warning("%s is not reading the answers to its requests; closing", self)
            transport.abort()
        # A client that sends malformed subnegotiations, or reads full of
        # negotiation, is read in small pieces from then on: each read is
        # parsed a byte at a time on the event loop.
        elif transport is not None and (writer.malformed.count or self._heavy):
            _set_read_size(transport, SUSPECT_READ)
        return writer.byte_count - first

    def _pause(self) -> None:
        transport = self.writer.transport if self.writer is not None else None
        if transport is not None and not transport.is_closing():
            transport.pause_reading()  # type: ignore[attr-defined]  # asyncio's Transport

    def _parse(self, data: bytes) -> bool:
        """Hand ``data`` to telnetlib3; False once the connection is closed for its negotiation."""
        super().data_received(data)
        writer = self.mud_writer
        parsed = writer.byte_count - self._parsed
        malformed = writer.malformed.count
        if not parsed and not malformed:
            return True  # plain text, as from almost every client almost always
        self._parsed = writer.byte_count
        reason = self._negotiation.check(parsed, malformed)
        if reason is None:
            return True
        self._close_for_negotiation(reason)
        return False

    def _close_for_negotiation(self, reason: str) -> None:
        """Too many malformed subnegotiations, or too much negotiation: one log line, and close."""
        self.negotiation_closed = True
        writer = self.mud_writer
        transport = cast("asyncio.Transport | None", writer.transport)
        ip = (self.get_extra_info("peername") or ("?",))[0]
        if reason == NegotiationGuard.MALFORMED:
            log.warning(
                "%s sent %d malformed telnet subnegotiations, more than the %d allowed "
                "(the first: %s); closing",
                ip,
                writer.malformed.count,
                type(self).max_bad_negotiation,
                writer.malformed.first or "?",
            )
            goodbye = "Too many malformed telnet negotiations. Goodbye."
        else:
            log.warning(
                "%s sent more telnet negotiation than %d bytes at once and %d a second; closing",
                ip,
                type(self).negotiation_burst,
                type(self).negotiation_rate,
            )
            goodbye = "Too much telnet negotiation. Goodbye."
        if transport is None or transport.is_closing():
            return
        with contextlib.suppress(Exception):
            writer.write(f"\r\n{goodbye}\r\n")
        # A client that does not read would hold a closing connection open.
        if transport.get_write_buffer_size():
            transport.abort()
        else:
            transport.close()

    def _give_way(self) -> None:
        """Closed to make room: this connection waited longest at the login prompt."""
        self.admitted_ip = None  # the limiter has released it already
        transport = self.writer.transport if self.writer is not None else None
        if transport is not None and not transport.is_closing():
            with contextlib.suppress(Exception):
                self.mud_writer.write(
                    "\r\nToo many connections are logging in; this one waited "
                    "longest and is closed. Please connect again.\r\n"
                )
            transport.close()

    def log_in(self) -> None:
        """The session logged in: it no longer counts among connections waiting to log in."""
        limiter = type(self).limiter
        if limiter is not None:
            limiter.log_in(self)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.handed_off and self._transport is not None:
            # The supervisor holds a copy of the socket (engine.hot.ledger) until it
            # hears of the end: shut down, the client sees the end now, not then.
            sock = self._transport.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        limiter = type(self).limiter
        if limiter is not None and self.admitted_ip is not None:
            limiter.release(self.admitted_ip, key=self)
            self.admitted_ip = None
        super().connection_lost(exc)
        if self.session is None or self.shell_ended:
            self._release()

    def _negotiate_now(self) -> None:
        if self._negotiating or self._closing:
            return
        self._negotiating = True
        super().begin_negotiation()

    def _answer_browser(self, data: bytes) -> None:
        """A browser came to the telnet port: say where to play, over HTTP, and close."""
        transport = cast("asyncio.Transport | None", self._transport)
        if transport is None:
            return
        self._negotiating = True  # nothing of telnet goes to this client
        host = _host_header(data) or "this server"
        web = type(self).web_port
        link = f"http://{html.escape(host)}:{web}/"
        browser = f'To play in your browser, go to <a href="{link}">{link}</a>. ' if web else ""
        body = (
            "<!doctype html><html><head><meta charset=utf-8><title>A MUD's telnet port</title>"
            f"</head><body><p>This is the telnet port of a text game. {browser}To play with "
            "a MUD client (telnet, TinTin++, Mudlet), connect it to this address and port."
            "</p></body></html>"
        ).encode()
        head = (
            "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        transport.write(head + body)
        transport.close()
        log.info("%s sent an HTTP request to the telnet port; told where to play", self)

    def end_shell(self) -> None:
        """The shell is done with this connection (it closed its session)."""
        self.shell_ended = True
        if self._closing:
            self._release()

    def _release(self) -> None:
        """Both the connection and its shell have ended: undo the cycles among their objects.

        The session, its line reader and telnetlib3's protocol, reader and
        writer refer to each other in cycles.  Undone, they are freed by
        reference counting the moment the last reference goes; otherwise only
        a full garbage collection would, and ``engine.longlived`` freezes
        what lives long out of those (a closed connection would stay frozen).
        telnetlib3's ``close`` clears the writer's callback tables; what it
        leaves are the option tables' change callbacks, the encoding callback
        the reader and writer share with this protocol, and MCCP2's wrapper of
        the transport's ``write``, which closes over this protocol
        (``tests/engine/test_release.py`` finds any cycle left).
        """
        if self.released:
            return
        self.released = True
        clients = type(self).clients
        if clients is not None:
            clients.closed()
        if self.session is not None:
            self.session.release()
            self.session = None
        # Any: telnetlib3 types these as its base classes, without fn_encoding.
        writer: Any = self.writer
        reader: Any = self.reader
        if writer is None:
            return
        encoding = str(writer.fn_encoding(outgoing=True))
        with contextlib.suppress(Exception):
            writer.close()
        for option in (writer.local_option, writer.remote_option, writer.pending_option):
            option._on_change = None

        def closed_encoding(**_: Any) -> str:
            return encoding

        writer.fn_encoding = closed_encoding
        writer._reader = None
        if reader is not None:
            reader.fn_encoding = closed_encoding
        original_write = self._mccp2_orig_write
        if original_write is not None:
            vars(original_write.__self__).pop("write", None)
            self._mccp2_orig_write = None
            self._mccp2_compressor = None

    def begin_negotiation(self) -> None:
        state = self.adopted
        if state is None:
            # A moment for a client that speaks first (a browser pointed at this
            # port sends its request at once): telnet negotiation before it
            # would turn the HTTP answer into bytes a browser cannot read.
            loop = asyncio.get_running_loop()
            loop.call_later(FIRST_WORD_WAIT, self._negotiate_now)
            return
        telnet = state.get("telnet", {})
        restore_state(self, telnet)
        if telnet.get("mccp2"):
            # The client is inside an MCCP2 stream: this process goes on with it.
            self._mccp2_enabled = True
            self.mccp2_resume()
        if not self._waiter_connected.done():
            self._waiter_connected.set_result(None)  # the shell starts at once

    def _mccp2_start(self) -> None:
        super()._mccp2_start()
        hook = type(self).on_state_change
        if hook is not None and self.session is not None:
            hook(self.session)  # the supervisor's copy must know the stream began

    def mccp2_resume(self) -> None:
        """Go on with the MCCP2 stream another process began, without starting a new one.

        A hot restart or a crash moves a connection whose client is inside a
        compressed stream.  The old process's compressor stays behind, but each
        of its writes ended with a sync flush, on a byte boundary between
        deflate blocks, so raw deflate blocks that refer to nothing before them
        continue the stream for the client's decompressor.  Only the checksum
        that closes a stream could not be right any more, so a stream is never
        ended: it lasts as long as the connection.  What a crash loses is a
        write the dead process had not finished.
        """
        compressor = zlib.compressobj(
            zlib.Z_BEST_COMPRESSION, zlib.DEFLATED, -12, 5, zlib.Z_DEFAULT_STRATEGY
        )
        writer: Any = self.writer  # telnetlib3 types it without its transport
        transport = writer._transport
        plain_write = transport.write

        def compressed_write(data: bytes) -> None:
            if self._mccp2_compressor is not None:
                packed = self._mccp2_compressor.compress(data)
                plain_write(packed + self._mccp2_compressor.flush(zlib.Z_SYNC_FLUSH))
            else:
                plain_write(data)

        self._mccp2_pending = True
        self._mccp2_compressor = compressor
        self._mccp2_orig_write = plain_write
        transport.write = compressed_write
        writer.mccp2_active = True
        self.mccp2_resumed = True

    def negotiation_should_advance(self) -> bool:
        """A client that answered anything speaks telnet, even one that refused TTYPE.

        telnetlib3 goes on (NAWS, CHARSET, the MUD protocols) only once a client
        agreed to something; one that only said WONT TTYPE was offered nothing
        more, though it is a telnet client like any other.
        """
        writer = self.mud_writer
        answered = len(writer.remote_option) + len(writer.local_option)
        return bool(super().negotiation_should_advance() or answered)

    def begin_advanced_negotiation(self) -> None:
        # BINARY is not offered, only granted when a client asks for it: netkit and
        # inetutils telnet agree to it, and a terminal in binary mode stops turning
        # the LF of Enter's echo into CR LF, so every answer would start at the
        # column where the typed line ended (a staircase).  Output is 8-bit clean
        # anyway (force_binary): UTF-8 reaches a client that never agreed to BINARY.
        writer = self.mud_writer
        offer = writer.iac

        def offer_all_but_binary(*command: bytes) -> bool:
            if command == (WILL, BINARY):
                return False
            return bool(offer(*command))

        writer.iac = offer_all_but_binary  # type: ignore[method-assign,assignment]
        try:
            super().begin_advanced_negotiation()
        finally:
            del writer.iac  # the class's own method again
        # Offered, never required: plain telnet refuses and plays on.
        for option in (GMCP, MSSP, EOR):
            self.mud_writer.iac(WILL, option)
        # MCCP2 only.  telnetlib3's compression=True also offers MCCP3, and its
        # own client then sent data the server failed to decompress ("MCCP3
        # decompression error"), garbling the login.  With compression left
        # passive, this flag (set after the base class made its offers) still
        # starts MCCP2 once the client agrees.
        if type(self).offer_mccp2:
            self._mccp2_enabled = True
            self.mud_writer.iac(WILL, MCCP2_COMPRESS)

    def on_environ(self, mapping: dict[str, str]) -> None:
        # telnetlib3 keeps every variable a client names in NEW-ENVIRON for
        # the connection's life; memory per connection stays bounded: the
        # first MAX_ENVIRON variables are kept, long names and values are not.
        kept = {}
        for key, value in mapping.items():
            name = key.upper()
            if len(name) > 64 or len(value) > 1024:
                continue
            if name not in self._environ_names and len(self._environ_names) >= MAX_ENVIRON:
                continue
            self._environ_names.add(name)
            kept[key] = value
        super().on_environ(kept)

    #: Counts TTYPE answers, so sessions re-read client capabilities only when one came.
    ttype_seen: int = 0
    #: The NAWS width, clamped; None until the client reports one.
    window_width: int | None = None

    def on_ttype(self, ttype: str) -> None:
        super().on_ttype(ttype)
        self.ttype_seen += 1

    def on_naws(self, rows: int, cols: int) -> None:
        super().on_naws(rows, cols)
        self.window_width = clamp(cols, MIN_WIDTH, MAX_WIDTH, 80)

    def _on_gmcp(self, package: str, data: Any) -> None:
        # Memory per connection stays bounded: decoded JSON such as [{},{},...]
        # takes some 20 times its size, so messages are kept only while all
        # that is kept stays within GMCP_KEEP bytes of JSON.
        key = str(package)[:64]
        try:
            size = len(key) + len(json.dumps(data))
        except (TypeError, ValueError, RecursionError):
            return
        kept = self._gmcp_kept - self._gmcp_sizes.get(key, 0) + size
        if kept > GMCP_KEEP:
            log.debug("%s: GMCP %s not kept (%d bytes)", self, key, size)
            return
        self._gmcp_kept = kept
        self._gmcp_sizes[key] = size
        self.gmcp_from_client[key] = data


def _set_read_size(transport: asyncio.BaseTransport, size: int) -> None:
    """Bytes asyncio reads from the socket at a time (its selector transports' ``max_size``)."""
    if getattr(transport, "max_size", 0) > size:
        transport.max_size = size  # type: ignore[attr-defined]  # asyncio's, undeclared


class LogFlood(logging.Filter):
    """At most ``limit`` records a minute from a logger; a hostile client cannot fill the log.

    telnetlib3 warns once per odd message a client sends (an unended
    subnegotiation, an unsolicited option): from one client, thousands a
    second.
    """

    def __init__(self, limit: int = 30, period: float = 60.0) -> None:
        super().__init__()
        self.limit = limit
        self.period = period
        self._window = 0.0
        self._count = 0

    def filter(self, record: logging.LogRecord) -> bool:
        now = time.monotonic()
        if now - self._window > self.period:
            self._window, self._count = now, 0
        self._count += 1
        if self._count == self.limit + 1:
            record.msg, record.args = "more telnet warnings this minute are not logged", ()
            return True
        return self._count <= self.limit


#: telnetlib3's loggers that warn once per message a client sends.
_CHATTY_LOGGERS = ("telnetlib3.stream_writer", "telnetlib3.server_base", "telnetlib3.server")


def quiet_telnetlib3() -> None:
    for name in _CHATTY_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, LogFlood) for f in logger.filters):
            logger.addFilter(LogFlood())


class Listener:
    """What ``serve`` returns: the listening server and the connections it serves.

    telnetlib3's ``Server`` is beneath; its insides stay in this module.
    """

    def __init__(
        self,
        server: telnetlib3.server.Server,
        limiter: ConnectionLimiter,
        protocol_factory: Callable[[], MudTelnetServer],
    ) -> None:
        self.telnet_server = server
        #: The connections open, in all and by address (the game and tests read it).
        self.limiter = limiter
        #: Makes the protocol of a new connection, or of one handed over (``adopt``).
        self.protocol_factory = protocol_factory

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        """The listening sockets (none once closed)."""
        return self.telnet_server.sockets or ()

    @property
    def clients(self) -> list[MudTelnetServer]:
        """The open connections' protocols."""
        return cast(list[MudTelnetServer], self.telnet_server.clients)

    def close(self) -> None:
        """Stop listening and close every connection."""
        self.telnet_server.close()

    async def wait_closed(self) -> None:
        await self.telnet_server.wait_closed()

    def stop_accepting(self) -> None:
        """Stop listening; the open connections stay (telnetlib3's ``close`` would end them)."""
        listening = self.telnet_server._server
        if listening is not None:
            listening.close()


def take_unread(reader: object) -> bytes:
    """What telnetlib3's ``reader`` received and nobody read yet, taken out of it."""
    buffer = getattr(reader, "_buffer", None)
    if not buffer:
        return b""
    unread = bytes(buffer)
    buffer.clear()
    return unread


def extra_info(protocol: MudTelnetServer) -> dict[str, Any]:
    """A connection's extra info: what ``get_extra_info`` reads and ``export_state`` hands over."""
    return protocol._extra


def raise_backlog(server: Any, backlog: int) -> None:
    """Listen again with a larger accept backlog (asyncio's 100 drops bursts of connects)."""
    for sock in server.sockets or ():
        # asyncio hands out TransportSocket wrappers without listen(); a
        # duplicate of the descriptor shares the same listening socket.
        with socket.fromfd(sock.fileno(), sock.family, sock.type) as listening:
            listening.listen(backlog)


async def serve(
    config: Config,
    handle: Callable[[Session], Awaitable[None]],
    deliver: Deliver,
    mssp: MsspProvider | None = None,
    deliver_unchanged: Deliver | None = None,
    sock: socket.socket | None = None,
) -> Listener:
    """Start listening; every connection becomes a ``Session`` passed to ``handle``.

    ``deliver`` is how sessions write (the game's durability gate), and
    ``deliver_unchanged`` how they write what follows no change of its own;
    ``mssp`` gives the status an MSSP crawler receives.  ``sock`` is a
    listening socket to serve (the supervisor's); without it one is opened on
    the configured host and port.
    """

    async def shell(reader: Any, writer: Any) -> None:
        protocol = cast(MudTelnetServer, writer.protocol)
        if protocol is None or protocol.released:
            return  # the connection was lost before the shell's first step
        session = Session(reader, writer, config, deliver, deliver_unchanged)
        session.task = asyncio.current_task()
        protocol.session = session
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
            protocol.end_shell()

    # A subnegotiation is buffered as a deque of one-byte objects, about 8.5
    # bytes of memory per byte received, for as long as the client leaves it
    # unended: it is kept to MAX_SUBNEGOTIATION bytes.  telnetlib3 reads the
    # limit from this module global at every byte (there is no setting, and
    # overriding feed_byte doubled the cost of parsing); past it, it discards
    # the rest up to IAC SE.
    quiet_telnetlib3()
    if getattr(stream_writer, "_MAX_SUBNEGOTIATION", 0) > MAX_SUBNEGOTIATION:
        stream_writer._MAX_SUBNEGOTIATION = MAX_SUBNEGOTIATION
    limiter = ConnectionLimiter(
        config.max_connections,
        config.max_per_ip,
        config.limit_loopback,
        max_pending=config.max_pending,
        max_pending_per_ip=config.max_pending_per_ip,
    )
    server = telnetlib3.server.Server(None)
    clients = ClientList(server)
    protocol = type(
        "BoundMudTelnetServer",
        (MudTelnetServer,),
        {
            "limiter": limiter,
            "clients": clients,
            "mssp": staticmethod(mssp) if mssp else None,
            "offer_mccp2": config.compression,
            "web_port": getattr(config, "web_port", 0),
            "max_output_buffer": config.max_output_buffer,
            "max_bad_negotiation": config.max_bad_negotiation,
            "negotiation_queue": NegotiationQueue(),
        },
    )
    # telnetlib3.create_server's own factory, on a socket of the engine's
    # choosing: the supervisor's inherited listener, or a new one.  The
    # factory also serves connections a previous engine process hands over.
    options: dict[str, Any] = {
        "shell": shell,
        "encoding": "utf8",
        "encoding_errors": "replace",
        "force_binary": True,
        "line_mode": True,
        "connect_maxwait": config.connect_maxwait,
        "timeout": config.login_timeout or False,  # seconds, any number
        "limit": READER_LIMIT,
        "compression": None,
    }

    def factory() -> MudTelnetServer:
        made = cast(MudTelnetServer, protocol(**options))
        clients.add(made)
        return made

    loop = asyncio.get_running_loop()
    if sock is None:
        server._server = await loop.create_server(factory, config.host, config.port)
    else:
        server._server = await loop.create_server(factory, sock=sock)
    # asyncio listens with a backlog of 100, and create_server cannot change
    # it: a burst of connects overflows it.  listen() again raises it.
    raise_backlog(server, config.backlog)
    return Listener(server, limiter, factory)


def export_state(protocol: MudTelnetServer) -> dict[str, Any]:
    """What a new engine process needs to go on with this connection without negotiating."""
    writer = protocol.mud_writer
    plain = (str, int, float, bool)
    return {
        "local": {k.hex(): v for k, v in writer.local_option.items()},
        "remote": {k.hex(): v for k, v in writer.remote_option.items()},
        "extra": {
            k: v
            for k, v in protocol._extra.items()
            if isinstance(v, plain) and k not in ("peername", "sockname", "timeout")
        },
        "ttype_seen": getattr(protocol, "ttype_seen", 0),
        "window_width": getattr(protocol, "window_width", None),
        "gmcp_from_client": protocol.gmcp_from_client,
        # A process that takes the connection over goes on with the stream.
        "mccp2": "resume" if protocol._mccp2_compressor is not None else False,
    }


def restore_state(protocol: MudTelnetServer, state: dict[str, Any]) -> None:
    """Put back what ``export_state`` saved, as if it had been negotiated here."""
    writer = protocol.mud_writer
    for key, value in state.get("local", {}).items():
        dict.__setitem__(writer.local_option, bytes.fromhex(key), bool(value))
    for key, value in state.get("remote", {}).items():
        dict.__setitem__(writer.remote_option, bytes.fromhex(key), bool(value))
    protocol._extra.update(state.get("extra", {}))
    protocol.ttype_seen = int(state.get("ttype_seen") or 0)
    protocol.window_width = state.get("window_width")
    protocol.gmcp_from_client = dict(state.get("gmcp_from_client") or {})


def hand_off(session: Session) -> None:
    """``session``'s connection goes on in another process: ending it here must not end it."""
    protocol = getattr(session.writer, "protocol", None)
    if isinstance(protocol, MudTelnetServer):
        protocol.handed_off = True


async def adopt(server: Listener, sock: socket.socket, state: dict[str, Any]) -> MudTelnetServer:
    """Serve ``sock``, a connection handed over by the previous engine process."""
    loop = asyncio.get_running_loop()
    made: list[MudTelnetServer] = []

    def factory() -> asyncio.Protocol:
        protocol = server.protocol_factory()
        protocol.adopted = state
        made.append(protocol)
        return protocol

    await loop.connect_accepted_socket(factory, sock)
    return made[0]


class ClientList:
    """telnetlib3's ``Server.clients``, kept at a cost that does not grow with the game.

    telnetlib3 registers a connection by first dropping every closed one
    from its list: a look at every connection for each new one, so a storm
    of N logins cost N squared (a sixth of the server's time while 3,000
    players logged in).  Here a connection is appended, and closed ones are
    dropped once they are half the list.  ``Server.clients`` still prunes
    when asked.  Unlike telnetlib3's registration this queues nothing for
    ``Server.wait_for_client()``, which the engine never calls: a closed
    connection must not stay in memory, held by a queue, with all it held.
    """

    def __init__(self, server: Any) -> None:
        self._server = server
        self._closed = 0

    def add(self, protocol: MudTelnetServer) -> None:
        self._server._protocols.append(protocol)

    def closed(self) -> None:
        """One of the connections closed."""
        self._closed += 1
        listed = self._server._protocols
        if self._closed * 2 > len(listed):
            self._server._protocols = [p for p in listed if not getattr(p, "_closing", False)]
            self._closed = 0
