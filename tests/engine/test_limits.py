"""Limits over real connections: input rate and floods, connections per address and in all,
login back-off, the idle timeout before login, and a burst of thousands of connects.

Every limit must say clearly what it does before it acts, and must not slow the other
players down.  Clients from a second loopback address (127.0.0.2) tell limits per address
apart from limits per account or in all.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest
from conftest import HOST, PASSWORD, TIMEOUT, Client, MakeClient
from game_helpers import until

from engine.app import Game
from engine.net import limits

OTHER_HOST = "127.0.0.2"  # a second loopback address: another "IP" for the limits

SLOW_DOWN = "You are sending commands faster than the game allows; slow down."
FLOODING = "You are flooding the game with commands. Goodbye."
BACKOFF = "Too many failed logins for this account or from your address: checking in"


#: A cheap command with a one-line answer, defined here so that no test depends on the content.
TICK = """
    from engine.api import Command, Context


    class CmdTick(Command):
        \"\"\"Answer Tock.\"\"\"

        key = "tick"

        def run(self, ctx: Context) -> None:
            ctx.msg("Tock.")
"""
TICK_FILES = {"commands/tick_for_limits.py": TICK}

ConnectFrom = Callable[[str], Awaitable[Client]]


@pytest.fixture
async def connect_from(game: Game) -> AsyncIterator[ConnectFrom]:
    """``await connect_from("127.0.0.2")``: a telnet client from that source address."""
    clients: list[Client] = []

    async def make(source: str) -> Client:
        client = await Client.connect(game.port, source=source)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.writer.close()
    await asyncio.sleep(0)


async def refused(game: Game, source: str = HOST) -> bytes:
    """Connect from ``source`` with a plain socket; everything sent until the server closed."""
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(HOST, game.port, local_addr=(source, 0)), TIMEOUT
    )
    try:
        return await asyncio.wait_for(reader.read(), TIMEOUT)  # to EOF: the server closed
    except TimeoutError:
        raise AssertionError(f"{source}: still open after {TIMEOUT} s") from None
    finally:
        writer.close()


async def tick_latencies(client: Client, count: int, pause: float = 0.05) -> list[float]:
    """Tick ``count`` times; each answer must come within a second."""
    latencies = []
    for _ in range(count):
        started = time.monotonic()
        await client.command("tick", "Tock.", timeout=1.0)
        latencies.append(time.monotonic() - started)
        await asyncio.sleep(pause)
    return latencies


# -- input rate ------------------------------------------------------------------------------


@pytest.mark.game(files=TICK_FILES)
async def test_a_flood_is_told_to_slow_down_then_disconnected_while_others_play(
    game: Game, make_client: MakeClient
) -> None:
    """Defaults: 10 lines/s, bursts of 30, closed past 100 unread lines over the rate."""
    bob = await make_client()
    await bob.login_new("Bob")
    eve = await make_client()
    await eve.login_new("Eve")
    await bob.expect("Eve has entered the game.")

    bob_ticks = asyncio.create_task(tick_latencies(bob, 10))
    await asyncio.sleep(0.05)
    eve.writer.write("tick\r\n" * 200)  # 200 lines at once
    await eve.expect_closed()
    text = eve.transcript
    assert SLOW_DOWN in text
    assert FLOODING in text
    assert text.index(SLOW_DOWN) < text.index(FLOODING)
    # What was left of the burst of 30 (the login used a few) was served, then nothing more:
    # the rest was refused, not queued up.
    assert 20 <= text.count("Tock.") <= 35
    assert max(await bob_ticks) < 1.0
    if "Eve has left the game." not in bob.transcript:
        await bob.expect("Eve has left the game.")


@pytest.mark.game(input_rate=50, input_burst=10, flood_limit=1000, files=TICK_FILES)
async def test_a_throttled_client_under_the_flood_limit_is_served_at_the_rate(
    game: Game, make_client: MakeClient
) -> None:
    bob = await make_client()
    await bob.login_new("Bob")
    eve = await make_client()
    await eve.login_new("Eve")

    started = time.monotonic()
    eve.writer.write("tick\r\n" * 60)  # 10 at once, then 50 at 50 a second
    bob_ticks = asyncio.create_task(tick_latencies(bob, 8))
    for _ in range(60):
        await eve.expect("Tock.")
    elapsed = time.monotonic() - started
    assert elapsed >= 0.9, f"60 lines in {elapsed:.2f} s: not held to 50 a second"
    assert SLOW_DOWN in eve.transcript
    assert FLOODING not in eve.transcript
    assert max(await bob_ticks) < 1.0
    await eve.command("tick", "Tock.")


@pytest.mark.game(input_rate=50, input_burst=5, flood_limit=2, files=TICK_FILES)
async def test_a_closed_loop_client_faster_than_the_rate_is_only_slowed(
    game: Game, make_client: MakeClient
) -> None:
    """One command per answer never builds a backlog: slowed, never disconnected."""
    client = await make_client()
    await client.login_new("Alice")
    started = time.monotonic()
    for _ in range(45):
        await client.command("tick", "Tock.")
    elapsed = time.monotonic() - started
    assert elapsed >= 0.7, f"45 commands in {elapsed:.2f} s: not held to 50 a second"
    assert SLOW_DOWN in client.transcript
    assert FLOODING not in client.transcript
    assert not client.eof
    await client.command("look", "Exits:")


# -- connections per address and in all -------------------------------------------------------

PER_IP = b"Too many connections from your address (the limit is 3). Close one and try again.\r\n"


@pytest.mark.game(limit_loopback=True, max_per_ip=3)
async def test_connections_per_address(game: Game, connect_from: ConnectFrom) -> None:
    clients = [await connect_from(HOST) for _ in range(3)]
    for client in clients:
        await client.expect("known? ")
    assert await refused(game) == PER_IP
    # Another address is not affected.
    other = await connect_from(OTHER_HOST)
    await other.expect("known? ")
    # Closing one lets a new one in.
    clients[0].writer.close()
    limiter = game.server.limiter
    await until(lambda: limiter.by_ip.get(HOST) == 2, "the closed connection released")
    again = await connect_from(HOST)
    await again.login_new("Alice")
    assert await refused(game) == PER_IP


@pytest.mark.game(max_connections=5)
async def test_connections_in_all(
    game: Game, connect_from: ConnectFrom, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Fresh connections at the prompt never give way, however slow the machine.
    monkeypatch.setattr(limits, "PENDING_GRACE", 60.0)
    clients = [await connect_from(HOST if i % 2 else OTHER_HOST) for i in range(5)]
    for client in clients:
        await client.expect("known? ")
    full = b"The server is full (5 connections). Please try again later.\r\n"
    assert await refused(game, OTHER_HOST) == full
    assert await refused(game, HOST) == full
    clients[0].writer.close()
    await until(lambda: game.server.limiter.total == 4, "the closed connection released")
    again = await connect_from(HOST)
    await again.login_new("Alice")
    assert await refused(game) == full


# -- login back-off ---------------------------------------------------------------------------


async def create_accounts(make_client: MakeClient, *names: str) -> None:
    for name in names:
        client = await make_client()
        await client.login_new(name)
        client.send("quit")
        await client.expect_closed()


async def fail_once(client: Client, name: str) -> float:
    """Log in as ``name`` with a wrong password; when the password went out."""
    await client.expect("known? ")
    client.send(name)
    await client.expect("Password: ")
    sent = time.monotonic()
    client.send("not the password")
    await client.expect("Wrong password.")
    return sent


async def log_in(client: Client, name: str | None) -> tuple[str, float]:
    """Send the right password (after the name, unless already at the password prompt)."""
    if name is not None:
        await client.expect("known? ")
        client.send(name)
    await client.expect("Password: ")
    client.send(PASSWORD)
    text = await client.expect_look()
    return text, time.monotonic()


@pytest.mark.game(login_backoff=0.3)
async def test_a_failed_login_backs_off_per_account_and_per_address(
    game: Game, make_client: MakeClient, connect_from: ConnectFrom
) -> None:
    await create_accounts(make_client, "Alice", "Bob")

    # The same account from the same address, wrong then right: waits the back-off.
    alice = await connect_from(HOST)
    failed_at = await fail_once(alice, "Alice")
    text, done = await log_in(alice, None)
    assert BACKOFF in text
    assert done - failed_at >= 0.3

    # Another account from the same address waits too.
    bob = await connect_from(HOST)
    failed_at = await fail_once(bob, "Bob")
    alice_again = await connect_from(HOST)
    text, done = await log_in(alice_again, "Alice")
    assert BACKOFF in text
    assert done - failed_at >= 0.3

    # The same account from another address waits too; another account from there does not.
    # (Failures from HOST, where Bob was created, do not count against the account: see
    # tests/engine/test_login_hardening.py.)
    bob_again = await connect_from("127.0.0.3")
    failed_at = await fail_once(bob_again, "Bob")
    elsewhere = await connect_from(OTHER_HOST)
    text, done = await log_in(elsewhere, "Bob")
    assert BACKOFF in text
    assert done - failed_at >= 0.3
    alice_elsewhere = await connect_from(OTHER_HOST)
    text, _ = await log_in(alice_elsewhere, "Alice")
    assert BACKOFF not in text


@pytest.mark.game(login_backoff=0.3)
async def test_a_successful_login_clears_the_back_off(
    game: Game, make_client: MakeClient, connect_from: ConnectFrom
) -> None:
    await create_accounts(make_client, "Alice")
    client = await connect_from(HOST)
    await fail_once(client, "Alice")
    client.send("still wrong")  # waits 0.3 s, fails again: the next wait is 0.6 s
    await client.expect(BACKOFF)
    await client.expect("Wrong password.")
    text, _ = await log_in(client, None)
    assert BACKOFF in text

    # Cleared: one new failure waits the base 0.3 s again, not 0.3 * 2**2.
    again = await connect_from(HOST)
    failed_at = await fail_once(again, "Alice")
    text, done = await log_in(again, None)
    assert BACKOFF in text
    assert 0.3 <= done - failed_at < 0.9
    # And a login right after a success does not wait at all.
    third = await connect_from(HOST)
    text, _ = await log_in(third, "Alice")
    assert BACKOFF not in text


# -- idle timeout before login ----------------------------------------------------------------


@pytest.mark.game(login_timeout=0.5)
async def test_an_idle_connection_before_login_is_closed_but_not_an_idle_player(
    game: Game, make_client: MakeClient
) -> None:
    idle = await make_client()
    await idle.expect("known? ")
    started = time.monotonic()
    rest = await idle.expect_closed(timeout=3)
    assert "Timeout." in rest  # telnetlib3's message, then the close
    assert time.monotonic() - started >= 0.4

    at_password = await make_client()
    await at_password.expect("known? ")
    at_password.send("Nobody")
    await at_password.expect("(yes/no) ")
    # Two timers of the same length may end it: telnetlib3's idle timeout, or the
    # login deadline (the connection's age reaches it too); either closes it.
    closed = await at_password.expect_closed(timeout=3)
    assert "Timeout." in closed or "You took too long to log in." in closed, closed

    player = await make_client()
    await player.login_new("Alice")
    await asyncio.sleep(1.2)
    await player.command("look", "Exits:")
    assert "Timeout." not in player.transcript


# -- thousands of simultaneous connects -------------------------------------------------------

BURST = 1500


@contextlib.contextmanager
def fd_limit(needed: int) -> Iterator[None]:
    """Raise the soft limit on open files to the hard limit for the block, or skip."""
    before = resource.getrlimit(resource.RLIMIT_NOFILE)
    soft, hard = before
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            pytest.skip(f"needs {needed} open files; the hard limit (ulimit -Hn) is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, before)


@pytest.mark.game(connect_maxwait=0.2)
async def test_a_burst_of_connections_is_accepted(game: Game, make_client: MakeClient) -> None:
    # Both ends of every connection live in this process, plus the game's own files.
    with fd_limit(2 * BURST + 200):
        await burst_of_connections(game)
    player = await make_client()
    await player.login_new("Alice")


async def burst_of_connections(game: Game) -> None:
    """BURST plain sockets connect at once; each must read the banner, within 20 s in all."""
    writers: list[asyncio.StreamWriter] = []

    async def connect() -> None:
        reader, writer = await asyncio.open_connection(HOST, game.port)
        writers.append(writer)
        seen = b""
        while b"known? " not in seen:
            data = await reader.read(4096)
            assert data, f"closed after {seen!r}"
            seen += data

    try:
        results = await asyncio.wait_for(
            asyncio.gather(*(connect() for _ in range(BURST)), return_exceptions=True), 20
        )
        failures = [r for r in results if isinstance(r, BaseException)]
        assert not failures, f"{len(failures)} of {BURST} failed, first: {failures[0]!r}"
        assert game.server.limiter.total == BURST
        assert len(game.players.sessions) == BURST
    finally:
        for writer in writers:
            writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                asyncio.gather(*(w.wait_closed() for w in writers), return_exceptions=True), 5
            )
    await until(lambda: game.server.limiter.total == 0, "all connections released", timeout=10)
    await until(lambda: not game.players.sessions, "all sessions ended", timeout=10)
