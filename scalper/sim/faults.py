"""Faults the simulator can be told to produce, at run time.

One JSON object names one fault (``POST /sim/faults`` or ``Sim.inject``)::

    {"kind": "ws_disconnect", "stream": "public"}            # or "private"; default both
    {"kind": "ws_silence", "count": 3}                       # ignore the next 3 pings
    {"kind": "ws_silence", "seconds": 30, "stream": "private"}
    {"kind": "malformed_ws", "count": 5, "variant": "json"}  # or "types"
    {"kind": "out_of_order_ws", "count": 1}                  # book delta u goes backwards
    {"kind": "latency", "ms": 300, "path": "/v5/order/create", "count": 10}  # before handling
    {"kind": "http_status", "status": 503, "count": 2, "path": "/v5/order/create"}
    {"kind": "timeout", "count": 1, "path": "/v5/order/create"}   # done, never answered
    {"kind": "ret_code", "path": "/v5/order/create", "code": 10006, "count": 3,
     "reset_ms": 1000, "msg": "Too many visits!"}        # reset_ms: 10006's header
    {"kind": "drop_private_push", "count": 2}
    {"kind": "close_position", "symbol": "SOLUSDT"}
    {"kind": "price_jump", "symbol": "SOLUSDT", "pct": -2}    # last and mark price move
    {"kind": "price_jump", "symbol": "SOLUSDT", "pct": -2, "wick": true}  # book/last only,
                                                           # for one step; the mark stays
    {"kind": "clear"}                                          # forget pending faults

``parse_fault`` validates (ValueError with the reason: the control API answers 400);
``FaultRegistry`` keeps the pending REST faults and hands them out per request. A
missing ``path`` means every ``/v5`` path; a missing ``count`` on ``latency`` means
until cleared, elsewhere 1.
"""

from __future__ import annotations

from typing import Any

import attrs

__all__ = ["KINDS", "Fault", "FaultRegistry", "RestFaults", "parse_fault"]

KINDS = frozenset(
    {
        "ws_disconnect",
        "ws_silence",
        "malformed_ws",
        "out_of_order_ws",
        "latency",
        "http_status",
        "timeout",
        "ret_code",
        "drop_private_push",
        "close_position",
        "price_jump",
        "clear",
    }
)
_STREAMS = ("public", "private")
_ALLOWED: dict[str, frozenset[str]] = {
    "ws_disconnect": frozenset({"stream"}),
    "ws_silence": frozenset({"stream", "count", "seconds"}),
    "malformed_ws": frozenset({"count", "variant"}),
    "out_of_order_ws": frozenset({"count"}),
    "latency": frozenset({"ms", "path", "count"}),
    "http_status": frozenset({"status", "count", "path"}),
    "timeout": frozenset({"count", "path"}),
    "ret_code": frozenset({"code", "count", "path", "msg", "reset_ms"}),
    "drop_private_push": frozenset({"count"}),
    "close_position": frozenset({"symbol"}),
    "price_jump": frozenset({"symbol", "pct", "wick"}),
    "clear": frozenset(),
}


@attrs.frozen(kw_only=True)
class Fault:
    """One validated fault request."""

    kind: str
    count: int | None = None
    stream: str | None = None
    seconds: float | None = None
    path: str | None = None
    ms: int = 0
    status: int = 0
    code: int = 0
    msg: str | None = None
    reset_ms: int = 1000
    variant: str = "json"
    symbol: str | None = None
    pct: float = 0.0
    wick: bool = False


def _int(obj: dict[str, Any], name: str, lo: int, hi: int, default: int | None) -> int | None:
    value = obj.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer")  # noqa: TRY004
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be between {lo} and {hi}")
    return value


def _num(obj: dict[str, Any], name: str) -> float | None:
    value = obj.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number")  # noqa: TRY004
    return float(value)


def _str(obj: dict[str, Any], name: str) -> str | None:
    value = obj.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string")
    return value


def parse_fault(obj: Any, symbols: dict[str, Any]) -> Fault:
    """Validate one fault request; ValueError says what is wrong."""
    if not isinstance(obj, dict):
        raise ValueError("a fault is a JSON object with a 'kind'")  # noqa: TRY004
    kind = obj.get("kind")
    if kind not in KINDS:
        raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(sorted(KINDS))}")
    extra = set(obj) - {"kind"} - _ALLOWED[kind]
    if extra:
        raise ValueError(f"{kind}: unexpected field(s) {', '.join(sorted(extra))}")
    stream = _str(obj, "stream")
    if stream is not None and stream not in _STREAMS:
        raise ValueError("stream must be 'public' or 'private'")
    path = _str(obj, "path")
    if path is not None and not path.startswith("/v5/"):
        raise ValueError("path must start with /v5/")
    once = 1 if kind != "latency" else None
    count = _int(obj, "count", 1, 1_000_000, once)
    fault = Fault(kind=kind, count=count, stream=stream, path=path)
    if kind == "ws_silence":
        seconds = _num(obj, "seconds")
        if seconds is not None and not 0 < seconds <= 3600:
            raise ValueError("seconds must be in (0, 3600]")
        if seconds is not None and "count" not in obj:
            count = None
        fault = attrs.evolve(fault, seconds=seconds, count=count)
    elif kind == "malformed_ws":
        variant = _str(obj, "variant") or "json"
        if variant not in ("json", "types"):
            raise ValueError("variant must be 'json' or 'types'")
        fault = attrs.evolve(fault, variant=variant)
    elif kind == "latency":
        ms = _int(obj, "ms", 1, 120_000, None)
        if ms is None:
            raise ValueError("latency needs ms")
        fault = attrs.evolve(fault, ms=ms)
    elif kind == "http_status":
        status = _int(obj, "status", 400, 599, None)
        if status is None:
            raise ValueError("http_status needs status (400-599)")
        fault = attrs.evolve(fault, status=status)
    elif kind == "timeout":
        fault = attrs.evolve(fault, path=path or "/v5/order/create")
    elif kind == "ret_code":
        code = _int(obj, "code", 1, 10_000_000, None)
        if code is None:
            raise ValueError("ret_code needs code")
        reset_ms = _int(obj, "reset_ms", 0, 600_000, 1000)
        assert reset_ms is not None
        fault = attrs.evolve(fault, code=code, msg=_str(obj, "msg"), reset_ms=reset_ms)
    elif kind in ("close_position", "price_jump"):
        symbol = _str(obj, "symbol")
        if symbol is None or symbol not in symbols:
            raise ValueError(f"{kind} needs a listed symbol, got {obj.get('symbol')!r}")
        fault = attrs.evolve(fault, symbol=symbol)
        if kind == "price_jump":
            pct = _num(obj, "pct")
            if pct is None or pct == 0 or not -50 < pct < 100:
                raise ValueError("price_jump needs pct, non-zero, in (-50, 100)")
            wick = obj.get("wick", False)
            if not isinstance(wick, bool):
                raise ValueError("wick must be true or false")
            fault = attrs.evolve(fault, pct=pct, wick=wick)
    return fault


@attrs.frozen
class RestFaults:
    """What to do to one REST request."""

    latency_ms: int = 0
    status: int = 0
    code: int = 0
    msg: str | None = None
    reset_ms: int = 0
    hold: bool = False


@attrs.define
class _Pending:
    fault: Fault
    left: int | None


@attrs.define(eq=False)
class FaultRegistry:
    """Pending REST and ping faults; the stream faults live on the hubs."""

    _rest: list[_Pending] = attrs.field(factory=list)
    #: pings still to swallow, and until when (trio seconds) to swallow them, per stream
    _silence_count: dict[str, int] = attrs.field(factory=lambda: dict.fromkeys(_STREAMS, 0))
    _silence_until: dict[str, float] = attrs.field(factory=lambda: dict.fromkeys(_STREAMS, 0.0))

    def clear(self) -> None:
        """Forget every pending fault."""
        self._rest.clear()
        self._silence_count = dict.fromkeys(_STREAMS, 0)
        self._silence_until = dict.fromkeys(_STREAMS, 0.0)

    def add_rest(self, fault: Fault) -> None:
        """Queue a latency / http_status / timeout / ret_code fault."""
        self._rest.append(_Pending(fault, fault.count))

    def add_silence(self, fault: Fault, now_s: float) -> None:
        """Stop answering pings on a stream for ``count`` pings or ``seconds``."""
        for stream in (fault.stream,) if fault.stream else ("public", "private"):
            if fault.seconds is not None:
                self._silence_until[stream] = now_s + fault.seconds
            if fault.count is not None:
                self._silence_count[stream] += fault.count

    def swallow_ping(self, stream: str, now_s: float) -> bool:
        """True when this ping must go unanswered."""
        if now_s < self._silence_until[stream]:
            return True
        if self._silence_count[stream] > 0:
            self._silence_count[stream] -= 1
            return True
        return False

    def for_request(self, path: str) -> RestFaults:
        """Take the faults due for one request to ``path`` (counts are consumed)."""
        latency = 0
        status = code = reset_ms = 0
        msg = None
        hold = False
        for pending in list(self._rest):
            fault = pending.fault
            if fault.path is not None and fault.path != path:
                continue
            if fault.kind == "latency":
                latency = max(latency, fault.ms)
            elif fault.kind == "http_status" and not (status or code):
                status = fault.status
            elif fault.kind == "ret_code" and not (status or code):
                code, msg, reset_ms = fault.code, fault.msg, fault.reset_ms
            elif fault.kind == "timeout" and not hold:
                hold = True
            else:
                continue
            if pending.left is not None:
                pending.left -= 1
                if pending.left <= 0:
                    self._rest.remove(pending)
        return RestFaults(latency, status, code, msg, reset_ms, hold)
