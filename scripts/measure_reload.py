#!/usr/bin/env python3
"""Measure save -> new behaviour seen by a connected telnet client.

Starts a real server (subprocess, copy of content/), logs a player in, then
N times: rewrites ``say``'s output in commands/general.py with a new marker,
and, from the moment the file is closed, sends ``say`` in a closed loop
(next command as soon as the previous answer arrives) until an answer
carries the marker.  Loopback round trips take well under a millisecond, so
the figure is the time until the running game answers with the new code.

Usage: python scripts/measure_reload.py [--saves 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.testing import MudClient, ServerProcess

SAY = "ctx.msg(f'You say, \"{ctx.args}\"')"


async def measure(server: ServerProcess, saves: int) -> list[float]:
    general = server.content_dir / "commands" / "general.py"
    original = general.read_text()
    client = await MudClient.connect(server.port)
    await client.create_account("Meter", "meterpass")
    timings: list[float] = []
    for number in range(1, saves + 1):
        marker = f"v{number}v"
        text = original.replace(SAY, f"ctx.msg(f'{marker} {{ctx.args}}')")
        await asyncio.sleep(0.2)  # let the previous save settle into its own event
        started = time.perf_counter()
        general.write_text(text)
        while True:
            client.send("say x")
            answer = await client.expect("> ", timeout=5)
            if marker in answer:
                timings.append((time.perf_counter() - started) * 1000)
                break
    general.write_text(original)
    client.close()
    return timings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--saves", type=int, default=20)
    args = parser.parse_args()
    server = ServerProcess.with_copied_content()
    try:
        server.start()
        timings = asyncio.run(measure(server, args.saves))
    finally:
        server.cleanup()
    print(
        f"machine: {platform.node()}, {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )
    print(f"save -> new behaviour seen by a connected client, {len(timings)} saves:")
    print(f"  median {statistics.median(timings):.1f} ms")
    print(f"  max    {max(timings):.1f} ms")
    print(f"  min    {min(timings):.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
