#!/usr/bin/env python3
"""A bare telnetlib3 echo server: the baseline the game's load figures are compared with.

Same telnetlib3 options as the game (line mode, UTF-8, force_binary, 0.5 s
connect_maxwait); its shell echoes each line followed by a prompt and GA,
the least a line-based server can do.  Prints "listening on HOST:PORT".
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import telnetlib3

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.config import Config
from engine.net.telnet import raise_backlog


async def shell(reader: telnetlib3.TelnetReader, writer: telnetlib3.TelnetWriter) -> None:
    writer.write("Welcome to the echo server.\r\n> ")
    writer.send_ga()
    try:
        while True:
            line = await reader.readline()
            if not line:
                break
            writer.write(f"{line.strip()}\r\n> ")
            writer.send_ga()
    finally:
        writer.close()


async def main(port: int) -> None:
    server = await telnetlib3.create_server(
        host="127.0.0.1",
        port=port,
        shell=shell,
        encoding="utf8",
        encoding_errors="replace",
        force_binary=True,
        line_mode=True,
        connect_maxwait=0.5,
        timeout=False,
    )
    # The same accept backlog as the game (asyncio's 100 drops bursts of connects).
    raise_backlog(server, Config().backlog)
    print(f"listening on 127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
    await server.wait_closed()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    asyncio.run(main(parser.parse_args().port))
    sys.exit(0)
