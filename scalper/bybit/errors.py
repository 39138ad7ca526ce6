"""Every error the Bybit client layer raises, in one tree (httpx style).

::

    BybitError                      base of everything below; ``retryable`` says what to do
    ├── ProtocolError               the peer broke the wire format (bad JSON envelope)    retry
    ├── TransportError              no usable HTTP reply                                  retry
    │   ├── RequestTimeout          connect/read/write timed out
    │   ├── NetworkError            connection refused/reset, DNS, broken pipe
    │   └── AmbiguousOutcome        a POST was sent and its reply never came: it may have
    │                               been executed (resolve by reading, never blind resend)
    ├── HTTPStatusError             non-200 HTTP status: 5xx and 429 retry, other 4xx final
    ├── ExchangeError               HTTP 200 with ``retCode != 0`` (ret_code, ret_msg, path)
    │   ├── ServerBusy              10000 / 10016 / 110079: server timeout or restart  retry
    │   │                           (for an order create: ambiguous, read before resending)
    │   ├── RateLimited             10006, with ``reset_ms`` (X-Bapi-Limit-Reset-Timestamp) retry
    │   ├── TimestampError          10002: clock outside recv_window; re-sync, retry     retry
    │   ├── AuthError               10003 / 10004 / 10005 / 10007 / 10010               final
    │   ├── InvalidRequest          10001 / 10017 / 10029 / 110003 / 110017 / 110094 ...  final
    │   │   └── ReduceOnlyRejected  110017 (reduce-only rule, or qty truncated to zero)
    │   ├── InsufficientBalance     110004 / 110006 / 110007 / 110012 / 110044 / 110045  final
    │   ├── OrderNotFound           110001                                               final
    │   ├── OrderAlreadyFinal       110008 / 110010: already filled or cancelled          final
    │   ├── NotModified             34040 (trading-stop) / 110043 (leverage): the values are
    │                               already set; the callers treat it as success         final
    │   └── DuplicateOrder          110072: the orderLinkId was used already              final
    │                               (place_order resolves it by reading; if the order is not
    │                               visible it raises AmbiguousOutcome from it instead)
    └── StreamError                 WebSocket layer
        └── StreamAuthError         the private stream refused our ``auth``               final

Local mistakes (an order without a price, a float qty) are ``TypeError``/``ValueError``
from the attrs validators in ``scalper.core.model``: they are bugs, not outcomes.

Secrets never enter an error: messages hold the path, retCode, retMsg and our
``orderLinkId``, never the API key, the secret, a signature or the request headers.
"""

from __future__ import annotations

__all__ = [
    "AmbiguousOutcome",
    "AuthError",
    "BybitError",
    "DuplicateOrder",
    "ExchangeError",
    "HTTPStatusError",
    "InsufficientBalance",
    "InvalidRequest",
    "NetworkError",
    "NotModified",
    "OrderAlreadyFinal",
    "OrderNotFound",
    "ProtocolError",
    "RateLimited",
    "ReduceOnlyRejected",
    "RequestTimeout",
    "ServerBusy",
    "StreamAuthError",
    "StreamError",
    "TimestampError",
    "TransportError",
    "exchange_error",
]


class BybitError(Exception):
    """Base of every error raised by ``scalper.bybit``."""

    #: True when the same call may succeed if tried again (after a wait)
    retryable: bool = False


class ProtocolError(BybitError):
    """The reply could not be understood (not JSON, no ``retCode``, wrong shape)."""

    retryable = True


class TransportError(BybitError):
    """No usable HTTP reply: the network or the server did not answer in time."""

    retryable = True


class RequestTimeout(TransportError):
    """Connect, write or read timed out."""


class NetworkError(TransportError):
    """Connection refused or reset, DNS failure, broken pipe."""


class AmbiguousOutcome(TransportError):
    """A POST reached the wire and no reply came back: it may have been executed.

    Never resend blindly on this: read the order (by ``orderLinkId``) first.
    """


class HTTPStatusError(BybitError):
    """The server answered with an HTTP status other than 200."""

    def __init__(self, status: int, path: str, detail: str = "") -> None:
        self.status = status
        self.path = path
        self.retryable = status >= 500 or status == 429
        text = f"HTTP {status} on {path}"
        super().__init__(f"{text}: {detail}" if detail else text)


class ExchangeError(BybitError):
    """Bybit rejected the request: HTTP 200 with ``retCode != 0``."""

    def __init__(self, ret_code: int, ret_msg: str, path: str) -> None:
        self.ret_code = ret_code
        self.ret_msg = ret_msg
        self.path = path
        super().__init__(f"retCode {ret_code} on {path}: {ret_msg}")


class ServerBusy(ExchangeError):
    """10000 / 10016 / 110079: server timeout or restart; state of a write is unknown."""

    retryable = True


class RateLimited(ExchangeError):
    """10006: too many requests; retry at ``reset_ms`` (exchange time, ms) if known."""

    retryable = True

    def __init__(self, ret_code: int, ret_msg: str, path: str, reset_ms: int | None = None) -> None:
        super().__init__(ret_code, ret_msg, path)
        self.reset_ms = reset_ms


class TimestampError(ExchangeError):
    """10002: our timestamp is outside the recv window; re-sync the clock and retry."""

    retryable = True


class AuthError(ExchangeError):
    """Bad key, bad signature, missing permission or IP not allowed."""


class InvalidRequest(ExchangeError):
    """A parameter was refused (qty, price, notional, symbol...)."""


class ReduceOnlyRejected(InvalidRequest):
    """110017: a reduce-only order that would not reduce (or qty truncated to zero)."""


class InsufficientBalance(ExchangeError):
    """Not enough balance or margin for the order."""


class OrderNotFound(ExchangeError):
    """110001: no such order (unknown id, or already gone)."""


class OrderAlreadyFinal(ExchangeError):
    """110008 / 110010: the order is already filled or cancelled."""


class NotModified(ExchangeError):
    """34040 / 110043: the request asks for what is already set (stop, leverage)."""


class DuplicateOrder(ExchangeError):
    """110072: the orderLinkId was already used: the order may exist already."""


class StreamError(BybitError):
    """A WebSocket stream failed in a way reconnecting cannot fix."""


class StreamAuthError(StreamError):
    """The private stream refused our ``auth`` op (bad key or signature)."""


_BY_CODE: dict[int, type[ExchangeError]] = {
    10000: ServerBusy,
    10016: ServerBusy,
    110079: ServerBusy,
    10006: RateLimited,
    10002: TimestampError,
    10003: AuthError,
    10004: AuthError,
    10005: AuthError,
    10007: AuthError,
    10010: AuthError,
    10001: InvalidRequest,
    10017: InvalidRequest,
    10029: InvalidRequest,
    110003: InvalidRequest,
    110094: InvalidRequest,
    110017: ReduceOnlyRejected,
    110004: InsufficientBalance,
    110006: InsufficientBalance,
    110007: InsufficientBalance,
    110012: InsufficientBalance,
    110044: InsufficientBalance,
    110045: InsufficientBalance,
    110001: OrderNotFound,
    110008: OrderAlreadyFinal,
    110010: OrderAlreadyFinal,
    110072: DuplicateOrder,
    34040: NotModified,
    110043: NotModified,
}


def exchange_error(
    ret_code: int, ret_msg: str, path: str, *, reset_ms: int | None = None
) -> ExchangeError:
    """The typed error for a retCode (``ExchangeError`` itself for unmapped codes)."""
    cls = _BY_CODE.get(ret_code, ExchangeError)
    if cls is RateLimited:
        return RateLimited(ret_code, ret_msg, path, reset_ms)
    return cls(ret_code, ret_msg, path)
