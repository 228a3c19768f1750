"""A hot restart while the database's disk is full freezes nobody.

The server runs with its database on a small tmpfs; the disk is filled and
an admin restarts.  Whatever the restart meets (a last commit that cannot
be written, a store the new worker cannot open), the game ends up serving
every player, changes are refused while the disk is full, and they work
again once there is room.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from server_helpers import can_mount, fill, small_disk

from engine.testing import MudClient, ServerProcess

pytestmark = pytest.mark.skipif(not can_mount(), reason="mounting a tmpfs needs root")


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    with small_disk(tmp_path, "4m") as mounted:
        yield mounted


async def test_a_restart_on_a_full_disk_keeps_the_game_serving(disk: Path, watchdog: None) -> None:
    server = ServerProcess.with_copied_content(["--no-reload", "--log-file", ""])
    server.extra_args += ["--db-path", str(disk / "mud.sqlite3")]
    await asyncio.to_thread(server.start)
    try:
        alice = await MudClient.connect(server.port)
        await alice.create_account("Alice", "secret1")
        bob = await MudClient.connect(server.port)
        await bob.create_account("Bob", "secret1")
        await alice.command("dig Den = west, east", "back here.")
        filler = fill(disk)
        alice.send("restart")
        # Either the new worker serves, or (it cannot open the store) the old one goes on.
        said = await alice.expect(re.compile(r"is back|goes on as it was\."), timeout=30)
        if "restart failed" in said:
            assert "disk is full" in said, said
        for client in (alice, bob):
            await client.command("look", "Exits:", timeout=10)
        # Changes are refused while the disk is full, with a sentence, not silence.
        refused = await alice.command(
            "dig Attic = up, down", re.compile(r"back here\.|cannot|could not"), timeout=10
        )
        assert "back here." not in refused, refused
        filler.unlink()
        await asyncio.sleep(1.5)
        await alice.command("west", "Den", timeout=10)
        await alice.command("dig Attic = up, down", "back here.", timeout=10)
    finally:
        await asyncio.to_thread(server.cleanup)
