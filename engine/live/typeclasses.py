"""Type classes after a reload: objects move onto the new classes, and builders hear what fails.

After each committed reload the objects whose type class lives in a reloaded
module are moved onto the new class, and ``appearance`` of one object per
reloaded class is tried in a transaction that is rolled back, so a class that
fails is found by the reload's report, not by the next player to look.

While a path does not load, its objects are on their kind's stand-in
(``engine.world.objects.Unloaded``): they keep their data and refuse to be
taken, used, moved, entered or passed through, because a missing class must
never loosen the world.  Builders are told which objects (name and ``#id``)
when the path stops loading, and again when one of them refuses someone, at
most once a minute per object, so that a crowd trying the same door does not
flood them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from engine.guard.guard import ContentFailed, ContentGuard
from engine.world import atomic
from engine.world.model import BrokenTypeclass, World
from engine.world.objects import KINDS, GameObject

log = logging.getLogger(__name__)

#: Seconds between two notices to builders about refusals by the same object.
REFUSAL_INTERVAL = 60.0
#: Objects a "does not load" line names before summing up the rest.
NAMED = 10


class TypeclassWatch:
    """Keeps the world's objects on their live type classes and reports the ones that fail."""

    def __init__(
        self,
        world: World,
        resolve: Callable[[str], type],
        guard: ContentGuard,
        notify: Callable[[str], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.world = world
        self.resolve = resolve
        self.guard = guard
        self.notify = notify
        self.clock = clock
        #: Type class path -> the error last reported for it.
        self._reported: dict[str, str] = {}
        #: Object id -> (when builders were last told of its refusals, refusals not told since).
        self._refusals: dict[int, tuple[float, int]] = {}
        # The world's objects call ``refused`` (through the world) when they refuse someone.
        world.on_refused = self.refused

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
        """Tell builders when a type class path starts or stops failing, once each.

        The line names the objects affected (name and ``#id``, the first
        ``NAMED`` of them) and what they refuse meanwhile.
        """
        now = {b.path: b.error for b in broken}
        for item in broken:
            if self._reported.get(item.path) != item.error:
                one = len(item.objects) == 1
                keep = "keeps its data but refuses" if one else "keep their data but refuse"
                line = (
                    f"Type class {item.path} does not load ({item.error}); "
                    f"{self._names(item.objects)} {keep} to be taken, used, moved, "
                    "entered or passed through until it does."
                )
                log.warning("%s", line)
                self.notify(line)
        for path in self._reported.keys() - now.keys():
            line = f"Type class {path} loads again; its objects are back on it."
            log.info("%s", line)
            self.notify(line)
        self._reported = now
        held = {i for item in broken for i in item.objects}
        for obj_id in self._refusals.keys() - held:
            del self._refusals[obj_id]  # back on its class: a new break is told afresh

    def _names(self, ids: tuple[int, ...]) -> str:
        """``stone statue #7, brass lamp #8``; past ``NAMED`` objects, how many more."""
        shown = []
        for obj_id in ids[:NAMED]:
            obj = self.world.get(obj_id)
            shown.append(f"{obj.name} #{obj_id}" if obj is not None else f"#{obj_id}")
        more = len(ids) - len(shown)
        return ", ".join(shown) + (f" and {more} more" if more > 0 else "")

    def refused(self, obj: GameObject, actor: GameObject | None, doing: str) -> None:
        """``obj``, whose type class does not load, refused ``actor`` ``doing``: tell builders.

        At most once every ``REFUSAL_INTERVAL`` seconds per object, with the
        refusals since the last notice counted: every attempt would flood
        builders, and one notice per break would be missed by those who log
        in later.  The player was already told, in one line, by the refusal.
        """
        now = self.clock()
        last, untold = self._refusals.get(obj.id, (None, 0))
        if last is not None and now - last < REFUSAL_INTERVAL:
            self._refusals[obj.id] = (last, untold + 1)
            return
        self._refusals[obj.id] = (now, 0)
        who = f"{actor.name} {actor.dbref}" if actor is not None else "The engine"
        error = self.world.broken.get(obj.typeclass, "it does not resolve")
        line = (
            f"{who} was refused: {doing}, whose type class {obj.typeclass} does not load ({error})."
        )
        if untold:
            line += f" {untold} more refused since the last notice."
        log.warning("%s", line)
        self.notify(line)

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
            return (
                f"(NOT LOADING: {self.world.broken[obj.typeclass]}; refuses to be taken, "
                "used, moved, entered or passed through until it loads)"
            )
        return "(loaded)"
