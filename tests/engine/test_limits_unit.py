"""Unit tests of ``engine.net.limits`` with an injected clock: the input token bucket, the
connection counter, and the login back-off.  Nothing sleeps; time moves when a test says so.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.accounts.guards import LoginGuard
from engine.net.limits import ConnectionLimiter, TokenBucket
from engine.peers import is_loopback


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# -- TokenBucket ------------------------------------------------------------------------------


def test_a_burst_passes_at_once_then_lines_wait_their_turn() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=10, burst=3, clock=clock)
    assert [bucket.take() for _ in range(3)] == [0, 0, 0]
    # Lines arriving together past the burst queue up: each waits 0.1 s more.
    assert [bucket.take() for _ in range(3)] == pytest.approx([0.1, 0.2, 0.3])


def test_a_client_that_waits_as_told_gets_exactly_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=20, burst=5, clock=clock)
    for _ in range(5):
        assert bucket.take() == 0
    waited = 0.0
    for _ in range(100):
        delay = bucket.take()
        assert delay == pytest.approx(0.05)
        clock.advance(delay)
        waited += delay
    assert waited == pytest.approx(100 / 20)


def test_tokens_refill_with_time_up_to_the_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=10, burst=5, clock=clock)
    for _ in range(5):
        bucket.take()
    clock.advance(0.25)  # 2.5 tokens back
    assert [bucket.take() for _ in range(2)] == [0, 0]
    assert bucket.take() == pytest.approx(0.05)
    clock.advance(3600)  # an hour idle refills the burst, not more
    assert [bucket.take() for _ in range(5)] == [0] * 5
    assert bucket.take() == pytest.approx(0.1)


def test_a_slow_client_never_waits() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=2, burst=1, clock=clock)
    for _ in range(50):
        assert bucket.take() == 0
        clock.advance(0.5)


@settings(max_examples=200, deadline=None)
@given(
    st.floats(min_value=0.5, max_value=100),
    st.integers(min_value=1, max_value=50),
    st.lists(st.floats(min_value=0, max_value=2), min_size=1, max_size=200),
)
def test_the_bucket_never_allows_more_than_burst_plus_rate_times_time(
    rate: float, burst: int, gaps: list[float]
) -> None:
    """However lines arrive, a client that waits each delay gets at most burst + rate * t."""
    clock = FakeClock()
    bucket = TokenBucket(rate=rate, burst=burst, clock=clock)
    start = clock.now
    for count, gap in enumerate(gaps, start=1):
        clock.advance(gap)
        clock.advance(bucket.take())  # the line is handled after its delay
        assert count <= burst + rate * (clock.now - start) + 1e-6


# -- ConnectionLimiter ------------------------------------------------------------------------


def test_the_total_limit_refuses_with_a_clear_message_and_release_lets_one_in() -> None:
    limiter = ConnectionLimiter(max_total=3, max_per_ip=10)
    for i in range(3):
        assert limiter.admit(f"10.0.0.{i}") is None
    refusal = limiter.admit("10.0.0.9")
    assert refusal == "The server is full (3 connections). Please try again later."
    assert limiter.total == 3
    limiter.release("10.0.0.1")
    assert limiter.admit("10.0.0.9") is None
    assert limiter.total == 3


def test_the_per_address_limit_counts_each_address() -> None:
    limiter = ConnectionLimiter(max_total=100, max_per_ip=2)
    assert limiter.admit("192.0.2.1") is None
    assert limiter.admit("192.0.2.1") is None
    refusal = limiter.admit("192.0.2.1")
    assert refusal is not None
    assert "Too many connections from your address (the limit is 2)" in refusal
    assert limiter.admit("192.0.2.2") is None  # another address is not affected
    limiter.release("192.0.2.1")
    assert limiter.admit("192.0.2.1") is None
    assert limiter.by_ip == {"192.0.2.1": 2, "192.0.2.2": 1}


@pytest.mark.parametrize("address", ["127.0.0.1", "127.0.0.2", "::1"])
def test_loopback_is_exempt_from_the_per_address_limit_unless_asked(address: str) -> None:
    exempt = ConnectionLimiter(max_total=100, max_per_ip=1)
    assert all(exempt.admit(address) is None for _ in range(10))
    limited = ConnectionLimiter(max_total=100, max_per_ip=1, limit_loopback=True)
    assert limited.admit(address) is None
    assert limited.admit(address) is not None
    # The total limit applies to loopback either way.
    full = ConnectionLimiter(max_total=2, max_per_ip=1)
    assert full.admit(address) is None and full.admit(address) is None
    assert full.admit(address) is not None


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.9.9.9", True),
        ("::1", True),
        ("10.0.0.1", False),
        ("::ffff:10.0.0.1", False),
        ("localhost", False),
        ("?", False),
        ("", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_release_forgets_an_address_and_never_goes_negative() -> None:
    limiter = ConnectionLimiter(max_total=10, max_per_ip=10)
    limiter.admit("192.0.2.1")
    limiter.release("192.0.2.1")
    assert limiter.total == 0 and limiter.by_ip == {}
    limiter.release("192.0.2.1")
    assert limiter.total == 0 and limiter.by_ip == {}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.sampled_from(["a", "b", "c", "127.0.0.1"]))))
def test_counts_stay_consistent(steps: list[tuple[bool, str]]) -> None:
    """Whatever order connections come and go in, the counts match the open connections."""
    limiter = ConnectionLimiter(max_total=5, max_per_ip=2)
    open_: list[str] = []
    for connect, ip in steps:
        if connect:
            if limiter.admit(ip) is None:
                open_.append(ip)
        elif ip in open_:
            open_.remove(ip)
            limiter.release(ip)
        assert limiter.total == len(open_) <= 5
        assert limiter.by_ip == {i: open_.count(i) for i in set(open_)}
        assert all(n <= 2 for i, n in limiter.by_ip.items() if i != "127.0.0.1")


# -- LoginGuard -------------------------------------------------------------------------------


def make_guard(
    base: float = 1.0, cap: float = 60.0, forget_after: float = 900.0
) -> tuple[LoginGuard, FakeClock]:
    clock = FakeClock()
    return LoginGuard(base, cap, forget_after, clock=clock), clock


def test_no_wait_without_failures() -> None:
    guard, _ = make_guard()
    assert guard.wait("192.0.2.1", "alice") == 0


def test_the_wait_doubles_with_each_failure_up_to_the_cap() -> None:
    guard, clock = make_guard(base=1.0, cap=10.0)
    waits = []
    for _ in range(6):
        guard.failed("192.0.2.1", "alice")
        waits.append(guard.wait("192.0.2.1", "alice"))
        clock.advance(100)
    assert waits == [1, 2, 4, 8, 10, 10]


def test_the_wait_counts_from_the_last_failure() -> None:
    guard, clock = make_guard(base=2.0)
    guard.failed("192.0.2.1", "alice")
    clock.advance(0.5)
    assert guard.wait("192.0.2.1", "alice") == pytest.approx(1.5)
    clock.advance(1.5)
    assert guard.wait("192.0.2.1", "alice") == 0


def test_the_back_off_is_per_address_and_per_account() -> None:
    guard, _ = make_guard(base=1.0)
    guard.failed("192.0.2.1", "Alice")
    assert guard.wait("192.0.2.1", "alice") == 1  # account names ignore case
    assert guard.wait("192.0.2.1", "bob") == 1  # the same address, another account
    assert guard.wait("198.51.100.7", "ALICE") == 1  # the same account, another address
    assert guard.wait("198.51.100.7", "bob") == 0  # neither


def test_the_longer_of_the_two_waits_applies() -> None:
    guard, _ = make_guard(base=1.0)
    for _ in range(3):
        guard.failed("192.0.2.1", "alice")  # the address: 3 failures
    guard.failed("198.51.100.7", "bob")
    assert guard.wait("192.0.2.1", "bob") == 4
    assert guard.wait("198.51.100.7", "alice") == 4
    assert guard.wait("198.51.100.7", "bob") == 1


def test_success_clears_the_account_and_the_address() -> None:
    guard, _ = make_guard(base=1.0)
    for _ in range(4):
        guard.failed("192.0.2.1", "alice")
    guard.failed("198.51.100.7", "bob")
    guard.succeeded("192.0.2.1", "alice")
    assert guard.wait("192.0.2.1", "alice") == 0
    # The next failure starts again at the base, not at 2**4.
    guard.failed("192.0.2.1", "alice")
    assert guard.wait("192.0.2.1", "alice") == 1
    # Other records stay.
    assert guard.wait("198.51.100.7", "carol") > 0


def test_old_failures_are_forgotten() -> None:
    guard, clock = make_guard(base=1.0, cap=60.0, forget_after=900.0)
    for _ in range(10):
        guard.failed("192.0.2.1", "alice")
    clock.advance(899)
    guard.failed("198.51.100.7", "bob")
    assert guard.wait("192.0.2.1", "x") == 0  # 60 s cap long past
    clock.advance(2)
    # Past forget_after the count starts over (the login checks the wait, then records).
    assert guard.wait("192.0.2.1", "alice") == 0
    guard.failed("192.0.2.1", "alice")
    assert guard.wait("192.0.2.1", "alice") == 1


def test_memory_stays_bounded_under_a_distributed_attack() -> None:
    guard, clock = make_guard(base=1.0)
    for i in range(60_000):
        guard.failed(f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}", f"user{i}")
        clock.advance(0.001)
    assert len(guard._failures) <= 100_000
    # The oldest were dropped, the newest kept.
    assert guard.wait("10.0.0.0", "user0") == 0
    assert guard.wait("10.0.234.95", "user59999") == pytest.approx(1.0, abs=0.01)
