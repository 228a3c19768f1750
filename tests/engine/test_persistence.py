"""The world outlives the process: migrations, restarts, and ``kill -9`` after an answer."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from game_helpers import named, room_named

from engine.accounts.account import Accounts, Role
from engine.accounts.passwords import hash_password
from engine.app import Game
from engine.config import Config
from engine.testing import ServerProcess
from engine.world import objectstore
from engine.world import store as store_module
from engine.world.store import MIGRATIONS, Store

if TYPE_CHECKING:
    from conftest import Connect


@asynccontextmanager
async def running(content_dir: Path, tmp_path: Path, **settings: Any) -> AsyncIterator[Game]:
    """A game on ``tmp_path/db.sqlite3``, closed (as on a clean stop) when the block ends."""
    config = Config(
        host="127.0.0.1",
        port=0,
        content_dir=content_dir,
        db_path=tmp_path / "db.sqlite3",
        reload=False,
        **settings,
    )
    game = Game(config)
    try:
        await asyncio.wait_for(game.start(), 5)
        yield game
    finally:
        await asyncio.wait_for(game.close(), 10)


def table_names(db: sqlite3.Connection | Any) -> set[str]:
    return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


# -- migrations -------------------------------------------------------------------------


def test_an_empty_database_is_migrated_to_the_latest_version(tmp_path: Path) -> None:
    path = tmp_path / "new" / "db.sqlite3"
    store = Store(path)
    assert store.version == len(MIGRATIONS) >= 2
    assert {"accounts", "objects", "meta"} <= table_names(store._db)
    assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.close()
    # Opening it again applies nothing twice.
    store = Store(path)
    assert store.version == len(MIGRATIONS)
    store.close()


async def test_a_version_1_database_is_migrated_forward_keeping_its_accounts(
    tmp_path: Path, content_dir: Path, connect: Connect, watchdog: None
) -> None:
    path = tmp_path / "db.sqlite3"
    db = sqlite3.connect(path)
    for statement in filter(str.strip, MIGRATIONS[0].split(";")):
        db.execute(statement)
    db.execute("PRAGMA user_version = 1")
    db.execute(
        "INSERT INTO accounts (name, password, role, created) VALUES (?, ?, ?, ?)",
        ("Elder", hash_password("old secret").encode(), "builder", time.time()),
    )
    db.commit()
    assert "objects" not in table_names(db)
    db.close()

    store = Store(path)
    assert store.version == len(MIGRATIONS)
    assert {"accounts", "objects", "meta"} <= table_names(store._db)
    account = await Accounts(store).verify("Elder", "old secret")
    assert account is not None and account.role is Role.BUILDER
    store.close()

    # A game on the migrated file builds its world and lets the old account in.
    async with running(content_dir, tmp_path) as game:
        client = await connect(game.port)
        text = await client.login("Elder", "old secret")
        assert "The Village Square" in text
        await client.command("dig Den", "Dug room Den")
        await client.command("accounts", "You are not allowed to use 'accounts'.")


def test_a_failing_migration_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "db.sqlite3"
    Store(path).close()
    broken = [*MIGRATIONS, "CREATE TABLE extra (x INTEGER); INSERT INTO nowhere VALUES (1);"]
    monkeypatch.setattr(store_module, "MIGRATIONS", broken)
    with pytest.raises(store_module.UnusableDatabase, match="no such table: nowhere"):
        Store(path)
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert "extra" not in table_names(db)
    finally:
        db.close()


# -- restarts ---------------------------------------------------------------------------


async def test_a_restart_restores_the_world_the_accounts_and_where_everyone_stood(
    content_dir: Path, tmp_path: Path, connect: Connect, watchdog: None
) -> None:
    async with running(content_dir, tmp_path) as game:
        starter_count = len(game.world.objects)
        alice = await connect(game.port)
        await alice.login_new("Alice")
        bob = await connect(game.port)
        await bob.login_new("Bob")
        await alice.command("grant Bob = builder", "Bob is now a builder.")
        await alice.command("dig Vault = west, east", "back here.")
        await alice.command("west", "Vault")
        await alice.command("describe here = Cold stone walls.", "Described Vault")
        await alice.command("create box = content.typeclasses.things.Lamp", "You hold it.")
        await alice.command("set box/weight = 3", "Set weight on box")
        await alice.command("use box", "You switch the box on.")
        await alice.command("drop box", "You drop a box (lit).")
        await alice.command("create coin", "You hold it.")
        await alice.command("name coin = gold coin", "Renamed coin")
        await alice.command("typeclass statue = content.typeclasses.things.Lamp", "now runs")
        await bob.command("north", "The Quiet Library")
        vault = named(game, "Vault")
        game.world.set_start(vault)  # type: ignore[arg-type]
        rows = {o.id: objectstore.row_of(o) for o in game.world.objects.values()}
        assert len(rows) == starter_count + 3 + 2 + 2  # Vault + 2 exits, box, coin, 2 characters

    async with running(content_dir, tmp_path) as game:
        assert {o.id: objectstore.row_of(o) for o in game.world.objects.values()} == rows
        assert game.world.start_room is named(game, "Vault")
        box, statue = named(game, "box"), named(game, "stone statue")
        lamp_class = game.content.resolve_class("content.typeclasses.things.Lamp")
        assert type(box) is lamp_class and type(statue) is lamp_class
        assert dict(box.attributes) == {"weight": 3, "lit": True}
        assert not game.world.broken
        # The starter world was not built again.
        assert len([r for r in game.world.rooms() if r.name == "The Village Square"]) == 1

        alice = await connect(game.port)
        text = await alice.login("Alice")
        assert "Vault\r\nCold stone walls.\r\nYou see: a box (lit).\r\nExits: east." in text
        await alice.command("inventory", "You carry: a gold coin.")
        await alice.command("east", "You see: a stone statue.")
        await alice.command(
            "use statue", "You switch the stone statue on."
        )  # it kept its new class
        await alice.command("accounts", "2 accounts:")  # still an admin
        bob = await connect(game.port)
        assert "The Quiet Library" in await bob.login("Bob")
        await bob.command("dig Den", "Dug room Den")  # still a builder
        carol = await connect(game.port)
        assert "Vault" in await carol.login_new("Carol")  # the start room that was set


async def test_the_starter_world_is_built_on_the_first_start_only(
    content_dir: Path, tmp_path: Path, watchdog: None
) -> None:
    async with running(content_dir, tmp_path) as game:
        first = len(game.world.objects)
        assert first > 0
        attic = game.world.create_room("Attic")
        game.world.open_exit(named(game, "The Village Square"), "up", attic)
        await game.durable.wait()
    for _ in range(2):
        async with running(content_dir, tmp_path) as game:
            assert len(game.world.objects) == first + 2
            assert len([r for r in game.world.rooms() if r.name == "The Village Square"]) == 1
            assert named(game, "Attic").id == attic.id
            up = room_named(game, "The Village Square").find_exit("u")
            assert up is not None and up.destination is named(game, "Attic")


async def test_a_change_is_on_disk_before_the_answer_reaches_the_player(
    content_dir: Path, tmp_path: Path, connect: Connect, watchdog: None
) -> None:
    """In process: each acknowledgement is checked against a second connection to the file."""
    async with running(content_dir, tmp_path) as game:
        alice = await connect(game.port)
        await alice.login_new("Alice")
        db = sqlite3.connect(game.config.db_path)
        try:
            for n in range(5):
                await alice.command(f"dig Room {n}", f"Dug room Room {n} (#")
                (count,) = db.execute(
                    "SELECT COUNT(*) FROM objects WHERE name = ?", (f"Room {n}",)
                ).fetchone()
                assert count == 1, n
                await alice.command(f"set here/n = {n}", f"(#1) to {n}.")
                (attributes,) = db.execute(
                    "SELECT attributes FROM objects WHERE name = 'The Village Square'"
                ).fetchone()
                assert attributes == f'{{"n": {n}}}'
        finally:
            db.close()


# -- kill -9 ----------------------------------------------------------------------------


async def test_kill_9_right_after_each_answer_loses_nothing_the_player_was_told(
    content_dir: Path, tmp_path: Path, connect: Connect, watchdog: None
) -> None:
    """A real server process, SIGKILLed the moment an acknowledgement arrives, three times."""
    servers: list[ServerProcess] = []

    async def start() -> ServerProcess:
        server = ServerProcess(tmp_path, ["--no-reload"])  # content: tmp_path/content
        servers.append(server)
        await asyncio.to_thread(server.start)
        return server

    async def kill(server: ServerProcess) -> None:
        assert server.process is not None
        server.process.kill()  # SIGKILL: no shutdown code runs
        assert await asyncio.to_thread(server.wait) == -9

    try:
        server = await start()
        alice = await connect(server.port)
        await alice.login_new("Alice")
        await alice.command("down", "A Damp Cellar")
        await alice.command("get lamp", "You pick up a brass lamp.")
        await kill(server)

        server = await start()
        alice = await connect(server.port)
        assert "A Damp Cellar" in await alice.login("Alice")
        await alice.command("inventory", "You carry: a brass lamp.")
        await alice.command("set lamp/shine = 7", "Set shine on brass lamp")
        await kill(server)

        server = await start()
        alice = await connect(server.port)
        await alice.login("Alice")
        await alice.command("examine lamp", "shine = 7")
        await alice.command("dig Vault", "Dug room Vault")
        await kill(server)

        server = await start()
        alice = await connect(server.port)
        await alice.login("Alice")
        await alice.command("find Vault", "room      Vault  (in nowhere)")
        await alice.command("inventory", "You carry: a brass lamp.")
        await alice.command("examine lamp", "shine = 7")
        alice.send("quit")
        await alice.expect_closed()
        server.stop()
        assert await asyncio.to_thread(server.wait) == 0
        log = server.log()
        assert log.count("listening on") == 4
        assert "Traceback" not in log
    finally:
        for server in servers:
            server.stop()
