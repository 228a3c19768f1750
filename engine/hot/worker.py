"""A game worker: ``python -m engine.hot.worker``, started by the supervisor, never by hand.

It serves the game on the listening socket the supervisor gave it.  Engine
code is imported here, inside a guard: a syntax or import error in a restart
is reported to the supervisor (and so to the admins of the running game) as
``file:line: error`` instead of ending anything that works.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import sys
import traceback

PR_SET_PDEATHSIG = 1


def _die_with_supervisor() -> None:
    """Have the kernel end this process if the supervisor ends, however it ends."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    expected = os.environ.get("HOTMUD_SUPERVISOR")
    if expected and os.getppid() != int(expected):
        os._exit(1)  # the supervisor was gone before the request took effect


def describe(exc: BaseException) -> str:
    """``engine/app.py:12: SyntaxError: invalid syntax``: where and what, for an admin."""
    root = os.getcwd()
    if isinstance(exc, SyntaxError) and exc.filename:
        where = f"{os.path.relpath(exc.filename, root)}:{exc.lineno}"
        return f"{where}: SyntaxError: {exc.msg}"
    frames = [
        f for f in traceback.extract_tb(exc.__traceback__) if "site-packages" not in f.filename
    ]
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if frames:
        frame = frames[-1]
        return f"{os.path.relpath(frame.filename, root)}:{frame.lineno}: {text}"
    return text


def main(argv: list[str]) -> int:
    _die_with_supervisor()
    from engine.hot import wire

    control_fd = int(os.environ["HOTMUD_CONTROL_FD"])

    def failed(exc: BaseException) -> int:
        line = describe(exc)
        print(f"hotmud: the engine cannot start: {line}", file=sys.stderr)
        with contextlib.suppress(OSError):
            import socket

            wire.send(socket.socket(fileno=os.dup(control_fd)), {"kind": "failed", "error": line})
        return 1

    try:
        import asyncio

        from engine import logs
        from engine.app import Game
        from engine.config import Config
        from engine.hot.link import HotLink
        from engine.startup import StartupError

        config = Config.from_sources(argv)
        # To stderr only: the supervisor copies it to the terminal and the log file.
        logs.setup(config, to_file=False)
        link = HotLink.from_environment()
        game = Game(config, hot=link)
    except BaseException as exc:
        return failed(exc)
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(game.run())
    except StartupError as exc:
        print(f"hotmud: {exc}", file=sys.stderr)
        if link is not None:
            link.tell({"kind": "failed", "error": str(exc)})
        return 1
    except BaseException as exc:
        return failed(exc)
    return 0


def _exit(status: int) -> None:
    """End the process now, whatever threads content left running.

    A plain exit waits for every non-daemon thread: a content thread that
    never ends would keep this worker alive (and its CPU busy) long after
    it handed its connections over or stopped.  What matters is flushed
    first: the log and the standard streams.
    """
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(status)


if __name__ == "__main__":
    _exit(main(sys.argv[1:]))
