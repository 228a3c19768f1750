"""A save goes live only if the game's tests pass (engine/live/testgate.py, testrunner.py).

Each game here runs in the test's own event loop with reload on and a tests
folder beside its content: the starter game's own tests (``tests/starter``)
and ``tests/test_greet.py``, which tests a ``greet`` command.  The tests of a
save run in the warm runner, a process of its own; the game goes on serving
meanwhile.  Every wait is bounded: the runner's first start imports pytest and
the engine, so the first outcome is given more time than the rest.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import textwrap
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from game_helpers import until

from engine.app import Game
from engine.config import Config
from engine.live.testgate import TestGate, TestOutcome
from engine.live.testrunner import failure_message, find_test_files, share_out
from engine.newgame import new_game
from engine.paths import starter_tests
from engine.testing import MudClient, ServerProcess

if TYPE_CHECKING:
    from conftest import Client, Connect, MakeGame

#: How long an outcome may take to reach builders (a loaded machine, a runner starting).
OUTCOME = 30.0

GREET = """
from engine.api import Command, Context


class CmdGreet(Command):
    \"\"\"Greet whoever is here.\"\"\"

    key = "greet"

    def run(self, ctx: Context) -> None:
        ctx.msg("Hello!")
"""

TEST_GREET = """
from engine.local import LocalGame
from engine.testing import call_command


async def test_greet_says_hello(game: LocalGame) -> None:
    square = game.world.start_room
    pat = game.world.create("character", "Pat", location=square, account_id=1)
    sent = await call_command("greet", pat, commands=game.registry.commands(), world=game.world)
    assert "Hello" in sent["Pat"][0], "greet must say Hello"
"""

SLOW = """
import time


def test_slow() -> None:
    time.sleep({seconds})
"""

REFUSED = (
    "[reload] Not applied, a test fails: tests/test_greet.py::test_greet_says_hello: "
    "AssertionError: greet must say Hello"
)


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")


def say_hi(content_dir: Path, greeting: str = "Hi there!") -> None:
    """A save that breaks test_greet (and nothing else)."""
    write(content_dir / "commands" / "greet.py", GREET.replace("Hello!", greeting))


@pytest.fixture
def tests_dir(content_dir: Path, tmp_path: Path) -> Path:
    """The game's tests beside its content: the starter game's, and test_greet."""
    folder = tmp_path / "tests"
    shutil.copytree(starter_tests(), folder, ignore=shutil.ignore_patterns("__pycache__"))
    write(folder / "test_greet.py", TEST_GREET)
    write(content_dir / "commands" / "greet.py", GREET)
    return folder


StartGated = Callable[..., Awaitable[tuple[Game, "Client"]]]


@pytest.fixture
def gated(make_game: MakeGame, connect: Connect) -> StartGated:
    """``game, alice = await gated(tests_dir)``: a game whose saves its tests guard, and its
    admin, logged in (builders read the outcomes)."""

    async def start(tests: Path, **settings: object) -> tuple[Game, Client]:
        game = await make_game(reload=True, tests_dir=str(tests), **settings)
        alice = await connect(game.port)
        await alice.login_new("Alice")
        return game, alice

    return start


async def player(game: Game, connect: Connect, name: str) -> Client:
    client = await connect(game.port)
    await client.login_new(name)
    return client


async def ready(game: Game) -> None:
    """Wait for the runner to be warm, so that what follows measures runs, not a start."""
    gate = game.content.tests
    assert gate is not None
    await asyncio.wait_for(gate.start(), OUTCOME)


async def line_of(client: MudClient, start: str, timeout: float = OUTCOME) -> str:
    """The whole notice line that begins with ``start``."""
    await client.expect(start, timeout=timeout)
    return start + (await client.expect("\r\n", timeout=5)).removesuffix("\r\n")


# -- what builders read ------------------------------------------------------------------


async def test_a_save_that_fails_a_test_is_not_applied_and_builders_read_the_test(
    gated: StartGated, tests_dir: Path, content_dir: Path, connect: Connect
) -> None:
    game, alice = await gated(tests_dir)
    bob = await player(game, connect, "Bob")
    await alice.command("greet", "Hello!")
    say_hi(content_dir)
    assert await line_of(alice, "[reload] Not applied") == REFUSED
    # Nothing changed: the old greet answers; players read nothing of it.
    await alice.command("greet", "Hello!")
    await bob.command("greet", "Hello!")
    assert "[reload]" not in bob.transcript
    # `errors` lists the failing test.
    listing = await alice.command("errors", "Recent content errors")
    listing += await alice.expect("\r\n> ")
    assert "tests/test_greet.py::test_greet_says_hello: AssertionError: greet must say Hello" in (
        listing
    )
    # The next save of a test tests again: with the test brought up to date, it goes live.
    write(tests_dir / "test_greet.py", TEST_GREET.replace("Hello", "Hi"))
    line = await line_of(alice, "[reload] Reloaded")
    assert line.startswith("[reload] Reloaded commands.greet: changed greet (")
    assert " tests passed in " in line and line.endswith(" s)."), line
    await alice.command("greet", "Hi there!")


async def test_a_passing_save_goes_live_saying_how_many_tests_passed(
    gated: StartGated, tests_dir: Path, content_dir: Path
) -> None:
    game, alice = await gated(tests_dir)
    await ready(game)
    started = time.monotonic()
    say_hi(content_dir, "Hello, friend!")
    line = await line_of(alice, "[reload] Reloaded")
    took = time.monotonic() - started
    count = len([p for p in tests_dir.glob("test_*.py")])
    assert count >= 6
    assert line.startswith("[reload] Reloaded commands.greet: changed greet (")
    assert line.endswith(" s).")
    passed = int(line.split("(")[1].split(" tests passed in ")[0])
    assert passed >= 20  # the starter game's tests and test_greet
    await alice.command("greet", "Hello, friend!")
    assert took < OUTCOME


async def test_a_broken_save_is_reported_as_ever_without_running_the_tests(
    gated: StartGated, tests_dir: Path, content_dir: Path
) -> None:
    game, alice = await gated(tests_dir)
    await ready(game)
    gate = game.content.tests
    assert gate is not None
    runs = gate.runs
    write(content_dir / "commands" / "greet.py", GREET.replace("def run", "def run("))
    line = await line_of(alice, "[reload] Reload failed")
    assert "content/commands/greet.py:" in line and "SyntaxError" in line
    assert gate.runs == runs
    await alice.command("greet", "Hello!")
    # Deleting a file that never loaded: builders are told it is gone, nothing changes.
    write(content_dir / "commands" / "oops.py", "this is not python\n")
    await line_of(alice, "[reload] Reload failed")
    (content_dir / "commands" / "oops.py").unlink()
    assert (
        await line_of(alice, "[reload] content/commands/oops.py")
        == "[reload] content/commands/oops.py is gone; it had not loaded, so nothing changes."
    )


async def test_content_that_fails_its_tests_at_start_is_in_errors(
    gated: StartGated, tests_dir: Path, content_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A save the tests refused is on disk: the next start loads it (nothing older to run).
    say_hi(content_dir)
    with caplog.at_level(logging.WARNING, logger="engine.live.manager"):
        game, alice = await gated(tests_dir)
        await ready(game)
        await until(lambda: game.errors.recent(), "the failing test recorded", timeout=5)
    [error] = game.errors.recent()
    assert error.line() == (
        "tests/test_greet.py::test_greet_says_hello: AssertionError: greet must say Hello"
        " (the content the game started with)"
    )
    assert "The content the game started with: a test fails: tests/test_greet.py" in caplog.text
    await alice.command("greet", "Hi there!")


# -- the game plays on -----------------------------------------------------------------------


@pytest.mark.slow
async def test_players_are_answered_promptly_while_a_slow_test_runs(
    gated: StartGated, tests_dir: Path, content_dir: Path, connect: Connect
) -> None:
    write(tests_dir / "test_slow.py", SLOW.format(seconds=3))
    game, alice = await gated(tests_dir)
    bob = await player(game, connect, "Bob")
    await ready(game)
    say_hi(content_dir, "Hello, slowly!")
    started = time.monotonic()
    longest = 0.0
    while time.monotonic() - started < 2.5:
        asked = time.monotonic()
        await bob.command("ping", "Pong", timeout=1.0)
        longest = max(longest, time.monotonic() - asked)
        await asyncio.sleep(0.05)
    assert longest < 0.5, longest
    # Still the old code while the tests run; then it goes live.
    await bob.command("greet", "Hello!")
    await line_of(alice, "[reload] Reloaded commands.greet")
    assert time.monotonic() - started >= 3.0
    await bob.command("greet", "Hello, slowly!")


@pytest.mark.slow
async def test_a_hanging_test_is_stopped_at_the_timeout_and_the_save_refused(
    gated: StartGated, tests_dir: Path, content_dir: Path
) -> None:
    write(tests_dir / "test_hang.py", SLOW.format(seconds=1000).replace("test_slow", "test_hangs"))
    game, alice = await gated(tests_dir, test_timeout=2.0)
    await ready(game)
    started = time.monotonic()
    say_hi(content_dir, "Hello, eventually!")
    line = await line_of(alice, "[reload] Not applied")
    took = time.monotonic() - started
    assert line.startswith(
        "[reload] Not applied: the tests were stopped after 2 s (test_timeout), "
        "in tests/test_hang.py::test_hangs"
    ), line
    assert 2.0 <= took < 8.0, took
    await alice.command("greet", "Hello!")
    # The run was killed, with the test's process; deleting the test tests the save again.
    (tests_dir / "test_hang.py").unlink()
    await line_of(alice, "[reload] Reloaded commands.greet")
    await alice.command("greet", "Hello, eventually!")


@pytest.mark.slow
async def test_a_newer_save_stops_the_run_under_way_and_tests_the_newer_state(
    gated: StartGated, tests_dir: Path, content_dir: Path
) -> None:
    write(tests_dir / "test_slow.py", SLOW.format(seconds=2))
    game, alice = await gated(tests_dir)
    await ready(game)
    gate = game.content.tests
    assert gate is not None
    runs = gate.runs
    say_hi(content_dir, "Hello, first!")
    await asyncio.sleep(0.8)  # the first save's run is under way
    assert gate.runs == runs + 1
    say_hi(content_dir, "Hello, second!")
    line = await line_of(alice, "[reload] Reloaded commands.greet")
    assert " tests passed in " in line
    assert gate.runs == runs + 2
    await alice.command("greet", "Hello, second!")
    # The first run never reported: one outcome, for the newer state.
    await asyncio.sleep(0.5)
    assert alice.transcript.count("[reload]") == 1, alice.transcript


async def test_reload_force_applies_what_the_tests_hold_back_and_is_audited(
    gated: StartGated,
    tests_dir: Path,
    content_dir: Path,
    connect: Connect,
    caplog: pytest.LogCaptureFixture,
) -> None:
    game, alice = await gated(tests_dir)
    bob = await player(game, connect, "Bob")
    await alice.command("grant Bob = builder", "Bob is now a builder.")
    say_hi(content_dir)
    assert await line_of(alice, "[reload] Not applied") == REFUSED
    await bob.command("reload/force", "Only an admin may reload/force")
    await bob.command("greet", "Hello!")
    with caplog.at_level(logging.INFO, logger="hotmud.audit"):
        alice.send("reload/force commands.greet")
        line = await line_of(alice, "[reload] Reloaded commands.greet")
    assert line.endswith(" ms). Applied without the tests (reload/force)."), line
    await bob.command("greet", "Hi there!")
    assert "AUDIT Alice forced content live without its tests: commands.greet." in caplog.text


async def test_what_the_tests_held_back_goes_live_when_their_folder_goes(
    gated: StartGated, tests_dir: Path, content_dir: Path
) -> None:
    _, alice = await gated(tests_dir)
    say_hi(content_dir)
    assert await line_of(alice, "[reload] Not applied") == REFUSED
    shutil.rmtree(tests_dir)
    line = await line_of(alice, "[reload] Reloaded commands.greet")
    assert line.endswith(" ms)."), line
    await alice.command("greet", "Hi there!")


async def test_without_a_tests_folder_saves_go_live_as_before(
    gated: StartGated, tmp_path: Path, content_dir: Path
) -> None:
    write(content_dir / "commands" / "greet.py", GREET)
    game, alice = await gated(tmp_path / "no-tests-here")
    started = time.monotonic()
    say_hi(content_dir)
    line = await line_of(alice, "[reload] Reloaded commands.greet", timeout=5)
    assert line.endswith(" ms)."), line
    assert time.monotonic() - started < 2.0
    gate = game.content.tests
    assert gate is not None and gate.runs == 0 and not gate.active
    await alice.command("greet", "Hi there!")


# -- a real server: the supervisor, its worker and the worker's runner --------------------------


def runner_pids(tests: Path) -> list[int]:
    """Test runners serving ``tests`` (their command line names the folder)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"engine.live.testrunner" in command and str(tests).encode() in b" ".join(command):
            found.append(int(entry.name))
    return found


async def test_a_game_folder_guards_its_saves_and_its_runner_dies_with_the_server(
    tmp_path: Path,
) -> None:
    folder = new_game(tmp_path / "mygame")
    assert (folder / "tests" / "conftest.py").is_file()  # hotmud new ships the tests
    write(folder / "content" / "commands" / "greet.py", GREET)
    write(folder / "tests" / "test_greet.py", TEST_GREET)
    server = ServerProcess(folder, env={"MUD_TESTS_DIR": str(folder / "tests")})
    try:
        await asyncio.to_thread(server.start)
        alice = await MudClient.connect(server.port, timeout=10)
        await alice.create_account("Alice", "a long password")
        say_hi(folder / "content")
        assert await line_of(alice, "[reload] Not applied") == REFUSED
        await alice.command("greet", "Hello!")
        assert len(runner_pids(folder / "tests")) == 1
        # The runner belongs to the worker: a kill -9 of the server ends it too.
        assert server.process is not None
        os.kill(server.process.pid, signal.SIGKILL)
        await asyncio.to_thread(server.wait)
        deadline = time.monotonic() + 10
        while runner_pids(folder / "tests") and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert not runner_pids(folder / "tests")
        alice.close()
    finally:
        server.stop()


# -- the parts ---------------------------------------------------------------------------------


def test_a_refusal_names_the_failing_tests_or_why_they_did_not_finish() -> None:
    one = TestOutcome(failures=[("tests/test_a.py::test_x", "AssertionError: x")])
    assert one.refusal() == "Not applied, a test fails: tests/test_a.py::test_x: AssertionError: x"
    many = TestOutcome(failures=[(f"tests/test_a.py::test_{i}", "boom") for i in range(5)])
    assert many.refusal().startswith("Not applied, 5 tests fail: tests/test_a.py::test_0: boom; ")
    assert many.refusal().endswith("; and 2 more ('hotmud test' shows them all)")
    assert TestOutcome(passed=12, seconds=0.34).summary() == "12 tests passed in 0.3 s"
    assert TestOutcome(passed=1, seconds=0.1).summary() == "1 test passed in 0.1 s"
    stopped = TestOutcome(problem="the tests were stopped after 2 s", running="tests/t.py::t")
    assert stopped.refusal() == "Not applied: the tests were stopped after 2 s"
    assert stopped.errors() == [("tests/t.py::t", "the tests were stopped after 2 s")]


def test_the_failure_message_is_the_first_line_of_what_the_test_raised() -> None:
    class Crash:
        message = "AssertionError: greet must say Hello\nassert 'Hi' == 'Hello'"

    class Report:
        longrepr = type("Repr", (), {"reprcrash": Crash()})()

    assert failure_message(Report()) == "AssertionError: greet must say Hello"

    class Collected:
        longrepr = "tests/test_x.py:3: in <module>\n    import nothing\nE   ModuleNotFoundError: x"

    assert failure_message(Collected()) == "ModuleNotFoundError: x"


def test_a_run_is_shared_out_by_test_file_the_slowest_first(tmp_path: Path) -> None:
    files = ["tests/test_a.py", "tests/test_b.py", "tests/test_c.py", "tests/test_d.py"]
    timed = {"tests/test_a.py": 0.3, "tests/test_b.py": 0.1, "tests/test_c.py": 0.1}
    assert share_out(files, timed, 2) == [
        ["tests/test_a.py"],
        ["tests/test_b.py", "tests/test_c.py", "tests/test_d.py"],
    ]
    assert share_out(files, timed, 1) == [files]
    assert share_out(files[:1], timed, 4) == [files[:1]]
    (tmp_path / "tests" / "deeper").mkdir(parents=True)
    for name in ("test_x.py", "x_test.py", "conftest.py", "helpers.py", "deeper/test_y.py"):
        (tmp_path / "tests" / name).write_text("", encoding="utf-8")
    assert find_test_files(tmp_path / "tests", tmp_path) == [
        "tests/test_x.py",
        "tests/x_test.py",
        "tests/deeper/test_y.py",
    ]


def test_where_the_tests_are(tmp_path: Path) -> None:
    game = tmp_path / "game"
    game.mkdir()
    (game / "hotmud.toml").write_text("", encoding="utf-8")
    config = Config.from_sources(["--game", str(game)], environ={})
    assert config.tests_path == game / "tests"
    off = Config.from_sources(["--game", str(game)], environ={"MUD_TESTS_DIR": ""})
    assert off.tests_path is None
    # Without a game folder only tests named by hand guard the saves.
    explicit = ["--content-dir", str(tmp_path / "c"), "--db-path", str(tmp_path / "d.db")]
    assert Config.from_sources(explicit, environ={}, cwd=tmp_path).tests_path is None
    named = Config.from_sources(explicit, environ={"MUD_TESTS_DIR": "t"}, cwd=tmp_path)
    assert named.tests_path == tmp_path / "t"
    assert Config(content_dir=tmp_path / "c").tests_path is None
    gate = TestGate.for_config(Config.from_sources(["--game", str(game)], environ={}))
    assert gate is not None and gate.timeout == 20.0 and not gate.active
    assert TestGate.for_config(Config(reload=False, tests_dir=str(tmp_path))) is None
