"""The warm test runner: ``python -m engine.live.testrunner``, started by the game, never by hand.

The game's tests guard its saves (``engine.live.testgate``).  Starting
Python, pytest and the engine for every save would cost more than a second,
so this process does it once: it imports pytest, pytest-asyncio and the
engine, runs the tests once to import whatever else they use (their results
are dropped), and then waits.  For each run the game asks for, it forks a
child that runs ``pytest.main`` on the game's ``tests/`` and reports, on a
pipe, each test as it starts and at the end what passed and what failed;
this process relays that to the game.  A fork starts with everything
imported, so a run costs what the tests themselves cost.

What a run never does: touch the live game.  The child is a separate
process; the tests build their own worlds in memory (``LocalGame``) or on
throw-away databases; no ``MUD_*`` setting of the live game reaches it.

The child is the leader of a process group of its own: stopping a run (a
newer save, the time limit) kills the group, whatever the tests started.
This process dies with the game (``PR_SET_PDEATHSIG``), and each child with
this process, so nothing outlives the game.

Talk with the game is one JSON object a line: on stdin the game sends
``{"op": "run", "id": N}`` and ``{"op": "stop", "id": N}``; on stdout this
process answers ``{"event": "ready"}`` once, then for each run one of
``{"id": N, "event": "result", ...}``, ``{"id": N, "event": "stopped",
"running": nodeid}`` or ``{"id": N, "event": "crashed", ...}``.  End of stdin
ends it.

Two things make a run cheap besides the fork: content compiled in this
process (``compile`` of each file's text, kept while the text is unchanged)
is handed to the loader in the child, so the many ``LocalGame`` s a run
builds compile each content file once, in the runner, not once a test; and
pytest's rewritten test modules are cached outside the game folder
(``sys.pycache_prefix``).  Plugins are not auto-loaded (a dev tool's plugin
can cost more than the tests); pytest-asyncio is always there, and a game
that needs another names it in its ``conftest.py`` (``pytest_plugins``).
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import importlib
import json
import os
import selectors
import signal
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from types import CodeType
from typing import IO, Any, NoReturn

from reloader.exocet import GENERATION_MARK

PR_SET_PDEATHSIG = 1

#: Imported before anything else: what every run needs.
PRELOAD = (
    "pytest",
    "pytest_asyncio.plugin",
    "engine.api",
    "engine.app",
    "engine.local",
    "engine.testing",
)

#: The longest line of a failure's message kept for builders.
MESSAGE_LIMIT = 300

#: The last lines of a run's output kept when its process dies without a result.
TAIL_LINES = 5


def die_with_parent(parent: int) -> None:
    """Have the kernel end this process when ``parent`` ends, however it ends."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)  # the parent was gone before the request took effect


# -- content compiled once ---------------------------------------------------------------


#: path -> (the file's bytes, their code): what the loader would compile, compiled.
COMPILED: dict[str, tuple[bytes, CodeType]] = {}


def compile_content(directory: Path) -> None:
    """Compile every content file whose text is new since the last time (as exocet does)."""
    seen: set[str] = set()
    for root, dirs, files in os.walk(directory):
        dirs[:] = [d for d in dirs if d != "__pycache__" and not d.startswith(".")]
        for name in files:
            if not name.endswith(".py"):
                continue
            path = os.path.join(root, name)
            seen.add(path)
            try:
                with open(path, "rb") as handle:
                    raw = handle.read()
            except OSError:
                continue
            known = COMPILED.get(path)
            if known is not None and known[0] == raw:
                continue
            try:
                COMPILED[path] = (raw, compile(raw, path, "exec", dont_inherit=True))
            except (SyntaxError, ValueError):
                COMPILED.pop(path, None)  # the loader reports it, in the run
    for path in set(COMPILED) - seen:
        del COMPILED[path]


def _compile_known(
    source: Any, filename: Any, mode: str, flags: int = 0, dont_inherit: bool = False
) -> Any:
    """``compile`` as the loader calls it, answered from ``COMPILED`` for an unchanged text."""
    known = COMPILED.get(filename) if isinstance(filename, str) else None
    if known is not None and mode == "exec" and not flags and dont_inherit and known[0] == source:
        return known[1]
    return compile(source, filename, mode, flags, dont_inherit)


def use_compiled_content() -> None:
    """In a run's child: the loader takes content's code from ``COMPILED`` when it can."""
    from reloader import exocet

    # exocet calls the name ``compile`` from its module globals: shadowing the
    # builtin there is the whole change, and it lives only in this child.
    setattr(exocet, "compile", _compile_known)  # noqa: B010


# -- one run, in a child -----------------------------------------------------------------


def _first_line(text: str) -> str:
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    return line if len(line) <= MESSAGE_LIMIT else line[: MESSAGE_LIMIT - 3] + "..."


def failure_message(report: Any) -> str:
    """``AssertionError: greet must say Hello``: the first line of what the test raised."""
    longrepr = report.longrepr
    message: object = getattr(getattr(longrepr, "reprcrash", None), "message", None)
    if message:
        return _first_line(str(message))
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return _first_line(str(longrepr[2]))
    text = str(longrepr or "")
    # A collection error: pytest's own "E   ..." lines say what was raised.
    errors = [line[1:].strip() for line in text.splitlines() if line.startswith("E ")]
    if errors:
        return _first_line(errors[-1] if len(errors) == 1 else errors[0])
    lines = [line for line in text.splitlines() if line.strip()]
    return _first_line(lines[-1]) if lines else "failed"


class Reporter:
    """A pytest plugin that writes each test's start, and the run's end, as JSON lines."""

    def __init__(self, out: IO[str], started: float) -> None:
        self.out = out
        self.started = started
        self.passed: set[str] = set()
        self.skipped = 0
        self.failures: list[tuple[str, str]] = []
        self._failed: set[str] = set()

    def emit(self, message: dict[str, Any]) -> None:
        self.out.write(json.dumps(message) + "\n")
        self.out.flush()

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        self.emit({"start": nodeid})

    def pytest_runtest_logreport(self, report: Any) -> None:
        if report.failed:
            self._fail(report.nodeid, failure_message(report))
        elif report.skipped and report.when in ("setup", "call"):
            self.skipped += 1
        elif report.passed and report.when == "call":
            self.passed.add(report.nodeid)

    def pytest_collectreport(self, report: Any) -> None:
        if report.failed:
            self._fail(report.nodeid or ".", failure_message(report))

    def _fail(self, nodeid: str, message: str) -> None:
        # A test that fails, then errors in its teardown too, is one failure, the first.
        self.passed.discard(nodeid)
        if nodeid not in self._failed:
            self._failed.add(nodeid)
            self.failures.append((nodeid, message))

    def pytest_sessionfinish(self, exitstatus: int) -> None:
        self.emit(
            {
                "result": {
                    "passed": len(self.passed),
                    "skipped": self.skipped,
                    "failures": self.failures,
                    "status": int(exitstatus),
                    "seconds": time.monotonic() - self.started,
                }
            }
        )


def pytest_args(tests: Path, root: Path, extra: list[str]) -> list[str]:
    """What ``hotmud test`` gives pytest, for the game's tests folder."""
    return [
        "-q",
        "-p", "no:cacheprovider",
        "-o", "asyncio_mode=auto",
        "-o", "asyncio_default_fixture_loop_scope=function",
        "--rootdir", str(root),
        *extra,
        str(tests),
    ]  # fmt: skip


def _prepare_child(settings: Settings) -> None:
    """In a forked child, before pytest: its own process group, quiet, content precompiled."""
    os.setpgid(0, 0)
    die_with_parent(settings.runner)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    # The game's commands and the runner's answers are not the tests' business.
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    with contextlib.suppress(OSError):
        os.close(settings.answers_fd)
    output = os.open(settings.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(output, 1)
    os.dup2(output, 2)
    os.close(output)
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
    from engine.guard.watchdog import reset_after_fork

    reset_after_fork()
    use_compiled_content()
    # Rewritten test modules are cached here, never in the game folder.
    sys.pycache_prefix = str(settings.cache / "pycache")
    sys.dont_write_bytecode = False


def _pytest(settings: Settings, out: IO[str]) -> None:
    import pytest
    import pytest_asyncio.plugin

    pytest.main(
        pytest_args(settings.tests, settings.root, settings.extra),
        plugins=[pytest_asyncio.plugin, Reporter(out, time.monotonic())],
    )


def run_child(settings: Settings, write_fd: int) -> NoReturn:
    """A run's forked child: run the tests, report on ``write_fd``, and leave."""
    status = 70
    try:
        _prepare_child(settings)
        with open(write_fd, "w", encoding="utf-8") as out:
            _pytest(settings, out)
        status = 0
    except BaseException:  # a child that failed says so in its output
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(status)


def warm_child(settings: Settings, write_fd: int, before: set[str]) -> NoReturn:
    """The warm-up's child: a run, then the names of the modules it imported that are not
    the game's own (those change; the engine and the libraries do not)."""
    game = str(settings.root.resolve()) + os.sep
    try:
        _prepare_child(settings)
        with open(os.devnull, "w", encoding="utf-8") as nowhere:
            _pytest(settings, nowhere)
    except BaseException:  # a failed warm-up only warms less
        pass
    try:
        names = []
        for name, module in list(sys.modules.items()):
            where = getattr(module, "__file__", None)
            if name in before or not isinstance(where, str) or GENERATION_MARK in name:
                continue
            if os.path.abspath(where).startswith(game) or name in ("conftest", "__main__"):
                continue
            names.append(name)
        with open(write_fd, "w", encoding="utf-8") as out:
            out.write(json.dumps(sorted(names)))
    finally:
        os._exit(0)


# -- the runner ----------------------------------------------------------------------------


@dataclass
class Settings:
    tests: Path
    content: Path
    root: Path
    cache: Path
    parent: int
    #: Seconds the first run (which only imports) may take.
    warmup: float
    extra: list[str] = field(default_factory=list)
    runner: int = field(default_factory=os.getpid)
    #: This process's answers to the game (stdout, kept apart from anything printed).
    answers_fd: int = -1

    @property
    def output(self) -> Path:
        """Everything the last run printed: pytest's report, for whoever wants the details."""
        return self.cache / "last-run.txt"


@dataclass
class Run:
    """One run in progress: its child, the pipe it reports on, what it said so far."""

    id: int
    pid: int
    fd: int
    started: float
    buffer: bytes = b""
    running: str | None = None
    result: dict[str, Any] | None = None

    def take(self, data: bytes) -> None:
        self.buffer += data
        *lines, self.buffer = self.buffer.split(b"\n")
        for line in lines:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if "start" in message:
                self.running = message["start"]
            elif "result" in message:
                self.result = message["result"]


class Runner:
    """Forks a child for each run, one at a time, and relays what it reports."""

    def __init__(self, settings: Settings, answers: IO[str]) -> None:
        self.settings = settings
        self.answers = answers
        self.selector = selectors.DefaultSelector()
        self.current: Run | None = None
        self._commands = b""

    def answer(self, message: dict[str, Any]) -> None:
        self.answers.write(json.dumps(message) + "\n")
        self.answers.flush()

    def start(self, run_id: int) -> Run:
        compile_content(self.settings.content)
        read_fd, write_fd = os.pipe()
        started = time.monotonic()
        pid = os.fork()
        if pid == 0:  # the child
            os.close(read_fd)
            run_child(self.settings, write_fd)
        os.close(write_fd)
        with contextlib.suppress(OSError):
            os.setpgid(pid, pid)  # as the child does: whichever runs first
        run = Run(run_id, pid, read_fd, started)
        self.selector.register(read_fd, selectors.EVENT_READ, run)
        self.current = run
        return run

    def _end(self, run: Run) -> int:
        """Kill what is left of ``run``'s process group, reap its child; the wait status."""
        with contextlib.suppress(OSError):
            os.killpg(run.pid, signal.SIGKILL)
        _, status = os.waitpid(run.pid, 0)
        self.selector.unregister(run.fd)
        os.close(run.fd)
        if self.current is run:
            self.current = None
        return status

    def stop(self, run_id: int) -> None:
        run = self.current
        if run is None or run.id != run_id:
            return
        self._end(run)
        self.answer({"id": run.id, "event": "stopped", "running": run.running})

    def finished(self, run: Run) -> None:
        """The child closed its pipe: it is done, or dead."""
        status = self._end(run)
        if run.result is not None:
            self.answer({"id": run.id, "event": "result", **run.result})
            return
        code = os.waitstatus_to_exitcode(status)
        how = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
        self.answer(
            {
                "id": run.id,
                "event": "crashed",
                "how": how,
                "running": run.running,
                "tail": tail(self.settings.output),
            }
        )

    def command(self, message: dict[str, Any]) -> None:
        op = message.get("op")
        run_id = int(message.get("id", 0))
        if op == "run":
            if self.current is not None:
                self.stop(self.current.id)
            self.start(run_id)
        elif op == "stop":
            self.stop(run_id)

    def serve(self) -> None:
        """Take the game's commands until its end of the pipe closes."""
        self.selector.register(0, selectors.EVENT_READ, None)
        while True:
            for key, _events in self.selector.select():
                if key.data is None:
                    data = os.read(0, 65536)
                    if not data:
                        if self.current is not None:
                            self._end(self.current)
                        return
                    self._commands += data
                    *lines, self._commands = self._commands.split(b"\n")
                    for line in lines:
                        with contextlib.suppress(ValueError):
                            self.command(json.loads(line))
                    continue
                run = key.data
                assert isinstance(run, Run)
                if run is not self.current:
                    continue
                data = os.read(run.fd, 65536)
                run.take(data)
                # Done once it says so (a process the tests left behind may hold
                # the pipe open), or once the pipe closes without a word (it died).
                if run.result is not None or not data:
                    self.finished(run)

    def warm_up(self) -> None:
        """One run whose results are dropped: it imports what the tests use, once, here.

        The child lists the modules it imported beyond this process's; they
        are imported here, so that every later child starts with them.
        """
        before = set(sys.modules)
        read_fd, write_fd = os.pipe()
        compile_content(self.settings.content)
        pid = os.fork()
        if pid == 0:
            os.close(read_fd)
            warm_child(self.settings, write_fd, before)
        os.close(write_fd)
        deadline = time.monotonic() + self.settings.warmup
        data = b""
        with os.fdopen(read_fd, "rb") as pipe:
            selector = selectors.DefaultSelector()
            selector.register(pipe, selectors.EVENT_READ)
            while (left := deadline - time.monotonic()) > 0 and selector.select(left):
                chunk = pipe.read1(65536)
                if not chunk:
                    break
                data += chunk
            selector.close()
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        try:
            names = json.loads(data.decode() or "[]")
        except ValueError:
            names = []
        for name in names:
            with contextlib.suppress(BaseException):
                importlib.import_module(name)


def tail(path: Path) -> str:
    """The last lines of ``path``, for a run that died without a result."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(line for line in lines[-TAIL_LINES:] if line.strip())


def main(argv: list[str]) -> int:
    given = json.loads(argv[0])
    settings = Settings(
        tests=Path(given["tests"]),
        content=Path(given["content"]),
        root=Path(given["root"]),
        cache=Path(given["cache"]),
        parent=int(given["parent"]),
        warmup=float(given["warmup"]),
        extra=list(given.get("extra", [])),
    )
    die_with_parent(settings.parent)
    # Plugins are named, never found by entry point (see the module's docstring).
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    # Ctrl-C in a terminal is the game's to handle; this process ends with its pipe.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Answers go on a copy of stdout; anything printed goes to stderr instead.
    settings.answers_fd = os.dup(1)
    os.dup2(2, 1)
    answers = open(settings.answers_fd, "w", encoding="utf-8")  # noqa: SIM115
    settings.cache.mkdir(parents=True, exist_ok=True)
    import pytest_asyncio.plugin  # noqa: F401 - every run needs it: no runner without it

    for name in PRELOAD:
        # The engine as it is on disk now: one that does not import (a save half-way)
        # fails the tests that import it, which say so, rather than the runner.
        with contextlib.suppress(Exception):
            importlib.import_module(name)
    import _pytest.config

    for name in _pytest.config.default_plugins:
        with contextlib.suppress(ImportError):
            importlib.import_module(f"_pytest.{name}")
    runner = Runner(settings, answers)
    if settings.tests.is_dir():
        runner.warm_up()
    # What is here now lives as long as this process: the collector of every
    # child leaves it alone (pytest collects after each test), and no child
    # copies its pages by marking them.
    gc.collect()
    gc.freeze()
    runner.answer({"event": "ready", "pid": os.getpid()})
    runner.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
