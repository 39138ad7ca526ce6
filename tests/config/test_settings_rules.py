"""Issue 9 hole 7: one rule per concept, so a value the engine refuses is refused at load.

Every ``[strategy]`` and ``[risk]`` key gets bad values through the settings loader
(each must give one ``section.key: why`` line), and every value the loader accepts
must also build the engine's config (hypothesis over valid-looking values).
"""

from __future__ import annotations

import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scalper.config import (
    RiskSettings,
    SettingsError,
    StrategySettings,
    engine_config,
    load_settings,
)
from scalper.core.model import TriggerBy
from scalper.core.strategy import Engine

from .test_config import run_cli

#: key -> TOML values that must be refused (at least one wrong type and one out of range)
BAD: dict[str, dict[str, list[str]]] = {
    "strategy": {
        "window": ["0", "1.5", '"ten"', "100001", "true"],
        "min_ticks": ["0", "2.5", '"x"', "101"],  # 101 > window (100)
        "momentum_threshold": ["0", "-0.1", '"x"', "nan", "inf"],
        "max_spread_bps": ["0", "-1", '"x"', "true"],
        "position_usd": ["0", "-5", '"x"', "nan", "[1]"],
        "stop_loss_pct": ["0", "-1", "101", '"x"', "99.9"],  # 99.9 + 0.25 margin >= 100
        "take_profit_pct": ["0", "1001", '"x"'],
        "stale_ms": ["0", "600001", "1.5", '"x"'],
        "cooldown_s": ["-1", '"x"', "inf"],
        "liquid_spread_bps": ["0", "-1", '"x"'],
        "liquid_min_size": ["-1", '"x"', "nan"],
        "max_hold_s": ["-1", '"x"'],
        "link_id_prefix": ['"my-bot"', '""', '"a.b"', '"x234567890123"', "1", '"é"'],
    },
    "risk": {
        "max_position_usd": ["0", "-1", '"x"', "999"],  # 999 < strategy.position_usd
        "max_daily_loss_usd": ["0", "-1", '"x"', "inf"],
        "max_orders_per_minute": ["0", "10001", "1.5", '"x"'],
        "flatten_on_exit": ['"yes"', "1", "0"],
        "exchange_stop_margin_pct": ["-0.1", "101", '"x"', "99.6"],  # 0.5 + 99.6 >= 100
        "exchange_stop_trigger": ['"Mark"', '"markprice"', "1", '""'],
        "taker_fee_rate": ["-0.001", "0.2", '"x"', "nan"],
    },
}


def _load(tmp_path: Path, text: str) -> Any:
    path = tmp_path / "local.toml"
    path.write_text(text)
    return load_settings(str(path), env={}, defaults_path=None)


def test_the_bad_value_table_covers_every_strategy_and_risk_key() -> None:
    assert set(BAD["strategy"]) == {f.name for f in attrs.fields(StrategySettings)}
    assert set(BAD["risk"]) == {f.name for f in attrs.fields(RiskSettings)}


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        (section, key, value)
        for section, keys in BAD.items()
        for key, values in keys.items()
        for value in values
    ],
)
def test_every_bad_strategy_and_risk_value_is_one_error_line_naming_the_key(
    tmp_path: Path, section: str, key: str, value: str
) -> None:
    with pytest.raises(SettingsError) as info:
        _load(tmp_path, f"[{section}]\n{key} = {value}\n")
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith(f"{section}.{key}: "), text


def test_link_id_prefix_the_engine_refuses_is_refused_at_load(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as info:
        _load(tmp_path, '[strategy]\nlink_id_prefix = "my-bot"\n')
    assert str(info.value).startswith("strategy.link_id_prefix: must be 1-12 characters")
    # and the engine refuses it with the same rule
    with pytest.raises(ValueError, match="must be 1-12 characters"):
        engine_config(attrs.evolve(_load(tmp_path, ""), strategy=StrategySettings()), "my-bot")


def test_cli_bad_link_id_prefix_exits_2_with_one_line() -> None:
    result = run_cli("check-config", env={"SCALPER_STRATEGY__LINK_ID_PREFIX": "my-bot"})
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: strategy.link_id_prefix: ")
    assert "Traceback" not in result.stderr


def test_new_risk_settings_defaults_and_their_engine_values(tmp_path: Path) -> None:
    loaded = _load(tmp_path, "")
    assert loaded.risk.exchange_stop_margin_pct == 0.25
    assert loaded.risk.exchange_stop_trigger == "MarkPrice"
    assert loaded.risk.taker_fee_rate == Decimal("0.00055")
    cfg = engine_config(loaded, "tag1")
    assert cfg.risk.exchange_stop_trigger is TriggerBy.MARK_PRICE
    assert cfg.risk.taker_fee_rate == Decimal("0.00055")
    text = '[risk]\nexchange_stop_trigger = "LastPrice"\ntaker_fee_rate = 0.0006\n'
    cfg = engine_config(_load(tmp_path, text), "tag1")
    assert cfg.risk.exchange_stop_trigger is TriggerBy.LAST_PRICE
    assert cfg.risk.taker_fee_rate == Decimal("0.0006")
    env = {"SCALPER_RISK__EXCHANGE_STOP_TRIGGER": "IndexPrice"}
    cfg = engine_config(load_settings(None, env=env, defaults_path=None), "tag1")
    assert cfg.risk.exchange_stop_trigger is TriggerBy.INDEX_PRICE


# valid-looking values: around and on the edges of each key's range
_NUMBERS = st.one_of(
    st.integers(min_value=-2, max_value=200_000),
    st.floats(min_value=-1, max_value=2_000, allow_nan=False),
    st.sampled_from([0, 0.0, 1e-9, 99.74, 99.75, 100, 100.0, 1000, 1e12]),
)
_VALUES: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "strategy": {
        **{key: _NUMBERS for key in BAD["strategy"] if key != "link_id_prefix"},
        "link_id_prefix": st.text(alphabet="abcXYZ019_-.", min_size=0, max_size=14),
    },
    "risk": {
        **{
            key: _NUMBERS
            for key in BAD["risk"]
            if key not in ("flatten_on_exit", "exchange_stop_trigger", "taker_fee_rate")
        },
        "flatten_on_exit": st.booleans(),
        "exchange_stop_trigger": st.sampled_from(["MarkPrice", "LastPrice", "IndexPrice", "Mark"]),
        "taker_fee_rate": st.sampled_from([0, 0.0, 0.00055, 0.1, 0.1000001, 1]),
    },
}


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value + '"'
    return repr(value)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_every_value_the_loader_accepts_builds_the_engine_config(data: st.DataObject) -> None:
    lines: list[str] = []
    for section, keys in _VALUES.items():
        chosen = data.draw(st.sets(st.sampled_from(sorted(keys)), max_size=len(keys)))
        lines.append(f"[{section}]")
        for key in sorted(chosen):
            lines.append(f"{key} = {_toml(data.draw(keys[key]))}")
    text = "\n".join(lines) + "\n"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            loaded = _load(Path(tmp), text)
    except SettingsError as exc:
        assert "\n" not in str(exc)
        return
    Engine(engine_config(loaded, "tag1"))  # must not raise
