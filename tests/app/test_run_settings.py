"""Where a run's exchange is and which keys it signs with: ``settings.exchange`` only.

``scalper run`` puts the built-in simulator's URLs and keys into the run's settings,
falls back to the simulator's keys in sim mode when none are configured, and never
for a real exchange; ``credentials`` reveals the pair only for signing.
"""

from __future__ import annotations

import attrs
import pytest

from scalper.app.main import (
    SIM_KEY,
    SIM_SECRET,
    _builtin_exchange,
    _on_simulator,
    _with_credentials,
)
from scalper.app.wiring import credentials
from scalper.bybit.rest import Credentials
from scalper.config import Secret, Settings
from scalper.sim import SimConfig, open_sim

SIM_PAIR = Credentials(api_key=SIM_KEY, api_secret=SIM_SECRET)


def _exchange(settings: Settings, **changes: object) -> Settings:
    return attrs.evolve(settings, exchange=attrs.evolve(settings.exchange, **changes))


def _keyed(settings: Settings) -> Settings:
    return _exchange(settings, api_key=Secret("configured-key"), api_secret=Secret("c-secret"))


def test_a_sim_run_without_keys_signs_with_the_simulators() -> None:
    assert credentials(_with_credentials(Settings()).exchange) == SIM_PAIR
    # half a pair is no pair: the simulator's, as before
    half = _exchange(Settings(), api_key=Secret("configured-key"))
    assert credentials(_with_credentials(half).exchange) == SIM_PAIR


def test_configured_keys_are_kept_and_a_real_exchange_never_gets_the_simulators() -> None:
    keyed = _keyed(Settings())
    assert _with_credentials(keyed) is keyed
    assert credentials(keyed.exchange) == Credentials(
        api_key="configured-key", api_secret="c-secret"
    )
    demo = _exchange(Settings(), mode="demo", rest_url="https://api-demo.bybit.com")
    with pytest.raises(ValueError, match="required outside sim mode"):
        _with_credentials(demo)


def test_a_run_without_a_key_pair_is_refused_before_signing() -> None:
    with pytest.raises(ValueError, match=r"exchange\.api_key"):
        credentials(Settings().exchange)


async def test_the_builtin_simulator_is_where_the_run_trades_with_its_own_keys() -> None:
    configured = _keyed(Settings())
    assert _builtin_exchange(configured)  # sim mode, no exchange configured
    async with open_sim(SimConfig(port=0)) as sim:
        run = _on_simulator(configured, sim)
    ex = run.exchange
    assert (ex.rest_url, ex.ws_public_url, ex.ws_private_url) == (
        sim.rest_url,
        sim.ws_public_url,
        sim.ws_private_url,
    )
    assert not _builtin_exchange(run)
    # the built-in simulator knows only its own pair, whatever is configured
    assert credentials(ex) == SIM_PAIR
    # the keys stay Secret in the settings: nothing shows them
    assert SIM_SECRET not in repr(run) and SIM_SECRET not in str(run)
    # the rest of the settings is the caller's
    assert attrs.evolve(run, exchange=configured.exchange, sources=configured.sources) == configured
    # and where each changed value came from says so (check-config, log redaction)
    assert run.sources["exchange.rest_url"] == "the built-in exchange"
    assert run.sources["exchange.api_secret"] == "the simulator's key pair"
    changed = ("rest_url", "ws_public_url", "ws_private_url", "api_key", "api_secret")
    assert set(run.sources) == set(configured.sources) | {f"exchange.{k}" for k in changed}
    assert (ex.mode, ex.recv_window_ms) == ("sim", configured.exchange.recv_window_ms)
