"""Module lifecycle hooks: `setup(ctx)` when a version goes live, `teardown(ctx)` as it retires.

Both hooks are optional plain functions in a content module::

    def setup(ctx):
        ctx.every(60, announce_time)      # owned by this version of the module

    def teardown(ctx):
        ...                               # release what setup took

When a module version retires (replaced by a reload, or deleted) its
``teardown`` runs, then every task it owns is cancelled: no timer can keep
running old code.  A hook that raises is logged and reported to builders;
the reload itself stands.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

from engine.guard.guard import ContentFailed, ContentGuard
from engine.guard.tasks import TaskHandle, TaskScheduler
from reloader import exocet

if TYPE_CHECKING:
    from engine.services import GameServices

log = logging.getLogger(__name__)


@dataclass
class ModuleContext:
    """What a lifecycle hook receives: the game, and a scheduler scoped to its module version."""

    #: What content may ask of the running game (``engine.services.GameServices``).
    game: GameServices
    module: ModuleType
    tasks: TaskScheduler

    @property
    def owner(self) -> str:
        return self.module.__name__

    def after(self, delay: float, fn: Callable[..., Any], *args: Any) -> TaskHandle:
        return self.tasks.after(delay, fn, *args, owner=self.owner)

    def every(self, interval: float, fn: Callable[..., Any], *args: Any) -> TaskHandle:
        return self.tasks.every(interval, fn, *args, owner=self.owner)

    def spawn(self, fn: Callable[..., Coroutine[Any, Any, Any]], *args: Any) -> TaskHandle:
        return self.tasks.spawn(fn, *args, owner=self.owner)


def _plain_name(name: str) -> str:
    """``content.x.y`` of a loaded module's unique name (``content.x.y<mark>12``)."""
    return name.split(exocet.GENERATION_MARK, 1)[0].removeprefix("content.")


class Lifecycle:
    """Runs the hooks of module versions as they go live and retire."""

    def __init__(
        self, game: GameServices, tasks: TaskScheduler, guard: ContentGuard | None = None
    ) -> None:
        self.game = game
        self.tasks = tasks
        self.guard = guard if guard is not None else ContentGuard()

    def _hook(self, module: ModuleType, name: str) -> str | None:
        hook = getattr(module, name, None)
        if not callable(hook):
            return None
        shown = f"{name}() of {_plain_name(module.__name__)}"
        try:
            # Atomic and under the budget like all content; what it changes
            # stands or falls with it.
            self.guard.call(shown, hook, ModuleContext(self.game, module, self.tasks))
        except ContentFailed as failure:
            return f"{shown} failed: {failure.line}"
        return None

    def retire(self, modules: Iterable[ModuleType]) -> list[str]:
        """Teardown, then cancel the tasks of each retiring module version."""
        problems = []
        for module in modules:
            problem = self._hook(module, "teardown")
            if problem:
                problems.append(problem)
            self.tasks.retire(module.__name__)
        return problems

    def start(self, modules: Iterable[ModuleType]) -> list[str]:
        """Run ``setup`` of each new module version."""
        return [p for m in modules if (p := self._hook(m, "setup"))]
