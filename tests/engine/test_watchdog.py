"""The content watchdog: runaway content is stopped at its line while everyone else plays.

Integration tests run a game with content that loops, sleeps or blocks in a
command (in process, ``LocalGame``, on the play loop), and on 127.0.0.1 in
an async command, a call Python cannot interrupt, at import, in a timer;
another player's ``look`` must be answered meanwhile.  The unit tests drive
``engine.guard.watchdog`` alone: an interrupt lands only in content frames.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from game_helpers import players, until

from engine.app import Game
from engine.guard.watchdog import WATCHDOG, ContentInterrupted
from engine.local import LocalGame, LocalPlayer

if TYPE_CHECKING:
    from conftest import Client, MakeClient

FUN = '''
import asyncio
import os
import socket
import time

from engine.api import Command, Context


class CmdSpin(Command):
    """Spin forever."""

    key = "spin"

    def run(self, ctx: Context) -> None:
        ctx.msg("Spinning.")
        while True: pass  # SPIN


class CmdNap(Command):
    """Sleep on the event loop."""

    key = "nap"

    def run(self, ctx: Context) -> None:
        time.sleep(5)  # NAP


class CmdListen(Command):
    """A blocking socket read that never gets data."""

    key = "listen"

    def run(self, ctx: Context) -> None:
        a, b = socket.socketpair()
        try:
            a.recv(10)  # LISTEN
        finally:
            a.close()
            b.close()


class CmdStubborn(Command):
    """Swallows every interrupt it gets."""

    key = "stubborn"

    def run(self, ctx: Context) -> None:
        while True:
            try:
                while True: pass  # STUBBORN
            except BaseException:
                ctx.msg("Ha, not stopping.")


class CmdAspin(Command):
    """An async command whose second stretch spins."""

    key = "aspin"

    async def run(self, ctx: Context) -> None:
        ctx.msg("First stretch.")
        await asyncio.sleep(0.01)
        while True: pass  # ASPIN


class CmdShell(Command):
    """A call that blocks outside Python with the GIL released."""

    key = "shell"

    def run(self, ctx: Context) -> None:
        os.system("sleep 1")  # SHELL
        ctx.msg("Shell done.")


class CmdCrunch(Command):
    """A long C call: Python cannot interrupt it."""

    key = "crunch"

    def run(self, ctx: Context) -> None:
        total = sum(range(60_000_000))  # CRUNCH
        ctx.msg(f"Crunched {total}.")
'''

LOOPY_IMPORT = """
from engine.api import Command, Context

while True: pass  # IMPORT LOOP


class CmdLoopy(Command):
    key = "loopy"

    def run(self, ctx: Context) -> None:
        ctx.msg("Loopy v1.")
"""

FIXED_IMPORT = """
from engine.api import Command, Context


class CmdLoopy(Command):
    key = "loopy"

    def run(self, ctx: Context) -> None:
        ctx.msg("Loopy v2.")
"""


def line_of(source: str, marker: str) -> int:
    """The 1-based line of ``source`` (as written to a file) that holds ``marker``."""
    lines = source.lstrip("\n").splitlines()
    return next(i for i, text in enumerate(lines, 1) if marker in text)


async def look_within(client: Client | LocalPlayer, seconds: float) -> float:
    """Another player's look: it must be answered within ``seconds``; returns the time."""
    started = time.monotonic()
    await client.command("look", "Exits:", timeout=seconds)
    return time.monotonic() - started


# -- commands -------------------------------------------------------------------------


@pytest.mark.game(files={"commands/fun.py": FUN})
async def test_a_busy_loop_command_is_stopped_at_its_line_and_everyone_plays_on(
    local: LocalGame,
) -> None:
    alice, bob = await local.players("Alice", "Bob")  # Alice: the admin
    started = time.monotonic()
    bob.send("spin")
    await asyncio.sleep(0.1)
    line = line_of(FUN, "# SPIN")
    expected = (
        f"Stopped 'spin' after 1.0 s: content/commands/fun.py:{line}, in run (it held the game)."
    )
    # Builders online are told the same line, and Alice's look is answered.
    alice.send("look")
    await alice.expect(f"[error] {expected}")
    await alice.expect("Exits:")
    assert time.monotonic() - started < 3.0
    await bob.expect("Spinning.")
    # The player reads a plain sentence: the file and line are the builders'.
    text = await bob.expect("That did not work; the builders have been told.")
    assert "fun.py" not in text
    assert time.monotonic() - started < 2.5
    # The player goes on playing.
    await bob.command("look", "Exits:")
    assert local.errors.recent()[0].where == f"content/commands/fun.py:{line}, in run"


@pytest.mark.game(files={"commands/fun.py": FUN}, content_budget=0.3)
@pytest.mark.parametrize(
    ("command", "marker"), [("nap", "# NAP"), ("listen", "# LISTEN"), ("stubborn", "# STUBBORN")]
)
async def test_sleeps_blocking_reads_and_swallowed_interrupts_are_stopped(
    local: LocalGame, command: str, marker: str
) -> None:
    alice, bob = await local.players("Alice", "Bob")
    bob.send(command)
    await asyncio.sleep(0.05)
    assert await look_within(alice, 3.0) < 3.0
    await bob.expect("That did not work; the builders have been told.")
    # Alice, an admin, is told where it stopped (before her look's answer, or after).
    notice = f"s: content/commands/fun.py:{line_of(FUN, marker)}, in run (it held the game)."
    if notice not in alice.transcript:
        await alice.expect(notice)
    assert f"[error] Stopped '{command}' after " in alice.transcript
    await bob.command("look", "Exits:")


@pytest.mark.game(files={"commands/fun.py": FUN}, content_budget=0.3)
async def test_each_stretch_of_an_async_command_has_its_own_budget(
    game: Game, make_client: MakeClient
) -> None:
    alice, bob = await players(make_client, "Alice", "Bob")
    bob.send("aspin")
    await bob.expect("First stretch.")
    assert await look_within(alice, 3.0) < 3.0
    await bob.expect("That did not work; the builders have been told.")
    # Alice, an admin, is told where it stopped (before her look's answer, or after).
    notice = f"s: content/commands/fun.py:{line_of(FUN, '# ASPIN')}, in run (it held the game)."
    if notice not in alice.transcript:
        await alice.expect(notice)


@pytest.mark.game(files={"commands/fun.py": FUN}, content_budget=0.1)
async def test_a_call_python_cannot_interrupt_is_logged_and_builders_are_told(
    game: Game, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    alice, bob = await players(make_client, "Alice", "Bob")
    with caplog.at_level(logging.WARNING, logger="engine.guard.watchdog"):
        # A blocking call that releases the GIL: the stack is logged while it blocks.
        bob.send("shell")
        await bob.expect("That did not work; the builders have been told.", timeout=10)
        assert "has held the game for" in caplog.text and 'os.system("sleep 1")' in caplog.text
        # Stopped as the call returns (at its line or the next); builders hear of both.
        await stalled_line(alice, "shell", line_of(FUN, "# SHELL"))
        # A C loop that holds the GIL: seen once it returns.
        bob.send("crunch")
        await bob.expect("That did not work; the builders have been told.", timeout=10)
        await stalled_line(alice, "crunch", line_of(FUN, "# CRUNCH"))
    # Logged either by the watchdog thread while it waited or, if the call kept
    # every Python thread out, by the signal handler once it returned.
    assert "'crunch' was in a call Python could not interrupt for" in caplog.text or (
        "'crunch' has held the game for" in caplog.text
    )


async def stalled_line(client: Client, command: str, line: int) -> None:
    text = await client.expect("Part of that time it was in a call Python could not interrupt.")
    assert f"[error] Stopped '{command}' after " in text
    assert (
        f"content/commands/fun.py:{line}, in run" in text
        or f"content/commands/fun.py:{line + 1}, in run" in text
    ), text


# -- loads ------------------------------------------------------------------------------


@pytest.mark.game(reload=True, content_budget=0.3)
async def test_a_module_that_loops_at_import_fails_like_a_syntax_error(
    game: Game, make_client: MakeClient, content_dir: Path
) -> None:
    alice, bob = await players(make_client, "Alice", "Bob")
    path = content_dir / "commands" / "loopy.py"
    path.write_text(LOOPY_IMPORT.lstrip("\n"), encoding="utf-8")
    await asyncio.sleep(0.1)
    assert await look_within(bob, 3.0) < 3.0
    line = line_of(LOOPY_IMPORT, "# IMPORT LOOP")
    await alice.expect(
        "[reload] Reload failed, the old code keeps running: "
        f"content/commands/loopy.py:{line}: ContentTimeout: stopped after "
    )
    await bob.command("loopy", "Unknown command 'loopy'")
    # The next good save applies.
    path.write_text(FIXED_IMPORT.lstrip("\n"), encoding="utf-8")
    await alice.expect("[reload] Reloaded commands.loopy: added loopy")
    await bob.command("loopy", "Loopy v2.")


@pytest.mark.game(reload=True, content_budget=0.3)
async def test_a_module_that_sleeps_at_import_is_stopped_and_the_watcher_keeps_working(
    game: Game, make_client: MakeClient, content_dir: Path
) -> None:
    alice, bob = await players(make_client, "Alice", "Bob")
    path = content_dir / "commands" / "loopy.py"
    path.write_text(FIXED_IMPORT.replace("class", "time.sleep(3)\n\n\nclass", 1), encoding="utf-8")
    path.write_text("import time\n" + path.read_text(encoding="utf-8"), encoding="utf-8")
    await alice.expect("ContentTimeout: stopped after 0.3 s", timeout=3)
    path.write_text(FIXED_IMPORT.lstrip("\n"), encoding="utf-8")
    await alice.expect("[reload] Reloaded commands.loopy: added loopy")
    await bob.command("loopy", "Loopy v2.")


# -- timers -----------------------------------------------------------------------------

TIMER = """
import time

from engine.api import Command, Context

RUNS = []
#: The test puts one item here once the builder is online: the next tick loops.
ARMED = []


def setup(ctx):
    ctx.every(0.05, tick)


def tick():
    RUNS.append(len(RUNS))
    if len(ARMED) == 1:
        ARMED.append("looping")
        while True: pass  # TIMER LOOP
"""


@pytest.mark.game(files={"commands/timer.py": TIMER}, content_budget=0.3)
async def test_a_runaway_timer_callback_is_stopped_and_the_timer_goes_on(
    game: Game, make_client: MakeClient
) -> None:
    alice, bob = await players(make_client, "Alice", "Bob")
    module = game.content.module("commands.timer")
    assert module is not None
    module.ARMED.append("armed")
    line = line_of(TIMER, "# TIMER LOOP")
    await alice.expect(f"content/commands/timer.py:{line}, in tick (it held the game).")
    runs = len(module.RUNS)
    await until(lambda: len(module.RUNS) >= runs + 2, "the timer runs on")
    assert await look_within(bob, 3.0) < 3.0


# -- the watchdog alone -------------------------------------------------------------------


def _engine_spin(seconds: float, done: list[str]) -> None:
    """Engine code: it must run to its end even when the budget passes inside it."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass
    done.append("engine finished")


def test_an_interrupt_waits_until_control_is_back_in_content(tmp_path: Path) -> None:
    content = tmp_path / "content"
    content.mkdir()
    source = "def loop(engine, done):\n    engine(0.4, done)\n    while True: pass\n"
    namespace: dict[str, object] = {}
    exec(compile(source, str(content / "looping.py"), "exec"), namespace)
    done: list[str] = []
    started = time.monotonic()
    with (
        pytest.raises(ContentInterrupted) as caught,
        WATCHDOG.section("'loop'", 0.1, str(content)) as section,
    ):
        namespace["loop"](_engine_spin, done)  # type: ignore[operator]
    assert done == ["engine finished"], "the interrupt landed in engine code"
    assert section.interrupted
    assert section.where is not None and section.where[1] == 3
    assert caught.value.__traceback__ is not None
    assert time.monotonic() - started < 1.0


def test_a_nested_section_pauses_its_parents_clock(tmp_path: Path) -> None:
    with WATCHDOG.section("outer", 0.3, str(tmp_path)) as outer:
        with WATCHDOG.section("inner", 0.3, str(tmp_path)):
            time.sleep(0.2)
        with WATCHDOG.section("inner", 0.3, str(tmp_path)):
            time.sleep(0.2)
        assert not outer.over(time.monotonic()), "the parent was charged its children's time"
    assert not outer.interrupted


# -- content that spends its time in engine calls -------------------------------------------


class _EngineCalls:
    """Engine code content calls: short calls, each counted in and out."""

    def __init__(self) -> None:
        self.entered = 0
        self.finished = 0

    def work(self) -> None:
        self.entered += 1
        total = 0
        for i in range(2000):  # about 50 us: nearly all the loop's time is here
            total += i
        self.finished += 1


def _content(tmp_path: Path, source: str) -> dict[str, object]:
    content = tmp_path / "content"
    content.mkdir(exist_ok=True)
    namespace: dict[str, object] = {}
    exec(compile(source, str(content / "calls.py"), "exec"), namespace)
    return namespace


def test_a_loop_of_short_engine_calls_is_stopped_at_its_first_line_after_the_budget(
    tmp_path: Path,
) -> None:
    # Bounded: without the interrupt the loop ends by itself after 5 s.
    source = (
        "import time\n"
        "def loop(engine):\n"
        "    end = time.monotonic() + 5\n"
        "    while time.monotonic() < end:\n"
        "        engine.work()\n"
    )
    loop = _content(tmp_path, source)["loop"]
    late = []
    for _ in range(3):  # a thread waiting for a busy core is late now and then: the median
        calls = _EngineCalls()
        with (
            pytest.raises(ContentInterrupted),
            WATCHDOG.section("'loop'", 0.2, str(tmp_path / "content")) as section,
        ):
            loop(calls)  # type: ignore[operator]
        late.append(time.monotonic() - section.started - 0.2)
        assert section.interrupted
        assert calls.entered == calls.finished, "the interrupt landed inside engine code"
        assert section.where is not None and section.where[1] in (4, 5)
        assert not WATCHDOG._tracing and not WATCHDOG._armed and sys.gettrace() is None
    assert sorted(late)[1] < 0.1 and max(late) < 0.5, f"stopped {late} s after the budget"


def test_content_that_engine_code_calls_after_the_budget_is_stopped_as_it_starts(
    tmp_path: Path,
) -> None:
    """A hook (or a key function) starting while its caller is the engine's: stopped there."""
    source = "def hook(n):\n    return n\n"
    hook = _content(tmp_path, source)["hook"]
    done: list[str] = []
    with (
        pytest.raises(ContentInterrupted),
        WATCHDOG.section("'sort'", 0.2, str(tmp_path / "content")) as section,
    ):
        _engine_spin(0.3, done)  # over budget in engine code: it runs to its end
        sorted(range(10), key=hook)  # type: ignore[call-overload]
    assert done == ["engine finished"]
    assert section.where is not None and section.where[2] == "hook"


def test_a_nested_section_is_not_stopped_for_its_parent(tmp_path: Path) -> None:
    """Armed for an outer section over budget, a child section's content runs on."""
    source = "def child(engine, done):\n    engine(0.05, done)\n    return 'child ran'\n"
    child = _content(tmp_path, source)["child"]
    content = str(tmp_path / "content")
    done: list[str] = []
    with WATCHDOG.section("outer", 0.05, content) as outer:
        _engine_spin(0.2, done)  # the outer section is over budget, in engine code
        with WATCHDOG.section("inner", 1.0, content) as inner:
            assert child(_engine_spin, done) == "child ran"  # type: ignore[operator]
    assert not inner.interrupted
    assert not WATCHDOG._tracing and sys.gettrace() is None
    assert outer.over(time.monotonic())


def test_with_a_debugger_tracing_the_interrupt_still_lands_in_content(tmp_path: Path) -> None:
    """Another trace function is left alone: the thread's signals find content in time."""
    source = (
        "import time\n"
        "def loop(engine):\n"
        "    end = time.monotonic() + 5\n"
        "    while time.monotonic() < end:\n"
        "        engine.work()\n"
        "        total = sum(range(1000))\n"  # a share of the time in content
    )
    loop = _content(tmp_path, source)["loop"]

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        return None

    sys.settrace(tracer)
    try:
        with (
            pytest.raises(ContentInterrupted),
            WATCHDOG.section("'loop'", 0.1, str(tmp_path / "content")),
        ):
            loop(_EngineCalls())  # type: ignore[operator]
        assert sys.gettrace() is tracer
    finally:
        sys.settrace(None)
