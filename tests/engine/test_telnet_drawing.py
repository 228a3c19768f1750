"""What plain telnet clients and browsers get from the telnet port.

netkit and inetutils telnet agree to BINARY when offered, and a terminal in
binary mode stops turning the LF of Enter's echo into CR LF: every answer
then starts where the typed line ended.  So BINARY is granted when a client
asks, never offered; output stays 8-bit clean.  A browser pointed at the
port gets a short HTTP answer instead of telnet.  (The real netkit
telnet's screen is checked under tmux by ``make smoke``.)
"""

from __future__ import annotations

import asyncio

from telnetlib3.telopt import BINARY, DO, IAC, WILL

from engine.app import Game


async def raw(game: Game, send: bytes = b"", wait: float = 0.8) -> bytes:
    """What the server sends a raw connection (which sends ``send`` first) within ``wait``."""
    reader, writer = await asyncio.open_connection("127.0.0.1", game.port)
    try:
        if send:
            writer.write(send)
        got = b""
        deadline = asyncio.get_running_loop().time() + wait
        while (left := deadline - asyncio.get_running_loop().time()) > 0:
            try:
                chunk = await asyncio.wait_for(reader.read(65536), left)
            except TimeoutError:
                break
            if not chunk:
                break
            got += chunk
        return got
    finally:
        writer.close()


async def test_binary_is_never_offered(game: Game) -> None:
    got = await raw(game)
    assert IAC + WILL + BINARY not in got
    assert b"By what name are you known?" in got


async def test_binary_is_granted_to_a_client_that_asks(game: Game) -> None:
    got = await raw(game, IAC + DO + BINARY)
    assert IAC + WILL + BINARY in got


async def test_utf8_reaches_a_client_that_never_agreed_to_binary(game: Game) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", game.port)
    try:
        await asyncio.sleep(0.7)
        for line in (b"Zoe", b"yes", b"secret99", b"secret99", "say café".encode()):
            writer.write(line + b"\r\n")
            await asyncio.sleep(0.2)
        got = b""
        while 'You say, "café"'.encode() not in got:
            got += await asyncio.wait_for(reader.read(65536), 3)
    finally:
        writer.close()


async def test_a_browser_at_the_telnet_port_is_answered_over_http(game: Game) -> None:
    request = b"GET / HTTP/1.1\r\nHost: mud.example.org:4000\r\nUser-Agent: test\r\n\r\n"
    got = await raw(game, request, wait=2)
    assert got.startswith(b"HTTP/1.1 200 OK\r\n"), got[:80]
    assert IAC not in got  # not one byte of telnet
    assert b"telnet port of a text game" in got
    assert b"By what name" not in got


async def test_a_client_that_refuses_ttype_is_offered_what_any_telnet_client_is(
    game: Game,
) -> None:
    from telnetlib3.telopt import GMCP, NAWS, TTYPE, WONT

    reader, writer = await asyncio.open_connection("127.0.0.1", game.port)
    got = b""
    try:
        while IAC + WILL + GMCP not in got:
            chunk = await asyncio.wait_for(reader.read(4096), 3)
            assert chunk, got
            got += chunk
            if IAC + DO + TTYPE in chunk:
                writer.write(IAC + WONT + TTYPE)
    finally:
        writer.close()
    assert IAC + DO + NAWS in got
