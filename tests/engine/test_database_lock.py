"""One server per database file, whatever name reaches it (``engine.startup.DatabaseLock``).

Real servers (``python -m engine``) for the refusals through a symlink and
hard links; the lock's own rules (a first start, a hot restart's handover,
SQLite undisturbed) in process.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from game_helpers import run_engine

from engine.paths import CODE_ROOT
from engine.startup import DatabaseLock, StartupError
from engine.testing import ServerProcess
from engine.world.store import Store

if TYPE_CHECKING:
    from conftest import Connect


def refusal(db: Path, pid: int, port: int | None = None) -> str:
    where = f"pid {pid}" + (f", port {port}" if port is not None else "")
    return (
        f"The database {db} is in use by another server ({where}); "
        "stop that server first, or give this one another --db-path."
    )


async def test_a_second_server_through_a_symlink_or_a_hard_link_is_refused(
    content_dir: Path, tmp_path: Path, connect: Connect, watchdog: None
) -> None:
    server = ServerProcess(tmp_path, ["--no-reload"])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    db = tmp_path / "db.sqlite3"
    names = {
        "symlink": elsewhere / "linked.sqlite3",
        "hard link": tmp_path / "same.sqlite3",
        "relative path": Path(os.path.relpath(db, CODE_ROOT)),  # the server runs there
    }
    try:
        await asyncio.to_thread(server.start)
        assert server.process is not None
        names["symlink"].symlink_to(db)
        os.link(db, names["hard link"])
        for kind, name in names.items():
            second = await asyncio.to_thread(
                run_engine, tmp_path, "--port", "0", "--db-path", str(name)
            )
            assert second.returncode != 0, (kind, second.stderr)
            line = second.stderr.strip()
            assert line == "hotmud: " + refusal(name, server.process.pid, server.port), kind

        # A hard link in another folder has no note beside it: refused all the same.
        far = elsewhere / "far.sqlite3"
        os.link(db, far)
        second = await asyncio.to_thread(run_engine, tmp_path, "--port", "0", "--db-path", str(far))
        assert second.returncode != 0
        assert second.stderr.strip() == (
            f"hotmud: The database {far} is in use by another server; "
            "stop that server first, or give this one another --db-path."
        )
        # The first server was not disturbed.
        alice = await connect(server.port)
        await alice.login_new("Alice")
        await alice.command("say still here", 'You say, "still here"')
    finally:
        server.stop()
    # A clean stop takes its note away; the lock itself went with the process.
    assert list(tmp_path.glob("hotmud-*.lock")) == []


async def test_of_two_first_starts_at_once_one_serves(
    content_dir: Path, tmp_path: Path, watchdog: None
) -> None:
    db = tmp_path / "fresh" / "db.sqlite3"  # no file yet: the lock makes it
    servers = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "content").symlink_to(content_dir)
        servers.append(ServerProcess(tmp_path / name, ["--no-reload", "--db-path", str(db)]))
    try:
        started = await asyncio.gather(
            *(asyncio.to_thread(server.start) for server in servers), return_exceptions=True
        )
        served = [s for s, result in zip(servers, started, strict=True) if isinstance(result, int)]
        refused = [s for s in servers if s not in served]
        assert len(served) == 1 and len(refused) == 1, started
        assert refused[0].process is not None and refused[0].process.returncode != 0
        assert f"The database {db} is in use by another server" in refused[0].log()
    finally:
        for server in servers:
            server.stop()


def test_two_first_starts_lock_one_file_before_it_exists(tmp_path: Path) -> None:
    db = tmp_path / "new" / "db.sqlite3"
    (tmp_path / "link").symlink_to(tmp_path / "new", target_is_directory=True)
    first, second = DatabaseLock(db), DatabaseLock(tmp_path / "link" / "db.sqlite3")
    first.acquire()
    try:
        assert db.exists() and db.stat().st_size == 0  # created, empty: SQLite's empty database
        with pytest.raises(StartupError) as refused:
            second.acquire()
        assert str(refused.value) == refusal(tmp_path / "link" / "db.sqlite3", os.getpid())
    finally:
        first.release()
    second.acquire()
    second.release()


def test_a_hot_restart_hands_the_lock_over_without_a_gap(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite3"
    old, new, third = DatabaseLock(db), DatabaseLock(db), DatabaseLock(db)
    old.acquire()
    fd = old.hand_over()
    assert fd is not None
    new.adopt(os.dup(fd))  # what send_fds gives the new worker: the same open file
    old.forget()
    with pytest.raises(StartupError, match="in use by another server"):
        third.acquire()
    new.note(4000)
    with pytest.raises(StartupError, match=rf"\(pid {os.getpid()}, port 4000\)"):
        third.acquire()
    new.release()
    third.acquire()
    third.release()


def test_a_worker_of_the_older_engine_hands_over_its_lock_file(tmp_path: Path) -> None:
    # Until now the lock was an flock on "<db>.lock"; a restart into this engine
    # gets that file's descriptor, and the database itself is locked too.
    db = tmp_path / "db.sqlite3"
    legacy = os.open(tmp_path / "db.sqlite3.lock", os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(legacy, fcntl.LOCK_EX | fcntl.LOCK_NB)
    new = DatabaseLock(db)
    new.adopt(legacy)
    with pytest.raises(StartupError, match="in use by another server"):
        DatabaseLock(db).acquire()
    probe = os.open(tmp_path / "db.sqlite3.lock", os.O_RDONLY)
    try:
        with pytest.raises(BlockingIOError):  # an older server is kept out as well
            fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
        new.release()
        fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(probe)


WRITER = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("INSERT INTO meta (key, value) VALUES ('from', 'another process')")
print(db.execute("SELECT value FROM meta WHERE key = 'here'").fetchone()[0])
"""


def test_the_lock_on_the_file_leaves_sqlite_alone(tmp_path: Path) -> None:
    # flock and SQLite's fcntl record locks are separate kinds: the server's
    # store, and a reader or writer in another process, work as without it.
    db = tmp_path / "db.sqlite3"
    lock = DatabaseLock(db)
    lock.acquire()
    try:
        store = Store(db)
        with store.transaction() as conn:
            conn.execute("INSERT INTO meta (key, value) VALUES ('here', 'the server')")
        done = subprocess.run(
            [sys.executable, "-c", WRITER, str(db)], capture_output=True, text=True, timeout=10
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "the server"
        with store.transaction() as conn:
            conn.execute("INSERT INTO meta (key, value) VALUES ('again', 'the server')")
        store.close()
    finally:
        lock.release()
    with sqlite3.connect(db) as conn:
        keys = {row[0] for row in conn.execute("SELECT key FROM meta")}
    assert {"here", "from", "again"} <= keys
