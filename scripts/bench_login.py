#!/usr/bin/env python3
"""How many passwords an attacker can check against one account, alone and in parallel.

A game server (default back-off settings) with one account; wrong
passwords are sent as fast as the server answers, by 1 connection and
then by 50 in parallel (from a second loopback address, so that the
account's owner address stays apart), for the same time each.  The goal:
the same number of checks either way.  Counted from the server's log of
wrong passwords.

Usage: python scripts/bench_login.py [--seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_guard import start
from bench_load import Conn, game_login
from bench_reload import machine, print_table


async def guesser(port: int, until: float) -> None:
    """Reconnect and send wrong passwords for Pat until ``until``."""
    while time.monotonic() < until:
        try:
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, local_addr=("127.0.0.2", 0)
            )
        except OSError:
            await asyncio.sleep(0.1)
            continue
        conn = Conn(reader, writer)
        try:
            await conn.until(b"known? ", timeout=max(0.1, until - time.monotonic()))
            conn.send("Pat")
            for _ in range(3):
                await conn.until(b"Password: ", timeout=max(0.1, until - time.monotonic()))
                conn.send("not the password")
        except (TimeoutError, ConnectionError):
            pass
        finally:
            conn.close()


def wrong_count(log: Path) -> int:
    return log.read_text(errors="replace").count("wrong password for Pat")


async def run(seconds: float) -> list[tuple[str, ...]]:
    rows = []
    for parallel in (1, 50):
        server = start(1.0)  # a fresh server each time: no back-off carried over
        try:
            owner = await game_login(server.port, "Pat")
            owner.close()
            until = time.monotonic() + seconds
            await asyncio.gather(*(guesser(server.port, until) for _ in range(parallel)))
            await asyncio.sleep(1)
            checks = wrong_count(server.workdir / "server.log")
            rows.append((str(parallel), str(checks), f"{checks * 60 / seconds:.1f}"))
        finally:
            server.stop()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print_table(
        f"Passwords checked against one account in {args.seconds:.0f} s "
        "(default back-off; goal: the same with 50 connections as with 1)",
        ("connections", "checks", "per minute"),
        asyncio.run(run(args.seconds)),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
