"""Timers and background tasks that content starts, owned by the module version that started them.

A task running a function of an old module version would keep that whole
generation alive and keep running old code after a reload.  So every task
content starts goes through this scheduler and belongs to one module version
(by default the module that defined the function); when that version
retires, its tasks are cancelled, and the new version's ``setup`` may start
them again.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from collections.abc import Callable, Coroutine
from typing import Any

log = logging.getLogger(__name__)

ENGINE_OWNER = "engine"


def owner_of(fn: Callable[..., Any]) -> str:
    """The ``__name__`` of the module that defined ``fn`` (a loaded module's unique name)."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    fn = getattr(fn, "__func__", fn)
    return getattr(fn, "__module__", None) or ENGINE_OWNER


class TaskHandle:
    """What ``after``, ``every`` and ``spawn`` return: cancel it to stop the task."""

    def __init__(self, task: asyncio.Task[Any], owner: str) -> None:
        self.task = task
        self.owner = owner

    def cancel(self) -> None:
        self.task.cancel()

    @property
    def done(self) -> bool:
        return self.task.done()


class TaskScheduler:
    """Runs content's timers and tasks, and cancels a module version's tasks when it retires."""

    def __init__(self) -> None:
        self._owned: dict[str, set[asyncio.Task[Any]]] = {}

    def _track(self, coro: Coroutine[Any, Any, Any], owner: str, name: str) -> TaskHandle:
        task = asyncio.get_running_loop().create_task(coro, name=f"{owner}:{name}")
        tasks = self._owned.setdefault(owner, set())
        tasks.add(task)

        def forget(done: asyncio.Task[Any]) -> None:
            tasks.discard(done)
            if not tasks and self._owned.get(owner) is tasks:
                del self._owned[owner]
            if not done.cancelled() and done.exception() is not None:
                log.error("task %s failed", done.get_name(), exc_info=done.exception())

        task.add_done_callback(forget)
        return TaskHandle(task, owner)

    @staticmethod
    async def _call(fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        result = fn(*args)
        if inspect.isawaitable(result):
            await result

    def after(
        self, delay: float, fn: Callable[..., Any], *args: Any, owner: str | None = None
    ) -> TaskHandle:
        """Call ``fn(*args)`` once, ``delay`` seconds from now."""

        async def later() -> None:
            await asyncio.sleep(delay)
            await self._call(fn, args)

        return self._track(later(), owner or owner_of(fn), getattr(fn, "__qualname__", "after"))

    def every(
        self, interval: float, fn: Callable[..., Any], *args: Any, owner: str | None = None
    ) -> TaskHandle:
        """Call ``fn(*args)`` every ``interval`` seconds; a failing call is logged, not fatal."""
        if interval <= 0:
            raise ValueError("interval must be positive")

        async def repeat() -> None:
            while True:
                await asyncio.sleep(interval)
                try:
                    await self._call(fn, args)
                except Exception:
                    log.exception("repeating task %s failed", getattr(fn, "__qualname__", fn))

        return self._track(repeat(), owner or owner_of(fn), getattr(fn, "__qualname__", "every"))

    def spawn(
        self, fn: Callable[..., Coroutine[Any, Any, Any]], *args: Any, owner: str | None = None
    ) -> TaskHandle:
        """Run the coroutine function ``fn(*args)`` as a background task."""
        return self._track(fn(*args), owner or owner_of(fn), getattr(fn, "__qualname__", "task"))

    def owned_by(self, owner: str) -> int:
        return len(self._owned.get(owner, ()))

    def owners(self) -> list[str]:
        return sorted(self._owned)

    def retire(self, owner: str) -> int:
        """Cancel every task of ``owner``; returns how many were running."""
        tasks = self._owned.pop(owner, set())
        for task in tasks:
            task.cancel()
        return len(tasks)

    def retire_all(self) -> int:
        return sum(self.retire(owner) for owner in list(self._owned))
