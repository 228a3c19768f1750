"""Play the game as a player would: a telnet client, a server subprocess, a command in process.

``MudClient`` is the project's one telnet test client: the engine's tests,
a game's own tests, the smoke test and the measurement scripts all talk to a
real server over loopback through it.  ``ServerProcess`` runs that server in
a subprocess; ``call_command`` runs one line in process, on the road every
line takes (``engine.commands.runner``).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, Self

import telnetlib3

from engine.accounts.account import Account, Role
from engine.commands.base import Command
from engine.commands.registry import Registry
from engine.commands.runner import run_line
from engine.guard.errors import ContentError
from engine.guard.guard import ContentGuard
from engine.guard.run import GuardedCommands
from engine.net.clientinfo import ClientInfo
from engine.net.colour import Depth
from engine.paths import CODE_ROOT, starter_content
from engine.services import Connection
from engine.textclient import ExpectTimeout as ExpectTimeout
from engine.textclient import TextClient
from engine.world import atomic
from engine.world.model import World
from engine.world.objects import Character, GameObject

#: The password ``MudClient.login_new`` and ``MudClient.login`` use unless told another.
PASSWORD = "correct horse"


class MudClient(TextClient):
    """A telnet client (telnetlib3's) with a read buffer: send lines, wait for texts.

    The one scripted player of the project: the smoke test, the measurement
    scripts, the engine's tests and a game's own tests all play through it.
    ``expect`` consumes the buffer up to and including what it waited for,
    so consecutive ``expect`` calls see output in order and nothing is read
    twice.  Every wait has a deadline (``timeout`` seconds unless told
    another) and fails with what did arrive.
    """

    password = PASSWORD

    def __init__(self, reader: Any, writer: Any, timeout: float | None = None) -> None:
        super().__init__(timeout)
        self.reader = reader
        self.writer = writer
        self.eof = False

    def _ended(self) -> bool:
        return self.eof

    @classmethod
    async def connect(
        cls,
        port: int,
        host: str = "127.0.0.1",
        *,
        source: str | None = None,
        cols: int = 250,
        timeout: float | None = None,
    ) -> Self:
        """Connect to ``host``:``port``, from the address ``source`` if given.

        The window is ``cols`` wide: 250 by default, since scripts match whole
        lines, which the server would otherwise wrap at 80 columns.
        """
        reader, writer = await asyncio.wait_for(
            telnetlib3.open_connection(
                host,
                port,
                client_factory=telnetlib3.TelnetClient,
                local_addr=(source, 0) if source else None,
                connect_minwait=0.05,
                connect_maxwait=0.5,
                cols=cols,
            ),
            timeout if timeout is not None else cls.timeout,
        )
        return cls(reader, writer, timeout)

    def send(self, line: str) -> None:
        self.writer.write(line + "\r\n")

    async def _fill(self) -> bool:
        # Far more than telnetlib3 ever buffers: read(n) below the buffer size
        # takes a slow byte-at-a-time path (see docs/architecture.md).
        data = await self.reader.read(1 << 20)
        if not data:
            self.eof = True
            return False
        self.buffer += data
        self.transcript += data
        return True

    async def expect_closed(self, timeout: float | None = None) -> str:
        """Read until the server closes the connection; return what came before."""
        await self._drain(timeout)
        rest, self.buffer = self.buffer, ""
        return rest

    #: The older name of ``expect_closed``.
    closed = expect_closed

    # -- the login dialogue -----------------------------------------------------------

    async def create_account(self, name: str, password: str) -> str:
        """Create an account in any game's login dialogue; the text up to the first prompt."""
        await self.expect("By what name")
        await self.command(name, "Create a new character?")
        await self.command("yes", "Choose a password")
        await self.command(password, "Type it again")
        self.send(password)
        return await self.expect("> ")

    async def log_in(self, name: str, password: str) -> str:
        """Log in to an existing account; the text up to the first prompt."""
        await self.expect("By what name")
        await self.command(name, "Password:")
        self.send(password)
        return await self.expect("> ")

    def close(self) -> None:
        self.writer.close()


@dataclass
class ServerProcess:
    """``python -m engine`` in a subprocess, on a free port, with a copy of content."""

    workdir: Path
    extra_args: list[str] = field(default_factory=list)
    #: Extra ``MUD_*`` settings for the server (the caller's own are not inherited).
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    port: int = 0
    log_path: Path = field(init=False)
    #: Where the engine's code is run from (``copy_engine`` makes a copy to edit).
    root: Path = CODE_ROOT

    def __post_init__(self) -> None:
        self.log_path = self.workdir / "server.log"

    @property
    def content_dir(self) -> Path:
        return self.workdir / "content"

    @classmethod
    def with_copied_content(
        cls, extra_args: list[str] | None = None, env: dict[str, str] | None = None
    ) -> ServerProcess:
        workdir = Path(tempfile.mkdtemp(prefix="hotmud-"))
        shutil.copytree(
            starter_content(),
            workdir / "content",
            ignore=shutil.ignore_patterns("__pycache__"),
        )
        return cls(workdir, extra_args or [], env or {})

    def copy_engine(self) -> Path:
        """Run the engine from a copy of its code in the work directory; the copy's root.

        A test can then break the engine's code, as a maintainer's save would,
        without touching the project's.
        """
        root = self.workdir / "code"
        for package in ("engine", "reloader"):
            shutil.copytree(
                CODE_ROOT / package,
                root / package,
                ignore=shutil.ignore_patterns("__pycache__"),
            )
        self.root = root
        return root

    def start(self, timeout: float = 20.0) -> int:
        """Start the server and wait for its "listening" log line; return the port."""
        args = [
            sys.executable, "-m", "engine", "--port", "0",
            "--content-dir", str(self.content_dir),
            "--db-path", str(self.workdir / "db.sqlite3"),
            *self.extra_args,
        ]  # fmt: skip
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        self.process = subprocess.Popen(
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.root,
            env={**_child_env(), **self.env},
        )
        log.close()
        deadline = time.monotonic() + timeout
        pattern = re.compile(r"listening on [\d.]+:(\d+)")
        while time.monotonic() < deadline:
            match = pattern.search(self.log_path.read_text(errors="replace")[offset:])
            if match:
                self.port = int(match.group(1))
                return self.port
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited at start:\n{self.log()}")
            time.sleep(0.05)
        raise RuntimeError(f"server did not start in {timeout} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    @property
    def web_port(self) -> int:
        """The web client's port, from the latest line the server logged about it."""
        found = re.findall(r"web client at http://[\d.]+:(\d+)/", self.log())
        if not found:
            raise RuntimeError(f"the server logged no web client address:\n{self.log()}")
        return int(found[-1])

    def wait(self, timeout: float = 10.0) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def _child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MUD_")}
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = str(CODE_ROOT)
    return env


def edit(path: Path, old: str, new: str) -> str:
    """Replace ``old`` by ``new`` in ``path`` (which must contain it); return the old text."""
    text = path.read_text()
    if old not in text:
        raise AssertionError(f"{old!r} is not in {path}")
    path.write_text(text.replace(old, new, 1))
    return text


# -- running a command in process ---------------------------------------------------------


class RecordingSession:
    """A player's connection for ``call_command``: it records what the player is sent.

    Output goes through the open content transaction like a real session's,
    so a command that fails shows others nothing here either.
    """

    def __init__(self, name: str, role: Role = Role.PLAYER) -> None:
        self.account = Account(0, name, role)
        #: The character it plays: commands typed here run as this one.
        self.character: Character | None = None
        self.sent: list[str] = []
        self.closed = False
        self.last_input = time.time()
        #: A plain client: no terminal type, no colour.
        self.client = ClientInfo()
        self.colour = Depth.NONE

    @property
    def name(self) -> str:
        return self.account.name

    @property
    def role(self) -> Role:
        return self.account.role

    def deliver(self, action: Callable[[], None]) -> None:
        action()

    deliver_unchanged = deliver

    def send(self, text: str, newline: bool = True, *, held: bool = True) -> None:
        if self.closed:
            return
        txn = atomic.current()
        if txn is not None and held:
            txn.hold(self, lambda: self._record(text, newline), "text")
        else:
            self._record(text, newline)

    def _record(self, text: str, newline: bool) -> None:
        """What was sent, as it was sent: one entry per message."""
        self.sent.append(text)

    def close(self, message: str | None = None) -> None:
        if message:
            self.send(message)
        self.closed = True

    def gmcp(self, package: str, data: Any) -> None:
        return None

    def room_changed(self, room: Any) -> None:
        return None


class CommandTestGame:
    """The ``ctx.game`` of ``call_command``: the world and its players, nothing of a server.

    Services that need a server (accounts, reloads, shutdown) say so when
    called; test those through ``ServerProcess``.
    """

    def __init__(self, world: World, commands: Registry) -> None:
        self._world = world
        self.registry = commands

    @property
    def world(self) -> World:
        return self._world

    def online(self) -> Sequence[Connection]:
        sessions = [
            c.session
            for c in self.world.objects.values()
            if isinstance(c.session, RecordingSession)
        ]
        return sorted(sessions, key=lambda s: s.name.lower())

    def commands(self) -> list[Command]:
        return self.registry.commands()

    def broadcast(self, text: str) -> None:
        for session in self.online():
            session.send(text)

    def typeclass_problem(self, path: str, kind: str) -> str | None:
        return None

    def typeclass_status(self, obj: GameObject) -> str:
        return "(loaded)"

    def content_errors(self) -> list[ContentError]:
        return []

    def forget_content_errors(self) -> int:
        return 0

    def broken_content(self) -> list[str]:
        return []

    def _needs_a_server(self, service: str) -> NoReturn:
        raise NotImplementedError(
            f"ctx.game.{service} needs a running server; test this command with ServerProcess"
        )

    async def find_account(self, name: str) -> Account | None:
        self._needs_a_server("find_account")

    async def all_accounts(self) -> list[Account]:
        self._needs_a_server("all_accounts")

    async def save_settings(self, account: Account) -> None:
        self._needs_a_server("save_settings")

    async def set_role(self, name: str, role: Role) -> bool:
        self._needs_a_server("set_role")

    async def reload(self, names: list[str] | None = None, force: bool = False) -> None:
        self._needs_a_server("reload")

    def shutdown(self, message: str = "") -> None:
        self._needs_a_server("shutdown")

    def restart(self, message: str = "", requester: Connection | None = None) -> str:
        self._needs_a_server("restart")

    def status(self) -> dict[str, str]:
        self._needs_a_server("status")


async def call_command(
    line: str,
    caller: Character,
    *,
    commands: Iterable[Command],
    world: World,
    role: Role = Role.PLAYER,
    budget: float = 1.0,
    content_dir: Path | None = None,
) -> dict[str, list[str]]:
    """Run ``line`` as ``caller`` typed it, in process; what each player online was sent.

    The world is a real ``World`` (``World()`` keeps it in memory).  Every
    character in it with no session gets a ``RecordingSession`` for the call
    (the caller with ``role``); the command runs as in the game, through the
    content guard: atomic, and, given the ``content_dir`` its code lives in,
    stopped past ``budget``.  For content authors and the engine's own
    command tests::

        world = World()
        square = world.create_room("Square")
        pat = world.create("character", "Pat", location=square, account_id=1)
        sent = await call_command("look", pat, commands=[CmdLook()], world=world)
        assert sent["Pat"][0].startswith("Square")
    """
    registry = Registry()
    registry.replace({"call_command": list(commands)})
    recorders: dict[Character, RecordingSession] = {}
    for obj in world.objects.values():
        if isinstance(obj, Character) and obj.session is None:
            recorder = RecordingSession(obj.name, role if obj is caller else Role.PLAYER)
            # A stand-in for a connection: it has what commands use of one.
            recorder.character = obj
            obj.session = recorder
            recorders[obj] = recorder
    try:
        session = recorders.get(caller)
        if session is None:
            raise ValueError(f"{caller.name} must be a character of the world with no session")
        await run_line(
            line,
            session,
            registry=registry,
            services=CommandTestGame(world, registry),
            guard=GuardedCommands(ContentGuard(content_dir, budget)),
        )
        return {character.name: list(r.sent) for character, r in recorders.items()}
    finally:
        for obj in recorders:
            obj.session = None
