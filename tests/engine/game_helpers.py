"""Small helpers shared by the engine's integration tests.

Imported by name (``from game_helpers import named``), as pytest puts this
directory on ``sys.path``; fixtures stay in ``tests/conftest.py``.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.paths import CODE_ROOT as PROJECT_ROOT
from engine.testing import _child_env
from engine.world import objectstore
from engine.world.objects import Room

if TYPE_CHECKING:
    from conftest import Client, MakeClient

    from engine.app import Game
    from engine.local import LocalGame
    from engine.net.session import Session
    from engine.world.model import World
    from engine.world.objects import GameObject


def named(game: Game | LocalGame, name: str) -> GameObject:
    """The one object called ``name`` in the running game (or the game in process)."""
    found = [o for o in game.world.objects.values() if o.name == name]
    assert len(found) == 1, found
    return found[0]


def room_named(game: Game | LocalGame, name: str) -> Room:
    """The one room called ``name``: ``named``, for a room's exits."""
    room = named(game, name)
    assert isinstance(room, Room), room
    return room


def session_of(game: Game, name: str) -> Session:
    """The session of the logged-in account ``name``."""
    return next(
        s for s in game.players.sessions if s.account is not None and s.account.name == name
    )


async def players(make_client: MakeClient, *names: str) -> list[Client]:
    """Logged-in players in the square, each having seen the later ones arrive."""
    clients: list[Client] = []
    for name in names:
        client = await make_client()
        await client.login_new(name)
        for earlier in clients:
            await earlier.expect(f"{name} has entered the game.")
        clients.append(client)
    return clients


async def until(predicate: Callable[[], Any], what: str = "condition", timeout: float = 3.0) -> Any:
    """Poll ``predicate`` until it is true and return its value; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        await asyncio.sleep(0.01)


def run_engine(
    workdir: Path, *args: str, timeout: float = 15.0
) -> subprocess.CompletedProcess[str]:
    """``python -m engine`` on ``workdir``'s content and database, to its end."""
    command = [sys.executable, "-m", "engine", "--content-dir", str(workdir / "content")]
    command += ["--db-path", str(workdir / "db.sqlite3"), *args]
    return subprocess.run(
        command, cwd=PROJECT_ROOT, env=_child_env(), capture_output=True, text=True, timeout=timeout
    )


def world_state(world: World) -> tuple[list[Any], dict[int, list[int]], int | None, int]:
    """Everything a world holds, to compare two worlds (or one before and after) whole."""
    rows = sorted(objectstore.row_of(o) for o in world.objects.values())
    contents = {o.id: [c.id for c in o.contents] for o in world.objects.values()}
    start = world.start_room.id if world.start_room else None
    return rows, contents, start, world._next_id


def stored_rows(path: Path) -> list[tuple[Any, ...]]:
    """Every object row in the database at ``path``, sorted."""
    with sqlite3.connect(path) as db:
        return sorted(db.execute(f"SELECT {', '.join(objectstore.COLUMNS)} FROM objects"))
