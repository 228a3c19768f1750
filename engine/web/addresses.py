"""Whose address a connection is: the peer's, or the player's behind a trusted proxy.

A reverse proxy (nginx in front for TLS) connects to the game itself, so
every player behind it would share its address, and its limits and bans.
The proxy names the player in ``X-Forwarded-For`` (each proxy appends the
address it was connected from) or in a PROXY protocol header; that is
believed only from the proxies the ``trusted_proxies`` setting lists, and
``X-Forwarded-For`` is read from its right end: the first address that is
not a trusted proxy is the player's, whatever a client wrote to its left.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from engine.startup import StartupError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_address(text: str) -> Address | None:
    """``text`` as an IP address (IPv4 inside IPv6 as IPv4), or None if it is not one."""
    text = text.strip()
    if text.startswith("[") and "]" in text:
        text = text[1 : text.index("]")]  # [2001:db8::1]:443
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]  # 203.0.113.5:51234
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def words(setting: object) -> list[str]:
    """A setting that lists things: words separated by spaces or commas (or, from code, a list)."""
    if isinstance(setting, list | tuple | set | frozenset):
        return [word for item in setting for word in words(item)]
    return str(setting or "").replace(",", " ").split()


class TrustedProxies:
    """The proxies whose word on a player's address is believed (``trusted_proxies``)."""

    def __init__(self, networks: Iterable[Network] = ()) -> None:
        self.networks = tuple(networks)

    @classmethod
    def from_setting(cls, text: object) -> TrustedProxies:
        """Addresses and networks separated by spaces or commas; a bad one stops the start."""
        networks = []
        for word in words(text):
            try:
                networks.append(ipaddress.ip_network(word, strict=False))
            except ValueError:
                raise StartupError(
                    f'trusted_proxies: "{word}" is not an address or a network '
                    "(such as 127.0.0.1 or 10.0.0.0/8)."
                ) from None
        return cls(networks)

    def __bool__(self) -> bool:
        return bool(self.networks)

    def trusts(self, address: str | Address | None) -> bool:
        found = parse_address(address) if isinstance(address, str) else address
        return found is not None and any(found in network for network in self.networks)

    def forwarded_for(self, peer: str, headers: Iterable[str]) -> str:
        """The player's address: from the ``X-Forwarded-For`` values if ``peer`` is trusted.

        Read from the right; the first address that is not a trusted proxy
        is the player's.  A value that is not an address stops the reading
        there (the last trusted hop is the answer).
        """
        if not self.trusts(peer):
            return peer
        hops = [hop for value in headers for hop in value.split(",") if hop.strip()]
        answer = peer
        for hop in reversed(hops):
            address = parse_address(hop)
            if address is None:
                return answer
            answer = str(address)
            if not self.trusts(address):
                return answer
        return answer
