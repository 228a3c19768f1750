"""The ports beside telnet's: the web client's and the PROXY protocol listener's.

Like the telnet port they are bound once, before anything is loaded (a busy
port is one line), by the supervisor when there is one, which hands them to
every worker so that a hot restart never closes them.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import fields

from engine.config import Config
from engine.startup import StartupError

#: The web port's default (``Config.web_port``).
DEFAULT_WEB_PORT: int = next(f.default for f in fields(Config) if f.name == "web_port")  # type: ignore[assignment]

WEB = "web"
PROXY = "proxy"


def wanted(config: Config) -> dict[str, int]:
    """The extra listeners the settings ask for, by name, and their ports (0: any free one).

    With ``port`` 0 (any free port, as tests use) a web port left at its
    default is any free port too: two test servers must not both want 4001.
    """
    ports: dict[str, int] = {}
    if config.web:
        port = config.web_port
        ports[WEB] = 0 if config.port == 0 and port == DEFAULT_WEB_PORT else port
    if config.proxy_port:
        ports[PROXY] = config.proxy_port
    return ports


_FLAGS = {WEB: "--web-port (or turn the web client off with --no-web)", PROXY: "--proxy-port"}
_WHAT = {WEB: "The web port", PROXY: "The PROXY protocol port"}


def bind(name: str, host: str, port: int, backlog: int) -> socket.socket:
    """A listening socket for ``name`` (``WEB`` or ``PROXY``), inheritable by workers.

    Raises ``StartupError`` with one line when the port is busy.
    """
    try:
        family, kind, proto, _name, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise StartupError(f"Cannot listen on {host}: {exc.strerror}.") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise StartupError(
                f"{_WHAT[name]} {port} on {host} is already in use (another server?); "
                f"stop it, or choose another with {_FLAGS[name]}."
            ) from None
        raise StartupError(f"Cannot listen on {host}:{port}: {exc.strerror}.") from None
    sock.set_inheritable(True)
    return sock


def bind_all(config: Config) -> dict[str, socket.socket]:
    """Every extra listener the settings ask for, bound (the supervisor's, at its start)."""
    bound: dict[str, socket.socket] = {}
    try:
        for name, port in wanted(config).items():
            bound[name] = bind(name, config.host, port, config.backlog)
    except StartupError:
        for sock in bound.values():
            sock.close()
        raise
    return bound


def describe(bound: dict[str, socket.socket]) -> str:
    """``web=7 proxy=8``: the listeners' descriptors, for a worker's environment."""
    return " ".join(f"{name}={sock.fileno()}" for name, sock in bound.items())


def port_of(sock: socket.socket) -> int:
    return int(sock.getsockname()[1])
