"""The conversation between connect and play: banner, name, password or new account.

Passwords are read with the client's echo off and never logged; hashing runs
in a thread (see ``Accounts``).
"""

from __future__ import annotations

import logging
import math
import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from engine.accounts.account import Account, NameTaken, normalise_name, valid_name
from engine.accounts.guards import CreationLimiter, LoginGuard
from engine.audit import audit
from engine.world.durability import describe_failure

if TYPE_CHECKING:
    from engine.accounts.account import Accounts
    from engine.config import Config


class LoginLine(Protocol):
    """A connection at the login prompt (``engine.net.session.Session``), as login uses it."""

    #: ``address:port`` of the client.
    peer: str
    #: Where the dialogue stands (``("password", "Pat")``), so a new engine
    #: process can take it up at the same prompt.
    login_stage: tuple[str, str]

    def send(self, text: str, newline: bool = True, *, held: bool = True) -> None: ...

    def prompt(self, text: str = "> ") -> None: ...

    async def readline(self) -> str | None: ...

    async def read_secret(self, prompt: str) -> str | None: ...

    def close(self, message: str | None = None) -> None: ...


log = logging.getLogger(__name__)

BANNER = r"""
  _   _       _   __  __ _   _ ____
 | | | | ___ | |_|  \/  | | | |  _ \
 | |_| |/ _ \| __| |\/| | | | | | | |
 |  _  | (_) | |_| |  | | |_| | |_| |
 |_| |_|\___/ \__|_|  |_|\___/|____/

 Welcome to {name}. This world is rebuilt while you play.
"""


async def login(
    session: LoginLine,
    accounts: Accounts,
    config: Config,
    guard: LoginGuard | None = None,
    creations: CreationLimiter | None = None,
    is_command: Callable[[str], bool] | None = None,
    resume: tuple[str, str] | None = None,
) -> Account | None:
    """Run the login conversation; the account, or None if the client left or failed.

    A name that exists logs in; a new one must pass ``valid_name`` (not a
    word ``is_command`` says the game uses) before it is created.  ``resume``
    takes the dialogue up where another engine process left it
    (``session.login_stage``): at the name, password or new-account prompt.
    """
    stage, name = resume or ("", "")
    if resume is None:
        session.send(BANNER.format(name=config.server_name))
    if stage == "password":
        return await _existing(session, accounts, config, name, guard or LoginGuard(0, 0))
    if stage in ("confirm", "new-password"):
        account = await _create(
            session, accounts, config, name, creations, stage == "new-password", guard
        )
        if account is not None:
            return account
    while True:
        session.login_stage = ("name", "")
        session.prompt("By what name are you known? ")
        line = await session.readline()
        if line is None:
            return None
        name = normalise_name(line)
        if not name:
            continue
        if len(name) <= 40 and await accounts.find(name) is not None:
            return await _existing(session, accounts, config, name, guard or LoginGuard(0, 0))
        problem = valid_name(name, is_command)
        if problem:
            session.send(problem)
            continue
        account = await _create(session, accounts, config, name, creations, guard=guard)
        if account is not None:
            return account


async def _existing(
    session: LoginLine, accounts: Accounts, config: Config, name: str, guard: LoginGuard
) -> Account | None:
    """Ask for the password; failures back off per address and per account."""
    ip = session.peer.rpartition(":")[0]
    session.login_stage = ("password", name)
    for attempt in range(1, config.max_password_tries + 1):
        password = await session.read_secret("Password: ")
        if password is None:
            return None
        # The back-off is slept holding nothing; then one check per account and
        # per address at a time, a failure counted as it ends: parallel connections gain
        # nothing by racing, and the owner's address never queues behind them.
        async with guard.checking(ip, name, lambda wait: _backing_off(session, wait)):
            account = await accounts.verify(name, password)
            if account is not None:
                guard.succeeded(ip, name)
                return account
        log.info("wrong password for %s from %s (attempt %d)", name, session.peer, attempt)
        if attempt < config.max_password_tries:
            session.send("Wrong password.")
    session.close("Wrong password too many times. Goodbye.")
    return None


def _backing_off(session: LoginLine, wait: float) -> None:
    session.send(
        f"Too many failed logins for this account or from your address: "
        f"checking in {math.ceil(wait)} s."
    )


async def _create(
    session: LoginLine,
    accounts: Accounts,
    config: Config,
    name: str,
    creations: CreationLimiter | None = None,
    confirmed: bool = False,
    guard: LoginGuard | None = None,
) -> Account | None:
    """Offer a new account; None sends the player back to the name prompt.

    The address's creation limit counts this one from the offer on
    (``CreationLimiter.reserve``) and gives the place back if it is not made.
    """
    ip = session.peer.rpartition(":")[0]
    if creations is None:
        return await _new_account(session, accounts, config, name, confirmed)
    refusal = creations.reserve(ip)
    if refusal:
        session.send(f"There is nobody called {name}. {refusal}")
        return None
    account = None
    try:
        account = await _new_account(session, accounts, config, name, confirmed)
    finally:
        # Also when the dialogue is cancelled (the login timeout, a shutdown).
        if account is None:
            creations.release(ip)
        else:
            creations.created(ip)
    if account is not None and guard is not None:
        guard.trust(ip, account.name)
    return account


async def _new_account(
    session: LoginLine, accounts: Accounts, config: Config, name: str, confirmed: bool
) -> Account | None:
    """The new-account dialogue: confirm, choose a password, create; None if not made."""
    ip = session.peer.rpartition(":")[0]
    if not confirmed:
        session.login_stage = ("confirm", name)
        session.prompt(f"There is nobody called {name}. Create a new character? (yes/no) ")
        answer = await session.readline()
        if answer is None or not answer.strip().lower().startswith("y"):
            return None
    session.login_stage = ("new-password", name)
    while True:
        password = await session.read_secret(
            f"Choose a password (at least {config.min_password} characters): "
        )
        if password is None:
            return None
        if len(password) < config.min_password:
            session.send(f"That is too short: at least {config.min_password} characters.")
            continue
        again = await session.read_secret("Type it again: ")
        if again is None:
            return None
        if again != password:
            session.send("The two passwords differ. Once more.")
            continue
        break
    try:
        account = await accounts.create(name, password)
    except NameTaken:
        session.send(f"Someone took the name {name} a moment ago. Choose another.")
        return None
    except sqlite3.Error as exc:
        log.error("creating account %s failed: %s", name, exc)
        session.send(
            f"Your character cannot be created right now: {describe_failure(exc)}. "
            "Nothing was saved; please try again later."
        )
        return None
    audit(account.name, "created a new account from", ip, account.role.with_article())
    session.send(f"Welcome, {account.name}! You are {_article(account.role)} {account.role}.")
    return account


def _article(word: object) -> str:
    return "an" if str(word)[:1].lower() in "aeiou" else "a"
