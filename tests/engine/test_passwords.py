"""Password hashing: scrypt with a per-account salt, stored as one text column."""

from __future__ import annotations

import hashlib

import pytest

from engine.accounts.passwords import (
    KEY_BYTES,
    SALT_BYTES,
    PasswordHash,
    hash_password,
    verify_password,
)


def test_the_right_password_verifies_and_a_wrong_one_does_not() -> None:
    stored = hash_password("correct horse")
    assert verify_password("correct horse", stored)
    assert not verify_password("correct hors", stored)
    assert not verify_password("Correct horse", stored)
    assert not verify_password("", stored)


def test_non_ascii_passwords_work() -> None:
    stored = hash_password("pässwörd-密码")
    assert verify_password("pässwörd-密码", stored)
    assert not verify_password("passwort-密码", stored)


def test_each_hash_gets_its_own_salt() -> None:
    first = hash_password("same password")
    second = hash_password("same password")
    assert len(first.salt) == SALT_BYTES
    assert first.salt != second.salt
    assert first.key != second.key
    assert verify_password("same password", first)
    assert verify_password("same password", second)


def test_the_key_is_scrypt_of_the_password_and_salt() -> None:
    salt = bytes(range(SALT_BYTES))
    stored = hash_password("pw", salt=salt)
    expected = hashlib.scrypt(
        b"pw", salt=salt, n=stored.n, r=stored.r, p=stored.p, maxmem=1 << 26, dklen=KEY_BYTES
    )
    assert stored.key == expected
    # The cost is the real one, not a test shortcut.
    assert stored.n >= 2**14


def test_encode_decode_roundtrip() -> None:
    stored = hash_password("roundtrip")
    text = stored.encode()
    assert text.startswith(f"scrypt${stored.n}${stored.r}${stored.p}$")
    assert "roundtrip" not in text
    decoded = PasswordHash.decode(text)
    assert decoded == stored
    assert verify_password("roundtrip", decoded)


def test_verify_uses_the_cost_stored_with_the_hash() -> None:
    # A hash made with other parameters (say, before the cost was raised) still verifies.
    salt = b"0123456789abcdef"
    key = hashlib.scrypt(b"old", salt=salt, n=2**10, r=4, p=1, dklen=KEY_BYTES)
    stored = PasswordHash.decode(f"scrypt${2**10}$4$1${salt.hex()}${key.hex()}")
    assert verify_password("old", stored)
    assert not verify_password("new", stored)


def test_decode_refuses_an_unknown_scheme() -> None:
    with pytest.raises(ValueError, match="unknown password scheme"):
        PasswordHash.decode("md5$1$1$1$00$00")
