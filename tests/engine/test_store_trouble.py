"""Acknowledged means durable, also while the database cannot be written.

A property test drives ``engine.world.durability.DurableOutput`` alone through
random changes, failing commits and kill points; integration tests run a
real game whose commits fail (injected, then on a real full filesystem).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from game_helpers import players, until
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.app import Game
from engine.world import objectstore
from engine.world.durability import DurableOutput

if TYPE_CHECKING:
    from conftest import MakeClient, MakeGame

# -- the property ------------------------------------------------------------------------

STEPS = st.lists(st.sampled_from(["change", "fail", "heal", "run"]), min_size=1, max_size=40)


async def scenario(steps: list[str]) -> None:
    database: set[int] = set()
    pending: list[int] = []
    told: list[int] = []
    failing = False

    def take() -> list[int]:
        taken = list(pending)
        pending.clear()
        return taken

    def write(snapshot: list[int]) -> None:
        if failing:
            raise sqlite3.OperationalError("database or disk is full")
        database.update(snapshot)

    durable: DurableOutput[list[int]] = DurableOutput(take, write)
    number = 0
    for step in steps:
        if step == "change":
            number += 1
            pending.append(number)
            durable.changed()
            durable.after_commit(lambda n=number: told.append(n))  # type: ignore[misc]
        elif step == "fail":
            failing = True
        elif step == "heal":
            failing = False
        else:
            await asyncio.sleep(0.02)
        # A kill could come at any moment: whatever a player was told is stored.
        assert set(told) <= database, f"told {sorted(set(told) - database)} before storing them"
    failing = False
    await asyncio.wait_for(durable.wait(), 10)
    assert told == list(range(1, number + 1)), "everything is told, in order, once stored"
    assert set(told) <= database


@settings(max_examples=40, deadline=None)
@given(steps=STEPS)
def test_output_is_released_only_for_changes_that_reached_the_database(steps: list[str]) -> None:
    asyncio.run(scenario(steps))


# -- a game whose database fails ----------------------------------------------------------


@pytest.mark.game()
async def test_while_saving_fails_changes_are_refused_and_everything_else_flows(
    game: Game, make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, bob = await players(make_client, "Alice", "Bob")
    real_write = objectstore.write
    broken = {"on": True}

    def failing_write(store: object, snap: objectstore.Snapshot) -> None:
        if broken["on"]:
            raise sqlite3.OperationalError("database or disk is full")
        real_write(store, snap)  # type: ignore[arg-type]

    monkeypatch.setattr(objectstore, "write", failing_write)
    # The first change meets the failure: its answer waits, builders are told.
    bob.send("down")
    await alice.expect("[world] Saving the world fails: disk full.")
    # Changes are refused at once from now on; what changes nothing flows.
    await alice.command(
        "dig Vault",
        "The world cannot be saved right now: disk full. Nothing was changed.",
    )
    await alice.command("look", "Exits:")
    await alice.command("say hello", 'You say, "hello"')
    await alice.command("who", "online:")
    assert not [o for o in game.world.objects.values() if o.name == "Vault"]
    # It recovers by itself; the waiting answer comes once its change is stored.
    broken["on"] = False
    await alice.expect("[world] Saving the world works again.", timeout=5)
    await bob.expect("A Damp Cellar")
    await until(lambda: game.durable.trouble is None and not game.durable._held)
    with sqlite3.connect(game.config.db_path) as db:
        (location,) = db.execute("SELECT location FROM objects WHERE name = 'Bob'").fetchone()
        (cellar,) = db.execute("SELECT id FROM objects WHERE name = 'A Damp Cellar'").fetchone()
    assert location == cellar
    await alice.command("dig Vault", "Dug room Vault")


def _can_mount() -> bool:
    return os.geteuid() == 0 and shutil.which("mount") is not None


@pytest.mark.skipif(not _can_mount(), reason="mounting a tmpfs needs root")
async def test_a_real_full_disk_refuses_changes_loses_nothing_and_recovers(
    make_game: MakeGame, make_client: MakeClient, tmp_path: Path
) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        game = await make_game(db_path=disk / "db.sqlite3")
        client = await _connect(game)
        await client.login_new("Alice")
        filler = disk / "filler"
        with open(filler, "wb", buffering=0) as handle, pytest.raises(OSError):
            while True:  # fill the disk to the last byte
                handle.write(b"\0" * 4096)
        answered = []
        for n in range(40):  # enough pages to need more room than is left
            client.send(f"set here/n{n} = {'x' * 2000}")
            text = await client.expect("\r\n", timeout=3)
            if "[world] Saving the world fails: disk full." in text:
                break  # this change met the full disk: its answer waits for the disk
            answered.append(n)
            await client.expect("> ")
        else:
            raise AssertionError("the disk never filled")
        await client.command(
            "set here/more = 1",
            "The world cannot be saved right now: disk full. Nothing was changed.",
        )
        await client.command("look", "Exits:")
        filler.unlink()
        await client.expect("[world] Saving the world works again.", timeout=5)
        await until(lambda: game.durable.trouble is None and not game.durable._held)
        with sqlite3.connect(disk / "db.sqlite3") as db:
            (attributes,) = db.execute(
                "SELECT attributes FROM objects WHERE name = 'The Village Square'"
            ).fetchone()
        # Every change that was answered is in the database, and so is the one
        # whose answer waited for the disk; the refused one is not.
        for n in [*answered, len(answered)]:
            assert f'"n{n}"' in attributes, n
        assert '"more"' not in attributes
        # The waiting answer came once its change was stored (before the notice).
        assert f"Set n{len(answered)} on" in client.transcript
        assert "Set more on" not in client.transcript  # a refused command says only that
        await game.close()
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


async def _connect(game: Game):  # type: ignore[no-untyped-def]
    from conftest import Client

    return await Client.connect(game.port)
