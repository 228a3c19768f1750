"""The README's examples work verbatim: every ``mud`` block is played over telnet.

The blocks are read from README.md in order and typed by one player, Pat (the
first account, so an admin), into a server on a new database, through a
client whose window is 80 columns wide like a plain ``telnet``. Each answer
must contain the lines the README shows under the command, exactly and
together, so the README cannot drift from the game.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from conftest import Client

from engine.config import PROJECT_ROOT

if TYPE_CHECKING:
    from engine.app import Game

BLOCK = re.compile(r"^```mud\n(.*?)^```", re.S | re.M)


def examples(text: str) -> list[tuple[str, list[str]]]:
    """(typed line, answer lines) for every ``> `` line of every ``mud`` block."""
    steps: list[tuple[str, list[str]]] = []
    for block in BLOCK.findall(text):
        for line in block.rstrip("\n").split("\n"):
            if line.startswith("> "):
                steps.append((line[2:], []))
            else:
                assert steps, f"an answer before any command: {line!r}"
                steps[-1][1].append(line)
    return steps


def test_the_readme_has_examples_to_play() -> None:
    steps = examples((PROJECT_ROOT / "README.md").read_text(encoding="utf-8"))
    typed = [line for line, _ in steps]
    assert len(typed) > 30
    for needed in ("look", "dig Garden = west, east", "create glass jar;jar;bottle", "drop 2.box"):
        assert needed in typed, needed
    assert all(answer for _, answer in steps), "every example shows its answer"


async def test_every_readme_example_works_as_written(game: Game) -> None:
    client = await Client.connect(game.port, cols=80)
    try:
        await client.login_new("Pat")
        for line, answer in examples((PROJECT_ROOT / "README.md").read_text(encoding="utf-8")):
            client.send(line)
            got = (await client.expect("\r\n> ", timeout=5)).removesuffix("> ")
            wanted = "\r\n".join(answer)
            assert wanted in got, f"README example {line!r} answered:\n{got}\nnot:\n{wanted}"
    finally:
        client.writer.close()
