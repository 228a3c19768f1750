"""Limits that keep one client from hurting the others: rates, connection counts, login back-off.

Pure bookkeeping with an injectable clock, so each rule is tested without
sleeping; the session and the telnet edge apply them.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import math
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

Clock = Callable[[], float]


@dataclass
class TokenBucket:
    """``rate`` lines a second on average, bursts of up to ``burst``."""

    rate: float
    burst: float
    clock: Clock = time.monotonic
    tokens: float = field(init=False)
    stamp: float = field(init=False)

    def __post_init__(self) -> None:
        self.tokens = self.burst
        self.stamp = self.clock()

    def take(self) -> float:
        """Spend one token; return how long to wait first (0 when within the rate)."""
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        self.tokens -= 1
        if self.tokens >= 0:
            return 0.0
        return -self.tokens / self.rate


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


#: Seconds a connection may wait at the login prompt before it can be made to give way.
PENDING_GRACE = 2.0


class ConnectionLimiter:
    """Counts open connections, in all and per address, and refuses past the limits.

    Connections not logged in yet are counted apart too (OpenSSH's
    ``MaxStartups``): at most ``max_pending_per_ip`` from one address, and
    when the server is full, or holds ``max_pending`` of them, the oldest
    one waiting at the login prompt gives way to the newcomer.  Slow or
    idle connections can therefore not keep players out.

    Loopback addresses are exempt from the per-address limits unless
    ``limit_loopback``: on a real server they are a local proxy or web
    client speaking for many players.
    """

    def __init__(
        self,
        max_total: int,
        max_per_ip: int,
        limit_loopback: bool = False,
        max_pending: int = 1_000_000,
        max_pending_per_ip: int = 1_000_000,
        clock: Clock = time.monotonic,
    ) -> None:
        self.max_total = max_total
        self.max_per_ip = max_per_ip
        self.limit_loopback = limit_loopback
        self.max_pending = max_pending
        self.max_pending_per_ip = max_pending_per_ip
        self.clock = clock
        self.total = 0
        self.by_ip: dict[str, int] = {}
        #: Connections not logged in yet, oldest first: key -> (address, since, evict).
        self.pending: dict[object, tuple[str, float, Callable[[], None]]] = {}

    def _limited(self, ip: str) -> bool:
        return self.limit_loopback or not is_loopback(ip)

    def admit(
        self, ip: str, key: object = None, evict: Callable[[], None] = lambda: None
    ) -> str | None:
        """Count the connection in, or say (to the client) why it is refused.

        ``key`` and ``evict`` register it as waiting to log in: ``evict``
        closes it if it has to give way to a newer one.
        """
        if self._limited(ip) and self._pending_from(ip) >= self.max_pending_per_ip:
            return (
                "Too many connections from your address are logging in "
                f"(the limit is {self.max_pending_per_ip}). Finish one and try again."
            )
        if self.total >= self.max_total or len(self.pending) >= self.max_pending:
            self._evict_oldest()
        if self.total >= self.max_total:
            return f"The server is full ({self.max_total} connections). Please try again later."
        count = self.by_ip.get(ip, 0)
        if count >= self.max_per_ip and self._limited(ip):
            return (
                f"Too many connections from your address (the limit is {self.max_per_ip}). "
                "Close one and try again."
            )
        self.total += 1
        self.by_ip[ip] = count + 1
        if key is not None:
            self.pending[key] = (ip, self.clock(), evict)
        return None

    def _pending_from(self, ip: str) -> int:
        return sum(1 for address, _since, _evict in self.pending.values() if address == ip)

    def _evict_oldest(self) -> None:
        """The connection waiting longest at the login prompt gives way (it is closed).

        Only one that has waited ``PENDING_GRACE`` seconds: a burst of people
        connecting at once does not push each other out.
        """
        if not self.pending:
            return
        key = next(iter(self.pending))
        ip, since, evict = self.pending[key]
        if self.clock() - since < PENDING_GRACE:
            return
        del self.pending[key]
        self.release(ip)
        evict()

    def logged_in(self, key: object) -> None:
        """The connection logged in: it no longer counts as waiting."""
        self.pending.pop(key, None)

    def release(self, ip: str, key: object = None) -> None:
        if key is not None:
            self.pending.pop(key, None)
        self.total = max(0, self.total - 1)
        count = self.by_ip.get(ip, 0) - 1
        if count > 0:
            self.by_ip[ip] = count
        else:
            self.by_ip.pop(ip, None)


class CreationLimiter:
    """At most ``limit`` new accounts per address within ``window`` seconds.

    Loopback is exempt unless ``limit_loopback``, as for connections.
    """

    def __init__(
        self,
        limit: int,
        window: float,
        limit_loopback: bool = False,
        clock: Clock = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self.limit_loopback = limit_loopback
        self.clock = clock
        self._made: dict[str, list[float]] = {}

    def refusal(self, ip: str) -> str | None:
        """Why ``ip`` may not create an account now, or None."""
        if not (self.limit_loopback or not is_loopback(ip)):
            return None
        now = self.clock()
        recent = [t for t in self._made.get(ip, []) if now - t < self.window]
        self._made[ip] = recent
        if len(recent) < self.limit:
            return None
        wait = math.ceil(self.window - (now - recent[0]))
        return (
            f"Too many characters were created from your address lately; "
            f"you can create another in {_duration(wait)}."
        )

    def created(self, ip: str) -> None:
        self._made.setdefault(ip, []).append(self.clock())
        if len(self._made) > 100_000:
            self._made.clear()  # bounded memory; forgetting errs toward letting people in


def _duration(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} s"
    return f"{math.ceil(seconds / 60)} minutes"


@dataclass
class _Failures:
    count: int = 0
    last: float = 0.0


class LoginGuard:
    """Exponential back-off after failed logins, per address and per account.

    After ``n`` failures the next attempt must wait ``base * 2**(n-1)``
    seconds (at most ``cap``); a success clears the account's count, and
    failures older than ``forget_after`` seconds are forgotten.

    One password check per account and per address runs at a time
    (``checking``), and an attempt counts as soon as it is made, so fifty
    parallel connections check no more passwords than one.  The address an
    account last logged in from is exempt from that account's back-off: an
    attack from elsewhere does not lock the owner out.
    """

    def __init__(
        self,
        base: float = 1.0,
        cap: float = 60.0,
        forget_after: float = 900.0,
        clock: Clock = time.monotonic,
    ) -> None:
        self.base = base
        self.cap = cap
        self.forget_after = forget_after
        self.clock = clock
        self._failures: dict[str, _Failures] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        #: account -> the address it last logged in from.
        self._trusted: dict[str, str] = {}

    @contextlib.asynccontextmanager
    async def checking(self, ip: str, account: str) -> AsyncIterator[None]:
        """Hold the account's and the address's check slot (always in that order)."""
        keys = (f"account:{account.lower()}", f"ip:{ip}")
        locks = [self._locks.setdefault(key, asyncio.Lock()) for key in keys]
        async with locks[0], locks[1]:
            yield
        for key, lock in zip(keys, locks, strict=True):
            if not lock.locked() and not lock._waiters and self._locks.get(key) is lock:
                del self._locks[key]

    def _wait(self, key: str, now: float) -> float:
        failures = self._failures.get(key)
        if failures is None or failures.count == 0:
            return 0.0
        if now - failures.last > self.forget_after:
            del self._failures[key]
            return 0.0
        delay = min(self.cap, self.base * 2.0 ** (failures.count - 1))
        return max(0.0, failures.last + delay - now)

    def wait(self, ip: str, account: str) -> float:
        """Seconds before the next attempt for this address and account may be checked."""
        now = self.clock()
        wait = self._wait(f"ip:{ip}", now)
        if self._trusted.get(account.lower()) != ip:
            wait = max(wait, self._wait(f"account:{account.lower()}", now))
        return wait

    def failed(self, ip: str, account: str) -> None:
        now = self.clock()
        keys = [f"ip:{ip}"]
        if self._trusted.get(account.lower()) != ip:
            keys.append(f"account:{account.lower()}")
        for key in keys:
            failures = self._failures.setdefault(key, _Failures())
            failures.count += 1
            failures.last = now
        if len(self._failures) > 100_000:  # bounded memory under a distributed attack
            oldest = sorted(self._failures, key=lambda k: self._failures[k].last)
            for key in oldest[: len(oldest) // 2]:
                del self._failures[key]

    def succeeded(self, ip: str, account: str) -> None:
        self._failures.pop(f"account:{account.lower()}", None)
        self._failures.pop(f"ip:{ip}", None)
        self._trusted[account.lower()] = ip
        if len(self._trusted) > 100_000:
            self._trusted.clear()
