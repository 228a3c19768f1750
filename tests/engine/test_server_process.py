"""What only a real server process shows: its database lock, busy port, crash at import, signals.

Each test runs ``python -m engine`` as a subprocess on 127.0.0.1 (see
``engine.testing.ServerProcess``) and plays it over telnet.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING

from game_helpers import run_engine

from engine.testing import ServerProcess

if TYPE_CHECKING:
    from conftest import Connect

SPIN = '''
import os

from engine.api import Command, Context


class CmdSpin(Command):
    """Spin forever."""

    key = "spin"

    def run(self, ctx: Context) -> None:
        ctx.msg("Spinning.")
        while True: pass


class CmdShell(Command):
    """Block in a call Python cannot interrupt."""

    key = "shell"

    def run(self, ctx: Context) -> None:
        ctx.msg("Waiting.")
        os.system("sleep 30")
'''

BOOM = """
import os

os._exit(1)
"""

FIXED_BOOM = """
from engine.api import Command, Context


class CmdBoom(Command):
    key = "boom"

    def run(self, ctx: Context) -> None:
        ctx.msg("Boom, safely.")
"""


async def test_a_second_server_on_the_same_database_refuses_to_start(
    content_dir: Path, tmp_path: Path, connect: Connect, watchdog: None
) -> None:
    server = ServerProcess(tmp_path, ["--no-reload"])
    try:
        await asyncio.to_thread(server.start)
        assert server.process is not None
        started = time.monotonic()
        second = await asyncio.to_thread(run_engine, tmp_path, "--port", "0")
        assert second.returncode != 0
        assert time.monotonic() - started < 10
        message = second.stderr.strip()
        assert message == (
            f"hotmud: The database {tmp_path / 'db.sqlite3'} is in use by another server "
            f"(pid {server.process.pid}, port {server.port}); stop that server first, "
            "or give this one another --db-path."
        )
        # The first server was not disturbed.
        alice = await connect(server.port)
        await alice.login_new("Alice")

        # kill -9 leaves no stale lock: the next server starts.
        server.process.kill()
        assert await asyncio.to_thread(server.wait) == -9
        await asyncio.to_thread(server.start)
        alice = await connect(server.port)
        await alice.login("Alice")
    finally:
        server.stop()


async def test_a_busy_port_is_one_line_before_anything_is_loaded(
    content_dir: Path, tmp_path: Path, watchdog: None
) -> None:
    server = ServerProcess(tmp_path, ["--no-reload"])
    other = tmp_path / "other"
    other.mkdir()
    (other / "content").symlink_to(content_dir)
    try:
        await asyncio.to_thread(server.start)
        busy = await asyncio.to_thread(run_engine, other, "--port", str(server.port))
        assert busy.returncode != 0
        assert busy.stderr.strip().splitlines()[-1] == (
            f"hotmud: Port {server.port} on 127.0.0.1 is already in use (another server?); "
            "stop it, or choose another port with --port."
        )
        assert "content loaded" not in busy.stderr and "Traceback" not in busy.stderr
        assert not (other / "db.sqlite3").exists() or "world" not in busy.stderr
    finally:
        server.stop()


async def test_a_module_that_kills_the_process_at_import_is_skipped_by_the_worker_after(
    content_dir: Path, tmp_path: Path, connect: Connect, watchdog: None
) -> None:
    server = ServerProcess(tmp_path)  # live reload on
    boom = content_dir / "commands" / "boom.py"
    try:
        await asyncio.to_thread(server.start)
        alice = await connect(server.port)
        await alice.login_new("Alice")
        boom.write_text(BOOM.lstrip("\n"), encoding="utf-8")
        # os._exit(1) ended the worker; a new one carries Alice on, without the module.
        await alice.expect("The game had a problem and is back.", timeout=20)
        await alice.expect("[restart] The game's engine process ended unexpectedly (it exited")
        assert "the process ended while content module content.commands.boom was loading" in (
            server.log()
        )
        await alice.command("look", "Exits:")
        await alice.command("errors", "the process ended while this module was loading")
        # The fixed file applies on save.
        boom.write_text(FIXED_BOOM.lstrip("\n"), encoding="utf-8")
        await alice.expect("[reload] Reloaded commands.boom: added boom")
        await alice.command("boom", "Boom, safely.")
    finally:
        server.stop()


async def test_sigterm_and_ctrl_c_stop_the_server_while_content_holds_the_loop(
    content_dir: Path, tmp_path: Path, connect: Connect, watchdog: None
) -> None:
    (content_dir / "commands" / "spin.py").write_text(SPIN.lstrip("\n"), encoding="utf-8")
    # A budget far beyond the test: only the signal can end the spin.
    server = ServerProcess(tmp_path, ["--no-reload"], env={"MUD_CONTENT_BUDGET": "60"})
    try:
        for signum in (signal.SIGTERM, signal.SIGINT):
            await asyncio.to_thread(server.start)
            assert server.process is not None
            bob = await connect(server.port)
            await bob.login_new("Bob") if signum == signal.SIGTERM else await bob.login("Bob")
            bob.send("spin")  # its output waits for its end: nothing comes while it spins
            await asyncio.sleep(0.5)
            started = time.monotonic()
            server.process.send_signal(signum)
            assert await asyncio.to_thread(server.wait, 5) == 0
            assert time.monotonic() - started < 3
            await bob.expect("The server is shutting down.")
        log = server.log()
        assert "SIGTERM received: shutting down" in log and "SIGINT received" in log
        assert log.count("server stopped") == 2
    finally:
        server.stop()


async def test_a_stop_that_content_blocks_outside_python_ends_after_the_grace(
    content_dir: Path, tmp_path: Path, connect: Connect, watchdog: None
) -> None:
    (content_dir / "commands" / "spin.py").write_text(SPIN.lstrip("\n"), encoding="utf-8")
    server = ServerProcess(
        tmp_path, ["--no-reload"], env={"MUD_CONTENT_BUDGET": "60", "MUD_STOP_GRACE": "1"}
    )
    try:
        await asyncio.to_thread(server.start)
        assert server.process is not None
        bob = await connect(server.port)
        await bob.login_new("Bob")
        await bob.command("say still here", "You say")
        bob.send("shell")
        await asyncio.sleep(0.5)
        started = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(server.wait, 10) == 1
        assert time.monotonic() - started < 4
        assert "the server did not stop in time; ending it now" in server.log()
    finally:
        server.stop()


async def test_a_module_that_kills_the_process_at_import_does_not_stop_the_first_start(
    content_dir: Path, tmp_path: Path, connect: Connect, watchdog: None
) -> None:
    (content_dir / "commands" / "boom.py").write_text(BOOM.lstrip("\n"), encoding="utf-8")
    server = ServerProcess(tmp_path)
    try:
        await asyncio.to_thread(server.start)
        alice = await connect(server.port)
        await alice.login_new("Alice")
        assert "content/commands/boom.py: the process ended while this module was loading" in (
            alice.transcript
        )
        await alice.command("look", "Exits:")
        (content_dir / "commands" / "boom.py").write_text(FIXED_BOOM.lstrip("\n"), encoding="utf-8")
        await alice.expect("[reload] Reloaded commands.boom: added boom")
        await alice.command("boom", "Boom, safely.")
        # Changed, it is no longer skipped at the next start either.
        alice.send("shutdown")
        assert await asyncio.to_thread(server.wait) == 0
        await asyncio.to_thread(server.start)
        alice = await connect(server.port)
        await alice.login("Alice")
        await alice.command("boom", "Boom, safely.")
    finally:
        server.stop()
