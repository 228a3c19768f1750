"""Accounts in the SQLite store: roles, unique names, persistence, WAL."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.accounts.account import Accounts, NameTaken, Role, valid_name
from engine.accounts.passwords import PasswordHash
from engine.world.store import MIGRATIONS, Store


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "var" / "accounts.sqlite3"


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    store = Store(db_path)
    yield store
    store.close()


async def test_first_account_is_admin_and_the_next_are_players(store: Store) -> None:
    accounts = Accounts(store)
    first = await accounts.create("Alice", "secret1")
    second = await accounts.create("Bob", "secret2")
    third = await accounts.create("Carol", "secret3")
    assert first.role is Role.ADMIN
    assert second.role is Role.PLAYER
    assert third.role is Role.PLAYER
    assert len({first.id, second.id, third.id}) == 3


async def test_a_taken_name_raises_name_taken_whatever_its_case(store: Store) -> None:
    accounts = Accounts(store)
    await accounts.create("Alice", "secret1")
    with pytest.raises(NameTaken):
        await accounts.create("Alice", "other12")
    with pytest.raises(NameTaken):
        await accounts.create("aLICE", "other12")
    # The failed attempts changed nothing.
    assert await accounts.verify("Alice", "secret1") is not None
    assert await accounts.verify("Alice", "other12") is None


async def test_find_and_verify(store: Store) -> None:
    accounts = Accounts(store)
    created = await accounts.create("Alice", "secret1")
    found = await accounts.find("alice")
    assert found == created
    assert await accounts.find("Nobody") is None
    assert await accounts.verify("Alice", "secret1") == created
    assert await accounts.verify("Alice", "secret2") is None
    assert await accounts.verify("Nobody", "secret1") is None


async def test_passwords_are_stored_hashed(store: Store) -> None:
    accounts = Accounts(store)
    await accounts.create("Alice", "plaintext-secret")
    [stored] = store.read(lambda db: [r["password"] for r in db.execute("SELECT * FROM accounts")])
    assert stored.startswith("scrypt$")
    assert "plaintext-secret" not in stored


def stored_cost(store: Store, name: str) -> int:
    [text] = store.read(
        lambda db: [
            r["password"] for r in db.execute("SELECT * FROM accounts WHERE name = ?", (name,))
        ]
    )
    return PasswordHash.decode(text).cost


async def test_new_hashes_take_the_configured_cost(store: Store) -> None:
    await Accounts(store, password_cost=11).create("Alice", "secret1")
    assert stored_cost(store, "Alice") == 11
    assert (
        PasswordHash.decode(
            store.read(lambda db: db.execute("SELECT password FROM accounts").fetchone()[0])
        ).n
        == 2**11
    )


async def test_a_login_hashes_the_password_again_at_a_changed_cost(store: Store) -> None:
    await Accounts(store, password_cost=10).create("Alice", "secret1")
    raised = Accounts(store, password_cost=12)
    # A wrong password changes nothing; the right one is stored at the new cost.
    assert await raised.verify("Alice", "secret2") is None
    assert stored_cost(store, "Alice") == 10
    assert await raised.verify("Alice", "secret1") is not None
    assert stored_cost(store, "Alice") == 12
    # Both the new cost and the old accounts' passwords keep working, either way.
    assert await Accounts(store, password_cost=10).verify("Alice", "secret1") is not None
    assert stored_cost(store, "Alice") == 10


async def test_accounts_persist_across_a_reopen(db_path: Path) -> None:
    store = Store(db_path)
    accounts = Accounts(store)
    alice = await accounts.create("Alice", "secret1")
    await accounts.create("Bob", "secret2")
    await accounts.set_role("Bob", Role.BUILDER)
    store.close()

    reopened = Store(db_path)
    try:
        accounts = Accounts(reopened)
        assert await accounts.verify("Alice", "secret1") == alice
        bob = await accounts.find("Bob")
        assert bob is not None and bob.role is Role.BUILDER
        # Still not an empty database: the next account is a player.
        carol = await accounts.create("Carol", "secret3")
        assert carol.role is Role.PLAYER
        assert reopened.version == len(MIGRATIONS)
    finally:
        reopened.close()


def test_the_store_uses_wal_mode(store: Store, db_path: Path) -> None:
    assert store.read(lambda db: db.execute("PRAGMA journal_mode").fetchone()[0]) == "wal"
    # WAL is a property of the file: an unrelated connection sees it too.
    other = sqlite3.connect(db_path)
    try:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        other.close()


async def test_set_role_reports_whether_the_account_exists(store: Store) -> None:
    accounts = Accounts(store)
    await accounts.create("Alice", "secret1")
    assert await accounts.set_role("alice", Role.BUILDER)
    assert not await accounts.set_role("Nobody", Role.BUILDER)
    found = await accounts.find("Alice")
    assert found is not None and found.role is Role.BUILDER


@pytest.mark.parametrize("name", ["Al", "Alice", "O'Brien", "Jean-Luc", "A" * 20])
def test_valid_names(name: str) -> None:
    assert valid_name(name) is None


@pytest.mark.parametrize("name", ["A", "A" * 21, "1abc", "Al ice", "-Al", "Al1ce", "Élise", ""])
def test_invalid_names_are_explained(name: str) -> None:
    assert "2 to 20 letters" in (valid_name(name) or "")
