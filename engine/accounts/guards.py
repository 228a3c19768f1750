"""Guards on the login dialogue: back-off after failed passwords, a cap on new accounts.

Bookkeeping with an injectable clock (and, for the login back-off, an
injectable sleep), so each rule is tested without sleeping;
``engine.accounts.login`` applies them.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from engine.peers import Clock, is_loopback


class CreationLimiter:
    """At most ``limit`` new accounts per address within ``window`` seconds.

    A creation counts from the moment a new name is offered (``reserve``),
    not only once the account exists, so connections racing through the
    dialogue together cannot pass the limit; ``release`` gives the place
    back when that creation is abandoned, ``created`` keeps it for the window.
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
        #: address -> creations under way (reserved, neither created nor released yet).
        self._held: dict[str, int] = {}

    def refusal(self, ip: str) -> str | None:
        """Why ``ip`` may not create an account now, or None."""
        if not (self.limit_loopback or not is_loopback(ip)):
            return None
        now = self.clock()
        recent = [t for t in self._made.get(ip, []) if now - t < self.window]
        if recent:
            self._made[ip] = recent
        else:
            self._made.pop(ip, None)
        if len(recent) + self._held.get(ip, 0) < self.limit:
            return None
        if not recent:
            return (
                "Too many characters are being created from your address right now; "
                "try again later."
            )
        # The oldest creation leaving the window frees a place, whatever the others do.
        when = f"you can create another in {_duration(math.ceil(self.window - (now - recent[0])))}"
        if len(recent) >= self.limit:
            return f"Too many characters were created from your address lately; {when}."
        return f"Too many characters are being created from your address right now; {when}."

    def reserve(self, ip: str) -> str | None:
        """Hold one of ``ip``'s places for a creation starting now; the refusal if none is left.

        Every reservation ends in ``created`` or ``release``.
        """
        refusal = self.refusal(ip)
        if refusal is None:
            self._held[ip] = self._held.get(ip, 0) + 1
        return refusal

    def release(self, ip: str) -> None:
        """A reserved creation was abandoned: its place is free again."""
        held = self._held.get(ip, 0) - 1
        if held > 0:
            self._held[ip] = held
        else:
            self._held.pop(ip, None)

    def created(self, ip: str) -> None:
        """A reserved creation made its account: the place stays taken for the window."""
        self.release(ip)
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

    After ``n`` failures the next check must wait ``base * 2**(n-1)``
    seconds (at most ``cap``); a success clears the account's count, and
    failures older than ``forget_after`` seconds are forgotten.

    A password is checked inside ``checking``: it sleeps off the back-off
    holding nothing, then takes the account's and the address's check slot,
    so one password check per account and per address runs at a time, and
    counts as a failure from the moment it starts.  Fifty parallel
    connections therefore check no more passwords than one, and none of
    them keeps anyone else waiting while it sleeps.  The address an account
    last logged in from or was created from (``trust``; kept here, in
    memory) waits for neither that account's back-off nor its slot: whatever
    others do, the owner's check runs as soon as the owner's own address's
    back-off allows.
    """

    def __init__(
        self,
        base: float = 1.0,
        cap: float = 60.0,
        forget_after: float = 900.0,
        clock: Clock = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.base = base
        self.cap = cap
        self.forget_after = forget_after
        self.clock = clock
        self.sleep = sleep
        self._failures: dict[str, _Failures] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        #: The checks under way (one per address and account): whether each succeeded.
        self._checks: dict[tuple[str, str], bool] = {}
        #: account -> the address it last logged in from (oldest first).
        self._trusted: dict[str, str] = {}

    def _slots(self, ip: str, account: str) -> tuple[str, ...]:
        """The check slots an attempt holds, in the order they are taken."""
        if self._trusted.get(account.lower()) == ip:
            return (f"ip:{ip}",)
        return (f"account:{account.lower()}", f"ip:{ip}")

    @contextlib.asynccontextmanager
    async def checking(
        self, ip: str, account: str, waiting: Callable[[float], None] | None = None
    ) -> AsyncIterator[None]:
        """Wait out the back-off, then hold the check slots for one password check.

        The back-off is slept holding no slot; when it is over the slots are
        taken and the back-off looked at again (another connection may have
        checked meanwhile), so the check starts only when both allow it.
        ``waiting(seconds)`` is told of a wait, and again whenever it grows.
        The attempt is recorded as failed when its check ends, unless
        ``succeeded`` was called within it: honest logins from one address
        (a household, a NAT, a benchmark) never make each other wait, while
        the slots keep guesses from racing each other's checks.
        """
        told_until = -math.inf
        while True:
            wait = self.wait(ip, account)
            if wait <= 0:
                keys = self._slots(ip, account)
                locks = [self._locks.setdefault(key, asyncio.Lock()) for key in keys]
                held: list[asyncio.Lock] = []
                try:
                    for lock in locks:
                        await lock.acquire()
                        held.append(lock)
                    wait = self.wait(ip, account)
                    if wait <= 0 and self._slots(ip, account) == keys:
                        # The slots keep this the only check of the address (and of the
                        # account) now; it counts as a failure unless ``succeeded`` is
                        # called within it, a check cut short (a client gone) included.
                        attempt = (ip, account.lower())
                        self._checks[attempt] = False
                        try:
                            yield
                        finally:
                            if not self._checks.pop(attempt, False):
                                self.failed(ip, account)
                        return
                finally:
                    for lock in reversed(held):
                        lock.release()
                    for key, lock in zip(keys, locks, strict=True):
                        if not lock.locked() and not lock._waiters and self._locks.get(key) is lock:
                            del self._locks[key]
            if wait > 0:
                until = self.clock() + wait
                if waiting is not None and until > told_until + 0.5:
                    told_until = until
                    waiting(wait)
                await self.sleep(wait)

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
        attempt = (ip, account.lower())
        if attempt in self._checks:
            self._checks[attempt] = True
        self._failures.pop(f"account:{account.lower()}", None)
        self._failures.pop(f"ip:{ip}", None)
        self.trust(ip, account)

    def trust(self, ip: str, account: str) -> None:
        """``account`` logged in from ``ip`` (or was created there): its owner's address."""
        self._trusted.pop(account.lower(), None)
        self._trusted[account.lower()] = ip
        if len(self._trusted) > 100_000:  # bounded memory: the longest unused go first
            for name in list(self._trusted)[:50_000]:
                del self._trusted[name]
