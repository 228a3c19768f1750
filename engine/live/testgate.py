"""The game's tests guard its saves: a batch of saved content goes live only if they pass.

``TestGate`` runs the game's tests (its ``tests/`` folder, ``tests_dir``)
in a separate process, the warm runner (``engine.live.testrunner``), and
awaits the outcome without ever holding the event loop: players play on
while a run goes.  The tests read ``content/`` from the disk, which already
holds the saved files, while the game runs the old code until the run
passes (``LiveContent.watch``).

Which tests run: all of them, every time.  A test of the game plays the
whole game (``LocalGame`` loads every content module), so no import graph
says which tests a changed module reaches; the runner keeps every run
cheap instead (a fork of a process that has imported everything, content
compiled once per save, not once per test).

A run that takes longer than ``timeout`` (``test_timeout``) is stopped, and
so is a run whose save is overtaken by a newer one (the caller cancels
``run``).  A runner that dies is started again.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.config import Config
from engine.paths import CODE_ROOT
from engine.world.grammar import plural

log = logging.getLogger(__name__)

#: Failures named one by one in a refusal; the rest are counted.
NAMED_FAILURES = 3

#: Seconds the runner may take to start (Python, pytest, the engine, a first run).
START_TIMEOUT = 60.0

#: Seconds a stopped run's runner has to say so.
STOP_TIMEOUT = 5.0


def cores() -> int:
    """The processors this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


#: Processes one run is shared out to (by test file, the slowest first): one a core, up to 4.
WORKERS = max(1, min(4, cores()))


class RunnerGone(Exception):
    """The runner process ended (or could not start); the message says how."""


@dataclass
class TestOutcome:
    """What one run of the game's tests found."""

    __test__ = False  # not a test class, whatever pytest thinks of the name

    passed: int = 0
    #: (node id, the first line of what it raised), in the order they failed.
    failures: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    #: Why the tests did not finish ("" when they did): stopped at the limit, a crash.
    problem: str = ""
    #: The test running when the run was stopped or died, if one was.
    running: str | None = None

    @property
    def ok(self) -> bool:
        return not self.failures and not self.problem

    def summary(self) -> str:
        """``12 tests passed in 0.3 s``."""
        return f"{plural(self.passed, 'test')} passed in {self.seconds:.1f} s"

    def refusal(self) -> str:
        """Why the save is not applied, for builders: the test, and what it raised."""
        if self.problem:
            return f"Not applied: {self.problem}"
        named = "; ".join(f"{test}: {why}" for test, why in self.failures[:NAMED_FAILURES])
        more = len(self.failures) - NAMED_FAILURES
        if more > 0:
            named += f"; and {more} more ('hotmud test' shows them all)"
        if len(self.failures) == 1:
            return f"Not applied, a test fails: {named}"
        return f"Not applied, {len(self.failures)} tests fail: {named}"

    def errors(self) -> list[tuple[str, str]]:
        """(where, what) for the content errors list: each failure, or the problem."""
        if self.problem:
            return [(self.running or "tests", self.problem)]
        return list(self.failures)


def runner_environment() -> dict[str, str]:
    """The runner's environment: none of the live game's settings (``MUD_*``, ``HOTMUD_*``).

    A test that reads its settings from the environment must never find the
    live game's database or port there.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("MUD_", "HOTMUD_", "PYTEST_"))
    }
    # The engine the game runs, whether installed or run from a checkout.
    paths = [str(CODE_ROOT), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


class TestGate:
    """The game's tests, run in the warm runner on request; one run at a time."""

    __test__ = False

    def __init__(
        self,
        tests_dir: Path,
        content_dir: Path,
        *,
        root: Path | None = None,
        timeout: float = 20.0,
        cache: Path | None = None,
        workers: int = WORKERS,
    ) -> None:
        self.tests_dir = Path(tests_dir).resolve()
        self.content_dir = Path(content_dir).resolve()
        #: The game folder: pytest runs there, as ``hotmud test`` does.
        self.root = Path(root).resolve() if root is not None else self.tests_dir.parent
        self.timeout = timeout
        self.workers = workers
        #: Where the runner keeps its caches and the last run's output.
        self.cache = cache if cache is not None else self.root / "var" / "test-runs"
        self._process: asyncio.subprocess.Process | None = None
        self._ready: asyncio.Future[None] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._starting: asyncio.Lock | None = None
        #: Runs since the start (each attempt), for tests and ``make bench``.
        self.runs = 0
        #: The tests that failed in the runner's first run, with the content as the game
        #: started (a game loads content/ as it is on disk, tested or not).
        self.failing_at_start: list[tuple[str, str]] = []

    @classmethod
    def for_config(cls, config: Config) -> TestGate | None:
        """The gate of a server's settings (``tests_dir``, ``test_timeout``), or None."""
        tests = config.tests_path
        if tests is None or not config.reload:
            return None
        return cls(
            tests,
            config.content_dir,
            root=config.game_dir,
            timeout=config.test_timeout,
            cache=config.db_path.resolve().parent / "test-runs",
        )

    @property
    def active(self) -> bool:
        """Whether saves are tested now: the tests folder exists (it may come and go)."""
        return self.tests_dir.is_dir()

    @property
    def output(self) -> Path:
        """What the last run printed (pytest's whole report; its other processes' beside it,
        ``last-run-2.txt`` and on)."""
        return self.cache / "last-run.txt"

    def describe_tests(self) -> str:
        """``tests/``: the tests folder as builders know it."""
        try:
            return os.path.relpath(self.tests_dir, self.root) + "/"
        except ValueError:
            return str(self.tests_dir)

    # -- the runner process ----------------------------------------------------------------

    async def start(self) -> None:
        """Start the runner now (it takes a second or so), so that the first save is quick."""
        with contextlib.suppress(RunnerGone):
            await self._runner()

    async def _runner(self) -> asyncio.subprocess.Process:
        """The running runner, started (and waited for) if there is none."""
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            process = self._process
            if process is None or process.returncode is not None:
                process = await self._spawn()
            assert self._ready is not None
            try:
                await asyncio.wait_for(asyncio.shield(self._ready), START_TIMEOUT + self.timeout)
            except TimeoutError:
                await self._kill()
                raise RunnerGone(f"it did not start within {START_TIMEOUT:g} s") from None
            return process

    async def _spawn(self) -> asyncio.subprocess.Process:
        self.cache.mkdir(parents=True, exist_ok=True)
        settings = {
            "tests": str(self.tests_dir),
            "content": str(self.content_dir),
            "root": str(self.root),
            "cache": str(self.cache),
            "parent": os.getpid(),
            "warmup": min(self.timeout, 30.0),
            "workers": self.workers,
        }
        loop = asyncio.get_running_loop()
        self._ready = loop.create_future()
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "engine.live.testrunner",
                json.dumps(settings),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                # Only the pipes: never the listening socket or a player's connection.
                close_fds=True,
                # Out of the terminal's process group: Ctrl-C is the game's to handle.
                start_new_session=True,
                cwd=self.root,
                env=runner_environment(),
            )
        except OSError as exc:
            self._ready.set_exception(RunnerGone(f"it cannot start: {exc}"))
            self._ready.exception()  # retrieved: nobody may be waiting
            raise RunnerGone(f"it cannot start: {exc}") from None
        self._process = process
        log.info("test runner started (process %d) for %s", process.pid, self.tests_dir)
        self._reader = asyncio.ensure_future(self._read(process))
        return process

    async def _read(self, process: asyncio.subprocess.Process) -> None:
        """Every answer of ``process``, to whoever waits for it; its end, to everyone."""
        assert process.stdout is not None
        ready = self._ready
        while True:
            line = await process.stdout.readline()
            if not line:
                break
            try:
                message = json.loads(line)
            except ValueError:
                log.warning("test runner said: %r", line[:200])
                continue
            if message.get("event") == "ready":
                if ready is not None and not ready.done():
                    self.failing_at_start = [(str(t), str(w)) for t, w in message["failures"]]
                    ready.set_result(None)
                continue
            waiting = self._waiting.pop(int(message.get("id", 0)), None)
            if waiting is not None and not waiting.done():
                waiting.set_result(message)
        code = await process.wait()
        gone = RunnerGone(f"the test runner ended (exit code {code})")
        if self._process is process:
            self._process = None
            log.warning("%s; it is started again for the next save", gone)
        if ready is not None and not ready.done():
            ready.set_exception(gone)
            ready.exception()
        for waiting in self._waiting.values():
            if not waiting.done():
                waiting.set_exception(gone)
        self._waiting.clear()

    def _send(self, message: dict[str, Any]) -> None:
        process = self._process
        if process is None or process.stdin is None or process.stdin.is_closing():
            return
        with contextlib.suppress(OSError, RuntimeError):
            process.stdin.write((json.dumps(message) + "\n").encode())

    async def _kill(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(process.wait(), 5)

    async def close(self) -> None:
        """Stop the runner and whatever it runs."""
        process, self._process = self._process, None
        if process is not None:
            if process.stdin is not None:
                process.stdin.close()  # its end of the pipe: it stops its run and leaves
            try:
                await asyncio.wait_for(process.wait(), 2)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(process.wait(), 5)
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
            self._reader = None

    # -- runs ----------------------------------------------------------------------------

    async def run(self) -> TestOutcome:
        """Run every test against the files on disk now; the outcome.

        Cancelling the caller stops the run at once.  A run past ``timeout``
        is stopped and its outcome says so; a runner that dies is started
        again and the run tried once more.
        """
        gone: RunnerGone | None = None
        for _attempt in range(2):
            try:
                await self._runner()
                return await self._one_run()
            except RunnerGone as exc:
                gone = exc
        return TestOutcome(problem=f"the tests could not run: {gone}")

    async def _one_run(self) -> TestOutcome:
        run_id = next(self._ids)
        self.runs += 1
        answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[run_id] = answer
        self._send({"op": "run", "id": run_id})
        try:
            async with asyncio.timeout(self.timeout):
                message = await answer
        except TimeoutError:
            return await self._stop_late(run_id)
        except asyncio.CancelledError:
            # A newer save (or the game's end): this run is of no use any more.
            self._waiting.pop(run_id, None)
            self._send({"op": "stop", "id": run_id})
            raise
        return self._outcome(message)

    async def _stop_late(self, run_id: int) -> TestOutcome:
        """Stop a run that went past the time limit; which test was running, if the runner says."""
        stopped: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[run_id] = stopped
        self._send({"op": "stop", "id": run_id})
        running = None
        try:
            message = await asyncio.wait_for(stopped, STOP_TIMEOUT)
            running = message.get("running")
        except (TimeoutError, RunnerGone):
            self._waiting.pop(run_id, None)
            await self._kill()  # a runner that does not answer is no use
        where = f", in {running}" if running else ""
        return TestOutcome(
            problem=(
                f"the tests were stopped after {self.timeout:g} s (test_timeout){where}; "
                "a test that hangs or is this slow keeps every save out"
            ),
            running=running,
            seconds=self.timeout,
        )

    def _outcome(self, message: dict[str, Any]) -> TestOutcome:
        event = message.get("event")
        running = message.get("running")
        if event == "crashed":
            where = f", in {running}" if running else ""
            tail = str(message.get("tail") or "").strip().splitlines()
            last = f": {tail[-1].strip()}" if tail else ""
            return TestOutcome(
                problem=f"the tests did not finish: their process ended ({message.get('how')})"
                f"{where}{last}",
                running=running,
            )
        if event == "stopped":
            return TestOutcome(problem="the tests were stopped", running=running)
        failures = [(str(test), str(why)) for test, why in message.get("failures", [])]
        outcome = TestOutcome(
            passed=int(message.get("passed", 0)),
            failures=failures,
            seconds=float(message.get("seconds", 0.0)),
        )
        status = int(message.get("status", 0))
        # 0: all passed, 1: some failed, 5: no tests at all (nothing to keep a save out).
        if not failures and status not in (0, 1, 5):
            outcome.problem = (
                f"the tests could not run (pytest's exit status {status}); "
                f"'hotmud test' says why, and so does {self._shown(self.output)}"
            )
        return outcome

    def _shown(self, path: Path) -> str:
        try:
            return os.path.relpath(path, self.root)
        except ValueError:
            return str(path)
