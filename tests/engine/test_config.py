"""Config: defaults, then MUD_* environment variables, then command-line flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.__main__ import main
from engine.config import PROJECT_ROOT, Config


def test_defaults_without_flags_or_environment() -> None:
    config = Config.from_sources([], environ={})
    assert config == Config()
    assert config.host == "127.0.0.1"
    assert config.port == 4000
    assert config.reload is True
    assert config.content_dir == PROJECT_ROOT / "content"


def test_flags_set_every_field_they_name() -> None:
    config = Config.from_sources(
        [
            "--host",
            "0.0.0.0",
            "--port",
            "4555",
            "--content-dir",
            "/srv/content",
            "--db-path",
            "/srv/db.sqlite3",
            "--no-reload",
            "--log-level",
            "DEBUG",
        ],
        environ={},
    )
    assert config.host == "0.0.0.0"
    assert config.port == 4555
    assert config.content_dir == Path("/srv/content")
    assert config.db_path == Path("/srv/db.sqlite3")
    assert config.reload is False
    assert config.log_level == "DEBUG"


def test_environment_values_are_converted_to_the_field_types() -> None:
    config = Config.from_sources(
        [],
        environ={
            "MUD_PORT": "4100",
            "MUD_RELOAD": "off",
            "MUD_MAX_LINE": "100",
            "MUD_LOGIN_TIMEOUT": "2.5",
            "MUD_CONTENT_DIR": "/tmp/content",
            "MUD_SERVER_NAME": "TestMUD",
            "UNRELATED": "1",
        },
    )
    assert config.port == 4100
    assert config.reload is False
    assert config.max_line == 100
    assert config.login_timeout == 2.5
    assert config.content_dir == Path("/tmp/content")
    assert config.server_name == "TestMUD"


@pytest.mark.parametrize(
    ("raw", "expected"), [("1", True), ("yes", True), ("TRUE", True), ("0", False), ("no", False)]
)
def test_boolean_environment_values(raw: str, expected: bool) -> None:
    assert Config.from_sources([], environ={"MUD_RELOAD": raw}).reload is expected


def test_flags_override_the_environment() -> None:
    environ = {"MUD_PORT": "4100", "MUD_HOST": "10.0.0.1", "MUD_RELOAD": "1"}
    config = Config.from_sources(["--port", "4200", "--no-reload"], environ=environ)
    assert config.port == 4200
    assert config.reload is False
    # Fields without a flag keep the environment's value.
    assert config.host == "10.0.0.1"


def test_absent_no_reload_flag_keeps_the_environment_value() -> None:
    assert Config.from_sources([], environ={"MUD_RELOAD": "0"}).reload is False


def test_help_lists_the_flags(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--host", "--port", "--content-dir", "--db-path", "--no-reload", "--log-level"):
        assert flag in out


def test_a_bad_flag_value_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        Config.from_sources(["--port", "many"], environ={})
    assert exited.value.code == 2
    assert "--port" in capsys.readouterr().err
