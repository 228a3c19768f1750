"""Hypothesis fuzzing of the telnet edge: hostile streams at a real server while a player plays.

Each test starts one game on 127.0.0.1 and logs in a well-behaved player
(Alice) before the fuzzing.  Every Hypothesis example opens hostile
connections (``fuzz_streams.Plan``) that send random bytes, broken IAC and SB
sequences, option floods, NUL bytes and invalid UTF-8 at any point of the
login, and leave by FIN, RST (SO_LINGER 0), half-close, or not at all.  The
first test draws small streams (one to three connections, 50 examples); the
second megabyte ones (1 MiB subnegotiations, 400 KB of option requests,
protocol hoarding) by up to three connections at once.  Checks:

- while the attack runs, Alice keeps typing ``say``: each line is answered
  within 2 s, and the event loop never stalls for ``MAX_STALL`` or more;
- after it, her ``say ping<N>`` is answered within 2 s and a new connection
  gets the name prompt;
- no open connection has more output queued than ``max_output_buffer`` (plus
  ``OUTPUT_SLACK``) and the process grew less than ``MAX_GROWTH_MB`` (VmRSS)
  since the warm-up, with the hostile connections open and after they closed;
- once closed, the server's sessions and connections are back to Alice's
  alone and their protocol objects are freed (within a grace period);
- the engine logged no error, no engine code raised inside telnetlib3, and
  asyncio reported nothing to its exception handler ("Task exception was
  never retrieved" and the like).

Examples are derandomized (the same ones on every run), no example database
is written and failures are not shrunk, so CI sees exactly what a developer
sees.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import logging
import os
import socket
import struct
import time
import weakref
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from conftest import PASSWORD, Client, ExpectTimeout, MakeClient, RawClient
from fuzz_streams import (
    BAD_UTF8,
    Plan,
    chunk,
    crowd,
    escape,
    gmcp_hoard,
    huge_chunk,
    plans,
    repeated,
)
from hypothesis import HealthCheck, Phase, event, example, given, settings
from hypothesis import strategies as st
from telnetlib3.telopt import DO, GMCP, IAC, SB, SE, TTYPE, WILL

from engine.app import Game
from engine.net.session import Session

#: Alice's ``say`` must be answered within this many seconds after every example.
PING_TIMEOUT = 2.0
#: Longest the event loop may go without serving others while hostile streams arrive.
MAX_STALL = 1.0
#: How far a hostile connection's honest part (prompts, login) may take.
STAGE_TIMEOUT = 5.0
#: How long the server may take to close a connection the client half-closed.
HALF_CLOSE_TIMEOUT = 3.0
#: Grace period for sessions and connections to be gone after the clients left.
SETTLE_TIMEOUT = 5.0
#: Growth of the process's resident memory allowed over the whole test.
MAX_GROWTH_MB = 30.0
#: Output a connection may hold beyond ``max_output_buffer``: what one read of
#: input (16 KiB) or one command can provoke before the server checks.
OUTPUT_SLACK = 128 * 1024

#: Logins at once in the warm-up: as many as asyncio's default executor has threads.
WARM_UP_LOGINS = min(32, (os.cpu_count() or 1) + 4)

#: An account the hostile plans log in to (or fail to).
FUZZER = "Fuzzer"

GAME = {
    # The shell starts this soon for a client that does not negotiate: plans
    # waiting for the name prompt wait this long.
    "connect_maxwait": 0.15,
    # Alice pings once per example, but hostile sessions type many lines: a
    # throttled session sleeps before it reads on, and would outlive its
    # client by seconds; the flood limit still applies.
    "input_rate": 1000.0,
    "input_burst": 1000.0,
    # Wrong passwords from 127.0.0.1 would otherwise make later logins of
    # every example (all from the same address) wait up to a minute.
    "login_backoff": 0.01,
    "login_backoff_max": 0.02,
}

SETTINGS: dict[str, Any] = {
    "deadline": None,
    "derandomize": True,
    "database": None,
    "print_blob": False,
    # No shrinking: all examples share one server, so a shrunk example can
    # fail for what an earlier one did, and shrinking megabyte streams takes
    # minutes.  Add Phase.shrink here to shrink a failure locally.
    "phases": (Phase.explicit, Phase.generate),
    # One game serves all examples on purpose: damage must not carry over.
    "suppress_health_check": [
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
}


def rss_mb() -> float:
    """This process's resident memory (the game runs in it), in MB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def mentions_engine_code(record: logging.LogRecord) -> bool:
    """telnetlib3 logs an exception raised in a callback line by line, as warnings."""
    return f"{os.sep}engine{os.sep}" in record.getMessage()


class Stalls:
    longest = 0.0


@contextlib.asynccontextmanager
async def watch_loop() -> AsyncIterator[Stalls]:
    """Measure the longest time the event loop went without running a ready task.

    Alice's client runs in the server's own event loop, so her ping cannot
    show a stall: she cannot send during one, and what she sends after it is
    answered at once.  A player on another machine would wait the stall out.
    """
    stalls = Stalls()

    async def beat() -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.005)
            now = time.monotonic()
            stalls.longest = max(stalls.longest, now - last - 0.005)
            last = now

    beating = asyncio.create_task(beat())
    try:
        yield stalls
    finally:
        beating.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beating


class Attack:
    """One plan under way: its socket, the server's side of it, what it sent."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.raw: RawClient | None = None
        self.protocol: weakref.ref[Any] | None = None
        self.sent = 0


class Arena:
    """The game under attack, its well-behaved player, and the checks after every example."""

    def __init__(self, game: Game, alice: Client, caplog: pytest.LogCaptureFixture) -> None:
        self.game = game
        self.alice = alice
        self.alice_session = next(
            s for s in game.players.sessions if s.account is not None and s.account.name == "Alice"
        )
        self.caplog = caplog
        self.loop_errors: list[dict[str, Any]] = []
        self.slowest_ping = 0.0
        self.longest_stall = 0.0
        self.engine_errors: list[str] = []
        self.engine_raised: list[str] = []
        self.examples = 0
        self.names = 0
        self.baseline_mb = 0.0
        self.peak_mb = 0.0
        #: RSS is checked against the baseline once the warm-up is done.
        self.measuring = True
        #: Shrink the server's send buffer for plans that never read, so that
        #: what the server answers piles up in the process, not in the kernel.
        self.small_server_sndbuf = False

    # -- one example --------------------------------------------------------------

    async def run(self, scenario: list[Plan]) -> None:
        self.examples += 1
        n = self.examples
        attacks = [Attack(plan) for plan in scenario]
        try:
            attacked = asyncio.Event()
            playing = asyncio.create_task(self._keep_playing(n, attacked))
            try:
                async with watch_loop() as stalls:
                    await asyncio.gather(*(self._attack(attack) for attack in attacks))
            finally:
                attacked.set()
                await playing  # (raises if one of Alice's lines went unanswered)
            self.longest_stall = max(self.longest_stall, stalls.longest)
            assert stalls.longest < MAX_STALL, (
                f"example {n}: the event loop stalled for {stalls.longest:.2f} s"
            )
            await self._check_serving(n)
            await self._quiesce(attacks)
            self._check_bounded(f"example {n}, hostile connections open")
        finally:
            for attack in attacks:
                if attack.raw is not None:
                    attack.raw.close()
        await self._check_settled(n, [attack.protocol for attack in attacks])
        self._check_bounded(f"example {n}, after they closed")
        self._check_no_errors(n)

    async def _attack(self, attack: Attack) -> None:
        plan = attack.plan
        raw = attack.raw = await RawClient.connect(
            self.game.port, rcvbuf=None if plan.reads else 4096
        )
        attack.protocol = weakref.ref(await self._server_side(raw))
        await self._reach(attack, plan.stage)
        if not plan.reads:
            raw.stop_reading()
            if self.small_server_sndbuf:
                self._shrink_server_sndbuf(raw)
        with contextlib.suppress(ConnectionError):
            for data in plan.chunks:
                raw.writer.write(data)
                attack.sent += len(data)
                try:
                    await asyncio.wait_for(raw.writer.drain(), STAGE_TIMEOUT)
                except TimeoutError:
                    raise AssertionError(
                        f"the server stopped reading an open connection for "
                        f"{STAGE_TIMEOUT} s ({plan!r})"
                    ) from None
                if plan.pause:
                    await asyncio.sleep(0.005)
        await self._leave(attack)

    async def _quiesce(self, attacks: list[Attack]) -> None:
        """Let the server take in all that the connections still open have sent.

        (So that the memory checks see what it made of it.)  A connection the
        server stopped reading, or closed, is not waited for beyond a while.
        """
        deadline = time.monotonic() + STAGE_TIMEOUT
        while time.monotonic() < deadline:
            pending = False
            for attack in attacks:
                protocol = attack.protocol() if attack.protocol else None
                if protocol is None or attack.plan.ending != "keep_open":
                    continue
                transport = protocol.writer.transport if protocol.writer else None
                if transport is not None and not transport.is_closing():
                    pending = pending or protocol.rx_bytes < attack.sent
                del protocol
            if not pending:
                return
            await asyncio.sleep(0.01)

    async def _server_side(self, raw: RawClient) -> Any:
        """The server's protocol object for ``raw``'s connection."""
        here = raw.writer.get_extra_info("sockname")
        deadline = time.monotonic() + STAGE_TIMEOUT
        while time.monotonic() < deadline:
            for protocol in self.game.server.clients:
                transport = protocol.writer.transport if protocol.writer else None
                if transport is not None and transport.get_extra_info("peername") == here:
                    return protocol
            await asyncio.sleep(0.002)
        raise AssertionError(f"the server never took the connection from {here}")

    def _shrink_server_sndbuf(self, raw: RawClient) -> None:
        here = raw.writer.get_extra_info("sockname")
        for protocol in self.game.server.clients:
            transport = protocol.writer.transport if protocol.writer else None
            if transport is not None and transport.get_extra_info("peername") == here:
                sock = transport.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)

    def _fresh_name(self) -> bytes:
        self.names += 1
        number, letters = self.names, ""
        while number:
            number, digit = divmod(number, 26)
            letters += chr(ord("a") + digit)
        return f"Fz{letters}".encode()

    async def _reach(self, attack: Attack, stage: str) -> None:
        """Play the honest part of a plan: up to the prompt where it turns hostile."""
        raw = attack.raw
        assert raw is not None

        async def send(line: bytes) -> None:
            attack.sent += len(line)
            await raw.send(line)

        if stage == "connect":
            return
        await raw.expect(b"known? ", STAGE_TIMEOUT)
        if stage == "banner":
            return
        if stage in ("new_name", "new_password"):
            await send(self._fresh_name() + b"\r\n")
            await raw.expect(b"(yes/no) ", STAGE_TIMEOUT)
            if stage == "new_password":
                await send(b"yes\r\n")
                await raw.expect(b"Choose a password", STAGE_TIMEOUT)
            return
        await send(FUZZER.encode() + b"\r\n")
        await raw.expect(b"Password: ", STAGE_TIMEOUT)
        if stage == "playing":
            await send(PASSWORD.encode() + b"\r\n")
            await raw.expect(b"Exits:", STAGE_TIMEOUT)

    async def _leave(self, attack: Attack) -> None:
        raw, plan = attack.raw, attack.plan
        assert raw is not None
        if plan.ending == "keep_open":
            return
        if plan.ending == "reset":
            # SO_LINGER with a zero timeout: close() sends an RST, not a FIN.
            # (Unless the server closed the connection first.)
            with contextlib.suppress(OSError):
                sock = raw.writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            raw.writer.transport.abort()
        elif plan.ending == "half_close":
            await self._half_close(raw, plan)
        raw.close()

    async def _half_close(self, raw: RawClient, plan: Plan) -> None:
        """shutdown(SHUT_WR), then read on: the server must see the end and close."""
        with contextlib.suppress(OSError):  # (ENOTCONN if the server reset it)
            raw.writer.write_eof()
        raw.writer.transport.resume_reading()  # type: ignore[attr-defined]

        async def until_eof() -> None:
            with contextlib.suppress(ConnectionError):
                while await raw.reader.read(1 << 16):
                    pass

        try:
            await asyncio.wait_for(until_eof(), HALF_CLOSE_TIMEOUT)
        except TimeoutError:
            raise AssertionError(
                f"the server kept a half-closed connection open for {HALF_CLOSE_TIMEOUT} s "
                f"({plan!r})"
            ) from None

    # -- checks -------------------------------------------------------------------

    async def _ping(self, tag: str) -> None:
        session = self.alice_session
        sessions = self.game.players.sessions
        assert session in sessions and not session.closed, "Alice was disconnected"
        assert session.character is not None, "Alice lost her character"
        started = time.monotonic()
        try:
            await self.alice.command(f"say {tag}", f'You say, "{tag}"', timeout=PING_TIMEOUT)
        except ExpectTimeout as exc:
            raise AssertionError(f"Alice's {tag} was not answered: {exc}") from None
        self.slowest_ping = max(self.slowest_ping, time.monotonic() - started)

    async def _keep_playing(self, n: int, attacked: asyncio.Event) -> None:
        """Alice plays on during the attack: each of her lines is answered in time."""
        for k in itertools.count():
            await self._ping(f"ping{n}.{k}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(attacked.wait(), 0.05)
                return

    async def _check_serving(self, n: int) -> None:
        """After the attack: Alice is answered, and a newcomer gets the name prompt."""
        await self._ping(f"ping{n}")

        newcomer = await asyncio.wait_for(Client.connect(self.game.port), PING_TIMEOUT)
        try:
            await newcomer.expect("By what name are you known? ", PING_TIMEOUT)
        finally:
            newcomer.writer.close()

    def _check_bounded(self, when: str) -> None:
        limit = self.game.config.max_output_buffer + OUTPUT_SLACK
        for protocol in self.game.server.clients:
            transport = protocol.writer.transport if protocol.writer else None
            if not isinstance(transport, asyncio.WriteTransport) or transport.is_closing():
                continue
            queued = transport.get_write_buffer_size()
            assert queued <= limit, f"{when}: {queued} bytes queued for one client (limit {limit})"
        gc.collect()
        now = rss_mb()
        if not self.measuring:
            return
        self.peak_mb = max(self.peak_mb, now)
        growth = now - self.baseline_mb
        assert growth < MAX_GROWTH_MB, (
            f"{when}: the process grew {growth:.1f} MB (from {self.baseline_mb:.1f} MB)"
        )

    async def _check_settled(self, n: int, protocols: list[weakref.ref[Any] | None]) -> None:
        """Once the hostile clients are gone, so are their sessions, connections and objects."""

        def leftovers() -> tuple[set[Session], list[Any], int]:
            self._harvest_logs()
            gc.collect()
            sessions = self.game.players.sessions - {self.alice_session}
            connections = [
                p for p in self.game.server.clients if p.writer is not self.alice_session.writer
            ]
            # (A count: a list of them here would keep them alive itself.)
            return sessions, connections, sum(ref() is not None for ref in protocols if ref)

        deadline = time.monotonic() + SETTLE_TIMEOUT
        while True:
            sessions, connections, alive = leftovers()
            if not (sessions or connections or alive) or time.monotonic() > deadline:
                break
            del sessions, connections
            await asyncio.sleep(0.02)
        assert not sessions, f"example {n}: sessions outlived their clients: {sessions}"
        assert not connections, f"example {n}: connections still open: {connections}"
        assert not alive, f"example {n}: {alive} closed connections are still held in memory"

    def _harvest_logs(self) -> None:
        """Keep what the checks need of the captured log, as text, and let the records go.

        (A record holds its arguments: a session, a connection.  Kept, they
        would look like closed connections held in memory.)
        """
        for record in self.caplog.records:
            if record.name.startswith("engine") and record.levelno >= logging.ERROR:
                self.engine_errors.append(f"{record.name}: {record.getMessage()}")
            elif record.name.startswith("telnetlib3") and mentions_engine_code(record):
                self.engine_raised.append(f"{record.name}: {record.getMessage()}")
        self.caplog.clear()

    def _check_no_errors(self, n: int) -> None:
        gc.collect()  # "Task exception was never retrieved" comes when a task is freed
        self._harvest_logs()
        errors, raised = self.engine_errors[:], self.engine_raised[:]
        loop_errors = [f"{c.get('message')}: {c.get('exception')!r}" for c in self.loop_errors]
        self.engine_errors.clear()
        self.engine_raised.clear()
        self.loop_errors.clear()
        assert not errors, f"example {n}: the engine logged errors: {errors}"
        assert not raised, f"example {n}: engine code raised inside telnetlib3: {raised}"
        assert not loop_errors, f"example {n}: asyncio reported: {loop_errors}"


@contextlib.contextmanager
def log_records_as_text() -> Iterator[None]:
    """Log records hold their arguments and tracebacks (a session, a connection, its
    frames), and pytest keeps every record of a test for its report: the leak check
    would see those as closed connections held in memory.  Freeze records to text."""
    make_record = logging.getLogRecordFactory()

    def frozen(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        record.msg, record.args = record.getMessage(), ()
        if record.exc_info:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        return record

    logging.setLogRecordFactory(frozen)
    try:
        yield
    finally:
        logging.setLogRecordFactory(make_record)


@pytest.fixture
async def arena(
    game: Game, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> AsyncIterator[Arena]:
    """A game with Alice logged in and playing, and the Fuzzer account to attack through."""
    caplog.set_level(logging.WARNING)
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    alice = await make_client()
    await alice.login_new("Alice")
    fuzzer = await make_client()
    await fuzzer.login_new(FUZZER)
    fuzzer.writer.close()
    arena = Arena(game, alice, caplog)
    loop.set_exception_handler(lambda _loop, context: arena.loop_errors.append(context))
    started = time.monotonic()
    try:
        with log_records_as_text():
            # Warm up before the baseline: every code path, and the threads
            # that hash passwords.  A password hash (scrypt) takes 16 MiB; once
            # one has been freed, glibc serves the next from the worker
            # thread's malloc arena and keeps it there, so the first examples
            # with logins at once would "grow" the process by up to 16 MiB per
            # worker thread (about 100 MB with the 6 threads of 2 cores).
            arena.measuring = False
            new_account = Plan("new_password", [b"secret1\r\nsecret1\r\nlook\r\n"], "close")
            await arena.run([Plan("playing", [b"look\r\n"], "close"), new_account])
            for _ in range(3):
                await arena.run([new_account] * WARM_UP_LOGINS)
            arena.measuring = True
            arena.examples = 0
            gc.collect()
            arena.baseline_mb = arena.peak_mb = rss_mb()
            yield arena
    finally:
        loop.set_exception_handler(previous)
    print(
        f"\nfuzz: {arena.examples} examples in {time.monotonic() - started:.1f} s; "
        f"RSS {arena.baseline_mb:.1f} MB after the warm-up, peak {arena.peak_mb:.1f} MB; "
        f"slowest answer to Alice {arena.slowest_ping:.2f} s, "
        f"longest event loop stall {arena.longest_stall:.2f} s"
    )


def tally(scenario: list[Plan]) -> None:
    """What the examples did (``pytest --hypothesis-show-statistics``)."""
    for plan in scenario:
        event(f"stage {plan.stage}")
        event(f"ending {plan.ending}" + ("" if plan.reads else ", never reading"))
        event(f"{len(plan.chunks)} chunks" if plan.chunks else "sends nothing")
    event(f"{len(scenario)} connections")


one_to_three: dict[str, Any] = {"min_size": 1, "max_size": 3}

#: What Mudlet says first (reaches the engine's GMCP callback).
GMCP_HELLO = (
    IAC + SB + GMCP + b'Core.Hello {"client": "Mudlet", "version": "4.17.2"}' + IAC + SE
    + IAC + SB + GMCP + b'Core.Supports.Set ["Char 1", "Room 1"]' + IAC + SE
)  # fmt: skip
#: IAC SB TTYPE and (just under) 1 MiB, never ended.
UNENDED_SB = IAC + SB + TTYPE + b"x" * ((1 << 20) - 64)
#: 66 KB of short NAWS and empty CHARSET requests (telnetlib3 raises on each).
MALFORMED_SB = repeated(
    IAC + SB + b"\x1f\x00" + IAC + SE + IAC + SB + b"\x2a\x01" + IAC + SE, 66_000
)
#: 600 KB of IAC DO and IAC WILL for options the server refuses (each answered).
OPTION_FLOOD = repeated(IAC + DO + b"\x99" + IAC + WILL + b"\x98", 600_000)


@pytest.mark.slow
@pytest.mark.game(**GAME)
@settings(max_examples=50, **SETTINGS)
@given(scenario=st.lists(plans(chunk), **one_to_three))
# The named cases, whatever the generator draws: connect and never send,
# close and RST right after connect, mid-negotiation, mid-login, mid-line,
# half-closed mid-line, IAC SB without SE for a long-lived connection.
@example(scenario=[Plan("connect", [], "keep_open"), Plan("connect", [], "reset")])
@example(scenario=[Plan("connect", [], "close"), Plan("connect", [IAC + SB + TTYPE], "reset")])
@example(scenario=[Plan("new_password", [b"secr"], "reset"), Plan("password", [], "close")])
@example(scenario=[Plan("playing", [b"say half a li"], "half_close", reads=False)])
@example(scenario=[Plan("playing", [b"say \x00" + b"".join(BAD_UTF8) + b"\r\n"], "keep_open")])
@example(scenario=[Plan("banner", [IAC + SB + b"\xc9" + escape(b"Core.Hello \xff{")], "keep_open")])
@example(scenario=[Plan("connect", [IAC + SB + SB + TTYPE, IAC + IAC, IAC + SE + SE], "close")])
@example(scenario=[Plan("banner", [GMCP_HELLO], "keep_open")])
async def test_hostile_streams_leave_the_server_serving(arena: Arena, scenario: list[Plan]) -> None:
    tally(scenario)
    await arena.run(scenario)


@pytest.mark.slow
@pytest.mark.game(**GAME, max_output_buffer=64 * 1024)
@settings(max_examples=8, **SETTINGS)
@given(scenario=crowd(huge_chunk))
# Each of these failed before its fix in engine/net/telnet.py: unended 1 MiB
# subnegotiations (the process grew 42 MB), GMCP messages kept whole (39 MB),
# answers to option requests queued for a client that never reads (585 KB,
# limit 192 KB), floods of option requests (event loop stalled 1.7 s).
@example(scenario=[Plan("banner", [UNENDED_SB], "keep_open")] * 5)
@example(scenario=[Plan("new_name", [gmcp_hoard()], "keep_open")] * 2)
@example(
    scenario=[Plan("banner", [repeated(IAC + DO + b"\x99", 600_000)], "keep_open", reads=False)]
)
@example(scenario=[Plan("banner", [OPTION_FLOOD], "keep_open")] * 2)
@example(scenario=[Plan("banner", [MALFORMED_SB], "keep_open")] * 2)
async def test_megabyte_streams_leave_the_server_serving(
    arena: Arena, scenario: list[Plan]
) -> None:
    """1 MiB subnegotiations (ended or not), 400 KB of option requests, GMCP and
    NEW-ENVIRON hoarding, by up to three connections at once."""
    arena.small_server_sndbuf = True
    tally(scenario)
    await arena.run(scenario)
