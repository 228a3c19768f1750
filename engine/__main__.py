"""``python -m engine``: serve the game (see ``python -m engine --help``).

This process is the supervisor (``engine.hot.supervisor``): it holds the port
and runs the game in a worker process that it can replace without
disconnecting anyone.
"""

from __future__ import annotations

import sys

from engine.hot.supervisor import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
