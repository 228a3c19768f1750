"""Malformed telnet input is cheap: checked before telnetlib3, dropped, counted, logged once.

A client that never logs in floods the server with short NAWS and empty
CHARSET requests (IAC SB NAWS 0 IAC SE, IAC SB CHARSET REQUEST IAC SE)
while a player plays: her look stays fast, and the log stays small.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import TYPE_CHECKING

import pytest
from game_helpers import players, until

from engine.app import Game
from engine.net.telnet import subnegotiation_problem

if TYPE_CHECKING:
    from conftest import MakeClient, MakeRaw

IAC, SB, SE = b"\xff", b"\xfa", b"\xf0"
NAWS, CHARSET, TTYPE = b"\x1f", b"\x2a", b"\x18"
REQUEST, ACCEPTED, IS = b"\x01", b"\x02", b"\x00"

SHORT_NAWS = IAC + SB + NAWS + b"\x00" + IAC + SE
EMPTY_CHARSET = IAC + SB + CHARSET + REQUEST + IAC + SE


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
    ],
)
def test_well_formed_subnegotiations_pass(payload: bytes) -> None:
    assert subnegotiation_problem(sb(payload)) is None


async def test_a_flood_of_malformed_subnegotiations_costs_others_little_and_logs_once(
    game: Game, make_client: MakeClient, make_raw: MakeRaw, caplog: pytest.LogCaptureFixture
) -> None:
    (alice,) = await players(make_client, "Alice")
    hostile = await make_raw()
    await hostile.expect(b"known? ")
    flood = (SHORT_NAWS + EMPTY_CHARSET) * (66_000 // (len(SHORT_NAWS) + len(EMPTY_CHARSET)))
    latencies: list[float] = []
    with caplog.at_level(logging.INFO):
        sending = asyncio.create_task(hostile.send(flood * 5))
        while not sending.done() or len(latencies) < 20:
            started = time.perf_counter()
            await alice.command("look", "Exits:")
            await alice.expect("> ")
            latencies.append(time.perf_counter() - started)
        await sending
        await until(lambda: _bad(game) >= 5 * 5_000, "the server read the whole flood", 10)
    assert max(latencies) < 0.1, f"look took up to {max(latencies) * 1000:.0f} ms"
    records = [r for r in caplog.records if r.name.startswith(("telnetlib3", "engine.net.telnet"))]
    assert len(records) <= 35, [r.getMessage() for r in records[:50]]
    assert not [r for r in records if r.exc_info or "Traceback" in r.getMessage()]
    assert sum("malformed subnegotiation" in r.getMessage() for r in records) == 1
    # The hostile connection still gets its name prompt answered.
    await hostile.send(b"Mallory\r\n")
    await hostile.expect(b"Create a new character?")


def _bad(game: Game) -> int:
    return sum(
        getattr(p.writer, "bad_subnegotiations", 0)
        for p in game.server.clients
        if getattr(p, "writer", None) is not None
    )
