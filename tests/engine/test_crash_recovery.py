"""A worker that dies at any moment costs nobody their connection (the supervisor's ledger).

Fault injection over real sockets: the game worker is killed with SIGKILL
while it serves, at each step of a hot restart (the new worker before it
is ready, the old one mid-handover, the new one right after it took the
connections), and a new worker's code fails while it adopts them.  Each
time every player stays on the same connection, in their character,
without logging in again, and every change they were told of is kept.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time

from server_helpers import player, until, worker_pids

from engine.testing import MudClient, ServerProcess

PASSWORD = "secret1"
BACK = "The game had a problem and is back."
RESTARTED = "The game is back, running the new code."


async def both_play_on(alice: MudClient, bob: MudClient) -> None:
    """Same connections, same characters, the acknowledged room still there."""
    await alice.command("west", "Den", timeout=10)
    await bob.command("west", "Den", timeout=10)
    await alice.expect("Bob arrives.")
    for client in (alice, bob):
        # Logged in once, at the start: never asked again.
        assert "".join(client.transcript).count("By what name are you known?") == 1


async def two_players(server: ServerProcess) -> tuple[MudClient, MudClient]:
    alice = await player(server.port, "Alice")  # the first account: an admin
    bob = await player(server.port, "Bob")
    await alice.expect("Bob has entered the game.")
    await alice.command("dig Den = west, east", "back here.")  # acknowledged
    return alice, bob


async def test_kill_9_of_the_worker_keeps_every_player(server: ServerProcess) -> None:
    alice, bob = await two_players(server)
    [worker] = sorted(worker_pids(server))
    started = time.monotonic()
    os.kill(worker, signal.SIGKILL)
    await alice.expect(BACK, timeout=10)
    await bob.expect(BACK, timeout=10)
    back_after = time.monotonic() - started
    await alice.expect("ended unexpectedly (it was killed by SIGKILL)")
    await both_play_on(alice, bob)
    assert back_after < 10
    assert "took over its 2 connections" in server.log()
    # A new player can still come in, and SIGTERM still stops the whole server.
    carol = await player(server.port, "Carol")
    await carol.command("look", "The Village Square")
    assert server.process is not None
    server.process.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(server.wait, 15) == 0


async def test_a_connection_closed_by_the_game_ends_though_the_supervisor_keeps_a_copy(
    server: ServerProcess,
) -> None:
    alice = await player(server.port, "Alice")
    alice.send("quit")
    await alice.closed(timeout=5)


async def test_the_new_worker_killed_right_after_the_handover(server: ServerProcess) -> None:
    alice, bob = await two_players(server)
    [old] = sorted(worker_pids(server))
    alice.send("restart")
    await bob.expect(RESTARTED, timeout=15)
    await until(lambda: old not in sorted(worker_pids(server)))
    [new] = sorted(worker_pids(server))
    os.kill(new, signal.SIGKILL)
    await alice.expect(BACK, timeout=10)
    await bob.expect(BACK, timeout=10)
    await both_play_on(alice, bob)


async def test_the_old_worker_killed_during_the_handover(server: ServerProcess) -> None:
    alice, bob = await two_players(server)
    [old] = sorted(worker_pids(server))
    alice.send("restart")
    # Players read the notice once the new worker is prepared and the old one pauses.
    await bob.expect("The game is restarting", timeout=15)
    os.kill(old, signal.SIGKILL)
    await bob.expect(re.compile("had a problem and is back|running the new code"), timeout=15)
    await both_play_on(alice, bob)


async def test_the_new_worker_killed_before_it_is_ready(server: ServerProcess) -> None:
    alice, bob = await two_players(server)
    [old] = sorted(worker_pids(server))
    alice.send("restart")
    await until(lambda: len(sorted(worker_pids(server))) == 2, timeout=5)
    new = max(sorted(worker_pids(server)))
    os.kill(new, signal.SIGKILL)
    await alice.expect("The restart failed: the new engine was killed by SIGKILL", timeout=10)
    assert sorted(worker_pids(server)) == [old]
    await both_play_on(alice, bob)


async def test_a_new_worker_whose_code_fails_while_adopting_is_replaced(
    watchdog: None,
) -> None:
    server = ServerProcess.with_copied_content(["--no-reload"])
    root = server.copy_engine()
    await asyncio.to_thread(server.start)
    try:
        alice, bob = await two_players(server)
        adopting = root / "engine" / "hot" / "coordinator.py"
        good = adopting.read_text()
        assert "        self.play.pause()\n        playing = 0\n" in good
        adopting.write_text(
            good.replace(
                "        self.play.pause()\n        playing = 0\n",
                "        raise RuntimeError('adoption broke')\n",
            )
        )
        alice.send("restart")
        await bob.expect("The game is restarting", timeout=15)
        # Every worker from this code fails to adopt: after a few, the last good code serves.
        await bob.expect(BACK, timeout=30)
        await alice.expect("last good engine code", timeout=30)
        await both_play_on(alice, bob)
    finally:
        await asyncio.to_thread(server.cleanup)


async def test_a_sighup_storm_gives_admins_one_line(server: ServerProcess) -> None:
    alice = await player(server.port, "Alice")
    assert server.process is not None
    for _ in range(9):
        server.process.send_signal(signal.SIGHUP)
        await asyncio.sleep(0.01)
    await alice.expect(RESTARTED, timeout=20)
    await asyncio.sleep(0.5)
    assert "".join(alice.transcript).count("A restart is under way already.") <= 1


async def test_a_worker_that_keeps_dying_is_not_started_forever(watchdog: None) -> None:
    server = ServerProcess.with_copied_content(["--no-reload"], env={"MUD_CRASH_LIMIT": "3"})
    await asyncio.to_thread(server.start)
    try:
        alice = await player(server.port, "Alice")
        for _ in range(2):
            [worker] = worker_pids(server)
            os.kill(worker, signal.SIGKILL)
            await alice.expect(BACK, timeout=10)
        # The second death: the last engine code that served takes over, and builders hear it.
        await alice.expect("running the last good engine code", timeout=10)
        [worker] = worker_pids(server)
        os.kill(worker, signal.SIGKILL)
        assert await asyncio.to_thread(server.wait, 15) == 1
        assert "ended 3 times within a minute" in server.log()
    finally:
        await asyncio.to_thread(server.cleanup)
