"""Telnet behind a TLS proxy: the PROXY protocol port (v1 and v2) and MSSP's TLS port.

The tests speak the headers a proxy (nginx's stream module, haproxy) sends,
directly to the port marked for them, then play as a telnet client.
"""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncIterator

import pytest
from conftest import TIMEOUT

from engine.app import Game
from engine.testing import ServerProcess
from engine.web.proxy import ProxyError, header_v1, header_v2, parse

BANNER = b"By what name are you known? "


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_headers_of_both_versions_are_read() -> None:
    v1 = header_v1(("203.0.113.5", 51000), ("10.0.0.1", 4000))
    assert v1 == b"PROXY TCP4 203.0.113.5 10.0.0.1 51000 4000\r\n"
    assert parse(v1 + b"look\r\n") == (("203.0.113.5", 51000), len(v1))
    six = header_v1(("2001:db8::7", 443), ("2001:db8::1", 4000))
    assert parse(six) == (("2001:db8::7", 443), len(six))
    assert parse(b"PROXY UNKNOWN\r\n") == (None, 15)
    v2 = header_v2(("198.51.100.9", 40000), ("10.0.0.1", 4000))
    assert parse(v2 + b"rest") == (("198.51.100.9", 40000), len(v2))
    v2six = header_v2(("2001:db8::9", 1234), ("2001:db8::1", 4000))
    assert parse(v2six) == (("2001:db8::9", 1234), len(v2six))
    local = b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x20, 0x00, 0, 0])
    assert parse(local) == (None, 16)
    # Incomplete: wait for more.
    for part in (b"", b"PRO", v1[:-1], v2[:10], v2[:20]):
        assert parse(part) is None
    bads = (b"GET / HTTP/1.1\r\n", b"PROXY TCP4 nonsense\r\n", b"PROXY " + b"x" * 120, b"\xff\xfd")
    for bad in bads:
        with pytest.raises(ProxyError):
            parse(bad)


async def proxied(port: int, header: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection as a TLS proxy makes it: the header, then the client's telnet."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(header)
    await writer.drain()
    return reader, writer


async def read_until(reader: asyncio.StreamReader, text: bytes) -> bytes:
    seen = b""
    while text not in seen:
        data = await asyncio.wait_for(reader.read(65536), TIMEOUT)
        if not data:
            raise AssertionError(f"closed before {text!r}: {seen!r}")
        seen += data
    return seen


PROXY_PORT = free_port()


@pytest.mark.game(proxy_port=PROXY_PORT, max_per_ip=1, limit_loopback=True, tls_port=4443)
async def test_the_player_behind_the_proxy_is_the_one_counted_and_logged(game: Game) -> None:
    assert game.listeners.web is not None and game.listeners.web.proxy is not None
    port = game.listeners.web.proxy.port
    destination = ("127.0.0.1", port)
    one = await proxied(port, header_v1(("203.0.113.5", 51000), destination))
    two = await proxied(port, header_v2(("198.51.100.9", 40000), destination))
    for reader, _ in (one, two):
        await read_until(reader, BANNER)
    peers = sorted(s.peer for s in game.players.sessions)
    assert peers == ["198.51.100.9:40000", "203.0.113.5:51000"]
    # One connection per address: the same player again is refused, whatever the proxy.
    again = await proxied(port, header_v1(("203.0.113.5", 51001), destination))
    await read_until(again[0], b"Too many connections from your address")
    # Play goes on as on the telnet port.
    reader, writer = one
    writer.write(b"Pat\r\n")
    await read_until(reader, b"Create a new character?")
    # MSSP names the TLS port, for Mudlet to offer it.
    status = game.services.mssp_status()
    assert status["TLS"] == status["SSL"] == "4443"
    for _, w in (one, two, again):
        w.close()


@pytest.mark.game(proxy_port=free_port())
async def test_a_connection_without_a_header_is_closed(game: Game) -> None:
    assert game.listeners.web is not None and game.listeners.web.proxy is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", game.listeners.web.proxy.port)
    writer.write(b"look\r\n")
    assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""
    writer.close()
    assert not game.players.sessions


@pytest.mark.game(proxy_port=free_port(), trusted_proxies="10.9.9.9")
async def test_only_trusted_proxies_may_send_headers_when_some_are_listed(game: Game) -> None:
    assert game.listeners.web is not None and game.listeners.web.proxy is not None
    port = game.listeners.web.proxy.port
    reader, writer = await proxied(port, header_v1(("203.0.113.5", 1), ("127.0.0.1", port)))
    assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""
    writer.close()


@pytest.fixture
async def server(watchdog: None) -> AsyncIterator[ServerProcess]:
    process = ServerProcess.with_copied_content(["--no-reload", "--proxy-port", str(free_port())])
    await asyncio.to_thread(process.start)
    yield process
    await asyncio.to_thread(process.cleanup)


async def test_a_proxied_player_keeps_their_address_across_a_hot_restart(
    server: ServerProcess,
) -> None:
    found = re.search(r"PROXY protocol\) at [\d.]+:(\d+)", server.log())
    assert found, server.log()
    port = int(found.group(1))
    reader, writer = await proxied(port, header_v2(("203.0.113.77", 5555), ("127.0.0.1", port)))
    await read_until(reader, BANNER)
    for line, answer in (
        (b"Pat", b"(yes/no)"),
        (b"yes", b"Choose a password"),
        (b"secret1", b"Type it again"),
        (b"secret1", b"Exits:"),
    ):
        writer.write(line + b"\r\n")
        await read_until(reader, answer)
    writer.write(b"restart\r\n")  # Pat is the first account: an admin
    await read_until(reader, b"The game is back, running the new code.")
    writer.write(b"say still me\r\n")
    await read_until(reader, b'You say, "still me"')
    connects = re.findall(r"(?:connect|enter\w*) .*203\.0\.113\.77", server.log())
    assert connects, server.log()
    assert "127.0.0.1:" not in "".join(re.findall(r"connect <Session[^>]*>", server.log()))
    writer.close()
