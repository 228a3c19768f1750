"""Content errors as builders see them: located at file:line, counted, told once a minute.

Every failure of content (a command, a hook, a timer, a task, a load) is
recorded here under a key of where it happened and what was raised.  The
first occurrence reaches builders in game at once; repeats of the same error
within ``interval`` seconds are only counted, and the next report after
that says how many there were.  The ``errors`` command lists them.
"""

from __future__ import annotations

import os
import re
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

from reloader.exocet import GENERATION_MARK


@dataclass
class ContentError:
    """One distinct error: where, what, and how often."""

    where: str
    message: str
    context: str
    first: float
    last: float
    count: int = 1
    #: Occurrences not yet mentioned to builders.
    unreported: int = 0
    last_told: float = 0.0

    def line(self) -> str:
        return f"{self.where}: {self.message}{self.context}"


def locate(
    tb: TracebackType | None, content_dir: str, relative_to: str
) -> tuple[str, int, str] | None:
    """The innermost traceback entry inside ``content_dir``: (path shown, line, function)."""
    found = None
    prefix = content_dir.rstrip(os.sep) + os.sep
    for frame in traceback.extract_tb(tb):
        if frame.filename.startswith(prefix):
            found = (
                os.path.relpath(frame.filename, relative_to),
                frame.lineno or 0,
                frame.name,
            )
    return found


#: A loaded module's unique name (``content.commands.phrases@31``): the load number
#: is the loader's bookkeeping, never something a builder should have to read.
_VERSIONED = re.compile(r"\b(content(?:\.\w+)*)" + re.escape(GENERATION_MARK) + r"\d+")


def plain_names(text: str) -> str:
    """``content.commands.phrases@31.CmdX`` -> ``content.commands.phrases.CmdX``."""
    return _VERSIONED.sub(r"\1", text)


def describe(exc: BaseException) -> str:
    """``ZeroDivisionError: division by zero``, with module names as builders know them."""
    text = plain_names(str(exc))
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class ContentErrors:
    """Recent content errors, newest last, at most ``keep`` distinct ones."""

    def __init__(
        self,
        notify: Callable[[str], None],
        interval: float = 60.0,
        keep: int = 100,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.notify = notify
        self.interval = interval
        self.keep = keep
        self.clock = clock
        self._errors: OrderedDict[tuple[str, str], ContentError] = OrderedDict()

    def record(
        self,
        where: str,
        message: str,
        context: str = "",
        told: str | None = None,
        *,
        quiet: bool = False,
    ) -> ContentError:
        """Count one occurrence; tell builders unless this error was told less than a minute ago.

        ``told`` is the line builders get, when it is not ``where: message context``;
        ``quiet`` records it for ``errors`` only, when the caller tells builders itself.
        """
        now = self.clock()
        key = (where, message)
        error = self._errors.pop(key, None)
        if error is None:
            error = ContentError(where, message, context, now, now, count=0)
        error.count += 1
        error.last = now
        error.context = context
        error.unreported += 1
        self._errors[key] = error
        while len(self._errors) > self.keep:
            self._errors.popitem(last=False)
        if quiet:
            error.unreported = 0
            error.last_told = now
        elif now - error.last_told >= self.interval or error.last_told == 0.0:
            repeats = error.unreported - 1
            line = told if told is not None else error.line()
            if repeats > 0:
                line += f" (and {repeats} more time{'s' if repeats != 1 else ''} since last told)"
            error.unreported = 0
            error.last_told = now
            self.notify(line)
        return error

    def recent(self) -> list[ContentError]:
        """Distinct errors, the most recent first."""
        return list(reversed(self._errors.values()))  # recorded ones move to the end

    def clear(self) -> int:
        count = len(self._errors)
        self._errors.clear()
        return count
