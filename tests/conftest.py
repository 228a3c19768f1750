"""Shared fixtures: a real game server on loopback and telnet clients that talk to it.

The engine's integration tests start ``engine.app.Game`` in the test's own
event loop on 127.0.0.1, port 0, over a throw-away copy of ``content/`` and a
fresh SQLite file, and drive it with the project's one telnet client
(``engine.testing.MudClient``).  Every wait has a deadline: a client
``expect``s a text and fails with what it did read if the text does not come
in time.
"""

from __future__ import annotations

import asyncio
import faulthandler
import os
import shutil
import socket
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.app import Game
from engine.config import Config
from engine.local import LocalGame
from engine.paths import CODE_ROOT as PROJECT_ROOT
from engine.testing import PASSWORD as PASSWORD
from engine.testing import ExpectTimeout as ExpectTimeout
from engine.testing import MudClient, ServerProcess

#: The starter game's own tests run inside a game folder (`hotmud new`, then `hotmud test`:
#: tests/engine/test_game_folder.py), never here, where content/ is not beside them.
collect_ignore = ["starter"]

HOST = "127.0.0.1"
#: Default deadline of one ``expect``, in seconds.
TIMEOUT = 3.0
#: Password hashes at the least work the ``password_cost`` setting allows (2**10: about
#: 2 ms, not 40): the suite creates and logs in to a thousand accounts, and their hashing
#: was a seventh of its CPU.  Django's docs advise the same for tests.  Servers the tests start
#: with ``hotmud`` read it from the environment (``ServerProcess`` passes no ``MUD_*`` variable
#: on); a test of the real cost sets its own.
TEST_PASSWORD_COST = 10
os.environ.setdefault("MUD_PASSWORD_COST", str(TEST_PASSWORD_COST))
#: A hung test is ended (with every thread's stack) after this many seconds: generous,
#: since the longest tests take 25 s on an idle machine and a loaded one is slower.
HARD_LIMIT = float(os.environ.get("HOTMUD_HARD_LIMIT", "180"))
#: Where a hung test's name and stacks go: pytest captures file descriptor 2, so a
#: dump there would end the run unseen.  ``make test`` shows this file on failure.
#: One report per xdist worker, so two hung workers do not overwrite each other's.
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")
HANG_REPORT = Path(
    os.environ.get("HOTMUD_HANG_REPORT", PROJECT_ROOT / "var" / f"test-hang-{_WORKER}.txt")
)


class Client(MudClient):
    """The project's telnet client (``engine.testing.MudClient``): ``TIMEOUT`` s an expect."""

    timeout = TIMEOUT


class RawClient:
    """A plain TCP socket that speaks no telnet: for bytes no telnet client would send."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.buffer = b""
        self.transcript = b""

    @classmethod
    async def connect(cls, port: int, rcvbuf: int | None = None) -> RawClient:
        """Connect; ``rcvbuf`` shrinks the socket's receive buffer (a slow reader)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        try:
            await asyncio.wait_for(
                asyncio.get_running_loop().sock_connect(sock, (HOST, port)), TIMEOUT
            )
        except BaseException:
            sock.close()
            raise
        reader, writer = await asyncio.open_connection(sock=sock)
        return cls(reader, writer)

    def stop_reading(self) -> None:
        """Read nothing more from the socket, as a client that hung would."""
        self.writer.transport.pause_reading()  # type: ignore[attr-defined]

    async def expect(self, text: bytes, timeout: float = TIMEOUT) -> bytes:
        async def wait() -> bytes:
            while text not in self.buffer:
                data = await self.reader.read(1 << 16)
                if not data:
                    raise ExpectTimeout(f"closed before {text!r}; got {self.buffer[-2000:]!r}")
                self.buffer += data
                self.transcript += data
            end = self.buffer.index(text) + len(text)
            seen, self.buffer = self.buffer[:end], self.buffer[end:]
            return seen

        try:
            return await asyncio.wait_for(wait(), timeout)
        except TimeoutError:
            raise ExpectTimeout(
                f"no {text!r} within {timeout} s; got {self.buffer[-2000:]!r}"
            ) from None

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await asyncio.wait_for(self.writer.drain(), TIMEOUT)

    def close(self) -> None:
        self.writer.close()


def write_source(path: Path, text: str) -> Path:
    """Write a (dedented) content source file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


@pytest.fixture
def content_dir(tmp_path: Path) -> Path:
    """A private copy of the project's ``content/`` that a test may edit freely."""
    target = tmp_path / "content"
    shutil.copytree(
        PROJECT_ROOT / "content", target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    return target


@pytest.fixture
def watchdog(request: pytest.FixtureRequest) -> Iterator[None]:
    """Last-resort bound on a test that hangs despite its deadlines.

    The test's name is written first, then the stacks if it hangs, to
    ``HANG_REPORT``, where a person will see them.
    """
    HANG_REPORT.parent.mkdir(parents=True, exist_ok=True)
    with open(HANG_REPORT, "w", encoding="utf-8") as report:
        report.write(
            f"{request.node.nodeid} hung for {HARD_LIMIT:.0f} s and the run was ended. "
            "Every thread's stack at that moment:\n"
        )
        report.flush()
        faulthandler.dump_traceback_later(HARD_LIMIT, exit=True, file=report)
        try:
            yield
        finally:
            faulthandler.cancel_dump_traceback_later()
    HANG_REPORT.unlink(missing_ok=True)


MakeGame = Callable[..., Awaitable[Game]]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "game(reload=False, files=None, **settings): how the `game` fixture is built; "
        "files maps paths under content/ to source written before the start",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``slow`` first: begun last, one of them would end the run alone on one
    worker while the others wait (``make test``: two workers of a dozen seconds or more)."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture
async def make_game(content_dir: Path, tmp_path: Path, watchdog: None) -> AsyncIterator[MakeGame]:
    """``await make_game(reload=True, max_line=100, ...)``: a started game, closed at teardown."""
    games: list[Game] = []

    async def make(**overrides: Any) -> Game:
        game = Game(game_config(content_dir, tmp_path, **overrides))
        games.append(game)
        await asyncio.wait_for(game.start(), TIMEOUT)
        return game

    yield make
    for game in games:
        await asyncio.wait_for(game.close(), 10)


def game_config(content_dir: Path, tmp_path: Path, **overrides: Any) -> Config:
    settings: dict[str, Any] = {
        "host": HOST,
        "port": 0,
        "content_dir": content_dir,
        "db_path": tmp_path / "db.sqlite3",
        "reload": False,
        "password_cost": TEST_PASSWORD_COST,
    }
    settings.update(overrides)
    return Config(**settings)


@pytest.fixture
async def game(make_game: MakeGame, content_dir: Path, request: pytest.FixtureRequest) -> Game:
    """A running game; ``@pytest.mark.game(...)`` sets reload, extra content files, settings."""
    marker = request.node.get_closest_marker("game")
    settings = dict(marker.kwargs) if marker else {}
    for relpath, source in (settings.pop("files", None) or {}).items():
        write_source(content_dir / relpath, source)
    return await make_game(**settings)


Connect = Callable[[int], Awaitable[Client]]
MakeClient = Callable[[], Awaitable[Client]]


@pytest.fixture
async def connect() -> AsyncIterator[Connect]:
    """``await connect(port)``: a telnet client to any port; all closed at teardown."""
    clients: list[Client] = []

    async def make(port: int) -> Client:
        client = await Client.connect(port)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.writer.close()
    await asyncio.sleep(0)


@pytest.fixture
def make_client(game: Game, connect: Connect) -> MakeClient:
    """``await make_client()``: a telnet client connected to the test's game."""

    async def make() -> Client:
        return await connect(game.port)

    return make


@pytest.fixture
def password() -> str:
    """The password ``Client.login_new`` and ``Client.login`` use by default."""
    return PASSWORD


MakeRaw = Callable[..., Awaitable[RawClient]]


@pytest.fixture
async def make_raw(game: Game) -> AsyncIterator[MakeRaw]:
    """``await make_raw()`` (or ``make_raw(rcvbuf=4096)``): a plain socket to the test's game."""
    raws: list[RawClient] = []

    async def make(rcvbuf: int | None = None) -> RawClient:
        raw = await RawClient.connect(game.port, rcvbuf)
        raws.append(raw)
        return raw

    yield make
    for raw in raws:
        raw.close()


@pytest.fixture
async def server(watchdog: None) -> AsyncIterator[ServerProcess]:
    """The real server, supervisor and workers, in a process of its own (no live reload)."""
    process = ServerProcess.with_copied_content(["--no-reload"])
    await asyncio.to_thread(process.start)
    yield process
    await asyncio.to_thread(process.cleanup)


@pytest.fixture
def local(watchdog: None, request: pytest.FixtureRequest) -> LocalGame:
    """The starter game in this process, without sockets, for tests of what commands do.

    Text is wrapped at the width the socket tests' client reports.  Like
    ``game``, it reads ``@pytest.mark.game(files=..., content_budget=...)``:
    the files are written into a copy of ``content/`` first.
    """
    marker = request.node.get_closest_marker("game")
    settings = dict(marker.kwargs) if marker else {}
    files = settings.get("files") or {}
    directory: Path | None = None
    if files:
        directory = request.getfixturevalue("content_dir")
        for relpath, source in files.items():
            write_source(directory / relpath, source)
    return LocalGame(directory, budget=settings.get("content_budget", 1.0), width=250)
