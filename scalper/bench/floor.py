"""The wake-up floor under a fixed-rate row: the same stream read by loops that do nothing.

At a low rate every frame is its own wake-up, and on a shared VM the wake-up, not the
work, is most of what a receiver costs. Two loops read the row's stream and drop the
bytes, framing nothing, so the row's CPU share reads as a ladder:

* ``"plain"``: ``select.poll`` + ``os.read`` in plain Python, no event loop: what
  the machine, the kernel and the interpreter cost per wake-up;
* ``"trio"``: ``trio.lowlevel.wait_readable`` + ``os.read`` under ``trio.run``, one
  task: what trio's scheduler adds to that, before any WebSocket framing;

then the row's ``bybit.wsfast`` receiving alone (framing every message) and ours
(everything). Both loops connect with a hand-written upgrade request and one masked
subscribe frame: this module must not lean on the transports it puts a floor under.
"""

from __future__ import annotations

import json
import os
import select
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import trio

from .frames import SYMBOL
from .loopback import Run

__all__ = ["floor_client"]

_SUBSCRIBE = json.dumps(
    {"op": "subscribe", "args": [f"orderbook.50.{SYMBOL}", f"publicTrade.{SYMBOL}"]}
).encode()


def _masked_text(payload: bytes) -> bytes:
    # A client frame must be masked (RFC 6455 5.3); a zero key leaves the bytes as they are.
    assert len(payload) < 126
    return bytes((0x81, 0x80 | len(payload))) + b"\0\0\0\0" + payload


def _subscribed(url: str, timeout_s: float) -> socket.socket:
    """A connected, upgraded, subscribed socket (non-blocking) on the frame server."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout_s)
    try:
        _upgrade(sock, parts.path, parts.netloc)
        sock.sendall(_masked_text(_SUBSCRIBE))
    except BaseException:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def _upgrade(sock: socket.socket, path: str, host: str) -> None:
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n"
    )
    sock.sendall(request.encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("frame server closed during the upgrade")
        head += chunk
    if not head.startswith(b"HTTP/1.1 101"):
        raise ConnectionError(f"frame server refused the upgrade: {head[:40]!r}")


def _drop(fd: int, run: Run) -> bool:
    """Read what has come and drop it, counting the read; False once the peer closed."""
    try:
        data = os.read(fd, 65536)
    except BlockingIOError:
        return True
    if data:
        run.frames += 1
    return bool(data)


def _plain_loop(fd: int, seconds: float, run: Run) -> None:
    poller = select.poll()  # as cheap as epoll for one descriptor, and on every unix
    poller.register(fd, select.POLLIN)
    with _measured(run):
        end = time.perf_counter() + seconds
        while (left := end - time.perf_counter()) > 0:
            if poller.poll(left * 1000.0) and not _drop(fd, run):
                break


async def _trio_loop(fd: int, seconds: float, run: Run) -> None:
    # measured inside trio.run: the loop's start and end are not what a wake-up costs
    with _measured(run), trio.move_on_after(seconds):
        while True:
            await trio.lowlevel.wait_readable(fd)
            if not _drop(fd, run):
                break


@contextmanager
def _measured(run: Run) -> Iterator[None]:
    cpu0, t0 = time.process_time(), time.perf_counter()
    try:
        yield
    finally:
        run.elapsed_s = time.perf_counter() - t0
        run.cpu_s = time.process_time() - cpu0


def floor_client(url: str, seconds: float, loop: str) -> Run:
    """Read ``url``'s stream for ``seconds`` with the ``loop`` named (``"plain"`` or
    ``"trio"``); ``frames`` counts the reads (one per wake-up at a low rate)."""
    if loop not in ("plain", "trio"):
        raise ValueError(f"no floor loop {loop!r}")
    run = Run()
    sock = _subscribed(url, seconds + 5.0)
    try:
        if loop == "plain":
            _plain_loop(sock.fileno(), seconds, run)
        else:
            trio.run(_trio_loop, sock.fileno(), seconds, run)
    finally:
        sock.close()
    return run
