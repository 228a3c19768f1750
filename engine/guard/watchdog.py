"""The content watchdog: content may hold the event loop for a budget, then it is stopped.

Content runs inside *sections* (``Watchdog.section``), entered and left on the
event loop's thread.  A watchdog thread looks at the innermost section every
``POLL`` seconds (``POLL_IDLE`` while nothing ran at its last look: a
section is found at most that late, and its budget is counted from its own
start); once one has run past its budget, the thread sends
``SIGNAL`` to the main thread with ``pthread_kill``.  Python runs the
signal's handler in the main thread at the next bytecode boundary, or makes
the blocking call in progress (``time.sleep``, a socket read) return with
``EINTR``, and hands the handler the frame that was running:

- if that frame is content's (its file lies under the section's content
  directory), the handler raises ``ContentInterrupted`` there, and the
  exception unwinds content's frames like any error would;
- otherwise (engine, library or standard library code) the handler lets
  that code run on, and sets the interrupt to land the moment control is
  back in content: every content frame on the stack is traced
  (``frame.f_trace``) and so is every frame that starts
  (``sys.settrace``); the first content line to run (or content function
  to start, or return) raises ``ContentInterrupted``.  An interrupt
  therefore never lands halfway through engine code, and a command that
  spends nearly all its time in short engine calls (a loop of
  ``world.create``) is stopped at its first line after the budget,
  not whenever a signal happens to arrive between two calls (nearly
  never: Python runs the handler at its next check, which is mostly a
  function call, so in the engine).  The tracing lasts until the
  interrupt lands or the section ends, usually microseconds.  While
  another trace function is set (a debugger, coverage) nothing is traced:
  the thread tries again every ``RETRY`` seconds, as it always does.

``ContentInterrupted`` derives from ``BaseException`` so that content's own
``except Exception`` cannot swallow it; content that swallows it anyway is
interrupted again until its section ends, and the section counts as stopped.

What Python cannot interrupt (a long C call that never returns to the
interpreter) is reported instead, and the section is marked ``stalled`` so
the engine can tell builders when the loop comes back:

- a call that releases the GIL while it blocks (``os.system``, a C library
  waiting on I/O): the thread logs the main thread's stack once the section
  is ``STALL_GRACE`` past its budget;
- a call that holds the GIL (``sum(range(10**9))``, one huge regex or sort):
  no Python thread can run until it returns, the watchdog's included; the
  signal handler notices the late interrupt and logs where content resumed.

Signals need the main thread: in any other thread sections are measured and
stalls reported, but nothing is interrupted.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from types import FrameType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from _typeshed import TraceFunction

log = logging.getLogger(__name__)

#: The signal that carries an interrupt to the main thread.
SIGNAL = signal.SIGUSR1
#: How often the watchdog thread looks at the running section, in seconds.
POLL = 0.01
#: How often it looks while no content has run at its last look (an idle
#: server wakes 20 times a second, not 100); must stay well under any budget.
POLL_IDLE = 0.05
#: Pause between interrupt attempts while the main thread is in engine code.
RETRY = 0.005
#: Time past the budget, without an interrupt landing, before the stack is logged.
STALL_GRACE = 0.2


class ContentInterrupted(BaseException):
    """Raised inside content that held the event loop past its budget (or during a stop)."""

    def __init__(self, section: Section) -> None:
        super().__init__(f"{section.label} held the game for more than {section.budget:.1f} s")
        self.section = section


class Section:
    """One stretch of content running on the loop, with its budget and what became of it."""

    __slots__ = (
        "budget",
        "elapsed",
        "interrupted",
        "label",
        "last_fire",
        "paused_at",
        "prefix",
        "stalled",
        "started",
        "thread",
        "where",
    )

    def __init__(self, label: str, budget: float, prefix: str) -> None:
        self.label = label
        self.budget = budget
        #: Files whose frames may be interrupted: the content directory and a separator.
        self.prefix = prefix
        #: The thread it runs on: only the main thread's sections can be interrupted.
        self.thread = threading.get_ident()
        self.started = time.monotonic()
        self.paused_at = 0.0
        self.last_fire = 0.0
        self.elapsed = 0.0
        self.interrupted = False
        self.stalled = False
        #: Where content was stopped, or where the main thread was when a stall
        #: was logged: (file, line, function).
        self.where: tuple[str, int, str] | None = None

    def over(self, now: float) -> bool:
        return now - self.started > self.budget


class Watchdog:
    """One per process: the stack of running sections, the thread and the signal handler."""

    def __init__(self) -> None:
        self._stack: list[Section] = []
        #: The innermost running section; read by the watchdog thread.
        self._current: Section | None = None
        self._thread: threading.Thread | None = None
        self._main_ident = threading.main_thread().ident
        self._installed = False
        #: Set by ``request_stop``: every section is over budget from then on.
        #: When set, the process is ended at this monotonic time if still alive.
        self._exit_at: float | None = None
        self._lock = threading.Lock()
        #: Read end of the signal wakeup socket, and who is told of each signal.
        self._signal_socket: socket.socket | None = None
        self._on_signal_seen: Callable[[int], None] | None = None
        #: Content frames set to raise at their next line (``_arm``), and whether
        #: the global trace function is ours: main thread only.
        self._armed: list[FrameType] = []
        self._tracing = False
        #: The trace functions, made once (a bound method is a new object each time).
        self._trace_call = self._on_call
        self._trace_line = self._on_line

    # -- sections (event loop thread) ---------------------------------------------

    def enter(self, label: str, budget: float, prefix: str) -> Section:
        """Start a section of content; ``prefix`` is its directory followed by a separator.

        A nested section pauses its parent's clock: each is held to the
        budget for its own time only.  Every ``enter`` is paired with a
        ``leave`` in a ``finally``.
        """
        section = Section(label, budget, prefix)
        self.push(section)
        return section

    def push(self, section: Section) -> None:
        """``enter`` for a section made by the caller (a subclass carrying more)."""
        if self._thread is None:
            self._ensure_started()
        stack = self._stack
        if stack:
            stack[-1].paused_at = section.started
        stack.append(section)
        self._current = section

    def leave(self, section: Section) -> None:
        if self._tracing:
            self._disarm()
        now = time.monotonic()
        section.elapsed = now - section.started
        stack = self._stack
        stack.pop()
        parent = stack[-1] if stack else None
        if parent is not None:
            parent.started += now - parent.paused_at
        self._current = parent

    @contextlib.contextmanager
    def section(self, label: str, budget: float, content_dir: str) -> Iterator[Section]:
        """``enter`` and ``leave`` as a context manager."""
        section = self.enter(label, budget, content_dir.rstrip(os.sep) + os.sep)
        try:
            yield section
        finally:
            self.leave(section)

    def request_stop(self, grace: float) -> None:
        """Interrupt the content running now; end the process if it is not gone in ``grace`` s.

        Acknowledged changes are already on disk (see ``engine.world.durability``),
        so ending a process whose loop never comes back loses nothing anyone
        was told.
        """
        self._ensure_started()
        for section in list(self._stack):
            section.budget = 0.0  # every section running now is over its budget
        if self._exit_at is None:
            self._exit_at = time.monotonic() + grace

    def watch_signals(self, callback: Callable[[int], None]) -> None:
        """Tell ``callback`` (on the watchdog thread) of every signal with a Python handler.

        A Python signal handler runs only once the main thread is back in
        the interpreter; content blocked in a C call (``os.system``) would
        keep a SIGTERM waiting for as long as it blocks.  The C-level handler
        also writes the signal's number to the wakeup socket, which this
        thread reads, so a stop can begin (and, past its grace, end the
        process) whatever the main thread is doing.  Main thread only.
        """
        self._ensure_started()
        reader, writer = socket.socketpair()
        reader.setblocking(False)
        writer.setblocking(False)
        signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
        self._wakeup_writer = writer
        self._on_signal_seen = callback
        self._signal_socket = reader

    def stop_watching_signals(self) -> None:
        if self._signal_socket is None:
            return
        signal.set_wakeup_fd(-1)
        self._on_signal_seen = None
        reader, self._signal_socket = self._signal_socket, None
        reader.close()
        self._wakeup_writer.close()

    # -- the thread and the signal ------------------------------------------------

    def _ensure_started(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is not None:
                return
            if threading.current_thread() is threading.main_thread():
                try:
                    signal.signal(SIGNAL, self._on_signal)
                    self._installed = True
                except (ValueError, OSError):
                    log.warning("cannot install the watchdog's signal; content is only watched")
            self._thread = threading.Thread(
                target=self._watch, name="content-watchdog", daemon=True
            )
            self._thread.start()

    def _watch(self) -> None:
        pause = POLL
        while True:
            time.sleep(pause)
            try:
                self._check(time.monotonic())
            except Exception:
                log.exception("the content watchdog failed a check")
            idle = self._current is None and self._exit_at is None
            pause = POLL_IDLE if idle else POLL

    def _check(self, now: float) -> None:
        if self._exit_at is not None and now > self._exit_at:
            self._force_exit()
        self._read_signals()
        section = self._current
        if section is None or not section.over(now):
            return
        if (
            self._installed
            and section.thread == self._main_ident
            and now - section.last_fire >= RETRY
        ):
            section.last_fire = now
            with contextlib.suppress(ProcessLookupError, OSError):
                signal.pthread_kill(self._main_ident or 0, SIGNAL)
        if not section.stalled and now - section.started > section.budget + STALL_GRACE:
            frame = sys._current_frames().get(self._main_ident or 0)
            where = innermost(frame, section.prefix)
            stack = "".join(traceback.format_stack(frame)) if frame else "(no stack)"
            log.warning(
                "%s has held the game for %.1f s and has not been stopped yet; "
                "the main thread is at:\n%s",
                section.label,
                now - section.started,
                stack,
            )
            # Marked only once logged: the handler logs it itself otherwise.
            if section.where is None:
                section.where = where
            section.stalled = True

    def _read_signals(self) -> None:
        reader, callback = self._signal_socket, self._on_signal_seen
        if reader is None or callback is None:
            return
        try:
            data = reader.recv(4096)
        except (BlockingIOError, OSError):
            return
        for signum in data:
            if signum != SIGNAL:
                callback(signum)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        section = self._current
        if section is None or frame is None or section.thread != self._main_ident:
            return
        if not section.over(time.monotonic()):
            return  # a late signal for a section that has ended
        if not frame.f_code.co_filename.startswith(section.prefix):
            self._arm(section, frame)  # engine code: it runs on, content is stopped after
            return
        self._stop(section, frame)

    # -- landing once control is back in content (main thread) --------------------------

    def _arm(self, section: Section, frame: FrameType) -> None:
        """Make the first content line to run from now on raise ``ContentInterrupted``.

        ``frame`` is engine code that content called (or that runs content).
        Each content frame below it on the stack raises at its next line
        event (or its return), and the global trace function raises in any
        content function that starts (a hook the engine calls, a ``key=``
        function ``sorted`` calls).  Engine frames are not traced: the
        global function returns None for them, after one call per frame.
        """
        if not self._tracing:
            if sys.gettrace() is not None:
                return  # a debugger or coverage traces: the thread's retries must do
            sys.settrace(self._trace_call)
            self._tracing = True
        prefix = section.prefix
        armed = self._armed
        back = frame.f_back
        while back is not None:
            if back.f_trace is None and back.f_code.co_filename.startswith(prefix):
                back.f_trace = self._trace_line
                armed.append(back)
            back = back.f_back

    def _on_call(self, frame: FrameType, event: str, arg: Any) -> TraceFunction | None:
        """The global trace function while armed: a content frame starting is stopped."""
        section = self._current
        if section is not None and frame.f_code.co_filename.startswith(section.prefix):
            self._land(section, frame)
        return None

    def _on_line(self, frame: FrameType, event: str, arg: Any) -> TraceFunction | None:
        """The trace function of an armed content frame: stopped at its next line or return."""
        if event == "line" or event == "return":
            section = self._current
            if section is not None and frame.f_code.co_filename.startswith(section.prefix):
                self._land(section, frame)
        return self._trace_line

    def _land(self, section: Section, frame: FrameType) -> None:
        if section.thread == self._main_ident and section.over(time.monotonic()):
            self._stop(section, frame)
        # A section that is not over budget is running (a nested one, started
        # since the tracing began): the thread arms again when it is due.
        self._disarm()

    def _disarm(self) -> None:
        """Stop tracing; on the main thread, by ``leave`` or where the interrupt lands."""
        armed, self._armed = self._armed, []
        for frame in armed:
            frame.f_trace = None
        if self._tracing:
            self._tracing = False
            if sys.gettrace() is self._trace_call:
                sys.settrace(None)

    def _stop(self, section: Section, frame: FrameType) -> None:
        """Raise ``ContentInterrupted`` in ``frame``: content of ``section``, over its budget."""
        if self._tracing:
            self._disarm()
        section.interrupted = True
        section.where = (frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name)
        late = time.monotonic() - section.started - section.budget
        if not section.stalled and late > STALL_GRACE:
            # A call that holds the GIL (a long C loop) keeps the watchdog
            # thread out too: it is seen only now that it returned.
            section.stalled = True
            log.warning(
                "%s was in a call Python could not interrupt for %.1f s past its budget; "
                "it returned to:\n%s",
                section.label,
                late,
                "".join(traceback.format_stack(frame)),
            )
        raise ContentInterrupted(section)

    def _force_exit(self) -> None:
        frame = sys._current_frames().get(self._main_ident or 0)
        stack = "".join(traceback.format_stack(frame)) if frame else "(no stack)"
        log.critical("the server did not stop in time; ending it now. Main thread:\n%s", stack)
        logging.shutdown()
        os._exit(1)


def innermost(frame: FrameType | None, prefix: str) -> tuple[str, int, str] | None:
    """The innermost frame of ``frame``'s stack whose file is under ``prefix``."""
    while frame is not None:
        if frame.f_code.co_filename.startswith(prefix):
            return frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name
        frame = frame.f_back
    return None


#: The process's watchdog (signals and the main thread are process-wide too).
WATCHDOG = Watchdog()


def reset_after_fork() -> None:
    """In a forked child: a fresh watchdog (the parent's thread does not exist here)."""
    fresh = Watchdog()
    WATCHDOG.__dict__.update(fresh.__dict__)
