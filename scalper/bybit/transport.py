"""One signed attempt at a Bybit v5 REST call: the one place network access happens.

``Transport.send`` takes a request already encoded -- a GET's query string built once
(``encode_query``), a POST's JSON serialized once (``encode_json``) -- signs those exact
bytes with a fresh timestamp (``now_ms()``, the exchange-clock estimate), sends them
through the injected ``httpx.AsyncClient`` and maps the reply onto the error tree in
``errors``:

* every httpx exception -> the tree (``_transport_error``): for a POST that may have
  been written -- anything but a connect failure, a pool wait or a request httpx refused
  to build -- ``AmbiguousOutcome`` (it may have executed: an order create resolves it by
  reading back, never by resending blindly); for a GET (or a POST never sent)
  ``RequestTimeout`` (timeouts), ``ProtocolError`` (the reply arrived but was unusable:
  ``DecodingError``, ``TooManyRedirects``) or ``NetworkError`` (everything else:
  connection reset, ``RemoteProtocolError``, proxy, stream errors, an invalid URL);
* HTTP status != 200 -> ``HTTPStatusError``; a body that is not an envelope with an
  integer ``retCode`` (or whose ``result`` is not an object) -> ``ProtocolError``;
* ``retCode`` != 0 -> ``exchange_error(...)``, carrying the rate-limit reset for 10006.

Every reply's rate-limit headers go to the ``track_limits`` hook (the pacer) first.
It does not retry, pace or decide anything. Bybit's own text (``retMsg``, an HTTP error
body) passes ``auth.redact``: a 10004 echoes the signed string, API key included.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Final

import attrs
import httpx
import orjson

from .auth import Credentials, redact, rest_signature
from .errors import (
    AmbiguousOutcome,
    BybitError,
    HTTPStatusError,
    NetworkError,
    ProtocolError,
    RequestTimeout,
    exchange_error,
)

__all__ = [
    "Transport",
    "dec_str",
    "encode_json",
    "encode_query",
]

#: every exception an httpx request can raise (``HTTPError`` covers transport, decoding
#: and redirect errors; the stream errors and ``InvalidURL`` stand outside it)
_HTTPX_ERRORS: Final = (httpx.HTTPError, httpx.StreamError, httpx.InvalidURL)
#: the ones raised before any byte of the request was written
_NEVER_SENT: Final = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.UnsupportedProtocol,
    httpx.InvalidURL,
)


def dec_str(value: Decimal) -> str:
    """A Decimal as Bybit wants it: plain notation, never exponent form."""
    return format(value, "f")


def encode_query(params: Mapping[str, Any]) -> str:
    """``k=v&...`` in the given order, None dropped. Values are ids, symbols, numbers
    and Bybit's own (already URL-encoded) cursors, so they are sent verbatim."""
    return "&".join(f"{k}={v}" for k, v in params.items() if v is not None)


def encode_json(params: Mapping[str, Any]) -> str:
    """Compact JSON, None dropped: these exact bytes are signed and sent."""
    return orjson.dumps({k: v for k, v in params.items() if v is not None}).decode()


@attrs.define(eq=False)
class Transport:
    """Signs, sends and parses one request; owns no retry and no pacing.

    ``credentials`` may be None for public endpoints only (a signed call then raises
    ``ValueError``). ``track_limits(path, headers)`` records a reply's rate-limit
    headers and returns its reset timestamp (ms) or None.
    """

    _client: httpx.AsyncClient
    _creds: Credentials | None = attrs.field(alias="credentials")
    _recv_window_ms: int = attrs.field(kw_only=True)
    #: the exchange-clock estimate a fresh signature is stamped with
    _now_ms: Callable[[], int] = attrs.field(kw_only=True)
    _track_limits: Callable[[str, httpx.Headers], int | None] = attrs.field(kw_only=True)

    def sign_headers(self, payload: str) -> dict[str, str]:
        """The ``X-BAPI-*`` headers for ``payload`` (query string or JSON body), with a
        fresh timestamp: a resend is signed again, never replayed."""
        creds = self._creds
        if creds is None:
            raise ValueError("this call needs API credentials")
        ts = self._now_ms()
        sig = rest_signature(
            creds.api_secret,
            timestamp_ms=ts,
            api_key=creds.api_key,
            recv_window_ms=self._recv_window_ms,
            payload=payload,
        )
        return {
            "X-BAPI-API-KEY": creds.api_key,
            "X-BAPI-TIMESTAMP": str(ts),
            "X-BAPI-SIGN": sig,
            "X-BAPI-RECV-WINDOW": str(self._recv_window_ms),
            "X-BAPI-SIGN-TYPE": "2",
        }

    async def send(
        self, method: str, path: str, query: str, body: str, *, signed: bool = True
    ) -> tuple[dict[str, Any], httpx.Headers]:
        """One attempt: sign afresh, send the exact bytes, map the reply to a result or error."""
        is_post = method == "POST"
        headers = self.sign_headers(body if is_post else query) if signed else {}
        url = f"{path}?{query}" if query else path
        try:
            if is_post:
                headers["Content-Type"] = "application/json"
                resp = await self._client.post(url, content=body.encode(), headers=headers)
            else:
                resp = await self._client.get(url, headers=headers)
        except _HTTPX_ERRORS as exc:
            raise self._transport_error(method, path, exc) from exc
        reset_ms = self._track_limits(path, resp.headers)
        if resp.status_code != 200:
            raise HTTPStatusError(resp.status_code, path, self.redact(self._status_detail(resp)))
        try:
            env = orjson.loads(resp.content)
        except orjson.JSONDecodeError as exc:
            raise ProtocolError(f"{path}: reply is not JSON") from exc
        if type(env) is not dict or type(env.get("retCode")) is not int:
            raise ProtocolError(f"{path}: reply has no integer retCode")
        code: int = env["retCode"]
        if code != 0:
            msg = env.get("retMsg")
            text = self.redact(msg) if type(msg) is str else ""
            raise exchange_error(code, text, path, reset_ms=reset_ms)
        result = env.get("result")
        if result is None:
            result = {}
        if type(result) is not dict:
            raise ProtocolError(f"{path}: result is not an object")
        return result, resp.headers

    def redact(self, text: str) -> str:
        """Bybit's text without the signed-string echo or our key/secret (10004 echoes
        ``origin_string[<ts><API key><recv><payload>]``)."""
        creds = self._creds
        if creds is None:
            return redact(text)
        return redact(text, creds.api_key, creds.api_secret)

    @staticmethod
    def _transport_error(method: str, path: str, exc: Exception) -> BybitError:
        # Connect failures, waiting for a pooled connection and a request httpx refuses
        # to build happen before a byte of the request is written: nothing can have
        # executed. Everything else may have reached the server.
        never_sent = isinstance(exc, _NEVER_SENT)
        what = f"{method} {path}: {type(exc).__name__}"
        if method == "POST" and not never_sent:
            return AmbiguousOutcome(f"{what}; sent, no usable reply: it may have been executed")
        if isinstance(exc, httpx.TimeoutException):
            return RequestTimeout(what)
        if isinstance(exc, httpx.DecodingError | httpx.TooManyRedirects):
            # the server answered, with a body or a redirect we cannot use
            return ProtocolError(f"{what}: unusable reply")
        return NetworkError(what)

    @staticmethod
    def _status_detail(resp: httpx.Response) -> str:
        try:
            env = orjson.loads(resp.content)
        except orjson.JSONDecodeError:
            return ""
        if type(env) is dict and type(env.get("retMsg")) is str:
            return f"retCode {env.get('retCode')}: {env['retMsg'][:200]}"
        return ""
