"""Module lifecycle hooks and the tasks content starts: they live and die with a module version.

The unit tests drive ``engine.guard.tasks.TaskScheduler`` alone; the integration
tests run a real game over 127.0.0.1, save content files and watch the
timers of the old version stop and those of the new one start.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import textwrap
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from game_helpers import until

from engine.app import Game
from engine.guard.tasks import ENGINE_OWNER, TaskScheduler, owner_of
from reloader import exocet

if TYPE_CHECKING:
    from conftest import Client, MakeClient, MakeGame


# -- TaskScheduler on its own ---------------------------------------------------------


def module_level(*args: Any) -> None:
    """A plain function of this test module."""


class Holder:
    def method(self) -> None:
        """A bound method's owner is the module of its function."""

    def __call__(self) -> None:
        """A callable instance's owner is the module of its class."""


LOADED = """
def fn():
    return "loaded"


class Thing:
    def method(self):
        return "method"
"""


def test_owner_of_names_the_module_version_that_defined_the_function(tmp_path: Path) -> None:
    path = tmp_path / "xowner.py"
    path.write_text(LOADED, encoding="utf-8")
    loaded = exocet.load(exocet.ModuleSource("xowner", str(path)), exocet.pep302Mapper)
    again = exocet.load(exocet.ModuleSource("xowner", str(path)), exocet.pep302Mapper)
    name = loaded.__name__
    assert exocet.canonicalName(name) == "xowner" and name != again.__name__

    assert owner_of(loaded.fn) == name
    assert owner_of(again.fn) == again.__name__, "two versions must be two owners"
    assert owner_of(loaded.Thing().method) == name
    assert owner_of(loaded.Thing.method) == name
    assert owner_of(functools.partial(loaded.fn)) == name
    assert owner_of(functools.partial(functools.partial(loaded.Thing().method))) == name
    assert owner_of(module_level) == __name__
    assert owner_of(Holder().method) == __name__
    assert owner_of(Holder()) == __name__
    assert owner_of(lambda: None) == __name__
    assert owner_of(print) == "builtins"
    # Something without any module falls back to the engine.
    nameless = functools.partial(module_level)
    assert owner_of(type("NoModule", (), {"__module__": None})()) == ENGINE_OWNER
    assert owner_of(nameless) == __name__


async def test_after_runs_once_with_its_arguments_then_is_forgotten() -> None:
    tasks = TaskScheduler()
    calls: list[tuple[Any, ...]] = []

    def record(*args: Any) -> None:
        calls.append(args)

    handle = tasks.after(0.01, record, 1, "two")
    assert handle.owner == __name__ and not handle.done
    assert tasks.owned_by(__name__) == 1 and tasks.owners() == [__name__]
    await until(lambda: handle.done)
    await asyncio.sleep(0)
    assert calls == [(1, "two")]
    assert tasks.owned_by(__name__) == 0 and tasks.owners() == []


async def test_after_awaits_a_coroutine_function_and_waits_its_delay() -> None:
    tasks = TaskScheduler()
    done: list[float] = []
    started = time.monotonic()

    async def later(value: float) -> None:
        await asyncio.sleep(0)
        done.append(value)

    handle = tasks.after(0.1, later, 5.0)
    await asyncio.sleep(0.05)
    assert done == [], "after() ran before its delay"
    await asyncio.wait_for(handle.task, 2)
    assert done == [5.0] and time.monotonic() - started >= 0.1


async def test_every_repeats_survives_a_failing_call_and_stops_when_cancelled(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tasks = TaskScheduler()
    calls: list[int] = []

    def tick() -> None:
        calls.append(len(calls))
        if len(calls) == 2:
            raise RuntimeError("second tick fails")

    handle = tasks.every(0.01, tick)
    with caplog.at_level(logging.ERROR, logger="engine.guard.guard"):
        await until(lambda: len(calls) >= 5)
    assert "in timer" in caplog.text and "second tick fails" in caplog.text
    handle.cancel()
    await asyncio.sleep(0)
    assert handle.done and handle.task.cancelled()
    stopped_at = len(calls)
    await asyncio.sleep(0.05)
    assert len(calls) == stopped_at
    assert tasks.owned_by(__name__) == 0
    with pytest.raises(ValueError):
        tasks.every(0, tick)
    with pytest.raises(ValueError):
        tasks.every(-1, tick)


async def test_spawn_runs_a_coroutine_function_as_its_owners_task() -> None:
    tasks = TaskScheduler()
    gate = asyncio.Event()
    seen: list[str] = []

    async def worker(word: str) -> str:
        await gate.wait()
        seen.append(word)
        return word

    handle = tasks.spawn(worker, "hi")
    assert tasks.owned_by(__name__) == 1
    gate.set()
    assert await asyncio.wait_for(handle.task, 2) == "hi"
    assert seen == ["hi"]
    await asyncio.sleep(0)
    assert tasks.owned_by(__name__) == 0


async def test_a_failing_task_is_logged_and_forgotten(caplog: pytest.LogCaptureFixture) -> None:
    tasks = TaskScheduler()

    async def broken() -> None:
        raise KeyError("nope")

    with caplog.at_level(logging.ERROR, logger="engine.guard.tasks"):
        handle = tasks.spawn(broken)
        await until(lambda: handle.done)
        await asyncio.sleep(0)
    assert tasks.owned_by(__name__) == 0
    assert "task" in caplog.text and "KeyError" in caplog.text


async def test_retire_cancels_exactly_the_tasks_of_one_owner() -> None:
    tasks = TaskScheduler()
    ran: list[str] = []
    mine = [
        tasks.after(0.05, ran.append, "a", owner="content.x@1"),
        tasks.every(0.01, ran.append, "b", owner="content.x@1"),
        tasks.spawn(asyncio.sleep, 10, owner="content.x@1"),
    ]
    theirs = tasks.after(0.05, ran.append, "c", owner="content.x@2")
    engines = tasks.after(0.05, ran.append, "d")
    assert engines.owner == ENGINE_OWNER  # list.append has no module: not content
    assert tasks.owners() == ["content.x@1", "content.x@2", ENGINE_OWNER]
    assert tasks.owned_by("content.x@1") == 3

    assert tasks.retire("content.x@1") == 3
    assert tasks.owned_by("content.x@1") == 0
    assert tasks.retire("content.x@1") == 0
    assert tasks.retire("content.nobody@9") == 0
    await asyncio.sleep(0.1)
    assert all(h.task.cancelled() for h in mine)
    assert sorted(ran) == ["c", "d"], "a retired task ran, or another owner's did not"
    assert theirs.done and not theirs.task.cancelled()

    # A retired owner may start again (the new version's setup does).
    again = tasks.spawn(asyncio.sleep, 10, owner="content.x@1")
    other = tasks.spawn(asyncio.sleep, 10, owner="content.y@3")
    assert tasks.owned_by("content.x@1") == 1
    assert tasks.retire_all() == 2
    await asyncio.sleep(0)
    assert again.task.cancelled() and other.task.cancelled()
    assert tasks.owners() == []


# -- hooks and tasks in a running game ---------------------------------------------------

TICKER = """
    \"\"\"Ticks while live, and leaves a note on the start room when it retires.\"\"\"

    VERSION = "v1"


    def note(game, key):
        room = game.world.start_room
        if room is not None:
            room.attributes[key] = [*room.attributes.get(key, []), VERSION]


    def tick(game):
        note(game, "ticks")


    def setup(ctx):
        note(ctx.game, "setups")
        ctx.every(0.05, tick, ctx.game)


    def teardown(ctx):
        note(ctx.game, "teardowns")
"""


def source(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def write(path: Path, text: str) -> None:
    path.write_text(source(text), encoding="utf-8")


async def admin(make_client: MakeClient) -> Client:
    client = await make_client()
    await client.login_new("Alice")
    return client


async def report(client: Client, timeout: float = 3.0) -> str:
    await client.expect("[reload] ", timeout)
    return (await client.expect("\r\n", timeout)).rstrip()


def tasks_named(owner: str) -> list[asyncio.Task[Any]]:
    return [t for t in asyncio.all_tasks() if t.get_name().startswith(owner + ":")]


def notes(game: Game, key: str) -> list[str]:
    room = game.world.start_room
    assert room is not None
    return list(room.attributes.get(key, []))


@pytest.mark.game(reload=True, files={"ticker.py": TICKER})
async def test_a_reload_tears_down_the_old_version_and_sets_up_the_new(
    game: Game, make_client: MakeClient, content_dir: Path
) -> None:
    alice = await admin(make_client)
    await until(lambda: notes(game, "ticks").count("v1") >= 2)
    old = game.content.module("ticker")
    assert old is not None
    old_name = old.__name__
    assert game.tasks.owned_by(old_name) == 1
    (old_task,) = tasks_named(old_name)
    assert notes(game, "setups") == ["v1"] and notes(game, "teardowns") == []

    write(content_dir / "ticker.py", TICKER.replace('"v1"', '"v2"'))
    line = await report(alice)
    assert line.startswith("Reloaded ticker: no commands changed"), line
    assert "Warning" not in line
    new = game.content.module("ticker")
    assert new is not None and new.__name__ != old_name
    assert notes(game, "teardowns") == ["v1"], "the old version's teardown did not run"
    assert notes(game, "setups") == ["v1", "v2"]
    assert game.tasks.owned_by(old_name) == 0
    assert game.tasks.owned_by(new.__name__) == 1
    await asyncio.sleep(0)
    assert old_task.cancelled()

    v1_ticks = notes(game, "ticks").count("v1")
    await until(lambda: notes(game, "ticks").count("v2") >= 3)
    ticks = notes(game, "ticks")
    # Every old tick came before every new one, and the old ones stopped.
    assert ticks == ["v1"] * v1_ticks + ["v2"] * (len(ticks) - v1_ticks)
    del old, old_task


@pytest.mark.game(reload=True, files={"ticker.py": TICKER})
async def test_deleting_a_module_tears_it_down_and_cancels_its_tasks(
    game: Game, make_client: MakeClient, content_dir: Path
) -> None:
    alice = await admin(make_client)
    await until(lambda: len(notes(game, "ticks")) >= 2)
    module = game.content.module("ticker")
    assert module is not None
    name = module.__name__
    (task,) = tasks_named(name)
    del module

    (content_dir / "ticker.py").unlink()
    line = await report(alice)
    assert line.startswith("Reloaded nothing, removed ticker: no commands changed"), line
    assert notes(game, "teardowns") == ["v1"]
    assert game.tasks.owned_by(name) == 0
    assert game.tasks.owners() == []
    await asyncio.sleep(0)
    assert task.cancelled()
    count = len(notes(game, "ticks"))
    await asyncio.sleep(0.25)
    assert len(notes(game, "ticks")) == count, "a deleted module's timer still ticks"


HOOKED = """
    from engine.api import Command, Context

    VERSION = "v1"


    class CmdHooked(Command):
        \"\"\"Answers with its version.\"\"\"

        key = "hooked"

        def run(self, ctx: Context) -> None:
            ctx.msg(f"hooked {VERSION}")


    def teardown(ctx):
        raise RuntimeError(f"teardown of {VERSION} fails")
"""


@pytest.mark.game(reload=True, files={"commands/hooked.py": HOOKED})
async def test_hooks_that_raise_are_warnings_and_the_reload_stands(
    game: Game, make_client: MakeClient, content_dir: Path
) -> None:
    alice = await admin(make_client)
    await alice.command("hooked", "hooked v1")

    v2 = HOOKED.replace('"v1"', '"v2"').replace("def teardown(ctx):", "def setup(ctx):")
    write(content_dir / "commands" / "hooked.py", v2)
    line = await report(alice)
    assert line.startswith("Reloaded commands.hooked: changed hooked"), line
    assert game.content.last_report is not None and game.content.last_report.ok
    assert game.content.last_report.warnings == [
        "teardown() of commands.hooked failed: content/commands/hooked.py:16, "
        "in teardown: RuntimeError: teardown of v1 fails",
        "setup() of commands.hooked failed: content/commands/hooked.py:16, "
        "in setup: RuntimeError: teardown of v2 fails (new code, reloaded 0 s ago)",
    ]
    await alice.command("hooked", "hooked v2")


LATER = """
    import functools

    from engine.api import Command, Context

    VERSION = "v1"


    def ring(ctx, how):
        ctx.msg(f"ring {VERSION} {how}")


    class CmdLater(Command):
        \"\"\"Ring back later, three ways.\"\"\"

        key = "later"

        def run(self, ctx: Context) -> None:
            delay = float(ctx.args)
            ctx.game.tasks.after(delay, ring, ctx, "function")
            ctx.game.tasks.after(delay, self.bell, ctx)
            ctx.game.tasks.after(delay, functools.partial(ring, ctx, "partial"))
            ctx.msg(f"scheduled {VERSION}")

        def bell(self, ctx):
            ctx.msg(f"ring {VERSION} method")
"""


@pytest.mark.game(reload=True, files={"commands/later.py": LATER})
async def test_tasks_a_command_starts_die_with_its_module_version(
    game: Game, make_client: MakeClient, content_dir: Path
) -> None:
    alice = await admin(make_client)
    await alice.command("later 0.01", "scheduled v1")
    for how in ("function", "method", "partial"):
        await alice.expect(f"ring v1 {how}")

    # Tasks survive the reload of another module ...
    await alice.command("later 0.4", "scheduled v1")
    old_name = game.content.module("commands.later").__name__  # type: ignore[union-attr]
    assert game.tasks.owned_by(old_name) == 3
    general = content_dir / "commands" / "general.py"
    general.write_text(general.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    assert (await report(alice)).startswith("Reloaded commands.general:")
    assert game.tasks.owned_by(old_name) == 3
    for how in ("function", "method", "partial"):
        await alice.expect(f"ring v1 {how}", timeout=2)

    # ... and die with their own.
    await alice.command("later 0.4", "scheduled v1")
    pending = tasks_named(old_name)
    assert len(pending) == 3
    write(content_dir / "commands" / "later.py", LATER.replace('"v1"', '"v2"'))
    assert (await report(alice)).startswith("Reloaded commands.later: changed later")
    assert game.tasks.owned_by(old_name) == 0
    await asyncio.sleep(0)
    assert all(task.cancelled() for task in pending)
    mark = len(alice.transcript)
    await asyncio.sleep(0.6)
    await alice.command("later 0.01", "scheduled v2")
    for how in ("function", "method", "partial"):
        await alice.expect(f"ring v2 {how}")
    assert "ring v1" not in alice.transcript[mark:], "a retired version's task still ran"


WORLD_SETUP = """
    def setup(ctx):
        world = ctx.game.world
        room = world.start_room
        room.attributes["setups"] = room.attributes.get("setups", 0) + 1
        world.create("thing", f"token {room.attributes['setups']}", location=room)


    def teardown(ctx):
        room = ctx.game.world.start_room
        room.attributes["teardowns"] = room.attributes.get("teardowns", 0) + 1
"""


async def test_setup_at_start_sees_the_restored_world_and_teardown_runs_at_close(
    make_game: MakeGame, content_dir: Path, tmp_path: Path
) -> None:
    write(content_dir / "tokens.py", WORLD_SETUP)
    db = tmp_path / "restart.sqlite3"
    first = await make_game(db_path=db)
    room = first.world.start_room
    assert room is not None and room.attributes.get("setups") == 1
    ids = {o.id: o.name for o in first.world.objects.values()}
    await first.close()
    assert room.attributes.get("teardowns") == 1
    # Closing again (as a test's fixture does after a shutdown) tears nothing down twice.
    started = time.monotonic()
    await first.close()
    assert room.attributes.get("teardowns") == 1
    assert time.monotonic() - started < 1.0

    again = await make_game(db_path=db)
    room = again.world.start_room
    assert room is not None and room.name == "The Village Square"
    assert room.attributes.get("setups") == 2
    # The first game's close tore the module down, and that change was kept.
    assert room.attributes.get("teardowns") == 1
    # Everything stored before is still there, under its own id, plus the new token.
    now = {o.id: o.name for o in again.world.objects.values()}
    assert {i: now.get(i) for i in ids} == ids
    assert sorted(n for n in now.values() if n.startswith("token")) == ["token 1", "token 2"]


# -- content's own asyncio tasks --------------------------------------------------------

RAW_TASKS = """
import asyncio

from engine.api import Command, Context

TICKS = []


async def drip():
    while True:
        await asyncio.sleep(0.02)
        TICKS.append("drip")


class CmdTicks(Command):
    key = "ticks"

    def run(self, ctx: Context) -> None:
        asyncio.create_task(self.tick())
        asyncio.ensure_future(drip())
        ctx.msg("Ticking.")

    async def tick(self):
        while True:
            await asyncio.sleep(0.02)
            TICKS.append("tick")
            if TICKS.count("tick") == 3:
                raise ValueError("a raw task fails")
"""


@pytest.mark.game(reload=True, files={"commands/raw.py": RAW_TASKS})
async def test_plain_asyncio_tasks_of_content_die_with_their_module_version(
    game: Game, make_client: MakeClient, content_dir: Path
) -> None:
    alice = await admin(make_client)
    module = game.content.module("commands.raw")
    assert module is not None
    await alice.command("ticks", "Ticking.")
    assert game.tasks.owned_by(module.__name__) == 2
    # A failing stretch of a raw task reaches builders like any content error.
    await alice.expect("[error] content/commands/raw.py:", timeout=3)
    await alice.expect("ValueError: a raw task fails")
    await until(lambda: game.tasks.owned_by(module.__name__) == 1, "the failed task is forgotten")
    # Deleting the file retires the module version, and its tasks with it.
    (content_dir / "commands" / "raw.py").unlink()
    await report(alice)
    await until(lambda: game.tasks.owned_by(module.__name__) == 0, "the raw tasks are cancelled")
    count = len(module.TICKS)
    await asyncio.sleep(0.1)
    assert len(module.TICKS) == count, "a deleted module's task kept running"
