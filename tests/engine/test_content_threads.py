"""Content threads: builders are told, and no retired worker is kept alive by one."""

from __future__ import annotations

import asyncio
import time

from server_helpers import worker_pids

from engine.testing import MudClient, ServerProcess

SPINNER = '''
import threading
import time

from engine.api import Command, Context


def forever() -> None:
    while True:
        time.sleep(0.05)


class CmdSpinoff(Command):
    """Start a thread that never ends."""

    key = "spinoff"

    def run(self, ctx: Context) -> None:
        threading.Thread(target=forever, name="spinner").start()
        ctx.msg("Spun off.")
'''


async def test_a_thread_that_never_ends_keeps_no_retired_worker_alive(watchdog: None) -> None:
    server = ServerProcess.with_copied_content(["--no-reload"])
    (server.content_dir / "commands" / "spin.py").write_text(SPINNER.lstrip())
    await asyncio.to_thread(server.start)
    try:
        alice = await MudClient.connect(server.port)
        await alice.create_account("Alice", "secret1")
        text = await alice.command("spinoff", "Spun off.")
        assert "content/commands/spin.py:18 started a thread (spinner)" in text
        assert "no time budget and no undo" in text
        for _ in range(2):
            alice.send("restart")
            await alice.expect("The game is back, running the new code.", timeout=20)
            deadline = time.monotonic() + 10
            while len(worker_pids(server)) != 1:
                assert time.monotonic() < deadline, f"retired workers left: {worker_pids(server)}"
                await asyncio.sleep(0.05)
            await alice.command("spinoff", "Spun off.")
        alice.close()
    finally:
        await asyncio.to_thread(server.cleanup)
