"""The SQLite store: one file, WAL mode, schema versioned with forward migrations.

Every call is short and synchronous; callers on the event loop run them
through ``asyncio.to_thread`` (see ``Accounts``), so a slow disk delays the
one player waiting for it and never the others.  One connection is shared
under a lock, because sqlite3 connections are not safe for concurrent use.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

#: Forward migrations; the database's ``user_version`` counts those applied.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE accounts (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE COLLATE NOCASE,
        password TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('player', 'builder', 'admin')),
        created REAL NOT NULL
    );
    """,
    """
    CREATE TABLE objects (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('room', 'exit', 'thing', 'character')),
        name TEXT NOT NULL,
        aliases TEXT NOT NULL DEFAULT '[]',
        description TEXT NOT NULL DEFAULT '',
        location INTEGER,
        destination INTEGER,
        typeclass TEXT NOT NULL,
        account_id INTEGER UNIQUE,
        attributes TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX objects_location ON objects (location);
    CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    """
    ALTER TABLE accounts ADD COLUMN settings TEXT NOT NULL DEFAULT '{}';
    """,
]


T = TypeVar("T")


class UnusableDatabase(Exception):
    """The database file cannot serve this server; the message says why, in one line."""


class Store:
    """A SQLite database file, checked and migrated to the latest schema on open.

    Raises ``UnusableDatabase`` when the file is not a database, is corrupt,
    cannot be written, or has a schema newer than this code knows.
    """

    _db: sqlite3.Connection

    def __init__(self, path: str | Path, open_now: bool = True) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        if open_now:
            self.open()

    def open(self) -> None:
        """Connect, check and migrate (a game opens its store once it holds the lock)."""
        path = self.path if str(self.path) != ":memory:" else ":memory:"
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        try:
            self._check()
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self.migrate()
        except sqlite3.Error as exc:
            self._db.close()
            raise UnusableDatabase(f"The database {path} cannot be used: {exc}.") from None
        except UnusableDatabase:
            self._db.close()
            raise

    def _check(self) -> None:
        """Refuse, in one line each, what would fail later and worse."""
        path = self.path
        if str(path) != ":memory:" and path.exists():
            writable = os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)
            if not writable:
                raise UnusableDatabase(
                    f"The database {path} cannot be written (the file or its folder is "
                    "read-only); make it writable, or give the server another --db-path."
                )
        try:
            result = self._db.execute("PRAGMA quick_check").fetchone()[0]
        except sqlite3.OperationalError as exc:
            raise UnusableDatabase(f"The database {path} cannot be opened: {exc}.") from None
        except sqlite3.DatabaseError as exc:
            if "not a database" in str(exc):
                raise UnusableDatabase(f"{path} is not a SQLite database.") from None
            raise UnusableDatabase(
                f"The database {path} is corrupt ({exc}); restore it from a backup."
            ) from None
        if result != "ok":
            found = " ".join(str(result).split())[:200]
            raise UnusableDatabase(
                f"The database {path} is corrupt ({found}); restore it from a backup."
            )
        version = self.version
        if version > len(MIGRATIONS):
            raise UnusableDatabase(
                f"The database {path} has schema version {version}, newer than this "
                f"server knows ({len(MIGRATIONS)}); run the newer server, or restore a backup."
            )
        try:
            # A write that changes nothing: a read-only file fails here, not at
            # the first account or world change.
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(f"PRAGMA user_version = {version}")
            self._db.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise UnusableDatabase(f"The database {path} cannot be written: {exc}.") from None

    @property
    def version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def migrate(self) -> None:
        """Apply every migration newer than the file, each in its own transaction."""
        with self._lock:
            for number, script in enumerate(MIGRATIONS, start=1):
                if self.version >= number:
                    continue
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    for statement in filter(str.strip, script.split(";")):
                        self._db.execute(statement)
                    self._db.execute(f"PRAGMA user_version = {number}")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A short write transaction; committed durably (synchronous=FULL) on exit.

        When it fails, it is rolled back, the ``COMMIT`` included: SQLite may
        leave a transaction open after a commit fails (a full disk, an I/O
        error), and the next ``BEGIN`` would fail on it.  If SQLite rolled it
        back itself, the ``ROLLBACK`` has nothing to do.
        """
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                self._abandon()
                raise

    def _abandon(self) -> None:
        """Roll back the open transaction, if SQLite has not already."""
        if self._db.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")

    def probe(self, room: int = 0) -> None:
        """Raise unless a write can be made durable now, with ``room`` bytes free on the disk.

        After a failed commit (see ``engine.world.durability``): a transaction
        that writes a row and deletes it again, so its pages go to the
        write-ahead log and are synced like any commit, and leaves nothing.
        A small write may still fit where a real commit does not (into the
        log's room from earlier commits), hence the free space asked for too.
        """
        if room and str(self.path) != ":memory:":
            disk = os.statvfs(self.path.parent)
            free = disk.f_bavail * disk.f_frsize
            if free < room:
                raise OSError(errno.ENOSPC, f"{free} bytes free on the disk, {room} needed")
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('hotmud.probe', ?)", ("x" * 512,)
            )
            db.execute("DELETE FROM meta WHERE key = 'hotmud.probe'")

    def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            return fn(self._db)

    @property
    def is_open(self) -> bool:
        return hasattr(self, "_db")

    def close(self) -> None:
        with self._lock:
            if self.is_open:
                self._db.close()
