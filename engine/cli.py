"""The ``hotmud`` command: make a game folder, serve it, check it, test it.

::

    hotmud new DIR      a game folder made from the starter game
    hotmud run [flags]  serve the game folder found from here upwards
    hotmud check        load every content module and check what it declares
    hotmud test [args]  run the game's tests (pytest)
    hotmud --version

A game folder is the nearest folder from the current one upwards that holds
a ``hotmud.toml``, as git finds ``.git``; ``--game DIR`` names one instead.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from engine import paths
from engine.config import GAME_FILE, Config, ConfigError, find_game
from engine.newgame import NewGameError, new_game


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    command = args[0] if args else ""
    rest = args[1:]
    # run and test pass their flags on untouched (to the server, to pytest).
    if command == "run":
        from engine.hot.supervisor import main as serve

        return serve(rest, prog="hotmud run")
    if command == "test":
        return _test(rest)
    parsed = _parser().parse_args(args)
    if parsed.command == "new":
        return _new(Path(parsed.dir))
    if parsed.command == "check":
        return _check(parsed.game)
    _parser().print_help()
    return 0


def _parser() -> argparse.ArgumentParser:
    made = argparse.ArgumentParser(
        prog="hotmud",
        description="HotMUD: a MUD engine whose game content reloads live while players play.",
        epilog="'hotmud run --help' lists every setting of a game.",
    )
    made.add_argument("--version", action="version", version=f"hotmud {paths.version()}")
    commands = made.add_subparsers(dest="command", metavar="COMMAND")
    new = commands.add_parser("new", help="make a game folder from the starter game")
    new.add_argument("dir", metavar="DIR", help="the folder to make (absent or empty)")
    commands.add_parser("run", help="serve the game in this folder (see 'hotmud run --help')")
    check = commands.add_parser(
        "check", help="load every content module and check its commands and type classes"
    )
    check.add_argument("--game", metavar="DIR", help="the game folder (default: found from here)")
    commands.add_parser("test", help="run the game's tests with pytest (arguments go to pytest)")
    return made


def _new(target: Path) -> int:
    try:
        made = new_game(target)
    except NewGameError as exc:
        print(f"hotmud: {exc}", file=sys.stderr)
        return 1
    shown = os.path.relpath(made) if not os.path.relpath(made).startswith("..") else str(made)
    print(
        f"Made a new game in {shown}. Next: 'cd {shown}' and 'hotmud run', then "
        "'telnet 127.0.0.1 4000'. Its README.md says how to change it and test it."
    )
    return 0


def _game_or_complain(given: str | None) -> Path | None:
    """The game folder named or found from here; None after saying there is none."""
    if given:
        folder = Path(given).resolve()
        if (folder / GAME_FILE).is_file():
            return folder
        print(f"hotmud: {given} is not a game folder: it has no {GAME_FILE}.", file=sys.stderr)
        return None
    found = find_game(Path.cwd())
    if found is None:
        print(
            f"hotmud: No game here: this folder and the folders above it have no {GAME_FILE}. "
            "Make a game with 'hotmud new mygame', then 'cd mygame'.",
            file=sys.stderr,
        )
    return found


def _check(given: str | None) -> int:
    """Check the game with its own settings: where its content and database are, its budget."""
    game = _game_or_complain(given)
    if game is None:
        return 2
    from engine.check import run_check

    try:
        config = Config.from_sources(["--game", str(game)])
    except ConfigError as exc:
        print(f"hotmud: {exc}", file=sys.stderr)
        return 2
    budget = config.content_budget if config.content_budget > 0 else 1.0
    return run_check(game, config.content_dir, config.db_path, budget)


def _test(pytest_args: list[str]) -> int:
    """pytest on the game's tests/, in the game folder, with async tests run by pytest-asyncio."""
    game = _game_or_complain(None)
    if game is None:
        return 2
    if not (game / "tests").is_dir():
        print(f"hotmud: {game} has no tests/ folder: there is nothing to test.", file=sys.stderr)
        return 1
    # The tests/ folder unless the arguments name files or folders of their own.
    named = any((game / arg.split("::")[0]).exists() for arg in pytest_args if arg[:1] != "-")
    command = [
        sys.executable, "-m", "pytest",
        "-o", "asyncio_mode=auto",
        "-o", "asyncio_default_fixture_loop_scope=function",
        "-p", "no:cacheprovider",
        *pytest_args,
        *([] if named else ["tests"]),
    ]  # fmt: skip
    # No byte code written: not into the game folder, nor into the installed packages
    # whose pytest plugins the assertion rewriter would otherwise cache.
    return subprocess.call(command, cwd=game, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})


if __name__ == "__main__":
    sys.exit(main())
