"""The dispatcher: parsing a typed line, resolving its verb, running a command safely."""

from __future__ import annotations

import logging

import pytest

from engine.accounts.account import Role
from engine.commands.base import Command, Context
from engine.commands.dispatch import parse, resolve
from engine.commands.registry import Registry, RegistryError
from engine.guard.run import run_command
from engine.testing import RecordingSession
from engine.world.model import World
from engine.world.objects import Character, Room


class CmdLook(Command):
    """Look around."""

    key = "look"
    aliases = ("l",)

    def run(self, ctx: Context) -> None:
        ctx.msg("You look.")


class CmdSay(Command):
    """Say something."""

    key = "say"

    def run(self, ctx: Context) -> None:
        ctx.msg(f"You say {ctx.args}")


class CmdEmote(Command):
    """Emote."""

    key = "emote"
    aliases = ("pose",)

    def run(self, ctx: Context) -> None:
        ctx.msg(ctx.args)


class CmdGo(Command):
    """Walk."""

    key = "go"

    def run(self, ctx: Context) -> None:
        ctx.msg(f"You go {ctx.args}")


class CmdShutdown(Command):
    """Stop the server."""

    key = "shutdown"
    permission = Role.ADMIN

    def run(self, ctx: Context) -> None:
        ctx.msg("stopping")


class CmdLogs(Command):
    """Shares the prefix 'lo' with look, but only builders may use it."""

    key = "logs"
    permission = Role.BUILDER

    def run(self, ctx: Context) -> None:
        ctx.msg("logs")


@pytest.fixture
def registry() -> Registry:
    registry = Registry()
    registry.replace(
        {
            "content.general": [CmdLook(), CmdSay(), CmdEmote(), CmdGo()],
            "content.admin": [CmdShutdown(), CmdLogs()],
        }
    )
    return registry


@pytest.fixture
def world() -> World:
    world = World()
    square = world.create_room("The Square")
    library = world.create_room("The Library")
    garden = world.create_room("The Garden")
    world.link(square, "north", library, back="south")
    world.open_exit(square, "gate", garden, aliases=("g", "archway"))
    return world


def room(world: World, name: str) -> Room:
    return next(r for r in world.rooms() if r.name == f"The {name.title()}")


# -- parse ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("look", ("look", "")),
        ("LOOK", ("look", "")),
        ("  say   hello   world  ", ("say", "hello   world")),
        ("'hello there", ("say", "hello there")),
        ("' hello", ("say", "hello")),
        ('"hi', ("say", "hi")),
        (":waves happily", ("emote", "waves happily")),
        ("", ("", "")),
        ("   \t ", ("", "")),
    ],
)
def test_parse_splits_verb_and_keeps_argument_spacing(line: str, expected: tuple[str, str]) -> None:
    assert parse(line) == expected


def test_parse_keeps_the_case_of_arguments() -> None:
    assert parse("Say Hello World") == ("say", "Hello World")


# -- resolve -------------------------------------------------------------------


def test_exact_key_resolves(registry: Registry) -> None:
    found = resolve(registry, "say", "hi", Role.PLAYER, None)
    assert isinstance(found.command, CmdSay)
    assert found.args == "hi"
    assert found.error == ""


def test_alias_resolves(registry: Registry) -> None:
    assert isinstance(resolve(registry, "l", "", Role.PLAYER, None).command, CmdLook)
    assert isinstance(resolve(registry, "pose", "x", Role.PLAYER, None).command, CmdEmote)


def test_unique_prefix_resolves(registry: Registry) -> None:
    found = resolve(registry, "lo", "", Role.PLAYER, None)
    assert isinstance(found.command, CmdLook)


def test_prefix_ignores_commands_the_caller_may_not_use(registry: Registry) -> None:
    # For a builder 'lo' could be look or logs; for a player only look.
    assert isinstance(resolve(registry, "lo", "", Role.PLAYER, None).command, CmdLook)
    found = resolve(registry, "lo", "", Role.BUILDER, None)
    assert found.command is None
    assert "could mean" in found.error


def test_ambiguous_prefix_lists_the_candidates(registry: Registry) -> None:
    found = resolve(registry, "lo", "", Role.BUILDER, None)
    assert found.command is None
    assert found.error == "'lo' could mean: logs, look. Type more letters."


def test_a_direction_word_never_runs_a_command_by_prefix(registry: Registry) -> None:
    # 's' is a prefix of say and shutdown, 'e' of emote: directions first.
    for word in ("s", "e", "u", "w", "d", "n", "ne", "sw"):
        found = resolve(registry, word, "", Role.ADMIN, None)
        assert (found.command, found.error) == (None, "You can't go that way."), word
    found = resolve(registry, "west", "", Role.ADMIN, None)
    assert (found.command, found.error) == (None, "You can't go west.")


def test_commands_that_end_or_destroy_never_run_by_prefix() -> None:
    class CmdQuit(Command):
        key = "quit"
        prefix = False

        def run(self, ctx: Context) -> None:
            pass

    registry = Registry()
    registry.replace({"m": [CmdQuit(), CmdLook()]})
    for verb in ("q", "qu", "qui"):
        found = resolve(registry, verb, "", Role.PLAYER, None)
        assert (found.command, found.error) == (None, "Type 'quit' in full to use it."), verb
    assert isinstance(resolve(registry, "quit", "", Role.PLAYER, None).command, CmdQuit)


def test_an_alias_of_a_command_the_caller_may_not_use_is_invisible(registry: Registry) -> None:
    class CmdExamine(Command):
        key = "examine"
        aliases = ("ex",)
        permission = Role.BUILDER

        def run(self, ctx: Context) -> None:
            pass

    registry.replace({"building": [CmdExamine()]})
    found = resolve(registry, "ex", "", Role.PLAYER, None)
    assert found.error == "Unknown command 'ex'. Type 'help' for a list of commands."
    found = resolve(registry, "examine", "", Role.PLAYER, None)
    assert found.error == "You are not allowed to use 'examine'."
    assert isinstance(resolve(registry, "ex", "", Role.BUILDER, None).command, CmdExamine)


def test_switches_follow_the_verb(registry: Registry) -> None:
    found = resolve(registry, "look/brief/all", "here", Role.PLAYER, None)
    assert isinstance(found.command, CmdLook)
    assert (found.args, found.switches) == ("here", ("brief", "all"))


def test_unknown_verb_hints_at_help(registry: Registry) -> None:
    found = resolve(registry, "xyzzy", "", Role.ADMIN, None)
    assert found.command is None
    assert "Unknown command 'xyzzy'" in found.error
    assert "help" in found.error


def test_permission_refusal_says_so(registry: Registry) -> None:
    found = resolve(registry, "shutdown", "now", Role.PLAYER, None)
    assert found.command is None
    assert found.error == "You are not allowed to use 'shutdown'."
    assert isinstance(resolve(registry, "shutdown", "", Role.ADMIN, None).command, CmdShutdown)


def test_exit_name_resolves_to_go(registry: Registry, world: World) -> None:
    found = resolve(registry, "north", "", Role.PLAYER, room(world, "square"))
    assert isinstance(found.command, CmdGo)
    assert found.args == "north"


def test_exit_short_form_and_aliases_resolve_to_go_with_the_exit_name(
    registry: Registry, world: World
) -> None:
    square = room(world, "square")
    for word in ("n", "N", "gate", "g", "archway"):
        found = resolve(registry, word, "", Role.PLAYER, square)
        assert isinstance(found.command, CmdGo), word
        assert found.args == ("north" if word.lower() == "n" else "gate")


def test_exit_beats_a_command_prefix(registry: Registry, world: World) -> None:
    # 's' is a prefix of 'say' for a player, but the library has a south exit.
    found = resolve(registry, "s", "", Role.PLAYER, room(world, "library"))
    assert isinstance(found.command, CmdGo)
    assert found.args == "south"
    # Where there is no such exit, a direction is still not a prefix of say.
    found = resolve(registry, "s", "", Role.PLAYER, room(world, "square"))
    assert (found.command, found.error) == (None, "You can't go that way.")


def test_exact_command_beats_an_exit(world: World) -> None:
    class CmdGate(Command):
        key = "gate"

        def run(self, ctx: Context) -> None:
            pass

    registry = Registry()
    registry.replace({"m": [CmdGate(), CmdGo()]})
    found = resolve(registry, "gate", "", Role.PLAYER, room(world, "square"))
    assert isinstance(found.command, CmdGate)


def test_no_command_may_take_a_direction_so_exits_keep_their_words() -> None:
    class CmdNorth(Command):
        key = "north"

        def run(self, ctx: Context) -> None:
            pass

    class CmdEast(Command):
        key = "eastward"
        aliases = ("e",)

        def run(self, ctx: Context) -> None:
            pass

    registry = Registry()
    for command in (CmdNorth(), CmdEast()):
        with pytest.raises(RegistryError, match="is a direction"):
            registry.replace({"m": [command, CmdGo()]})
    assert registry.commands() == []


def test_exit_without_a_go_command_is_unknown(world: World) -> None:
    registry = Registry()
    registry.replace({"m": [CmdLook()]})
    found = resolve(registry, "north", "", Role.PLAYER, room(world, "square"))
    assert found.command is None
    assert found.error == "You can't go north."


# -- run_command -----------------------------------------------------------------


class Recorder:
    """Stands in for a Session: the one method a command's output goes through."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.role = Role.PLAYER
        self.account = None  # not logged in

    def send(self, text: str, newline: bool = True) -> None:
        self.sent.append(text)


def _context(args: str = "") -> tuple[Context, Recorder]:
    recorder = Recorder()
    caller = Character(None, 1, "Alice")
    ctx = Context(caller=caller, session=recorder, game=None, verb="x", args=args)  # type: ignore[arg-type]
    return ctx, recorder


class CmdBroken(Command):
    key = "broken"

    def run(self, ctx: Context) -> None:
        ctx.msg("before the failure")
        raise ZeroDivisionError("division by zero in content")


class CmdBrokenAsync(Command):
    key = "abroken"

    async def run(self, ctx: Context) -> None:
        raise KeyError("missing in async content")


async def test_run_command_logs_the_exception_and_tells_the_player(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ctx, recorder = _context("some args")
    with caplog.at_level(logging.ERROR, logger="engine.guard.guard"):
        await run_command(CmdBroken(), ctx)
    assert recorder.sent[0] == "before the failure"
    assert recorder.sent[-1] == "That did not work; the builders have been told."
    # The player sees no traceback; the log has it.
    assert "ZeroDivisionError" not in "".join(recorder.sent)
    [record] = [r for r in caplog.records if r.name == "engine.guard.guard"]
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None and record.exc_info[0] is ZeroDivisionError
    assert "broken" in record.getMessage()
    assert "Alice" in record.getMessage()
    assert "division by zero in content" in caplog.text


async def test_run_command_catches_exceptions_of_coroutine_commands(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ctx, recorder = _context()
    with caplog.at_level(logging.ERROR, logger="engine.guard.guard"):
        await run_command(CmdBrokenAsync(), ctx)
    assert recorder.sent == ["That did not work; the builders have been told."]
    assert "missing in async content" in caplog.text


async def test_run_command_awaits_coroutine_commands_and_reports_nothing_on_success(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class CmdAsync(Command):
        key = "async"

        async def run(self, ctx: Context) -> None:
            ctx.msg(f"async ran with {ctx.args}")

    ctx, recorder = _context("xyz")
    await run_command(CmdAsync(), ctx)
    assert recorder.sent == ["async ran with xyz"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


# -- Context ----------------------------------------------------------------------------


def test_context_gives_the_callers_room_and_account(world: World) -> None:
    square = room(world, "square")
    pat = world.create("character", "Pat", location=square, account_id=1)
    assert isinstance(pat, Character)
    session = RecordingSession("Pat")
    ctx = Context(caller=pat, session=session, game=None, verb="x", args="")  # type: ignore[arg-type]
    assert ctx.room is square and ctx.here is square
    assert ctx.account is session.account
    # Nowhere, or put by content inside something that is not a room: no room.
    pat.location = None
    assert ctx.room is None
    pat.location = world.create("thing", "barrel", location=square)
    assert ctx.room is None and ctx.here is not None
    # A command runs only for a player who has logged in.
    ctx, _ = _context()
    with pytest.raises(RuntimeError, match="without being logged in"):
        ctx.account  # noqa: B018 - the property raises
