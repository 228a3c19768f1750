"""Limits that keep one client from hurting the others: input rates, negotiation, connections.

Pure bookkeeping with an injectable clock, so each rule is tested without
sleeping; the session and the telnet edge apply them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from engine.peers import Clock, is_loopback


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

    def spend(self, amount: float) -> bool:
        """Spend ``amount`` tokens at once; False when that overdraws the bucket."""
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        self.tokens -= amount
        return self.tokens >= 0


class NegotiationGuard:
    """How much telnet negotiation one connection may send before it is closed.

    telnetlib3 parses telnet commands and subnegotiations a byte at a time
    on the event loop (about 2 us a byte), so everyone pays for what one
    connection sends that way.  A client says what it is and how wide its
    window is when it connects, then little (a resize, a GMCP message), and
    an honest client with a bug sends one or two malformed subnegotiations,
    not a stream of them.  Two rules:

    - more than ``max_bad`` malformed subnegotiations in the connection's life;
    - negotiation parsed faster than ``rate`` bytes a second, past a burst of
      ``burst`` bytes (a flood of well-formed NAWS or option requests).
    """

    MALFORMED = "malformed"
    TOO_FAST = "too fast"

    def __init__(
        self, max_bad: int, rate: float, burst: float, clock: Clock = time.monotonic
    ) -> None:
        self.max_bad = max_bad
        self.budget = TokenBucket(rate, burst, clock)

    def check(self, parsed: int, malformed: int) -> str | None:
        """``parsed`` more bytes of negotiation were read, ``malformed`` bad ones so far in all.

        Returns why the connection must be closed (``MALFORMED`` or
        ``TOO_FAST``), or None.
        """
        if malformed > self.max_bad:
            return self.MALFORMED
        if parsed and not self.budget.spend(parsed):
            return self.TOO_FAST
        return None


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

    def log_in(self, key: object) -> None:
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
