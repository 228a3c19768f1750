"""Fifty players talk while a hundred reloads land: nobody drops, nothing is lost or doubled.

Every client sends numbered ``say`` lines, each after the answer to the one
before, while ``commands/general.py`` is swapped between two versions whose
answer differs in one word.  Each numbered line must be answered exactly
once, by one version or the other.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from engine.app import Game
from engine.config import Config

if TYPE_CHECKING:
    from conftest import Client, MakeClient

CLIENTS = 50
PER_ROOM = 5
RELOADS = 100
GENERAL = "content.commands.general"
OLD = """ctx.msg(f'You say, "{text}"')"""
NEW = """ctx.msg(f'You state, "{text}"')"""

#: Players here type as fast as they are answered: lift the per-connection input
#: rate limit (where the engine has one) so that the load is the reloads' to bear.
UNTHROTTLED = {
    name: value
    for name, value in {"input_rate": 1e6, "input_burst": 1e6}.items()
    if name in {f.name for f in fields(Config)}
}


def player_name(i: int) -> str:
    return "P" + chr(ord("a") + i // 26) + chr(ord("a") + i % 26)


@pytest.mark.game(reload=False, **UNTHROTTLED)
async def test_fifty_players_talk_through_a_hundred_reloads(
    game: Game, make_client: MakeClient, content_dir: Path
) -> None:
    started = time.monotonic()
    clients: list[Client] = []
    for first in range(0, CLIENTS, 10):
        batch = await asyncio.gather(*(make_client() for _ in range(first, first + 10)))
        await asyncio.gather(*(c.login_new(player_name(first + j)) for j, c in enumerate(batch)))
        clients.extend(batch)
    assert len(game.services.online()) == CLIENTS

    # Five players to a room: each line is also heard by four others.
    rooms = [game.world.create_room(f"Room {r}") for r in range(CLIENTS // PER_ROOM)]
    for i in range(CLIENTS):
        character = game.world.find_online(player_name(i))
        assert character is not None
        character.location = rooms[i // PER_ROOM]
    logged_in = time.monotonic()

    general = content_dir / "commands" / "general.py"
    versions = [general.read_text(encoding="utf-8")]
    assert versions[0].count(OLD) == 1
    versions.append(versions[0].replace(OLD, NEW))

    stop = asyncio.Event()
    sent = [0] * CLIENTS

    async def talk(i: int) -> None:
        client = clients[i]
        while not stop.is_set():
            k = sent[i]
            client.send(f"say x{i}n{k}.")
            await client.expect(f'"x{i}n{k}."', timeout=10)
            sent[i] = k + 1

    talkers = [asyncio.create_task(talk(i)) for i in range(CLIENTS)]
    try:
        await asyncio.sleep(0.1)
        for r in range(RELOADS):
            general.write_text(versions[(r + 1) % 2], encoding="utf-8")
            report = game.content.apply({GENERAL})
            assert report.ok, report.describe()
            await asyncio.sleep(0.02)
            assert not any(t.done() for t in talkers), "a talker stopped early"
        await asyncio.sleep(0.1)
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*talkers), 15)
    reloaded = time.monotonic()

    # One more line each, so that anything answered late (twice) has arrived.
    await asyncio.gather(
        *(c.command(f"say x{i}end.", f'"x{i}end."', timeout=10) for i, c in enumerate(clients))
    )

    switches = []
    for i, client in enumerate(clients):
        assert not client.eof, f"{player_name(i)} was disconnected"
        assert sent[i] >= 5, f"{player_name(i)} only got {sent[i]} lines through"
        payloads = re.findall(rf'"x{i}n(\d+)\."', client.transcript)
        assert [int(k) for k in payloads] == list(range(sent[i])), (
            f"{player_name(i)}: lines lost, doubled or out of order"
        )
        answers = re.findall(rf'You (say|state), "x{i}n(\d+)\."', client.transcript)
        assert [int(k) for _, k in answers] == list(range(sent[i])), (
            f"{player_name(i)}: an answer came from neither version"
        )
        markers = [verb for verb, _ in answers]
        switches.append(sum(a != b for a, b in itertools.pairwise(markers)))
    assert len(game.services.online()) == CLIENTS
    assert game.content.module("commands.general") is not None
    # The reloads landed in the middle of the conversations, many times over.
    assert max(switches) >= 10, switches
    total = sum(sent)
    print(
        f"\n{CLIENTS} clients, {total} lines answered, {RELOADS} reloads; "
        f"login {logged_in - started:.1f} s, talk {reloaded - logged_in:.1f} s, "
        f"most switches seen by one client {max(switches)}"
    )
