"""A thin adapter from watchfiles to "these source files changed or went away".

watchfiles reports a save in whatever form the editor made it: ``modified``,
``added``, or ``added`` plus ``deleted`` of the same path in one set (vim).
The event type is therefore ignored and the file system is asked instead.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import watchfiles


class SourceFilter(watchfiles.DefaultFilter):
    """Python sources and directories; editor temp and swap files are dropped.

    ``DefaultFilter`` already ignores ``__pycache__``, ``.git``, ``*.swp``,
    ``*~``, ``.#*`` and friends.  Names without a dot pass too, because a
    directory moved into the tree arrives as one event for the directory.
    """

    def __call__(self, change: watchfiles.Change, path: str) -> bool:
        if not super().__call__(change, path):
            return False
        name = os.path.basename(path)
        return name.endswith(".py") or "." not in name


@dataclass(frozen=True)
class SourceChanges:
    """One batch of changes, decided from the disk rather than from event types."""

    changed: frozenset[str]
    removed: frozenset[str]


def classify(paths: set[str]) -> SourceChanges:
    """Sort raw event paths into existing ``.py`` files and vanished paths.

    A directory that appeared is expanded into every ``.py`` file beneath it;
    a vanished path without ``.py`` may have been a directory, and is
    reported as removed so that the caller can drop what lived under it.
    """
    changed: set[str] = set()
    removed: set[str] = set()
    for path in paths:
        if os.path.isdir(path):
            for root, dirs, files in os.walk(path):
                dirs[:] = [d for d in dirs if d != "__pycache__" and not d.startswith(".")]
                changed.update(os.path.join(root, f) for f in files if f.endswith(".py"))
        elif os.path.isfile(path):
            if path.endswith(".py"):
                changed.add(path)
        else:
            removed.add(path)
    return SourceChanges(frozenset(changed), frozenset(removed))


async def watch_sources(
    directory: str | Path,
    *,
    step_ms: int = 20,
    debounce_ms: int = 200,
    stop_event: asyncio.Event | None = None,
    force_polling: bool | None = None,
) -> AsyncIterator[SourceChanges]:
    """Yield a ``SourceChanges`` for every group of saves under ``directory``.

    ``step_ms`` is how long watchfiles waits for more events before yielding
    (the latency of a single save is about twice that); ``debounce_ms`` caps
    how long a continuous stream of events, a ``git checkout`` say, is
    gathered into one group, so that many files saved together arrive as one
    batch.
    """
    async for events in watchfiles.awatch(
        directory,
        watch_filter=SourceFilter(),
        step=step_ms,
        debounce=debounce_ms,
        stop_event=stop_event,
        force_polling=force_polling,
    ):
        changes = classify({path for _change, path in events})
        if changes.changed or changes.removed:
            yield changes
