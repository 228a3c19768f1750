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
import contextlib
import functools
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from engine.guard.guard import ContentFailed, ContentGuard, GuardedCoroutine

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
    """Runs content's timers and tasks, and cancels a module version's tasks when it retires.

    Every call into content goes through ``guard``: a timer callback, and
    each stretch of a task between awaits, is atomic and under the budget,
    and its failures reach builders.
    """

    def __init__(self, guard: ContentGuard | None = None) -> None:
        self._owned: dict[str, set[asyncio.Task[Any]]] = {}
        self.guard = guard if guard is not None else ContentGuard()
        self._previous_factory: Any = None

    def install(self) -> None:
        """Become the running loop's task factory (``factory``), keeping the one before."""
        loop = asyncio.get_running_loop()
        self._previous_factory = loop.get_task_factory()
        loop.set_task_factory(self.factory)

    def uninstall(self) -> None:
        """Give the running loop its task factory back, if this one is still in place."""
        loop = asyncio.get_running_loop()
        if loop.get_task_factory() == self.factory:
            loop.set_task_factory(self._previous_factory)

    def _track(self, coro: Coroutine[Any, Any, Any], owner: str, name: str) -> TaskHandle:
        task = asyncio.get_running_loop().create_task(coro, name=f"{owner}:{name}")
        self.adopt(task, owner)
        return TaskHandle(task, owner)

    def adopt(self, task: asyncio.Task[Any], owner: str) -> None:
        """Make ``task`` belong to ``owner``: it is cancelled when that module version retires."""
        tasks = self._owned.setdefault(owner, set())
        tasks.add(task)

        def forget(done: asyncio.Task[Any]) -> None:
            tasks.discard(done)
            if not tasks and self._owned.get(owner) is tasks:
                del self._owned[owner]
            if done.cancelled():
                return
            error = done.exception()
            # A ContentFailed was reported (and logged) by the guard already.
            if error is not None and not isinstance(error, ContentFailed):
                log.error("task %s failed", done.get_name(), exc_info=error)

        task.add_done_callback(forget)

    async def _call(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        label = f"timer {getattr(fn, '__qualname__', fn)}"
        await self.guard.run(label, fn, *args, context=f"in {label}")

    def after(
        self, delay: float, fn: Callable[..., Any], *args: Any, owner: str | None = None
    ) -> TaskHandle:
        """Call ``fn(*args)`` once, ``delay`` seconds from now."""

        async def later() -> None:
            await asyncio.sleep(delay)
            with contextlib.suppress(ContentFailed):  # told to builders by the guard
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
                except ContentFailed:
                    pass  # told to builders by the guard; the next call may go better
                except Exception:
                    log.exception("repeating task %s failed", getattr(fn, "__qualname__", fn))

        return self._track(repeat(), owner or owner_of(fn), getattr(fn, "__qualname__", "every"))

    def spawn(
        self, fn: Callable[..., Coroutine[Any, Any, Any]], *args: Any, owner: str | None = None
    ) -> TaskHandle:
        """Run the coroutine function ``fn(*args)`` as a background task."""
        name = getattr(fn, "__qualname__", "task")
        guarded = self.guard.awaitable(fn(*args), f"task {name}", context=f"in task {name}")
        return self._track(guarded, owner or owner_of(fn), name)

    def factory(
        self, loop: asyncio.AbstractEventLoop, coro: Any, context: Any = None
    ) -> asyncio.Task[Any]:
        """The event loop's task factory: content's own ``asyncio`` tasks are owned and guarded.

        A coroutine whose code lies in content (``asyncio.create_task``,
        ``ensure_future``, ``gather`` called by content) belongs to the
        module version that defined it, as ``spawn``'s tasks do, and runs
        one guarded stretch per step.  Every other task is left alone.
        """
        if isinstance(coro, GuardedCoroutine):
            return asyncio.Task(coro, loop=loop, context=context)
        code = getattr(coro, "cr_code", None)
        frame = getattr(coro, "cr_frame", None)
        if code is None or frame is None or not code.co_filename.startswith(self.guard.prefix):
            return asyncio.Task(coro, loop=loop, context=context)
        owner = frame.f_globals.get("__name__") or ENGINE_OWNER
        label = f"task {code.co_name}"
        guarded = self.guard.awaitable(coro, label, context=f"in {label}")
        task: asyncio.Task[Any] = asyncio.Task(guarded, loop=loop, context=context)
        self.adopt(task, owner)
        return task

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
