"""Stopping the server: ``shutdown`` in game, and ``Game.close``."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from engine.app import Game
from engine.config import Config

if TYPE_CHECKING:
    from conftest import Client, Connect, MakeClient, MakeGame


async def test_shutdown_by_the_admin_tells_everyone_and_closes_every_connection(
    content_dir: Path, tmp_path: Path, connect: Connect, watchdog: None
) -> None:
    config = Config(
        host="127.0.0.1",
        port=0,
        content_dir=content_dir,
        db_path=tmp_path / "db.sqlite3",
        reload=True,
    )
    game = Game(config)
    # The way ``python -m engine`` runs: serve until shutdown, then close.
    running = asyncio.create_task(game.run())
    try:

        async def listening() -> None:
            while game.listeners.telnet is None:
                await asyncio.sleep(0.01)

        await asyncio.wait_for(listening(), 3)
        port = game.port
        alice = await connect(port)
        await alice.login_new("Alice")
        bob = await connect(port)
        await bob.login_new("Bob")
        lurker = await connect(port)  # connected, not logged in
        await lurker.expect("known? ")

        alice.send("shutdown back in five minutes")
        expected = "*** The server is shutting down: back in five minutes ***"
        for client in (alice, bob):
            rest = await client.expect_closed(timeout=5)
            assert expected in client.transcript, rest
        await lurker.expect_closed(timeout=5)
        await asyncio.wait_for(running, 5)
        assert not game.players.sessions
        with pytest.raises(OSError):
            await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 3)
    finally:
        if not running.done():
            running.cancel()
            with contextlib.suppress(BaseException):
                await running


async def test_close_disconnects_players_and_keeps_their_accounts(
    make_game: MakeGame, make_client: MakeClient, game: Game, tmp_path: Path, password: str
) -> None:
    alice: Client = await make_client()
    await alice.login_new("Alice")
    await game.close()
    await alice.expect_closed()
    # A new game on the same database knows the account.
    again = await make_game(db_path=tmp_path / "db.sqlite3")
    assert await again.accounts.verify("Alice", password) is not None
