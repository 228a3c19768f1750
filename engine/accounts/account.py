"""Accounts: names, roles and password hashes, persisted in the store.

Every method that hashes or touches the disk is a coroutine that runs its work
in a thread, so that fifty players logging in at once never stall the ones
already playing.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import time
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from engine.accounts.passwords import PasswordHash, hash_password, verify_password
from engine.world.store import Store

NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z'-]{1,19}$")


class Role(IntEnum):
    """Permission levels, ordered so that ``caller.role >= command.permission`` works."""

    PLAYER = 1
    BUILDER = 2
    ADMIN = 3

    @classmethod
    def parse(cls, text: str) -> Role:
        return cls[text.strip().upper()]

    def __str__(self) -> str:
        return self.name.lower()


@dataclass
class Account:
    id: int
    name: str
    role: Role
    #: Per-account preferences (``colour``: auto, on or off), JSON in the store.
    settings: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Account:
        keys = row.keys()
        settings = json.loads(row["settings"]) if "settings" in keys and row["settings"] else {}
        return cls(row["id"], row["name"], Role.parse(row["role"]), settings)


class NameTaken(Exception):
    """Another account got this name first."""


def valid_name(name: str) -> str | None:
    """None if ``name`` can be an account name, else why not (for the player)."""
    if not NAME_PATTERN.match(name):
        return "Names are 2 to 20 letters (an apostrophe or hyphen may follow the first)."
    return None


class Accounts:
    """The accounts table, with hashing and I/O kept off the event loop."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def _row(self, name: str) -> sqlite3.Row | None:
        def one(db: sqlite3.Connection) -> sqlite3.Row | None:
            row: sqlite3.Row | None = db.execute(
                "SELECT * FROM accounts WHERE name = ?", (name,)
            ).fetchone()
            return row

        return self.store.read(one)

    async def find(self, name: str) -> Account | None:
        row = await asyncio.to_thread(self._row, name)
        return None if row is None else Account.from_row(row)

    async def verify(self, name: str, password: str) -> Account | None:
        """The account if ``password`` is right, else None; hashing runs in a thread."""

        def check() -> Account | None:
            row = self._row(name)
            if row is None:
                return None
            if not verify_password(password, PasswordHash.decode(row["password"])):
                return None
            return Account.from_row(row)

        return await asyncio.to_thread(check)

    async def create(self, name: str, password: str) -> Account:
        """Create an account; the first one on an empty database is an admin."""

        def insert() -> Account:
            hashed = hash_password(password).encode()
            with self.store.transaction() as db:
                if db.execute("SELECT 1 FROM accounts WHERE name = ?", (name,)).fetchone():
                    raise NameTaken(name)
                first = db.execute("SELECT COUNT(*) FROM accounts").fetchone()[0] == 0
                role = Role.ADMIN if first else Role.PLAYER
                cursor = db.execute(
                    "INSERT INTO accounts (name, password, role, created) VALUES (?, ?, ?, ?)",
                    (name, hashed, str(role), time.time()),
                )
                return Account(int(cursor.lastrowid or 0), name, role)

        return await asyncio.to_thread(insert)

    async def all(self) -> list[Account]:
        def every(db: sqlite3.Connection) -> list[sqlite3.Row]:
            return list(db.execute("SELECT * FROM accounts ORDER BY name").fetchall())

        rows = await asyncio.to_thread(self.store.read, every)
        return [Account.from_row(r) for r in rows]

    async def save_settings(self, account: Account) -> None:
        """Store ``account.settings`` (a player's preferences)."""

        def update() -> None:
            with self.store.transaction() as db:
                db.execute(
                    "UPDATE accounts SET settings = ? WHERE id = ?",
                    (json.dumps(account.settings, sort_keys=True), account.id),
                )

        await asyncio.to_thread(update)

    async def set_role(self, name: str, role: Role) -> bool:
        def update() -> bool:
            with self.store.transaction() as db:
                cursor = db.execute(
                    "UPDATE accounts SET role = ? WHERE name = ?", (str(role), name)
                )
                return cursor.rowcount == 1

        return await asyncio.to_thread(update)
