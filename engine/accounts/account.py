"""Accounts: names, roles and password hashes, persisted in the store.

Every method that hashes or touches the disk is a coroutine that runs its work
in a thread, so that fifty players logging in at once never stall the ones
already playing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sqlite3
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from engine.accounts.passwords import COST, PasswordHash, hash_password, verify_password
from engine.world.store import Store

log = logging.getLogger(__name__)

#: Letters A to Z; one hyphen or apostrophe may join two parts (Jean-Luc, O'Brien).
#: Only A to Z, after NFKC: every player can type every name on any client
#: ("page Pat"), and look-alike letters from other scripts ("Pat" spelt with a
#: Cyrillic a, U+0430) cannot pass for an existing name.
NAME_PATTERN = re.compile(r"^[A-Za-z]+(?:['-][A-Za-z]+)?$")
NAME_LENGTH = (2, 20)
NAME_RULE = (
    "Names are 2 to 20 letters from A to Z, without digits or spaces; one hyphen or "
    "apostrophe may join two parts, as in Jean-Luc or O'Brien."
)
#: Words that mean something else wherever a name is typed.
RESERVED_NAMES = frozenset({"here", "me", "self", "all"})


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

    def with_article(self) -> str:
        """``a player``, ``a builder``, ``an admin``."""
        return f"{'an' if self is Role.ADMIN else 'a'} {self}"


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


def normalise_name(text: str) -> str:
    """A typed name as it is stored and shown: NFKC, trimmed, first letter capital.

    NFKC folds compatibility forms (full-width letters, U+FF21 on, are A to Z); names
    are compared without regard to case (the store's ``COLLATE NOCASE``).
    """
    name = unicodedata.normalize("NFKC", text).strip()
    return name[:1].upper() + name[1:]


def valid_name(name: str, is_command: Callable[[str], bool] | None = None) -> str | None:
    """None if ``name`` (normalised) can be a new account's name, else why not, for the player."""
    low, high = NAME_LENGTH
    if not (low <= len(name) <= high and NAME_PATTERN.match(name)):
        return NAME_RULE
    word = name.lower()
    if word in RESERVED_NAMES:
        return f"'{name}' means something else in the game; choose another name."
    if is_command is not None and is_command(word):
        return f"'{name}' is a word the game uses as a command; choose another name."
    return None


class Accounts:
    """The accounts table, with hashing and I/O kept off the event loop."""

    def __init__(self, store: Store, password_cost: int = COST) -> None:
        self.store = store
        #: scrypt work of new hashes (``password_cost``): N = 2**password_cost.
        self.password_cost = password_cost

    def _row(self, name: str) -> sqlite3.Row | None:
        def one(db: sqlite3.Connection) -> sqlite3.Row | None:
            row: sqlite3.Row | None = db.execute(
                "SELECT * FROM accounts WHERE name = ?", (name,)
            ).fetchone()
            return row

        return self.store.read(one)

    async def get(self, account_id: int) -> Account | None:
        """The account with this id, or None."""

        def one(db: sqlite3.Connection) -> sqlite3.Row | None:
            row: sqlite3.Row | None = db.execute(
                "SELECT * FROM accounts WHERE id = ?", (account_id,)
            ).fetchone()
            return row

        row = await asyncio.to_thread(self.store.read, one)
        return None if row is None else Account.from_row(row)

    async def find(self, name: str) -> Account | None:
        row = await asyncio.to_thread(self._row, name)
        return None if row is None else Account.from_row(row)

    async def verify(self, name: str, password: str) -> Account | None:
        """The account if ``password`` is right, else None; hashing runs in a thread."""

        def check() -> Account | None:
            row = self._row(name)
            if row is None:
                return None
            stored = PasswordHash.decode(row["password"])
            if not verify_password(password, stored):
                return None
            if stored.cost != self.password_cost:
                self._rehash(row["id"], password)
            return Account.from_row(row)

        return await asyncio.to_thread(check)

    def _rehash(self, account_id: int, password: str) -> None:
        """Store the password at today's cost: raising ``password_cost`` reaches every
        account as it logs in (the password is only known then).  A failure to write
        leaves the old hash, which still works: the login goes on."""
        hashed = hash_password(password, cost=self.password_cost).encode()
        try:
            with self.store.transaction() as db:
                db.execute("UPDATE accounts SET password = ? WHERE id = ?", (hashed, account_id))
        except (sqlite3.Error, OSError) as exc:
            log.warning("account %d's password stays at its old cost: %s", account_id, exc)

    async def create(self, name: str, password: str) -> Account:
        """Create an account; the first one on an empty database is an admin."""

        def insert() -> Account:
            hashed = hash_password(password, cost=self.password_cost).encode()
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
