"""Fixtures for this game's tests: ``game`` is the game in memory (content/ loaded, world built,
no server), new for each test; ``connect`` logs players in to a real server on a throw-away
database, for what needs accounts (``grant``). Tests are ``async def``: ``hotmud test`` runs
pytest-asyncio in auto mode, and ``pytest_configure`` below sets it for a plain ``pytest`` too.
"""

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from engine.app import Game
from engine.config import Config
from engine.local import LocalGame
from engine.testing import MudClient

#: The game's content: these tests sit in the game folder's tests/, beside content/.
CONTENT = Path(__file__).resolve().parent.parent / "content"


def pytest_configure(config: pytest.Config) -> None:
    # Auto mode: every async test and fixture runs in an event loop, no marker needed.
    config.option.asyncio_mode = "auto"


@pytest.fixture
def game() -> LocalGame:
    """``alice, bob = await game.players("Alice", "Bob")`` (the first is an admin);
    ``await bob.command("look", "Exits:")`` types a line and waits for a text."""
    return LocalGame(CONTENT)


@pytest.fixture
async def connect(tmp_path: Path) -> AsyncIterator[Callable[[str], Awaitable[MudClient]]]:
    """``alice = await connect("Alice")``: a new account logged in over telnet (the first is
    an admin); ``await alice.command("who", "Alice")`` sends a line and waits for a text."""
    server = Game(Config(port=0, content_dir=CONTENT, db_path=tmp_path / "game.db", reload=False))
    await server.start()
    clients: list[MudClient] = []

    async def log_in(name: str) -> MudClient:
        client = await MudClient.connect(server.port)
        clients.append(client)
        await client.create_account(name, "a long password")
        return client

    yield log_in
    for client in clients:
        client.close()
    await server.close()
