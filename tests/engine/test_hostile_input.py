"""Clients that misbehave: overlong lines, bad bytes, vanishing, flooding; typing ahead."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import TYPE_CHECKING

import pytest
from game_helpers import session_of

from engine.app import Game
from engine.local import LocalGame

if TYPE_CHECKING:
    from conftest import MakeClient, MakeRaw

NAP = """
    import asyncio

    from engine.api import Command, Context


    class CmdNap(Command):
        \"\"\"Sleep a while without reading input.\"\"\"

        key = "nap"

        async def run(self, ctx: Context) -> None:
            ctx.msg("You doze off.")
            await asyncio.sleep(float(ctx.args or 1))
            ctx.msg("You wake up.")
"""

FLOOD_BYTES = 2 * 1024 * 1024


async def test_an_overlong_line_is_refused_and_the_session_goes_on(
    game: Game, make_client: MakeClient
) -> None:
    alice = await make_client()
    await alice.login_new("Alice")
    alice.send("say " + "x" * 5000)
    await alice.expect("That line was longer than 4096 characters and was dropped.")
    await alice.command("say short", 'You say, "short"')
    assert "x" * 100 not in alice.transcript
    # A line at the limit is a normal line.
    text = "y" * (4096 - len("say "))
    # (The server wraps at the window width, so the long word starts a line.)
    await alice.command("say " + text, f'You say,\r\n  "{text}"')


async def test_repeated_overlong_lines_disconnect(game: Game, make_client: MakeClient) -> None:
    alice = await make_client()
    await alice.login_new("Alice")
    bob = await make_client()
    await bob.login_new("Bob")
    for _ in range(3):
        bob.send("z" * 5000)
    rest = await bob.expect_closed()
    assert "Too many overlong lines. Goodbye." in rest
    await alice.expect("Bob has left the game.")
    await alice.command("look", "Exits:")


async def test_invalid_utf8_does_not_crash_the_session_or_others(
    game: Game, make_client: MakeClient, make_raw: MakeRaw
) -> None:
    alice = await make_client()
    await alice.login_new("Alice")
    raw = await make_raw()
    await raw.expect(b"known? ")
    # Broken sequences, a lone continuation byte, an escaped IAC (a 0xff data byte).
    await raw.send(b"\xc3\x28\x80\xfe\xff\xff\xe2\x82\r\n")
    await raw.expect(b"Names are 2 to 20 letters")
    await raw.send(b"Bob\r\n")
    await raw.expect(b"(yes/no) ")
    await raw.send(b"yes\r\n")
    await raw.expect(b"Choose a password")
    await raw.send(b"pa\xc3ss\xffword\r\n")
    await raw.expect(b"Type it again: ")
    await raw.send(b"pa\xc3ss\xffword\r\n")
    await raw.expect(b"Exits:")
    await raw.send(b"say caf\xc3 \x80 ok\r\n")
    # Each broken sequence became U+FFFD; the rest of the line is intact.
    await raw.expect('You say, "caf\ufffd \ufffd ok"'.encode())
    await alice.expect('Bob says, "caf\ufffd \ufffd ok"')
    # Valid UTF-8 still works on the same connection.
    await raw.send("say café\r\n".encode())
    await raw.expect('You say, "café"'.encode())
    await alice.expect('Bob says, "café"')
    await alice.command("who", "2 players online")


async def test_a_client_vanishing_mid_login_leaves_the_server_serving(
    game: Game, make_client: MakeClient
) -> None:
    alice = await make_client()
    await alice.login_new("Alice")
    ghost = await make_client()
    await ghost.expect("known? ")
    ghost.send("Ghost")
    await ghost.expect("(yes/no)")
    ghost.writer.close()

    # Another one vanishes while its password is being asked.
    ghost2 = await make_client()
    await ghost2.expect("known? ")
    ghost2.send("Alice")
    await ghost2.expect("Password: ")
    ghost2.writer.close()

    await alice.command("say still here", 'You say, "still here"')
    bob = await make_client()
    await bob.login_new("Bob")
    await alice.expect("Bob has entered the game.")

    # Both half-logged-in sessions were cleaned up.
    async def settled() -> None:
        while len(game.players.sessions) != 2:
            await asyncio.sleep(0.02)

    await asyncio.wait_for(settled(), 3)
    assert await game.accounts.find("Ghost") is None


async def test_a_flood_without_newline_neither_drops_nor_slows_a_good_client(
    game: Game, make_client: MakeClient, make_raw: MakeRaw
) -> None:
    alice = await make_client()
    await alice.login_new("Alice")
    flooder = await make_raw()
    await flooder.expect(b"known? ")

    peak = 0

    async def watch_memory() -> None:
        nonlocal peak
        while True:
            for session in list(game.players.sessions):
                # telnetlib3's unread bytes plus the part line the splitter holds.
                held = len(session.reader._buffer) + session.lines._splitter._partial_len
                peak = max(peak, held)
            await asyncio.sleep(0.002)

    async def flood() -> None:
        chunk = b"x" * 65536
        for _ in range(FLOOD_BYTES // len(chunk)):
            await flooder.send(chunk)
        # The end of the overlong line, and a name: answered once all is read.
        await flooder.send(b"\r\nZed\r\n")
        await flooder.expect(b"(yes/no) ", timeout=10)

    watcher = asyncio.create_task(watch_memory())
    cpu_started = time.process_time()
    flooding = asyncio.create_task(flood())
    slowest = 0.0
    pings = 0
    try:
        while not flooding.done() or pings < 3:
            started = time.monotonic()
            await alice.command(f"say ping {pings}", f'You say, "ping {pings}"', timeout=2)
            slowest = max(slowest, time.monotonic() - started)
            pings += 1
            await asyncio.sleep(0.01)
        await flooding
        cpu = time.process_time() - cpu_started
    finally:
        watcher.cancel()
        flooding.cancel()

    assert slowest < 0.5, f"a good client waited {slowest:.2f} s during the flood"
    # Reading and discarding 2 MB is cheap (the whole test process, clients included).
    assert cpu < 2.0, f"{cpu:.2f} s of CPU to get through a 2 MB flood"
    # The flooder is told once, and stays connected.
    assert b"There is nobody called Zed." in flooder.transcript
    assert flooder.transcript.count(b"longer than 4096 characters and was dropped") == 1
    # The server never held the flood: at most its read buffer and one line.
    assert peak < FLOOD_BYTES // 4, f"server held {peak} bytes of a {FLOOD_BYTES} byte flood"


@pytest.mark.game(files={"commands/nap.py": NAP})
async def test_input_waits_in_the_socket_while_a_command_runs(
    game: Game, make_client: MakeClient, make_raw: MakeRaw
) -> None:
    """Flow control: a client that sends while its session is not reading fills no memory."""
    alice = await make_client()
    await alice.login_new("Alice")
    raw = await make_raw()
    await raw.expect(b"known? ")
    await raw.send(b"Bob\r\nyes\r\nsecret1\r\nsecret1\r\n")
    await raw.expect(b"Exits:")
    await raw.send(b"nap 1.5\r\n")
    await raw.expect(b"You doze off.")
    bob = session_of(game, "Bob")

    async def flood() -> None:
        chunk = b"y" * 65536
        for _ in range(FLOOD_BYTES // len(chunk)):
            raw.writer.write(chunk)
            await raw.writer.drain()

    flooding = asyncio.create_task(flood())
    peak = 0
    try:
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            peak = max(peak, len(bob.reader._buffer))
            await alice.command("who", "2 players online", timeout=1)
    finally:
        flooding.cancel()
    assert peak < 512 * 1024, f"{peak} unread bytes buffered in the server"
    await raw.send(b"\r\nsay awake\r\n")
    await raw.expect(b"You wake up.", timeout=3)
    # The overlong line is read (and discarded) while the nap still runs, so its
    # notice may come before or after the waking; the next line runs after it.
    await raw.expect(b'You say, "awake"', timeout=5)
    assert b"That line was longer than 4096 characters" in raw.transcript


@pytest.mark.game(files={"commands/nap.py": NAP})
async def test_pipelined_input_with_a_character_cut_at_the_buffer_end_is_read_intact(
    game: Game, make_raw: MakeRaw
) -> None:
    raw = await make_raw()
    await raw.expect(b"known? ")
    await raw.send(b"Bob\r\nyes\r\nsecret1\r\nsecret1\r\n")
    await raw.expect(b"Exits:")
    await raw.send(b"nap 0.3\r\n")
    await raw.expect(b"You doze off.")
    # While the session sleeps, more than one read's worth of lines piles up,
    # ending in the middle of a two-byte character.
    lines = [f"say {n}{'a' * 1000}" for n in range(5)]
    await raw.send("".join(line + "\r\n" for line in lines).encode() + b"say caf\xc3")
    await raw.expect(b"You wake up.", timeout=3)
    await raw.send(b"\xa9\r\n")
    for n in range(5):
        # (Long lines are wrapped at 80 columns for a client that sent no NAWS.)
        await raw.expect(f'You say,\r\n  "{n}aaa'.encode())
    await raw.expect('You say, "café"'.encode())
    assert b"Unknown command" not in raw.transcript


# Alice's 300 quick lines would be throttled by the input rate limit, which
# is not what this test is about.
@pytest.mark.game(max_output_buffer=256 * 1024, input_rate=10_000.0, input_burst=10_000.0)
async def test_a_client_that_stops_reading_is_dropped_without_stalling_the_room(
    game: Game, make_client: MakeClient, make_raw: MakeRaw
) -> None:
    alice = await make_client()
    await alice.login_new("Alice")
    stalled = await make_raw(rcvbuf=4096)
    await stalled.expect(b"known? ")
    await stalled.send(b"Bob\r\nyes\r\nsecret1\r\nsecret1\r\n")
    await stalled.expect(b"Exits:")
    await alice.expect("Bob has entered the game.")
    stalled.stop_reading()
    # Loopback would let the kernel take megabytes for Bob; a small send buffer
    # on the server's side of his socket makes his queue grow in the server.
    sock = session_of(game, "Bob").writer.transport.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)

    words = "blah " * 800
    for n in range(300):
        alice.send(f"say {n} {words}")
    # Alice is answered all along; Bob is dropped once his queue is full.
    await alice.expect("Bob has left the game.", timeout=10)
    await alice.expect('You say, "299 ', timeout=10)
    await alice.command("who", "1 player online")


@pytest.mark.game(files={"commands/nap.py": NAP})
async def test_lines_typed_while_a_command_runs_wait_their_turn_and_are_announced_once(
    local: LocalGame,
) -> None:
    # In process, on the game's play loop: lines typed together with the nap
    # reach the play loop while it runs.
    bob = await local.player("Bob")
    await bob.expect("\r\n> ")  # the look on entering
    bob.send("nap 0.5")
    for word in ("one", "two", "three"):
        bob.send(f"say {word}")
    await bob.expect("You doze off.")
    await bob.expect("Your last command is still running; what you type next will run after it.")
    text = await bob.expect('You say, "three"', timeout=3)
    assert text.index("You wake up.") < text.index('"one"') < text.index('"two"')
    assert bob.transcript.count("is still running") == 1
    # A quit typed during a command waits for it too, then ends the session.
    bob.send("nap 0.3")
    bob.send("quit")
    await bob.expect("You doze off.")
    rest = await bob.expect_closed()
    assert rest.index("You wake up.") < rest.index("Goodbye.")
