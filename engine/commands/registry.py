"""The command registry: commands by name, each tagged with the module that declared it.

A reload replaces every entry of the reloaded modules in one synchronous
step: the change is checked against the tables first, then applied in place
without an ``await`` in between, so a command lookup never sees half of it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import CodeType, ModuleType

from engine.commands.base import Command
from engine.world.model import SHORT_DIRECTIONS

#: Words no command may take: the directions, long and short, which a room's
#: exits answer to.  Every other name a command holds keeps its meaning while
#: it is live: a clash with another module's command refuses the whole batch.
RESERVED = frozenset(SHORT_DIRECTIONS) | frozenset(SHORT_DIRECTIONS.values())


def fingerprint(command: Command) -> tuple[object, ...]:
    """What a command is made of, so a reload reports only commands that changed.

    The code, constants and plain settings of its classes, and the values of
    the module-level names its code uses: a constant (``VERSION = "v2"``), a
    helper function (its code), or a helper module's functions it calls.
    Two versions with the same fingerprint run the same code on the same values.
    """
    parts: list[object] = []
    names: set[str] = set()
    scope: dict[str, object] = {}
    for cls in type(command).__mro__:
        if cls in (Command, object):
            continue
        for name, value in sorted(vars(cls).items()):
            if name in ("__module__", "__dict__", "__weakref__", "__qualname__"):
                continue
            function = getattr(value, "__func__", value)
            code = getattr(function, "__code__", None)
            if isinstance(code, CodeType):
                parts.append((name, _code_shape(code, names)))
                scope = getattr(function, "__globals__", scope)
            elif isinstance(value, _PLAIN):
                parts.append((name, value))
    for name in sorted(names):
        if name in scope:
            parts.append((name, _value_shape(scope[name], names)))
    return tuple(parts)


_PLAIN = (str, int, float, bool, tuple, frozenset, type(None))


def _code_shape(code: CodeType, names: set[str]) -> tuple[object, ...]:
    """The code's bytes and constants (nested code too); adds the names it uses to ``names``."""
    names.update(code.co_names)
    consts = tuple(
        _code_shape(c, names) if isinstance(c, CodeType) else repr(c) for c in code.co_consts
    )
    return (code.co_code, consts, code.co_names, code.co_varnames)


def _value_shape(value: object, names: set[str]) -> object:
    """A module-level value a command uses, as far as it can change its behaviour."""
    if isinstance(value, _PLAIN):
        return repr(value)
    code = getattr(value, "__code__", None)
    if isinstance(code, CodeType):
        return _code_shape(code, set())
    if isinstance(value, ModuleType):
        members = vars(value)
        return tuple(
            (n, _code_shape(c, set()))
            for n in sorted(names)
            if isinstance(c := getattr(members.get(n), "__code__", None), CodeType)
        )
    return type(value).__qualname__


@dataclass(frozen=True)
class RegistryDiff:
    """Command keys a swap added, changed (same key, new code) and removed."""

    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()

    def describe(self) -> str:
        parts = []
        for label, keys in (
            ("added", self.added),
            ("changed", self.changed),
            ("removed", self.removed),
        ):
            if keys:
                parts.append(f"{label} {', '.join(keys)}")
        return "; ".join(parts) or "no commands changed"


@dataclass
class _Tables:
    by_module: dict[str, tuple[Command, ...]] = field(default_factory=dict)
    by_name: dict[str, Command] = field(default_factory=dict)
    module_of: dict[str, str] = field(default_factory=dict)


class RegistryError(Exception):
    """The commands of a batch conflict; nothing was swapped."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


class Registry:
    """Every live command, looked up by key or alias.

    ``fallbacks`` (the engine's own commands) stand behind content's: one
    answers only while no content command has its key, so a game whose
    content failed to load can still be played, fixed and left.
    """

    def __init__(self, fallbacks: Iterable[Command] = (), fallback_module: str = "") -> None:
        self._tables = _Tables()
        self._fallbacks = tuple(fallbacks)
        self._fallback_module = fallback_module
        self._fallback_names = {n.lower(): c for c in self._fallbacks for n in c.names}

    # -- reading ------------------------------------------------------------

    def get(self, name: str) -> Command | None:
        """The command whose key or alias is exactly ``name`` (case-insensitive)."""
        name = name.lower()
        found = self._tables.by_name.get(name)
        if found is None and self._fallback_names:
            fallback = self._fallback_names.get(name)
            if fallback is not None and not self._shadowed(fallback):
                return fallback
        return found

    def _shadowed(self, fallback: Command) -> bool:
        return fallback.key.lower() in self._tables.module_of

    def _standing_fallbacks(self) -> list[Command]:
        return [c for c in self._fallbacks if not self._shadowed(c)]

    def commands(self) -> list[Command]:
        own = [c for cmds in self._tables.by_module.values() for c in cmds]
        return sorted(own + self._standing_fallbacks(), key=lambda c: c.key)

    def module_of(self, command: Command) -> str:
        key = command.key.lower()
        module = self._tables.module_of.get(key)
        if command in self._fallbacks and self._tables.by_name.get(key) is not command:
            return self._fallback_module
        if module is None:
            raise KeyError(command.key)
        return module

    def modules(self) -> list[str]:
        return sorted(self._tables.by_module)

    def starting_with(self, prefix: str) -> list[Command]:
        """Commands with a key or alias starting with ``prefix``, each once."""
        prefix = prefix.lower()
        found: dict[str, Command] = {}
        for name, command in self._tables.by_name.items():
            if name.startswith(prefix):
                found[command.key] = command
        for command in self._standing_fallbacks():
            if command.key not in found and any(n.startswith(prefix) for n in command.names):
                found[command.key] = command
        return [found[key] for key in sorted(found)]

    # -- swapping -------------------------------------------------------------

    def _problems(self, changes: Mapping[str, Sequence[Command]], touched: set[str]) -> list[str]:
        """Name clashes the change would cause, checked without copying any table.

        A name held by a module being replaced or removed is free; so is a
        name no module holds.  Cost grows with what changed, not the game.
        """
        tables = self._tables
        claimed: dict[str, tuple[Command, str]] = {}
        problems: list[str] = []
        for module in sorted(changes):
            for command in changes[module]:
                for name in (n.lower() for n in command.names):
                    if name in RESERVED:
                        problems.append(
                            f"{name!r} of {module} is a direction: exits answer to it, "
                            "so no command may take it"
                        )
                        continue
                    owner = tables.by_name.get(name)
                    owner_module = tables.module_of.get(owner.key.lower()) if owner else None
                    if name in claimed and claimed[name][0] is not command:
                        other, other_module = claimed[name]
                        problems.append(
                            f"{name!r} of {module} is taken by {other.key!r} of {other_module}"
                        )
                    elif owner is not None and owner_module not in touched:
                        problems.append(
                            f"{name!r} of {module} is taken by {owner.key!r} of {owner_module}"
                        )
                    else:
                        claimed[name] = (command, module)
        return problems

    def check(self, changes: Mapping[str, Sequence[Command]], removed: Iterable[str] = ()) -> None:
        """Raise ``RegistryError`` if applying the change would make names clash."""
        problems = self._problems(changes, set(changes) | set(removed))
        if problems:
            raise RegistryError(problems)

    def replace(
        self, changes: Mapping[str, Sequence[Command]], removed: Iterable[str] = ()
    ) -> RegistryDiff:
        """Replace all commands of the ``changes`` modules and drop ``removed`` modules.

        Checked first, then applied in place in one synchronous step: no
        other coroutine can run in between, so no lookup sees half of it.
        On a clash nothing changes.
        """
        touched = set(changes) | set(removed)
        problems = self._problems(changes, touched)
        if problems:
            raise RegistryError(problems)
        tables = self._tables
        before: dict[str, tuple[object, ...]] = {}
        for module in touched:
            for command in tables.by_module.pop(module, ()):
                before[command.key] = fingerprint(command)
                for name in command.names:
                    if tables.by_name.get(name.lower()) is command:
                        del tables.by_name[name.lower()]
                if tables.module_of.get(command.key.lower()) == module:
                    del tables.module_of[command.key.lower()]
        after: dict[str, tuple[object, ...]] = {}
        for module, commands in changes.items():
            if not commands:
                continue
            tables.by_module[module] = tuple(commands)
            for command in commands:
                after[command.key] = fingerprint(command)
                for name in command.names:
                    tables.by_name[name.lower()] = command
                tables.module_of[command.key.lower()] = module
        return RegistryDiff(
            added=tuple(sorted(after.keys() - before.keys())),
            changed=tuple(sorted(k for k in after.keys() & before.keys() if after[k] != before[k])),
            removed=tuple(sorted(before.keys() - after.keys())),
        )
