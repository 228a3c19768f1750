"""No client can lock others out: parallel guessing, slow connections, account floods.

Over real connections on 127.0.0.1 (and 127.0.0.2 as a second address);
the unit tests drive ``engine.net.limits`` with a fake clock.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from conftest import HOST, PASSWORD, Client, ExpectTimeout, MakeClient
from game_helpers import until

from engine.accounts.guards import CreationLimiter, LoginGuard
from engine.app import Game
from engine.net import limits
from engine.net.limits import ConnectionLimiter

OTHER_HOST = "127.0.0.2"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


# -- unit ---------------------------------------------------------------------------------


def test_the_oldest_waiting_connection_gives_way_when_the_server_is_full() -> None:
    clock = Clock()
    closed: list[str] = []
    limiter = ConnectionLimiter(2, 100, clock=clock)
    assert limiter.admit("1.1.1.1", key="slow", evict=lambda: closed.append("slow")) is None
    assert limiter.admit("1.1.1.2", key="other", evict=lambda: closed.append("other")) is None
    # Fresh connections do not push each other out: the server is full.
    assert limiter.admit("1.1.1.3", key="new") is not None
    clock.now += limits.PENDING_GRACE + 1
    assert limiter.admit("1.1.1.3", key="new") is None
    assert closed == ["slow"] and limiter.total == 2
    # A logged-in connection never gives way.
    limiter.logged_in("other")
    limiter.logged_in("new")
    assert limiter.admit("1.1.1.4", key="later") is not None


def test_waiting_connections_per_address_are_capped() -> None:
    limiter = ConnectionLimiter(100, 100, max_pending_per_ip=2, clock=Clock())
    assert limiter.admit("1.1.1.1", key=1) is None
    assert limiter.admit("1.1.1.1", key=2) is None
    refusal = limiter.admit("1.1.1.1", key=3)
    assert refusal is not None and "are logging in (the limit is 2)" in refusal
    limiter.logged_in(1)
    assert limiter.admit("1.1.1.1", key=3) is None


def test_account_creation_is_limited_per_address_and_window() -> None:
    clock = Clock()
    creations = CreationLimiter(2, 600, clock=clock)
    for _ in range(2):
        assert creations.refusal("1.1.1.1") is None
        creations.created("1.1.1.1")
    refusal = creations.refusal("1.1.1.1")
    assert refusal == (
        "Too many characters were created from your address lately; "
        "you can create another in 10 minutes."
    )
    assert creations.refusal("1.1.1.2") is None
    assert creations.refusal("127.0.0.1") is None  # loopback: a local proxy, exempt
    clock.now += 601
    assert creations.refusal("1.1.1.1") is None


def test_the_owners_usual_address_is_not_locked_out_by_an_attack_elsewhere() -> None:
    clock = Clock()
    guard = LoginGuard(1.0, 60.0, clock=clock)
    guard.succeeded("1.1.1.1", "Pat")
    for _ in range(6):
        guard.failed("6.6.6.6", "Pat")
    assert guard.wait("6.6.6.6", "Pat") > 30
    assert guard.wait("1.1.1.1", "Pat") == 0
    assert guard.wait("2.2.2.2", "Pat") > 30  # any other address waits for the account


# -- over real connections -------------------------------------------------------------


async def open_from(game: Game, source: str = HOST) -> Client:
    return await Client.connect(game.port, source)


@pytest.fixture
async def clients() -> AsyncIterator[list[Client]]:
    opened: list[Client] = []
    yield opened
    for client in opened:
        client.writer.close()


async def guess(game: Game, clients: list[Client], until_time: float, source: str) -> None:
    """Wrong passwords for Pat, one after another, from one connection, until ``until_time``."""
    try:
        while time.monotonic() < until_time:
            client = await open_from(game, source)
            clients.append(client)
            await client.expect("known? ")
            client.send("Pat")
            for _ in range(3):
                # Waiting for its turn is the point: give up only when time is up.
                await client.expect("Password: ", max(0.1, until_time - time.monotonic()))
                client.send("wrong guess")
    except ExpectTimeout:
        return


@pytest.mark.game(login_backoff=0.05, login_backoff_max=0.4)
async def test_fifty_parallel_connections_check_no_more_passwords_than_one(
    game: Game, make_client: MakeClient, clients: list[Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = await make_client()
    await owner.login_new("Pat")
    owner.send("quit")
    await owner.expect_closed()
    checks: list[float] = []
    verify = game.accounts.verify

    async def counted(name: str, password: str) -> Any:
        checks.append(time.monotonic())
        return await verify(name, password)

    monkeypatch.setattr(game.accounts, "verify", counted)
    end = time.monotonic() + 2.0
    await asyncio.gather(guess(game, clients, end, OTHER_HOST))
    alone = len(checks)
    await asyncio.sleep(1.0)  # the back-off of the first round passes
    checks.clear()
    end = time.monotonic() + 2.0
    await asyncio.gather(*(guess(game, clients, end, OTHER_HOST) for _ in range(50)))
    parallel = len(checks)
    assert parallel <= alone + 2, f"1 connection: {alone} checks; 50 in parallel: {parallel}"


@pytest.mark.game(login_timeout=1.0)
async def test_the_login_timeout_is_a_deadline_not_an_idle_timer(
    game: Game, clients: list[Client]
) -> None:
    slow = await open_from(game)
    clients.append(slow)
    await slow.expect("known? ")
    started = time.monotonic()

    async def trickle() -> None:  # a byte every 0.25 s: never idle, never done
        while not slow.eof:
            slow.writer.write("x")
            await asyncio.sleep(0.25)

    trickling = asyncio.create_task(trickle())
    try:
        text = await slow.expect_closed(3.0)
    finally:
        trickling.cancel()
    assert "You took too long to log in. Goodbye." in text
    assert 0.9 < time.monotonic() - started < 2.0


@pytest.mark.game(max_connections=12)
async def test_slow_connections_at_the_prompt_cannot_keep_a_player_out(
    game: Game, clients: list[Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "PENDING_GRACE", 0.3)
    for _ in range(12):
        slow = await open_from(game)
        clients.append(slow)
        await slow.expect("known? ")
    await asyncio.sleep(0.4)
    player = await open_from(game)
    clients.append(player)
    await player.login_new("Player")  # the oldest slow one gave way
    oldest = clients[0]
    text = await oldest.expect_closed()
    assert "Too many connections are logging in; this one waited longest" in text
    await until(lambda: game.server.limiter.total == 12, "the count stays right")


@pytest.mark.game(limit_loopback=True, account_creations=2, max_per_ip=100, max_pending_per_ip=100)
async def test_account_creation_is_limited_per_address(game: Game, make_client: MakeClient) -> None:
    for name in ("Ann", "Bea"):
        client = await make_client()
        await client.login_new(name)
    third = await make_client()
    await third.expect("known? ")
    third.send("Cat")
    await third.expect("Too many characters were created from your address lately; ")
    # Logging in to an existing account is not limited.
    again = await make_client()
    await again.login("Ann", PASSWORD)
