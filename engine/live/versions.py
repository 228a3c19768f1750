"""When each module version went live, so an error in code a reload just brought says so."""

from __future__ import annotations

import time


class ReloadTimes:
    """Module version (its unique ``__name__``) -> when a reload brought it live.

    Versions loaded at start are not recorded: their errors are not news.
    Shared by the content manager, which records, and the guard, which asks.
    """

    def __init__(self) -> None:
        self._at: dict[str, float] = {}

    def went_live(self, version: str, when: float) -> None:
        self._at[version] = when

    def retired(self, version: str) -> None:
        self._at.pop(version, None)

    def age(self, version: str) -> float | None:
        """Seconds since a reload brought ``version`` live (None: loaded at start)."""
        when = self._at.get(version)
        return None if when is None else time.time() - when
