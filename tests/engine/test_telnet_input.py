"""Malformed and endless telnet negotiation: cheap, cut off, logged once.

Each malformed subnegotiation is checked before telnetlib3 sees it, dropped
and counted; past ``max_bad_negotiation`` of them the connection is closed
with one log line.  Negotiation faster than the server's budget (a flood of
well-formed NAWS) is closed too.  A client that never logs in floods the
server (IAC SB NAWS 0 IAC SE, IAC SB CHARSET REQUEST IAC SE, ...) while a
player plays: she is answered throughout, the flooder is gone within
seconds, and the log has one line for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import statistics
import time
import zlib
from collections import deque
from typing import TYPE_CHECKING, Any

import pytest
from game_helpers import players, session_of, until

from engine.app import Game
from engine.net.limits import NegotiationGuard
from engine.net.telnet import (
    NEGOTIATION_BURST,
    NEGOTIATION_RATE,
    PARSE_PIECE,
    subnegotiation_problem,
)

if TYPE_CHECKING:
    from conftest import Client, MakeClient, MakeRaw, RawClient

IAC, SB, SE, NOP = b"\xff", b"\xfa", b"\xf0", b"\xf1"
DO, WILL, WONT = b"\xfd", b"\xfb", b"\xfc"
NAWS, CHARSET, TTYPE, GMCP, MCCP3 = b"\x1f", b"\x2a", b"\x18", b"\xc9", b"\x57"
REQUEST, ACCEPTED, IS = b"\x01", b"\x02", b"\x00"

SHORT_NAWS = IAC + SB + NAWS + b"\x00" + IAC + SE
EMPTY_CHARSET = IAC + SB + CHARSET + REQUEST + IAC + SE
TTYPE_SEND = IAC + SB + TTYPE + b"\x01" + IAC + SE
#: The three kinds in turn, as the flooders of the issue sent them.
MALFORMED = SHORT_NAWS + EMPTY_CHARSET + TTYPE_SEND
#: Broken subnegotiations telnetlib3 drops itself (with a warning each), never
#: handing them on: empty, and interrupted by another command.
EMPTY_SB = IAC + SB + IAC + SE
INTERRUPTED_SB = IAC + SB + NAWS + b"\x00" + IAC + NOP
#: A well-formed NAWS: 80 columns, 24 rows.
NAWS_80x24 = IAC + SB + NAWS + b"\x00\x50\x00\x18" + IAC + SE

#: Seconds a flooder may take to be cut off (it is, in milliseconds).
CUT_OFF_WITHIN = 3.0


def sb(payload: bytes) -> deque[bytes]:
    return deque(bytes([b]) for b in payload)


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        (NAWS + b"\x00", "NAWS of 1 bytes, not 4"),
        (NAWS + b"\x00\x50\x00\x18\x00", "NAWS of 5 bytes, not 4"),
        (CHARSET, "CHARSET without a command"),
        (CHARSET + REQUEST, "CHARSET request without a character set"),
        (CHARSET + REQUEST + b";", "CHARSET request without a character set"),
        (CHARSET + REQUEST + b";;;", "CHARSET request without a character set"),
        (CHARSET + REQUEST + b";UTF-8\x80", "CHARSET request that is not ASCII"),
        (CHARSET + ACCEPTED, "CHARSET accepted without a printable name"),
        (CHARSET + b"\x09", "CHARSET command b'\\t' not supported"),
        (TTYPE + b"\x01", "TTYPE that is not IS"),
        (TTYPE + IS + b"xterm\x1b[31m", "TTYPE that is not printable ASCII"),
        (b"", "empty"),
        (b"\x99" + b"x" * 100, "option 153 not supported"),
        (b"\x00", "option 0 not supported"),
        (b"\x27", "option 39 without a payload"),  # NEW-ENVIRON
    ],
)
def test_malformed_subnegotiations_are_named(payload: bytes, problem: str) -> None:
    assert subnegotiation_problem(sb(payload)) == problem


@pytest.mark.parametrize(
    "payload",
    [
        NAWS + b"\x00\x50\x00\x18",
        CHARSET + REQUEST + b";UTF-8;ISO-8859-1",
        CHARSET + ACCEPTED + b"UTF-8",
        CHARSET + b"\x03",  # REJECTED
        TTYPE + IS + b"MUDLET",
        b"\xc9" + b'Core.Hello {"client": "Mudlet"}',  # GMCP: telnetlib3 checks it
        b"\x5b",  # MXP: empty is well-formed
    ],
)
def test_well_formed_subnegotiations_pass(payload: bytes) -> None:
    assert subnegotiation_problem(sb(payload)) is None


# -- the rules, without a server ----------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_more_than_max_bad_malformed_subnegotiations_close() -> None:
    guard = NegotiationGuard(max_bad=5, rate=1000, burst=1000, clock=Clock())
    assert [guard.check(10, bad) for bad in range(6)] == [None] * 6
    assert guard.check(0, 6) == NegotiationGuard.MALFORMED


def test_negotiation_past_its_burst_and_rate_closes() -> None:
    clock = Clock()
    guard = NegotiationGuard(max_bad=5, rate=100, burst=1000, clock=clock)
    assert guard.check(1000, 0) is None  # the whole burst at once
    assert guard.check(1, 0) == NegotiationGuard.TOO_FAST
    clock.now += 10.0
    assert guard.check(990, 0) is None  # refilled at 100 bytes a second
    for _ in range(100):
        clock.now += 1.0
        assert guard.check(100, 0) is None  # the rate, kept up for ever
    assert guard.check(200, 0) == NegotiationGuard.TOO_FAST


def test_an_honest_clients_negotiation_fits_the_budget_many_times_over() -> None:
    # Mudlet at connect: option answers, TTYPE three times, NAWS, CHARSET, NEW-ENVIRON,
    # GMCP Core.Hello and a Core.Supports.Set of 20 packages: under 1.5 KiB.
    assert NEGOTIATION_BURST >= 4 * 1536
    # A window dragged wider for a second sends a NAWS per step: 60 a second fit.
    assert 60 * len(NAWS_80x24) <= NEGOTIATION_RATE


# -- over real connections ----------------------------------------------------


async def flood_until_closed(raw: RawClient, pattern: bytes, limit: float) -> float:
    """Send ``pattern`` over and over until the server closes; how long that took (s)."""
    chunk = pattern * (4096 // len(pattern))
    started = time.monotonic()

    async def read_to_end() -> None:
        with contextlib.suppress(ConnectionError):
            while await raw.reader.read(1 << 16):
                pass

    reading = asyncio.create_task(read_to_end())
    try:
        with contextlib.suppress(ConnectionError):
            while not reading.done():
                if time.monotonic() - started > limit:
                    raise AssertionError(f"the flooder was not cut off within {limit} s")
                raw.writer.write(chunk)
                await asyncio.wait_for(raw.writer.drain(), limit)
        await asyncio.wait_for(reading, limit)
    finally:
        reading.cancel()
    return time.monotonic() - started


async def look_while(alice: Client, flooding: asyncio.Future[Any]) -> list[float]:
    """Alice looks again and again until ``flooding`` is done (and three times more)."""
    latencies: list[float] = []
    while not flooding.done() or len(latencies) < 3:
        started = time.perf_counter()
        await alice.command("look", "Exits:", timeout=2)
        await alice.expect("> ")
        latencies.append(time.perf_counter() - started)
    return latencies


def telnet_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith(("telnetlib3", "engine.net.telnet"))]


def closings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in telnet_records(caplog)
        if r.levelno == logging.WARNING and "closing" in r.getMessage()
    ]


@pytest.mark.parametrize(
    "pattern",
    [MALFORMED, SHORT_NAWS, EMPTY_CHARSET, TTYPE_SEND, EMPTY_SB, INTERRUPTED_SB],
    ids=["naws-charset-ttype", "short-naws", "empty-charset", "ttype-send", "empty", "interrupted"],
)
async def test_a_malformed_negotiation_flooder_is_cut_off_and_logged_once(
    game: Game,
    make_client: MakeClient,
    make_raw: MakeRaw,
    caplog: pytest.LogCaptureFixture,
    pattern: bytes,
) -> None:
    (alice,) = await players(make_client, "Alice")
    hostile = await make_raw()
    await hostile.expect(b"known? ")
    with caplog.at_level(logging.DEBUG, logger="engine.net.telnet"):
        flooding = asyncio.create_task(flood_until_closed(hostile, pattern, CUT_OFF_WITHIN))
        latencies = await look_while(alice, flooding)
        took = await flooding
    assert took < CUT_OFF_WITHIN
    assert max(latencies) < 0.25, f"look took up to {max(latencies) * 1000:.0f} ms"
    (line,) = closings(caplog)
    assert re.fullmatch(
        r"127\.0\.0\.1 sent \d+ malformed telnet subnegotiations, more than the 5 allowed "
        r"\(the first: .+\); closing",
        line,
    ), line
    records = telnet_records(caplog)
    assert not [r for r in records if r.exc_info or "Traceback" in r.getMessage()]
    assert [r for r in records if r.levelno >= logging.INFO] == [
        r for r in records if r.getMessage() == line
    ]
    await until(lambda: len(game.server.clients) == 1, "the flooder's connection gone")
    await alice.command("look", "Exits:")


@pytest.mark.parametrize("pattern", [MALFORMED, NAWS_80x24], ids=["malformed", "well-formed"])
async def test_fifty_flooders_are_all_cut_off_while_a_player_looks(
    game: Game,
    make_client: MakeClient,
    make_raw: MakeRaw,
    caplog: pytest.LogCaptureFixture,
    pattern: bytes,
) -> None:
    (alice,) = await players(make_client, "Alice")
    crowd = [await make_raw() for _ in range(50)]
    with caplog.at_level(logging.WARNING):
        floods = [
            asyncio.create_task(flood_until_closed(raw, pattern * 50, CUT_OFF_WITHIN))
            for raw in crowd
        ]
        all_done = asyncio.ensure_future(asyncio.gather(*floods))
        latencies = await look_while(alice, all_done)
        times = await all_done
    assert max(times) < CUT_OFF_WITHIN
    assert statistics.median(latencies) < 0.05, latencies
    assert max(latencies) < 0.5, f"look took up to {max(latencies) * 1000:.0f} ms"
    assert len(closings(caplog)) == 50
    await until(lambda: len(game.server.clients) == 1, "the flooders' connections gone")


async def test_a_client_with_one_or_two_malformed_subnegotiations_plays_on(
    game: Game, make_raw: MakeRaw, caplog: pytest.LogCaptureFixture
) -> None:
    buggy = await make_raw()
    with caplog.at_level(logging.INFO):
        await buggy.send(SHORT_NAWS + EMPTY_CHARSET)
        await buggy.expect(b"known? ")
        await buggy.send(b"Bob\r\nyes\r\nsecret1\r\nsecret1\r\n")
        await buggy.expect(b"Exits:")
        # Later, a bad resize and a dropped TTYPE answer: five in all, the limit.
        await buggy.send(SHORT_NAWS + EMPTY_SB + TTYPE_SEND)
        await buggy.send(b"say still here\r\n")
        await buggy.expect(b'You say, "still here"')
    protocol = session_of(game, "Bob").writer.protocol
    assert protocol.mud_writer.malformed.count == 5
    assert not protocol.negotiation_closed
    assert not closings(caplog)


@pytest.mark.game(max_bad_negotiation=0)
async def test_max_bad_negotiation_is_a_setting(
    game: Game, make_raw: MakeRaw, caplog: pytest.LogCaptureFixture
) -> None:
    strict = await make_raw()
    await strict.expect(b"known? ")
    with caplog.at_level(logging.WARNING):
        await strict.send(SHORT_NAWS)
        await until(lambda: closings(caplog), "the connection closed for one")
    assert closings(caplog) == [
        "127.0.0.1 sent 1 malformed telnet subnegotiations, more than the 0 allowed "
        "(the first: NAWS of 1 bytes, not 4); closing"
    ]
    await strict.expect(b"Too many malformed telnet negotiations. Goodbye.\r\n")


async def test_a_flood_of_well_formed_naws_is_cut_off_too(
    game: Game, make_client: MakeClient, make_raw: MakeRaw, caplog: pytest.LogCaptureFixture
) -> None:
    (alice,) = await players(make_client, "Alice")
    hostile = await make_raw()
    await hostile.expect(b"known? ")
    with caplog.at_level(logging.WARNING):
        flooding = asyncio.create_task(flood_until_closed(hostile, NAWS_80x24, CUT_OFF_WITHIN))
        latencies = await look_while(alice, flooding)
        await flooding
    assert max(latencies) < 0.25, f"look took up to {max(latencies) * 1000:.0f} ms"
    (line,) = closings(caplog)
    assert line == (
        "127.0.0.1 sent more telnet negotiation than 8192 bytes at once and 1024 a second; closing"
    )


async def test_resizing_a_window_for_a_while_is_not_a_flood(
    game: Game, make_raw: MakeRaw, caplog: pytest.LogCaptureFixture
) -> None:
    player = await make_raw()
    await player.expect(b"known? ")
    await player.send(b"Bob\r\nyes\r\nsecret1\r\nsecret1\r\n")
    await player.expect(b"Exits:")
    with caplog.at_level(logging.WARNING):
        # A window dragged wider and narrower for a second and a half, 60 NAWS a second.
        for step in range(90):
            cols = 60 + step % 40
            await player.send(IAC + SB + NAWS + bytes([0, cols, 0, 24]) + IAC + SE)
            await asyncio.sleep(1 / 60)
        await player.send(b"say still here\r\n")
        await player.expect(b'You say, "still here"')
    assert session_of(game, "Bob").width == 60 + 89 % 40
    assert not closings(caplog)


async def test_client_to_server_compression_is_refused(
    game: Game, make_client: MakeClient, make_raw: MakeRaw
) -> None:
    """MCCP3: telnetlib3 would inflate all the client sends without a bound (a zip bomb)."""
    (alice,) = await players(make_client, "Alice")
    bomber = await make_raw()
    await bomber.expect(b"known? ")
    await bomber.send(IAC + DO + MCCP3)
    await bomber.expect(IAC + WONT + MCCP3)
    await bomber.send(IAC + SB + MCCP3 + IAC + SE)
    squeeze = zlib.compressobj(9)
    await bomber.send(squeeze.compress(b"x" * 20_000_000) + squeeze.flush(zlib.Z_SYNC_FLUSH))
    started = time.perf_counter()
    await alice.command("look", "Exits:")
    assert time.perf_counter() - started < 0.25
    alices = session_of(game, "Alice").writer.protocol
    (protocol,) = [p for p in game.server.clients if p is not alices]
    assert protocol._mccp3_decompressor is None
    assert protocol.writer is not None and not protocol.writer.mccp3_active
    assert protocol.mud_writer.malformed.first.startswith("MCCP3")


async def test_a_client_saying_much_at_once_when_it_connects_is_read_whole_and_in_order(
    game: Game, make_raw: MakeRaw, caplog: pytest.LogCaptureFixture
) -> None:
    """A read mostly negotiation takes turns (``NegotiationQueue``): nothing lost or reordered."""
    supports = ", ".join(f'"Package{n}.Sub 1"' for n in range(60))
    hello = (
        IAC + WILL + TTYPE + IAC + WILL + NAWS
        + IAC + SB + NAWS + b"\x00\x64\x00\x30" + IAC + SE
        + IAC + SB + GMCP + b'Core.Hello {"client": "Mudlet", "version": "4.17.2"}' + IAC + SE
        + IAC + SB + GMCP + b"Core.Supports.Set [" + supports.encode() + b"]" + IAC + SE
    )  # fmt: skip
    assert len(hello) > 4 * PARSE_PIECE
    client = await make_raw()
    with caplog.at_level(logging.WARNING):
        await client.send(hello + b"Bob\r\nyes\r\nsecret1\r\nsecret1\r\nsay hello\r\n")
        await client.expect(b'You say, "hello"')
    protocol = session_of(game, "Bob").writer.protocol
    assert protocol._heavy  # (it did take turns)
    assert len(protocol.gmcp_from_client["Core.Supports.Set"]) == 60
    assert session_of(game, "Bob").width == 100
    assert not closings(caplog)
