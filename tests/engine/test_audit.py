"""The audit trail: one line in ``hotmud.audit`` for every privileged act, and none for a refusal.

Commands run in process (``LocalGame``) with a stand-in for the services
that need a server (accounts, reload, shutdown, restart); account creation,
``grant`` and ``reload`` also run once against a real game over a socket.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from game_helpers import named, room_named

from engine.accounts.account import Account, Role
from engine.audit import audit
from engine.commands.base import Context
from engine.commands.fallback import FallbackReload
from engine.guard.run import run_command
from engine.local import LocalGame, LocalPlayer
from engine.services import Connection
from engine.testing import CommandTestGame

if TYPE_CHECKING:
    from conftest import MakeClient

    from engine.app import Game

RESTARTING = "Restarting: the new engine is starting beside this one."


class Services(CommandTestGame):
    """``ctx.game`` for ``LocalGame`` with the server's services played in memory."""

    def __init__(self, local: LocalGame) -> None:
        super().__init__(local.world, local.registry)
        self.restart_answer = RESTARTING
        self.calls: list[tuple[str, object]] = []

    async def find_account(self, name: str) -> Account | None:
        for session in self.online():
            account = session.account
            if account is not None and account.name.lower() == name.lower():
                # A copy, as the store hands out: the session's own is changed by set_role.
                return Account(account.id, account.name, account.role)
        return None

    async def set_role(self, name: str, role: Role) -> bool:
        for session in self.online():
            if session.account is not None and session.account.name == name:
                changed = session.account.role != role
                session.account.role = role
                return changed
        return False

    async def reload(self, names: list[str] | None = None, force: bool = False) -> None:
        self.calls.append(("reload/force" if force else "reload", names))

    def shutdown(self, message: str = "") -> None:
        self.calls.append(("shutdown", message))

    def restart(self, message: str = "", requester: Connection | None = None) -> str:
        self.calls.append(("restart", message))
        return self.restart_answer


@pytest.fixture
def services(local: LocalGame) -> Services:
    local.services = Services(local)
    return local.services


@pytest.fixture
def lines() -> Iterator[list[str]]:
    """The audit lines logged so far in the test (a live list)."""
    audited: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            level = "" if record.levelno == logging.INFO else f"({record.levelname}) "
            audited.append(level + record.getMessage())

    handler = Collect()
    logger = logging.getLogger("hotmud.audit")
    logger.addHandler(handler)
    yield audited
    logger.removeHandler(handler)


def ref(local: LocalGame, name: str) -> str:
    """``The Market (#3)``: an object as audit lines name it."""
    return f"{name} ({named(local, name).dbref})"


# -- the line itself --------------------------------------------------------------------


def test_one_line_actor_first_at_info_whatever_the_log_level(
    caplog: pytest.LogCaptureFixture,
) -> None:
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.WARNING)  # a quiet --log-level does not hide the audit trail
    try:
        audit("Pat", "granted the builder role to", "Lee")
        audit("Pat", "shut the game down", detail='"back\nsoon\x1b[2J"')
        audit("Pat", "reloaded content by hand", detail="every module")
        logging.getLogger("engine.app").info("not audit, and quiet")
    finally:
        root.setLevel(level)
    records = caplog.records
    assert {r.name for r in records} == {"hotmud.audit"}
    assert [r.levelno for r in records] == [logging.INFO] * 3
    assert [r.getMessage() for r in records] == [
        "AUDIT Pat granted the builder role to Lee.",
        'AUDIT Pat shut the game down: "back\\nsoon\\x1b[2J".',
        "AUDIT Pat reloaded content by hand: every module.",
    ]


# -- admin commands ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after", "audited"),
    [
        ("player", "builder", "AUDIT Alice granted the builder role to Lee."),
        ("builder", "admin", "AUDIT Alice granted the admin role to Lee."),
        ("admin", "player", "AUDIT Alice revoked the admin role from Lee: now a player."),
        ("admin", "builder", "AUDIT Alice revoked the admin role from Lee: now a builder."),
        ("builder", "builder", None),
    ],
)
async def test_grant_and_revoke(
    local: LocalGame,
    services: Services,
    lines: list[str],
    before: str,
    after: str,
    audited: str | None,
) -> None:
    alice = await local.player("Alice")
    lee = await local.player("Lee", Role.parse(before))
    await alice.command(f"grant lee = {after}", f"Lee is now {Role.parse(after).with_article()}.")
    assert lee.session.role is Role.parse(after)
    assert lines == ([audited] if audited else [])


async def test_a_refused_grant_is_not_audited(
    local: LocalGame, services: Services, lines: list[str]
) -> None:
    alice, _ = await local.players("Alice", "Lee")
    await alice.command("grant Alice = player", "You cannot take your own admin role away.")
    await alice.command("grant Nobody = admin", "There is no account Nobody.")
    await alice.command("grant Lee = king", "There is no role king")
    assert lines == []


@pytest.mark.parametrize(
    ("line", "audited"),
    [
        ("shutdown back soon", 'AUDIT Alice shut the game down: "back soon".'),
        ("shutdown", "AUDIT Alice shut the game down."),
    ],
)
async def test_shutdown(
    local: LocalGame, services: Services, lines: list[str], line: str, audited: str
) -> None:
    alice = await local.player("Alice")
    alice.send(line)
    await alice.expect("")
    assert services.calls == [("shutdown", line.removeprefix("shutdown").strip())]
    assert lines == [audited]


async def test_restart_is_audited_once_started_and_not_when_it_cannot_start(
    local: LocalGame, services: Services, lines: list[str]
) -> None:
    alice = await local.player("Alice")
    await alice.command('restart new "spells"', RESTARTING)
    await alice.command("restart", RESTARTING)
    assert lines == [
        'AUDIT Alice started a hot restart: "new \\"spells\\"".',
        "AUDIT Alice started a hot restart.",
    ]
    services.restart_answer = "This game runs without its supervisor, so it cannot restart itself."
    await alice.command("restart", "cannot restart itself")
    assert len(lines) == 2


@pytest.mark.parametrize(
    ("line", "audited"),
    [
        ("reload commands.general", "AUDIT Alice reloaded content by hand: commands.general."),
        ("reload content.commands.items", "AUDIT Alice reloaded content by hand: commands.items."),
        ("reload", "AUDIT Alice reloaded content by hand: every module."),
    ],
)
async def test_reload_by_hand_content_and_fallback(
    local: LocalGame, services: Services, lines: list[str], line: str, audited: str
) -> None:
    alice = await local.player("Alice")
    alice.send(line)
    await alice.expect("")
    assert lines == [audited]
    # The engine's own reload, which answers when content's does not load, says the same.
    lines.clear()
    verb, _, args = line.partition(" ")
    ctx = Context(alice.character, alice.session, services, verb, args)
    await run_command(FallbackReload(), ctx, local.guard)
    assert lines == [audited]
    assert len(services.calls) == 2 and services.calls[0] == services.calls[1]


# -- building commands ------------------------------------------------------------------


async def test_destroy_a_thing_in_a_room(local: LocalGame, lines: list[str]) -> None:
    alice = await local.player("Alice")
    lamp, cellar = ref(local, "brass lamp"), ref(local, "A Damp Cellar")
    await alice.command(f"destroy {named(local, 'brass lamp').dbref}", "Destroyed 1 object")
    assert lines == [f"AUDIT Alice destroyed a {lamp} in {cellar}."]


async def test_destroy_what_another_player_carries_by_force(
    local: LocalGame, lines: list[str]
) -> None:
    alice, lee = await local.players("Alice", "Lee")
    await alice.command("create old sword", "You hold it.")
    await alice.command("give sword = Lee", "You give")
    await lee.expect("sword")
    await alice.command("destroy sword", "type destroy/force sword to destroy it anyway.")
    assert lines == []
    sword, who = ref(local, "old sword"), ref(local, "Lee")
    await alice.command("destroy/force sword", "Destroyed 1 object")
    assert lines == [f"AUDIT Alice destroyed an {sword} carried by {who}, by force."]


async def test_destroy_a_room_with_its_exits(local: LocalGame, lines: list[str]) -> None:
    alice = await local.player("Alice")
    await alice.command("dig Attic = up, down", "back here.")
    square = room_named(local, "The Village Square")
    up, attic = square.find_exit("up"), room_named(local, "Attic")
    down = attic.find_exit("down")
    assert up is not None and down is not None
    await alice.command("destroy Attic", "Destroyed 3 objects")
    assert lines == [
        f"AUDIT Alice destroyed the room Attic ({attic.dbref}), "
        f"with the exit up ({up.dbref}), the exit down ({down.dbref})."
    ]


async def test_destroy_a_players_character(local: LocalGame, lines: list[str]) -> None:
    alice, lee = await local.players("Alice", "Lee")
    await alice.command("destroy Lee", "Lee is in the game now")
    lee.send("quit")
    await lee.expect_closed()
    who, square = ref(local, "Lee"), ref(local, "The Village Square")
    await alice.command("destroy Lee", "type destroy/force Lee to destroy it anyway.")
    assert lines == []
    await alice.command("destroy/force Lee", "Destroyed 1 object")
    assert lines == [f"AUDIT Alice destroyed the character {who} in {square}, by force."]


async def test_teleport_of_another_player_only(local: LocalGame, lines: list[str]) -> None:
    alice, _ = await local.players("Alice", "Lee")
    who, square, market = (
        ref(local, "Lee"),
        ref(local, "The Village Square"),
        ref(local, "The Market"),
    )
    await alice.command("teleport Lee = The Market", "Teleported Lee")
    assert lines == [f"AUDIT Alice teleported {who} from {square} to {market}."]
    await alice.command("teleport The Market", "You teleport to The Market.")
    await alice.command("teleport lamp = here", "Teleported brass lamp")
    await alice.command("teleport nowhere-at-all", "You find no")
    assert len(lines) == 1


async def builder_and_lee(local: LocalGame) -> tuple[LocalPlayer, str]:
    alice, _ = await local.players("Alice", "Lee")
    return alice, ref(local, "Lee")


@pytest.mark.parametrize(
    ("line", "answer", "audited"),
    [
        ("set Lee/hp = 5", "Set hp on Lee", "AUDIT Alice set the attribute hp of {lee} to 5."),
        (
            'set Lee/title = the "Bold"',
            "Set title on Lee",
            'AUDIT Alice set the attribute title of {lee} to "the \\"Bold\\"".',
        ),
        (
            "typeclass Lee = content.typeclasses.characters.Character",
            "now runs",
            "AUDIT Alice changed the type class of {lee} to "
            "content.typeclasses.characters.Character.",
        ),
        (
            "sethome Lee = The Market",
            "home is now",
            "AUDIT Alice set the home of {lee} to {market}.",
        ),
        (
            "sethome Lee",
            "home is the start room again",
            "AUDIT Alice set the home of {lee} to the start room.",
        ),
        (
            "describe Lee = Tall.|/Quiet.",
            "Described Lee",
            'AUDIT Alice described {lee}: "Tall.\\nQuiet.".',
        ),
        (
            "alias Lee = Leo, Lion",
            "now also answers to",
            "AUDIT Alice set the aliases of {lee} to Leo, Lion.",
        ),
        ("alias Lee =", "has no aliases now", "AUDIT Alice set the aliases of {lee} to none."),
    ],
)
async def test_a_builders_change_to_another_players_character(
    local: LocalGame, lines: list[str], line: str, answer: str, audited: str
) -> None:
    alice, lee = await builder_and_lee(local)
    await alice.command(line, answer)
    assert lines == [audited.format(lee=lee, market=ref(local, "The Market"))]


async def test_removing_an_attribute_and_changes_to_oneself_or_things(
    local: LocalGame, lines: list[str]
) -> None:
    alice, lee = await builder_and_lee(local)
    await alice.command("set Lee/hp = 5", "Set hp")
    lines.clear()
    await alice.command("set Lee/hp =", "Removed hp from Lee")
    await alice.command("set Lee/hp =", "has no attribute hp")
    assert lines == [f"AUDIT Alice removed the attribute hp from {lee}."]
    lines.clear()
    for line, answer in [
        ("set me/hp = 5", "Set hp on Alice"),
        ("describe me = Short.", "Described Alice"),
        ("sethome me = The Market", "home is now"),
        ("set statue/heavy = true", "Set heavy"),
        ("describe statue = Grey.", "Described"),
    ]:
        await alice.command(line, answer)
    assert lines == []


# -- against a real game: accounts, roles and reloads through the server's own services --


async def test_accounts_roles_and_reloads_in_a_running_game(
    game: Game, make_client: MakeClient, lines: list[str]
) -> None:
    pat = await make_client()
    await pat.login_new("Pat")
    lee = await make_client()
    await lee.login_new("Lee")
    assert lines == [
        "AUDIT Pat created a new account from 127.0.0.1: an admin.",
        "AUDIT Lee created a new account from 127.0.0.1: a player.",
    ]
    lines.clear()
    await pat.command("grant lee = builder", "Lee is now a builder.")
    await pat.command("grant Lee = builder", "Lee is now a builder.")
    await pat.command("grant Lee = player", "Lee is now a player.")
    await pat.command("grant Pat = player", "You cannot take your own admin role away.")
    # Run in the test's process, the game has no supervisor: a restart is refused.
    await pat.command("restart", "cannot restart itself")
    await pat.command("reload commands.comms", "[reload] ")
    assert lines == [
        "AUDIT Pat granted the builder role to Lee.",
        "AUDIT Pat revoked the builder role from Lee: now a player.",
        "AUDIT Pat reloaded content by hand: commands.comms.",
    ]
