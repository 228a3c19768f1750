"""The web port: the game's page and its files, and the websocket at ``/ws``.

Served with websockets' asyncio server in the game's own event loop, beside
the telnet server.  ``GET /`` is the page (``static/``, files of this
package: no CDN, nothing to build); ``/ws`` opens a websocket whose
subprotocol the client chooses (``engine.web.subprotocols``).  Each
websocket becomes a connection of the game's telnet protocol
(``engine.web.bridge``), made by the telnet server's own factory, so it is
a session like any other: the same login, commands and limits.

Safety: a handshake whose ``Origin`` is another site is refused with 403
unless ``web_origins`` lists it (no ``Origin``, as from programs that are
not browsers, is accepted); a message bigger than ``web_max_frame`` closes
that connection with 1009; ``trusted_proxies`` lets a reverse proxy name the
player (``X-Forwarded-For``).  permessage-deflate is negotiated without
context takeover both ways, so a hot restart hands a websocket over with no
compression state to carry (``adopt``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import http
import logging
import socket
from collections.abc import Mapping
from email.utils import formatdate
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

from websockets.asyncio.server import Server, serve
from websockets.datastructures import Headers, MultipleValuesError
from websockets.exceptions import NegotiationError
from websockets.extensions.permessage_deflate import (
    PerMessageDeflate,
    ServerPerMessageDeflateFactory,
)
from websockets.http11 import Request, Response
from websockets.protocol import OPEN
from websockets.server import ServerProtocol
from websockets.typing import Subprotocol

from engine.config import Config
from engine.net.telnet import extra_info
from engine.web import listeners, subprotocols
from engine.web.addresses import TrustedProxies, words
from engine.web.bridge import (
    DEFLATE,
    MODE,
    PARTIAL,
    PEER,
    PEER_PORT,
    SUBPROTOCOL,
    WebConnection,
    WebTransport,
)
from engine.web.proxy import ProxyListener, is_proxied

log = logging.getLogger(__name__)

#: websockets' own log lines (a line per connection opened, and "server listening on
#: ...", which would read like the game's own) are left out below warnings.
_QUIET = logging.getLogger("engine.web.websockets")
_QUIET.setLevel(logging.WARNING)

#: The page and its files: path -> (file in ``static/``, content type).
STATIC_DIR = Path(__file__).with_name("static")
PAGES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/client.js": ("client.js", "text/javascript; charset=utf-8"),
    "/client.css": ("client.css", "text/css; charset=utf-8"),
    "/favicon.svg": ("favicon.svg", "image/svg+xml"),
}
WEBSOCKET_PATH = "/ws"

#: What a connection keeps of its handshake once it is open: nothing (websockets only asks
#: whether there was one).
HANDSHAKE_DONE = Request(WEBSOCKET_PATH, Headers())

#: Sent with every file: the page runs only its own script and talks only to this server.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

#: Seconds a client has to finish the opening handshake, and the closing one.
OPEN_TIMEOUT = 10.0
CLOSE_TIMEOUT = 3.0
#: A ping every so many seconds keeps proxies from closing an idle websocket, and finds
#: a dead one (no pong by the next round): one task pings every websocket, rather than a
#: task and a timer for each (websockets' own keepalive).
PING_INTERVAL = 20.0


class WebServer:
    """The web port of one game: its websockets server and how a websocket joins the game."""

    def __init__(self, config: Config, telnet_server: Any) -> None:
        self.config = config
        #: The telnet server (``engine.net.telnet.serve``): its factory makes each connection.
        self.telnet = telnet_server
        self.origins = frozenset(origin.rstrip("/") for origin in words(config.web_origins))
        self.proxies = TrustedProxies.from_setting(config.trusted_proxies)
        self.max_size = config.web_max_frame
        self.files = {
            path: (STATIC_DIR.joinpath(name).read_bytes(), kind)
            for path, (name, kind) in PAGES.items()
            if STATIC_DIR.joinpath(name).is_file()
        }
        self.ws: Server | None = None
        #: The PROXY port, when ``proxy_port`` asks for one (``engine.web.proxy``).
        self.proxy: ProxyListener | None = None
        self._pinger: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        """The web port."""
        assert self.ws is not None
        return listeners.port_of(self.ws.sockets[0])

    async def start(self, sock: socket.socket) -> None:
        self.start_pinger()
        self.ws = await serve(
            self.handler,
            sock=sock,
            create_connection=WebConnection,
            process_request=self.process_request,
            select_subprotocol=self.select_subprotocol,
            subprotocols=[Subprotocol(name) for name in subprotocols.SUBPROTOCOLS],
            compression=None,
            extensions=[_deflate()],
            max_size=self.max_size,
            open_timeout=OPEN_TIMEOUT,
            close_timeout=CLOSE_TIMEOUT,
            ping_interval=None,
            server_header=None,
            logger=_QUIET,
        )

    # -- the handshake -----------------------------------------------------------------

    def process_request(self, connection: Any, request: Request) -> Response | None:
        """The page and its files, or the websocket's checks (Origin, the player's address)."""
        path = request.path.split("?", 1)[0]
        if path != WEBSOCKET_PATH:
            return self._file(path)
        conn = cast(WebConnection, connection)
        peer = conn.transport.get_extra_info("peername") or ("?", 0)
        forwarded = request.headers.get_all("X-Forwarded-For")
        conn.peer = (self.proxies.forwarded_for(str(peer[0]), forwarded), int(peer[1]))
        refusal = self._origin_refusal(request.headers, str(peer[0]))
        if refusal:
            log.info("refused a websocket from %s: %s", conn.peer[0], refusal)
            return _response(http.HTTPStatus.FORBIDDEN, f"{refusal}\n".encode(), "text/plain")
        return None

    def _origin_refusal(self, headers: Headers, peer: str) -> str:
        """Why a browser page of another site may not open the websocket, or ""."""
        try:
            origin = headers.get("Origin")
        except MultipleValuesError:
            return "more than one Origin"
        if origin is None or origin.rstrip("/") in self.origins:
            return ""
        host = headers.get("Host", "")
        if self.proxies.trusts(peer):
            host = headers.get("X-Forwarded-Host", host).split(",")[0].strip()
        seen = urlsplit(origin)
        if seen.scheme in ("http", "https") and _netloc(seen.scheme, seen.netloc) == _netloc(
            seen.scheme, host
        ):
            return ""
        return f"the page of {origin} is another site (web_origins may list it)"

    def select_subprotocol(self, connection: Any, offered: Any) -> Subprotocol | None:
        try:
            chosen = subprotocols.choose([str(name) for name in offered])
        except ValueError as exc:
            raise NegotiationError(str(exc)) from None
        cast(WebConnection, connection).mode = chosen or subprotocols.TERMINAL
        return Subprotocol(chosen) if chosen else None

    def _file(self, path: str) -> Response:
        found = self.files.get(path)
        if found is None:
            return _response(http.HTTPStatus.NOT_FOUND, b"Not found.\n", "text/plain")
        body, kind = found
        return _response(http.HTTPStatus.OK, body, kind)

    # -- a websocket in the game ------------------------------------------------------

    async def handler(self, connection: Any) -> None:
        """One websocket, from its opening to its end: the game's protocol takes it."""
        conn = cast(WebConnection, connection)
        # The handshake's headers are not kept for the connection's life (memory per player).
        conn.request, conn.response = HANDSHAKE_DONE, None
        if conn.bridge is None:
            self._take(conn, None)
        await conn.finished

    def _take(self, conn: WebConnection, state: dict[str, Any] | None) -> None:
        """The telnet server's factory makes the game's protocol for ``conn``, which takes it."""
        protocol = self.telnet.protocol_factory()
        if state is not None:
            protocol.adopted = state
        bridge = WebTransport(conn, conn.mode or subprotocols.TERMINAL, conn.peer)
        deflate = next(
            (e for e in conn.protocol.extensions if isinstance(e, PerMessageDeflate)), None
        )
        # What a hot restart needs to go on with this websocket (export_state keeps it).
        extra_info(protocol).update(
            {
                MODE: bridge.mode,
                SUBPROTOCOL: conn.protocol.subprotocol or "",
                PEER: conn.peer[0],
                PEER_PORT: conn.peer[1],
                DEFLATE: f"{deflate.remote_max_window_bits},{deflate.local_max_window_bits}"
                if deflate is not None
                else "",
            }
        )
        if state is not None and bridge.client is not None:
            telnet = state.get("telnet", {})
            bridge.client.restore(_options(telnet.get("local")), _options(telnet.get("remote")))
        conn.take(bridge, protocol)

    # -- a hot restart ---------------------------------------------------------------

    async def adopt(self, sock: socket.socket, state: dict[str, Any]) -> None:
        """Go on with a connection the previous engine process handed over (``needs_web``)."""
        if not is_websocket(state):
            if self.proxy is None:
                sock.close()
                raise OSError("a connection of the PROXY port was handed over, but it is off")
            await self.proxy.adopt(sock, state)
            return
        if self.ws is None:
            sock.close()
            raise OSError("a websocket was handed over, but this engine serves no web client")
        await self._adopt_websocket(sock, state)

    async def _adopt_websocket(self, sock: socket.socket, state: dict[str, Any]) -> None:
        """Go on with a websocket the previous engine process handed over, open as it was."""
        extra = state.get("telnet", {}).get("extra", {})
        partial = extra.pop(PARTIAL, "")
        assert self.ws is not None
        protocol = ServerProtocol(state=OPEN, max_size=self.max_size, logger=_QUIET)
        protocol.subprotocol = Subprotocol(extra[SUBPROTOCOL]) if extra.get(SUBPROTOCOL) else None
        if extra.get(DEFLATE):
            remote, local = (int(bits) for bits in str(extra[DEFLATE]).split(","))
            protocol.extensions = [PerMessageDeflate(True, True, remote, local)]
        conn = WebConnection(
            protocol,
            self.ws,
            ping_interval=None,
            close_timeout=CLOSE_TIMEOUT,
        )
        conn.adopted = state
        conn.request = HANDSHAKE_DONE  # the handshake was made before
        conn.mode = str(extra.get(MODE) or subprotocols.TERMINAL)
        conn.peer = (str(extra.get(PEER, "?")), int(extra.get(PEER_PORT, 0)))
        loop = asyncio.get_running_loop()
        await loop.connect_accepted_socket(lambda: conn, sock)
        self._take(conn, state)
        if partial and not state.get("recovered"):
            # A message the client was half-way through sending: whole in this parser.
            raw = base64.b64decode(partial)
            log.info("%d bytes of a websocket message half received go on here", len(raw))
            conn.data_received(raw)
        task = loop.create_task(self._adopted(conn))
        self.ws.handler_tasks.add(task)

    async def _adopted(self, conn: WebConnection) -> None:
        assert self.ws is not None
        self.ws.all_connections.add(conn)
        try:
            async with conn:
                await conn.finished
        except Exception:
            log.exception("a handed-over websocket failed")
        finally:
            self.ws.all_connections.discard(conn)
            task = asyncio.current_task()
            if task is not None:
                self.ws.handler_tasks.discard(task)

    # -- lifetime -------------------------------------------------------------------------

    def stop_accepting(self) -> None:
        """No new connections (a hot restart hands the open ones over)."""
        if self.ws is not None:
            self.ws.server.close()
        if self.proxy is not None:
            self.proxy.stop_accepting()

    def start_pinger(self) -> None:
        self._pinger = asyncio.get_running_loop().create_task(self._keepalive())

    def close_pinger(self) -> None:
        if self._pinger is not None:
            self._pinger.cancel()
            self._pinger = None

    async def _keepalive(self) -> None:
        """Every ``PING_INTERVAL`` s, each open websocket is pinged (and dropped if it did not
        answer the previous ping)."""
        while True:
            await asyncio.sleep(PING_INTERVAL)
            if self.ws is not None:
                for conn in list(self.ws.all_connections):
                    cast(WebConnection, conn).keepalive_round()

    def close(self) -> None:
        self.close_pinger()
        if self.ws is not None:
            self.ws.close(close_connections=True)
        if self.proxy is not None:
            self.proxy.stop_accepting()

    async def wait_closed(self, timeout: float = 2.0) -> None:
        """Wait for the websockets to end; those still open after ``timeout`` are dropped."""
        if self.proxy is not None:
            await self.proxy.wait_closed()
        if self.ws is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self.ws.wait_closed()), timeout)
        except TimeoutError:
            for conn in list(self.ws.all_connections):
                conn.transport.abort()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.ws.wait_closed(), 1.0)


async def start(
    config: Config, telnet_server: Any, inherited: Mapping[str, socket.socket] | None = None
) -> WebServer | None:
    """Serve the web port and the PROXY port the settings ask for; None if they ask for neither.

    ``inherited``: the supervisor's listening sockets, by name (copies are served).
    """
    ports = listeners.wanted(config)
    if not ports:
        return None
    bound: dict[str, socket.socket] = {}
    try:
        for name, port in ports.items():
            given = (inherited or {}).get(name)
            bound[name] = (
                given.dup()
                if given is not None
                else listeners.bind(name, config.host, port, config.backlog)
            )
        web = WebServer(config, telnet_server)
        where = _shown_host(config.host)
        if listeners.WEB in bound:
            await web.start(bound.pop(listeners.WEB))
            log.info("web client at http://%s:%d/ (websocket %s)", where, web.port, WEBSOCKET_PATH)
        if listeners.PROXY in bound:
            web.proxy = ProxyListener(telnet_server, web.proxies)
            await web.proxy.start(bound.pop(listeners.PROXY))
            log.info("telnet behind a proxy (PROXY protocol) at %s:%d", where, web.proxy.port)
    except BaseException:
        for sock in bound.values():
            sock.close()
        raise
    return web


def is_websocket(state: dict[str, Any]) -> bool:
    """Whether a connection handed over (its session state) is a websocket."""
    extra = state.get("telnet", {}).get("extra", {})
    return isinstance(extra, dict) and bool(extra.get(MODE))


def needs_web(state: dict[str, Any]) -> bool:
    """Whether a connection handed over goes on through the web side (``WebServer.adopt``):
    a websocket, or a telnet connection whose client a PROXY header named."""
    return is_websocket(state) or is_proxied(state)


def _deflate() -> ServerPerMessageDeflateFactory:
    """permessage-deflate without context takeover, either way: nothing to carry in a restart."""
    return ServerPerMessageDeflateFactory(
        server_no_context_takeover=True,
        client_no_context_takeover=True,
        server_max_window_bits=12,
        compress_settings={"memLevel": 5},
    )


def _options(table: Any) -> set[bytes]:
    """The options agreed in an exported option table (hex keys)."""
    if not isinstance(table, dict):
        return set()
    return {bytes.fromhex(key) for key, value in table.items() if value}


def _netloc(scheme: str, netloc: str) -> str:
    """``host[:port]`` in lower case, without the scheme's default port."""
    netloc = netloc.strip().lower()
    default = {"http": ":80", "https": ":443"}.get(scheme, "")
    if default and netloc.endswith(default):
        netloc = netloc[: -len(default)]
    return netloc


def _shown_host(host: str) -> str:
    return "127.0.0.1" if host in ("", "0.0.0.0") else f"[{host}]" if ":" in host else host


def _response(status: http.HTTPStatus, body: bytes, kind: str) -> Response:
    headers = Headers(
        [
            ("Date", formatdate(usegmt=True)),
            ("Connection", "close"),
            ("Content-Length", str(len(body))),
            ("Content-Type", kind),
        ]
    )
    for name, value in SECURITY_HEADERS.items():
        headers[name] = value
    return Response(status.value, status.phrase, headers, body)
