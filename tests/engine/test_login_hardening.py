"""No client can lock others out: parallel guessing, slow connections, account floods.

Over real connections on 127.0.0.1 (and other loopback addresses, 127.0.0.2 and on, as
the addresses of others); the unit tests drive ``engine.net.limits`` and
``engine.accounts.guards`` with a fake clock, and the login guard's waits with a fake
sleep (``VirtualTime``).
"""

from __future__ import annotations

import asyncio
import heapq
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
    limiter.log_in("other")
    limiter.log_in("new")
    assert limiter.admit("1.1.1.4", key="later") is not None


def test_waiting_connections_per_address_are_capped() -> None:
    limiter = ConnectionLimiter(100, 100, max_pending_per_ip=2, clock=Clock())
    assert limiter.admit("1.1.1.1", key=1) is None
    assert limiter.admit("1.1.1.1", key=2) is None
    refusal = limiter.admit("1.1.1.1", key=3)
    assert refusal is not None and "are logging in (the limit is 2)" in refusal
    limiter.log_in(1)
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


def test_a_creation_counts_from_the_offer_and_an_abandoned_one_gives_its_place_back() -> None:
    clock = Clock()
    creations = CreationLimiter(3, 600, clock=clock)
    for _ in range(3):
        assert creations.reserve("1.1.1.1") is None
    # Three under way, none made yet: the fourth waits for one of them.
    busy = "Too many characters are being created from your address right now; try again later."
    assert creations.reserve("1.1.1.1") == busy
    assert creations.reserve("1.1.1.2") is None  # another address
    creations.release("1.1.1.1")  # declined, left, or the name was taken meanwhile
    assert creations.reserve("1.1.1.1") is None
    creations.created("1.1.1.1")
    clock.now += 60
    assert creations.reserve("1.1.1.1") == (
        "Too many characters are being created from your address right now; "
        "you can create another in 9 minutes."
    )
    creations.created("1.1.1.1")
    creations.created("1.1.1.1")
    assert creations.reserve("1.1.1.1") == (
        "Too many characters were created from your address lately; "
        "you can create another in 9 minutes."
    )
    clock.now += 541
    assert creations.reserve("1.1.1.1") is None  # the first one left the window


def test_loopback_reserves_freely_unless_limited() -> None:
    exempt = CreationLimiter(1, 600, clock=Clock())
    for _ in range(5):
        assert exempt.reserve("127.0.0.1") is None
    limited = CreationLimiter(1, 600, limit_loopback=True, clock=Clock())
    assert limited.reserve("127.0.0.1") is None
    assert limited.reserve("127.0.0.1") is not None


async def settle() -> None:
    """Let every task that can run, run (a few rounds of the event loop)."""
    for _ in range(20):
        await asyncio.sleep(0)


class VirtualTime:
    """A clock and a sleep for ``LoginGuard``: time moves only when ``run`` moves it."""

    def __init__(self) -> None:
        self.now = 100.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._count = 0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._count += 1
        heapq.heappush(self._sleepers, (self.now + seconds, self._count, woken))
        await woken

    async def run(self, seconds: float) -> None:
        """Let ``seconds`` pass, waking each sleeper at its time and letting it run."""
        end = self.now + seconds
        await settle()
        while self._sleepers and self._sleepers[0][0] <= end:
            when, _, woken = heapq.heappop(self._sleepers)
            self.now = max(self.now, when)
            if not woken.done():
                woken.set_result(None)
            await settle()
        self.now = end
        await settle()


OWNER = "1.1.1.1"
GUESSERS = [f"6.6.6.{i}" for i in range(1, 21)]


async def guesser(guard: LoginGuard, time_: VirtualTime, ip: str, checks: list[float]) -> None:
    """Wrong passwords for Pat from ``ip``, one after another; each check takes 0.05 s."""
    while True:
        async with guard.checking(ip, "Pat"):
            checks.append(time_.now)
            await time_.sleep(0.05)


async def guess_for(seconds: float, addresses: list[str]) -> list[float]:
    """When each check of ``addresses`` guessing in parallel for ``seconds`` started."""
    time_ = VirtualTime()
    guard = LoginGuard(1.0, 60.0, clock=time_, sleep=time_.sleep)
    checks: list[float] = []
    tasks = [asyncio.create_task(guesser(guard, time_, ip, checks)) for ip in addresses]
    await time_.run(seconds)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert not guard._locks, "no slot is left held"
    return [t - 100.0 for t in checks]


async def test_twenty_addresses_guessing_check_no_more_passwords_than_one() -> None:
    alone = await guess_for(300, GUESSERS[:1])
    parallel = await guess_for(300, GUESSERS)
    # The back-off runs from the end of the last check (each takes 0.05 s): 1, 2, 4, 8,
    # 16, 32 s, then 60 s after it.
    ends = [0.0]
    for delay in (1, 2, 4, 8, 16, 32, 60, 60, 60):
        ends.append(ends[-1] + 0.05 + delay)
    assert alone == pytest.approx(ends)
    assert parallel == alone


async def test_a_check_waits_for_the_accounts_slot_but_the_owners_does_not() -> None:
    time_ = VirtualTime()
    guard = LoginGuard(0.0, 0.0, clock=time_, sleep=time_.sleep)  # no back-off: slots only
    guard.succeeded(OWNER, "Pat")
    inside: list[str] = []
    done = asyncio.Event()

    async def check(ip: str) -> None:
        async with guard.checking(ip, "Pat"):
            inside.append(ip)
            await done.wait()

    first = asyncio.create_task(check(GUESSERS[0]))
    await settle()
    second = asyncio.create_task(check(GUESSERS[1]))
    owner = asyncio.create_task(check(OWNER))
    await settle()
    # One check per account from other addresses at a time; the owner's runs beside it.
    assert inside == [GUESSERS[0], OWNER]
    done.set()
    await asyncio.gather(first, second, owner)
    assert inside == [GUESSERS[0], OWNER, GUESSERS[1]]
    assert not guard._locks


async def test_guessers_backing_off_hold_nothing_and_the_owner_is_checked_at_once() -> None:
    time_ = VirtualTime()
    guard = LoginGuard(1.0, 60.0, clock=time_, sleep=time_.sleep)
    guard.succeeded(OWNER, "Pat")
    checks: list[float] = []
    tasks = [asyncio.create_task(guesser(guard, time_, ip, checks)) for ip in GUESSERS]
    told: list[float] = []
    await time_.run(31.27)
    # A guess is being checked (the sixth, begun at 31.25 s: back-off runs from a check's end).
    assert checks[-1] == pytest.approx(131.25) and guard._locks["account:pat"].locked()
    for _ in range(5):
        # Another address gets no pass: it waits for the account's back-off, or for its
        # slot while a guess is being checked.
        assert guard.wait("2.2.2.2", "Pat") > 0 or guard._locks["account:pat"].locked()
        started = time_.now
        async with guard.checking(OWNER, "Pat", told.append):
            entered = time_.now
        assert entered == started  # no wait at all, whatever the twenty do
        guard.succeeded(OWNER, "Pat")
        await time_.run(37.3)  # guessers start over (a success clears the account's count)
    assert told == []
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert not guard._locks


async def test_the_owner_pays_the_back_off_of_its_own_failures() -> None:
    time_ = VirtualTime()
    guard = LoginGuard(1.0, 60.0, clock=time_, sleep=time_.sleep)
    guard.succeeded(OWNER, "Pat")
    for _ in range(2):
        guard.failed(OWNER, "Pat")
    told: list[float] = []
    entered: list[float] = []

    async def owner() -> None:
        async with guard.checking(OWNER, "Pat", told.append):
            entered.append(time_.now - 100.0)

    task = asyncio.create_task(owner())
    await time_.run(1.9)
    assert entered == [] and told == [2.0]
    await time_.run(0.2)
    assert entered == [2.0]
    await task


async def test_a_connection_that_loses_the_race_is_told_its_new_wait() -> None:
    time_ = VirtualTime()
    guard = LoginGuard(1.0, 60.0, clock=time_, sleep=time_.sleep)
    for _ in range(3):
        guard.failed(GUESSERS[0], "Pat")  # the account waits 4 s from now
    told = {ip: list[float]() for ip in GUESSERS[1:3]}
    entered: list[str] = []

    async def check(ip: str) -> None:
        async with guard.checking(ip, "Pat", told[ip].append):
            entered.append(ip)

    tasks = [asyncio.create_task(check(ip)) for ip in GUESSERS[1:3]]
    await time_.run(4.0)
    assert entered == [GUESSERS[1]]
    assert told == {GUESSERS[1]: [4.0], GUESSERS[2]: [4.0, 8.0]}
    await time_.run(8.0)
    assert entered == GUESSERS[1:3]
    await asyncio.gather(*tasks)


async def test_a_check_given_up_while_it_waits_holds_nothing() -> None:
    time_ = VirtualTime()
    guard = LoginGuard(1.0, 60.0, clock=time_, sleep=time_.sleep)
    guard.failed(GUESSERS[0], "Pat")
    busy = asyncio.Event()

    async def check(ip: str, hold: bool = False) -> None:
        async with guard.checking(ip, "Pat"):
            if hold:
                await busy.wait()

    holder = asyncio.create_task(check(GUESSERS[0], hold=True))  # in 1 s, then stays
    sleeper = asyncio.create_task(check(GUESSERS[1]))  # backing off
    await time_.run(1.5)
    queued = asyncio.create_task(check(GUESSERS[2]))  # its back-off is over: queued for the slot
    await settle()
    sleeper.cancel()
    queued.cancel()
    await asyncio.gather(sleeper, queued, return_exceptions=True)
    busy.set()
    await holder
    assert not guard._locks


# -- over real connections -------------------------------------------------------------


async def open_from(game: Game, source: str = HOST) -> Client:
    return await Client.connect(game.port, source=source)


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


async def owner_and_checks(
    game: Game, make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> list[float]:
    """Pat's account, made by its owner (who leaves); then when each password check begins."""
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
    return checks


@pytest.mark.slow
@pytest.mark.game(login_backoff=0.05, login_backoff_max=0.4)
async def test_fifty_parallel_connections_check_no_more_passwords_than_one(
    game: Game, make_client: MakeClient, clients: list[Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    checks = await owner_and_checks(game, make_client, monkeypatch)
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


#: The addresses of twenty guessers (the owner is at HOST, 127.0.0.1).
GUESSING_HOSTS = [f"127.0.0.{i}" for i in range(10, 30)]


@pytest.mark.slow
# At the real hashing cost: the guessers' checks take as long as on a served game.
@pytest.mark.game(max_per_ip=100, max_pending_per_ip=100, password_cost=14)
async def test_the_owner_logs_in_at_once_while_twenty_addresses_guess(
    game: Game, make_client: MakeClient, clients: list[Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The owner comes from HOST: the account's address from now on.
    checks = await owner_and_checks(game, make_client, monkeypatch)
    started = time.monotonic()
    end = started + 8.0
    guessing = asyncio.gather(*(guess(game, clients, end, host) for host in GUESSING_HOSTS))
    try:
        await asyncio.sleep(3.0)  # the account's back-off is at 4 s and doubling
        took = []
        for _ in range(2):
            before = time.monotonic()
            again = await open_from(game, HOST)
            clients.append(again)
            await again.expect("known? ", 5.0)
            again.send("Pat")
            await again.expect("Password: ", 5.0)
            again.send(PASSWORD)
            await again.expect_look(5.0)
            took.append(time.monotonic() - before)
            again.send("quit")
            await again.expect_closed()
    finally:
        await guessing
    assert max(took) < 5.0, f"the owner's logins took {took} s"
    # The guessers got the back-off all the same: checks 0, 1, 3, 7 s after they began
    # or after the owner's last login, not thousands.
    assert len(checks) - 2 <= 12, f"{len(checks) - 2} wrong passwords checked"


@pytest.mark.game(limit_loopback=True, account_creations=3, max_per_ip=100, max_pending_per_ip=100)
async def test_ten_concurrent_creations_from_one_address_make_the_limit(
    game: Game, make_client: MakeClient
) -> None:
    names = [f"Maker{chr(ord('a') + i)}" for i in range(10)]
    makers = list(await asyncio.gather(*(make_client() for _ in names)))
    for maker in makers:
        await maker.expect("known? ")
    for maker, name in zip(makers, names, strict=True):
        maker.send(name)
    # Every one has offered its name before any has finished: each reply is an offer to
    # create or a refusal, and the first "?" tells which.
    replies = await asyncio.gather(*(maker.expect("?") for maker in makers))
    offered = [m for m, r in zip(makers, replies, strict=True) if "Create a new character?" in r]
    refused = [r for r in replies if "Create a new character?" not in r]
    assert len(offered) == 3
    for reply in refused:
        assert (
            "Too many characters are being created from your address right now; "
            "try again later.\r\nBy what name are you known?"
        ) in reply
    for maker in offered:
        maker.send("yes")
    await asyncio.gather(*(m.expect("Choose a password") for m in offered))
    await asyncio.gather(*(m.login_new_password() for m in offered))
    assert len(await game.accounts.all()) == 3
    late = await make_client()
    await late.expect("known? ")
    late.send("Latecomer")
    await late.expect("Too many characters were created from your address lately; ")


async def offer(client: Client, name: str) -> bool:
    """Offer ``name`` at the name prompt: True if asked to create it, False if refused.

    A refusal ends at the name prompt again, so a refused client can offer at once.
    """
    client.send(name)
    reply = await client.expect("?")
    if "Create a new character?" in reply:
        return True
    assert "Too many characters" in reply and reply.endswith("known?"), reply
    return False


@pytest.mark.game(limit_loopback=True, account_creations=1, max_per_ip=100, max_pending_per_ip=100)
async def test_an_abandoned_creation_gives_its_place_back(
    game: Game, make_client: MakeClient
) -> None:
    first, second, third = await make_client(), await make_client(), await make_client()
    for client in (first, second, third):
        await client.expect("known? ")
    assert await offer(first, "Ann")
    assert not await offer(second, "Bea")  # Ann's creation holds the one place
    first.send("no")  # declined: the place is free again
    await first.expect("known? ")
    assert await offer(second, "Bea")
    assert not await offer(first, "Cat")
    second.writer.close()  # gone in the middle: free again once the server notices
    deadline = time.monotonic() + 3.0
    while not await offer(first, "Cat"):
        assert time.monotonic() < deadline, "the place never came back"
        await asyncio.sleep(0.05)
    first.send("yes")
    await first.expect("Choose a password")
    first.send(PASSWORD)
    await first.expect("Type it again: ")
    first.send("something else")  # a mistake is not giving up: the place stays held
    await first.expect("The two passwords differ. Once more.")
    assert not await offer(third, "Dee")
    await first.expect("Choose a password")
    await first.login_new_password()
    assert [a.name for a in await game.accounts.all()] == ["Cat"]
    assert not await offer(third, "Dee")


async def test_honest_logins_from_one_address_never_make_each_other_wait() -> None:
    # A household, a NAT or a benchmark: many right passwords from one address at once.
    time_ = VirtualTime()
    guard = LoginGuard(1.0, 60.0, clock=time_, sleep=time_.sleep)
    told: list[float] = []

    async def log_in(name: str) -> None:
        async with guard.checking("3.3.3.3", name, told.append):
            await time_.sleep(0.05)  # the password check
            guard.succeeded("3.3.3.3", name)

    names = [f"Player{n}" for n in range(10)]
    runs = asyncio.gather(*(log_in(name) for name in names))
    await time_.run(0.6)  # ten checks of 0.05 s, one after another
    assert runs.done()
    await runs
    assert told == []  # nobody was told to wait for a back-off
