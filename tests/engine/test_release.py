"""A closed connection is freed by reference counting, without the cyclic collector.

The game freezes what lives long out of full garbage collections
(``engine.longlived``): a closed connection left in reference cycles would
stay frozen, in memory, until the next reload.  So when a connection and its
shell have both ended, the cycles among the session, its line reader and
telnetlib3's protocol, reader and writer are undone (``MudTelnetServer._release``).
Each case here closes a connection at a different moment with the collector
off, and checks that nothing of it is left.
"""

from __future__ import annotations

import asyncio
import gc
import time
import weakref
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest
from conftest import RawClient

from engine.app import Game

if TYPE_CHECKING:
    from conftest import Client, MakeClient


@pytest.fixture
def no_cyclic_collector() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def watch(game: Game, known: set[int]) -> list[weakref.ref[Any]]:
    """Weak references to the server side of connections not in ``known`` (protocol ids)."""
    refs: list[weakref.ref[Any]] = []
    for protocol in game.server.clients:
        if id(protocol) in known:
            continue
        refs += [weakref.ref(protocol), weakref.ref(protocol.writer), weakref.ref(protocol.reader)]
        session = getattr(protocol, "session", None)
        if session is not None:
            refs += [weakref.ref(session), weakref.ref(session.lines)]
    return refs


async def gone(game: Game, refs: list[weakref.ref[Any]], timeout: float = 5.0) -> list[str]:
    """What of ``refs`` is still alive once the game had ``timeout`` s to let go."""
    deadline = time.monotonic() + timeout
    while True:
        game.server.clients  # noqa: B018 - telnetlib3 drops closed protocols when asked
        alive = [type(r()).__name__ for r in refs if r() is not None]
        if not alive or time.monotonic() > deadline:
            return alive
        await asyncio.sleep(0.02)


async def closed_by(
    game: Game, make_client: MakeClient, play: Callable[[Client], Awaitable[None]]
) -> list[str]:
    known = {id(p) for p in game.server.clients}
    client = await make_client()
    refs = watch(game, known)
    await play(client)
    if not any(type(r()).__name__ == "Session" for r in refs):
        refs = watch(game, known) or refs  # the session came after the first look
    client.writer.close()
    return await gone(game, refs)


async def test_a_player_who_disconnects_leaves_nothing(
    game: Game, make_client: MakeClient, no_cyclic_collector: None
) -> None:
    async def play(client: Client) -> None:
        await client.login_new("Alice")
        await client.command("say hello", "You say")
        await client.command("look", "Exits")

    assert await closed_by(game, make_client, play) == []


async def test_a_player_who_quits_leaves_nothing(
    game: Game, make_client: MakeClient, no_cyclic_collector: None
) -> None:
    async def play(client: Client) -> None:
        await client.login_new("Alice")
        client.send("quit")
        await client.expect_closed()

    assert await closed_by(game, make_client, play) == []


async def test_a_connection_gone_at_the_login_prompt_leaves_nothing(
    game: Game, make_client: MakeClient, no_cyclic_collector: None
) -> None:
    async def play(client: Client) -> None:
        await client.expect("By what name are you known? ")

    assert await closed_by(game, make_client, play) == []


async def test_a_connection_gone_during_negotiation_leaves_nothing(
    game: Game, no_cyclic_collector: None
) -> None:
    known = {id(p) for p in game.server.clients}
    raw = await RawClient.connect(game.port)
    deadline = time.monotonic() + 5
    while not [p for p in game.server.clients if id(p) not in known]:
        assert time.monotonic() < deadline, "the server never saw the connection"
        await asyncio.sleep(0.01)
    refs = watch(game, known)
    raw.close()  # before telnetlib3's negotiation ends: no shell ever starts
    assert await gone(game, refs) == []
