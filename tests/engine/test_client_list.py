"""The server's list of connections: appended to, and pruned only once half of it is closed."""

from __future__ import annotations

from typing import Any

from engine.net.telnet import ClientList


class Server:
    def __init__(self) -> None:
        self._protocols: list[Any] = []


class Protocol:
    _closing = False


def test_closed_connections_are_dropped_once_they_are_half_the_list() -> None:
    server = Server()
    clients = ClientList(server)
    made = [Protocol() for _ in range(10)]
    for protocol in made:
        clients.add(protocol)  # type: ignore[arg-type]
    for protocol in made[:5]:
        protocol._closing = True
        clients.closed()
    assert len(server._protocols) == 10, "pruned before half of the list was closed"
    made[5]._closing = True
    clients.closed()
    assert server._protocols == made[6:]
