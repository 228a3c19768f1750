#!/usr/bin/env python3
"""How long a bystander waits while content holds the game in engine calls, and after.

Not a test (pytest does not collect it): the figures in docs/content-safety.md
("The budget inside engine calls").  A real server (``python -m engine``, with
the content budget at its default, 1.0 s) runs the code this file lies in;
run it from an older checkout to measure that one.  Three players log in
(the first, an admin, hears of reloads); one
types ``ping`` again and again, the bystander, while another runs:

- ``shuffle``: a pebble moved between two places, three million times
  (engine calls that change nothing new, so only the budget stops it);
- a save of a module whose body calls ``time.sleep(5)``;
- ``mass N``: N calls of ``world.create`` in a loop (the issue's 100,000 and
  400,000; last, as what a run keeps makes later runs slower).

For each: when the player's answer came, and the bystander's longest wait
for a ``Pong``.  Then the server process's resident memory after each of
ten more ``mass 100000`` commands.

Usage: python tests/engine/measure_budget.py [--budget 1.0] [--runs 3] [--max-changes N]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from engine.paths import CODE_ROOT
from engine.testing import MudClient, ServerProcess

COMMANDS = '''
from engine.api import Command, Context


class CmdMass(Command):
    """mass N: make N pebbles here, one world.create at a time."""

    key = "mass"

    def run(self, ctx: Context) -> None:
        n = int(ctx.args or "100000")
        for i in range(n):
            ctx.world.create("thing", "pebble", location=ctx.here)
        ctx.msg(f"Made {n} pebbles.")


class CmdShuffle(Command):
    """Move a pebble between the room and the player, three million times."""

    key = "shuffle"

    def run(self, ctx: Context) -> None:
        pebble = ctx.world.create("thing", "pebble", location=ctx.here)
        for i in range(3_000_000):
            pebble.location = ctx.caller if i % 2 else ctx.here
        ctx.msg("Shuffled.")
'''

SLEEPY = """
import time

from engine.api import Command, Context

time.sleep(5)


class CmdSleepy(Command):
    key = "sleepy"

    def run(self, ctx: Context) -> None:
        ctx.msg("Sleepy.")
"""

ANSWER = re.compile(r"(Made \d+ pebbles|Shuffled|That did not work|changed too much)[^\n]*\n")


class Bystander:
    """``ping`` after ``ping``; the longest wait for a ``Pong`` since the last lap."""

    def __init__(self, client: MudClient) -> None:
        self.client = client
        self.longest = 0.0
        self.count = 0
        self.stopping = False
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while not self.stopping:
            started = time.monotonic()
            await self.client.command("ping", "Pong.", timeout=60)
            self.longest = max(self.longest, time.monotonic() - started)
            self.count += 1
            await asyncio.sleep(0.005)

    async def lap(self) -> float:
        count = self.count
        while self.count == count:
            await asyncio.sleep(0.005)
        longest, self.longest = self.longest, 0.0
        return longest


def worker_rss_mib(server: ServerProcess) -> float:
    """Resident memory of the engine's worker (the supervisor's child), in MiB."""
    assert server.process is not None
    pid = server.process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    for line in Path(f"/proc/{children[0]}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budget", default="1.0")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--max-changes", help="the cap on changes (0: none; default: the game's)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="measure-budget-"))
    shutil.copytree(
        CODE_ROOT / "content", workdir / "content", ignore=shutil.ignore_patterns("__pycache__")
    )
    (workdir / "content" / "commands" / "heavy.py").write_text(COMMANDS, encoding="utf-8")
    env = {"MUD_CONTENT_BUDGET": args.budget, "MUD_INPUT_RATE": "1000", "MUD_INPUT_BURST": "1000"}
    if args.max_changes is not None:
        env["MUD_MAX_CHANGES"] = args.max_changes
    server = ServerProcess(workdir, env=env)
    server.start()
    cap = f"max_changes {args.max_changes}" if args.max_changes is not None else "default cap"
    print(f"code: {CODE_ROOT}; budget {args.budget} s, {cap}; {args.runs} runs, median (max)")
    try:
        builder = await MudClient.connect(server.port)
        await builder.create_account("Alice", "secret1")  # the admin: she hears of reloads
        other = await MudClient.connect(server.port)
        await other.create_account("Bob", "secret1")
        player = await MudClient.connect(server.port)
        await player.create_account("Carol", "secret1")
        bystander = Bystander(other)

        async def timed(
            what: str, start: Callable[[int], Awaitable[None]], done: Callable[[], Awaitable[str]]
        ) -> None:
            answers, waits, last = [], [], ""
            for run in range(args.runs):
                await bystander.lap()
                started = time.monotonic()
                await start(run)
                last = await done()
                answers.append(time.monotonic() - started)
                await asyncio.sleep(0.3)
                waits.append(await bystander.lap())
            print(
                f"{what:16} answer {show(answers)} s, bystander waited {show(waits)} s: "
                f"{last.strip()[:110]}"
            )

        async def shuffle(run: int) -> None:
            player.send("shuffle")

        async def shuffled() -> str:
            return await player.expect(ANSWER, timeout=60)

        await timed("shuffle", shuffle, shuffled)

        path = workdir / "content" / "commands" / "sleepy.py"

        async def save(run: int) -> None:
            path.write_text(SLEEPY + f"# save {run}\n", encoding="utf-8")

        async def reported() -> str:
            return await builder.expect(re.compile(r"\[reload\][^\n]*\n"), timeout=60)

        await timed("sleep at import", save, reported)

        for n in (100_000, 400_000):

            async def send(run: int, n: int = n) -> None:
                player.send(f"mass {n}")

            async def answer() -> str:
                return await player.expect(ANSWER, timeout=60)

            await timed(f"mass {n}", send, answer)

        bystander.stopping = True
        await bystander.task
        await asyncio.sleep(1.0)
        sizes = [worker_rss_mib(server)]
        for _ in range(10):
            await player.command("mass 100000", ANSWER, timeout=60)
            await asyncio.sleep(0.2)
            sizes.append(worker_rss_mib(server))
        print("worker RSS (MiB), then after each of ten 'mass 100000':")
        print("  " + " ".join(f"{size:.0f}" for size in sizes))
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def show(times: list[float]) -> str:
    return f"{statistics.median(times):.2f} ({max(times):.2f})"


if __name__ == "__main__":
    asyncio.run(main())
