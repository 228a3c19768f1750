"""Running content safely: under the watchdog's budget, atomically, with failures told.

Every entry from the engine into content goes through ``ContentGuard``:
commands (``run``, then each stretch of an async command between awaits),
type class hooks they call, timers and tasks, lifecycle hooks and module
bodies.  Each stretch is one watchdog section (``engine.watchdog``) and one
transaction (``engine.atomic``):

- it completes: its changes stand and its output goes out;
- it raises, or is stopped for holding the game past the budget: its world
  changes are undone, its messages to others are dropped, builders online
  are told where (file:line) and what, at most once a minute per distinct
  error (``engine.errors``), the log gets the traceback, and the engine
  code that called it gets ``ContentFailed`` with a line for the caller.
"""

from __future__ import annotations

import collections.abc
import contextlib
import inspect
import logging
import os
import traceback
from collections.abc import Awaitable, Callable, Generator
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from engine import atomic
from engine.errors import ContentErrors, describe, locate
from engine.watchdog import WATCHDOG, ContentInterrupted, Section

if TYPE_CHECKING:
    from engine.session import Session

log = logging.getLogger(__name__)

#: Files no content can be in: a guard without a content directory interrupts nothing.
_NOWHERE = "\0"


#: Errors in code reloaded less than this many seconds ago say it is new code.
RECENT_RELOAD = 600.0


def _module_of_innermost(tb: TracebackType | None, prefix: str) -> str | None:
    """The ``__name__`` (a module version) of the innermost content frame of ``tb``."""
    found = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.startswith(prefix):
            found = tb.tb_frame.f_globals.get("__name__")
        tb = tb.tb_next
    return found if isinstance(found, str) else None


def _ago(seconds: float) -> str:
    return f"{seconds:.0f} s ago" if seconds < 120 else f"{seconds / 60:.0f} min ago"


class ContentFailed(Exception):
    """Content raised or was stopped; its changes were undone and builders were told."""

    def __init__(self, message: str, stopped: bool, line: str) -> None:
        super().__init__(line)
        #: The line for the player whose action ran the content.
        self.message = message
        #: True when the watchdog stopped it (it held the game).
        self.stopped = stopped
        #: What builders were told.
        self.line = line


class ContentGuard:
    """Runs content under a time budget and a transaction, and reports what goes wrong."""

    def __init__(
        self,
        content_dir: Path | None = None,
        budget: float = 1.0,
        errors: ContentErrors | None = None,
    ) -> None:
        self.content_dir = str(Path(content_dir).resolve()) if content_dir else _NOWHERE
        self.prefix = self.content_dir + os.sep
        #: Paths are shown relative to the directory holding ``content/``.
        self.shown_from = str(Path(self.content_dir).parent) if content_dir else "."
        self.budget = budget
        self.errors = errors if errors is not None else ContentErrors(lambda line: None)
        #: False turns the guard into a plain call (``make bench`` measures its cost).
        self.enabled = budget > 0
        #: Why the world cannot be saved right now (None: it can); changes are refused then.
        self.refusal: Callable[[], str | None] = lambda: None
        #: Seconds since a reload brought a module version live (None: loaded at start).
        self.reload_age: Callable[[str], float | None] = lambda path: None

    # -- one synchronous stretch -------------------------------------------------------

    def stretch(
        self, label: str, caller: Session | None = None, context: str = ""
    ) -> _Stretch | contextlib.nullcontext[None]:
        """A context manager: its body runs as one stretch of content.

        It raises ``ContentFailed`` (from the original exception) when the
        body fails or is stopped.  ``label`` names the content for people
        (``'spin'``, ``setup() of commands.fun``); ``context`` says what it
        was doing (``running 'look' for Alice``); ``caller`` is the session
        whose action this is.
        """
        if not self.enabled:
            return _DISABLED
        return _Stretch(self, label, caller, context)

    def _failed(
        self, label: str, section: Section, exc: BaseException | None, context: str
    ) -> ContentFailed:
        stopped = section.interrupted or isinstance(exc, ContentInterrupted)
        where = locate(exc.__traceback__ if exc else None, self.content_dir, self.shown_from)
        if where is None and section.where is not None:
            path, number, function = section.where
            where = (os.path.relpath(path, self.shown_from), number, function)
        if where is None and exc is not None and exc.__traceback__ is not None:
            last = traceback.extract_tb(exc.__traceback__)[-1]
            where = (os.path.relpath(last.filename, self.shown_from), last.lineno or 0, last.name)
        place = f"{where[0]}:{where[1]}, in {where[2]}" if where else "(no content frame)"
        suffix = f" ({context})" if context else ""
        if stopped:
            line = f"Stopped {label} after {section.elapsed:.1f} s: {place} (it held the game)."
            if section.stalled:
                line += " Part of that time it was in a call Python could not interrupt."
            log.error("%s%s", line, suffix, exc_info=exc)
            self.errors.record(place, "stopped, it held the game", suffix, told=line)
            return ContentFailed(line, True, line)
        assert exc is not None
        version = _module_of_innermost(exc.__traceback__, self.prefix)
        if version is not None:
            age = self.reload_age(version)
            if age is not None and age < RECENT_RELOAD:
                suffix += f" (new code, reloaded {_ago(age)})"
        log.error("content failed: %s: %s%s", place, describe(exc), suffix, exc_info=exc)
        error = self.errors.record(place, describe(exc), suffix)
        return ContentFailed(
            f"Something went wrong running {label}; the builders have been told.",
            False,
            error.line(),
        )

    def _report_stall(self, section: Section, context: str) -> None:
        where = section.where
        place = (
            f"{os.path.relpath(where[0], self.shown_from)}:{where[1]}, in {where[2]}"
            if where
            else "(a call outside content)"
        )
        message = (
            f"held the game for {section.elapsed:.1f} s in a call that could not be "
            "interrupted; it finished on its own"
        )
        log.warning("%s %s%s", section.label, message, f" ({context})" if context else "")
        self.errors.record(place, message, f" ({context})" if context else "")

    # -- calls and coroutines -------------------------------------------------------------

    async def run(
        self,
        label: str,
        fn: Callable[..., Any],
        *args: Any,
        caller: Session | None = None,
        context: str = "",
    ) -> Any:
        """Call ``fn(*args)`` as content; await what it returns, one guarded stretch at a time."""
        result = self.call(label, fn, *args, caller=caller, context=context)
        if inspect.isawaitable(result):
            result = await self.awaitable(result, label, caller, context)
        return result

    def call(
        self,
        label: str,
        fn: Callable[..., Any],
        *args: Any,
        caller: Session | None = None,
        context: str = "",
    ) -> Any:
        """Call the plain function ``fn(*args)`` as content (raises ``ContentFailed``)."""
        with self.stretch(label, caller, context):
            return fn(*args)

    def awaitable(
        self,
        awaitable: Awaitable[Any],
        label: str,
        caller: Session | None = None,
        context: str = "",
    ) -> GuardedCoroutine:
        """``awaitable`` run one guarded stretch per step (each stretch between awaits)."""
        return GuardedCoroutine(self, awaitable, label, caller, context)


_DISABLED: contextlib.nullcontext[None] = contextlib.nullcontext()

#: What makes a stretch fail (CancelledError, GeneratorExit, KeyboardInterrupt pass through).
_FAILURES = (Exception, ContentInterrupted, SystemExit)


class _Stretch:
    """One watchdog section and one transaction around a piece of content."""

    __slots__ = ("caller", "context", "guard", "label", "section", "txn")

    def __init__(self, guard: ContentGuard, label: str, caller: Session | None, context: str):
        self.guard = guard
        self.label = label
        self.caller = caller
        self.context = context

    def __enter__(self) -> None:
        guard = self.guard
        self.txn = atomic.begin(self.caller)
        self.section = WATCHDOG.enter(self.label, guard.budget, guard.prefix)

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, _: Any) -> None:
        section = self.section
        WATCHDOG.leave(section)
        # StopIteration is a coroutine step that finished: the normal end.
        failed = (
            exc is not None
            and kind is not StopIteration
            and isinstance(exc, _FAILURES)
            and not isinstance(exc, StopIteration)
        )
        if not failed and not section.interrupted:
            txn = self.txn
            if txn.parent is None and txn.changed:
                reason = self.guard.refusal()
                if reason is not None:
                    # Nothing may be told as done that cannot be made durable.
                    txn.rollback(keep_caller_text=False)
                    line = f"The world cannot be saved right now: {reason}. Nothing was changed."
                    raise ContentFailed(line, False, line) from exc
            txn.commit()
            if section.stalled:
                self.guard._report_stall(section, self.context)
            return
        self.txn.rollback()
        raise self.guard._failed(self.label, section, exc, self.context) from exc


class GuardedCoroutine(collections.abc.Coroutine[Any, Any, Any]):
    """Drives an awaitable step by step, each step one guarded stretch.

    It is itself a coroutine, so an asyncio task can run it (content's own
    ``asyncio.create_task`` calls are wrapped this way) and ``await`` works.
    """

    def __init__(
        self,
        guard: ContentGuard,
        awaitable: Awaitable[Any],
        label: str,
        caller: Session | None,
        context: str,
    ) -> None:
        self._inner = awaitable
        self._steps: Generator[Any, Any, Any] = awaitable.__await__()  # type: ignore[assignment]
        self._guard = guard
        self._label = label
        self._caller = caller
        self._context = context

    def send(self, value: Any) -> Any:
        with self._guard.stretch(self._label, self._caller, self._context):
            return self._steps.send(value)

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        with self._guard.stretch(self._label, self._caller, self._context):
            if val is None and tb is None:
                return self._steps.throw(typ)
            return self._steps.throw(typ, val, tb)  # pragma: no cover - old calling style

    def close(self) -> None:
        with (
            contextlib.suppress(ContentFailed),
            self._guard.stretch(self._label, self._caller, self._context),
        ):
            self._steps.close()

    def __await__(self) -> Generator[Any, Any, Any]:
        return self  # type: ignore[return-value]

    def __iter__(self) -> GuardedCoroutine:
        return self

    def __next__(self) -> Any:
        return self.send(None)

    def __getattr__(self, name: str) -> Any:
        # cr_frame, cr_code, __qualname__ ...: asyncio's task repr and stack reads.
        return getattr(self._inner, name)

    def __repr__(self) -> str:
        return f"<guarded {self._inner!r}>"
