"""A thousand reloads leave nothing behind: no old module version, no stale entry, no memory.

One content module defines commands, a type class with live objects, and a
lifecycle hook that keeps a timer; a player keeps using all of them while the
module is rebuilt 1,000 times in process (and a few times by real saves).
Every replaced version must then be collectable.
"""

from __future__ import annotations

import asyncio
import gc
import re
import sys
import textwrap
import time
import weakref
from dataclasses import fields
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import pytest

from engine.app import Game
from engine.config import Config
from reloader import exocet

if TYPE_CHECKING:
    from conftest import MakeClient

NAME = "content.commands.gears"

GEARS = """
    \"\"\"Gears: a type class, the commands that use it and a timer, all in one module.\"\"\"

    from engine.api import Command, Context, GameObject, Thing

    MARK = "m0"


    class Gear(Thing):
        \"\"\"Turns when used.\"\"\"

        def at_use(self, user: GameObject) -> str:
            return f"{self.name} turns"


    class CmdTurn(Command):
        \"\"\"Turn every gear here.\"\"\"

        key = "turn"

        def run(self, ctx: Context) -> None:
            gears = [o for o in ctx.here.contents if isinstance(o, Gear)]
            turned = [g.at_use(ctx.caller) for g in gears]
            ctx.msg(f"turn {ctx.args}: {len(turned)} gears {MARK}.")


    class CmdCount(Command):
        \"\"\"Count the gears here, asynchronously.\"\"\"

        key = "count"

        async def run(self, ctx: Context) -> None:
            ctx.msg(f"count {ctx.args}: {sum(type(o) is Gear for o in ctx.here.contents)}.")


    def idle() -> None:
        pass


    def setup(ctx) -> None:
        ctx.every(60, idle)


    def teardown(ctx) -> None:
        pass
"""

RAISES = """

raise RuntimeError("refused at import")
"""

INVALID = """

class CmdBad(Command):
    key = "two words"

    def run(self, ctx):
        pass
"""

GEARS_HERE = 10
RELOADS = 1000
WARM_UP = 50
SAVES = 3
#: What 1,000 reloads may add to the process, in kB (one leaked version is far more than 5 kB).
MAX_GROWTH_KB = 5 * 1024

#: Players here type as fast as they are answered: lift the per-connection input
#: rate limit (where the engine has one) so that the load is the reloads' to bear.
UNTHROTTLED = {
    name: value
    for name, value in {"input_rate": 1e6, "input_burst": 1e6}.items()
    if name in {f.name for f in fields(Config)}
}


def rss_kb() -> int:
    status = Path("/proc/self/status").read_text(encoding="ascii")
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    assert match is not None
    return int(match.group(1))


def settle() -> None:
    # The game freezes what survives a full collection (engine.longlived); frozen
    # objects are neither collected nor listed by gc.get_objects(), so thaw first.
    gc.unfreeze()
    gc.collect()
    gc.collect()
    exocet.purgeCollected()
    gc.unfreeze()


def stale_entries(current: ModuleType) -> list[str]:
    """``sys.modules`` aliases of the module's versions other than the live one."""
    return [
        alias
        for alias in list(sys.modules)
        if exocet.canonicalName(alias) == NAME and alias != current.__name__
    ]


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc for RSS")
@pytest.mark.game(reload=True, files={"commands/gears.py": GEARS}, **UNTHROTTLED)
async def test_a_thousand_reloads_under_play_leave_no_version_alive(
    game: Game, make_client: MakeClient, content_dir: Path
) -> None:
    started = time.monotonic()
    here = game.world.start_room
    assert here is not None
    gears = [
        game.world.create(
            "thing", f"gear {i}", location=here, typeclass=f"{NAME}.Gear",
            attributes={"teeth": 10 + i},
        )
        for i in range(GEARS_HERE)
    ]  # fmt: skip
    player = await make_client()
    await player.login_new("Alice")
    await player.command("turn 0", f"turn 0: {GEARS_HERE} gears m0.")
    builder = await make_client()
    await builder.login_new("Bob")

    answered = 0
    stop = asyncio.Event()

    async def play() -> None:
        """One command after the other, each waiting for its answer."""
        nonlocal answered
        while not stop.is_set():
            n = answered
            await player.command(f"turn {n}", f"turn {n}: {GEARS_HERE} gears m")
            await player.command(f"count {n}", f"count {n}: {GEARS_HERE}.")
            await player.command("use gear 3", "gear 3 turns")
            await player.command("help turn", "Turn every gear here.")
            answered += 1

    playing = asyncio.create_task(play())
    replaced: list[weakref.ref[object]] = []
    aliases: list[str] = []

    def retiring() -> ModuleType:
        """Note the live version: the module, and what lives in its namespace.

        A surviving function pins its module's namespace (``__globals__``),
        not the module object, so the classes and a function are watched too.
        """
        module = game.content.tree.live[NAME]
        for value in (module, module.Gear, module.CmdTurn, module.idle):
            replaced.append(weakref.ref(value))
        aliases.append(module.__name__)
        return module

    path = content_dir / "commands" / "gears.py"
    good = path.read_text(encoding="utf-8")

    def reload_once() -> None:
        retiring()
        report = game.content.apply({NAME})
        assert report.ok, report.describe()
        assert not report.warnings, report.warnings

    def fail_once(tail: str, error: str) -> None:
        """A version that executes whole, then is refused: it must not stay either."""
        path.write_text(good + tail, encoding="utf-8")
        try:
            report = game.content.apply({NAME})
        finally:
            path.write_text(good, encoding="utf-8")
        assert error in report.describe()

    try:
        for _ in range(WARM_UP):
            reload_once()
            await asyncio.sleep(0)
        settle()
        rss_before = rss_kb()
        answered_before = answered

        for i in range(RELOADS):
            reload_once()
            if i % 100 == 50:
                fail_once(RAISES, "RuntimeError: refused at import")
                fail_once(INVALID, "CmdBad.key must be one word")
            # Mostly one turn of the loop; now and then long enough for a round trip.
            await asyncio.sleep(0.002 if i % 25 == 0 else 0)

        # A few by real saves, through the watcher.
        for save in range(1, SAVES + 1):
            before = retiring()
            path.write_text(
                textwrap.dedent(GEARS).lstrip("\n").replace('"m0"', f'"m{save}"'), "utf-8"
            )
            deadline = time.monotonic() + 3
            # By its mark: the watcher may also replay the failed versions' writes.
            while f"m{save}" != game.content.tree.live[NAME].MARK:
                assert time.monotonic() < deadline, "a save was not reloaded"
                await asyncio.sleep(0.02)
            del before
            await builder.command("turn save", f"turn save: {GEARS_HERE} gears m{save}.")
    finally:
        stop.set()
        await asyncio.wait_for(playing, 5)

    assert answered - answered_before >= 10, "the player's commands did not interleave"
    assert game.tasks.owners() == [game.content.tree.live[NAME].__name__]
    assert game.tasks.owned_by(game.content.tree.live[NAME].__name__) == 1
    current = game.content.tree.live[NAME]
    assert all(type(g) is current.Gear for g in gears)
    assert [g.attributes["teeth"] for g in gears] == [10 + i for i in range(GEARS_HERE)]

    settle()
    alive = [ref() for ref in replaced if ref() is not None]
    holders = ""
    if alive:
        holders = "; ".join(
            repr(type(r))[:80] for r in gc.get_referrers(alive[0]) if r is not alive
        )
    assert not alive, f"{len(alive)} of {len(replaced)} replaced versions alive; held by {holders}"
    versions = [
        o
        for o in gc.get_objects()
        if isinstance(o, type) and exocet.canonicalName(o.__module__) == NAME
    ]
    assert sorted(versions, key=str) == [current.CmdCount, current.CmdTurn, current.Gear], (
        f"{len(versions)} classes of {NAME} alive, failed versions included"
    )
    assert stale_entries(current) == []
    assert not set(aliases) & set(sys.modules)
    growth = rss_kb() - rss_before
    elapsed = time.monotonic() - started
    print(
        f"\n{RELOADS + SAVES} reloads in {elapsed:.1f} s, {answered} commands answered, "
        f"RSS growth {growth} kB"
    )
    assert growth <= MAX_GROWTH_KB, f"RSS grew by {growth} kB over {RELOADS} reloads"
