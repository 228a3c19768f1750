"""Fixtures for this game's tests: ``game`` is the game in memory (content/ loaded, world built,
its own play loop, accounts kept in memory, no server), new for each test. Tests are
``async def``: ``hotmud test`` runs pytest-asyncio in auto mode, and ``pytest_configure``
below sets it for a plain ``pytest`` too.
"""

from pathlib import Path

import pytest

from engine.local import LocalGame

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
