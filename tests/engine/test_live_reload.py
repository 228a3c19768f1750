"""Content edits reach connected players without a reconnect; broken edits change nothing."""

from __future__ import annotations

import asyncio
import re
import shutil
import textwrap
import time
import weakref
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from engine.app import Game

if TYPE_CHECKING:
    from conftest import Client, MakeClient

pytestmark = pytest.mark.game(reload=True)

OLD_SAY = """ctx.msg(f'You say, "{text}"')"""
NEW_SAY = """ctx.msg(f'You proclaim, "{text}"')"""

EXTRA = """
    from engine.api import Command, Context


    class CmdXyzzy(Command):
        \"\"\"A magic word that only exists while extra.py does.\"\"\"

        key = "xyzzy"

        def run(self, ctx: Context) -> None:
            ctx.msg("Nothing happens, magically.")
"""


def write_source(path: Path, text: str) -> None:
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")


def edit(path: Path, old: str, new: str) -> str:
    source = path.read_text(encoding="utf-8")
    assert source.count(old) == 1, f"{old!r} not found once in {path}"
    changed = source.replace(old, new)
    path.write_text(changed, encoding="utf-8")
    return changed


async def admin(make_client: MakeClient) -> Client:
    client = await make_client()
    await client.login_new("Alice")  # the first account: an admin, who sees reload reports
    return client


async def test_an_edit_reaches_the_connected_player_without_reconnecting(
    game: Game, make_client: MakeClient, content_dir: Path
) -> None:
    alice = await admin(make_client)
    bob = await make_client()
    await bob.login_new("Bob")
    await alice.command("say before", 'You say, "before"')
    await bob.expect('Alice says, "before"')

    started = time.monotonic()
    edit(content_dir / "commands" / "general.py", OLD_SAY, NEW_SAY)
    report = await alice.expect("[reload] Reloaded commands.general", timeout=2)
    report += await alice.expect("ms).", timeout=2)
    await alice.command("say after", 'You proclaim, "after"', timeout=2)
    assert time.monotonic() - started < 2.0
    assert "changed" in report and "say" in report
    # The other line of say is unchanged and still reaches the room.
    await bob.expect('Alice says, "after"')
    # Nobody was disconnected, and players get no builder reports.
    assert not alice.eof and not bob.eof
    assert "[reload]" not in bob.transcript
    await bob.command("say me too", 'You proclaim, "me too"')


async def test_a_broken_edit_is_reported_and_the_old_code_keeps_running(
    game: Game, make_client: MakeClient, content_dir: Path
) -> None:
    alice = await admin(make_client)
    general = content_dir / "commands" / "general.py"
    good = general.read_text(encoding="utf-8")
    broken_lines = good.splitlines()
    broken_at = next(i for i, line in enumerate(broken_lines, 1) if OLD_SAY in line)
    broken_lines[broken_at - 1] = broken_lines[broken_at - 1].replace(OLD_SAY, "ctx.msg(f'oops'")
    general.write_text("\n".join(broken_lines) + "\n", encoding="utf-8")

    report = await alice.expect("Reload failed", timeout=2) + await alice.expect("\r\n")
    assert "the old code keeps running" in report
    assert f"content/commands/general.py:{broken_at}" in report
    assert "SyntaxError" in report

    await alice.command("say still old", 'You say, "still old"')

    # The next good save applies.
    general.write_text(good.replace(OLD_SAY, NEW_SAY), encoding="utf-8")
    await alice.expect("[reload] Reloaded commands.general", timeout=2)
    await alice.command("say now new", 'You proclaim, "now new"')


async def test_an_exception_at_import_is_reported_with_its_line(
    game: Game, make_client: MakeClient, content_dir: Path
) -> None:
    alice = await admin(make_client)
    general = content_dir / "commands" / "general.py"
    source = general.read_text(encoding="utf-8")
    lines = source.splitlines()
    lines.append("missing_name + 1")
    general.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = await alice.expect("Reload failed", timeout=2) + await alice.expect("\r\n")
    assert f"content/commands/general.py:{len(lines)}" in report
    assert "NameError" in report
    await alice.command("say old", 'You say, "old"')


async def test_a_new_file_adds_its_command_and_deleting_it_removes_it(
    game: Game, make_client: MakeClient, content_dir: Path
) -> None:
    alice = await admin(make_client)
    bob = await make_client()
    await bob.login_new("Bob")
    await bob.command("xyzzy", "Unknown command 'xyzzy'")

    extra = content_dir / "commands" / "extra.py"
    write_source(extra, EXTRA)
    report = await alice.expect("ms).", timeout=2)
    assert "Reloaded commands.extra: added xyzzy" in report
    await bob.command("xyzzy", "Nothing happens, magically.")
    await bob.command("help xyzzy", "only exists while extra.py does.")

    extra.unlink()
    report = await alice.expect("ms).", timeout=2)
    assert "removed commands.extra" in report
    assert "removed xyzzy" in report, report
    await bob.command("xyzzy", "Unknown command 'xyzzy'")
    # The rest of the game is untouched.
    await bob.command("say hello", 'You say, "hello"')


async def test_a_clashing_new_command_is_refused_and_changes_nothing(
    game: Game, make_client: MakeClient, content_dir: Path
) -> None:
    alice = await admin(make_client)
    write_source(
        content_dir / "commands" / "clash.py",
        EXTRA.replace('key = "xyzzy"', 'key = "xyzzy"\n        aliases = ("say",)'),
    )
    report = await alice.expect("Reload failed", timeout=2) + await alice.expect("\r\n")
    assert "'say'" in report
    await alice.command("xyzzy", "Unknown command 'xyzzy'")
    await alice.command("say fine", 'You say, "fine"')


async def test_the_reload_command_reports_to_the_builder(
    game: Game, make_client: MakeClient
) -> None:
    alice = await admin(make_client)
    report = await alice.command("reload commands.general", "ms).")
    # Nothing was edited: the module is reloaded, and no command reported changed.
    assert "[reload] Reloaded commands.general: no commands changed" in report
    await alice.command("reload commands.nosuch", "no content module content.commands.nosuch")
    await alice.command("say after a manual reload", 'You say, "after a manual reload"')


NAP = """
    import asyncio

    from engine.api import Command, Context


    class CmdNap(Command):
        \"\"\"Sleep a while.\"\"\"

        key = "nap"

        async def run(self, ctx: Context) -> None:
            ctx.msg("You doze off.")
            await asyncio.sleep(float(ctx.args or 0))
            ctx.msg("You wake up.")
"""


@pytest.mark.game(reload=True, files={"commands/nap.py": NAP})
async def test_a_running_command_finishes_on_the_code_it_started_with(
    game: Game, make_client: MakeClient, content_dir: Path
) -> None:
    alice = await admin(make_client)
    await alice.command("nap 1", "You doze off.")
    edit(content_dir / "commands" / "nap.py", "You wake up.", "You wake up refreshed.")
    await alice.expect("[reload] Reloaded commands.nap", timeout=2)
    await alice.expect("You wake up", timeout=3)
    assert await alice.expect("\r\n") == ".\r\n"  # not " refreshed."
    await alice.command("nap 0", "You wake up refreshed.")


BROKEN_AT_START = """
    from engine.api import Command


    class CmdLater(Command):
        \"\"\"Works once the file is fixed.\"\"\"

        key = "later"

        def run(self, ctx) -> None
            ctx.msg("Fixed at last.")
"""


@pytest.mark.game(reload=True, files={"commands/later.py": BROKEN_AT_START})
async def test_a_module_broken_at_start_is_left_out_until_fixed(
    game: Game, make_client: MakeClient, content_dir: Path
) -> None:
    assert game.registry.get("later") is None
    alice = await admin(make_client)
    # Everything else loaded.
    await alice.command("say hi", 'You say, "hi"')
    await alice.command("later", "Unknown command 'later'")
    edit(content_dir / "commands" / "later.py", "-> None\n", "-> None:\n")
    await alice.expect("[reload] Reloaded commands.later: added later", timeout=2)
    await alice.command("later", "Fixed at last.")


@pytest.mark.game(reload=True)
async def test_a_command_that_cannot_be_built_is_refused(
    game: Game, make_client: MakeClient, content_dir: Path
) -> None:
    alice = await admin(make_client)
    write_source(
        content_dir / "commands" / "extra.py",
        EXTRA.replace('key = "xyzzy"', 'key = "two words"'),
    )
    report = await alice.expect("Reload failed", timeout=2) + await alice.expect("\r\n")
    assert "key must be one word" in report
    await alice.command("help", "Type 'help <command>' for more.")
    assert game.registry.get("two") is None


async def test_replaced_generations_are_freed(game: Game, make_client: MakeClient) -> None:
    alice = await admin(make_client)
    await alice.command("reload commands.general", "ms).")
    await alice.command("say one", 'You say, "one"')
    replaced = weakref.ref(type(game.registry.get("say")))
    replaced_module = weakref.ref(game.content.module("commands.general"))
    await alice.command("reload commands.general", "ms).")
    await alice.command("say two", 'You say, "two"')
    await asyncio.sleep(0)
    # What a reload retires goes at the next thaw of everything (engine.longlived).
    game.long_lived.collect_all()
    assert replaced() is None, "the engine still holds a command class of a replaced module"
    assert replaced_module() is None


async def test_no_command_is_lost_or_answered_twice_across_reloads(
    game: Game, make_client: MakeClient, content_dir: Path
) -> None:
    alice = await admin(make_client)
    general = content_dir / "commands" / "general.py"
    versions = [general.read_text(encoding="utf-8")]
    versions.append(versions[0].replace(OLD_SAY, NEW_SAY))
    saves = 0
    n = 0
    deadline = time.monotonic() + 8
    # Keep talking while general.py is saved every few lines, until several
    # reloads have landed between the lines.
    while n < 40 or alice.transcript.count("Reloaded commands.general") < 3:
        assert time.monotonic() < deadline, "the reloads did not come"
        alice.send(f"say n{n}.")
        if n % 8 == 4:
            saves += 1
            general.write_text(versions[saves % 2], encoding="utf-8")
        await alice.expect(f'"n{n}."')
        n += 1
        await asyncio.sleep(0.01)
    answers = re.findall(r'You (say|proclaim), "n(\d+)\."', alice.transcript)
    assert [int(number) for _, number in answers] == list(range(n))
    # Both versions answered: the reloads really happened in the middle.
    assert {verb for verb, _ in answers} == {"say", "proclaim"}


async def test_a_package_directory_moved_in_and_deleted(
    game: Game, make_client: MakeClient, content_dir: Path, tmp_path: Path
) -> None:
    alice = await admin(make_client)
    staging = tmp_path / "staging"
    staging.mkdir()
    write_source(staging / "__init__.py", '"""Quests."""\n')
    write_source(staging / "board.py", EXTRA)
    staging.rename(content_dir / "quests")
    report = await alice.expect("ms).", timeout=2)
    assert "Reloaded quests, quests.board: added xyzzy" in report
    await alice.command("xyzzy", "Nothing happens, magically.")

    shutil.rmtree(content_dir / "quests")
    report = await alice.expect("ms).", timeout=2)
    assert "removed quests, quests.board: removed xyzzy" in report
    await alice.command("xyzzy", "Unknown command 'xyzzy'")
