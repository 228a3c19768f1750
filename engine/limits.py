"""Limits that keep one client from hurting the others: rates, connection counts, login back-off.

Pure bookkeeping with an injectable clock, so each rule is tested without
sleeping; the session and the telnet edge apply them.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
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


class ConnectionLimiter:
    """Counts open connections, in all and per address, and refuses past the limits.

    Loopback addresses are exempt from the per-address limit unless
    ``limit_loopback``: on a real server they are a local proxy or web
    client speaking for many players.
    """

    def __init__(self, max_total: int, max_per_ip: int, limit_loopback: bool = False) -> None:
        self.max_total = max_total
        self.max_per_ip = max_per_ip
        self.limit_loopback = limit_loopback
        self.total = 0
        self.by_ip: dict[str, int] = {}

    def admit(self, ip: str) -> str | None:
        """Count the connection in, or say (to the client) why it is refused."""
        if self.total >= self.max_total:
            return f"The server is full ({self.max_total} connections). Please try again later."
        count = self.by_ip.get(ip, 0)
        if count >= self.max_per_ip and (self.limit_loopback or not is_loopback(ip)):
            return (
                f"Too many connections from your address (the limit is {self.max_per_ip}). "
                "Close one and try again."
            )
        self.total += 1
        self.by_ip[ip] = count + 1
        return None

    def release(self, ip: str) -> None:
        self.total = max(0, self.total - 1)
        count = self.by_ip.get(ip, 0) - 1
        if count > 0:
            self.by_ip[ip] = count
        else:
            self.by_ip.pop(ip, None)


@dataclass
class _Failures:
    count: int = 0
    last: float = 0.0


class LoginGuard:
    """Exponential back-off after failed logins, per address and per account.

    After ``n`` failures the next attempt must wait ``base * 2**(n-1)``
    seconds (at most ``cap``); a success clears the account's count, and
    failures older than ``forget_after`` seconds are forgotten.
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

    def _wait(self, key: str, now: float) -> float:
        failures = self._failures.get(key)
        if failures is None or failures.count == 0:
            return 0.0
        if now - failures.last > self.forget_after:
            del self._failures[key]
            return 0.0
        delay = min(self.cap, self.base * 2 ** (failures.count - 1))
        return max(0.0, failures.last + delay - now)

    def wait(self, ip: str, account: str) -> float:
        """Seconds before the next attempt for this address and account may be checked."""
        now = self.clock()
        return max(self._wait(f"ip:{ip}", now), self._wait(f"account:{account.lower()}", now))

    def failed(self, ip: str, account: str) -> None:
        now = self.clock()
        for key in (f"ip:{ip}", f"account:{account.lower()}"):
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
