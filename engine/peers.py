"""Which peer addresses are this machine's: loopback clients are exempt from per-address limits
unless the configuration says otherwise (``limit_loopback``)."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

#: A monotonic clock in seconds; limits take one so tests need not sleep.
Clock = Callable[[], float]


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8 and ::1; False for other addresses and for what is no address."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
