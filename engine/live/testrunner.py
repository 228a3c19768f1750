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
process answers ``{"event": "ready", "failures": [...]}`` once (what failed
in the first run, with the content the game started with), then for each run one of
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
        #: Seconds spent in each test file (setup, call and teardown), to share files out.
        self.durations: dict[str, float] = {}

    def emit(self, message: dict[str, Any]) -> None:
        self.out.write(json.dumps(message) + "\n")
        self.out.flush()

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        self.emit({"start": nodeid})

    def pytest_runtest_logreport(self, report: Any) -> None:
        where = report.nodeid.split("::")[0]
        self.durations[where] = self.durations.get(where, 0.0) + float(report.duration)
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
                    "durations": self.durations,
                }
            }
        )


def pytest_args(root: Path, extra: list[str], targets: list[str]) -> list[str]:
    """What ``hotmud test`` gives pytest, for some of the game's tests."""
    return [
        "-q",
        "-p", "no:cacheprovider",
        "-o", "asyncio_mode=auto",
        "-o", "asyncio_default_fixture_loop_scope=function",
        "--rootdir", str(root),
        *extra,
        *targets,
    ]  # fmt: skip


def find_test_files(tests: Path, root: Path) -> list[str]:
    """The test files under ``tests`` (pytest's default names), relative to ``root``."""
    found = []
    for folder, dirs, files in os.walk(tests):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__" and not d.startswith("."))
        for name in sorted(files):
            if name.endswith(".py") and (name.startswith("test_") or name.endswith("_test.py")):
                found.append(os.path.relpath(os.path.join(folder, name), root))
    return found


def share_out(files: list[str], durations: dict[str, float], workers: int) -> list[list[str]]:
    """``files`` in at most ``workers`` groups of about equal time, the longest first.

    A file not timed yet counts as the median of those that were.
    """
    if workers < 2 or len(files) < 2:
        return [files]
    known = sorted(durations.get(f, 0.0) for f in files if f in durations)
    guess = known[len(known) // 2] if known else 0.05
    groups: list[list[str]] = [[] for _ in range(min(workers, len(files)))]
    loads = [0.0] * len(groups)
    for name in sorted(files, key=lambda f: -durations.get(f, guess)):
        least = loads.index(min(loads))
        groups[least].append(name)
        loads[least] += durations.get(name, guess)
    return [group for group in groups if group]


def _prepare_child(settings: Settings, output: Path) -> None:
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
    written = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(written, 1)
    os.dup2(written, 2)
    os.close(written)
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
    from engine.guard.watchdog import reset_after_fork

    reset_after_fork()
    use_compiled_content()
    # Rewritten test modules are cached here, never in the game folder.
    sys.pycache_prefix = str(settings.cache / "pycache")
    sys.dont_write_bytecode = False


def _pytest(settings: Settings, out: IO[str], targets: list[str]) -> None:
    import pytest
    import pytest_asyncio.plugin

    pytest.main(
        pytest_args(settings.root, settings.extra, targets),
        plugins=[pytest_asyncio.plugin, Reporter(out, time.monotonic())],
    )


def run_child(settings: Settings, write_fd: int, targets: list[str], output: Path) -> NoReturn:
    """A run's forked child: run ``targets``, report on ``write_fd``, and leave."""
    status = 70
    try:
        _prepare_child(settings, output)
        with open(write_fd, "w", encoding="utf-8") as out:
            _pytest(settings, out, targets)
        status = 0
    except BaseException:  # a child that failed says so in its output
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(status)


def warm_child(settings: Settings, write_fd: int, before: set[str]) -> NoReturn:
    """The warm-up's child: every test, then the names of the modules it imported that are
    not the game's own (those change; the engine and the libraries do not), how long each
    test file took, and what failed (the content the game started with)."""
    game = str(settings.root.resolve()) + os.sep
    durations: dict[str, float] = {}
    failures: list[tuple[str, str]] = []
    try:
        _prepare_child(settings, settings.output(0))
        with open(os.devnull, "w", encoding="utf-8") as nowhere:
            reporter = Reporter(nowhere, time.monotonic())
            import pytest
            import pytest_asyncio.plugin

            pytest.main(
                pytest_args(settings.root, settings.extra, [str(settings.tests)]),
                plugins=[pytest_asyncio.plugin, reporter],
            )
            durations = reporter.durations
            failures = reporter.failures
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
            found = {"modules": sorted(names), "durations": durations, "failures": failures}
            out.write(json.dumps(found))
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
    #: Children one run is shared out to (each a process of its own, on a core of its own).
    workers: int = 1
    runner: int = field(default_factory=os.getpid)
    #: This process's answers to the game (stdout, kept apart from anything printed).
    answers_fd: int = -1

    def output(self, child: int) -> Path:
        """Everything a child of the last run printed: pytest's report, for the details."""
        return self.cache / ("last-run.txt" if child == 0 else f"last-run-{child + 1}.txt")


@dataclass
class Child:
    """One process of a run: the pipe it reports on, what it said so far."""

    number: int
    pid: int
    fd: int
    buffer: bytes = b""
    running: str | None = None
    result: dict[str, Any] | None = None
    status: int | None = None

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
                self.running = None


@dataclass
class Run:
    """One run in progress: its children, each with a share of the test files."""

    id: int
    started: float
    children: list[Child] = field(default_factory=list)

    @property
    def running(self) -> str | None:
        """The tests running now, in the children still at work."""
        names = [c.running for c in self.children if c.running and c.status is None]
        return " and ".join(names) if names else None


class Runner:
    """Forks the children of each run, one run at a time, and relays what they report."""

    def __init__(self, settings: Settings, answers: IO[str]) -> None:
        self.settings = settings
        self.answers = answers
        self.selector = selectors.DefaultSelector()
        self.current: Run | None = None
        #: Seconds each test file took at its last run, to share files out evenly.
        self.durations: dict[str, float] = {}
        self._commands = b""

    def answer(self, message: dict[str, Any]) -> None:
        with contextlib.suppress(BrokenPipeError):  # the game is gone: so is this, soon
            self.answers.write(json.dumps(message) + "\n")
            self.answers.flush()

    def groups(self) -> list[list[str]]:
        """What each child runs: the first the tests folder, less what the others run.

        So a file pytest would collect under a name of the game's own choosing
        is never left out.
        """
        files = find_test_files(self.settings.tests, self.settings.root)
        shares = share_out(files, self.durations, self.settings.workers)
        tests = str(self.settings.tests)
        if len(shares) < 2:
            return [[tests]]
        others = [name for share in shares[1:] for name in share]
        ignored = [f"--ignore={self.settings.root / name}" for name in others]
        return [[*ignored, tests], *shares[1:]]

    def start(self, run_id: int) -> Run:
        compile_content(self.settings.content)
        run = Run(run_id, time.monotonic())
        for number, targets in enumerate(self.groups()):
            read_fd, write_fd = os.pipe()
            pid = os.fork()
            if pid == 0:  # the child
                os.close(read_fd)
                run_child(self.settings, write_fd, targets, self.settings.output(number))
            os.close(write_fd)
            with contextlib.suppress(OSError):
                os.setpgid(pid, pid)  # as the child does: whichever runs first
            child = Child(number, pid, read_fd)
            run.children.append(child)
            self.selector.register(read_fd, selectors.EVENT_READ, (run, child))
        self.current = run
        return run

    def _end(self, child: Child) -> None:
        """Kill what is left of ``child``'s process group and reap it."""
        if child.status is not None:
            return
        with contextlib.suppress(OSError):
            os.killpg(child.pid, signal.SIGKILL)
        _, child.status = os.waitpid(child.pid, 0)
        self.selector.unregister(child.fd)
        os.close(child.fd)

    def stop(self, run_id: int) -> None:
        run = self.current
        if run is None or run.id != run_id:
            return
        running = run.running
        for child in run.children:
            self._end(child)
        self.current = None
        self.answer({"id": run.id, "event": "stopped", "running": running})

    def finished(self, run: Run, child: Child) -> None:
        """A child is done (it said so, or closed its pipe): the run, once all are."""
        died = child.result is None
        running = child.running
        self._end(child)
        if died:
            for other in run.children:
                self._end(other)
            self.current = None
            assert child.status is not None
            code = os.waitstatus_to_exitcode(child.status)
            how = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
            output = self.settings.output(child.number)
            self.answer(
                {
                    "id": run.id,
                    "event": "crashed",
                    "how": how,
                    "running": running,
                    "tail": tail(output),
                }
            )
            return
        if any(c.status is None for c in run.children):
            return
        self.current = None
        results = [c.result for c in run.children if c.result is not None]
        for result in results:
            self.durations.update(result.get("durations", {}))
        statuses = [int(r["status"]) for r in results]
        # 5: a child with no tests (every file given to the others); not a problem.
        status = next((s for s in statuses if s not in (0, 5)), 0 if 0 in statuses else 5)
        self.answer(
            {
                "id": run.id,
                "event": "result",
                "passed": sum(int(r["passed"]) for r in results),
                "skipped": sum(int(r["skipped"]) for r in results),
                "failures": [f for r in results for f in r["failures"]],
                "status": status,
                "seconds": time.monotonic() - run.started,
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
                            self.stop(self.current.id)
                        return
                    self._commands += data
                    *lines, self._commands = self._commands.split(b"\n")
                    for line in lines:
                        with contextlib.suppress(ValueError):
                            self.command(json.loads(line))
                    continue
                run: Run = key.data[0]
                child: Child = key.data[1]
                if run is not self.current or child.status is not None:
                    continue
                data = os.read(child.fd, 65536)
                child.take(data)
                # Done once it says so (a process the tests left behind may hold
                # the pipe open), or once the pipe closes without a word (it died).
                if child.result is not None or not data:
                    self.finished(run, child)

    def warm_up(self) -> list[tuple[str, str]]:
        """A first run: it imports what the tests use, once, here; what failed in it.

        The child lists the modules it imported beyond this process's; they
        are imported here, so that every later child starts with them.  It
        also says how long each test file took, to share the files out, and
        which tests fail with the content the game started with.
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
            found = json.loads(data.decode() or "{}")
        except ValueError:
            found = {}
        self.durations.update(found.get("durations", {}))
        for name in found.get("modules", []):
            with contextlib.suppress(BaseException):
                importlib.import_module(name)
        return [(str(test), str(why)) for test, why in found.get("failures", [])]


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
        workers=int(given.get("workers", 1)),
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
    failures = runner.warm_up() if settings.tests.is_dir() else []
    # What is here now lives as long as this process: the collector of every
    # child leaves it alone (pytest collects after each test), and no child
    # copies its pages by marking them.
    gc.collect()
    gc.freeze()
    runner.answer({"event": "ready", "pid": os.getpid(), "failures": failures})
    runner.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
