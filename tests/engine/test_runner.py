"""The one road from a typed line to a command run (``engine.commands.runner``).

``start_line`` runs a plain command at once and hands an ``async`` one back to
await, dispatched again when it starts; and no other engine module turns a
line into a command itself.
"""

from __future__ import annotations

import ast
import asyncio
from typing import Any

from engine.commands.base import Command, Context
from engine.commands.registry import Registry
from engine.commands.runner import run_line, start_line
from engine.guard.run import GuardedCommands
from engine.paths import CODE_ROOT
from engine.testing import CommandTestGame, RecordingSession
from engine.world.model import World


class CmdPing(Command):
    key = "ping"

    def run(self, ctx: Context) -> None:
        ctx.msg(f"pong {ctx.args}".strip())


class CmdWait(Command):
    key = "wait"

    async def run(self, ctx: Context) -> None:
        ctx.msg("Waiting.")
        await asyncio.sleep(0)
        ctx.msg("Done.")


class CmdWaitV2(CmdWait):
    async def run(self, ctx: Context) -> None:
        ctx.msg("Waiting, version 2.")


def setting() -> tuple[RecordingSession, dict[str, Any], Registry]:
    """Pat in a square, and what the road needs: the commands, ``ctx.game``, the guard."""
    world = World()
    square = world.create_room("Square")
    pat = world.create("character", "Pat", location=square, account_id=1)
    session = RecordingSession("Pat")
    session.character = pat
    pat.session = session
    registry = Registry()
    registry.replace({"test": [CmdPing(), CmdWait()]})
    road = {
        "registry": registry,
        "services": CommandTestGame(world, registry),
        "guard": GuardedCommands(),
    }
    return session, road, registry


async def test_a_plain_command_runs_at_once_and_an_async_one_comes_back_to_await() -> None:
    session, road, _ = setting()
    assert start_line("ping  me", session, **road) is None
    assert session.sent == ["pong me"]
    rest = start_line("wait", session, **road)
    assert rest is not None
    assert session.sent == ["pong me"]  # not started yet
    await rest
    assert session.sent == ["pong me", "Waiting.", "Done."]
    await run_line("wait", session, **road)
    assert session.sent[-2:] == ["Waiting.", "Done."]


async def test_an_async_command_is_dispatched_again_when_it_starts() -> None:
    session, road, registry = setting()
    rest = start_line("wait", session, **road)
    assert rest is not None
    registry.replace({"test": [CmdPing(), CmdWaitV2()]})  # a reload in between
    await rest
    assert session.sent == ["Waiting, version 2."]


async def test_unknown_words_empty_lines_and_connections_not_playing() -> None:
    session, road, _ = setting()
    assert start_line("   ", session, **road) is None
    assert session.sent == []
    assert start_line("dance", session, **road) is None
    assert session.sent == ["Unknown command 'dance'. Type 'help' for a list of commands."]
    session.character = None
    assert start_line("ping", session, **road) is None
    await run_line("ping", session, **road)
    assert session.sent == ["Unknown command 'dance'. Type 'help' for a list of commands."]


def test_only_the_runner_turns_a_line_into_a_command() -> None:
    """No other engine module parses, resolves or builds a ``Context`` itself."""
    found = []
    for path in sorted((CODE_ROOT / "engine").rglob("*.py")):
        module = ".".join(path.relative_to(CODE_ROOT).with_suffix("").parts)
        if module in ("engine.commands.runner", "engine.commands.dispatch"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "engine.commands.dispatch":
                found += [
                    f"{module} imports {a.name}" for a in node.names if a.name != "DIRECTIONS"
                ]
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "Context"
            ):
                found.append(f"{module} builds a Context")
    assert found == []
