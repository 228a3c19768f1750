"""The examples in README.md and the guides work as written: each is played over telnet.

Every ``mud`` block shows lines typed (``> look``) and, under each, the game's
whole answer. Each file that has such blocks (``FILES``: README.md, then
docs/playing.md, then docs/building.md) is one session of its own: a new
server on a new database, and Pat, the first account and so an admin, logged
in through a client whose window is 80 columns wide like a plain ``telnet``.
Pat types the file's ``> `` lines in order, and each answer (everything the
game sends up to the next ``\\r\\n> `` prompt) must be, line for line, the
lines the file shows under it: none missing, none added, none different.

The examples must not depend on object ids, which count every object made
before. No typed line names an ``#id``, and every session is played a second
time in a game where another account, Ada, was made first and made two
things before Pat came, so that every id from Pat's on is three higher (Ada,
the admin there, makes Pat an admin). In that game each answer is compared
with every ``#<digits>`` read as the placeholder ``#<id>``, on both sides;
the ids stay two digits long, so the lines wrap alike.

The server's input throttle (a burst of 30 lines) is raised for these games:
the test types faster than a person does, and would otherwise be told to
slow down. The example test in docs/content.md is run as well, against the
starter game's content.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from conftest import Client

if TYPE_CHECKING:
    from engine.app import Game

ROOT = Path(__file__).resolve().parents[2]
#: The files with ``mud`` blocks, each played as a session of its own, in this order.
FILES = ("README.md", "docs/playing.md", "docs/building.md")
BLOCK = re.compile(r"^```mud\n(.*?)^```", re.S | re.M)
AN_ID = re.compile(r"#\d+")
#: How long one answer may take to come.
ANSWER_TIMEOUT = 5.0

#: The input throttle raised, so that typing fast is never told to slow down.
fast_typing = pytest.mark.game(input_burst=1000.0)


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


def steps_of(name: str) -> list[tuple[str, list[str]]]:
    return examples((ROOT / name).read_text(encoding="utf-8"))


def masked(lines: list[str]) -> list[str]:
    return [AN_ID.sub("#<id>", line) for line in lines]


def shown(lines: list[str]) -> str:
    return "\n".join(f"  | {line}" for line in lines) or "  (nothing)"


async def play(client: Client, name: str, ids_masked: bool = False) -> None:
    """Type every ``> `` line of ``name``; each answer must be the lines shown, whole."""
    for number, (line, wanted) in enumerate(steps_of(name), 1):
        client.send(line)
        answer = await client.expect("\r\n> ", timeout=ANSWER_TIMEOUT)
        got = answer.removesuffix("\r\n> ").split("\r\n")
        if ids_masked:
            got, wanted = masked(got), masked(wanted)
        assert got == wanted, (
            f"{name}, example {number}: '> {line}' answered\n{shown(got)}\n"
            f"but the file shows\n{shown(wanted)}"
            + ("\n(ids read as #<id> on both sides)" if ids_masked else "")
        )


def test_the_docs_have_examples_to_play() -> None:
    typed = {name: [line for line, _ in steps_of(name)] for name in FILES}
    assert {"look", "get lamp", "say Hello, anyone?"} <= set(typed["README.md"])
    assert {"who", "help home", "use lamp", "home"} <= set(typed["docs/playing.md"])
    needed = {
        "dig Garden = west, east",
        "create glass jar;jar;bottle",
        "drop 2.box",
        "set lantern/polished = true",
        "examine jar",
        "typeclass statue = content.typeclasses.things.Thing",
    }
    assert needed <= set(typed["docs/building.md"])
    assert sum(len(lines) for lines in typed.values()) > 40
    for name in FILES:
        assert all(answer for _, answer in steps_of(name)), f"{name}: an example without answer"


def test_every_file_with_examples_is_played() -> None:
    with_blocks = {
        path.relative_to(ROOT).as_posix()
        for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
        if BLOCK.search(path.read_text(encoding="utf-8"))
    }
    assert with_blocks == set(FILES)


def test_no_example_types_an_id() -> None:
    for name in FILES:
        for line, _ in steps_of(name):
            assert not AN_ID.search(line), f"{name}: '> {line}' names an object by its id"


@fast_typing
@pytest.mark.parametrize("name", FILES)
async def test_every_example_answers_as_written(game: Game, name: str) -> None:
    client = await Client.connect(game.port, cols=80)
    try:
        await client.login_new("Pat")
        await play(client, name)
    finally:
        client.writer.close()


@fast_typing
@pytest.mark.parametrize("name", FILES)
async def test_the_examples_do_not_depend_on_ids(game: Game, name: str) -> None:
    ada = await Client.connect(game.port, cols=80)
    clients = [ada]
    try:
        await ada.login_new("Ada")
        made = await ada.command("create spare key", "\r\n> ", timeout=ANSWER_TIMEOUT)
        # Ada's first thing takes the id that Pat's first room has in docs/building.md.
        building = [line for _, answer in steps_of("docs/building.md") for line in answer]
        first_id = AN_ID.findall("\n".join(building))[0]
        assert f"({first_id}," in made, made
        await ada.command("create old rope", "\r\n> ", timeout=ANSWER_TIMEOUT)
        first = await Client.connect(game.port, cols=80)
        clients.append(first)
        await first.login_new("Pat")
        first.send("quit")
        await first.expect_closed()
        await ada.command("grant Pat = admin", "Pat is now an admin.", timeout=ANSWER_TIMEOUT)
        ada.send("quit")
        await ada.expect_closed()
        pat = await Client.connect(game.port, cols=80)
        clients.append(pat)
        await pat.login("Pat")
        await play(pat, name, ids_masked=True)
    finally:
        for client in clients:
            client.writer.close()


PYTHON_TEST = re.compile(r"^```python\n(# tests/(test_\w+\.py)\n.*?)^```", re.S | re.M)


async def test_the_example_test_of_a_game_passes(content_dir: Path, watchdog: None) -> None:
    """docs/content.md's example test, run as if it sat in a game folder's tests/."""
    found = PYTHON_TEST.findall((ROOT / "docs" / "content.md").read_text(encoding="utf-8"))
    assert len(found) == 1, "docs/content.md shows one example test"
    source, filename = found[0]
    namespace: dict[str, Any] = {
        "__file__": str(content_dir.parent / "tests" / filename),
        "__name__": "example",
    }
    exec(compile(source, f"docs/content.md ({filename})", "exec"), namespace)
    tests = [value for key, value in namespace.items() if key.startswith("test_")]
    assert tests, "the example defines a test"
    for test in tests:
        await test()
