#!/usr/bin/env python3
"""Load benchmarks: the game beside a bare telnetlib3 echo server, measured in one run.

- commands per second and p50/p99 latency for a trivial command (``ping``)
  and for ``look``, with 1, 10, 50 and 200 clients all standing in one room,
  each sending its next command as soon as the previous answer arrives;
  the echo server answering the same lines is the baseline;
- 50 simultaneous logins: how long until all are in the game, and the p99
  latency of a player already in the game meanwhile (beside its p99 idle);
- memory per idle connection at 1,000 and 5,000 connections: the game's telnet
  connections, its websockets (the web page's subprotocol, permessage-deflate
  on, each in a game of its own) and the echo server's.

Both servers run as subprocesses on 127.0.0.1; the load comes from raw
sockets in this process (no telnet negotiation, so each connection starts
after telnetlib3's 0.5 s connect_maxwait).  The game's per-connection input
rate limit is lifted for the run: it would measure the limiter, not the
engine.

Usage: python scripts/bench_load.py [--seconds 3] [--rounds 5] [--clients 1,10,50,200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_reload import machine, p99, print_table
from websockets.asyncio.client import ClientConnection, connect

from engine.paths import CODE_ROOT as PROJECT_ROOT

GA = b"\xff\xf9"
PROMPT = b"> " + GA


@dataclass
class Server:
    """A server subprocess and how to read its memory."""

    process: subprocess.Popen[bytes]
    port: int
    workdir: Path

    @classmethod
    def start(
        cls, args: list[str], env: dict[str, str] | None = None, workdir: Path | None = None
    ) -> Server:
        workdir = workdir or Path(tempfile.mkdtemp(prefix="bench-load-"))
        log = workdir / "server.log"
        with open(log, "wb") as handle:
            process = subprocess.Popen(
                [sys.executable, *args],
                stdout=handle,
                stderr=subprocess.STDOUT,
                cwd=PROJECT_ROOT,
                env={**os.environ, **(env or {}), "PYTHONPATH": str(PROJECT_ROOT)},
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            match = re.search(r"listening on [\d.]+:(\d+)", log.read_text(errors="replace"))
            if match:
                return cls(process, int(match.group(1)), workdir)
            if process.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"server did not start: {log.read_text(errors='replace')[-2000:]}")

    @property
    def game_pid(self) -> int:
        """The process that runs the game: the supervisor's worker (or the server itself)."""
        pid = self.process.pid
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            children = []
        return int(children[0]) if children else pid

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.game_pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def log(self) -> str:
        return (self.workdir / "server.log").read_text(errors="replace")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        shutil.rmtree(self.workdir, ignore_errors=True)


def web_port_of(server: Server) -> int:
    """The game's web port, from its log line (``web client at http://...:4001/``)."""
    match = re.search(r"web client at http://[^ ]*:(\d+)/", server.log())
    if match is None:
        raise RuntimeError(f"the game serves no web client: {server.log()[-2000:]}")
    return int(match.group(1))


def start_game() -> Server:
    workdir = Path(tempfile.mkdtemp(prefix="bench-game-"))
    shutil.copytree(
        PROJECT_ROOT / "content", workdir / "content", ignore=shutil.ignore_patterns("__pycache__")
    )
    server = Server.start(
        [
            "-m",
            "engine",
            "--port",
            "0",
            "--no-reload",
            "--content-dir",
            str(workdir / "content"),
            "--db-path",
            str(workdir / "db.sqlite3"),
        ],
        env={
            "MUD_INPUT_RATE": "1000000",
            "MUD_INPUT_BURST": "1000000",
            "MUD_LOG_LEVEL": "INFO",
            # Thousands of idle connections wait at the login prompt: none must give way.
            "MUD_MAX_PENDING": "1000000",
        },
        workdir=workdir,
    )
    return server


def start_echo() -> Server:
    return Server.start([str(PROJECT_ROOT / "scripts" / "echo_server.py"), "--port", "0"])


class Conn:
    """A raw socket speaking lines; telnet commands from the server are just bytes to skip."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.buffer = b""

    @classmethod
    async def open(cls, port: int) -> Conn:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def until(self, marker: bytes, timeout: float = 30) -> bytes:
        deadline = time.monotonic() + timeout
        while marker not in self.buffer:
            chunk = await asyncio.wait_for(self.reader.read(65536), deadline - time.monotonic())
            if not chunk:
                raise ConnectionError(f"closed while waiting for {marker!r}")
            self.buffer += self.received(chunk)
        index = self.buffer.index(marker) + len(marker)
        seen, self.buffer = self.buffer[:index], self.buffer[index:]
        return seen

    def received(self, data: bytes) -> bytes:
        """What of ``data`` to keep as text (a subclass may answer telnet commands first)."""
        return data

    def send(self, line: str) -> None:
        self.writer.write(line.encode() + b"\r\n")

    def close(self) -> None:
        self.writer.close()


def name_for(number: int) -> str:
    letters = ""
    number += 26 * 26
    while number:
        number, digit = divmod(number, 26)
        letters = chr(ord("a") + digit) + letters
    return "Bot" + letters


async def game_login(port: int, name: str) -> Conn:
    conn = await Conn.open(port)
    await conn.until(b"known? ")
    conn.send(name)
    await conn.until(b"(yes/no) ")
    conn.send("yes")
    await conn.until(b"characters): ")
    conn.send("benchpass1")
    await conn.until(b"again: ")
    conn.send("benchpass1")
    await conn.until(PROMPT)
    return conn


async def echo_login(port: int, _name: str) -> Conn:
    conn = await Conn.open(port)
    await conn.until(PROMPT)
    return conn


async def closed_loop(
    conn: Conn, command: str, done: Callable[[], bool], latencies: list[float]
) -> int:
    """Send ``command`` after each answer until ``done()``; record each latency."""
    count = 0
    while not done():
        started = time.perf_counter()
        conn.send(command)
        await conn.until(PROMPT)
        latencies.append((time.perf_counter() - started) * 1000)
        count += 1
    return count


@dataclass
class Measured:
    """One closed-loop run: commands per second and latency percentiles (ms)."""

    rate: float
    p50: float
    p99: float


def median_of(runs: list[Measured]) -> Measured:
    return Measured(
        statistics.median(r.rate for r in runs),
        statistics.median(r.p50 for r in runs),
        statistics.median(r.p99 for r in runs),
    )


async def throughput(conns: list[Conn], command: str, seconds: float) -> Measured:
    latencies: list[float] = []
    started = time.perf_counter()
    until = started + seconds
    counts = await asyncio.gather(
        *(closed_loop(c, command, lambda: time.perf_counter() > until, latencies) for c in conns)
    )
    elapsed = time.perf_counter() - started
    return Measured(sum(counts) / elapsed, statistics.median(latencies), p99(latencies))


async def load_section(
    game: Server, echo: Server, sizes: list[int], seconds: float, rounds: int
) -> list[tuple[str, ...]]:
    """Echo, ping and look measured in turn, ``rounds`` times: medians of the rounds.

    The machine's speed drifts from one second to the next (a shared VM);
    taking echo, ping and look in turns, each ratio within its own round,
    keeps the drift out of the ratios.
    """
    rows: list[tuple[str, ...]] = []
    game_conns: list[Conn] = []
    echo_conns: list[Conn] = []
    for size in sizes:
        fresh = range(len(game_conns), size)
        game_conns += await asyncio.gather(*(game_login(game.port, name_for(i)) for i in fresh))
        echo_conns += await asyncio.gather(*(echo_login(echo.port, "") for _ in fresh))
        runs: list[tuple[Measured, Measured, Measured]] = []
        for _ in range(rounds):
            echo_run = await throughput(echo_conns[:size], "ping", seconds)
            ping_run = await throughput(game_conns[:size], "ping", seconds)
            look_run = await throughput(game_conns[:size], "look", seconds)
            runs.append((echo_run, ping_run, look_run))
        echo_m, ping_m, look_m = (median_of([run[i] for run in runs]) for i in range(3))
        rows.append(
            (
                str(size),
                f"{echo_m.rate:,.0f}",
                f"{echo_m.p50:.2f}/{echo_m.p99:.2f}",
                f"{ping_m.rate:,.0f}",
                f"{ping_m.p50:.2f}/{ping_m.p99:.2f}",
                f"{statistics.median(p.rate / e.rate for e, p, _ in runs):.0%}",
                f"{ping_m.p99 / echo_m.p99:.1f}x",
                f"{look_m.rate:,.0f}",
                f"{look_m.p50:.2f}/{look_m.p99:.2f}",
                f"{statistics.median(lk.rate / e.rate for e, _, lk in runs):.0%}",
            )
        )
    for conn in game_conns + echo_conns:
        conn.close()
    return rows


async def login_section(game: Server, logins: int) -> list[tuple[str, ...]]:
    player = await game_login(game.port, "Watcher")
    idle: list[float] = []
    idle_until = time.perf_counter() + 2
    await closed_loop(player, "ping", lambda: time.perf_counter() > idle_until, idle)
    during: list[float] = []
    finished = asyncio.Event()
    # Stopped by a flag, not by cancel(): in 3.11 wait_for can swallow a cancel.
    watching = asyncio.create_task(closed_loop(player, "ping", finished.is_set, during))
    started = time.perf_counter()
    conns = await asyncio.gather(
        *(game_login(game.port, name_for(5000 + i)) for i in range(logins))
    )
    elapsed = time.perf_counter() - started
    finished.set()
    await watching
    for conn in [*conns, player]:
        conn.close()
    return [
        (f"{logins} simultaneous logins: all in the game after", f"{elapsed:.2f} s", ""),
        ("playing client p99 while idle (baseline)", f"{p99(idle):.1f} ms", f"{len(idle)} cmds"),
        ("playing client p99 during the logins", f"{p99(during):.1f} ms", f"{len(during)} cmds"),
    ]


async def open_idle(port: int, count: int, marker: bytes) -> list[Conn]:
    gate = asyncio.Semaphore(500)

    async def one() -> Conn:
        async with gate:
            conn = await Conn.open(port)
            await conn.until(marker, timeout=120)
            return conn

    return list(await asyncio.gather(*(one() for _ in range(count))))


async def open_idle_websockets(port: int, count: int) -> list[ClientConnection]:
    """Websockets as the web page opens them, each at the login prompt."""
    gate = asyncio.Semaphore(500)

    async def one() -> ClientConnection:
        async with gate:
            ws = await connect(
                f"ws://127.0.0.1:{port}/ws",
                subprotocols=["gmcp.mudstandards.org"],  # type: ignore[list-item]
                ping_interval=None,
                open_timeout=120,
            )
            seen = b""
            while b"known? " not in seen:
                message = await asyncio.wait_for(ws.recv(), 120)
                if isinstance(message, bytes):
                    seen += message
            return ws

    return list(await asyncio.gather(*(one() for _ in range(count))))


async def memory_section(
    game: Server, web_game: Server, echo: Server, counts: list[int]
) -> list[tuple[str, ...]]:
    rows = []
    for label, server in (("game, telnet", game), ("game, websocket", web_game), ("echo", echo)):
        await asyncio.sleep(1)
        base = server.rss_kib()
        conns: list[Conn] = []
        sockets: list[ClientConnection] = []
        for count in counts:
            if label == "game, websocket":
                sockets += await open_idle_websockets(web_port_of(server), count - len(sockets))
            else:
                marker = PROMPT if label == "echo" else b"known? "
                conns += await open_idle(server.port, count - len(conns), marker)
            await asyncio.sleep(1)
            per = (server.rss_kib() - base) / count
            rows.append((f"{label}: {count:,} idle connections", f"{per:.1f} KB each", ""))
        for conn in conns:
            conn.close()
        await asyncio.gather(*(ws.close() for ws in sockets))
        await asyncio.sleep(1)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--clients", default="1,10,50,200")
    parser.add_argument("--rounds", type=int, default=5, help="echo/ping/look turns per size")
    parser.add_argument("--logins", type=int, default=50)
    parser.add_argument("--idle", default="1000,5000")
    args = parser.parse_args()
    sizes = [int(n) for n in args.clients.split(",")]
    idle = [int(n) for n in args.idle.split(",")]
    print(f"machine: {machine()}")
    game, echo = start_game(), start_echo()
    try:
        rows = asyncio.run(load_section(game, echo, sizes, args.seconds, args.rounds))
        print_table(
            f"Closed-loop commands, all clients in one room (median of {args.rounds} rounds of "
            f"{args.seconds:.0f} s each; latency ms p50/p99)",
            (
                "clients",
                "echo cmd/s",
                "echo lat",
                "ping cmd/s",
                "ping lat",
                "ping/echo",
                "p99 vs echo",
                "look cmd/s",
                "look lat",
                "look/echo",
            ),
            rows,
        )
        print_table(
            "Logins while a player plays",
            ("measure", "value", "note"),
            asyncio.run(login_section(game, args.logins)),
        )
        # The websockets' game is a new one: memory the telnet connections freed would
        # otherwise be used again and hide what websockets cost.
        web_game = start_game()
        try:
            print_table(
                "Memory per idle connection (server RSS growth / connections)",
                ("measure", "value", ""),
                asyncio.run(memory_section(game, web_game, echo, idle)),
            )
        finally:
            web_game.stop()
    finally:
        game.stop()
        echo.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
