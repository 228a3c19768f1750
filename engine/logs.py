"""The server's log: to the terminal (stderr) and to a file rotated by size.

The supervisor is the one process that writes the file (``var/log/hotmud.log``
of the game): every worker logs to its stderr, a pipe the supervisor reads,
and the supervisor copies each line to its own stderr and into the file.  One
writer means one rotation: two workers side by side during a hot restart
never rotate the file under each other, and what a dying worker prints last
(a traceback, faulthandler's dump) is in the file too.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys

from engine.config import Config

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def setup(config: Config, to_file: bool) -> logging.Handler | None:
    """Log at ``config.log_level`` to stderr, and to the log file when ``to_file``.

    Returns the file handler (None without one), which the supervisor also
    hands the lines its workers print.
    """
    root = logging.getLogger()
    root.setLevel(config.log_level.upper())
    if not any(getattr(h, "stream", None) is sys.stderr for h in root.handlers):
        terminal = logging.StreamHandler(sys.stderr)
        terminal.setFormatter(logging.Formatter(FORMAT))
        root.addHandler(terminal)
    # Libraries' chatter stays out unless asked for.
    if root.level > logging.DEBUG:
        logging.getLogger("telnetlib3").setLevel(logging.WARNING)
        logging.getLogger("watchfiles").setLevel(logging.WARNING)
    path = config.log_path
    if not to_file or path is None:
        return None
    # Raises OSError (a read-only or full disk) before any handler is added.
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(
        path, maxBytes=config.log_max_bytes, backupCount=config.log_backups, encoding="utf-8"
    )
    handler.setFormatter(logging.Formatter(FORMAT))
    root.addHandler(handler)
    return handler


class LineCopier:
    """Copies what one worker prints to the terminal and, line by line, into the log file."""

    def __init__(self, handler: logging.Handler | None) -> None:
        self.handler = handler
        self._partial = b""

    def feed(self, data: bytes) -> None:
        """Bytes read from the worker's stderr; ``b""`` at its end flushes a last partial line."""
        if data:
            sys.stderr.buffer.write(data)
            sys.stderr.buffer.flush()
        if self.handler is None:
            return
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop() if data else b""
        if not data and lines and lines[-1] == b"":
            lines.pop()
        for line in lines:
            self._write(line.decode("utf-8", "replace").rstrip("\r"))

    def _write(self, line: str) -> None:
        assert self.handler is not None
        # Already formatted by the worker: written as it is (a record whose message
        # has no arguments is never %-formatted).
        record = logging.makeLogRecord({"msg": line, "levelno": logging.INFO})
        try:
            stream = getattr(self.handler, "stream", None)
            if isinstance(self.handler, logging.handlers.RotatingFileHandler):
                if self.handler.shouldRollover(record):
                    self.handler.doRollover()
                stream = self.handler.stream
            if stream is not None:
                stream.write(line + "\n")
                stream.flush()
        except (OSError, ValueError):
            pass  # a full disk costs log lines, never the game (nor this process)
