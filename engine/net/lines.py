"""A bounded line reader for telnet input.

telnetlib3's ``readline`` has no length limit and ``readline_async`` is
quadratic (see docs/architecture.md).  This reader takes large chunks with ``read``,
splits them itself and never holds more than one line's limit of text, so a
client that never sends a newline cannot grow server memory.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

#: C0 controls other than tab, and DEL: what a line may not carry into a command.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@dataclass
class LineSplitter:
    """Pure line splitting: feed text, take complete lines and overlong notices.

    CR LF, LF and a bare CR each end a line; an LF that follows a CR ending
    the previous chunk is the second half of that CR LF, not an empty line,
    and so is a CR LF right after a CR NUL (how a telnet client not in binary
    mode sends a CR LF it was given).
    A line longer than ``limit`` is discarded up to its end and reported once
    as ``None`` in its place.
    """

    limit: int = 4096
    _partial: list[str] = field(default_factory=list)
    _partial_len: int = 0
    _discarding: bool = False
    _after_cr: bool = False

    def feed(self, text: str) -> list[str | None]:
        out: list[str | None] = []
        start = 0
        if self._after_cr and text.startswith("\n"):
            start = 1
        self._after_cr = False
        length = len(text)
        while start < length:
            end = _next_break(text, start)
            if end < 0:
                self._hold(text[start:], out)
                break
            self._hold(text[start:end], out)
            if self._discarding:
                self._discarding = False
            else:
                out.append(_CONTROL.sub("", "".join(self._partial)))
            self._partial.clear()
            self._partial_len = 0
            if text[end] == "\r":
                if end + 1 < length:
                    start = end + 2 if text[end + 1] in "\n\x00" else end + 1
                    if text[end + 1] == "\x00" and text.startswith("\r\n", start):
                        # CR NUL then CR LF: a telnet client not in binary mode sent
                        # the CR LF it was given (a paste, a pipe) as two line ends.
                        start += 2
                else:
                    self._after_cr = True
                    start = end + 1
            else:
                start = end + 1
        return out

    def _hold(self, piece: str, out: list[str | None]) -> None:
        if self._discarding or not piece:
            return
        if self._partial_len + len(piece) > self.limit:
            self._partial.clear()
            self._partial_len = 0
            self._discarding = True
            out.append(None)
            return
        self._partial.append(piece)
        self._partial_len += len(piece)


def _next_break(text: str, start: int) -> int:
    cr = text.find("\r", start)
    lf = text.find("\n", start)
    if cr < 0:
        return lf
    if lf < 0:
        return cr
    return min(cr, lf)


async def _nothing(_size: int) -> str:
    return ""


class LineTooLong(Exception):
    """Raised by ``BoundedLineReader`` when a client keeps sending overlong lines."""


class BoundedLineReader:
    """Reads complete lines from a telnetlib3 reader, within a length limit.

    ``on_overlong`` is awaited each time a line is dropped for its length (the
    session tells the player); after ``max_overlong`` of them ``readline``
    raises ``LineTooLong`` so that the session can disconnect the abuser.
    """

    def __init__(
        self,
        read: Callable[[int], Awaitable[str]],
        limit: int = 4096,
        max_overlong: int = 3,
        on_overlong: Callable[[], Awaitable[None]] | None = None,
        chunk: int = 4096,
    ) -> None:
        self._read = read
        self._splitter = LineSplitter(limit)
        self._lines: list[str | None] = []
        self._max_overlong = max_overlong
        self._overlong = 0
        self._on_overlong = on_overlong
        self._chunk = chunk
        self._eof = False

    @property
    def limit(self) -> int:
        return self._splitter.limit

    def release(self) -> None:
        """The connection is gone: read nothing more, and let go of the callbacks.

        They are bound methods of the session and the telnet reader, which
        hold this reader in turn: a cycle only a full collection would free.
        """
        self._read = _nothing
        self._on_overlong = None
        self._eof = True

    @property
    def pending(self) -> int:
        """Complete lines already received and not yet read: a client's backlog."""
        return len(self._lines)

    def take_buffered(self, more: str = "") -> tuple[list[str], str]:
        """Complete lines received and not read yet, and the start of the next one.

        ``more`` is text read from the connection but not yet split.  For a hot
        restart: the new process puts them back with ``put_back``.
        """
        self._lines.extend(self._splitter.feed(more))
        lines = [line for line in self._lines if line is not None]
        self._lines.clear()
        partial = "".join(self._splitter._partial)
        self._splitter._partial.clear()
        self._splitter._partial_len = 0
        return lines, partial

    def put_back(self, lines: list[str], partial: str) -> None:
        """Lines to read before anything new arrives (see ``take_buffered``)."""
        self._lines[:0] = lines
        if partial:
            self._lines.extend(self._splitter.feed(partial))

    async def readline(self) -> str | None:
        """The next line without its terminator, or None at end of input."""
        while True:
            while self._lines:
                line = self._lines.pop(0)
                if line is not None:
                    return line
                self._overlong += 1
                if self._on_overlong is not None:
                    await self._on_overlong()
                if self._overlong >= self._max_overlong:
                    raise LineTooLong(f"{self._overlong} lines over {self.limit} characters")
            if self._eof:
                return None
            data = await self._read(self._chunk)
            if not data:
                self._eof = True
                continue
            self._lines.extend(self._splitter.feed(data))
