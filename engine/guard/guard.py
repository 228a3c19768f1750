"""Running content safely: under the watchdog's budget, atomically, with failures told.

Every entry from the engine into content goes through ``ContentGuard``:
commands (``run``, then each stretch of an async command between awaits),
type class hooks they call, timers and tasks, lifecycle hooks and module
bodies.  Each stretch is one watchdog section (``engine.guard.watchdog``) and one
transaction (``engine.world.atomic``):

- it completes: its changes stand and its output goes out;
- it raises, or is stopped for holding the game past the budget: its world
  changes are undone, its messages to others are dropped, builders online
  are told where (file:line) and what, at most once a minute per distinct
  error (``engine.guard.errors``), the log gets the traceback, and the engine
  code that called it gets ``ContentFailed`` with a line for the caller, a
  plain sentence (``FAILED``) without a file or a line;
- it changes more than ``max_changes`` objects: the change past the cap
  raises ``TooManyChanges`` inside it (``engine.world.atomic``), and the
  stretch fails as above, whatever it does with that error, with a line
  that says so.
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

from engine.config import Config
from engine.guard.errors import ContentErrors, describe, locate
from engine.guard.watchdog import WATCHDOG, ContentInterrupted, Section
from engine.world import atomic

if TYPE_CHECKING:
    from engine.services import Connection

log = logging.getLogger(__name__)

#: Files no content can be in: a guard without a content directory interrupts nothing.
_NOWHERE = "\0"


#: Errors in code reloaded less than this many seconds ago say it is new code.
RECENT_RELOAD = 600.0

#: Objects one stretch may create, change or destroy, unless told otherwise.
MAX_CHANGES: int = Config.max_changes

#: What a player reads when what they did failed or was stopped: never a file or a line,
#: which builders are told (``ContentErrors``).
FAILED = "That did not work; the builders have been told."


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
        *,
        refusal: Callable[[], str | None] = lambda: None,
        reload_age: Callable[[str], float | None] = lambda version: None,
        max_changes: int = MAX_CHANGES,
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
        self.refusal = refusal
        #: Seconds since a reload brought a module version live (None: loaded at start).
        self.reload_age = reload_age
        #: The most objects one stretch may create, change or destroy (None: no cap).
        self.max_changes = max_changes if max_changes > 0 else None

    @classmethod
    def for_config(
        cls,
        config: Config,
        errors: ContentErrors,
        refusal: Callable[[], str | None],
        reload_age: Callable[[str], float | None],
    ) -> ContentGuard:
        """The guard of a game: its content folder, ``content_budget`` and ``max_changes``."""
        return cls(
            config.content_dir,
            config.content_budget,
            errors,
            refusal=refusal,
            reload_age=reload_age,
            max_changes=config.max_changes,
        )

    # -- one synchronous stretch -------------------------------------------------------

    def step(
        self,
        label: str,
        caller: Connection | None,
        context: str,
        fn: Callable[..., Any],
        *args: Any,
    ) -> Any:
        """Run ``fn(*args)`` as one stretch of content: a section and a transaction.

        Raises ``ContentFailed`` (from the original exception) when it fails
        or is stopped.  ``label`` names the content for people (``'spin'``,
        ``setup() of commands.fun``); ``context`` says what it was doing
        (``running 'look' for Alice``); ``caller`` is the session whose
        action this is.  Written flat, without a context manager: it runs
        around every command.
        """
        if not self.enabled:
            return fn(*args)
        txn = atomic.begin(caller, self.max_changes)
        section = Section(label, self.budget, self.prefix)
        WATCHDOG.push(section)
        try:
            result = fn(*args)
        except StopIteration:
            # A coroutine step that finished: the normal end.
            WATCHDOG.leave(section)
            self._keep(txn, section, label, context)
            raise
        except ContentFailed:
            # A nested stretch failed and was reported already; this one fails with it.
            WATCHDOG.leave(section)
            txn.rollback()
            raise
        except _FAILURES as exc:
            WATCHDOG.leave(section)
            txn.rollback()
            if txn.refused is not None:
                raise self._too_many(label, txn, context) from exc
            raise self._failed(label, section, exc, context) from exc
        except BaseException:
            # Cancellation and the like pass through; what was done stands.
            WATCHDOG.leave(section)
            if txn.refused is not None:
                txn.rollback()
            else:
                txn.commit()
            raise
        WATCHDOG.leave(section)
        if section.interrupted:  # it swallowed the interrupt: still stopped
            txn.rollback()
            if txn.refused is not None:
                raise self._too_many(label, txn, context)
            raise self._failed(label, section, None, context)
        self._keep(txn, section, label, context)
        return result

    def _keep(self, txn: atomic.Transaction, section: Section, label: str, context: str) -> None:
        """Commit a stretch that ended well, unless the world cannot be saved now."""
        if txn.refused is not None:  # it went past the cap and swallowed the error
            txn.rollback()
            raise self._too_many(label, txn, context)
        if txn.parent is None and txn.changed:
            reason = self.refusal()
            if reason is not None:
                # Nothing may be told as done that cannot be made durable.
                txn.rollback(keep_caller_text=False)
                line = f"The world cannot be saved right now: {reason}. Nothing was changed."
                raise ContentFailed(line, False, line)
        txn.commit()
        if section.stalled:
            self._report_stall(section, context)

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
            return ContentFailed(FAILED, True, line)
        assert exc is not None
        version = _module_of_innermost(exc.__traceback__, self.prefix)
        if version is not None:
            age = self.reload_age(version)
            if age is not None and age < RECENT_RELOAD:
                suffix += f" (new code, reloaded {_ago(age)})"
        log.error("content failed: %s: %s%s", place, describe(exc), suffix, exc_info=exc)
        error = self.errors.record(place, describe(exc), suffix)
        return ContentFailed(FAILED, False, error.line())

    def _too_many(self, label: str, txn: atomic.Transaction, context: str) -> ContentFailed:
        """A stretch that went past ``max_changes`` and was undone: the lines that say so."""
        where = next(
            (entry for entry in txn.refused or () if entry[0].startswith(self.prefix)), None
        )
        place = (
            f"{os.path.relpath(where[0], self.shown_from)}:{where[1]}, in {where[2]}"
            if where
            else "(no content frame)"
        )
        suffix = f" ({context})" if context else ""
        cap = f"more than {txn.cap:,} changes"
        log.error(
            "%s changed too much at once (%s) and was undone: %s%s", label, cap, place, suffix
        )
        error = self.errors.record(
            place, f"changed too much at once ({cap}); nothing it did was kept", suffix
        )
        return ContentFailed(
            f"This command changed too much at once ({cap}); nothing it did was kept.",
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
        caller: Connection | None = None,
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
        caller: Connection | None = None,
        context: str = "",
    ) -> Any:
        """Call the plain function ``fn(*args)`` as content (raises ``ContentFailed``)."""
        return self.step(label, caller, context, fn, *args)

    def awaitable(
        self,
        awaitable: Awaitable[Any],
        label: str,
        caller: Connection | None = None,
        context: str = "",
    ) -> GuardedCoroutine:
        """``awaitable`` run one guarded stretch per step (each stretch between awaits)."""
        return GuardedCoroutine(self, awaitable, label, caller, context)


#: What makes a stretch fail (CancelledError, GeneratorExit, KeyboardInterrupt pass through).
_FAILURES = (Exception, ContentInterrupted, SystemExit)


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
        caller: Connection | None,
        context: str,
    ) -> None:
        self._inner = awaitable
        self._steps: Generator[Any, Any, Any] = awaitable.__await__()
        self._guard = guard
        self._label = label
        self._caller = caller
        self._context = context

    def send(self, value: Any) -> Any:
        return self._guard.step(self._label, self._caller, self._context, self._steps.send, value)

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        if val is None and tb is None:
            return self._guard.step(
                self._label, self._caller, self._context, self._steps.throw, typ
            )
        return self._guard.step(  # pragma: no cover - the old three-argument form
            self._label, self._caller, self._context, self._steps.throw, typ, val, tb
        )

    def close(self) -> None:
        with contextlib.suppress(ContentFailed):  # told to builders by the guard
            self._guard.step(self._label, self._caller, self._context, self._steps.close)

    def __await__(self) -> Generator[Any, Any, Any]:
        return self

    def __iter__(self) -> GuardedCoroutine:
        return self

    def __next__(self) -> Any:
        return self.send(None)

    def __getattr__(self, name: str) -> Any:
        # cr_frame, cr_code, __qualname__ ...: asyncio's task repr and stack reads.
        return getattr(self._inner, name)

    def __repr__(self) -> str:
        return f"<guarded {self._inner!r}>"
