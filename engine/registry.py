"""The command registry: commands by name, each tagged with the module that declared it.

A reload replaces every entry of the reloaded modules in one synchronous
step: the new tables are built aside, checked, then swapped in with a single
assignment, so a command lookup never sees half of a reload.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from engine.commands import Command


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
    """Every live command, looked up by key or alias."""

    def __init__(self) -> None:
        self._tables = _Tables()

    # -- reading ------------------------------------------------------------

    def get(self, name: str) -> Command | None:
        """The command whose key or alias is exactly ``name`` (case-insensitive)."""
        return self._tables.by_name.get(name.lower())

    def commands(self) -> list[Command]:
        return sorted(
            (c for cmds in self._tables.by_module.values() for c in cmds), key=lambda c: c.key
        )

    def module_of(self, command: Command) -> str:
        return self._tables.module_of[command.key.lower()]

    def modules(self) -> list[str]:
        return sorted(self._tables.by_module)

    def starting_with(self, prefix: str) -> list[Command]:
        """Commands with a key or alias starting with ``prefix``, each once."""
        prefix = prefix.lower()
        found: dict[str, Command] = {}
        for name, command in self._tables.by_name.items():
            if name.startswith(prefix):
                found[command.key] = command
        return [found[key] for key in sorted(found)]

    # -- swapping -------------------------------------------------------------

    def _build(self, changes: Mapping[str, Sequence[Command]], removed: Iterable[str]) -> _Tables:
        """The tables after the change, built from copies of the current ones.

        Only the touched modules' entries are taken out and put back, so the
        cost of a reload grows with what changed, not with the game's size.
        """
        old = self._tables
        touched = set(changes) | set(removed)
        by_module = dict(old.by_module)
        by_name = dict(old.by_name)
        module_of = dict(old.module_of)
        for module in touched:
            for command in by_module.pop(module, ()):
                for name in command.names:
                    if by_name.get(name.lower()) is command:
                        del by_name[name.lower()]
                if module_of.get(command.key.lower()) == module:
                    del module_of[command.key.lower()]
        problems: list[str] = []
        for module in sorted(changes):
            commands = tuple(changes[module])
            if not commands:
                continue
            by_module[module] = commands
            for command in commands:
                for name in command.names:
                    name = name.lower()
                    owner = by_name.get(name)
                    if owner is not None and owner is not command:
                        problems.append(
                            f"{name!r} of {module} is taken by {owner.key!r} of "
                            f"{module_of[owner.key.lower()]}"
                        )
                        continue
                    by_name[name] = command
                module_of[command.key.lower()] = module
        if problems:
            raise RegistryError(problems)
        return _Tables(by_module=by_module, by_name=by_name, module_of=module_of)

    def check(self, changes: Mapping[str, Sequence[Command]], removed: Iterable[str] = ()) -> None:
        """Raise ``RegistryError`` if applying the change would make names clash."""
        self._build(changes, removed)

    def replace(
        self, changes: Mapping[str, Sequence[Command]], removed: Iterable[str] = ()
    ) -> RegistryDiff:
        """Replace all commands of the ``changes`` modules and drop ``removed`` modules.

        One assignment swaps the tables; on a clash nothing changes.
        """
        removed = list(removed)
        new = self._build(changes, removed)
        touched = set(changes) | set(removed)
        before = {c.key for m in touched for c in self._tables.by_module.get(m, ())}
        after = {c.key for m in touched for c in new.by_module.get(m, ())}
        self._tables = new
        return RegistryDiff(
            added=tuple(sorted(after - before)),
            changed=tuple(sorted(after & before)),
            removed=tuple(sorted(before - after)),
        )
