"""The web port over real sockets: the page, the three subprotocols, and a websocket's limits.

Each test starts the game in process (the ``game`` fixture: telnet on a free
port, and so the web port too) and plays it with ``engine.web.client.WebClient``
beside the project's telnet client.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from conftest import Connect
from websockets.exceptions import InvalidStatus

from engine.app import Game
from engine.net.session import Session
from engine.web.bridge import WebConnection, WebTransport
from engine.web.client import WebClient
from engine.web.subprotocols import GMCP_PROTOCOL, TELNET, TERMINAL

MakeWeb = Callable[..., Awaitable[WebClient]]


@pytest.fixture
async def web(game: Game) -> AsyncIterator[MakeWeb]:
    """``await web(subprotocol=..., origin=..., headers=...)``: a websocket to the test's game."""
    clients: list[WebClient] = []

    async def make(**options: object) -> WebClient:
        assert game.listeners.web is not None
        client = await WebClient.connect(game.listeners.web.port, **options)  # type: ignore[arg-type]
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


async def http_get(port: int, path: str, headers: str = "") -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 GET: (status, headers in lower case, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{headers}\r\n".encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 3)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        fields = {}
        for line in lines[1:]:
            if ":" in line:
                name, _, value = line.partition(":")
                fields[name.strip().lower()] = value.strip()
        body = await asyncio.wait_for(reader.readexactly(int(fields["content-length"])), 3)
        return status, fields, body
    finally:
        writer.close()


async def test_the_page_and_its_files_are_served_by_the_game(game: Game) -> None:
    assert game.listeners.web is not None
    status, headers, body = await http_get(game.listeners.web.port, "/")
    assert status == 200
    assert headers["content-type"].startswith("text/html")
    assert b'src="client.js"' in body and b'href="client.css"' in body
    body_of_page = body
    assert "script-src 'self'" in headers["content-security-policy"]
    for path, kind in (("/client.js", "text/javascript"), ("/client.css", "text/css")):
        status, headers, body = await http_get(game.listeners.web.port, path)
        assert (status, headers["content-type"].split(";")[0]) == (200, kind)
        assert body
    again = await http_get(game.listeners.web.port, "/index.html")
    assert again[0] == 200 and again[2] == body_of_page
    status, _, _ = await http_get(game.listeners.web.port, "/../engine/app.py")
    assert status == 404


async def test_terminal_is_the_default_and_a_web_player_plays_beside_a_telnet_one(
    game: Game, web: MakeWeb, connect: Connect
) -> None:
    ann = await web(subprotocol=None)
    assert ann.subprotocol is None  # no header: terminal.mudstandards.org
    await ann.login_new("Ann")
    bob = await connect(game.port)
    await bob.login_new("Bob")
    await ann.expect("Bob has entered the game.")
    ann.send("say Hello from the |rweb|n, héllo")
    said = await ann.expect('You say, "Hello from the')
    said += await ann.expect('"')
    await bob.expect('Ann says, "Hello from the')
    assert "\x1b[" in said  # colour, as ANSI escapes
    await bob.expect("héllo")
    bob.send("say Hi Ann")
    await ann.expect('Bob says, "Hi Ann"')
    # A frame may hold several lines; each is a line typed.
    ann.send("say one\nsay two")
    await ann.expect('You say, "one"')
    await ann.expect('You say, "two"')
    # No telnet reaches a terminal client: the game's negotiation was answered for it.
    assert "\xff" not in ann.transcript
    asked = await web(subprotocol=TERMINAL)
    assert asked.subprotocol == TERMINAL


async def test_gmcp_arrives_as_text_frames_and_the_password_prompt_is_signalled(
    game: Game, web: MakeWeb
) -> None:
    cat = await web(subprotocol=GMCP_PROTOCOL)
    assert cat.subprotocol == GMCP_PROTOCOL
    cat.send_gmcp("Core.Hello", {"client": "test", "version": "1"})
    await cat.expect("By what name are you known? ")
    cat.send("Cat")
    await cat.expect("(yes/no) ")
    cat.send("yes")
    await cat.expect("Choose a password")
    assert await cat.expect_gmcp("Client.Password") == {"hidden": True}
    cat.send("secret1")
    await cat.expect("Type it again: ")
    cat.send("secret1")
    assert await cat.expect_gmcp("Client.Password") == {"hidden": False}
    room = await cat.expect_gmcp("Room.Info")
    assert room["name"] and isinstance(room["exits"], dict)
    assert (await cat.expect_gmcp("Char.Status"))["name"] == "Cat"
    await cat.expect_look()
    direction = sorted(room["exits"])[0]
    cat.send(direction)
    moved = await cat.expect_gmcp("Room.Info")
    assert moved["num"] == room["exits"][direction]
    # The client's GMCP reached the game as GMCP over telnet would.
    (session,) = [s for s in game.players.sessions if s.account and s.account.name == "Cat"]
    assert session.gmcp_hello == {"client": "test", "version": "1"}


async def test_the_telnet_subprotocol_carries_the_whole_telnet_stream(
    game: Game, web: MakeWeb
) -> None:
    dan = await web(subprotocol=TELNET)
    assert dan.subprotocol == TELNET
    await dan.expect("By what name are you known? ")
    assert dan.raw.startswith(b"\xff\xfd\x18")  # IAC DO TTYPE: the game negotiates
    dan.send("Dan")
    await dan.expect("Create a new character?")
    dan.send("yes")
    await dan.expect("Choose a password")
    assert b"\xff\xfb\x01" in dan.raw  # IAC WILL ECHO: the password is not echoed
    dan.send("secret1")
    await dan.expect("Type it again: ")
    dan.send("secret1")
    await dan.expect_look()


async def test_a_client_offering_only_other_subprotocols_is_refused(game: Game) -> None:
    assert game.listeners.web is not None
    with pytest.raises(InvalidStatus) as refused:
        await WebClient.connect(game.listeners.web.port, subprotocol="chat.example.org")
    assert refused.value.response.status_code == 400


@pytest.mark.game(web_origins="https://mud.example.org")
async def test_a_page_of_another_site_is_refused_unless_listed(game: Game, web: MakeWeb) -> None:
    assert game.listeners.web is not None
    with pytest.raises(InvalidStatus) as refused:
        await WebClient.connect(game.listeners.web.port, origin="https://evil.example.com")
    assert refused.value.response.status_code == 403
    same = await web(origin=f"http://127.0.0.1:{game.listeners.web.port}")
    listed = await web(origin="https://mud.example.org")
    program = await web()  # no Origin: not a browser
    for client in (same, listed, program):
        await client.expect("By what name are you known? ")


@pytest.mark.game(web_max_frame=1024)
async def test_a_frame_over_the_cap_closes_that_connection_only(
    game: Game, web: MakeWeb, connect: Connect
) -> None:
    eve = await web()
    await eve.expect("By what name are you known? ")
    bob = await connect(game.port)
    await bob.login_new("Bob")
    eve.send("x" * 5000)
    assert await eve.expect_closed() == 1009
    await bob.command("say still here", 'You say, "still here"')


@pytest.mark.game(max_per_ip=2, limit_loopback=True)
async def test_websockets_count_toward_the_connection_limits(
    game: Game, web: MakeWeb, connect: Connect
) -> None:
    first = await connect(game.port)
    second = await web()
    await first.expect("By what name are you known? ")
    await second.expect("By what name are you known? ")
    third = await web()
    await third.expect("Too many connections from your address")
    assert await third.expect_closed() == 1000
    assert game.server is not None
    assert game.server.limiter.by_ip == {"127.0.0.1": 2}
    await second.close()
    await asyncio.sleep(0.3)
    assert game.server.limiter.by_ip == {"127.0.0.1": 1}


@pytest.mark.game(login_timeout=1.0)
async def test_the_login_deadline_closes_an_idle_websocket(web: MakeWeb) -> None:
    idle = await web()
    await idle.expect("By what name are you known? ")
    assert await idle.expect_closed(timeout=4) == 1000
    # telnetlib3's timer or the play loop's deadline, whichever fires first (as for telnet).
    assert "Timeout." in idle.buffer or "You took too long to log in." in idle.buffer


@pytest.mark.game(max_line=100)
async def test_the_line_limit_applies_to_websockets(web: MakeWeb) -> None:
    fay = await web()
    await fay.login_new("Fay")
    fay.send("say " + "y" * 500)
    await fay.expect("That line was longer than 100 characters and was dropped.")
    await fay.command("say short", 'You say, "short"')


@pytest.mark.game(trusted_proxies="127.0.0.1", max_per_ip=1, limit_loopback=True)
async def test_a_trusted_proxy_names_the_player(game: Game, web: MakeWeb) -> None:
    one = await web(headers={"X-Forwarded-For": "198.51.100.7, 203.0.113.9"})
    two = await web(headers={"X-Forwarded-For": "203.0.113.10"})
    for client in (one, two):
        await client.expect("By what name are you known? ")
    peers = sorted(s.peer.split(":")[0] for s in game.players.sessions)
    assert peers == ["203.0.113.10", "203.0.113.9"]  # the rightmost untrusted hop
    again = await web(headers={"X-Forwarded-For": "203.0.113.9"})
    await again.expect("Too many connections from your address")


async def test_x_forwarded_for_is_ignored_from_an_untrusted_peer(game: Game, web: MakeWeb) -> None:
    liar = await web(headers={"X-Forwarded-For": "192.0.2.1"})
    await liar.expect("By what name are you known? ")
    assert [s.peer.split(":")[0] for s in game.players.sessions] == ["127.0.0.1"]


async def test_a_lost_websocket_ends_its_session(game: Game, web: MakeWeb) -> None:
    gus = await web()
    await gus.login_new("Gus")
    assert len(game.players.sessions) == 1
    gus.ws.transport.abort()
    for _ in range(50):
        if not game.players.sessions:
            break
        await asyncio.sleep(0.05)
    assert not game.players.sessions
    assert game.server is not None
    assert game.server.limiter.total == 0


async def test_keepalive_pings_drop_a_client_that_stopped_answering(
    game: Game, web: MakeWeb, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine.web import server

    assert game.listeners.web is not None
    monkeypatch.setattr(server, "PING_INTERVAL", 0.2)
    game.listeners.web.close_pinger()
    game.listeners.web.start_pinger()
    alive = await web()
    dead = await web()
    for client in (alive, dead):
        await client.expect("By what name are you known? ")
    dead.ws.transport.pause_reading()  # gone silent: no pongs
    for _ in range(40):
        await asyncio.sleep(0.05)
        if len(game.players.sessions) == 1:
            break
    assert len(game.players.sessions) == 1
    await alive.command("Ann", "Create a new character?")
    dead.ws.transport.abort()


def alive(kind: type) -> int:
    """How many objects of ``kind`` the collector tracks (weak proxies left out)."""
    return sum(1 for o in gc.get_objects() if type(o) is kind)


async def test_a_closed_websocket_is_freed_without_the_garbage_collector(
    game: Game, web: MakeWeb
) -> None:
    gc.collect()
    gc.disable()
    try:
        for end in ("client", "game", "lost"):
            client = await web()
            await client.expect("By what name are you known? ")
            if end == "client":
                await client.close()
            elif end == "game":
                for session in list(game.players.sessions):
                    session.close("Goodbye.")
                del session  # this test's own hold
                await client.expect_closed()
            else:
                client.ws.transport.abort()
            for _ in range(40):
                await asyncio.sleep(0.05)
                sessions = game.players.sessions
                if not sessions and not alive(WebConnection) and not alive(WebTransport):
                    break
            assert (alive(WebConnection), alive(WebTransport), alive(Session)) == (0, 0, 0), end
    finally:
        gc.enable()


@pytest.mark.game(web=False)
async def test_a_setting_turns_the_web_client_off(game: Game) -> None:
    assert game.listeners.web is None
