"""``hotmud new DIR``: a game folder of one's own, made from the starter game.

A game folder holds everything that is the game's and nothing of the engine:
``content/`` (the starter's, to change at will), ``tests/`` (the starter's
tests, run by ``hotmud test``), ``hotmud.toml`` (every setting, commented),
``.gitignore`` and a short ``README.md``; ``var/`` (the database, the logs)
appears when the game first runs.  The engine is never copied: upgrading it
(``pip install --upgrade``) changes nothing here.

The folder is built beside its destination and renamed into place, so a
failure half-way (a full disk) leaves nothing half-made, and an existing
non-empty folder is refused before anything is written.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from engine.config import GAME_FILE, toml_template
from engine.paths import starter_content, starter_tests


class NewGameError(Exception):
    """Why the folder cannot be made; the message is the one line to print."""


#: What never goes into a new game: byte code and test caches of the starter.
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")

GITIGNORE = """\
# The game's database and logs: they are the game's state, not its source.
var/
__pycache__/
.pytest_cache/
"""

README = """\
# {name}

A game made with HotMUD, served by the `hotmud` command.

## Run it

```sh
hotmud run            # serves this folder on 127.0.0.1:4000 (see hotmud.toml)
telnet 127.0.0.1 4000 # or TinTin++, Mudlet: any MUD client
```

The first account created is an admin. The world and the accounts are kept in
`var/mud.sqlite3`; the log is `var/log/hotmud.log`. Ctrl-C stops the game.

## Change it

Edit the files under `content/` while the game runs: each save goes live within
a fraction of a second, without disconnecting anyone. `content/commands/` holds
the commands, `content/typeclasses/` the behaviour of rooms, exits, things and
characters, and `content/world/starter.py` the world built on the first start.
A save that does not load keeps the old code running, and builders in the game
are told the file and line.

Settings are in `hotmud.toml`; `hotmud run --help` lists every one with its
`MUD_*` environment variable.

## Test it

```sh
hotmud check   # loads every content module and checks every command
hotmud test    # runs the tests in tests/ (pytest)
```

The tests in `tests/` play the game in process, without a server: copy one to
test a command or a type class of your own.
"""


def new_game(target: Path) -> Path:
    """Make a game folder at ``target`` (absent or empty); return its resolved path."""
    target = target.expanduser()
    if target.exists() and not target.is_dir():
        raise NewGameError(f"{target} exists and is not a folder; choose another name.")
    if target.is_dir() and any(target.iterdir()):
        raise NewGameError(f"{target} already exists and is not empty; nothing was changed.")
    parent = target.resolve().parent
    if not parent.is_dir():
        raise NewGameError(f"{parent} does not exist; make it first or choose another place.")
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=parent))
    try:
        _fill(staging, target.resolve().name)
        # rename(2) replaces an empty folder, and nothing else: the check above
        # and this step leave an existing game alone whatever happens between.
        os.rename(staging, target)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise NewGameError(f"{target} could not be made: {exc.strerror or exc}.") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target.resolve()


def _fill(folder: Path, name: str) -> None:
    shutil.copytree(starter_content(), folder / "content", ignore=IGNORED)
    shutil.copytree(starter_tests(), folder / "tests", ignore=IGNORED)
    (folder / GAME_FILE).write_text(toml_template(), encoding="utf-8")
    (folder / ".gitignore").write_text(GITIGNORE, encoding="utf-8")
    (folder / "README.md").write_text(README.format(name=name), encoding="utf-8")
    folder.chmod(0o755)  # mkdtemp makes it private; a game folder is an ordinary one
