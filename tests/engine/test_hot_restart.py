"""Hot restart over real sockets: ``python -m engine`` hands every connection to a new engine.

Each test runs the real server (supervisor and workers) in a subprocess.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
from pathlib import Path
from typing import Any

import pytest
from conftest import MakeClient
from server_helpers import player, until, worker_pids

from engine.app import Game
from engine.hot.handover import _socket_copy, let_go
from engine.testing import MudClient, ServerProcess

PASSWORD = "secret1"
NOTICE = "The game is restarting with new code; hold on a moment."
BACK = "The game is back, running the new code."


async def test_a_restart_keeps_every_player_and_loses_no_line(server: ServerProcess) -> None:
    alice = await player(server.port, "Alice")  # the first account: an admin
    bob = await player(server.port, "Bob")
    await alice.expect("Bob has entered the game.")
    await bob.command("dig Den", "You are not allowed")  # Bob is a player
    await alice.command("dig Den = west, east", "back here.")
    old = worker_pids(server)
    assert len(old) == 1

    alice.send("restart Mind the gap.")
    await alice.expect("Restarting: the new engine is starting beside this one.")
    await bob.expect("Mind the gap.", timeout=10)
    # Typed while the connections move: run by the new engine, in order.
    for word in ("one", "two", "three"):
        bob.send(f"say {word}")
    seen = await bob.expect('You say, "three"', timeout=10)
    assert seen.index(BACK) < seen.index('"one"') < seen.index('"two"')
    await alice.expect(BACK)
    await alice.expect('Bob says, "three"')
    await until(lambda: worker_pids(server) != old and len(worker_pids(server)) == 1)

    # Same characters, same world, nobody left or entered.
    await alice.command("west", "Den")
    await bob.command("west", "Den")
    await alice.expect("Bob arrives.")
    transcript = "".join(alice.transcript + bob.transcript)
    assert "has left the game" not in transcript
    assert transcript.count("has entered the game") == 1  # Bob's own entry, before
    status = await alice.command("status", "world changes saved:")
    assert re.search(r"hot restarts: +1\r\n", status)
    assert re.search(rf"process id: +{server.process.pid} \(engine worker \d+\)", status)  # type: ignore[union-attr]
    for fact in ("version:", "started at:", "uptime:", "players online:"):
        assert fact in status


async def test_connections_at_the_login_prompts_stay_where_they_were(
    server: ServerProcess,
) -> None:
    admin = await player(server.port, "Alice")
    await player(server.port, "Carol")
    at_name = await MudClient.connect(server.port)
    await at_name.expect("By what name")
    at_password = await MudClient.connect(server.port)
    await at_password.expect("By what name")
    await at_password.command("Carol", "Password:")
    new = await MudClient.connect(server.port)
    await new.expect("By what name")
    await new.command("Dora", "Create a new character?")

    await admin.command("restart", "Restarting")
    await admin.expect(BACK, timeout=10)
    # Each goes on from the prompt it stood at.
    at_password.send(PASSWORD)
    await at_password.expect("The Village Square", timeout=5)
    await new.command("yes", "Choose a password")
    await new.command(PASSWORD, "Type it again")
    await new.command(PASSWORD, "Welcome, Dora!")
    await at_name.command("Erin", "Create a new character?")


async def test_a_compressed_client_is_compressed_again_after_the_restart(
    server: ServerProcess,
) -> None:
    alice = await player(server.port, "Alice")  # telnetlib3 takes the MCCP2 offered
    protocol = alice.writer.protocol
    assert protocol._mccp2_decompressor is not None
    await alice.command("restart", "Restarting")
    await alice.expect(BACK, timeout=10)
    await alice.command("say still readable", 'You say, "still readable"')
    await until(lambda: protocol._mccp2_decompressor is not None)
    await alice.command("look", "The Village Square")


async def test_a_new_engine_that_does_not_start_changes_nothing(
    watchdog: None, tmp_path: Path
) -> None:
    server = ServerProcess.with_copied_content(["--no-reload"])
    root = server.copy_engine()
    await asyncio.to_thread(server.start)
    try:
        alice = await player(server.port, "Alice")
        bob = await player(server.port, "Bob")
        old = worker_pids(server)
        app = root / "engine" / "app.py"
        source = app.read_text()
        app.write_text(source.replace("class Game:", "class Game(:", 1))
        line = next(i for i, text in enumerate(source.splitlines(), 1) if text == "class Game:")

        await alice.command("restart", "Restarting")
        failed = await alice.expect("The game goes on as it was.", timeout=15)
        assert f"[restart] The restart failed: engine/app.py:{line}: SyntaxError:" in failed
        assert NOTICE not in "".join(bob.transcript)
        await bob.command("say still here", 'You say, "still here"')
        await alice.expect('Bob says, "still here"')
        assert worker_pids(server) == old

        # Fixed, it goes through; SIGHUP from outside asks for the same.
        app.write_text(source)
        assert server.process is not None
        os.kill(server.process.pid, signal.SIGHUP)
        await bob.expect(BACK, timeout=15)
        await bob.command("say new engine", 'You say, "new engine"')
    finally:
        await asyncio.to_thread(server.cleanup)


async def test_restarts_leave_no_process_or_descriptor_behind(server: ServerProcess) -> None:
    alice = await player(server.port, "Alice")
    first = worker_pids(server)
    baseline = len(os.listdir(f"/proc/{next(iter(first))}/fd"))
    for _ in range(5):
        await alice.command("restart", "Restarting")
        await alice.expect(BACK, timeout=10)
        await until(lambda: len(worker_pids(server)) == 1)
        await alice.command("ping", "Pong.")
    (worker,) = worker_pids(server)
    assert worker not in first
    # A handed-over connection and the lock are the same descriptors again, not more.
    assert len(os.listdir(f"/proc/{worker}/fd")) <= baseline + 2
    status = await alice.command("status", "world changes saved:")
    assert re.search(r"hot restarts: +5\r\n", status)


async def test_a_save_under_engine_restarts_the_game_when_reload_is_on(watchdog: None) -> None:
    server = ServerProcess.with_copied_content([])
    root = server.copy_engine()
    await asyncio.to_thread(server.start)
    try:
        alice = await player(server.port, "Alice")
        old = worker_pids(server)
        play = root / "engine" / "play.py"
        play.write_text(play.read_text() + "\n# edited while the game runs\n")
        await alice.expect(NOTICE, timeout=15)
        await alice.expect(BACK, timeout=15)
        await until(lambda: len(worker_pids(server)) == 1 and worker_pids(server) != old)
        await alice.command("ping", "Pong.")
    finally:
        await asyncio.to_thread(server.cleanup)


async def test_a_connection_that_ends_during_the_handover_is_not_sent(
    game: Game, make_client: MakeClient
) -> None:
    # The descriptors go to the new engine from a thread while the loop runs on: each
    # is a copy of its own, so a connection ending meanwhile cannot close the number
    # being sent (EBADF failed the whole restart) or have it reused by a newcomer.
    staying = await make_client()
    await staying.login_new("Stay")
    leaving = await make_client()
    await leaving.login_new("Leave")
    sessions = {s.account.name: s for s in game.players.sessions if s.account is not None}
    copy = _socket_copy(sessions["Stay"])
    assert copy is not None
    try:
        original = sessions["Stay"].writer.transport.get_extra_info("socket").fileno()
        assert copy != original
        assert os.fstat(copy).st_ino == os.fstat(original).st_ino
        sessions["Stay"].writer.transport.close()
        await asyncio.sleep(0.05)
        assert os.fstat(copy).st_ino > 0, "the copy outlives the transport"
    finally:
        os.close(copy)
    sessions["Leave"].writer.transport.close()
    assert _socket_copy(sessions["Leave"]) is None


async def test_a_login_checking_its_password_at_the_handover_ends_quietly_here(
    game: Game,
    make_client: MakeClient,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The new engine asks for the password again (the login resumes at its stage); this
    # process must not go on with the check against the store it has closed.
    first = await make_client()
    await first.login_new("Pat")
    first.send("quit")
    await first.expect_closed()
    checking, release = asyncio.Event(), asyncio.Event()
    verify = game.accounts.verify

    async def held(name: str, password: str) -> Any:
        checking.set()
        await release.wait()
        return await verify(name, password)

    monkeypatch.setattr(game.accounts, "verify", held)
    client = await make_client()
    await client.expect("known? ")
    client.send("Pat")
    await client.expect("Password: ")
    client.send(PASSWORD)
    await asyncio.wait_for(checking.wait(), 3)
    (session,) = game.players.sessions
    task = session.task
    assert task is not None
    let_go(game.players.sessions)
    game.store.close()  # as the coordinator does next
    release.set()
    await asyncio.wait([task], timeout=3)
    assert task.done()
    assert not [r for r in caplog.records if "crashed" in r.getMessage()], caplog.text
