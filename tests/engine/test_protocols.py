"""Telnet and MUD protocols over real connections: TTYPE/MTTS, NAWS, colour, GMCP, MSSP, MCCP2,
CHARSET, and how prompts end (GA or EOR).

Each test starts the real server on 127.0.0.1 and talks to it with telnetlib3's own client,
which negotiates each option for real.  ``Probe`` is a small ``TelnetClient`` subclass that
only changes what the client agrees to (telnetlib3's client refuses MUD protocols unless they
are in its writer's ``always_do``), what it answers to TTYPE (MUD clients cycle through
several answers), and lets the test resize the window; the conversation itself goes through
the shared ``Client`` of ``conftest``.
"""

from __future__ import annotations

import asyncio
import functools
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

import pytest
import telnetlib3
from conftest import HOST, TIMEOUT, Client, MakeRaw
from game_helpers import session_of, until
from telnetlib3.telopt import (
    CHARSET,
    CMD_EOR,
    DO,
    DONT,
    EOR,
    GA,
    GMCP,
    IAC,
    IS,
    MSSP,
    SB,
    SE,
    TTYPE,
    WILL,
    WONT,
)

from engine.app import Game
from engine.net.colour import Depth

#: Markers the probe client inserts into its text stream where the server sent IAC GA / IAC
#: EOR, so that a test sees exactly what a prompt ended with, in order with the text.
GA_MARK = "<IAC GA>"
EOR_MARK = "<IAC EOR>"

ESC = "\x1b["
ORANGE = "|#ff8800"
#: ``|#ff8800`` at each colour depth (the xterm cube index is 16 + 36*5 + 6*2 + 0).
ORANGE_256 = "\x1b[38;5;208m"
ORANGE_TRUE = "\x1b[38;2;255;136;0m"
ORANGE_16 = "\x1b[33m"  # the nearest of the 16 ANSI colours: yellow
RESET = "\x1b[0m"
RED = "\x1b[31m"


class Probe(telnetlib3.TelnetClient):
    """telnetlib3's client, told which MUD protocols to accept or refuse and what to answer.

    ``accept``: options to agree to when the server offers them (WILL -> DO); ``refuse``:
    options always refused; ``ttypes``: successive TTYPE answers, cycled as a MUD client does
    (the default answers ``term`` every time).
    """

    def __init__(
        self,
        *args: Any,
        accept: Iterable[bytes] = (),
        refuse: Iterable[bytes] = (),
        ttypes: Iterable[str] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.accept = set(accept)
        self.refuse = set(refuse)
        self.ttypes = list(ttypes)
        self.ttype_count = 0
        self.gmcp: list[tuple[str, Any]] = []
        self.mssp: list[dict[str, Any]] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        writer, reader = self.writer, self.reader
        assert writer is not None and reader is not None  # made by connection_made
        # Set before the server's first offer arrives: handle_will consults these.
        writer.always_do.update(self.accept)
        writer.always_dont.update(self.refuse)
        writer.set_ext_callback(GMCP, self._on_gmcp)
        writer.set_ext_callback(MSSP, self.mssp.append)
        writer.set_iac_callback(GA, lambda _cmd: reader.feed_data(GA_MARK.encode()))
        writer.set_iac_callback(CMD_EOR, lambda _cmd: reader.feed_data(EOR_MARK.encode()))

    def _on_gmcp(self, package: str, data: Any) -> None:
        self.gmcp.append((package, data))

    def send_ttype(self) -> str:
        if not self.ttypes:
            return super().send_ttype()
        answer = self.ttypes[min(self.ttype_count, len(self.ttypes) - 1)]
        self.ttype_count += 1
        return answer

    def resize(self, cols: int, rows: int = 25) -> None:
        """The user resized the window: send NAWS again (what telnetlib3 does on SIGWINCH)."""
        self._extra.update(cols=cols, rows=rows)
        assert self.writer is not None
        self.writer._send_naws()


OpenClient = Callable[..., Awaitable[Client]]


@pytest.fixture
async def open_client(game: Game) -> AsyncIterator[OpenClient]:
    """``await open_client(term=..., cols=..., accept={MSSP}, ttypes=[...])``: a probe client."""
    clients: list[Client] = []

    async def make(
        accept: Iterable[bytes] = (),
        refuse: Iterable[bytes] = (),
        ttypes: Iterable[str] = (),
        **options: Any,
    ) -> Client:
        options.setdefault("cols", 250)
        reader, writer = await asyncio.wait_for(
            telnetlib3.open_connection(
                HOST,
                game.port,
                client_factory=functools.partial(
                    Probe, accept=accept, refuse=refuse, ttypes=ttypes
                ),
                connect_minwait=0.05,
                connect_maxwait=0.5,
                **options,
            ),
            TIMEOUT,
        )
        client = Client(reader, writer)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.writer.close()
    await asyncio.sleep(0)


def probe(client: Client) -> Probe:
    protocol = client.writer.protocol
    assert isinstance(protocol, Probe)
    return protocol


async def say(client: Client, text: str) -> str:
    """Say ``text``; the answer from ``You say,`` to the end of its last line."""
    client.send(f"say {text}")
    await client.expect("You say,")
    rest = await client.expect("\r\n> ")
    return "You say," + rest.removesuffix("> ")


# -- TTYPE / MTTS: what the client is and what colour it gets ---------------------------------


@pytest.mark.parametrize(
    ("options", "escape", "red", "shown"),
    [
        pytest.param(
            {"term": "xterm-256color"}, ORANGE_256, RED, "256 colours", id="xterm-256color"
        ),
        pytest.param(
            {"ttypes": ["MUDLET", "XTERM-256COLOR", "MTTS 271"]},
            ORANGE_TRUE,
            "\x1b[38;2;205;0;0m",
            "16,777,216 colours",
            id="mudlet-mtts-truecolor",
        ),
        pytest.param(
            {"ttypes": ["ZMUD", "VT100", "MTTS 1"]}, ORANGE_16, RED, "16 colours", id="mtts-ansi"
        ),
    ],
)
async def test_a_colour_client_gets_escapes_for_its_depth(
    game: Game,
    open_client: OpenClient,
    options: dict[str, Any],
    escape: str,
    red: str,
    shown: str,
) -> None:
    client = await open_client(**options)
    await client.login_new("Alice")
    answer = await say(client, f"{ORANGE}hot|n and plain")
    assert answer == f'You say, "{escape}hot{RESET} and plain"{RESET}\r\n'
    text = await client.command("colour", "white")
    assert f"sending {shown})." in text
    assert f"{red}red " in text


async def test_ttype_and_mtts_answers_are_read_at_connect(
    game: Game, open_client: OpenClient
) -> None:
    client = await open_client(ttypes=["MUDLET", "XTERM-256COLOR", "MTTS 271"])
    await client.login_new("Alice")
    info = session_of(game, "Alice").client
    assert info.name == "MUDLET"
    assert info.term == "XTERM-256COLOR"
    assert info.depth == Depth.TRUECOLOR
    assert info.utf8  # MTTS bit 4
    assert not info.screen_reader
    assert "(your client: MUDLET;" in await client.command("colour", "white")


async def test_a_client_answering_unknown_gets_plain_text(
    game: Game, open_client: OpenClient
) -> None:
    client = await open_client()  # telnetlib3 answers TTYPE "unknown"
    await client.login_new("Alice")
    assert await say(client, f"{ORANGE}hot|n and ||plain") == 'You say, "hot and |plain"\r\n'
    text = await client.command("colour", "white")
    assert "(your client: unknown; sending no colour)." in text
    assert "red green yellow blue magenta cyan white" in text
    assert ESC not in client.transcript
    assert session_of(game, "Alice").colour == Depth.NONE


async def test_a_screen_reader_client_gets_no_colour(game: Game, open_client: OpenClient) -> None:
    # MTTS 71 = ANSI + VT100 + UTF-8 + screen reader, from a client otherwise truecolor.
    client = await open_client(ttypes=["MUDLET", "XTERM-256COLOR", "MTTS 71"])
    await client.login_new("Alice")
    assert await say(client, f"{ORANGE}hot|n and plain") == 'You say, "hot and plain"\r\n'
    text = await client.command("colour", "white")
    assert "sending no colour)." in text
    assert ESC not in client.transcript
    info = session_of(game, "Alice").client
    assert info.screen_reader
    assert info.utf8


# -- the account's colour setting -------------------------------------------------------------


async def test_colour_off_is_plain_for_a_256_colour_client_and_persists(
    game: Game, open_client: OpenClient
) -> None:
    client = await open_client(term="xterm-256color")
    await client.login_new("Alice")
    assert ORANGE_256 in await say(client, f"{ORANGE}hot")
    text = await client.command("colour off", "white")
    assert "Colour: off (your client: xterm-256color; sending no colour)." in text
    assert "red green yellow" in text
    assert await say(client, f"{ORANGE}hot|n!") == 'You say, "hot!"\r\n'
    client.send("quit")
    await client.expect_closed()

    again = await open_client(term="xterm-256color")
    await again.login("Alice")
    assert await say(again, f"{ORANGE}hot") == 'You say, "hot"\r\n'
    assert "Colour: off" in await again.command("colour", "white")
    assert ESC not in again.transcript
    # Back to auto: the client's own depth again.
    await again.command("colour auto", "white")
    assert ORANGE_256 in await say(again, f"{ORANGE}hot")


async def test_colour_on_forces_ansi_for_an_unknown_client(
    game: Game, open_client: OpenClient
) -> None:
    client = await open_client()
    await client.login_new("Alice")
    text = await client.command("colour on", "white")
    assert "Colour: on (your client: unknown; sending 16 colours)." in text
    assert f"{RED}red \x1b[32mgreen" in text
    assert await say(client, f"{ORANGE}hot") == f'You say, "{ORANGE_16}hot"{RESET}\r\n'


# -- NAWS: window width ---------------------------------------------------------------------

WORDS = " ".join(["word"] * 80)  # 399 characters of 4-letter words


def check_wrapped(answer: str, width: int) -> None:
    """Every line fits ``width``; each but the last is full (the next 5-character word would not
    fit), so the text was wrapped at exactly ``width`` and not at something narrower."""
    lines = answer.removesuffix("\r\n").split("\r\n")
    assert len(lines) > 1, answer
    for line in lines:
        assert len(line) <= width, (width, line)
    for line in lines[:-1]:
        assert len(line) > width - 5, (width, line)
    assert all(line.startswith("  ") for line in lines[1:])  # continuation pieces
    assert " ".join([lines[0], *(line[2:] for line in lines[1:])]) == f'You say, "{WORDS}"'


@pytest.mark.parametrize(("cols", "width"), [(30, 30), (5, 20), (10000, 250)])
async def test_naws_width_wraps_output_within_bounds(
    game: Game, open_client: OpenClient, cols: int, width: int
) -> None:
    client = await open_client(cols=cols)
    await client.login_new("Alice")
    assert session_of(game, "Alice").width == width
    check_wrapped(await say(client, WORDS), width)


async def test_a_window_resize_is_followed_live(game: Game, open_client: OpenClient) -> None:
    client = await open_client(cols=100)
    await client.login_new("Alice")
    check_wrapped(await say(client, WORDS), 100)
    probe(client).resize(40)
    check_wrapped(await say(client, WORDS), 40)
    probe(client).resize(200)
    check_wrapped(await say(client, WORDS), 200)


async def test_colour_goes_on_across_wrapped_lines(game: Game, open_client: OpenClient) -> None:
    client = await open_client(term="xterm-256color", cols=30)
    await client.login_new("Alice")
    lines = (await say(client, f"{ORANGE}{WORDS}")).removesuffix("\r\n").split("\r\n")
    assert len(lines) > 10
    assert ORANGE_256 in lines[0]
    for line in lines:
        assert len(line.replace(ORANGE_256, "").replace(RESET, "")) <= 30
        assert line.endswith(RESET)
    for line in lines[1:]:
        assert line.startswith(ORANGE_256), line


# -- GMCP -------------------------------------------------------------------------------------


def room_ids(game: Game) -> dict[str, int]:
    return {room.name: room.id for room in game.world.rooms()}


async def test_gmcp_char_and_room_info_on_login_and_on_movement(
    game: Game, open_client: OpenClient
) -> None:
    client = await open_client(accept={GMCP})
    await client.login_new("Alice")
    messages = probe(client).gmcp
    rooms = room_ids(game)
    square = {
        "num": rooms["The Village Square"],
        "name": "The Village Square",
        "exits": {
            "north": rooms["The Quiet Library"],
            "east": rooms["The Market"],
            "down": rooms["A Damp Cellar"],
        },
    }
    await until(lambda: ("Room.Info", square) in messages, f"Room.Info {square}")
    assert ("Char.Name", {"name": "Alice", "fullname": "Alice"}) in messages
    assert messages.index(("Char.Name", {"name": "Alice", "fullname": "Alice"})) < (
        messages.index(("Room.Info", square))
    )

    await client.command("north", "The Quiet Library")
    library = {
        "num": rooms["The Quiet Library"],
        "name": "The Quiet Library",
        "exits": {"south": rooms["The Village Square"]},
    }
    await until(lambda: messages[-1] == ("Room.Info", library), f"Room.Info {library}")
    await client.command("south", "The Village Square")
    await until(lambda: messages[-1] == ("Room.Info", square), "Room.Info back in the square")


async def test_the_server_receives_core_hello(game: Game, open_client: OpenClient) -> None:
    client = await open_client(accept={GMCP})
    await client.login_new("Alice")
    protocol = session_of(game, "Alice").writer.protocol
    hello = await until(
        lambda: protocol.gmcp_from_client.get("Core.Hello"), "Core.Hello on the server"
    )
    assert hello["client"] == "telnetlib3"
    assert "room.info 1" in protocol.gmcp_from_client["Core.Supports.Set"]


async def test_a_client_refusing_gmcp_gets_none_and_plays(
    game: Game, open_client: OpenClient
) -> None:
    client = await open_client(refuse={GMCP})
    await client.login_new("Alice")
    await client.command("north", "The Quiet Library")
    await client.command("say still here", 'You say, "still here"')
    assert probe(client).gmcp == []
    assert not session_of(game, "Alice").writer.local_option.enabled(GMCP)


# -- MSSP -------------------------------------------------------------------------------------


async def crawl(open_client: OpenClient) -> dict[str, Any]:
    crawler = await open_client(accept={MSSP})
    status: list[dict[str, Any]] = await until(lambda: probe(crawler).mssp, "MSSP status")
    crawler.writer.close()
    return status[0]


async def test_mssp_status_for_a_crawler(game: Game, open_client: OpenClient) -> None:
    empty = await crawl(open_client)
    assert empty["NAME"] == "HotMUD"
    assert empty["PLAYERS"] == "0"
    assert empty["CODEBASE"].startswith("HotMUD")
    uptime = int(empty["UPTIME"])  # MSSP: when the server started, in Unix time
    assert game.services.started_at - 1 <= uptime <= time.time()

    for name in ("Alice", "Bob"):
        player = await open_client()
        await player.login_new(name)
    lurker = await open_client()  # connected but not logged in: not a player
    await lurker.expect("known? ")
    status = await crawl(open_client)
    assert status["PLAYERS"] == "2"
    assert status["UPTIME"] == empty["UPTIME"]


async def test_a_client_refusing_mssp_gets_no_status(game: Game, open_client: OpenClient) -> None:
    client = await open_client()  # telnetlib3's default: MSSP refused
    await client.expect("known? ")
    assert probe(client).mssp == []


# -- MCCP2 ------------------------------------------------------------------------------------


async def test_play_goes_on_with_mccp2_compression(game: Game, open_client: OpenClient) -> None:
    alice = await open_client()  # telnetlib3 accepts an offered MCCP2 by default
    await alice.login_new("Alice")
    bob = await open_client(compression=False)
    await bob.login_new("Bob")
    await alice.expect("Bob has entered the game.")

    alice_server = session_of(game, "Alice").writer.protocol
    assert alice_server._mccp2_compressor is not None
    assert alice.writer.protocol._mccp2_decompressor is not None
    assert session_of(game, "Bob").writer.protocol._mccp2_compressor is None

    await alice.command("say héllo, compressed", 'You say, "héllo, compressed"')
    await bob.expect('Alice says, "héllo, compressed"')
    await bob.command("say plain", 'You say, "plain"')
    await alice.expect('Bob says, "plain"')
    await alice.command("look", "The Village Square")
    await alice.expect("Here: Bob.")
    await alice.command("north", "The Quiet Library")
    assert alice_server._mccp2_compressor is not None


# -- CHARSET never delays the login -----------------------------------------------------------


async def test_a_client_never_answering_charset_sees_the_prompt_within_a_second(
    game: Game,
) -> None:
    """A raw client agrees to TTYPE and CHARSET, answers TTYPE once, ignores the CHARSET request."""
    started = time.monotonic()
    reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, game.port), TIMEOUT)
    received = b""
    answered: set[bytes] = set()

    async def negotiate() -> None:
        nonlocal received
        scanned = 0
        while b"known? " not in received:
            data = await reader.read(4096)
            if not data:
                raise AssertionError(f"closed before the prompt; got {received!r}")
            received += data
            while (at := received.find(IAC, scanned)) >= 0 and at + 2 < len(received):
                command, option = received[at + 1 : at + 2], received[at + 2 : at + 3]
                scanned = at + 2
                key = command + option
                if key in answered:
                    continue
                answered.add(key)
                if command == DO:
                    writer.write(IAC + (WILL if option in (TTYPE, CHARSET) else WONT) + option)
                elif command == WILL:
                    writer.write(IAC + DONT + option)
                elif command == SB and option == TTYPE:
                    writer.write(IAC + SB + TTYPE + IS + b"XTERM" + IAC + SE)

    try:
        await asyncio.wait_for(negotiate(), 1.0)
        elapsed = time.monotonic() - started
    finally:
        writer.close()
    assert IAC + SB + CHARSET + b"\x01" in received  # the server did ask (CHARSET REQUEST)
    assert elapsed < 1.0


# -- prompts end with GA, or EOR when agreed --------------------------------------------------


async def test_prompts_end_with_eor_when_the_client_agreed(
    game: Game, open_client: OpenClient
) -> None:
    client = await open_client()  # telnetlib3 agrees to EOR
    await client.expect(f"By what name are you known? {EOR_MARK}")
    client.send("Alice")
    await client.expect(f"(yes/no) {EOR_MARK}")
    client.send("yes")
    await client.expect(f"characters): {EOR_MARK}")
    await client.login_new_password()
    await client.command("look", f"\r\n> {EOR_MARK}")
    assert GA_MARK not in client.transcript


async def test_prompts_end_with_ga_when_the_client_refused_eor(
    game: Game, open_client: OpenClient
) -> None:
    client = await open_client(refuse={EOR})
    await client.expect(f"By what name are you known? {GA_MARK}")
    client.send("Alice")
    await client.expect(f"(yes/no) {GA_MARK}")
    client.send("yes")
    await client.expect(f"characters): {GA_MARK}")
    await client.login_new_password()
    await client.command("look", f"\r\n> {GA_MARK}")
    assert EOR_MARK not in client.transcript


@pytest.mark.parametrize(
    ("hello", "end"),
    [(b"", IAC + GA), (IAC + DO + EOR, IAC + CMD_EOR)],
    ids=["silent-client-gets-ga", "do-eor-gets-eor"],
)
async def test_prompt_bytes_on_the_wire(
    game: Game, make_raw: MakeRaw, hello: bytes, end: bytes
) -> None:
    raw = await make_raw()
    if hello:
        await raw.send(hello)
    seen = await raw.expect(b"By what name are you known? ")
    assert not re.search(rb"\xff[\xef\xf9]", seen)  # no prompt mark before the prompt
    assert await raw.expect(end) == end
