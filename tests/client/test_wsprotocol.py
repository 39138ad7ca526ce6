"""WsProtocol as h11's tests read: inputs and times in, events and frames out, state asserted.

No socket, no task, no clock: ``now`` is a number the test chooses.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from scalper.bybit.auth import Credentials, ws_auth_signature
from scalper.bybit.parse import ParseStats
from scalper.bybit.wsevents import (
    AuthAccepted,
    AuthRefused,
    Ignored,
    Malformed,
    Pong,
    Refused,
    Silent,
    Subscribed,
    Unsubscribed,
)
from scalper.bybit.wsprotocol import MAX_TOPICS_PER_REQUEST, Phase, WsProtocol, is_data
from scalper.bybit.wstypes import WsPolicy

KEY, SECRET = "proto-key", "proto-secret"
POLICY = WsPolicy(ping_interval_s=20, pong_timeout_s=10, auth_timeout_s=5, auth_expires_s=5)
WALL_MS = 1_700_000_000_000.0


def protocol(*, private: bool = False) -> WsProtocol:
    creds = Credentials(KEY, SECRET) if private else None
    return WsProtocol(POLICY, creds, ParseStats(name="test", monotonic=lambda: 0.0))


def sent(proto: WsProtocol) -> list[dict[str, Any]]:
    return [json.loads(f) for f in proto.data_to_send()]


def reply(op: str, success: bool = True, ret_msg: str = "", req_id: str | None = None) -> str:
    msg: dict[str, Any] = {"success": success, "ret_msg": ret_msg, "op": op, "conn_id": "c"}
    if req_id is not None:
        msg["req_id"] = req_id
    return json.dumps(msg)


def opened(*, private: bool, topics: list[str], now: float = 0.0) -> WsProtocol:
    """A protocol OPEN on its first connection, its queued frames taken."""
    proto = protocol(private=private)
    proto.subscribe(topics)
    proto.connection_made(now, WALL_MS)
    if private:
        proto.data_to_send()
        assert proto.receive(reply("auth"), now) == AuthAccepted()
    proto.data_to_send()
    return proto


PONG = '{"success":true,"ret_msg":"pong","conn_id":"c","req_id":"1","op":"ping"}'
PRIVATE_PONG = '{"req_id":"1","op":"pong","args":["1700000000000"],"conn_id":"c"}'


def test_public_connection_subscribes_in_requests_of_at_most_ten_topics() -> None:
    proto = protocol()
    topics = [f"publicTrade.S{i}" for i in range(23)]
    proto.subscribe(topics)
    assert proto.data_to_send() == []  # IDLE: only remembered
    proto.connection_made(100.0, WALL_MS)
    frames = sent(proto)
    assert [f["op"] for f in frames] == ["subscribe"] * 3
    assert [f["args"] for f in frames] == [topics[:10], topics[10:20], topics[20:]]
    assert max(len(f["args"]) for f in frames) == MAX_TOPICS_PER_REQUEST
    assert len({f["req_id"] for f in frames}) == 3
    assert proto.phase is Phase.OPEN
    assert proto.next_deadline() == 120.0  # the first ping
    assert proto.confirmed == set()
    assert proto.data_to_send() == []  # taken once


def test_private_authenticates_first_and_subscribes_only_once_accepted() -> None:
    proto = protocol(private=True)
    proto.subscribe(["order", "execution"])
    proto.connection_made(10.0, WALL_MS)
    (auth,) = sent(proto)
    key, expires, signature = auth["args"]
    assert (auth["op"], key, expires) == ("auth", KEY, WALL_MS + 5000)
    assert signature == ws_auth_signature(SECRET, expires)
    assert proto.phase is Phase.AUTHENTICATING
    assert proto.next_deadline() == 15.0
    proto.subscribe(["position"])  # asked for while authenticating: nothing sent yet
    assert proto.data_to_send() == []
    assert proto.receive(reply("auth", req_id=auth["req_id"]), 11.0) == AuthAccepted()
    assert proto.phase is Phase.OPEN
    assert [(f["op"], f["args"]) for f in sent(proto)] == [
        ("subscribe", ["order", "execution", "position"])
    ]
    assert proto.next_deadline() == 31.0


def test_refused_auth_is_redacted_and_closes() -> None:
    proto = protocol(private=True)
    proto.connection_made(0.0, WALL_MS)
    proto.data_to_send()
    echo = f"error sign! origin_string[GET/realtime{KEY}{SECRET}]"
    event = proto.receive(reply("auth", success=False, ret_msg=echo), 1.0)
    assert isinstance(event, AuthRefused)
    assert KEY not in event.reason and SECRET not in event.reason
    assert event.reason == "error sign! origin_string[<redacted>]"
    assert proto.phase is Phase.CLOSING
    assert proto.close_reason == f"auth refused: {event.reason}"
    assert proto.next_deadline() is None
    assert proto.data_to_send() == []  # no subscription after a refusal
    assert proto.receive(reply("subscribe"), 1.0) == Ignored("subscribe")


def test_no_auth_reply_in_time_is_silent() -> None:
    proto = protocol(private=True)
    proto.connection_made(0.0, WALL_MS)
    proto.data_to_send()
    assert proto.overdue(4.999) is None
    assert proto.tick(4.999) is None
    assert proto.overdue(5.0) == "no auth reply in 5s"
    assert proto.phase is Phase.AUTHENTICATING  # overdue only answers
    assert proto.tick(5.0) == Silent("no auth reply in 5s")
    assert (proto.phase, proto.close_reason) == (Phase.CLOSING, "no auth reply in 5s")
    assert proto.data_to_send() == []


@pytest.mark.parametrize("private", [False, True], ids=["public", "private"])
def test_heartbeat_ping_pong_then_silence(private: bool) -> None:
    proto = opened(private=private, topics=["t"], now=0.0)
    pong = PRIVATE_PONG if private else PONG
    assert proto.tick(19.9) is None and proto.data_to_send() == []
    assert proto.tick(20.0) is None
    (ping,) = sent(proto)
    assert ping["op"] == "ping" and ping["req_id"]
    assert proto.next_deadline() == 30.0  # the pong deadline
    assert proto.tick(25.0) is None and proto.data_to_send() == []  # one ping in flight
    assert proto.receive(pong, 21.0) == Pong()
    assert proto.next_deadline() == 41.0  # next ping: an interval after the pong
    assert proto.tick(41.0) is None
    assert [f["op"] for f in sent(proto)] == ["ping"]
    assert proto.overdue(50.9) is None
    assert proto.tick(51.0) == Silent("no pong within 10s")
    assert (proto.phase, proto.close_reason) == (Phase.CLOSING, "no pong within 10s")


def test_a_pong_without_a_ping_changes_nothing() -> None:
    proto = opened(private=False, topics=[], now=0.0)
    assert proto.receive(PONG, 5.0) == Pong()
    assert proto.next_deadline() == 20.0


def test_confirmations_by_req_id_else_in_order() -> None:
    proto = opened(private=False, topics=[], now=0.0)
    proto.subscribe(["a", "b"])
    proto.subscribe(["c"])
    first, second = sent(proto)
    # the second request answered first, by its req_id
    assert proto.receive(reply("subscribe", req_id=second["req_id"]), 1.0) == Subscribed(("c",))
    assert proto.confirmed == {"c"}
    # a reply without req_id answers the oldest open request of its op
    assert proto.receive(reply("subscribe"), 1.0) == Subscribed(("a", "b"))
    assert proto.confirmed == {"a", "b", "c"}
    assert first["args"] == ["a", "b"]
    proto.unsubscribe(["b", "never-wanted"])
    assert [(f["op"], f["args"]) for f in sent(proto)] == [("unsubscribe", ["b"])]
    assert proto.receive(reply("unsubscribe"), 2.0) == Unsubscribed(("b",))
    assert (proto.wanted, proto.confirmed) == (["a", "c"], {"a", "c"})


def test_refused_subscribe_closes_and_refused_unsubscribe_does_not() -> None:
    proto = opened(private=False, topics=["a"], now=0.0)
    proto.unsubscribe(["a"])
    proto.data_to_send()
    event = proto.receive(reply("unsubscribe", success=False, ret_msg="not subscribed"), 1.0)
    assert event == Refused("unsubscribe", ("a",), "not subscribed")
    assert proto.phase is Phase.OPEN
    proto.subscribe(["b"])
    proto.data_to_send()
    # the reply to the first subscribe ("a") is still open: in order, it is answered first
    assert proto.receive(reply("subscribe"), 1.0) == Subscribed(("a",))
    event = proto.receive(reply("subscribe", success=False, ret_msg="service busy"), 2.0)
    assert event == Refused("subscribe", ("b",), "service busy")
    assert (proto.phase, proto.close_reason) == (Phase.CLOSING, "subscribe refused: service busy")
    assert proto.receive(PONG, 3.0) == Ignored("ping")  # CLOSING: nothing more counts


def test_refusals_never_carry_the_key() -> None:
    proto = opened(private=True, topics=[], now=0.0)
    proto.subscribe(["order"])
    event = proto.receive(reply("subscribe", success=False, ret_msg=f"bad {KEY}"), 1.0)
    assert event == Refused("subscribe", ("order",), "bad ***")
    assert proto.close_reason == "subscribe refused: bad ***"


def test_data_frames_come_back_untouched_and_malformed_control_is_counted() -> None:
    proto = opened(private=False, topics=[], now=0.0)
    text = '{"topic":"orderbook.50.X","type":"delta","data":{}}'
    raw = text.encode()
    assert proto.receive(text, 1.0) is text
    assert proto.receive(raw, 1.0) is raw
    assert is_data(text) and is_data(raw) and not is_data(PONG) and not is_data(PONG.encode())
    assert proto.receive("{not json", 1.0) == Malformed()
    assert proto.receive("[1, 2]", 1.0) == Malformed()
    assert proto.receive(reply("somethingelse"), 1.0) == Ignored("somethingelse")
    assert proto.control_stats.counts == {"malformed_json": 2}
    assert proto.phase is Phase.OPEN


def test_an_auth_reply_outside_authentication_is_ignored() -> None:
    proto = opened(private=True, topics=[], now=0.0)
    assert proto.receive(reply("auth", success=False, ret_msg="Repeat auth"), 1.0) == Ignored(
        "auth"
    )
    assert proto.phase is Phase.OPEN


@pytest.mark.parametrize("private", [False, True], ids=["public", "private"])
def test_after_a_reconnect_everything_wanted_is_subscribed_again(private: bool) -> None:
    proto = opened(private=private, topics=["a", "b"], now=0.0)
    proto.receive(reply("subscribe"), 1.0)
    proto.subscribe(["c"])
    proto.unsubscribe(["a"])
    proto.tick(20.0)  # a ping queued, never sent: the connection drops
    proto.connection_lost()
    assert proto.phase is Phase.IDLE
    assert (proto.confirmed, proto.close_reason, proto.next_deadline()) == (set(), None, None)
    assert proto.data_to_send() == []  # nothing stale reaches the next connection
    proto.subscribe(["d"])  # between connections: remembered
    proto.connection_made(100.0, WALL_MS + 100_000)
    if private:
        assert [f["op"] for f in sent(proto)] == ["auth"]
        assert proto.receive(reply("auth"), 100.5) == AuthAccepted()
    assert [(f["op"], f["args"]) for f in sent(proto)] == [("subscribe", ["b", "c", "d"])]
    assert proto.wanted == ["b", "c", "d"]


def test_calls_the_state_does_not_allow_raise_and_change_nothing() -> None:
    proto = protocol()
    with pytest.raises(ValueError, match="state IDLE"):
        proto.receive(PONG, 0.0)
    with pytest.raises(ValueError, match="connection_lost is not allowed in state IDLE"):
        proto.connection_lost()
    assert proto.phase is Phase.IDLE
    proto.connection_made(0.0, WALL_MS)
    with pytest.raises(
        ValueError, match=r"connection_made \(public\) is not allowed in state OPEN"
    ):
        proto.connection_made(1.0, WALL_MS)
    assert proto.phase is Phase.OPEN
    assert proto.next_deadline() == 20.0  # the first connection's schedule stands


def test_repr_hides_the_secret() -> None:
    proto = protocol(private=True)
    assert SECRET not in repr(proto) and KEY not in repr(proto)
    # nor the auth frame queued between connecting and sending (key and signature)
    proto.connection_made(0.0, 1_700_000_000_000)
    assert KEY not in repr(proto) and '"auth"' not in repr(proto)
