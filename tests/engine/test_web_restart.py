"""Hot restarts and crashes keep websocket players: ``python -m engine`` with its supervisor.

The supervisor holds the web port as it holds the telnet port, and each
websocket is handed to the new worker with its state (subprotocol, compression
parameters, a message half received, unread input): no reconnect, no new login.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket

import pytest
from server_helpers import player, until, worker_pids

from engine.testing import ServerProcess
from engine.web.client import WebClient
from engine.web.subprotocols import GMCP_PROTOCOL, TELNET, TERMINAL

BACK = "The game is back, running the new code."
NOTICE = "The game is restarting with new code; hold on a moment."


async def test_a_hot_restart_keeps_websocket_players_in_every_subprotocol(
    server: ServerProcess,
) -> None:
    port = server.web_port
    alice = await player(server.port, "Alice")  # telnet, the admin
    players = {}
    for name, subprotocol in (("Gmcp", GMCP_PROTOCOL), ("Term", TERMINAL), ("Telly", TELNET)):
        client = await WebClient.connect(port, subprotocol=subprotocol)
        await client.login_new(name)
        players[name] = client
    gmcp = players["Gmcp"]
    assert gmcp.ws.protocol.extensions  # permessage-deflate, without context takeover
    old = worker_pids(server)

    # A frame cut in two: the old engine reads the first part, the new one the rest.
    gmcp.ws.protocol.send_binary(b"say cut in two")
    (frame,) = gmcp.ws.protocol.data_to_send()
    gmcp.ws.transport.write(frame[:5])
    await asyncio.sleep(0.2)
    alice.send("restart")
    for client in players.values():
        await client.expect(NOTICE, timeout=10)
    gmcp.ws.transport.write(frame[5:])
    players["Term"].send("say typed meanwhile")  # typed while the connections move
    for client in players.values():
        await client.expect(BACK, timeout=10)
    await gmcp.expect('You say, "cut in two"', timeout=10)
    await players["Term"].expect('You say, "typed meanwhile"', timeout=10)
    await until(lambda: worker_pids(server) != old and len(worker_pids(server)) == 1, 15)
    assert "5 bytes of a websocket message half received go on here" in server.log()

    # Same connections, same characters, GMCP and compression as before.
    gmcp.send("look")
    await gmcp.expect("Exits:")
    room = [data for name, data in gmcp.gmcp if name == "Room.Info"][-1]  # sent on the return
    gmcp.gmcp.clear()
    direction = sorted(room["exits"])[0]
    gmcp.send(direction)
    assert (await gmcp.expect_gmcp("Room.Info"))["num"] == room["exits"][direction]
    for name, client in players.items():
        await client.command(f"say {name} here", f'You say, "{name} here"')
    alice.send("who")
    await alice.expect("Telly")
    assert not any(client.closed for client in players.values())
    assert "By what name" not in players["Gmcp"].buffer


async def test_a_websocket_player_stays_when_the_worker_dies(server: ServerProcess) -> None:
    port = server.web_port
    ann = await WebClient.connect(port, subprotocol=GMCP_PROTOCOL)
    await ann.login_new("Ann")
    (pid,) = worker_pids(server)
    os.kill(pid, signal.SIGKILL)
    await ann.expect("The game had a problem and is back.", timeout=15)
    await ann.command("say still here", 'You say, "still here"', timeout=10)
    assert not ann.closed


async def test_the_web_port_is_held_by_the_supervisor(server: ServerProcess) -> None:
    port = server.web_port
    alice = await player(server.port, "Alice")
    alice.send("restart")
    await alice.expect(BACK, timeout=15)
    # Still the same port, and new websockets are served there by the new worker.
    assert server.web_port == port
    late = await WebClient.connect(port, subprotocol=None)
    await late.expect("By what name are you known? ")


def test_a_busy_web_port_stops_the_start_in_one_line() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        process = ServerProcess.with_copied_content(["--no-reload", "--web-port", str(port)])
        try:
            with pytest.raises(RuntimeError, match="server exited at start"):
                process.start(timeout=20)
            assert f"hotmud: The web port {port} on 127.0.0.1 is already in use" in process.log()
        finally:
            process.cleanup()
