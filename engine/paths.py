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
#: Whether the engine runs from a source tree (a checkout, an editable install, a copy
#: made by a test) rather than installed into site-packages: only a source tree's
#: engine is edited in place, so only there does a save ask for a hot restart.
FROM_SOURCE = not {"site-packages", "dist-packages"} & set(ENGINE_DIR.parts)


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
    """The version, and in a source tree ``git describe`` too: what ``status`` shows."""
    if not FROM_SOURCE:
        return version()
    try:
        done = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--tags"],
            cwd=CODE_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return version()
    described = done.stdout.strip()
    return f"{version()} ({described})" if described else version()
