"""Password hashing with ``hashlib.scrypt`` and a per-account salt.

Pure functions: the caller decides where they run.  The login flow runs them
in a worker thread (``asyncio.to_thread``), because one hash costs tens of
milliseconds of CPU on purpose and the event loop must keep serving players.
OpenSSL's scrypt releases the GIL, so hashes in threads really overlap.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass

#: scrypt cost parameters: N=2**14, r=8, p=1 uses 16 MiB and ~40 ms per hash.  N is the
#: ``password_cost`` setting (a power of two); a stored hash keeps the cost that made it.
COST = 14
SCRYPT_N = 2**COST
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
KEY_BYTES = 32


@dataclass(frozen=True)
class PasswordHash:
    """A stored password: the derived key, its salt and the cost that made it."""

    key: bytes
    salt: bytes
    n: int = SCRYPT_N
    r: int = SCRYPT_R
    p: int = SCRYPT_P

    @property
    def cost(self) -> int:
        """N as a power of two: the ``password_cost`` this hash was made with."""
        return self.n.bit_length() - 1

    def encode(self) -> str:
        """``scrypt$n$r$p$salt$key`` (hex), kept in one database column."""
        return f"scrypt${self.n}${self.r}${self.p}${self.salt.hex()}${self.key.hex()}"

    @classmethod
    def decode(cls, text: str) -> PasswordHash:
        scheme, n, r, p, salt, key = text.split("$")
        if scheme != "scrypt":
            raise ValueError(f"unknown password scheme {scheme!r}")
        return cls(bytes.fromhex(key), bytes.fromhex(salt), int(n), int(r), int(p))


def _derive(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt,
        n=n,
        r=r,
        p=p,
        maxmem=256 * n * r * p,
        dklen=KEY_BYTES,
    )


def hash_password(password: str, salt: bytes | None = None, cost: int = COST) -> PasswordHash:
    """Hash ``password`` with a fresh random salt (or ``salt``, for tests), N = 2**cost."""
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    n = 2**cost
    return PasswordHash(_derive(password, salt, n, SCRYPT_R, SCRYPT_P), salt, n)


def verify_password(password: str, stored: PasswordHash) -> bool:
    """Compare in constant time, with the cost the stored hash was made with."""
    key = _derive(password, stored.salt, stored.n, stored.r, stored.p)
    return hmac.compare_digest(key, stored.key)
