"""A hung test ends the run with its name and stacks where a person sees them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from engine.paths import CODE_ROOT as PROJECT_ROOT


def test_a_hung_test_is_named_and_its_stacks_written_where_they_are_seen(tmp_path: Path) -> None:
    report = tmp_path / "hang.txt"
    env = {**os.environ, "HOTMUD_HARD_LIMIT": "1", "HOTMUD_HANG_REPORT": str(report)}
    started = time.monotonic()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/engine/hang_probe.py",
        ],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert time.monotonic() - started < 20
    text = report.read_text()
    assert text.startswith("tests/engine/hang_probe.py::test_that_hangs hung for 1 s")
    assert "hang_probe.py" in text.split("\n", 1)[1] and "test_that_hangs" in text
