#!/usr/bin/env python3
"""What the content guard costs, and how fast it stops a runaway, measured in one run.

- ping and look commands per second with the guard on (watchdog sections
  and undo log around every command, the default) beside the same game
  with it off (``MUD_CONTENT_BUDGET=0``), 1 and 50 clients, rounds
  alternating between the two servers so that drift hits both alike; and
  the server's CPU time per command (from /proc), which the load generator
  (one Python process, often the bottleneck) cannot blur;
- the time from a stall starting to the interrupt: a command that spins
  (``while True: pass``) and one that sleeps (``time.sleep(30)``) under a
  0.5 s and a 1.0 s budget, timed from sending the command to the
  ``Stopped`` answer, minus the budget and the ping round trip.

Usage: python scripts/bench_guard.py [--seconds 3] [--rounds 5] [--stalls 8]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_load import PROMPT, Conn, Server, game_login, name_for, throughput
from bench_reload import machine, print_table

from engine.paths import CODE_ROOT as PROJECT_ROOT

RUNAWAY = '''
import time

from engine.api import Command, Context


class CmdSpin(Command):
    """Spin until stopped."""

    key = "spin"

    def run(self, ctx: Context) -> None:
        while True: pass


class CmdNap(Command):
    """Sleep on the event loop until stopped."""

    key = "nap"

    def run(self, ctx: Context) -> None:
        time.sleep(30)
'''


def start(budget: float) -> Server:
    workdir = Path(tempfile.mkdtemp(prefix="bench-guard-"))
    shutil.copytree(
        PROJECT_ROOT / "content", workdir / "content", ignore=shutil.ignore_patterns("__pycache__")
    )
    (workdir / "content" / "commands" / "runaway.py").write_text(RUNAWAY, encoding="utf-8")
    args = ["-m", "engine", "--port", "0", "--no-reload"]
    args += ["--content-dir", str(workdir / "content"), "--db-path", str(workdir / "db.sqlite3")]
    env = {
        "MUD_INPUT_RATE": "1000000",
        "MUD_INPUT_BURST": "1000000",
        "MUD_CONTENT_BUDGET": str(budget),
        "MUD_LOG_LEVEL": "INFO",
    }
    return Server.start(args, env=env, workdir=workdir)


async def cost_section(seconds: float, rounds: int) -> list[tuple[str, ...]]:
    on, off = start(1.0), start(0)
    rows: list[tuple[str, ...]] = []
    try:
        conns = {
            "on": [await game_login(on.port, name_for(i)) for i in range(50)],
            "off": [await game_login(off.port, name_for(i)) for i in range(50)],
        }
        for clients in (1, 50):
            for command in ("ping", "look"):
                rates: dict[str, list[float]] = {"on": [], "off": []}
                cpu: dict[str, list[float]] = {"on": [], "off": []}
                for _ in range(rounds):
                    for which, server in (("off", off), ("on", on)):
                        before = cpu_seconds(server)
                        started = time.perf_counter()
                        rate = (await throughput(conns[which][:clients], command, seconds)).rate
                        commands = rate * (time.perf_counter() - started)
                        rates[which].append(rate)
                        cpu[which].append((cpu_seconds(server) - before) / commands * 1e6)
                # Each round pairs an off run with the on run right after it;
                # the median of the paired ratios resists the machine's drift.
                ratios = [a / b for a, b in zip(rates["on"], rates["off"], strict=True)]
                cpu_off, cpu_on = statistics.median(cpu["off"]), statistics.median(cpu["on"])
                rows.append(
                    (
                        command,
                        str(clients),
                        f"{statistics.median(rates['off']):,.0f}",
                        f"{statistics.median(rates['on']):,.0f}",
                        f"{statistics.median(ratios):.1%}",
                        f"{min(ratios):.1%}..{max(ratios):.1%}",
                        f"{cpu_off:.1f} / {cpu_on:.1f}",
                        f"{cpu_off / cpu_on:.1%}",
                    )
                )
        for conn in conns["on"] + conns["off"]:
            conn.close()
    finally:
        on.stop()
        off.stop()
    return rows


def cpu_seconds(server: Server) -> float:
    """User and system CPU time the server process has used so far."""
    fields = Path(f"/proc/{server.game_pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def round_trip(conn: Conn, line: str, marker: bytes) -> float:
    started = time.perf_counter()
    conn.send(line)
    await conn.until(marker)
    return time.perf_counter() - started


async def stall_section(stalls: int) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for budget in (0.5, 1.0):
        server = start(budget)
        try:
            conn = await game_login(server.port, "Timer")
            ping = statistics.median([await round_trip(conn, "ping", PROMPT) for _ in range(50)])
            for command, what in (("spin", "while True: pass"), ("nap", "time.sleep(30)")):
                overshoot = []
                for _ in range(stalls):
                    took = await round_trip(conn, command, b"Stopped ")
                    await conn.until(PROMPT)
                    overshoot.append((took - budget - ping) * 1000)
                rows.append(
                    (
                        what,
                        f"{budget:.1f} s",
                        f"{statistics.median(overshoot):.1f} ms",
                        f"{max(overshoot):.1f} ms",
                        f"{ping * 1000:.2f} ms",
                    )
                )
            conn.close()
        finally:
            server.stop()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--stalls", type=int, default=8)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print_table(
        f"Cost of the content guard (median of {args.rounds} alternating rounds of "
        f"{args.seconds:.0f} s; goal: 95 % or more)",
        (
            "command",
            "clients",
            "off cmd/s",
            "on cmd/s",
            "on/off",
            "range",
            "server CPU us/cmd off/on",
            "off/on CPU",
        ),
        asyncio.run(cost_section(args.seconds, args.rounds)),
    )
    print_table(
        f"From a stall starting to its interrupt, beyond the budget ({args.stalls} stalls each; "
        "goal: 50 ms or less)",
        ("content", "budget", "p50 past budget", "max past budget", "ping rtt (subtracted)"),
        asyncio.run(stall_section(args.stalls)),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
