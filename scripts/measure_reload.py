#!/usr/bin/env python3
"""Measure save -> new behaviour seen by a connected telnet client.

Starts a real server (subprocess, copy of content/), logs a player in, then
N times: rewrites ``say``'s output in commands/general.py with a new marker,
and, from the moment the file is closed, sends ``say`` in a closed loop
(next command as soon as the previous answer arrives) until an answer
carries the marker.  Loopback round trips take well under a millisecond, so
the figure is the time until the running game answers with the new code.
``make bench`` measures the same beside its baselines; this is the quick check.

Usage: python scripts/measure_reload.py [--saves 20]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_reload import SAY, UNTHROTTLED, machine, save_to_seen

from engine.testing import ServerProcess


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--saves", type=int, default=20)
    args = parser.parse_args()
    server = ServerProcess.with_copied_content(env=UNTHROTTLED)
    try:
        server.start()
        timings = asyncio.run(
            save_to_seen(
                server,
                args.saves,
                server.content_dir / "commands" / "general.py",
                lambda text, marker: text.replace(SAY, f"ctx.msg(f'{marker} {{ctx.args}}')"),
                "say x",
                "Meter",
            )
        )
    finally:
        server.cleanup()
    print(f"machine: {machine()}")
    print(f"save -> new behaviour seen by a connected client, {len(timings)} saves:")
    print(f"  median {statistics.median(timings):.1f} ms")
    print(f"  max    {max(timings):.1f} ms")
    print(f"  min    {min(timings):.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
