#!/usr/bin/env python3
"""Reload benchmarks: save-to-seen latency, cost against game size, memory over 1,000 reloads.

Every figure is printed beside a baseline measured in the same run, because
these machines are shared and noisy: absolute times mean little, ratios do.

- save -> new behaviour seen by a connected telnet client (real server
  subprocess), for a leaf module and for a module with 20 dependents,
  median and p99 over N saves; baseline: watchfiles alone noticing a save
  with the same step.
- save -> live where the game's tests guard the saves (the starter game's
  tests, run in the warm runner before each save goes live) beside the same
  save to a server without tests, the two servers saved in turn; baseline:
  watchfiles alone.
- the cost of reloading one leaf module with 10 and with 1,000 content
  modules present (in-process, alternating the two trees); the ratio should
  stay below 1.5.
- process memory before and after 1,000 reloads of a module whose commands
  keep being used.

Usage: python scripts/bench_reload.py [--saves 50] [--reloads 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import watchfiles

from engine.commands.registry import Registry
from engine.live.manager import LiveContent
from engine.paths import starter_tests
from engine.testing import MudClient, ServerProcess
from reloader import exocet
from reloader.watcher import SourceFilter

STEP_MS = 20
#: The probe sends a command after each answer, far over the players' input
#: rate limit: lifted, or the figures would measure the limiter.
UNTHROTTLED = {"MUD_INPUT_RATE": "1000000", "MUD_INPUT_BURST": "1000000"}
SAY = "ctx.msg(f'You say, \"{text}\"')"

DEPENDENT = '''
from engine.api import Command, Context
from content.lib.shared import MARK


class CmdDep{i}(Command):
    """Dependent command {i}."""

    key = "dep{i}"

    def run(self, ctx: Context) -> None:
        ctx.msg(f"dep{i} says {{MARK}}")
'''

LEAF = '''
from engine.api import Command, Context

VERSION = {version}


class CmdLeaf{i}(Command):
    """Leaf command {i}."""

    key = "leaf{i}"

    def run(self, ctx: Context) -> None:
        ctx.msg(f"leaf{i} {{VERSION}}")
'''


def machine() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{platform.node()}: {platform.system()} {platform.machine()}, {model or 'cpu ?'}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}"
    )


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[98]


# -- save -> seen -------------------------------------------------------------------


async def save_to_seen(
    server: ServerProcess,
    saves: int,
    path: Path,
    rewrite: Callable[[str, str], str],
    probe: str,
    player: str,
) -> list[float]:
    """Per save: ms from closing the file until ``probe``'s answer carries the new marker."""
    original = path.read_text()
    client = await MudClient.connect(server.port)
    await client.create_account(player, "benchpass")
    timings: list[float] = []
    for number in range(1, saves + 1):
        marker = f"m{number}k"
        text = rewrite(original, marker)
        await asyncio.sleep(0.15)  # each save its own event group
        started = time.perf_counter()
        path.write_text(text)
        while True:
            client.send(probe)
            answer = await client.expect("> ", timeout=10)
            if marker in answer:
                timings.append((time.perf_counter() - started) * 1000)
                break
    path.write_text(original)
    client.close()
    return timings


async def watchfiles_alone(saves: int) -> list[float]:
    """The baseline: how long watchfiles itself takes to report a save, same step."""
    directory = Path(tempfile.mkdtemp(prefix="bench-watch-"))
    target = directory / "module.py"
    target.write_text("X = 0\n")
    stop = asyncio.Event()
    seen: asyncio.Queue[float] = asyncio.Queue()

    async def watch() -> None:
        async for _changes in watchfiles.awatch(
            directory, watch_filter=SourceFilter(), step=STEP_MS, debounce=200, stop_event=stop
        ):
            seen.put_nowait(time.perf_counter())

    task = asyncio.create_task(watch())
    await asyncio.sleep(0.3)
    timings = []
    for number in range(saves):
        await asyncio.sleep(0.15)
        while not seen.empty():
            seen.get_nowait()
        started = time.perf_counter()
        target.write_text(f"X = {number}\n")
        timings.append((await asyncio.wait_for(seen.get(), 5) - started) * 1000)
    stop.set()
    await task
    shutil.rmtree(directory, ignore_errors=True)
    return timings


def latency_section(saves: int) -> list[tuple[str, str, str, str]]:
    server = ServerProcess.with_copied_content(env=UNTHROTTLED)
    content = server.content_dir
    (content / "lib").mkdir(exist_ok=True)
    (content / "lib" / "__init__.py").write_text("")
    shared = content / "lib" / "shared.py"
    shared.write_text('MARK = "m0k"\n')
    for i in range(20):
        (content / "commands" / f"dep{i}.py").write_text(DEPENDENT.format(i=i))
    try:
        server.start()

        async def run() -> tuple[list[float], list[float], list[float]]:
            baseline = await watchfiles_alone(saves)
            leaf = await save_to_seen(
                server,
                saves,
                content / "commands" / "general.py",
                lambda text, marker: text.replace(SAY, f"ctx.msg(f'{marker} {{ctx.args}}')"),
                "say x",
                "Leafy",
            )
            deps = await save_to_seen(
                server,
                saves,
                shared,
                lambda _text, marker: f'MARK = "{marker}"\n',
                "dep19",
                "Deppy",
            )
            return baseline, leaf, deps

        baseline, leaf, deps = asyncio.run(run())
    finally:
        server.cleanup()
    base_median = statistics.median(baseline)
    rows = [
        ("watchfiles alone (baseline)", f"{base_median:.1f}", f"{p99(baseline):.1f}", "1.00"),
    ]
    for label, values in (("leaf module", leaf), ("module with 20 dependents", deps)):
        median = statistics.median(values)
        rows.append(
            (
                f"save -> seen, {label}",
                f"{median:.1f}",
                f"{p99(values):.1f}",
                f"{median / base_median:.2f}",
            )
        )
    return rows


# -- save -> live with the game's tests --------------------------------------------------

PROBE = '''
from engine.api import Command, Context


class CmdProbe(Command):
    """Say which version of this file is live."""

    key = "probe"

    def run(self, ctx: Context) -> None:
        ctx.msg("probe {marker}")
'''


def probe_server(tests: bool) -> ServerProcess:
    """A server on a copy of the starter game with a ``probe`` command; with its tests or not."""
    server = ServerProcess.with_copied_content(env=dict(UNTHROTTLED))
    (server.content_dir / "commands" / "probe.py").write_text(PROBE.format(marker="m0k"))
    if tests:
        folder = server.workdir / "tests"
        shutil.copytree(starter_tests(), folder, ignore=shutil.ignore_patterns("__pycache__"))
        server.env["MUD_TESTS_DIR"] = str(folder)
    return server


def count_tests(folder: Path) -> int:
    return sum(
        line.lstrip().startswith(("def test_", "async def test_"))
        for path in folder.glob("test_*.py")
        for line in path.read_text().splitlines()
    )


async def saves_in_turn(servers: list[ServerProcess], saves: int) -> list[list[float]]:
    """Per server: ms from a save of probe.py until it is live (the builders' notice says so).

    The notice, not a stream of ``probe`` commands, marks the moment: a client
    typing as fast as it can would take the processor from the tests.  Each
    save is then checked with one ``probe``.  The servers are saved in turn,
    one save each a round, so that a busy moment of the machine falls on both
    alike.
    """
    clients = []
    for number, server in enumerate(servers):
        client = await MudClient.connect(server.port, timeout=60)
        await client.create_account("Probe" + "abc"[number], "benchpass")
        clients.append(client)
    timings: list[list[float]] = [[] for _ in servers]
    for number in range(-1, saves):  # save -1 warms the test runner up; it is not counted
        for index, (server, client) in enumerate(zip(servers, clients, strict=True)):
            marker = f"m{number + 2}k"
            await asyncio.sleep(0.15)  # each save its own event group
            started = time.perf_counter()
            (server.content_dir / "commands" / "probe.py").write_text(PROBE.format(marker=marker))
            await client.expect("[reload] Reloaded commands.probe", timeout=60)
            took = (time.perf_counter() - started) * 1000
            await client.command("probe", f"probe {marker}")
            if number >= 0:
                timings[index].append(took)
    for client in clients:
        client.close()
    return timings


def gated_section(saves: int) -> tuple[str, list[tuple[str, str, str, str]]]:
    plain, gated = probe_server(tests=False), probe_server(tests=True)
    try:
        plain.start()
        gated.start(timeout=60)

        async def run() -> tuple[list[float], list[list[float]]]:
            baseline = await watchfiles_alone(saves)
            return baseline, await saves_in_turn([plain, gated], saves)

        baseline, (without, with_tests) = asyncio.run(run())
        tests = count_tests(gated.workdir / "tests")
    finally:
        plain.cleanup()
        gated.cleanup()
    base = statistics.median(baseline)
    rows = [("watchfiles alone (baseline)", f"{base:.1f}", f"{p99(baseline):.1f}", "1.00")]
    for label, values in (
        ("save -> live, no tests", without),
        (f"save -> live, gated by {tests} tests", with_tests),
    ):
        median = statistics.median(values)
        rows.append((label, f"{median:.1f}", f"{p99(values):.1f}", f"{median / base:.2f}"))
    added = statistics.median(b - a for a, b in zip(without, with_tests, strict=True))
    rows.append(("added by the tests (median of pairs)", f"{added:.1f}", "", ""))
    return f"the starter game's {tests} tests", rows


# -- cost against size --------------------------------------------------------------


def make_tree(modules: int) -> Path:
    """A content package with ``modules`` modules in all: the package and leaves."""
    root = Path(tempfile.mkdtemp(prefix=f"bench-tree{modules}-")) / "content"
    root.mkdir()
    (root / "__init__.py").write_text("")
    for i in range(modules - 1):
        (root / f"leaf{i}.py").write_text(LEAF.format(i=i, version=0))
    return root


def cost_section(rounds: int) -> list[tuple[str, str, str, str]]:
    managers = {}
    for size in (10, 1000):
        root = make_tree(size)
        manager = LiveContent(root, Registry(), lambda line: None)
        report = manager.load_all()
        assert report.ok and len(manager.tree.live) == size, report.failures
        managers[size] = (manager, root)
    samples: dict[int, list[float]] = {10: [], 1000: []}
    for round_number in range(rounds):
        for size in (10, 1000) if round_number % 2 else (1000, 10):
            manager, root = managers[size]
            (root / "leaf0.py").write_text(LEAF.format(i=0, version=round_number))
            started = time.perf_counter()
            report = manager.apply({"content.leaf0"})
            samples[size].append((time.perf_counter() - started) * 1000)
            assert report.ok, report.failures
    for _manager, root in managers.values():
        shutil.rmtree(root.parent, ignore_errors=True)
    small, large = statistics.median(samples[10]), statistics.median(samples[1000])
    return [
        (
            "reload one leaf, 10 modules (baseline)",
            f"{small:.2f}",
            f"{p99(samples[10]):.2f}",
            "1.00",
        ),
        (
            "reload one leaf, 1,000 modules",
            f"{large:.2f}",
            f"{p99(samples[1000]):.2f}",
            f"{large / small:.2f}",
        ),
    ]


# -- memory -------------------------------------------------------------------------------


def memory_section(reloads: int) -> list[tuple[str, str, str, str]]:
    root = make_tree(20)
    registry = Registry()
    manager = LiveContent(root, registry, lambda line: None)
    manager.load_all()
    leaf = root / "leaf0.py"

    def reload_once(version: int) -> None:
        leaf.write_text(LEAF.format(i=0, version=version))
        report = manager.apply({"content.leaf0"})
        assert report.ok, report.failures
        command = registry.get("leaf0")
        assert command is not None

    for version in range(50):  # warm-up: caches, allocator arenas
        reload_once(version)
    gc.collect()
    exocet.purgeCollected()
    before = rss_kib()
    for version in range(reloads):
        reload_once(version)
    gc.collect()
    exocet.purgeCollected()
    after = rss_kib()
    alive = sum(1 for name in sys.modules.copy() if name.startswith("content.leaf0@"))
    shutil.rmtree(root.parent, ignore_errors=True)
    return [
        (f"RSS before {reloads} reloads (KiB)", str(before), "", ""),
        (f"RSS after {reloads} reloads (KiB)", str(after), "", f"+{after - before} KiB"),
        ("versions of the module still alive", str(alive), "", "expected 1"),
    ]


def print_table(title: str, header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print(f"\n{title}")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--saves", type=int, default=50)
    parser.add_argument("--reloads", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print_table(
        f"Save -> new behaviour seen by a connected client ({args.saves} saves, step {STEP_MS} ms)",
        ("measure", "median ms", "p99 ms", "median / baseline"),
        latency_section(args.saves),
    )
    which, rows = gated_section(args.saves)
    print_table(
        f"Save -> live with and without the game's tests ({which}, {args.saves} saves each)",
        ("measure", "median ms", "p99 ms", "median / baseline"),
        rows,
    )
    print_table(
        f"Cost of reloading one leaf module against game size ({args.rounds} reloads each)",
        ("measure", "median ms", "p99 ms", "ratio"),
        cost_section(args.rounds),
    )
    print_table(
        "Memory over reloads",
        ("measure", "value", "", "note"),
        memory_section(args.reloads),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
