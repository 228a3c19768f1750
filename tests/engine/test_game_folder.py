"""A game of one's own: ``hotmud new``, then ``hotmud run``, ``check`` and ``test`` in it.

Each test drives the real ``hotmud`` command of this virtual environment in
a throw-away folder and, where a game is served, plays it over telnet.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.paths import CODE_ROOT
from engine.testing import MudClient

HOTMUD = str(Path(sys.executable).parent / "hotmud")
PASSWORD = "correct horse"


def hotmud(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MUD_")}
    return subprocess.run(
        [HOTMUD, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env
    )


@pytest.fixture
def game(tmp_path: Path) -> Path:
    made = hotmud("new", "mygame", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    return tmp_path / "mygame"


class Served:
    """``hotmud run`` in a game folder, its output in a file, stopped at the end."""

    def __init__(self, folder: Path, *args: str) -> None:
        self.folder = folder
        self.output = folder.parent / "run.out"
        env = {k: v for k, v in os.environ.items() if not k.startswith("MUD_")}
        with open(self.output, "ab") as out:
            self.process = subprocess.Popen(
                [HOTMUD, "run", "--port", "0", *args],
                cwd=folder,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**env, "PYTHONUNBUFFERED": "1"},
            )
        self.port = self._wait_for_port()

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def _wait_for_port(self) -> int:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            found = re.search(r"listening on [\d.]+:(\d+)", self.text())
            if found:
                return int(found.group(1))
            if self.process.poll() is not None:
                raise AssertionError(f"hotmud run ended at start:\n{self.text()}")
            time.sleep(0.05)
        raise AssertionError(f"hotmud run did not listen in 20 s:\n{self.text()}")

    def stop(self, signum: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signum)
            try:
                return self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait()


@pytest.fixture
def serve() -> Iterator[type[Served]]:
    started: list[Served] = []

    class Tracked(Served):
        def __init__(self, folder: Path, *args: str) -> None:
            super().__init__(folder, *args)
            started.append(self)

    yield Tracked
    for served in started:
        served.stop(signal.SIGKILL)


def test_new_makes_a_game_folder(game: Path) -> None:
    names = sorted(p.name for p in game.iterdir())
    assert names == [".gitignore", "README.md", "content", "hotmud.toml", "tests"]
    assert (game / "content" / "commands" / "general.py").is_file()
    assert (game / "tests" / "conftest.py").is_file()
    assert list(game.rglob("__pycache__")) == []
    assert "var/" in (game / ".gitignore").read_text().splitlines()
    readme = (game / "README.md").read_text()
    for needed in ("hotmud run", "hotmud test", "content/"):
        assert needed in readme


def test_new_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    folder = tmp_path / "taken"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    refused = hotmud("new", "taken", cwd=tmp_path)
    assert refused.returncode != 0
    assert refused.stdout == ""
    assert refused.stderr.count("\n") == 1, refused.stderr
    assert "not empty" in refused.stderr
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]  # no staging left behind


def test_new_fills_an_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert hotmud("new", "empty", cwd=tmp_path).returncode == 0
    assert (tmp_path / "empty" / "hotmud.toml").is_file()


def test_version(tmp_path: Path) -> None:
    done = hotmud("--version", cwd=tmp_path)
    assert re.fullmatch(r"hotmud \d+\.\d+\.\d+\n", done.stdout), done.stdout


def test_outside_a_game_run_check_and_test_say_there_is_none(tmp_path: Path) -> None:
    for command in ("run", "check", "test"):
        done = hotmud(command, cwd=tmp_path)
        assert done.returncode != 0
        assert "No game here" in done.stderr, (command, done.stderr)
        assert done.stderr.count("\n") == 1, done.stderr
    assert list(tmp_path.iterdir()) == []  # nothing was written


def test_the_new_games_tests_pass(game: Path) -> None:
    done = hotmud("test", "-q", "-W", "error", cwd=game, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"\d+ passed", done.stdout)


def test_check_passes_on_a_new_game(game: Path) -> None:
    done = hotmud("check", cwd=game, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_typo_in_hotmud_toml_stops_run_in_one_line(game: Path) -> None:
    toml = game / "hotmud.toml"
    toml.write_text(toml.read_text().replace("port = 4000", "prot = 4000"))
    done = hotmud("run", cwd=game, timeout=30)
    assert done.returncode != 0
    assert done.stderr.strip().count("\n") == 0, done.stderr
    assert 'unknown setting "prot" in [server]; did you mean "port"?' in done.stderr
    assert re.search(r"hotmud.toml line \d+", done.stderr)
    assert not (game / "var").exists()


async def test_run_serves_the_game_folder_with_its_database_log_and_live_reload(
    game: Path, serve: type[Served]
) -> None:
    served = serve(game)
    assert f"Serving the game in {game}" in served.text()
    client = await MudClient.connect(served.port)
    try:
        await client.create_account("Pat", PASSWORD)
        await client.command("look", "The Village Square")
        say = game / "content" / "commands" / "comms.py"
        say.write_text(
            say.read_text()
            + '\n\nclass CmdShout(Command):\n    """Shout."""\n\n    key = "shout"\n\n'
            "    def run(self, ctx: Context) -> None:\n"
            '        ctx.msg("Nobody hears you in my game.")\n'
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            client.send("shout")
            answer = await client.expect("\r\n> ")
            if "Nobody hears you in my game." in answer:
                break
        else:
            raise AssertionError(f"the save did not go live:\n{served.text()}")
    finally:
        client.close()
    assert (game / "var" / "mud.sqlite3").is_file()
    log = (game / "var" / "log" / "hotmud.log").read_text()
    assert "listening on" in log
    assert "Reloaded" in log or "reload" in log.lower()
    assert served.stop() == 0


async def test_ctrl_c_tells_players_the_game_is_going_down(game: Path, serve: type[Served]) -> None:
    served = serve(game)
    client = await MudClient.connect(served.port)
    try:
        await client.create_account("Pat", PASSWORD)
        os.kill(served.process.pid, signal.SIGINT)
        await client.expect("The server is shutting down")
    finally:
        client.close()
    assert served.process.wait(15) == 0


def test_make_run_passes_args_and_serves_a_game_made_from_the_starter(tmp_path: Path) -> None:
    game = tmp_path / "var" / "game"
    output = tmp_path / "make.out"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MUD_", "MAKE"))}
    with open(output, "wb") as out:
        process = subprocess.Popen(
            ["make", "--no-print-directory", "run", f"GAME={game}", "ARGS=--port 0 --no-reload"],
            cwd=CODE_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 30
        while "listening on" not in output.read_text() and time.monotonic() < deadline:
            assert process.poll() is None, output.read_text()
            time.sleep(0.1)
        text = output.read_text()
        assert f"Serving the game in {game}" in text, text
        assert "live reload is off" in text  # the ARGS reached the server
        assert re.search(r"listening on [\d.]+:(?!4000\b)\d+", text), text
        assert (game / "hotmud.toml").is_file()
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(15)


async def test_sighup_restarts_the_same_game_and_keeps_the_player(
    game: Path, serve: type[Served]
) -> None:
    served = serve(game)
    client = await MudClient.connect(served.port)
    try:
        await client.create_account("Pat", PASSWORD)
        os.kill(served.process.pid, signal.SIGHUP)
        await client.expect("The game is back, running the new code.", timeout=20)
        await client.command("look", "The Village Square")
    finally:
        client.close()
    assert "hot restart 1 done" in served.text()
    assert served.stop() == 0


async def test_the_log_file_is_rotated_by_size(game: Path, serve: type[Served]) -> None:
    toml = game / "hotmud.toml"
    toml.write_text(
        toml.read_text()
        .replace("# log_max_bytes = 10000000", "log_max_bytes = 600")
        .replace("# log_backups = 5", "log_backups = 2")
    )
    served = serve(game, "--log-level", "DEBUG")
    client = await MudClient.connect(served.port)
    try:
        await client.create_account("Pat", PASSWORD)
        for _ in range(5):
            await client.command("look", "The Village Square")
    finally:
        client.close()
    assert served.stop() == 0
    logs = sorted(p.name for p in (game / "var" / "log").iterdir())
    assert logs == ["hotmud.log", "hotmud.log.1", "hotmud.log.2"]
    assert all((game / "var" / "log" / name).stat().st_size <= 1200 for name in logs)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("def broken(:\n", "content/commands/broken.py:1: SyntaxError: "),
        ("x = 1\nraise RuntimeError('no')\n", "content/commands/broken.py:2: RuntimeError: no"),
    ],
)
def test_check_names_file_and_line_of_what_does_not_load(
    game: Path, source: str, expected: str
) -> None:
    (game / "content" / "commands" / "broken.py").write_text(source)
    done = hotmud("check", cwd=game, timeout=60)
    assert done.returncode == 1
    assert done.stdout.startswith(expected), done.stdout


def test_make_check_checks_the_game_make_run_serves(tmp_path: Path) -> None:
    game = tmp_path / "var" / "game"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MUD_", "MAKE"))}
    done = subprocess.run(
        ["make", "--no-print-directory", "check", f"GAME={game}"],
        cwd=CODE_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no problems" in done.stdout
    assert (game / "hotmud.toml").is_file()  # made from the starter on the way
