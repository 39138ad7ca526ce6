"""The signing functions against fixed vectors: HMAC-SHA256 of timestamp + key +
recv_window + payload, computed once for these inputs, so any change to the string that
is signed (order, separators, encoding) fails here."""

from __future__ import annotations

from pathlib import Path

import pytest

from scalper.bybit.auth import (
    Credentials,
    redact,
    rest_signature,
    sign,
    wall_clock_ms,
    ws_auth_signature,
)

KEY = "TESTKEY123"
SECRET = "TESTSECRET456"
TS = 1700000000000
RECV = 5000
BODY = (
    '{"category":"linear","symbol":"BTCUSDT","side":"Buy","orderType":"Limit",'
    '"qty":"0.001","price":"50000","timeInForce":"PostOnly","orderLinkId":"scalp-0001"}'
)


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (
            "category=linear&symbol=BTCUSDT",
            "97ef232703cf2832582c7db8df84cbb7fe75977e4f2e1f14d00f10601521c8b9",
        ),
        ("accountType=UNIFIED", "c0b7d5fea134a194196a9ae6bb85d0fafc5d11fa84c44aad733b981ff899f0af"),
        (BODY, "1e676f3d394ed40739e18a259fbdc51608d64015c24001234153198153dcad91"),
    ],
    ids=["get-linear-btc", "get-wallet", "post-body"],
)
def test_rest_signature_reference_vectors(payload: str, expected: str) -> None:
    sig = rest_signature(SECRET, timestamp_ms=TS, api_key=KEY, recv_window_ms=RECV, payload=payload)
    assert sig == expected
    # The string to sign is exactly ts + key + recv_window + payload.
    assert sign(SECRET, f"{TS}{KEY}{RECV}{payload}") == expected


def test_ws_auth_reference_vector() -> None:
    expected = "ab1298f347cf096f366b9a202bf1c4f739b527fa79dcc4101ed234d59863c5dd"
    assert ws_auth_signature(SECRET, 1700000001000) == expected
    assert sign(SECRET, "GET/realtime1700000001000") == expected


def test_signature_depends_on_every_input() -> None:
    base = rest_signature(SECRET, timestamp_ms=TS, api_key=KEY, recv_window_ms=RECV, payload="a=1")
    variants = [
        rest_signature(
            SECRET, timestamp_ms=TS + 1, api_key=KEY, recv_window_ms=RECV, payload="a=1"
        ),
        rest_signature(
            SECRET, timestamp_ms=TS, api_key=KEY + "x", recv_window_ms=RECV, payload="a=1"
        ),
        rest_signature(
            SECRET, timestamp_ms=TS, api_key=KEY, recv_window_ms=RECV + 1, payload="a=1"
        ),
        rest_signature(SECRET, timestamp_ms=TS, api_key=KEY, recv_window_ms=RECV, payload="a=2"),
        rest_signature(
            SECRET + "x", timestamp_ms=TS, api_key=KEY, recv_window_ms=RECV, payload="a=1"
        ),
    ]
    assert base not in variants
    assert len(set(variants)) == len(variants)
    assert base == base.lower() and len(base) == 64


def test_redact_strips_origin_string_and_masks_secrets() -> None:
    msg = f'error sign! origin_string[{TS}{KEY}{RECV}{{"a":[1]}}] tail {SECRET}'
    out = redact(msg, KEY, SECRET)
    assert out.startswith("error sign! origin_string[<redacted>]")
    assert KEY not in out and SECRET not in out and str(TS) not in out
    assert redact(f"key {KEY} and {SECRET}", KEY, SECRET, "") == "key *** and ***"
    assert redact("plain message", "") == "plain message"


def test_streams_do_not_import_the_rest_client() -> None:
    """ws/streams get Credentials and the clock from auth, not from the REST module."""
    import ast

    import scalper.bybit.rest as rest_mod
    import scalper.bybit.streams as streams_mod
    import scalper.bybit.ws as ws_mod

    for mod in (ws_mod, streams_mod):
        assert mod.__file__ is not None
        tree = ast.parse(Path(mod.__file__).read_text())
        imported = {
            node.module
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module is not None
        }
        assert not {"rest", "scalper.bybit.rest"} & imported, mod.__name__
    # and the old import path keeps working for scalper.app / scalper.replay
    assert rest_mod.Credentials is Credentials and rest_mod.wall_clock_ms is wall_clock_ms
    assert repr(Credentials(KEY, SECRET)).count(SECRET) == 0
