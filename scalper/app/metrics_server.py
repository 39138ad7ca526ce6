"""A tiny HTTP/1.1 server for Prometheus: ``GET /metrics`` and nothing else.

Why not hypercorn + starlette: this endpoint must cost nothing and never take the bot
down, and one route does not need a framework. Parsing is h11's (sans-IO: bytes in,
events out), so malformed requests are rejected the way a real server rejects them;
this module only moves bytes between a trio socket and an ``h11.Connection``.

Rules:

* ``GET /metrics`` (any query string ignored) -> 200, ``text/plain; version=0.0.4``;
  another path -> 404; another method -> 405 with ``Allow: GET``; a request h11 cannot
  parse -> its 4xx hint (400, 431, ...). Every reply carries ``Connection: close``
  and the connection is closed after it: a scrape every few seconds gains nothing
  from keep-alive, and one request per connection keeps the code short.
* A client that sends nothing useful within ``REQUEST_TIMEOUT_S`` is dropped, so a
  stuck peer cannot hold a connection open forever; at most ``MAX_CONNECTIONS`` are
  served at once.
* Nothing a client does ends the server: protocol errors, resets and timeouts are
  handled per connection. A failure while rendering (a ``gauges`` callback raising)
  becomes a 500 and a logged traceback; the server keeps serving.

The figures are read from the ``Metrics`` object in the trio thread, at request time,
so the endpoint shows exactly what the status panel shows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import h11
import trio
from loguru import logger

from .metrics import Metrics

__all__ = ["CONTENT_TYPE", "MAX_CONNECTIONS", "REQUEST_TIMEOUT_S", "serve_metrics"]

#: the Content-Type of Prometheus text exposition format 0.0.4
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: a client must deliver its whole request within this many seconds
REQUEST_TIMEOUT_S = 5.0
#: connections served at once; more wait in the accept queue
MAX_CONNECTIONS = 16
#: after the reply, how long to read (and discard) what the client still sends before
#: closing, so the kernel does not answer unread bytes with a reset that could destroy
#: the reply before the client reads it
_LINGER_S = 1.0
_RECEIVE_BYTES = 16_384
_PATH = b"/metrics"


async def serve_metrics(
    metrics: Metrics,
    port: int,
    *,
    host: str = "127.0.0.1",
    gauges: Callable[[], Mapping[str, float]] | None = None,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``metrics`` (plus ``gauges()``, read per scrape) on ``host:port`` until cancelled.

    ``task_status.started(port)`` reports the port actually bound once the socket
    listens, so ``port=0`` (an ephemeral port, for tests) works with ``nursery.start``.
    Binding errors (port in use, bad host) raise ``OSError`` before ``started``.
    """
    listeners = await trio.open_tcp_listeners(port, host=host)
    bound: int = listeners[0].socket.getsockname()[1]
    limiter = trio.CapacityLimiter(MAX_CONNECTIONS)

    def render() -> bytes:
        extra = gauges() if gauges is not None else None
        return metrics.to_prometheus(extra).encode()

    async def handle(stream: trio.SocketStream) -> None:
        async with limiter, stream:
            await _serve_one(stream, render)

    logger.info("metrics on http://{}:{}/metrics", host, bound)
    task_status.started(bound)
    await trio.serve_listeners(handle, listeners)


async def _serve_one(stream: trio.SocketStream, render: Callable[[], bytes]) -> None:
    """Read one request, send one reply, close. Never raises for the client's faults."""
    conn = h11.Connection(h11.SERVER)
    head = False
    try:
        with trio.move_on_after(REQUEST_TIMEOUT_S) as timeout:
            request = await _read_request(stream, conn)
        if timeout.cancelled_caught:
            logger.debug("metrics: no complete request within {} s", REQUEST_TIMEOUT_S)
            return
        if request is None:  # the client closed without a request
            return
        head = request.method == b"HEAD"
        status, headers, body = _route(request, render)
    except h11.RemoteProtocolError as exc:
        logger.debug("metrics: bad request: {}", exc)
        if conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        status, headers, body = exc.error_status_hint, [], b"bad request\n"
    except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
        logger.debug("metrics: connection lost: {!r}", exc)
        return
    try:
        with trio.move_on_after(REQUEST_TIMEOUT_S):
            await _reply(stream, conn, status, headers, b"" if head else body, len(body))
    except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
        logger.debug("metrics: connection lost while replying: {!r}", exc)


async def _read_request(stream: trio.SocketStream, conn: h11.Connection) -> h11.Request | None:
    """The request line and headers (a body, if any, is left unread), or None at EOF."""
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            data = await stream.receive_some(_RECEIVE_BYTES)
            conn.receive_data(data)  # b"" means EOF: h11 then reports it or an error
            continue
        if isinstance(event, h11.Request):
            return event
        if isinstance(event, h11.ConnectionClosed):
            return None
        # nothing else can come before a Request on a server connection
        raise h11.RemoteProtocolError(f"unexpected {type(event).__name__}")


def _route(
    request: h11.Request, render: Callable[[], bytes]
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Status, extra headers and body for one request."""
    path = request.target.split(b"?", 1)[0]
    if path != _PATH:
        return 404, [], b"not found: try GET /metrics\n"
    if request.method != b"GET":
        return 405, [(b"Allow", b"GET")], b"method not allowed\n"
    try:
        body = render()
    except Exception:  # noqa: BLE001 - a failing gauge must not take the bot down: 500
        logger.exception("metrics: rendering failed")
        return 500, [], b"metrics rendering failed\n"
    return 200, [(b"Content-Type", CONTENT_TYPE.encode())], body


async def _reply(
    stream: trio.SocketStream,
    conn: h11.Connection,
    status: int,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
    length: int,
) -> None:
    """Send the whole reply, then close gracefully (half-close, drain briefly).

    ``length`` is the Content-Length; ``body`` is empty for a HEAD request (h11
    refuses a body in a reply to HEAD).
    """
    if not any(name == b"Content-Type" for name, _ in headers):
        headers = [*headers, (b"Content-Type", b"text/plain; charset=utf-8")]
    headers = [
        *headers,
        (b"Content-Length", str(length).encode()),
        (b"Connection", b"close"),
    ]
    parts = [conn.send(h11.Response(status_code=status, headers=headers))]
    if body:
        parts.append(conn.send(h11.Data(data=body)))
    parts.append(conn.send(h11.EndOfMessage()))
    await stream.send_all(b"".join(part for part in parts if part))
    await stream.send_eof()
    with trio.move_on_after(_LINGER_S):
        while await stream.receive_some(_RECEIVE_BYTES):
            pass
