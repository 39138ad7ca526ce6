"""Fuzzing the settings loader (issue 10.4): arbitrary TOML text, near-valid TOML and
arbitrary environments give settings or one ``SettingsError`` whose text is one line
(``section.key: why``, or ``--config FILE: ...`` for unreadable TOML) — never another
exception, which would reach the operator as a traceback instead of ``error: ...``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scalper.config import SettingsError, load_settings

_DEFAULTS = load_settings(env={})
#: every (section, key) the loader knows, read off the settings it builds
KEYS: list[tuple[str, str]] = [
    (section.name, key.name)
    for section in attrs.fields(type(_DEFAULTS))
    if attrs.has(type(getattr(_DEFAULTS, section.name)))
    for key in attrs.fields(type(getattr(_DEFAULTS, section.name)))
]
SECTIONS = sorted({s for s, _ in KEYS})
#: TOML value texts, good, bad and odd
VALUES = ['0', '1', '-1', '1.5', '1e400', 'nan', 'inf', '-inf', 'true', 'false', '""', '"x"',
          '"sim"', '"live"', '"demo"', '"MarkPrice"', '"INFO"', '"json"', '"50 MB"', '"1 day"',
          '"00:00"', '[]', '[1, 2]', '["A", "B"]', '{a = 1}', '1979-05-27', '"\\u0000"',
          '"' + 'x' * 300 + '"', '0.0000001', '99999999999999999999', '"127.0.0.1"',
          '"0.0.0.0"', '"/nonexistent/dir/file"', '"scalp"', '"bad prefix!"']  # fmt: skip
ENV_VALUES = ["", "0", "1", "-5", "1.5", "nan", "inf", "true", "off", "yes", "x", "a,b",
              "MarkPrice", "live", "json", "DEBUG", "50 MB", "\x00", "9" * 40, " 2 ",
              "127.0.0.1", "0.0.0.0", "/nonexistent/x"]  # fmt: skip
FAST = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DEEP = settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _load_text(text: str, env: dict[str, str] | None = None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "local.toml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        os.chmod(path, 0o600)
        try:
            load_settings(config_path=str(path), env=env or {})
        except SettingsError as exc:
            message = str(exc)
            assert "\n" not in message and message.strip(), repr(message)


@st.composite
def near_valid_toml(draw: st.DrawFn) -> str:
    """A few ``[section]`` tables with known (and some unknown) keys."""
    lines: list[str] = []
    for _ in range(draw(st.integers(1, 4))):
        section = draw(st.sampled_from([*SECTIONS, "nosuch"]))
        lines.append(f"[{section}]")
        keys = [k for s, k in KEYS if s == section] or ["x"]
        for _ in range(draw(st.integers(0, 4))):
            key = draw(st.sampled_from([*keys, "unknown_key"]))
            value = draw(st.sampled_from(VALUES) | st.text(max_size=8).map(repr))
            lines.append(f"{key} = {value}")
    return "\n".join(lines) + "\n"


env_dicts = st.dictionaries(
    st.sampled_from([f"SCALPER_{s.upper()}__{k.upper()}" for s, k in KEYS]
                    + ["SCALPER_NOPE__X", "SCALPER_STRATEGY", "SCALPER___", "BYBIT_API_KEY",
                       "BYBIT_API_SECRET"]),
    st.sampled_from(ENV_VALUES) | st.text(max_size=10),
    max_size=6,
)  # fmt: skip


@FAST
@given(st.text(max_size=300))
def test_arbitrary_toml_text_gives_settings_or_one_line_error(text: str) -> None:
    _load_text(text)


@FAST
@given(near_valid_toml())
def test_near_valid_toml_gives_settings_or_one_line_error(text: str) -> None:
    _load_text(text)


@FAST
@given(env_dicts)
def test_arbitrary_environment_gives_settings_or_one_line_error(env: dict[str, str]) -> None:
    env = {k: v.replace("\x00", "") for k, v in env.items()}  # a real environ holds no NUL
    try:
        load_settings(env=env)
    except SettingsError as exc:
        assert "\n" not in str(exc) and str(exc).strip()


def test_the_generators_reach_both_outcomes() -> None:
    """Not vacuous: some generated settings load, some are refused."""
    outcomes: set[bool] = set()

    @settings(max_examples=80, deadline=None, database=None)
    @given(near_valid_toml(), env_dicts)
    def run(text: str, env: dict[str, str]) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "local.toml"
            path.write_text(text)
            try:
                load_settings(
                    config_path=str(path), env={k: v.replace("\x00", "") for k, v in env.items()}
                )
                outcomes.add(True)
            except SettingsError:
                outcomes.add(False)

    run()
    assert outcomes == {True, False}


@pytest.mark.slow
@DEEP
@given(near_valid_toml(), env_dicts)
def test_near_valid_toml_and_environment_deep(text: str, env: dict[str, str]) -> None:
    _load_text(text, {k: v.replace("\x00", "") for k, v in env.items()})
