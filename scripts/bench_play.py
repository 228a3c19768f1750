#!/usr/bin/env python3
"""Real play at scale: N simulated players in a generated world, and how the server holds.

The world (a grid of ``--rooms`` rooms with exits each way) and the
accounts are written to a new database before the server starts, so the
run measures play, not account creation.  The accounts' password hashes
use the cheapest scrypt cost the server allows, and the server is started
with it (``password_cost``, so no login hashes again at another cost):
thousands of logins at the real cost would take minutes of CPU and say
nothing about play.

Each player is a real telnet connection that answers negotiation as a MUD
client does (terminal type, window size; no compression), driven from
load-generator processes of its own (their CPU time is reported).  Every
``--interval`` seconds (with jitter) a player acts: about 35 % look, 25 %
move, 15 % say, 10 % get or drop, 5 % who, 5 % inventory, 5 % emote; 1 % of
players are builders who dig, describe and create.  A latency is the time
from sending a line to the prompt that ends its answer.  A probe connection
pings every 100 ms: its latency stands for the event loop's lag.

Reported for each N: p50/p99 per action, the probe's p99, the server's CPU
and memory, world changes saved per second, the load generator's CPU, and
how soon a builder's save is live: every 2 s the answer of ``ping`` is
edited in content and the time until a player gets the new one measured.  The
last line reads ``players held: N (every action p99 < 100 ms)``: the largest
N at which every action seen at least ``MIN_SAMPLES`` times answered within
100 ms at p99 (rarer actions, the builders' at small N, are listed with their
slowest instead: a p99 of 25 samples is only the slowest of them).

``--web-share F`` plays that share of the players over websockets instead,
as the game's web page does (``gmcp.mudstandards.org``, permessage-deflate
on); their actions are reported apart (``look/web``) and judged with the rest.

Usage: python scripts/bench_play.py [--players 100,200] [--rooms 400] [--interval 5]
                                    [--seconds 20] [--generators 2] [--web-share 0.5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import multiprocessing
import os
import random
import re
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_load import Conn, Server, web_port_of
from bench_reload import machine, print_table
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from engine.accounts.passwords import SCRYPT_P, SCRYPT_R, PasswordHash
from engine.paths import CODE_ROOT as PROJECT_ROOT
from engine.world.model import World
from engine.world.store import Store

PASSWORD = "benchpass1"
#: A cheap scrypt cost for the bench's accounts and its server (see the module docstring).
BENCH_PASSWORD_COST = 10
BENCH_SCRYPT_N = 2**BENCH_PASSWORD_COST
MIX: dict[str, float] = {
    "look": 35,
    "move": 25,
    "say": 15,
    "getdrop": 10,
    "who": 5,
    "inventory": 5,
    "emote": 5,
}
BUILDER_MIX = {"dig": 40, "describe": 40, "create": 20}
#: Every action ``act`` knows, for ``--mix``.
ACTIONS = (*MIX, "ping", "help", *BUILDER_MIX)
IAC, DONT, DO, WONT, WILL, SB, SE = 255, 254, 253, 252, 251, 250, 240
EOR = 25  # the telnet option (RFC 885)
TTYPE, NAWS = 24, 31
PROMPT = b"> "
EXITS = re.compile(rb"Exits: ([^.\r\n]*)\.")
GOAL_MS = 100.0
#: An action's p99 is judged only from this many samples up: of 25, the p99 is the slowest.
MIN_SAMPLES = 100
#: Evennia's dummyrunner as it comes in Evennia 5.0.1 (``evennia --dummyrunner 50``; its
#: ``dummyrunner_settings.py``): a tick every second with an even chance of acting (an
#: action every 2 s on average), the "looker" profile: 80 % look, 20 % a timed echo (its
#: lag measure; ``ping`` here); every account a builder, as its settings mixin makes them.
DUMMYRUNNER = {"players": "50", "interval": 2.0, "mix": "look=80,ping=20"}


# -- the world ---------------------------------------------------------------------


def player_name(number: int) -> str:
    letters = ""
    number += 26 * 26
    while number:
        number, digit = divmod(number, 26)
        letters = chr(ord("a") + digit) + letters
    return "Pl" + letters


def build_world(db_path: Path, rooms: int, players: int, all_builders: bool = False) -> None:
    """A grid of rooms, and ``players`` accounts whose characters stand spread over it."""
    store = Store(db_path)
    world = World(store)
    side = max(2, int(rooms**0.5))
    grid = [world.create_room(f"Room {n}", f"Room number {n} of the bench.") for n in range(rooms)]
    world.set_start(grid[0])
    for n, room in enumerate(grid):
        if (n + 1) % side and n + 1 < rooms:
            world.link(room, "east", grid[n + 1], back="west")
        if n + side < rooms:
            world.link(room, "south", grid[n + side], back="north")
    for n in range(0, rooms, 7):
        world.create("thing", "pebble", location=grid[n])
    salt = os.urandom(16)
    key = hashlib.scrypt(
        PASSWORD.encode(), salt=salt, n=BENCH_SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32
    )
    hashed = PasswordHash(key, salt, BENCH_SCRYPT_N, SCRYPT_R, SCRYPT_P).encode()
    now = time.time()
    with store.transaction() as db:
        for special in ("Probe", "Saver"):
            db.execute(
                "INSERT INTO accounts (name, password, role, created) VALUES (?, ?, 'admin', ?)",
                (special, hashed, now),
            )
        for n in range(players):
            role = "builder" if all_builders or n % 100 == 99 else "player"
            db.execute(
                "INSERT INTO accounts (name, password, role, created) VALUES (?, ?, ?, ?)",
                (player_name(n), hashed, role, now),
            )
    for n in range(players):
        world.create("character", player_name(n), location=random.choice(grid), account_id=n + 2)
    world.commit_now()
    store.close()


# -- one player ----------------------------------------------------------------------


class Client(Conn):
    """A telnet connection that answers negotiation like a MUD client and reads to prompts."""

    def received(self, data: bytes) -> bytes:
        """Answer the telnet commands in ``data``; the text that remains."""
        out = bytearray()
        i = 0
        while i < len(data):
            byte = data[i]
            if byte != IAC or i + 1 >= len(data):
                out.append(byte)
                i += 1
                continue
            command = data[i + 1]
            if command in (DO, DONT, WILL, WONT) and i + 2 < len(data):
                option = data[i + 2]
                if command == DO:
                    agree = option in (TTYPE, NAWS)
                    self.writer.write(bytes([IAC, WILL if agree else WONT, option]))
                    if option == NAWS:
                        self.writer.write(bytes([IAC, SB, NAWS, 0, 200, 0, 40, IAC, SE]))
                elif command == WILL:
                    # EOR as MUD clients take it: prompts are marked, and a message
                    # arriving at the prompt comes without the prompt again.
                    agree = option == EOR
                    self.writer.write(bytes([IAC, DO if agree else DONT, option]))
                i += 3
            elif command == SB:
                end = data.find(bytes([IAC, SE]), i)
                if end < 0:
                    break
                if data[i + 2] == TTYPE:
                    self.writer.write(bytes([IAC, SB, TTYPE, 0]) + b"bench" + bytes([IAC, SE]))
                i = end + 2
            else:
                i += 2
        return bytes(out)


class WebPlayer:
    """A player on the web port, as the game's page plays: text in BINARY frames, GMCP beside."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.buffer = b""
        self._sending: set[asyncio.Task[None]] = set()

    @classmethod
    async def open(cls, port: int) -> WebPlayer:
        ws = await connect(
            f"ws://127.0.0.1:{port}/ws",
            subprotocols=["gmcp.mudstandards.org"],  # type: ignore[list-item]
            ping_interval=None,
            max_size=None,
            open_timeout=60,
        )
        return cls(ws)

    async def until(self, marker: bytes, timeout: float = 30) -> bytes:
        deadline = time.monotonic() + timeout
        while marker not in self.buffer:
            message = await asyncio.wait_for(self.ws.recv(), deadline - time.monotonic())
            if isinstance(message, bytes):  # a str is GMCP (Room.Info ...): not waited for
                self.buffer += message
        index = self.buffer.index(marker) + len(marker)
        seen, self.buffer = self.buffer[:index], self.buffer[index:]
        return seen

    def send(self, line: str) -> None:
        task = asyncio.ensure_future(self._send(line.encode()))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, data: bytes) -> None:
        with contextlib.suppress(ConnectionClosed):
            await self.ws.send(data)

    def close(self) -> None:
        task = asyncio.ensure_future(self.ws.close())
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)


Player = Client | WebPlayer


async def login(player: Player, name: str) -> bytes:
    """The game's login dialogue for an existing account, on either kind of connection."""
    await player.until(b"known? ", timeout=60)
    player.send(name)
    await player.until(b"Password: ", timeout=60)
    player.send(PASSWORD)
    return await player.until(PROMPT, timeout=60)


#: What a player's connection raises when it is gone or too slow.
LOST = (OSError, ConnectionError, TimeoutError, ConnectionClosed)


def plays_on_the_web(number: int, share: float) -> bool:
    """Whether player ``number`` plays over a websocket: ``share`` of them, spread evenly."""
    return int((number + 1) * share) > int(number * share)


def choose(mix: dict[str, float]) -> str:
    return random.choices(list(mix), weights=list(mix.values()))[0]


async def act(client: Player, action: str, exits: list[str], name: str) -> bytes:
    if action == "look":
        client.send("look")
    elif action == "move":
        client.send(random.choice(exits) if exits else "look")
    elif action == "say":
        client.send("say hello there")
    elif action == "getdrop":
        client.send(random.choice(("get pebble", "drop pebble")))
    elif action == "who":
        client.send("who")
    elif action == "inventory":
        client.send("inventory")
    elif action == "emote":
        client.send("emote stretches.")
    elif action == "ping":
        client.send("ping")
    elif action == "help":
        client.send(random.choice(("help", "help look", "help dig", "help teleport")))
    elif action == "dig":
        client.send(f"dig Annex of {name} {secrets.token_hex(2)}")
    elif action == "describe":
        client.send(f"describe here = Rebuilt by {name} at {time.time():.0f}.")
    elif action == "create":
        client.send(f"create crate {secrets.token_hex(2)}")
    return await client.until(PROMPT)


async def log_in(
    port: int, number: int, gate: asyncio.Semaphore, errors: list[str], web_port: int = 0
) -> tuple[Player, list[str]] | None:
    name = player_name(number)
    try:
        async with gate:
            client: Player = await (WebPlayer.open(web_port) if web_port else Client.open(port))
            text = await login(client, name)
    except LOST as exc:
        errors.append(f"login {name}: {exc}")
        return None
    found = EXITS.findall(text) or [b""]
    return client, [e.strip() for e in found[-1].decode().split(",") if e.strip()]


async def one_player(
    client: Player, exits: list[str], number: int, start: float, stop: float, interval: float,
    results: dict[str, list[float]], errors: list[str],
) -> None:  # fmt: skip
    name = player_name(number)
    suffix = "/web" if isinstance(client, WebPlayer) else ""
    builder = number % 100 == 99
    await asyncio.sleep(max(0.0, start - time.monotonic()) + random.uniform(0, interval))
    while time.monotonic() < stop:
        action = choose(BUILDER_MIX if builder and random.random() < 0.3 else MIX)
        began = time.monotonic()
        try:
            answer = await act(client, action, exits, name)
        except LOST as exc:
            errors.append(f"{action}{suffix} {name}: {exc}")
            return
        results.setdefault(action + suffix, []).append((time.monotonic() - began) * 1000)
        found = EXITS.findall(answer)
        if found:
            exits = [e.strip() for e in found[-1].decode().split(",") if e.strip()]
        await asyncio.sleep(interval * random.uniform(0.5, 1.5))
    client.close()


def generator(
    port: int, numbers: list[int], seconds: float, interval: float,
    logged_in: Any, start_at: Any, queue: Any, web_port: int = 0, web_share: float = 0.0,
) -> None:  # fmt: skip
    """One load-generator process: log its players in, wait for the others, then play."""

    async def run() -> tuple[dict[str, list[float]], list[str]]:
        results: dict[str, list[float]] = {}
        errors: list[str] = []
        gate = asyncio.Semaphore(50)  # logins at a time, well within the server's pending cap
        joined = await asyncio.gather(
            *(
                log_in(port, n, gate, errors, web_port if plays_on_the_web(n, web_share) else 0)
                for n in numbers
            )
        )
        with logged_in.get_lock():
            logged_in.value += 1
        while start_at.value == 0.0:
            await asyncio.sleep(0.05)
        start = time.monotonic() + (start_at.value - time.time())
        stop = start + seconds
        await asyncio.gather(
            *(
                one_player(j[0], j[1], n, start, stop, interval, results, errors)
                for n, j in zip(numbers, joined, strict=True)
                if j is not None
            )
        )
        return results, errors

    results, errors = asyncio.run(run())
    usage = resource.getrusage(resource.RUSAGE_SELF)
    queue.put((results, errors, usage.ru_utime + usage.ru_stime))


# -- the server side ---------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def probe(
    port: int,
    started: asyncio.Event,
    stop: asyncio.Event,
    lags: list[float],
    facts: list[dict[str, str]],
) -> None:
    client = await Client.open(port)
    await login(client, "Probe")
    await started.wait()
    facts.append(await status_of(client))
    while not stop.is_set():
        began = time.monotonic()
        client.send("ping")
        await client.until(b"Pong")  # "Pong." or "Pong!": the builder edits it
        await client.until(PROMPT)
        lags.append((time.monotonic() - began) * 1000)
        await asyncio.sleep(0.1)
    facts.append(await status_of(client))
    client.close()


async def status_of(client: Client) -> dict[str, str]:
    """What the ``status`` command says, as a dict."""
    client.send("status")
    text = (await client.until(PROMPT)).decode(errors="replace")
    return dict(re.findall(r"^([a-z][a-z ]+): +(.*?)\r?$", text, re.MULTILINE))


async def builder_saves(
    port: int, content: Path, started: asyncio.Event, stop: asyncio.Event, saves: list[float]
) -> None:
    """A builder's saves under the load: each edits ``ping``'s answer; how soon it is live."""
    general = content / "commands" / "general.py"
    client = await Client.open(port)
    await login(client, "Saver")
    await started.wait()
    replies = ["Pong.", "Pong!"]
    while not stop.is_set():
        await asyncio.sleep(2.0)
        old, new = replies
        source = general.read_text()
        began = time.monotonic()
        general.write_text(source.replace(f'ctx.msg("{old}")', f'ctx.msg("{new}")'))
        while time.monotonic() - began < 10:
            client.send("ping")
            answer = await client.until(PROMPT)
            if new.encode() in answer:
                saves.append((time.monotonic() - began) * 1000)
                break
            await asyncio.sleep(0.005)
        replies.reverse()
    client.close()


def saved(facts: dict[str, str]) -> int:
    return int(facts.get("world changes saved", "0"))


def full_passes(facts: dict[str, str]) -> int:
    match = re.match(r"(\d+) full passes", facts.get("garbage collection", ""))
    return int(match.group(1)) if match else 0


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else 0.0


def start_profile(
    pid: int, seconds: float, profile: str, players: int
) -> subprocess.Popen[bytes] | None:
    """Sample the server with py-spy for the measured window (``--profile``)."""
    if not profile:
        return None
    target = profile.replace("{n}", str(players))
    command = [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pid),
               "--duration", str(int(seconds)), "--rate", "100", "--format", "raw",
               "--output", target, "--nonblocking"]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run_one(
    players: int, rooms: int, interval: float, seconds: float, generators: int,
    profile: str = "", all_builders: bool = False, web_share: float = 0.0,
) -> dict:  # fmt: skip
    workdir = Path(tempfile.mkdtemp(prefix="bench-play-"))
    shutil.copytree(
        PROJECT_ROOT / "content", workdir / "content", ignore=shutil.ignore_patterns("__pycache__")
    )
    build_world(workdir / "db.sqlite3", rooms, players, all_builders)
    env = {
        "MUD_MAX_CONNECTIONS": str(players + 100),
        "MUD_LOG_LEVEL": "INFO",
        "MUD_PASSWORD_COST": str(BENCH_PASSWORD_COST),
    }
    args = ["-m", "engine", "--port", "0", "--content-dir",
            str(workdir / "content"), "--db-path", str(workdir / "db.sqlite3")]  # fmt: skip
    server = Server.start(args, env=env, workdir=workdir)
    web_port = web_port_of(server) if web_share else 0
    try:
        queue: multiprocessing.Queue[Any] = multiprocessing.Queue()
        logged_in = multiprocessing.Value("i", 0)
        start_at = multiprocessing.Value("d", 0.0)
        slices = [list(range(players))[g::generators] for g in range(generators)]
        processes = [
            multiprocessing.Process(
                target=generator,
                args=(
                    server.port,
                    s,
                    seconds,
                    interval,
                    logged_in,
                    start_at,
                    queue,
                    web_port,
                    web_share,
                ),
            )
            for s in slices
        ]
        began = time.monotonic()
        for process in processes:
            process.start()
        while logged_in.value < generators:
            if time.monotonic() - began > 600:
                raise RuntimeError("the players did not all log in within 10 minutes")
            ended = [p for p in processes if p.exitcode is not None]
            if ended:  # its traceback is above; the others would wait for it forever
                for process in processes:
                    process.terminate()
                raise RuntimeError(f"a load generator ended early (exit code {ended[0].exitcode})")
            time.sleep(0.1)
        login_seconds = time.monotonic() - began
        start_at.value = time.time() + 1.0

        async def measure() -> tuple[list[float], list[int], float, float, list[float]]:
            lags: list[float] = []
            facts: list[dict[str, str]] = []
            saves: list[float] = []
            stop = asyncio.Event()
            started = asyncio.Event()
            task = asyncio.create_task(probe(server.port, started, stop, lags, facts))
            builder = asyncio.create_task(
                builder_saves(server.port, workdir / "content", started, stop, saves)
            )
            await asyncio.sleep(max(0.0, start_at.value - time.time()))
            started.set()
            pid = server.game_pid
            spy = start_profile(pid, seconds, profile, players)
            cpu0, wall0 = cpu_seconds(pid), time.monotonic()
            await asyncio.sleep(seconds)
            cpu = (cpu_seconds(pid) - cpu0) / (time.monotonic() - wall0) * 100
            if spy is not None:
                await asyncio.to_thread(spy.wait)
            stop.set()
            await task
            await builder
            return lags, facts, cpu, float(server.rss_kib()), saves

        lags, facts, cpu, rss, saves = asyncio.run(measure())
        merged: dict[str, list[float]] = {}
        errors: list[str] = []
        generator_cpu = 0.0
        for _ in processes:
            results, errs, used = queue.get(timeout=seconds + 120)
            for action, values in results.items():
                merged.setdefault(action, []).extend(values)
            errors += errs
            generator_cpu += used
        for process in processes:
            process.join(10)
        return {
            "players": players,
            "web": sum(plays_on_the_web(n, web_share) for n in range(players)),
            "actions": merged,
            "lag_p99": p99(lags),
            "cpu": cpu,
            "rss_mib": rss / 1024,
            "saved_per_s": (saved(facts[-1]) - saved(facts[0])) / seconds,
            "collections": full_passes(facts[-1]) - full_passes(facts[0]),
            "gc": facts[-1].get("garbage collection", "?"),
            "errors": errors,
            "generator_cpu": generator_cpu,
            "login_seconds": login_seconds,
            "saves": saves,
        }
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--players", default="100,200", help="comma-separated N to run")
    parser.add_argument("--rooms", type=int, default=400)
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--generators", type=int, default=2)
    parser.add_argument("--mix", default="", help="look=35,move=25,... to change the mix")
    parser.add_argument(
        "--dummyrunner",
        action="store_true",
        help="Evennia's dummyrunner scale: 50 players, an action every 2 s, its mix",
    )
    parser.add_argument(
        "--web-share",
        type=float,
        default=0.0,
        metavar="F",
        help="the share of players (0 to 1) who play over websockets, as the web page does",
    )
    parser.add_argument(
        "--profile",
        default="",
        help="py-spy samples of the server while it is measured, to this file ({n}: players)",
    )
    args = parser.parse_args()
    if not 0.0 <= args.web_share <= 1.0:
        parser.error(f"--web-share is a share between 0 and 1, not {args.web_share:g}")
    if args.dummyrunner:
        args.players, args.interval, args.mix = (
            DUMMYRUNNER["players"],
            DUMMYRUNNER["interval"],
            DUMMYRUNNER["mix"],
        )
    if args.mix:
        try:
            mix = {k.strip(): float(v) for k, v in (p.split("=") for p in args.mix.split(","))}
        except ValueError:
            parser.error(f"--mix takes action=weight pairs, like look=35,move=25; not {args.mix!r}")
        unknown = sorted(set(mix) - set(ACTIONS))
        if unknown or not any(mix.values()):
            parser.error(
                f"--mix: unknown action {', '.join(unknown) or '(all weights 0)'}; "
                f"the actions are {', '.join(ACTIONS)}"
            )
        MIX.clear()
        MIX.update(mix)
    print(f"machine: {machine()}")
    held = 0
    for n in (int(x) for x in args.players.split(",")):
        outcome = run_one(
            n, args.rooms, args.interval, args.seconds, args.generators, args.profile,
            all_builders=args.dummyrunner, web_share=args.web_share,
        )  # fmt: skip
        rows = []
        worst = 0.0
        few: list[str] = []
        for action in sorted(outcome["actions"]):
            values = outcome["actions"][action]
            if len(values) >= MIN_SAMPLES:
                worst = max(worst, p99(values))
            else:
                few.append(f"{action} ({len(values)}, slowest {max(values):.1f} ms)")
            rows.append(
                (action, str(len(values)), f"{statistics.median(values):.1f} ms",
                 f"{p99(values):.1f} ms")
            )  # fmt: skip
        over = f" ({outcome['web']} of them over websockets)" if outcome["web"] else ""
        print_table(
            f"{n} players{over}, {args.rooms} rooms, an action every {args.interval:g} s "
            f"for {args.seconds:g} s",
            ("action", "count", "p50", "p99"),
            rows,
        )
        print(
            f"probe (event loop lag) p99 {outcome['lag_p99']:.1f} ms; server CPU "
            f"{outcome['cpu']:.0f} %, RSS {outcome['rss_mib']:.0f} MiB; world changes saved "
            f"{outcome['saved_per_s']:.0f}/s; load generator CPU {outcome['generator_cpu']:.1f} s; "
            f"logins took {outcome['login_seconds']:.1f} s; errors {len(outcome['errors'])}"
        )
        print(
            f"garbage collection: {outcome['collections']} full passes while playing; "
            f"since start {outcome['gc']}"
        )
        saves = outcome["saves"]
        if saves:
            print(
                f"a builder's save is live in {statistics.median(saves):.0f} ms "
                f"(median of {len(saves)}; slowest {max(saves):.0f} ms)"
            )
        if few:
            print(f"too few to judge a p99 by (under {MIN_SAMPLES}): {', '.join(few)}")
        if len(few) == len(outcome["actions"]):
            # No action alone is enough: all of them together are judged.
            worst = p99([v for values in outcome["actions"].values() for v in values])
        for error in outcome["errors"][:5]:
            print(f"  {error}")
        if worst < GOAL_MS and not outcome["errors"]:
            held = max(held, n)
    print(f"players held: {held} (every action p99 < {GOAL_MS:.0f} ms)")


if __name__ == "__main__":
    main()
