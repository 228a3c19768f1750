"""Content errors reach builders, and broken content never leaves a game without commands.

Integration tests over 127.0.0.1: a type class hook that raises, the
``errors`` command, content that fails to load at start (the engine's own
commands stand in, builders are told at login, the fix applies on save).
The unit tests drive ``engine.guard.errors.ContentErrors`` with a fake clock.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from game_helpers import players

from engine.app import Game
from engine.commands import fallback
from engine.guard.errors import ContentErrors, describe, plain_names

if TYPE_CHECKING:
    from conftest import MakeClient

BROKEN_ROOM = '''
"""Rooms: what a place looks like."""

from engine.api import Room as BaseRoom


class Room(BaseRoom):
    """A room whose look fails."""

    def appearance(self, looker):
        return f"{1 / 0}"  # BROKEN
'''


def line_of(source: str, marker: str) -> int:
    lines = source.lstrip("\n").splitlines()
    return next(i for i, text in enumerate(lines, 1) if marker in text)


# -- hooks ------------------------------------------------------------------------------


@pytest.mark.game(reload=True)
async def test_a_hook_that_raises_is_told_to_builders_and_the_reload_says_so(
    game: Game, make_client: MakeClient, content_dir: Path
) -> None:
    alice, bob = await players(make_client, "Alice", "Bob")
    (content_dir / "typeclasses" / "rooms.py").write_text(
        BROKEN_ROOM.lstrip("\n"), encoding="utf-8"
    )
    line = line_of(BROKEN_ROOM, "# BROKEN")
    where = f"content/typeclasses/rooms.py:{line}, in appearance"
    # The reload itself stands, and its report says the new code fails in a hook.
    report = await alice.expect("[reload] Reloaded typeclasses.rooms")
    report += await alice.expect("\r\n")
    assert "Warning: content.typeclasses.rooms.Room fails in appearance() of #" in report
    assert f"{where}: ZeroDivisionError: division by zero" in report

    # Players get a short neutral line; builders are not told the same error again.
    await bob.command("look", "That did not work; the builders have been told.")
    await bob.command("look", "That did not work; the builders have been told.")
    # (Notices that reached Alice at her prompt end with the prompt again: the
    # listing is read from its first line on.)
    listing = await alice.command("errors", "Recent content errors")
    listing += await alice.expect("\r\n> ")
    assert "Recent content errors (1), newest first:" in listing
    assert f"{where}: ZeroDivisionError: division by zero (running 'look' for Bob)" in listing
    # The error is in code a reload just brought: it says so.
    assert "(new code, reloaded 0 s ago)" in listing
    assert "[3 times, last 0 s ago]" in listing
    assert alice.transcript.count(f"[error] {where}") == 1

    # Players have no errors command; builders can clear the list.
    await bob.command("errors", "You are not allowed to use 'errors'.")
    await alice.command("errors/clear", "Forgot 1 error.")
    await alice.command("errors", "No content errors since the server started.")


# -- broken content at start --------------------------------------------------------------


@pytest.mark.game(
    reload=True,
    files={"commands/general.py": "from engine.api import Command\n\ndef broken(:\n"},
)
async def test_a_game_whose_content_does_not_load_still_plays_on_the_engines_commands(
    game: Game, make_client: MakeClient, content_dir: Path
) -> None:
    alice, bob = await players(make_client, "Alice", "Bob")
    # Builders are told at login what is broken and where.
    assert "[reload] Content that does not load:" in alice.transcript
    assert "content/commands/general.py:3: SyntaxError" in alice.transcript
    assert "The engine's own look, help, who, quit stand in for the missing commands" in (
        alice.transcript
    )
    assert "Content that does not load" not in bob.transcript
    for command in ("look", "help", "who"):
        assert game.registry.get(command) in fallback.COMMANDS
    await bob.command("look", "Exits:")
    await bob.command("who", "2 players online:")
    help_text = await bob.command("help", "Type 'help <command>' for more.")
    assert "quit" in help_text and "errors" not in help_text
    await alice.command("errors", "Content that does not load:")
    # Content's other modules loaded: building commands are there.
    await alice.command("dig Attic", "Dug room Attic")
    # The fixed file applies on save, and content's commands take over.
    original = (Path(__file__).parents[2] / "content" / "commands" / "general.py").read_text()
    (content_dir / "commands" / "general.py").write_text(original, encoding="utf-8")
    await alice.expect("[reload] Reloaded commands.general")
    assert game.registry.get("look") not in fallback.COMMANDS
    await bob.command("say hello", 'You say, "hello"')
    bob.send("quit")
    await bob.expect_closed()


@pytest.mark.game(
    content_budget=0.3,
    files={"commands/hang.py": "from engine.api import Command\n\nwhile True: pass\n"},
)
async def test_a_module_that_hangs_at_start_is_left_out_and_the_game_starts(
    game: Game, make_client: MakeClient
) -> None:
    (alice,) = await players(make_client, "Alice")
    # Stopped at its budget (0.3 s), a little later on a loaded machine.
    assert re.search(
        r"content/commands/hang\.py:3: ContentTimeout: stopped after 0\.\d s", alice.transcript
    ), alice.transcript
    await alice.command("say hi", 'You say, "hi"')


# -- ContentErrors alone ------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_error_is_told_at_once_then_at_most_once_a_minute_with_its_repeats() -> None:
    told: list[str] = []
    clock = Clock()
    errors = ContentErrors(told.append, interval=60, clock=clock)
    errors.record("content/x.py:3, in run", "KeyError: 'a'", " (running 'x' for Pat)")
    assert told == ["content/x.py:3, in run: KeyError: 'a' (running 'x' for Pat)"]
    for _ in range(4):
        clock.now += 10
        errors.record("content/x.py:3, in run", "KeyError: 'a'", " (running 'x' for Pat)")
    assert len(told) == 1
    clock.now += 30  # a minute since it was told
    errors.record("content/x.py:3, in run", "KeyError: 'a'", " (running 'x' for Lee)")
    assert told[-1] == (
        "content/x.py:3, in run: KeyError: 'a' (running 'x' for Lee) "
        "(and 4 more times since last told)"
    )
    # Another error is told at once, and listed first.
    errors.record("content/y.py:9, in tick", "ValueError: no")
    assert told[-1] == "content/y.py:9, in tick: ValueError: no"
    assert [e.where for e in errors.recent()] == [
        "content/y.py:9, in tick",
        "content/x.py:3, in run",
    ]
    assert errors.recent()[1].count == 6


def test_only_the_most_recent_distinct_errors_are_kept() -> None:
    errors = ContentErrors(lambda line: None, keep=3, clock=Clock())
    for n in range(5):
        errors.record(f"content/x.py:{n}, in run", "E")
    assert [e.where for e in errors.recent()] == [f"content/x.py:{n}, in run" for n in (4, 3, 2)]


async def test_fallback_commands_stand_only_while_content_lacks_their_key() -> None:
    from engine.commands.base import Command, Context
    from engine.commands.registry import Registry

    class Look(Command):
        key = "look"

        def run(self, ctx: Context) -> None:
            return None

    registry = Registry(fallback.COMMANDS, fallback.MODULE)
    assert registry.get("l") is fallback.COMMANDS[0]
    assert registry.module_of(fallback.COMMANDS[0]) == fallback.MODULE
    registry.replace({"content.general": [Look()]})
    own = registry.get("look")
    assert isinstance(own, Look)
    # The fallback's alias goes with it: content decides what 'l' means.
    assert registry.get("l") is None
    assert "look" in [c.key for c in registry.commands()]
    assert [c.key for c in registry.commands()].count("look") == 1
    assert [c.key for c in registry.starting_with("er")] == ["errors"]
    await asyncio.sleep(0)


def test_builders_never_read_a_modules_load_number() -> None:
    assert plain_names("content.commands.phrases@31.CmdX failed") == (
        "content.commands.phrases.CmdX failed"
    )
    assert plain_names("user@example.org stays") == "user@example.org stays"
    error = TypeError("<class 'content.commands.phrases@31.CmdX'> takes no arguments")
    assert (
        describe(error) == "TypeError: <class 'content.commands.phrases.CmdX'> takes no arguments"
    )
