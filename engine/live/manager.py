"""Content reaches the engine here, and only here: loaded by the reloader, read by name.

``LiveContent`` turns the reloader's batches into registry swaps: it
collects the commands each new module declares, checks them, and applies the
whole batch in one synchronous step, or none of it.  Every outcome becomes
one line for the log and for the builders in game.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import functools
import inspect
import linecache
import logging
import os
import time
from collections.abc import AsyncGenerator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from engine.accounts.account import Role
from engine.commands.base import Command
from engine.commands.registry import Registry, RegistryDiff, RegistryError
from engine.config import Config
from engine.guard.errors import plain_names
from engine.guard.guard import ContentGuard
from engine.guard.watchdog import WATCHDOG, ContentInterrupted
from engine.live.crashes import CrashMarkers, trial_load
from engine.live.lifecycle import Lifecycle
from engine.live.testgate import TestGate, TestOutcome
from engine.live.versions import ReloadTimes
from engine.world import atomic
from reloader import exocet
from reloader.live import Batch, BatchError, LiveTree, LoadFailure
from reloader.watcher import SourceChanges, watch_sources

log = logging.getLogger(__name__)

PACKAGE = "content"


class ContentTimeout(Exception):
    """A module body held the game past the budget and was stopped: the load fails."""


class ValidationError(Exception):
    """A module loaded but declares something the engine cannot use."""

    def __init__(self, message: str, cls: type | None = None) -> None:
        super().__init__(message)
        #: The class at fault, so the report can point at its file and line.
        self.cls = cls


@dataclass
class ReloadReport:
    """What one reload did, or why it did nothing."""

    modules: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    diff: RegistryDiff = field(default_factory=RegistryDiff)
    failures: list[str] = field(default_factory=list)
    #: Lifecycle hooks that raised; the reload itself stands.
    warnings: list[str] = field(default_factory=list)
    millis: float = 0.0
    #: What the game's tests said before it went live (``12 tests passed in 0.3 s``).
    tested: str = ""
    #: Put live by ``reload/force`` without the game's tests.
    forced: bool = False

    @property
    def ok(self) -> bool:
        return not self.failures

    def describe(self) -> str:
        return plain_names(self._describe())

    def _describe(self) -> str:
        if not self.ok:
            return "Reload failed, the old code keeps running: " + "; ".join(self.failures)
        names = ", ".join(short_name(m) for m in self.modules) or "nothing"
        line = f"Reloaded {names}"
        if self.removed:
            line += f", removed {', '.join(short_name(m) for m in self.removed)}"
        took = self.tested or f"{self.millis:.0f} ms"
        line = f"{line}: {self.diff.describe()} ({took})."
        if self.forced:
            line += " Applied without the tests (reload/force)."
        if self.warnings:
            line += " Warning: " + "; ".join(self.warnings)
        return line


def short_name(module: str) -> str:
    return module.removeprefix(PACKAGE + ".")


def command_classes(module: ModuleType) -> list[type[Command]]:
    """The ``Command`` subclasses ``module`` defines itself (not those it imports)."""
    return [
        value
        for value in list(vars(module).values())
        if isinstance(value, type)
        and issubclass(value, Command)
        and value is not Command
        and value.__module__ == module.__name__
    ]


def declared_commands(module: ModuleType) -> list[Command]:
    """Instances of the ``Command`` subclasses defined in ``module`` itself.

    Classes imported from elsewhere are skipped (they belong to their own
    module), and so are classes without a ``key`` (abstract bases).
    """
    return [_checked(value) for value in command_classes(module) if value.key]


def _checked(cls: type[Command]) -> Command:
    where = f"{cls.__qualname__}"
    if not isinstance(cls.key, str) or not cls.key.strip() or " " in cls.key:
        raise ValidationError(f"{where}.key must be one word, not {cls.key!r}", cls)
    if not isinstance(cls.aliases, tuple | list) or not all(
        isinstance(a, str) and a and " " not in a for a in cls.aliases
    ):
        raise ValidationError(f"{where}.aliases must be a tuple of words, not {cls.aliases!r}", cls)
    if not isinstance(cls.permission, Role):
        raise ValidationError(f"{where}.permission must be a Role, not {cls.permission!r}", cls)
    if cls.run is Command.run:
        raise ValidationError(f"{where} does not define run()", cls)
    try:
        return cls()
    except Exception as exc:
        raise ValidationError(f"{where}() failed: {type(exc).__name__}: {exc}", cls) from exc


class LiveContent:
    """The live content tree and its commands, reloaded on request or on save."""

    def __init__(
        self,
        directory: Path,
        registry: Registry,
        notify: Callable[[str], None],
        step_ms: int = 20,
        guard: ContentGuard | None = None,
        crashes: CrashMarkers | None = None,
        *,
        lifecycle: Lifecycle | None = None,
        on_commit: Callable[[list[str]], list[str]] | None = None,
        times: ReloadTimes | None = None,
        tests: TestGate | None = None,
    ) -> None:
        self.directory = Path(directory).resolve()
        self.guard = guard if guard is not None else ContentGuard(self.directory, budget=0)
        self.crashes = crashes
        self.tree = LiveTree(
            PACKAGE, self.directory, exocet.pep302Mapper, around_exec=self._running_module
        )
        #: Modules that do not load now (their live version, if any, is older): the failure.
        self.broken: dict[str, str] = {}
        #: When a reload brought each module version live.
        self.times = times if times is not None else ReloadTimes()
        self._starting = False
        self.registry = registry
        self.notify = notify
        self.step_ms = step_ms
        self.last_report: ReloadReport | None = None
        #: Called with the names of the modules of every committed batch; returns warnings.
        self.on_commit: Callable[[list[str]], list[str]] = on_commit or (lambda modules: [])
        #: Runs modules' setup/teardown hooks and owns their tasks.  Hooks do not
        #: run during ``load_all``: the game runs ``setup`` once the world is open.
        self.lifecycle = lifecycle
        #: Modules of failed batches, tried again with the next save.
        self._pending: set[str] = set()
        #: Deleted modules whose removal failed (still imported), tried again likewise.
        #: A deleted module stays live while something still imports it; its
        #: removal is retried with every save until it goes.
        self._pending_removed: set[str] = set()
        self._lock = asyncio.Lock()
        #: The game's tests, which every save must pass before it goes live (None: no tests).
        self.tests = tests
        #: Saved modules (changed, removed) waiting for the tests to pass: the live game
        #: runs their old versions meanwhile.  A refused save stays here, and the next
        #: save (of content or of a test) tests them all again.
        self._held: tuple[set[str], set[str]] = (set(), set())
        #: The run of the tests for what is held, then its apply; a newer save replaces it.
        self._testing: asyncio.Task[None] | None = None

    @classmethod
    def for_game(
        cls,
        config: Config,
        registry: Registry,
        notify: Callable[[str], None],
        guard: ContentGuard,
        lifecycle: Lifecycle,
        on_commit: Callable[[list[str]], list[str]],
        times: ReloadTimes,
    ) -> LiveContent:
        """A game's live content: its folder and reload step, the crash markers beside its
        database, and its test gate (``reload_tests``)."""
        return cls(
            config.content_dir,
            registry,
            notify,
            config.reload_step_ms,
            guard=guard,
            crashes=CrashMarkers.beside(config.db_path),
            lifecycle=lifecycle,
            on_commit=on_commit,
            times=times,
            tests=TestGate.for_config(config),
        )

    def module(self, name: str) -> ModuleType | None:
        """The live module ``name`` (``content.`` may be left out)."""
        if not name.startswith(PACKAGE):
            name = f"{PACKAGE}.{name}"
        return self.tree.live.get(name)

    def resolve_class(self, path: str) -> type:
        """The live class a dotted path names (``content.typeclasses.things.Lamp``).

        Raises ``LookupError`` saying why when the module is not live (missing
        or broken) or has no such class.
        """
        module_name, _, class_name = path.rpartition(".")
        if not module_name.startswith(PACKAGE + ".") and module_name != PACKAGE:
            raise LookupError(f"{path} is not inside {PACKAGE}/")
        module = self.tree.live.get(module_name)
        if module is None:
            failure = self._failure_of(module_name)
            raise LookupError(failure or f"module {module_name} is not loaded")
        cls = getattr(module, class_name, None)
        if not isinstance(cls, type):
            raise LookupError(f"{module_name} has no class {class_name}")
        return cls

    def _failure_of(self, module: str) -> str | None:
        report = self.last_report
        if report is None:
            return None
        for failure in report.failures:
            if module.replace(".", "/") in failure:
                return failure
        return None

    def _where(self, failure: LoadFailure) -> str:
        path = failure.path
        if path:
            path = os.path.relpath(path, self.directory.parent)
        where = path or failure.module
        if failure.line is not None:
            where = f"{where}:{failure.line}"
        return f"{where}: {failure.message}"

    # -- applying batches -----------------------------------------------------

    def apply(
        self, changed: Iterable[str], removed: Iterable[str] = (), *, commit: bool = True
    ) -> ReloadReport:
        """Rebuild ``changed`` (and dependents), drop ``removed``; all or nothing.

        Everything that can fail (loading, declaring, name clashes) happens
        before anything is swapped.  Then, in one synchronous step: the old
        versions' ``teardown`` hooks run and their tasks are cancelled, the
        registry and the live tree swap, objects move onto the new classes,
        and the new versions' ``setup`` hooks run.  With ``commit`` false it
        stops before that step: a trial that says whether the batch loads
        (what its module bodies changed in the world is undone).
        """
        started = time.perf_counter()
        removed = set(removed)
        changed = set(changed)
        report = ReloadReport()
        # World changes module bodies make stand or fall with the batch.
        txn = atomic.begin()
        try:
            batch = self.tree.prepare(changed, removed)
            commands = self._commands_of(batch)
            self.registry.check(commands, batch.removed)
        except BatchError as exc:
            txn.rollback()
            report.failures = [self._where(f) for f in exc.failures]
            for failure in exc.failures:
                log.debug("reload failure details:\n%s", failure.details)
                self.broken[failure.module] = self._where(failure)
        except (ValidationError, RegistryError) as exc:
            txn.rollback()
            report.failures = [str(exc)]
            for name in changed:
                self.broken[name] = str(exc)
        except BaseException:
            txn.rollback()
            raise
        else:
            if not commit:
                txn.rollback()
                report.modules = batch.names
                report.removed = sorted(batch.removed)
                report.millis = (time.perf_counter() - started) * 1000
                return report
            txn.commit()
            for name in (*batch.modules, *batch.removed):
                self.broken.pop(name, None)
            if not self._starting:
                now = time.time()
                for name in (*batch.modules, *batch.removed):
                    old = self.tree.live.get(name)
                    if old is not None:
                        self.times.retired(old.__name__)
                for module in batch.modules.values():
                    self.times.went_live(module.__name__, now)
            live = self.tree.live
            retiring = [live[n] for n in (*batch.modules, *batch.removed) if n in live]
            if self.lifecycle is not None and not self._starting:
                report.warnings += self.lifecycle.retire(retiring)
            report.diff = self.registry.replace(commands, batch.removed)
            self.tree.commit(batch)
            report.modules = batch.names
            report.removed = sorted(batch.removed)
            try:
                report.warnings += self.on_commit(batch.names + report.removed)
            except Exception:
                log.exception("after-reload step failed")
            if self.lifecycle is not None and not self._starting:
                report.warnings += self.lifecycle.start(batch.modules.values())
        report.millis = (time.perf_counter() - started) * 1000
        self.last_report = report
        return report

    def broken_lines(self) -> list[str]:
        """What does not load right now, one line per module, for builders."""
        return [self.broken[name] for name in sorted(self.broken)]

    @contextlib.contextmanager
    def _running_module(self, source: exocet.ModuleSource) -> Iterator[None]:
        """Around each module body: the crash marker and the watchdog's budget.

        A body stopped for holding the game raises ``ContentTimeout`` with
        the traceback of the line it was on, so the load fails like any other
        (file:line reported, the old version kept).
        """
        name = source.name
        crashes = self.crashes
        if crashes is not None:
            if crashes.is_skipped(name, source.path):
                raise ImportError(
                    f"{short_name(name)} is skipped: the process ended while it was "
                    "loading; it loads again once its file changes"
                )
            crashes.entering(name, source.path)
        guard = self.guard
        section = (
            WATCHDOG.enter(f"loading {short_name(name)}", guard.budget, guard.prefix)
            if guard.enabled
            else None
        )
        try:
            yield
        except ContentInterrupted as exc:
            held = time.monotonic() - exc.section.started
            raise ContentTimeout(
                f"stopped after {held:.1f} s (the module body held the game)"
            ).with_traceback(exc.__traceback__) from None
        finally:
            if section is not None:
                WATCHDOG.leave(section)
            if crashes is not None:
                crashes.leaving()
        if section is not None and section.interrupted:
            raise ContentTimeout(f"stopped after {section.elapsed:.1f} s (it held the game)")

    def _commands_of(self, batch: Batch) -> dict[str, list[Command]]:
        commands: dict[str, list[Command]] = {}
        for name, module in batch.modules.items():
            try:
                commands[name] = declared_commands(module)
            except ValidationError as exc:
                where = self._defined_at(exc.cls) or short_name(name)
                raise ValidationError(f"{where}: {exc}") from exc
        return commands

    def _defined_at(self, cls: type | None) -> str | None:
        return defined_at(cls, self.directory.parent)

    def apply_saves(
        self, changed: set[str], removed: set[str], *, commit: bool = True
    ) -> ReloadReport:
        """Apply saved files, retrying earlier saves that failed.

        A multi-file edit can arrive as two groups of events, the first of
        which fails on its own (it uses a name the second one adds).  Modules
        of failed batches are therefore kept pending and tried again together
        with the next save; if that combination fails, the new save is tried
        alone, so one broken file never blocks unrelated good saves.  Deleted
        modules whose removal failed are kept pending the same way.  With
        ``commit`` false nothing goes live (``apply``'s trial), but a failure
        is kept pending as any failure is.
        """
        pending = self._pending - removed
        gone = self._pending_removed - changed
        if pending or gone:
            present = self.tree.discover()
            pending &= present
            gone = {n for n in gone if n in self.tree.live and n not in present}
        self._pending = pending
        self._pending_removed = gone
        if pending - changed or gone - removed:
            report = self.apply(changed | pending, removed | gone, commit=commit)
            if report.ok:
                if commit:
                    self._pending = set()
                    self._pending_removed = set()
                return report
        report = self.apply(changed, removed, commit=commit)
        if report.ok:
            if commit:
                self._pending -= changed
                self._pending_removed -= removed
        else:
            self._pending |= changed
            self._pending_removed |= removed
        return report

    def start_hooks(self) -> list[str]:
        """Run ``setup`` of every live module (once, after ``load_all`` and the world's opening)."""
        if self.lifecycle is None:
            return []
        return self.lifecycle.start(list(self.tree.live.values()))

    def retire_hooks(self) -> list[str]:
        """Run ``teardown`` of every live module and cancel its tasks; at most once."""
        lifecycle, self.lifecycle = self.lifecycle, None
        if lifecycle is None:
            return []
        return lifecycle.retire(self.tree.live.values())

    def load_at_start(self, budget: float) -> ReloadReport:
        """Load every module as the game starts, what fails logged, the game served anyway.

        A module that ends the process at import is found in a forked child
        first (``trial_load``), so this process skips it and serves.  Content
        loads before the world opens (the world needs its type classes); the
        modules' setup hooks run later, once it is open.
        """
        if self.crashes is not None:
            self.crashes.recover()
            trial_load(self.load_all, self.crashes, 5.0 + 3 * budget * len(self.tree.discover()))
        report = self.load_all()
        for failure in report.failures:
            log.error("content failed to load: %s", failure)
        commands = len(self.registry.commands())
        log.info("content loaded: %d modules, %d commands", len(self.tree.live), commands)
        return report

    def load_all(self) -> ReloadReport:
        """The first load at start: every module, leaving out broken ones so the game starts.

        A module that fails on its own is left out (and reported); the rest
        load as one batch.  The next good save of a left-out file loads it.
        """
        names = self.tree.discover()
        skipped = self._crashed(names)
        names -= skipped
        self._starting = True
        try:
            report = self.apply(names)
            if not report.ok:
                first_failures = report.failures
                broken = {n for n in names if not self._loads_alone(n)}
                report = self.apply(names - broken)
                report.failures = first_failures + report.failures
                report.removed = sorted(broken)
                self._pending = set(broken)
        finally:
            self._starting = False
        for name in sorted(skipped):
            line = self.broken[name]
            report.failures.append(line)
            self._pending.add(name)
        return report

    def _crashed(self, names: set[str]) -> set[str]:
        """Modules that took the process down while loading and have not changed since."""
        if self.crashes is None:
            return set()
        skipped = set()
        for name in names:
            entry = self.crashes.skipped.get(name)
            if entry is not None and self.crashes.is_skipped(name, entry.get("path")):
                where = os.path.relpath(entry["path"], self.directory.parent)
                self.broken[name] = (
                    f"{where}: the process ended while this module was loading "
                    "(os._exit, a crash or a kill); skipped until the file changes"
                )
                skipped.add(name)
        return skipped

    def _loads_alone(self, name: str) -> bool:
        txn = atomic.begin()  # a trial: whatever the module body changes is undone
        try:
            batch = self.tree.prepare({name})
            self._commands_of(batch)
        except (BatchError, ValidationError):
            return False
        finally:
            txn.rollback()
        return True

    async def reload(
        self, names: Iterable[str] | None = None, *, force: bool = False
    ) -> ReloadReport:
        """A manual reload of ``names`` (every module when None).

        Where the game has tests it goes live once they pass, as a save does.
        ``force`` (``reload/force``) puts it live at once without them,
        together with every save they hold back.
        """
        present = self.tree.discover()
        wanted = present if names is None else set(names)
        unknown = wanted - present - set(self.tree.live)
        if unknown:
            report = ReloadReport(failures=[f"no content module {n}" for n in sorted(unknown)])
            self._announce(report)
            return report
        gated = self.tests is not None and self.tests.active
        if gated and not force:
            self._hold(wanted & present, wanted - present)
            return await self._settled()
        await self._stop_testing()
        async with self._lock:
            held_changed, held_removed = self._held
            changed = (wanted | held_changed) & present
            removed = (wanted - present) | (held_removed - present)
            report = self.apply(changed, removed)
            if report.ok:
                self._held = (set(), set())
            report.forced = gated
        self._announce(report)
        return report

    def _announce(self, report: ReloadReport) -> None:
        line = report.describe()
        if report.ok:
            log.info("%s", line)
        else:
            log.warning("%s", line)
        self.notify(line)

    # -- the tests guard the saves ------------------------------------------------------

    def _hold(self, changed: set[str], removed: set[str]) -> None:
        """Hold saved modules back until the tests pass, and test (again) now."""
        held_changed, held_removed = self._held
        held_changed -= removed
        held_removed -= changed
        held_changed |= changed
        held_removed |= removed
        self._test_again()

    def _test_again(self) -> None:
        """Start a run of the tests for what is held, stopping the one under way."""
        if self._testing is not None:
            self._testing.cancel()
        self._testing = asyncio.get_running_loop().create_task(
            self._test_then_apply(), name="testing saved content"
        )

    async def _stop_testing(self) -> None:
        testing, self._testing = self._testing, None
        if testing is not None and not testing.done():
            testing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await testing

    async def _settled(self) -> ReloadReport:
        """The last report, once no run of the tests is under way (a save may start another)."""
        while self._testing is not None and not self._testing.done():
            await asyncio.wait({self._testing})
        return self.last_report if self.last_report is not None else ReloadReport()

    async def _test_then_apply(self) -> None:
        try:
            await self._gate_held()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("testing saved content crashed")
            self.notify("Reload crashed inside the engine; see the server log.")

    async def _gate_held(self) -> None:
        """What is held goes live if it loads and the tests pass; otherwise builders hear why.

        A save that does not load is refused as it always was (its file and
        line), without a run.  The files are compared before the run and
        just before the swap: what goes live is exactly what was tested.
        """
        gate = self.tests
        assert gate is not None
        present = self.tree.discover()
        changed, removed = self._held[0] & present, self._held[1] - present
        if not changed and not removed:
            self._held = (set(), set())
            return
        if not gate.active:
            # The tests folder went away: what it held back goes live as any save does.
            async with self._lock:
                self._held = (set(), set())
                report = self.apply_saves(changed, removed)
            self._announce(report)
            return
        before = self._files()
        async with self._lock:
            trial = self.apply_saves(changed, removed, commit=False)
        if not trial.ok:
            # Kept pending by apply_saves, tried again with the next save, as ever.
            self._held = (set(), set())
            self._announce(trial)
            return
        outcome = await gate.run()
        if not outcome.ok:
            self._refuse(outcome, gate)
            return
        async with self._lock:
            if self._files() != before:
                # Saved again while the tests ran: that state is tested next.
                asyncio.get_running_loop().call_soon(self._test_again)
                return
            report = self.apply_saves(changed, removed)
            held_changed, held_removed = self._held
            held_changed -= changed
            held_removed -= removed
        report.tested = outcome.summary()
        self._announce(report)

    def _refuse(self, outcome: TestOutcome, gate: TestGate) -> None:
        """Nothing changes in the game; builders read which test failed and why."""
        line = outcome.refusal()
        log.warning("%s (the whole report: %s)", line, gate.output)
        self.notify(line)
        for where, what in outcome.errors():
            self.guard.errors.record(where, what, " (a save held back)", quiet=True)

    def _files(self) -> dict[str, tuple[int, int]]:
        """Every source file of content and of the tests, with its size and time of change."""
        found: dict[str, tuple[int, int]] = {}
        folders = [self.directory]
        if self.tests is not None:
            folders.append(self.tests.tests_dir)
        for folder in folders:
            for root, dirs, files in os.walk(folder):
                dirs[:] = [d for d in dirs if d != "__pycache__" and not d.startswith(".")]
                for name in files:
                    if name.endswith(".py"):
                        path = os.path.join(root, name)
                        with contextlib.suppress(OSError):
                            stat = os.stat(path)
                            found[path] = (stat.st_mtime_ns, stat.st_size)
        return found

    # -- watching ---------------------------------------------------------------

    async def watch(self, stop: asyncio.Event) -> None:
        """Apply every save under the content directory until ``stop`` is set.

        Where the game has tests, each save goes live only once they pass
        (``_gate_held``), and a save of a test tests what is held back again.
        """
        log.info("watching %s for changes", self.directory)
        gate = self.tests
        warming = None
        if gate is not None and gate.active:
            log.info("saves go live once the tests in %s pass", gate.tests_dir)
            warming = asyncio.ensure_future(self._warm(gate))
        try:
            async with contextlib.aclosing(self._saves(stop)) as saves:
                async for kind, changes in saves:
                    try:
                        report = await self._saved(kind, changes)
                    except Exception:
                        # The watcher must outlive any surprise; the old code runs on.
                        log.exception(
                            "reload of %s crashed", sorted(changes.changed | changes.removed)
                        )
                        self.notify("Reload crashed inside the engine; see the server log.")
                        continue
                    if report is not None:
                        self._announce(report)
        finally:
            if warming is not None:
                warming.cancel()
            await self._stop_testing()
            if gate is not None:
                await gate.close()

    async def _saved(self, kind: str, changes: SourceChanges) -> ReloadReport | None:
        """One group of saves: applied now, or held for the tests (None: nothing to say yet)."""
        gated = self.tests is not None and self.tests.active
        if kind == "tests":
            if any(self._held):
                self._test_again()  # a test changed: what it held back may pass now
            return None
        changed, removed, vanished = self._modules_of(changes)
        if gated and vanished & self._held[0]:
            self._held[0].difference_update(vanished)
            if any(self._held):
                self._test_again()
        if not changed and not removed:
            return None
        if gated:
            self._hold(changed, removed)
            return None
        async with self._lock:
            return self.apply_saves(changed, removed)

    async def _warm(self, gate: TestGate) -> None:
        """Start the test runner; say if the content the game started with fails its tests.

        A game loads ``content/`` as it is on disk (there is nothing older to
        run), so a save the tests refused goes live at the next start: the log
        and ``errors`` say so.
        """
        await gate.start()
        failing = gate.failing_at_start
        if not failing:
            return
        outcome = TestOutcome(failures=failing)
        line = outcome.refusal().replace("Not applied, ", "The content the game started with: ", 1)
        log.warning("%s", line)
        self.notify(line)
        for where, what in outcome.errors():
            self.guard.errors.record(
                where, what, " (the content the game started with)", quiet=True
            )

    def _modules_of(self, changes: SourceChanges) -> tuple[set[str], set[str], set[str]]:
        """The modules a group of saves changed, the live ones it removed, and all it removed.

        A deleted file whose module never loaded changes nothing in the game;
        builders are told it is gone, and it is no longer listed as broken.
        """
        changed = {n for p in changes.changed if (n := self.tree.module_name(p))}
        removed: set[str] = set()
        for path in changes.removed:
            name = self.tree.module_name(path)
            if name is None:
                continue
            if path.endswith(".py"):
                removed.add(name)
                gone = {name: path}
            else:
                removed |= self.tree.under(name)
                gone = {
                    n: path if n == name else self._path_of(n)
                    for n in self.broken
                    if n == name or n.startswith(name + ".")
                }
            removed |= set(gone)
            for module, where in sorted(gone.items()):
                if module not in self.tree.live and module not in changed:
                    self._forget_broken(module, where)
        return changed, removed & set(self.tree.live), removed

    def _path_of(self, module: str) -> str:
        return str(self.directory.parent.joinpath(*module.split("."))) + ".py"

    def _forget_broken(self, module: str, path: str) -> None:
        if self.broken.pop(module, None) is None and module not in self._pending:
            return
        self._pending.discard(module)
        shown = os.path.relpath(path, self.directory.parent)
        line = f"{shown} is gone; it had not loaded, so nothing changes."
        log.info("%s", line)
        self.notify(line)

    async def _saves(self, stop: asyncio.Event) -> AsyncGenerator[tuple[str, SourceChanges], None]:
        """Saves under content/ (``"content"``) and under the tests folder (``"tests"``)."""
        queue: asyncio.Queue[tuple[str, SourceChanges] | BaseException | None] = asyncio.Queue()

        async def pump(kind: str, directory: Path) -> None:
            try:
                async for changes in watch_sources(
                    directory, step_ms=self.step_ms, stop_event=stop
                ):
                    queue.put_nowait((kind, changes))
            except Exception as exc:
                if kind == "content":
                    queue.put_nowait(exc)
                else:
                    log.exception("watching %s failed", directory)
            finally:
                if kind == "content":
                    queue.put_nowait(None)

        pumps = [asyncio.ensure_future(pump("content", self.directory))]
        if self.tests is not None and self.tests.active:
            pumps.append(asyncio.ensure_future(pump("tests", self.tests.tests_dir)))
        try:
            while (item := await queue.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            for task in pumps:
                task.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)


def defined_at(cls: type | None, shown_from: Path | str) -> str | None:
    """``content/commands/x.py:12``: where a class is, as load failures say (None: unknown).

    Builders get the file and line of every broken edit, a refused command
    class included.  The line is found in the source that was executed
    (exocet pins it in ``linecache``), not in the file as it is now.
    """
    if cls is None:
        return None
    try:
        path = inspect.getsourcefile(cls)
    except TypeError:
        return None
    if not path:
        return None
    line = _class_lines(path, "".join(linecache.getlines(path))).get(cls.__qualname__)
    if line is None:
        try:  # not in the pinned source: ``inspect`` looks wherever it can
            _lines, index = inspect.findsource(cls)
        except (OSError, TypeError):
            return None
        line = index + 1
    return f"{os.path.relpath(path, shown_from)}:{line}"


@functools.lru_cache(maxsize=128)
def _class_lines(path: str, source: str) -> dict[str, int]:
    """The first line (its first decorator's) of each class in ``source``, by qualified name.

    One parse per file and text: ``inspect.findsource`` parses the whole file
    again for each class it is asked about, which made ``hotmud check`` of a
    game with many commands spend most of its time in ``ast.parse``.
    """
    lines: dict[str, int] = {}
    try:
        tree = ast.parse(source, path)
    except (SyntaxError, ValueError):
        return lines

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                name = prefix + child.name
                first = child.decorator_list[0].lineno if child.decorator_list else child.lineno
                lines.setdefault(name, first)
                visit(child, name + ".")
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                visit(child, prefix + child.name + ".<locals>.")
            else:
                visit(child, prefix)

    visit(tree, "")
    return lines
