"""Type classes after a reload: objects move onto the new classes, and builders hear what fails.

After each committed reload the objects whose type class lives in a reloaded
module are moved onto the new class, and ``appearance`` of one object per
reloaded class is tried in a transaction that is rolled back, so a class that
fails is found by the reload's report, not by the next player to look.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from engine.content.guard import ContentFailed, ContentGuard
from engine.world import atomic
from engine.world.model import BrokenTypeclass, World
from engine.world.objects import KINDS, GameObject

log = logging.getLogger(__name__)


class TypeclassWatch:
    """Keeps the world's objects on their live type classes and reports the ones that fail."""

    def __init__(
        self,
        world: World,
        resolve: Callable[[str], type],
        guard: ContentGuard,
        notify: Callable[[str], None],
    ) -> None:
        self.world = world
        self.resolve = resolve
        self.guard = guard
        self.notify = notify
        #: Type class path -> the error last reported for it.
        self._reported: dict[str, str] = {}

    def reloaded(self, modules: list[str]) -> list[str]:
        """Move objects onto the reloaded classes; warnings for the reload's report."""
        self.report(self.world.refresh_paths(modules))
        return self._probe(modules)

    def _probe(self, modules: list[str]) -> list[str]:
        """Try ``appearance`` of one object of each reloaded type class; change nothing."""
        prefixes = tuple(f"{m}." for m in modules)
        samples: dict[str, GameObject] = {}
        for obj in self.world.objects.values():
            path = obj.typeclass
            if path.startswith(prefixes) and path not in samples and path not in self.world.broken:
                samples[path] = obj
        if not samples:
            return []
        looker = next((o for o in self.world.objects.values() if o.kind == "character"), None)
        problems = []
        for path, obj in sorted(samples.items()):
            trial = atomic.begin()  # a trial: whatever the hook changes or says is undone
            try:
                self.guard.call(
                    f"{type(obj).__name__}.appearance",
                    obj.appearance,
                    looker or obj,
                    context=f"trying {obj.dbref} after the reload",
                )
            except ContentFailed as failure:
                problems.append(f"{path} fails in appearance() of {obj.dbref}: {failure.line}")
            finally:
                trial.rollback(keep_caller_text=False)
        return problems

    def report(self, broken: list[BrokenTypeclass]) -> None:
        """Tell builders when a type class path starts or stops failing, once each."""
        now = {b.path: b.error for b in broken}
        for item in broken:
            if self._reported.get(item.path) != item.error:
                ids = ", ".join(f"#{i}" for i in item.objects)
                line = (
                    f"Type class {item.path} does not load ({item.error}); "
                    f"{ids} run the base behaviour of their kind until it does."
                )
                log.warning("%s", line)
                self.notify(line)
        for path in self._reported.keys() - now.keys():
            line = f"Type class {path} loads again; its objects are back on it."
            log.info("%s", line)
            self.notify(line)
        self._reported = now

    def problem(self, path: str, kind: str) -> str | None:
        """Why ``path`` cannot be the type class of a ``kind`` object, or None if it can."""
        try:
            cls = self.resolve(path)
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"
        base = KINDS[kind]
        if not (isinstance(cls, type) and issubclass(cls, base)):
            return (
                f"it is not a {base.__name__} class (it must subclass engine.api.{base.__name__})"
            )
        return None

    def status(self, obj: GameObject) -> str:
        """Whether ``obj``'s type class loads, in a few words for ``examine``."""
        if obj.typeclass in self.world.broken:
            return f"(NOT LOADING: {self.world.broken[obj.typeclass]}; running base behaviour)"
        return "(loaded)"
