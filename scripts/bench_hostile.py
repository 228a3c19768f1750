#!/usr/bin/env python3
"""Hostile negotiation benchmark: a player's ``look`` while 50 clients flood telnet negotiation.

One game subprocess; in this process a player (logged in, standing in the
starting room) sends ``look`` after each answer, and its latency is measured
side by side in one run:

- with no one else connected (the baseline);
- while 50 clients send malformed subnegotiations without end (short NAWS,
  empty CHARSET requests, TTYPE that is not IS), as fast as the server reads;
- while 50 clients send well-formed NAWS without end (a window "resized"
  thousands of times a second).

Each flood lasts ``--seconds``; the table gives the player's look latency
(p50, p99 and the slowest, ms) over that time, how many flooders the server
had cut off by its end, when the last of them was cut off (from the start of
the flood), and how many lines the server logged about them.  The player's
input rate limit is lifted: it would measure the limiter.

Usage: python scripts/bench_hostile.py [--seconds 10] [--flooders 50]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_load import Conn, Server, closed_loop, game_login, start_game
from bench_reload import machine, p99, print_table

IAC, SB, SE = b"\xff", b"\xfa", b"\xf0"
NAWS, CHARSET, TTYPE = b"\x1f", b"\x2a", b"\x18"

#: Three subnegotiations telnetlib3 fails on: a NAWS of one byte, a CHARSET
#: REQUEST naming no character set, a TTYPE that is not IS.
MALFORMED = (
    IAC + SB + NAWS + b"\x00" + IAC + SE
    + IAC + SB + CHARSET + b"\x01" + IAC + SE
    + IAC + SB + TTYPE + b"\x07" + IAC + SE
)  # fmt: skip
#: A well-formed NAWS: 80 columns, 24 rows.
VALID_NAWS = IAC + SB + NAWS + b"\x00\x50\x00\x18" + IAC + SE

FLOODS = {
    "malformed NAWS/CHARSET/TTYPE": MALFORMED,
    "well-formed NAWS": VALID_NAWS,
}


class Flooder:
    """A raw connection sending one pattern over and over until the server closes it."""

    def __init__(self, port: int, pattern: bytes) -> None:
        self.port = port
        self.chunk = pattern * (65536 // len(pattern))
        self.cut_off: float | None = None  # seconds from the flood's start

    async def run(self, started: float, stop: asyncio.Event) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)

        async def drain_input() -> None:
            with contextlib.suppress(ConnectionError):
                while await reader.read(65536):
                    pass
            if self.cut_off is None:
                self.cut_off = time.perf_counter() - started

        reading = asyncio.create_task(drain_input())
        try:
            with contextlib.suppress(ConnectionError):
                while not stop.is_set() and not reading.done():
                    writer.write(self.chunk)
                    await writer.drain()
            await asyncio.wait({reading}, timeout=0.5)
        finally:
            reading.cancel()
            writer.close()


async def look_latencies(conn: Conn, seconds: float) -> list[float]:
    latencies: list[float] = []
    until = time.perf_counter() + seconds
    await closed_loop(conn, "look", lambda: time.perf_counter() > until, latencies)
    return latencies


def log_lines(game: Server) -> list[str]:
    """The server's warnings and errors so far."""
    text = (game.workdir / "server.log").read_text(errors="replace")
    return [line for line in text.splitlines() if " WARNING " in line or " ERROR " in line]


async def flood_section(game: Server, seconds: float, flooders: int) -> list[tuple[str, ...]]:
    port = game.port
    player = await game_login(port, "Watcher")
    await look_latencies(player, 1.0)  # warm up
    rows: list[tuple[str, ...]] = []
    quiet = await look_latencies(player, seconds)
    rows.append(
        (
            "none",
            f"{statistics.median(quiet):.2f}",
            f"{p99(quiet):.2f}",
            f"{max(quiet):.1f}",
            str(len(quiet)),
            "",
            "",
            "",
        )
    )
    for label, pattern in FLOODS.items():
        logged = len(log_lines(game))
        stop = asyncio.Event()
        started = time.perf_counter()
        crowd = [Flooder(port, pattern) for _ in range(flooders)]
        running = [asyncio.create_task(f.run(started, stop)) for f in crowd]
        during = await look_latencies(player, seconds)
        stop.set()
        await asyncio.gather(*running, return_exceptions=True)
        cut = [f.cut_off for f in crowd if f.cut_off is not None and f.cut_off <= seconds]
        rows.append(
            (
                f"{flooders} x {label}",
                f"{statistics.median(during):.2f}",
                f"{p99(during):.2f}",
                f"{max(during):.1f}",
                str(len(during)),
                f"{len(cut)}/{flooders}",
                f"{max(cut):.2f} s" if cut else "-",
                str(len(log_lines(game)) - logged),
            )
        )
        await asyncio.sleep(1.0)  # the server forgets the flood before the next
    player.close()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--flooders", type=int, default=50)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    game = start_game()
    try:
        rows = asyncio.run(flood_section(game, args.seconds, args.flooders))
    finally:
        game.stop()
    print_table(
        f"A player's look while clients flood negotiation ({args.seconds:.0f} s each; ms)",
        ("flooders", "look p50", "p99", "max", "looks", "cut off", "last cut off", "log lines"),
        rows,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
