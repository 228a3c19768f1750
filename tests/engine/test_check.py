"""``hotmud check`` (``engine.check``): every problem on one line, at its file and line.

Each test builds a throw-away game folder (a copy of the repository's
``content/``, and a database when it needs one) and breaks one thing in it.
Content that loops or ends the interpreter is checked in a child process
(``run_check``, with a timeout), the rest in this process (``check``, ``main``).
"""

from __future__ import annotations

import shutil
import textwrap
import time
from pathlib import Path

import pytest

from engine.check import check, main, run_check
from engine.world.model import World
from engine.world.store import Store

#: The repository's starter content, which every test game starts from.
STARTER = Path(__file__).resolve().parents[2] / "content"
#: Seconds a child check may take in a test: generous for a loaded machine.
TIMEOUT = 20.0


@pytest.fixture
def game(tmp_path: Path) -> Path:
    """A game folder holding a private copy of the starter content (no database yet)."""
    folder = tmp_path / "game"
    shutil.copytree(
        STARTER, folder / "content", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    return folder


def write(game: Path, relpath: str, source: str) -> Path:
    path = game / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source).lstrip("\n"), encoding="utf-8")
    return path


def line_of(path: Path, marker: str) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(i for i, text in enumerate(lines, 1) if marker in text)


def build_world(db_path: Path, *things: tuple[str, str]) -> list[int]:
    """A database as a server leaves it: one room, and a thing per (name, type class)."""
    store = Store(db_path)
    world = World(store)
    room = world.create_room("Hall", "A bare hall.")
    world.set_start(room)
    ids = [world.create("thing", name, location=room, typeclass=path).id for name, path in things]
    world.commit_now()
    store.close()
    return ids


# -- clean ------------------------------------------------------------------------------


def test_the_starter_game_is_clean(game: Path, capfd: pytest.CaptureFixture[str]) -> None:
    assert check(game) == []
    assert run_check(game, timeout=TIMEOUT) == 0
    out = capfd.readouterr().out.splitlines()
    assert len(out) == 1, out
    assert out[0].startswith("Checked ")
    assert " commands in 5 command modules, 4 type class modules)" in out[0]
    assert "(no database at var/mud.sqlite3)" in out[0]
    assert out[0].endswith(": no problems.")


def test_the_stored_world_of_the_starter_game_is_clean_and_left_as_it_was(
    game: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = game / "var" / "mud.sqlite3"
    build_world(db, ("brass lamp", "content.typeclasses.things.Lamp"))
    before = db.read_bytes()
    assert main(["--game-dir", str(game)]) == 0
    out = capsys.readouterr().out
    assert "and 2 type class paths in var/mud.sqlite3 in " in out
    assert out.rstrip().endswith(": no problems.")
    # Read-only, and not even the -wal and -shm files a read of a WAL database makes.
    assert db.read_bytes() == before
    assert sorted(p.name for p in db.parent.iterdir()) == ["mud.sqlite3"]


# -- modules that do not load -------------------------------------------------------------


def test_a_syntax_error_is_reported_at_its_line(
    game: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        game,
        "content/commands/broken.py",
        '''
        """A command module with a typo."""

        from engine.api import Command


        class CmdBroken(Command):
            """Broken."""

            key = "broken"

            def run(self, ctx)  # MISSING COLON
                ctx.msg("never")
        ''',
    )
    line = line_of(path, "MISSING COLON")
    problems = check(game)
    assert problems == [f"content/commands/broken.py:{line}: SyntaxError: expected ':'"]
    assert main(["--content-dir", str(game / "content")]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == problems[0]
    assert out[-1].endswith(": 1 problem.")


def test_an_exception_at_import_is_reported_at_the_raise(game: Path) -> None:
    path = write(
        game,
        "content/commands/raises.py",
        """
        import math

        RADIUS = math.sqrt(-1)  # RAISES
        """,
    )
    line = line_of(path, "RAISES")
    assert check(game) == [f"content/commands/raises.py:{line}: ValueError: math domain error"]


def test_every_broken_module_gets_its_own_line(game: Path) -> None:
    write(game, "content/commands/one.py", "raise RuntimeError('first')\n")
    write(game, "content/world/two.py", "raise RuntimeError('second')\n")
    assert check(game) == [
        "content/commands/one.py:1: RuntimeError: first",
        "content/world/two.py:1: RuntimeError: second",
    ]


def test_a_loop_at_import_is_stopped_and_reported_and_the_check_finishes(
    game: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    path = write(
        game,
        "content/commands/spin.py",
        """
        count = 0
        while True:
            count += 1  # SPINS
        """,
    )
    assert run_check(game, budget=0.3, timeout=TIMEOUT) == 1
    out = capfd.readouterr().out.splitlines()
    lines = {line_of(path, "while True"), line_of(path, "SPINS")}
    assert out[0] in {
        f"content/commands/spin.py:{n}: ContentTimeout: stopped after 0.3 s "
        "(the module body held the game)"
        for n in lines
    }, out
    # The rest of the game was still checked.
    assert out[-1].startswith("Checked 14 content modules (36 commands")
    assert out[-1].endswith(": 1 problem.")


def test_content_that_ends_the_interpreter_ends_only_the_child(
    game: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    write(game, "content/commands/quits.py", "import os\n\nos._exit(0)\n")
    assert run_check(game, timeout=TIMEOUT) == 1
    out = capfd.readouterr().out.splitlines()
    assert out == [
        "content/commands/quits.py: the check process ended before its summary "
        "(exit status 0) while this module was loading",
        "Check incomplete: 1 problem.",
    ]


@pytest.mark.slow
def test_a_hang_the_guard_cannot_stop_ends_at_the_timeout_with_what_it_started(
    game: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    pid_file = tmp_path / "sleep.pid"
    write(
        game,
        "content/commands/waits.py",
        f"""
        import subprocess

        # Waiting on a child process: the guard's interrupt never lands in content.
        sleeper = subprocess.Popen(["sleep", "60"])
        open({str(pid_file)!r}, "w").write(str(sleeper.pid))
        sleeper.wait()
        """,
    )
    assert run_check(game, timeout=6) == 1
    out = capfd.readouterr().out.splitlines()
    assert out == [
        "content/commands/waits.py: the check process did not finish in 6 s and was stopped "
        "while this module was loading",
        "Check incomplete: 1 problem.",
    ]
    # What the content started went with the check.
    # A killed process may take a moment to go (a reparented zombie until init reaps it).
    status = Path(f"/proc/{pid_file.read_text()}/status")
    deadline = time.monotonic() + 5
    while _running(status):
        assert time.monotonic() < deadline, f"{status} is still running"
        time.sleep(0.05)


def _running(status: Path) -> bool:
    try:
        return "State:\tZ" not in status.read_text()
    except FileNotFoundError:
        return False


# -- commands -----------------------------------------------------------------------------


def test_a_command_without_a_docstring_or_with_a_capital_name_is_reported(game: Path) -> None:
    path = write(
        game,
        "content/commands/quiet.py",
        """
        from engine.api import Command


        class CmdHush(Command):  # NO DOC
            key = "hush"
            aliases = ("Shh",)

            def run(self, ctx):
                ctx.msg("...")
        """,
    )
    line = line_of(path, "NO DOC")
    assert check(game) == [
        f"content/commands/quiet.py:{line}: command 'hush' has the alias 'Shh', which is not "
        "lowercase (names match in any case; help shows them as written)",
        f"content/commands/quiet.py:{line}: command 'hush' has no help text (a docstring)",
    ]


def test_a_name_another_module_holds_is_refused_at_the_class_that_claims_it(game: Path) -> None:
    path = write(
        game,
        "content/commands/zlook.py",
        '''
        from engine.api import Command


        class CmdGlance(Command):  # CLAIMS LOOK
            """Glance around."""

            key = "glance"
            aliases = ("look",)

            def run(self, ctx):
                ctx.msg("You glance around.")
        ''',
    )
    line = line_of(path, "CLAIMS LOOK")
    assert check(game) == [
        f"content/commands/zlook.py:{line}: 'look' of content.commands.zlook is taken by "
        "'look' of content.commands.general"
    ]


# -- type classes the world stores --------------------------------------------------------


def test_a_stored_type_class_that_does_not_resolve_is_reported_with_its_objects(
    game: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = game / "var" / "mud.sqlite3"
    first, second, _lamp = build_world(
        db,
        ("crystal ball", "content.typeclasses.things.Crystal"),
        ("crystal shard", "content.typeclasses.things.Crystal"),
        ("brass lamp", "content.typeclasses.things.Lamp"),
    )
    problems = check(game)
    assert problems == [
        "var/mud.sqlite3: type class content.typeclasses.things.Crystal "
        f"(2 objects: #{first} crystal ball, #{second} crystal shard) does not load: "
        "LookupError: content.typeclasses.things has no class Crystal"
    ]
    assert main(["--game-dir", str(game), "--db-path", str(db)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == problems[0]
    assert "and 3 type class paths in var/mud.sqlite3 in " in out[-1]
    assert out[-1].endswith(": 1 problem.")
