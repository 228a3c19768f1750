"""A test that hangs, for ``test_hang_guard.py`` to run in a pytest of its own (not collected)."""

from __future__ import annotations

import time


def test_that_hangs(watchdog: None) -> None:
    time.sleep(60)
