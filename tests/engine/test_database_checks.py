"""A database the server cannot use is refused at start, in one line, with a non-zero exit.

Each case runs ``python -m engine`` as a subprocess on a prepared file:
corrupt, not a database, newer schema, read-only.  Older schemas migrate,
one test per migration.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from game_helpers import run_engine

from engine.accounts.account import Accounts
from engine.accounts.passwords import hash_password
from engine.world.store import MIGRATIONS, Store


def prepared(tmp_path: Path, content_dir: Path) -> Path:
    if not (tmp_path / "content").exists():
        (tmp_path / "content").symlink_to(content_dir)
    return tmp_path / "db.sqlite3"


def refused(tmp_path: Path) -> str:
    # No log file: these are about the database, and a read-only folder refuses that too.
    result = run_engine(tmp_path, "--port", "0", "--no-reload", "--log-file", "")
    assert result.returncode != 0, result.stderr
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1, result.stderr
    return lines[0]


def a_world(path: Path) -> None:
    store = Store(path)
    with store.transaction() as db:
        for n in range(200):
            db.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (f"k{n}", "x" * 200))
    store.close()


def test_a_corrupt_database_is_refused(tmp_path: Path, content_dir: Path) -> None:
    path = prepared(tmp_path, content_dir)
    a_world(path)
    with open(path, "r+b") as handle:  # scribble over the header of a b-tree page
        handle.seek(4096 * 2)
        handle.write(os.urandom(300))
    line = refused(tmp_path)
    assert line.startswith(f"hotmud: The database {path} is corrupt (")
    assert line.endswith("restore it from a backup.")


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path, content_dir: Path) -> None:
    path = prepared(tmp_path, content_dir)
    path.write_text("These are my notes, not a database.\n" * 200)
    assert refused(tmp_path) == f"hotmud: {path} is not a SQLite database."


def test_a_newer_schema_is_refused(tmp_path: Path, content_dir: Path) -> None:
    path = prepared(tmp_path, content_dir)
    a_world(path)
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 99")
    assert refused(tmp_path) == (
        f"hotmud: The database {path} has schema version 99, newer than this server knows "
        f"({len(MIGRATIONS)}); run the newer server, or restore a backup."
    )


def test_a_database_that_cannot_be_written_is_refused(tmp_path: Path, content_dir: Path) -> None:
    disk = tmp_path / "ro"
    disk.mkdir()
    if os.geteuid() == 0:
        if shutil.which("mount") is None:
            pytest.skip("no mount command to make a read-only filesystem")
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)], capture_output=True
        )
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        (disk / "content").symlink_to(content_dir)
        a_world(disk / "db.sqlite3")
        (disk / "db.sqlite3.lock").touch()
        if os.geteuid() == 0:
            subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        else:
            (disk / "db.sqlite3").chmod(0o444)
        line = refused(disk)
        assert line.startswith(f"hotmud: The database {disk / 'db.sqlite3'} cannot be"), line
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", "-l", str(disk)], capture_output=True)


@pytest.mark.parametrize("version", range(len(MIGRATIONS)))
async def test_each_older_schema_migrates_forward_keeping_its_data(
    tmp_path: Path, version: int
) -> None:
    path = tmp_path / "db.sqlite3"
    db = sqlite3.connect(path)
    for script in MIGRATIONS[:version]:
        for statement in filter(str.strip, script.split(";")):
            db.execute(statement)
    db.execute(f"PRAGMA user_version = {version}")
    if version >= 1:
        db.execute(
            "INSERT INTO accounts (name, password, role, created) VALUES (?, ?, ?, ?)",
            ("Elder", hash_password("old secret").encode(), "builder", time.time()),
        )
    db.commit()
    db.close()
    store = Store(path)
    try:
        assert store.version == len(MIGRATIONS)
        if version >= 1:
            account = await Accounts(store).verify("Elder", "old secret")
            assert account is not None and account.settings == {}
    finally:
        store.close()
