"""Config: hotmud.toml of the game folder, then MUD_* environment variables, then flags."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from engine.__main__ import main
from engine.config import Config, ConfigError, settings, toml_template, unknown_variables

EXPLICIT = ["--content-dir", "/srv/content", "--db-path", "/srv/db.sqlite3"]


@pytest.fixture
def game(tmp_path: Path) -> Path:
    """A game folder with an empty hotmud.toml."""
    folder = tmp_path / "mygame"
    folder.mkdir()
    (folder / "hotmud.toml").write_text("")
    return folder


def write_toml(game: Path, text: str) -> None:
    (game / "hotmud.toml").write_text(text)


def test_defaults_in_a_game_folder_put_everything_inside_it(game: Path) -> None:
    config = Config.from_sources([], environ={}, cwd=game)
    assert config.game_dir == game.resolve()
    assert config.host == "127.0.0.1"
    assert config.port == 4000
    assert config.reload is True
    assert config.content_dir == game.resolve() / "content"
    assert config.db_path == game.resolve() / "var" / "mud.sqlite3"
    assert config.log_path == game.resolve() / "var" / "log" / "hotmud.log"


def test_the_game_folder_is_found_from_a_folder_inside_it(game: Path) -> None:
    inner = game / "content" / "commands"
    inner.mkdir(parents=True)
    assert Config.from_sources([], environ={}, cwd=inner).game_dir == game.resolve()


def test_without_a_game_folder_the_start_is_refused_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as refused:
        Config.from_sources([], environ={}, cwd=tmp_path)
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith("No game here:")
    assert "hotmud new" in message


def test_explicit_content_and_database_need_no_game_folder(tmp_path: Path) -> None:
    config = Config.from_sources(EXPLICIT, environ={}, cwd=tmp_path)
    assert config.game_dir is None
    assert config.content_dir == Path("/srv/content")
    # The log goes beside the database, never into the engine or the current folder.
    assert config.log_path == Path("/srv/var/log/hotmud.log")


def test_a_named_game_folder_must_hold_hotmud_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not a game folder"):
        Config.from_sources(["--game", str(tmp_path)], environ={}, cwd=tmp_path)


def test_toml_then_environment_then_flags(game: Path) -> None:
    write_toml(game, '[server]\nport = 4100\nhost = "10.0.0.1"\nserver_name = "Toml"\n')
    environ = {"MUD_PORT": "4200", "MUD_SERVER_NAME": "Env"}
    config = Config.from_sources(["--port", "4300"], environ=environ, cwd=game)
    assert config.port == 4300  # the flag wins
    assert config.server_name == "Env"  # the variable beats the file
    assert config.host == "10.0.0.1"  # the file beats the default


def test_toml_values_keep_their_types_and_paths_are_in_the_game(game: Path) -> None:
    write_toml(
        game,
        "[reload]\nreload = false\ncontent_budget = 2\n"
        '[files]\ndb_path = "data/world.sqlite3"\n[logs]\nlog_backups = 2\n',
    )
    config = Config.from_sources([], environ={}, cwd=game)
    assert config.reload is False
    assert config.content_budget == 2.0
    assert isinstance(config.content_budget, float)
    assert config.db_path == game.resolve() / "data" / "world.sqlite3"
    assert config.log_backups == 2


def test_lists_of_sites_and_proxies_may_be_toml_arrays_or_words(game: Path) -> None:
    write_toml(
        game,
        '[web]\nweb_origins = ["https://a.example", "https://b.example"]\n'
        'trusted_proxies = ["10.0.0.1", "192.168.0.0/16"]\n',
    )
    config = Config.from_sources([], environ={}, cwd=game)
    assert config.web_origins.split() == ["https://a.example", "https://b.example"]
    assert config.trusted_proxies.split() == ["10.0.0.1", "192.168.0.0/16"]
    write_toml(game, '[web]\nweb_origins = "https://a.example https://b.example"\n')
    config = Config.from_sources([], environ={}, cwd=game)
    assert config.web_origins.split() == ["https://a.example", "https://b.example"]


def test_a_setting_may_also_stand_at_the_top_of_the_file(game: Path) -> None:
    write_toml(game, "port = 4444\n")
    assert Config.from_sources([], environ={}, cwd=game).port == 4444


UNKNOWN = 'unknown setting "prot" in [server]; did you mean "port"?'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[server]\nhost = 'x'\nprot = 4000\n", f"hotmud.toml line 3: {UNKNOWN}"),
        ("[server]\nport = '4000'\n", 'line 2: "port" must be a whole number, not "4000".'),
        ("[reload]\n\nreload = 1\n", 'line 3: "reload" must be true or false, not 1.'),
        ("[limits]\nport = 4000\n", 'line 2: "port" belongs in [server], not [limits].'),
        ("[srever]\nport = 1\n", "line 1: unknown section [srever]; did you mean [server]?"),
        ("[server]\nport = 4000\nport = 5000\n", "line 3"),
        ("[web]\nweb_origins = [1]\n", 'line 2: "web_origins" must list single words in'),
        ("[web]\ntrusted_proxies = ['a b']\n", 'must list single words in quotes, not "a b".'),
        ("[web]\ntrusted_proxies = 3\n", "must be a list of texts in quotes, not 3."),
        ("[server]\nhost = ['a']\n", '"host" must be a text in quotes, not'),
    ],
)
def test_a_typo_in_hotmud_toml_stops_the_start_naming_key_and_line(
    game: Path, text: str, expected: str
) -> None:
    write_toml(game, text)
    with pytest.raises(ConfigError) as refused:
        Config.from_sources([], environ={}, cwd=game)
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith("hotmud.toml")
    assert expected in message


@pytest.mark.parametrize(
    ("variable", "raw", "expected"),
    [
        ("MUD_PORT", "abc", 'MUD_PORT must be a whole number, not "abc".'),
        ("MUD_RELOAD", "maybe", 'MUD_RELOAD must be true or false, not "maybe".'),
        ("MUD_CONTENT_BUDGET", "x", 'MUD_CONTENT_BUDGET must be a number, not "x".'),
    ],
)
def test_a_bad_environment_value_stops_the_start(
    game: Path, variable: str, raw: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        Config.from_sources([], environ={variable: raw}, cwd=game)
    assert str(refused.value) == expected


@pytest.mark.parametrize(
    ("raw", "expected"), [("1", True), ("yes", True), ("TRUE", True), ("0", False), ("no", False)]
)
def test_boolean_environment_values(game: Path, raw: str, expected: bool) -> None:
    assert Config.from_sources([], environ={"MUD_RELOAD": raw}, cwd=game).reload is expected


def test_every_setting_has_a_flag_and_a_variable(game: Path) -> None:
    for f in settings():
        flag = "--" + f.name.replace("_", "-")
        default: Any = f.default  # every setting has one; its type is the setting's
        value: object
        if isinstance(default, bool):
            value = not default
            argv = [flag if value else "--no-" + f.name.replace("_", "-")]
            raw = "1" if value else "0"
        elif f.name == "log_level":
            value = "DEBUG"
            argv, raw = [flag, value], value
        else:
            low = f.metadata["low"] or 0
            number = max(7, low)
            value = (
                type(default)(number) if isinstance(default, int | float) else type(default)("x")
            )
            argv = [flag, str(value)]
            raw = str(value)
        by_flag = Config.from_sources(argv, environ={}, cwd=game)
        by_variable = Config.from_sources([], environ={f"MUD_{f.name.upper()}": raw}, cwd=game)
        for config in (by_flag, by_variable):
            got = getattr(config, f.name)
            if isinstance(got, Path):
                assert got.name == "x", f.name
            else:
                assert got == value, f.name


def test_the_new_game_toml_lists_every_setting_with_its_default() -> None:
    text = toml_template()
    tomllib.loads(text)  # valid as written
    for f in settings():
        assert f"{f.name} = " in text, f.name
    # Every setting is preceded by a comment saying what it does and its default.
    lines = text.splitlines()
    for number, line in enumerate(lines):
        if " = " in line:
            assert lines[number - 1].startswith("# ") and "Default: " in lines[number - 1]


def test_the_new_game_toml_is_read_back_as_the_defaults(game: Path) -> None:
    written = Config.from_sources([], environ={}, cwd=game)
    write_toml(game, toml_template())
    assert Config.from_sources([], environ={}, cwd=game) == written


def test_help_lists_every_flag_and_variable_with_its_default(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "usage: python -m engine" in out
    for f in settings():
        assert "--" + f.name.replace("_", "-") in out, f.name
        assert f"MUD_{f.name.upper()}; default: " in out, f.name
    assert "Config" not in out  # plain words, not a docstring of internals


def test_a_bad_flag_value_is_refused(game: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        Config.from_sources(["--port", "many"], environ={}, cwd=game)
    assert exited.value.code == 2
    assert "--port" in capsys.readouterr().err


def test_an_unknown_log_level_stops_the_start(game: Path) -> None:
    with pytest.raises(ConfigError, match='one of DEBUG, INFO, WARNING, ERROR, not "LOUD"'):
        Config.from_sources(["--log-level", "LOUD"], environ={}, cwd=game)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("toml", 'hotmud.toml line 2: "port" must be between 0 and 65535, not 70001.'),
        ("env", "MUD_PORT must be between 0 and 65535, not 70001."),
    ],
)
def test_a_number_out_of_its_range_stops_the_start(game: Path, source: str, expected: str) -> None:
    environ = {}
    if source == "toml":
        write_toml(game, "[server]\nport = 70001\n")
    else:
        environ["MUD_PORT"] = "70001"
    with pytest.raises(ConfigError) as refused:
        Config.from_sources([], environ=environ, cwd=game)
    assert str(refused.value) == expected


def test_a_flag_out_of_range_or_of_the_wrong_type_costs_one_line(
    game: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for argv in (["--port", "70001"], ["--max-per-ip", "-5"], ["--port", "abc"]):
        with pytest.raises(SystemExit) as exited:
            Config.from_sources(argv, environ={}, cwd=game)
        assert exited.value.code == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1, err
        assert err.startswith(f"hotmud: argument {argv[0]}:"), err


def test_a_setting_at_the_top_and_in_its_section_is_refused(game: Path) -> None:
    write_toml(game, "port = 4780\n[server]\nport = 4778\n")
    with pytest.raises(ConfigError, match='line 3: "port" is set twice'):
        Config.from_sources([], environ={}, cwd=game)


def test_unknown_mud_variables_are_named() -> None:
    assert unknown_variables({"MUD_PROT": "1", "MUD_PORT": "1", "HOME": "/"}) == [
        "MUD_PROT is not a setting (did you mean MUD_PORT?); it is ignored."
    ]
