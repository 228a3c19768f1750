"""The supervisor's copy of its workers' log: to the terminal, and to a file rotated by size."""

from __future__ import annotations

import logging.handlers
from contextlib import closing
from pathlib import Path

import pytest

from engine.logs import LineCopier


def handler(path: Path, max_bytes: int = 0) -> logging.handlers.RotatingFileHandler:
    return logging.handlers.RotatingFileHandler(path, maxBytes=max_bytes, backupCount=2)


def test_whole_lines_go_to_the_file_and_a_partial_one_waits(tmp_path: Path) -> None:
    log = tmp_path / "hotmud.log"
    with closing(handler(log)) as file:
        copier = LineCopier(file)
        copier.feed(b"first line\nsecond ")
        assert log.read_text() == "first line\n"
        copier.feed(b"line\r\n")
        copier.feed(b"last, unfinished")
        copier.feed(b"")  # the worker ended
        assert log.read_text() == "first line\nsecond line\nlast, unfinished\n"


def test_the_file_is_rotated_by_size(tmp_path: Path) -> None:
    log = tmp_path / "hotmud.log"
    with closing(handler(log, max_bytes=100)) as file:
        copier = LineCopier(file)
        for number in range(20):
            copier.feed(f"line {number:02d} of the log, long enough to count\n".encode())
        assert sorted(p.name for p in tmp_path.iterdir()) == [
            "hotmud.log",
            "hotmud.log.1",
            "hotmud.log.2",
        ]
        assert "line 19" in log.read_text()


class FullDisk:
    """A stream whose every write fails as on a full disk."""

    def write(self, text: str) -> int:
        raise OSError(28, "No space left on device")

    def flush(self) -> None:
        raise OSError(28, "No space left on device")

    def seek(self, *args: object) -> int:
        raise OSError(28, "No space left on device")

    def tell(self) -> int:
        raise OSError(28, "No space left on device")


@pytest.mark.parametrize("max_bytes", [0, 100])
def test_a_full_disk_costs_log_lines_never_the_supervisor(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes], max_bytes: int
) -> None:
    file = handler(tmp_path / "hotmud.log", max_bytes)
    assert file.stream is not None
    file.stream.close()
    file.stream = FullDisk()  # type: ignore[assignment]
    copier = LineCopier(file)
    copier.feed(b"a line the disk cannot take\n")
    # The terminal still gets it.
    assert b"a line the disk cannot take" in capsysbinary.readouterr().err
