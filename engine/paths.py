"""Where the engine's own files are: its code, the starter game it copies, its version.

The engine never looks for a game here and never writes here: a game is a
folder of its own (``engine.game``).  The engine runs either from a source
checkout (the repository: ``engine/``, ``reloader/``, ``content/`` side by
side) or installed by pip, where the starter game is package data inside the
engine package (``engine/starter/content`` and ``engine/starter/tests``,
copied there by the wheel build, see ``pyproject.toml``).
"""

from __future__ import annotations

import subprocess
from importlib import metadata
from pathlib import Path

#: The ``engine`` package's folder.
ENGINE_DIR = Path(__file__).resolve().parent
#: The folder holding the ``engine`` and ``reloader`` packages: a checkout or site-packages.
CODE_ROOT = ENGINE_DIR.parent
#: The source checkout the engine runs from, or None when it is installed.
CHECKOUT: Path | None = CODE_ROOT if (CODE_ROOT / "pyproject.toml").is_file() else None


def starter_content() -> Path:
    """The starter game's ``content/``, which ``hotmud new`` copies and tests play."""
    installed = ENGINE_DIR / "starter" / "content"
    if installed.is_dir():
        return installed
    return CODE_ROOT / "content"


def starter_tests() -> Path:
    """The starter game's own tests, which ``hotmud new`` copies into a game's ``tests/``."""
    installed = ENGINE_DIR / "starter" / "tests"
    if installed.is_dir():
        return installed
    return CODE_ROOT / "tests" / "starter"


def version() -> str:
    """The installed distribution's version, ``0.2.0``."""
    try:
        return metadata.version("hotmud")
    except metadata.PackageNotFoundError:
        return "unknown"


def describe() -> str:
    """The version, and in a checkout ``git describe`` too: what ``status`` shows."""
    if CHECKOUT is None:
        return version()
    try:
        done = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--tags"],
            cwd=CHECKOUT,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return version()
    described = done.stdout.strip()
    return f"{version()} ({described})" if described else version()
