"""CLI manners: --version, help on every flag and subcommand, shell completion, the API
secret from a private file, warnings for keys in argv, the data directory, and the
[log] rotation keys' validation."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from scalper.cli import build_parser, main
from scalper.config import SettingsError, load_settings

SECRET = "file-secret-Zx9Q7abc"


def _walk(parser: argparse.ArgumentParser, path: str) -> list[tuple[str, argparse.Action]]:
    out = []
    for action in parser._actions:
        out.append((path, action))
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out.extend(_walk(sub, f"{path} {name}"))
    return out


def test_every_flag_and_subcommand_has_help() -> None:
    parser = build_parser()
    missing = [
        f"{path}: {action.option_strings or action.dest}"
        for path, action in _walk(parser, "scalper")
        if not action.help or action.help == argparse.SUPPRESS
    ]
    assert missing == []
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {c.dest: c.help for c in sub._choices_actions}
    assert set(helps) == set(sub.choices)  # every subcommand listed with its help
    assert all(helps.values())
    assert "completion" in sub.choices and "report" in sub.choices


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith("scalper ")


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_completion_scripts(shell: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["completion", shell]) == 0
    script = capsys.readouterr().out
    assert "scalper" in script
    for word in ("check-config", "--api-secret-file", "--no-panel", "--plot"):
        assert word in script
    if shell == "bash":
        assert "complete " in script
    else:
        assert script.startswith("#compdef scalper")


def test_bash_completion_script_is_valid_bash(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["completion", "bash"]) == 0
    done = subprocess.run(
        ["bash", "-n"], input=capsys.readouterr().out, text=True, capture_output=True, timeout=30
    )
    assert done.returncode == 0, done.stderr


def _secret_file(tmp_path: Path, mode: int) -> Path:
    path = tmp_path / "secret"
    path.write_text(SECRET + "\n")
    path.chmod(mode)
    return path


def test_secret_file_is_read_when_only_its_owner_can_read_it(tmp_path: Path) -> None:
    path = _secret_file(tmp_path, 0o600)
    settings = load_settings(
        overrides={"exchange.api_secret_file": str(path)}, env={}, defaults_path=None
    )
    assert settings.exchange.api_secret is not None
    assert settings.exchange.api_secret.reveal() == SECRET
    assert settings.sources["exchange.api_secret"].startswith(f"file {path}")
    assert SECRET in settings.secrets()  # so the log redacts it


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_secret_file_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = _secret_file(tmp_path, mode)
    with pytest.raises(SettingsError) as info:
        load_settings(overrides={"exchange.api_secret_file": str(path)}, env={}, defaults_path=None)
    assert info.value.key == "exchange.api_secret_file"
    assert f"mode {mode:04o}" in str(info.value) and "chmod 600" in str(info.value)
    assert SECRET not in str(info.value)


def test_secret_file_and_secret_together_is_an_error(tmp_path: Path) -> None:
    path = _secret_file(tmp_path, 0o600)
    with pytest.raises(SettingsError, match=r"set either it or exchange\.api_secret"):
        load_settings(
            overrides={"exchange.api_secret_file": str(path)},
            env={"BYBIT_API_SECRET": "other-secret-123"},
            defaults_path=None,
        )


def test_missing_or_empty_secret_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="no file at"):
        load_settings(
            overrides={"exchange.api_secret_file": str(tmp_path / "nope")},
            env={},
            defaults_path=None,
        )
    empty = tmp_path / "empty"
    empty.write_text("\n")
    empty.chmod(0o600)
    with pytest.raises(SettingsError, match="must not be empty"):
        load_settings(
            overrides={"exchange.api_secret_file": str(empty)}, env={}, defaults_path=None
        )


def _cli(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SCALPER_", "BYBIT_"))}
    return subprocess.run(
        [sys.executable, "-m", "scalper.cli", *args],
        env={**clean, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_world_readable_secret_file_exits_2_with_one_line(tmp_path: Path) -> None:
    path = _secret_file(tmp_path, 0o644)
    done = _cli("check-config", "--api-secret-file", str(path), cwd=tmp_path, env={})
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith("error: exchange.api_secret_file: ")
    assert SECRET not in done.stderr + done.stdout


def test_keys_on_the_command_line_print_a_warning(tmp_path: Path) -> None:
    done = _cli(
        "check-config",
        "--api-key",
        "key-1234567890",
        "--api-secret",
        "secret-1234567890",
        cwd=tmp_path,
        env={},
    )
    assert done.returncode == 0, done.stderr
    warnings = [ln for ln in done.stderr.splitlines() if ln.startswith("warning: ")]
    assert len(warnings) == 2
    assert all("visible to other users" in w for w in warnings)
    assert "--api-key" in warnings[0] and "--api-secret" in warnings[1]
    assert "secret-1234567890" not in done.stderr + done.stdout
    quiet = _cli("check-config", cwd=tmp_path, env={"BYBIT_API_KEY": "key-1234567890"})
    assert "warning" not in quiet.stderr


def test_outside_the_checkout_the_data_dir_is_xdg_and_shown_absolute(tmp_path: Path) -> None:
    xdg = tmp_path / "xdg"
    elsewhere = tmp_path / "work"
    elsewhere.mkdir()
    done = _cli("check-config", cwd=elsewhere, env={"XDG_DATA_HOME": str(xdg)})
    assert done.returncode == 0, done.stderr
    expected = xdg / "scalper"
    assert f'dir = "{expected}"' in done.stdout
    assert f'path = "{expected / "journal.sqlite3"}"' in done.stdout
    assert "$XDG_DATA_HOME/scalper" in done.stdout  # says why
    # without XDG_DATA_HOME: ~/.local/share/scalper
    home = tmp_path / "home"
    done = _cli("check-config", cwd=elsewhere, env={"HOME": str(home), "XDG_DATA_HOME": ""})
    assert f'dir = "{home / ".local" / "share" / "scalper"}"' in done.stdout


def test_data_dir_setting_and_flags(tmp_path: Path) -> None:
    settings = load_settings(
        overrides={"data.dir": str(tmp_path / "d")}, env={}, defaults_path=None
    )
    assert settings.journal.path == str(tmp_path / "d" / "journal.sqlite3")
    assert settings.sources["journal.path"] == "default (in data.dir)"
    absolute = load_settings(
        overrides={"data.dir": str(tmp_path / "d"), "journal.path": "/srv/j.sqlite3"},
        env={},
        defaults_path=None,
    )
    assert absolute.journal.path == "/srv/j.sqlite3"
    from_env = load_settings(
        env={"SCALPER_DATA__DIR": str(tmp_path / "e"), "SCALPER_JOURNAL__PATH": "sub/j.db"},
        defaults_path=None,
    )
    assert from_env.journal.path == str(tmp_path / "e" / "sub" / "j.db")


@pytest.mark.parametrize(
    ("key", "value", "ok"),
    [
        ("log.rotation", "50 MB", True),
        ("log.rotation", "1 day", True),
        ("log.rotation", "12 h", True),
        ("log.rotation", "00:00", True),
        ("log.rotation", "", True),
        ("log.rotation", "sometimes", False),
        ("log.rotation", "25:00", False),
        ("log.retention", "14 days", True),
        ("log.retention", "10", True),
        ("log.retention", "0", False),
        ("log.retention", "forever", False),
        ("log.compression", "gz", True),
        ("log.compression", "", True),
        ("log.compression", "rar", False),
    ],
)
def test_log_rotation_keys_are_validated(key: str, value: str, ok: bool) -> None:
    env = {f"SCALPER_{key.replace('.', '__').upper()}": value}
    if ok:
        settings = load_settings(env=env, defaults_path=None)
        assert getattr(settings.log, key.split(".")[1]) == value
    else:
        with pytest.raises(SettingsError) as info:
            load_settings(env=env, defaults_path=None)
        assert info.value.key == key
