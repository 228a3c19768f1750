"""Guards on the login dialogue: back-off after failed passwords, a cap on new accounts.

Pure bookkeeping with an injectable clock, so each rule is tested without
sleeping; ``engine.accounts.login`` applies them.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from engine.peers import Clock, is_loopback


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
