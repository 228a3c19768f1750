"""The command registry: atomic swaps, clash detection, diffs, removed modules."""

from __future__ import annotations

import pytest

from engine.commands.base import Command, Context
from engine.commands.registry import Registry, RegistryDiff, RegistryError


def command(key: str, *aliases: str) -> Command:
    """A fresh command class (a new 'generation') with this key and aliases."""

    def run(self: Command, ctx: Context) -> None:
        ctx.msg(key)

    cls: type[Command] = type(
        f"Cmd{key.title()}", (Command,), {"key": key, "aliases": aliases, "run": run}
    )
    return cls()


@pytest.fixture
def registry() -> Registry:
    registry = Registry()
    registry.replace(
        {
            "content.general": [command("look", "l"), command("say")],
            "content.admin": [command("shutdown")],
        }
    )
    return registry


def snapshot(registry: Registry) -> dict[str, object]:
    names = ["look", "l", "say", "shutdown", "who", "x", "y"]
    return {
        "commands": registry.commands(),
        "modules": registry.modules(),
        "lookup": {n: registry.get(n) for n in names},
    }


def test_lookup_by_key_and_alias_is_case_insensitive(registry: Registry) -> None:
    look = registry.get("look")
    assert look is not None and look.key == "look"
    assert registry.get("L") is look
    assert registry.get("LOOK") is look
    assert registry.get("nothing") is None
    assert registry.module_of(look) == "content.general"


def test_starting_with_lists_each_command_once(registry: Registry) -> None:
    # 'look' matches by key and by its alias 'l': listed once.
    assert [c.key for c in registry.starting_with("l")] == ["look"]
    assert [c.key for c in registry.starting_with("S")] == ["say", "shutdown"]
    assert registry.starting_with("q") == []


def test_a_clash_with_another_module_raises_and_leaves_the_old_tables(registry: Registry) -> None:
    before = snapshot(registry)
    with pytest.raises(RegistryError) as caught:
        # 'l' is look's alias in content.general; 'who' would be new.
        registry.replace({"content.extra": [command("who"), command("x", "l")]})
    assert any("'l'" in p and "content.extra" in p for p in caught.value.problems)
    assert snapshot(registry) == before
    assert registry.get("who") is None
    assert "content.extra" not in registry.modules()


def test_a_failed_batch_swaps_none_of_its_modules(registry: Registry) -> None:
    before = snapshot(registry)
    old_say = registry.get("say")
    with pytest.raises(RegistryError):
        registry.replace(
            {
                # A valid change of general ...
                "content.general": [command("look", "l"), command("say"), command("y")],
                # ... in the same batch as a clash between two new modules.
                "content.one": [command("x")],
                "content.two": [command("x")],
            }
        )
    assert snapshot(registry) == before
    assert registry.get("say") is old_say
    assert registry.get("y") is None


def test_check_raises_like_replace_but_never_swaps(registry: Registry) -> None:
    before = snapshot(registry)
    registry.check({"content.extra": [command("who")]})
    assert registry.get("who") is None
    with pytest.raises(RegistryError):
        registry.check({"content.extra": [command("say")]})
    assert snapshot(registry) == before


def test_a_module_may_take_over_a_name_its_old_version_held(registry: Registry) -> None:
    # Reloading general with 'l' moved from look to a new command is not a clash.
    diff = registry.replace({"content.general": [command("look"), command("list", "l")]})
    assert registry.get("l").key == "list"  # type: ignore[union-attr]
    assert diff.added == ("list",)
    assert diff.removed == ("say",)


def test_replace_reports_added_changed_and_removed(registry: Registry) -> None:
    old_look = registry.get("look")
    new_look = command("look", "l", "glance")
    diff = registry.replace({"content.general": [new_look, command("who")]})
    assert diff == RegistryDiff(added=("who",), changed=("look",), removed=("say",))
    assert diff.describe() == "added who; changed look; removed say"
    assert registry.get("look") is new_look is not old_look
    assert registry.get("l") is new_look
    assert registry.get("say") is None
    # Modules not in the batch are untouched.
    assert registry.get("shutdown") is not None


def test_removed_module_drops_its_commands(registry: Registry) -> None:
    diff = registry.replace({}, removed=["content.admin"])
    assert diff == RegistryDiff(removed=("shutdown",))
    assert registry.get("shutdown") is None
    assert registry.modules() == ["content.general"]
    assert [c.key for c in registry.commands()] == ["look", "say"]


def test_a_module_that_declares_no_commands_is_dropped(registry: Registry) -> None:
    diff = registry.replace({"content.admin": []})
    assert diff.removed == ("shutdown",)
    assert "content.admin" not in registry.modules()


def test_new_module_commands_are_added(registry: Registry) -> None:
    diff = registry.replace({"content.extra": [command("xyzzy", "xy")]})
    assert diff == RegistryDiff(added=("xyzzy",))
    assert registry.get("xy").key == "xyzzy"  # type: ignore[union-attr]
    assert registry.module_of(registry.get("xyzzy")) == "content.extra"  # type: ignore[arg-type]


def test_an_empty_diff_describes_itself() -> None:
    assert RegistryDiff().describe() == "no commands changed"


def test_a_command_whose_code_did_not_change_is_not_reported_changed(registry: Registry) -> None:
    again = registry.replace({"content.general": [command("look", "l"), command("say")]})
    assert again == RegistryDiff()
    assert again.describe() == "no commands changed"
