"""The engine as its users get it: ``pip install <checkout>`` into a fresh virtual environment.

Not editable, outside the checkout: the installed ``hotmud`` makes a game,
serves it, checks and tests it; the installed engine never writes inside
itself nor looks for a game there; and reinstalling it (an upgrade) keeps
the game's folder and its world.  One test, since the install is the slow
part (a wheel built by hatchling, the dependencies from the package index).
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.paths import CODE_ROOT
from engine.testing import MudClient

pytestmark = pytest.mark.slow
PASSWORD = "correct horse"


def run(*args: str | Path, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MUD_", "PYTHON", "VIRTUAL"))}
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env
    )


def tree(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with a digest of its bytes: what a change would show."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def serve(hotmud: Path, game: Path) -> tuple[subprocess.Popen[bytes], int, Path]:
    output = game.parent / "run.out"
    with open(output, "wb") as out:
        process = subprocess.Popen(
            [hotmud, "run", "--port", "0"], cwd=game, stdout=out, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = re.search(r"listening on [\d.]+:(\d+)", output.read_text(errors="replace"))
        if found:
            return process, int(found.group(1)), output
        assert process.poll() is None, output.read_text()
        time.sleep(0.1)
    process.kill()
    raise AssertionError(f"hotmud run did not listen:\n{output.read_text()}")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    assert process.wait(20) == 0


async def test_pip_install_new_run_check_test_and_upgrade(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    assert run(sys.executable, "-m", "venv", venv, cwd=tmp_path).returncode == 0
    pip: list[str | Path] = [venv / "bin" / "python", "-m", "pip", "install"]
    pip.append("--disable-pip-version-check")
    installed = run(*pip, CODE_ROOT, cwd=tmp_path, timeout=600)
    assert installed.returncode == 0, installed.stderr
    assert "!!" not in installed.stderr  # no setuptools warning boxes
    hotmud = venv / "bin" / "hotmud"
    site = next((venv / "lib").glob("python3*/site-packages"))
    engine = site / "engine"
    assert (engine / "starter" / "content" / "commands" / "general.py").is_file()
    assert not (site / "content").exists()  # a game's content is never a package

    version = run(hotmud, "--version", cwd=tmp_path)
    assert re.fullmatch(r"hotmud \d+\.\d+\.\d+\n", version.stdout), version

    # The installed engine never looks for a game in itself, nor writes there.
    empty = tmp_path / "empty"
    empty.mkdir()
    before = tree(engine) | tree(site / "reloader")
    alone = run(venv / "bin" / "python", "-m", "engine", cwd=empty)
    assert alone.returncode != 0
    assert "No game here" in alone.stderr
    assert list(empty.iterdir()) == []

    assert run(hotmud, "new", "mygame", cwd=tmp_path).returncode == 0
    game = tmp_path / "mygame"
    checked = run(hotmud, "check", cwd=game)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = run(hotmud, "test", "-q", cwd=game)
    assert tested.returncode == 0, tested.stdout + tested.stderr

    process, port, output = serve(hotmud, game)
    try:
        client = await MudClient.connect(port)
        await client.create_account("Pat", PASSWORD)
        await client.command("dig Garden = west, east", "Garden")
        # A save under the game's content is live within seconds.
        comms = game / "content" / "commands" / "comms.py"
        comms.write_text(
            comms.read_text()
            + '\n\nclass CmdHum(Command):\n    """Hum a tune."""\n\n    key = "hum"\n\n'
            '    def run(self, ctx: Context) -> None:\n        ctx.msg("You hum along.")\n'
        )
        deadline = time.monotonic() + 10
        while "You hum along." not in await client.command("hum", "> "):
            assert time.monotonic() < deadline, output.read_text()
        client.close()
    finally:
        stop(process)
    after = tree(engine) | tree(site / "reloader")
    assert after == before, "the installed engine changed while it served a game"
    assert (game / "var" / "mud.sqlite3").is_file()
    assert "AUDIT Pat" in (game / "var" / "log" / "hotmud.log").read_text()

    # An upgrade (here: the same checkout reinstalled over it) keeps the game and its world.
    game_files = tree(game / "content") | tree(game / "tests")
    toml = (game / "hotmud.toml").read_text()
    upgraded = run(*pip, "--force-reinstall", "--no-deps", CODE_ROOT, cwd=tmp_path, timeout=600)
    assert upgraded.returncode == 0, upgraded.stderr
    assert tree(game / "content") | tree(game / "tests") == game_files
    assert (game / "hotmud.toml").read_text() == toml
    process, port, output = serve(hotmud, game)
    try:
        client = await MudClient.connect(port)
        await client.log_in("Pat", PASSWORD)
        await client.command("west", "Garden")
        await client.command("hum", "You hum along.")
        client.close()
    finally:
        stop(process)
