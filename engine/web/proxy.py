"""The PROXY protocol listener: telnet behind a TLS proxy, with each player's own address.

Encrypted telnet is a TLS proxy's job (nginx's stream module, haproxy,
stunnel: see docs/running.md).  The proxy connects to ``proxy_port`` and,
before the client's first byte, sends a PROXY protocol header (version 1,
text, or version 2, binary; https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt)
naming the client.  That address is the connection's from then on: the
limits per address, the login guards and the log see the player, not the
proxy.  The connection is the telnet server's like any other, through
``ProxiedTransport``, which only changes the peer's address.

Headers are believed from anyone who can reach the port, unless
``trusted_proxies`` is set: then only from those.  A connection that sends
no valid header within ``HEADER_TIMEOUT`` is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import Any

from engine.net import telnet
from engine.web.addresses import TrustedProxies, parse_address

log = logging.getLogger(__name__)

#: Seconds a connection has to send its header.
HEADER_TIMEOUT = 5.0

V1_PREFIX = b"PROXY "
#: A version 1 header is one line of at most 107 bytes, CR LF included.
V1_LONGEST = 107
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
#: Longest version 2 header kept: 16 bytes and the addresses with their TLVs.
V2_LONGEST = 16 + 2048

#: The keys of the telnet protocol's extra information a hot restart carries.
PEER = "proxied_peer"
PEER_PORT = "proxied_peer_port"


class ProxyError(ValueError):
    """Not a PROXY protocol header (the connection is closed)."""


Address = tuple[str, int]


def parse(data: bytes | bytearray) -> tuple[Address | None, int] | None:
    """The client named by the header at the start of ``data``, and the header's length.

    None while the header is incomplete.  The address is None when the
    header names none (``UNKNOWN``, a ``LOCAL`` health check, a family that
    is not TCP over IPv4 or IPv6): the connection keeps the proxy's.
    """
    if not data:
        return None
    if data[:1] == V1_PREFIX[:1]:
        if len(data) < len(V1_PREFIX):
            if not V1_PREFIX.startswith(bytes(data)):
                raise ProxyError("no PROXY header")
            return None
        return _v1(data)
    if data[:1] == V2_SIGNATURE[:1]:
        return _v2(data)
    raise ProxyError("no PROXY header")


def _v1(data: bytes | bytearray) -> tuple[Address | None, int] | None:
    if not data.startswith(V1_PREFIX):
        raise ProxyError("no PROXY header")
    end = data.find(b"\r\n")
    if end < 0:
        if len(data) >= V1_LONGEST:
            raise ProxyError("a PROXY v1 header longer than 107 bytes")
        return None
    if end + 2 > V1_LONGEST:
        raise ProxyError("a PROXY v1 header longer than 107 bytes")
    words = bytes(data[:end]).decode("ascii", "replace").split(" ")
    if len(words) >= 2 and words[1] == "UNKNOWN":
        return None, end + 2
    if len(words) != 6 or words[1] not in ("TCP4", "TCP6"):
        raise ProxyError(f"a malformed PROXY v1 header: {' '.join(words)[:107]!r}")
    source, port = parse_address(words[2]), words[4]
    if source is None or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ProxyError(f"a PROXY v1 header with a bad source: {words[2]} {port}")
    if (source.version == 4) != (words[1] == "TCP4"):
        raise ProxyError(f"a PROXY v1 header whose address is not {words[1]}")
    return (str(source), int(port)), end + 2


def _v2(data: bytes | bytearray) -> tuple[Address | None, int] | None:
    head = bytes(data[:16])
    if not V2_SIGNATURE.startswith(head[:12]):
        raise ProxyError("no PROXY header")
    if len(data) < 16:
        return None
    version, command = head[12] >> 4, head[12] & 0x0F
    if version != 2 or command not in (0, 1):
        raise ProxyError(f"a PROXY v2 header of version {version}, command {command}")
    length = int.from_bytes(head[14:16], "big")
    total = 16 + length
    if total > V2_LONGEST:
        raise ProxyError(f"a PROXY v2 header of {total} bytes")
    if len(data) < total:
        return None
    if command == 0:  # LOCAL: the proxy's own connection (a health check)
        return None, total
    family, body = head[13], bytes(data[16:total])
    if family == 0x11 and length >= 12:  # TCP over IPv4
        source = socket.inet_ntop(socket.AF_INET, body[0:4])
        return (source, int.from_bytes(body[8:10], "big")), total
    if family == 0x21 and length >= 36:  # TCP over IPv6
        address = parse_address(socket.inet_ntop(socket.AF_INET6, body[0:16]))
        return (str(address), int.from_bytes(body[32:34], "big")), total
    return None, total  # UNSPEC, UDP, unix sockets: nothing to take


def header_v1(source: Address, destination: Address) -> bytes:
    """A version 1 header, as a proxy sends it (for tests and scripts)."""
    family = "TCP6" if ":" in source[0] else "TCP4"
    return f"PROXY {family} {source[0]} {destination[0]} {source[1]} {destination[1]}\r\n".encode()


def header_v2(source: Address, destination: Address) -> bytes:
    """A version 2 header (PROXY command, TCP), as a proxy sends it (for tests and scripts)."""
    six = ":" in source[0]
    family = socket.AF_INET6 if six else socket.AF_INET
    body = (
        socket.inet_pton(family, source[0])
        + socket.inet_pton(family, destination[0])
        + source[1].to_bytes(2, "big")
        + destination[1].to_bytes(2, "big")
    )
    return V2_SIGNATURE + bytes([0x21, 0x21 if six else 0x11]) + len(body).to_bytes(2, "big") + body


class ProxiedTransport(asyncio.Transport):
    """A connection's transport, but its peer is the client the PROXY header named."""

    def __init__(self, transport: asyncio.Transport, peer: Address) -> None:
        super().__init__()
        self._inner = transport
        self._peer = peer

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "peername":
            return self._peer
        return self._inner.get_extra_info(name, default)

    @property
    def max_size(self) -> int:
        """asyncio's bytes read at a time (the telnet server lowers it)."""
        return int(getattr(self._inner, "max_size", 0))

    @max_size.setter
    def max_size(self, size: int) -> None:
        if hasattr(self._inner, "max_size"):
            setattr(self._inner, "max_size", size)  # noqa: B010 - asyncio's, undeclared

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._inner.write(data)

    def writelines(self, list_of_data: Any) -> None:
        self._inner.writelines(list_of_data)

    def write_eof(self) -> None:
        self._inner.write_eof()

    def can_write_eof(self) -> bool:
        return self._inner.can_write_eof()

    def close(self) -> None:
        self._inner.close()

    def abort(self) -> None:
        self._inner.abort()

    def is_closing(self) -> bool:
        return self._inner.is_closing()

    def pause_reading(self) -> None:
        self._inner.pause_reading()

    def resume_reading(self) -> None:
        self._inner.resume_reading()

    def is_reading(self) -> bool:
        return self._inner.is_reading()

    def get_write_buffer_size(self) -> int:
        return self._inner.get_write_buffer_size()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._inner.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._inner.set_write_buffer_limits(high, low)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._inner.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._inner.get_protocol()


def hand(
    transport: asyncio.Transport,
    telnet_server: Any,
    peer: Address,
    rest: bytes = b"",
    state: dict[str, Any] | None = None,
) -> None:
    """The telnet server's protocol takes the connection, its peer the client named."""
    protocol = telnet_server.protocol_factory()
    if state is not None:
        protocol.adopted = state
    telnet.extra_info(protocol).update({PEER: peer[0], PEER_PORT: peer[1]})
    transport.set_protocol(protocol)
    protocol.connection_made(ProxiedTransport(transport, peer))
    if rest:
        protocol.data_received(rest)


class HeaderReader(asyncio.Protocol):
    """A new connection on the PROXY port, until its header is read."""

    def __init__(self, listener: ProxyListener) -> None:
        self.listener = listener
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a socket transport
        peer = transport.get_extra_info("peername") or ("?", 0)
        proxies = self.listener.proxies
        if proxies and not proxies.trusts(str(peer[0])):
            log.warning("refused a PROXY connection from %s: not in trusted_proxies", peer[0])
            transport.close()
            return
        self._timer = asyncio.get_running_loop().call_later(HEADER_TIMEOUT, self._too_slow)

    def data_received(self, data: bytes) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        self.buffer += data
        try:
            found = parse(self.buffer)
        except ProxyError as exc:
            peer = transport.get_extra_info("peername") or ("?",)
            log.warning("closed a connection from %s on the PROXY port: %s", peer[0], exc)
            self._end()
            transport.close()
            return
        if found is None:
            return
        address, used = found
        self._end()
        if address is None:
            own = transport.get_extra_info("peername") or ("?", 0)
            address = (str(own[0]), int(own[1]))
        hand(transport, self.listener.telnet, address, bytes(self.buffer[used:]))
        self.buffer = bytearray()

    def _too_slow(self) -> None:
        self._timer = None
        if self.transport is not None and not self.transport.is_closing():
            log.info("closed a connection on the PROXY port: no header in %g s", HEADER_TIMEOUT)
            self.transport.close()

    def _end(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def connection_lost(self, exc: Exception | None) -> None:
        self._end()
        self.transport = None


class _Adopted(asyncio.Protocol):
    """A proxied connection handed over by the previous engine process: no header again."""

    def __init__(self, telnet_server: Any, peer: Address, state: dict[str, Any]) -> None:
        self.telnet = telnet_server
        self.peer = peer
        self.state = state

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        hand(transport, self.telnet, self.peer, state=self.state)  # type: ignore[arg-type]


class ProxyListener:
    """The PROXY port of one game."""

    def __init__(self, telnet_server: Any, proxies: TrustedProxies) -> None:
        self.telnet = telnet_server
        self.proxies = proxies
        self.server: asyncio.Server | None = None

    async def start(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(lambda: HeaderReader(self), sock=sock)

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    def stop_accepting(self) -> None:
        if self.server is not None:
            self.server.close()

    async def adopt(self, sock: socket.socket, state: dict[str, Any]) -> None:
        extra = state.get("telnet", {}).get("extra", {})
        peer = (str(extra.get(PEER, "?")), int(extra.get(PEER_PORT, 0)))
        loop = asyncio.get_running_loop()
        await loop.connect_accepted_socket(lambda: _Adopted(self.telnet, peer, state), sock)

    async def wait_closed(self) -> None:
        if self.server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 1.0)


def is_proxied(state: dict[str, Any]) -> bool:
    """Whether a connection handed over came through the PROXY port (its session state)."""
    extra = state.get("telnet", {}).get("extra", {})
    return isinstance(extra, dict) and PEER in extra
