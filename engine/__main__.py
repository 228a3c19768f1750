"""``python -m engine``: serve the game (see ``python -m engine --help``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys

from engine.app import Game
from engine.config import Config
from engine.startup import StartupError


def main(argv: list[str] | None = None) -> int:
    config = Config.from_sources(argv)
    logging.basicConfig(
        level=config.log_level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # telnetlib3 logs every connection at INFO; the engine logs its own.
    logging.getLogger("telnetlib3").setLevel(logging.WARNING)
    logging.getLogger("watchfiles").setLevel(logging.WARNING)
    try:
        game = Game(config)
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(game.run())
    except StartupError as exc:
        print(f"hotmud: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
