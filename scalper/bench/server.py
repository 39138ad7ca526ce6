"""The frame server of ``scalper bench``: a minimal WebSocket server in its own process.

It speaks just enough of RFC 6455 for a Bybit public-stream client (ours, pybit's, a
bare trio-websocket loop): the HTTP upgrade, unmasked server frames, masked client
frames read and answered (an application ping gets Bybit's pong). Once a client
subscribes to an ``orderbook`` topic it pushes the bench's synthetic
``orderbook.50`` deltas and ``publicTrade`` frames, in one of two modes chosen by the
URL path:

* ``/flood/N``: the first N frames, pre-framed into one buffer and written with
  ``sendall`` as fast as the socket takes them (the server is never the bottleneck:
  it does no per-frame work);
* ``/rate/R/S``: R frames/s for S seconds, each stamped at send time: the frame's
  ``ts`` and every trade's ``T`` hold ``STAMP_BASE + CLOCK_MONOTONIC in us`` (a clock
  shared by all processes on the machine), so the client measures tick-to-decision
  from the moment the frame left the server.

Plain sockets and threads, no event loop: fewer moving parts than what it measures.
Run by the bench as ``python -m scalper.bench.server --frames N``; it prints
``port <n>`` once listening and serves until killed. Loopback only.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import re
import socket
import struct
import sys
import threading
import time

from .clock import STAMP_BASE, stamp_us

__all__ = ["STAMP_BASE", "frame_bytes", "main", "stamp_us"]

_PLACEHOLDER = str(STAMP_BASE).encode()
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_STAMPED = re.compile(rb'("ts":|"T":|"cts":)\d+')


def frame_bytes(payload: bytes) -> bytes:
    """One unmasked server-to-client text frame."""
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", 0x81, n)
    elif n < 65536:
        header = struct.pack("!BBH", 0x81, 126, n)
    else:
        header = struct.pack("!BBQ", 0x81, 127, n)
    return header + payload


def _recv_exact(conn: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = conn.recv(n - len(out))
        if not chunk:
            raise ConnectionError("client closed")
        out += chunk
    return out


def _read_frame(conn: socket.socket) -> tuple[int, bytes]:
    """One client frame (masked, RFC 6455): (opcode, payload)."""
    b0, b1 = _recv_exact(conn, 2)
    n = b1 & 0x7F
    if n == 126:
        (n,) = struct.unpack("!H", _recv_exact(conn, 2))
    elif n == 127:
        (n,) = struct.unpack("!Q", _recv_exact(conn, 8))
    mask = _recv_exact(conn, 4) if b1 & 0x80 else b"\0\0\0\0"
    data = _recv_exact(conn, n)
    payload = bytes(c ^ mask[i % 4] for i, c in enumerate(data))
    return b0 & 0x0F, payload


class _Client:
    """One connection: handshake, a reader thread for client frames, one pusher."""

    def __init__(self, conn: socket.socket, frames: list[bytes]) -> None:
        self.conn = conn
        self.frames = frames
        self.lock = threading.Lock()
        self.started = False

    def send(self, data: bytes) -> None:
        with self.lock:
            self.conn.sendall(data)

    def serve(self) -> None:
        try:
            path = self._handshake()
            while True:
                opcode, payload = _read_frame(self.conn)
                if opcode == 8:  # close
                    return
                if opcode == 9:  # protocol ping
                    self.send(b"\x8a" + bytes([len(payload)]) + payload)
                elif opcode == 1:
                    self._text(payload, path)
        except (ConnectionError, OSError):
            return
        finally:
            self.conn.close()

    def _handshake(self) -> str:
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = self.conn.recv(4096)
            if not chunk:
                raise ConnectionError("no handshake")
            request += chunk
        head = request.split(b"\r\n\r\n", 1)[0].decode("latin-1")
        lines = head.split("\r\n")
        path = lines[0].split(" ")[1]
        key = ""
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "sec-websocket-key":
                key = value.strip()
        accept = base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest()).decode()
        self.send(
            (
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
            ).encode()
        )
        return path

    def _text(self, payload: bytes, path: str) -> None:
        if b'"ping"' in payload:
            self.send(frame_bytes(b'{"success":true,"ret_msg":"pong","op":"ping"}'))
        elif b'"subscribe"' in payload and b"orderbook" in payload and not self.started:
            self.started = True
            threading.Thread(target=self._push, args=(path,), daemon=True).start()

    def _push(self, path: str) -> None:
        parts = path.strip("/").split("/")
        try:
            if parts[0] == "flood":
                self._flood(int(parts[1]))
            elif parts[0] == "rate":
                self._rate(float(parts[1]), float(parts[2]))
        except OSError:
            return

    def _flood(self, n: int) -> None:
        framed = [frame_bytes(f) for f in self.frames[: n + 1]]
        step = 512  # frames per sendall: whole frames only, so a pong may slip in between
        for i in range(0, len(framed), step):
            self.send(b"".join(framed[i : i + step]))

    def _rate(self, rate: float, seconds: float) -> None:
        count = int(rate * seconds)
        pieces = [
            _STAMPED.sub(rb"\g<1>" + _PLACEHOLDER, f).split(_PLACEHOLDER) for f in self.frames
        ]
        interval = 1.0 / rate
        start = time.perf_counter()
        for i in range(count + 1):
            next_at = start + i * interval
            delay = next_at - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            stamp = str(stamp_us()).encode()
            self.send(frame_bytes(stamp.join(pieces[i % len(pieces)])))


def main(argv: list[str] | None = None) -> int:
    """Serve until killed."""
    parser = argparse.ArgumentParser(prog="scalper.bench_server")
    parser.add_argument("--frames", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    from .frames import make_frames  # the same synthetic stream as the in-process rows

    frames = make_frames(args.frames, args.seed)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    sys.stdout.write(f"port {listener.getsockname()[1]}\n")
    sys.stdout.flush()
    while True:
        conn, _ = listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=_Client(conn, frames).serve, daemon=True).start()


if __name__ == "__main__":
    raise SystemExit(main())
