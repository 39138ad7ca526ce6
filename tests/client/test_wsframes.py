"""The fast lane of ``bybit.wsfast`` (``bybit.wsframes.FrameSplitter``): whatever the
server sends and however the bytes are cut into reads, the connection yields the same
messages, in the same order, as wsproto alone would, answers pings, and closes on what
wsproto closes on (invalid UTF-8, a masked server frame, a message over the size cap)."""

from __future__ import annotations

import random
import struct
from collections import deque

import pytest
import trio
import trio.testing
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Ping, Request, TextMessage
from wsproto.events import BytesMessage as Binary

from scalper.bybit.wsfast import WsClosed, WsProtoConnection
from scalper.bybit.wsframes import FrameSplitter, FrameTooLarge


def _open_pair() -> tuple[WSConnection, WSConnection]:
    """A wsproto client and server, in memory, past the handshake."""
    client = WSConnection(ConnectionType.CLIENT)
    server = WSConnection(ConnectionType.SERVER)
    server.receive_data(client.send(Request(host="x", target="/")))
    assert [type(e) for e in server.events()] == [Request]
    client.receive_data(server.send(AcceptConnection()))
    assert [type(e) for e in client.events()] == [AcceptConnection]
    return client, server


def _frame(b0: int, payload: bytes, *, length_form: int = 0) -> bytes:
    """A hand-made server frame; ``length_form`` 126/127 forces a longer length field."""
    n = len(payload)
    if length_form == 126 or (not length_form and 126 <= n < 65536):
        return struct.pack("!BBH", b0, 126, n) + payload
    if length_form == 127 or (not length_form and n >= 65536):
        return struct.pack("!BBQ", b0, 127, n) + payload
    return struct.pack("!BB", b0, n) + payload


def _stream(server: WSConnection) -> tuple[bytes, list[str | bytes]]:
    """A server byte stream of every kind the fast lane must get right, and the
    messages a client must get out of it."""
    parts: list[bytes] = []
    expect: list[str | bytes] = []
    for i in range(40):
        text = '{"topic":"orderbook.50.X","n":' + str(i) + ',"pad":"' + "é" * (i * 7) + '"}'
        parts.append(server.send(TextMessage(data=text)))
        expect.append(text)
        if i % 9 == 0:  # a ping between data frames: answered, not a message
            parts.append(server.send(Ping(payload=b"p%d" % i)))
        if i % 11 == 0:  # a fragmented text message, joined
            parts.append(server.send(TextMessage(data="frag-a", message_finished=False)))
            parts.append(server.send(Ping(payload=b"mid")))  # a control frame inside
            parts.append(server.send(TextMessage(data="frag-b", message_finished=True)))
            expect.append("frag-afrag-b")
        if i % 13 == 0:
            parts.append(server.send(Binary(data=b"\x00bin%d" % i)))
            expect.append(b"\x00bin%d" % i)
    big = "x" * 200_000  # a 64-bit length field, over several reads
    parts.append(server.send(TextMessage(data=big)))
    expect.append(big)
    parts.append(_frame(0x81, b"short", length_form=126))  # non-minimal: wsproto refuses
    return b"".join(parts), expect


async def _receive_all(chunks: list[bytes], count: int) -> tuple[list[str | bytes], bytes]:
    client, _ = _open_pair()
    ours, theirs = trio.testing.memory_stream_pair()
    ws = WsProtoConnection(
        ours, client, receive_size=4096, max_message_size=1 << 20, yield_every=16
    )
    got: list[str | bytes] = []
    sent_back = bytearray()
    async with trio.open_nursery() as nursery:

        async def feed() -> None:
            for chunk in chunks:
                await theirs.send_all(chunk)
                await trio.lowlevel.checkpoint()

        async def collect() -> None:  # whatever the client answers (pongs, a close)
            while True:
                sent_back.extend(await theirs.receive_some(1 << 16))

        nursery.start_soon(feed)
        nursery.start_soon(collect)
        with trio.fail_after(10):
            while len(got) < count:
                try:
                    got.append(await ws.get_message())
                except WsClosed:
                    break
            await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    return got, bytes(sent_back)


def _cut(data: bytes, rng: random.Random) -> list[bytes]:
    chunks, pos = [], 0
    while pos < len(data):
        step = rng.choice((1, 2, 3, 7, 50, 600, 5000, 70_000))
        chunks.append(data[pos : pos + step])
        pos += step
    return chunks


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_any_cut_of_the_stream_yields_what_wsproto_alone_yields(seed: int) -> None:
    _, server = _open_pair()
    data, expect = _stream(server)
    # wsproto alone, for reference, on the same bytes
    reference, _ = _open_pair()
    reference.receive_data(data)
    alone: list[str | bytes] = []
    part: list[str | bytes] = []
    for event in reference.events():  # messages as wsproto cuts them, fragments joined
        if isinstance(event, TextMessage | Binary):
            part.append(event.data)
            if event.message_finished:
                alone.append(("" if isinstance(event, TextMessage) else b"").join(part))  # type: ignore[arg-type]
                part = []
    assert alone == expect  # the last frame's non-minimal length is a protocol error
    got, sent_back = await _receive_all(_cut(data, random.Random(seed)), len(alone) + 1)
    assert got == alone
    assert b"\x88" in sent_back  # and we closed on it, as wsproto does
    assert sent_back.count(b"\x8a") >= 5  # every ping (5 + 4 inside fragments) answered


async def test_invalid_utf8_closes_as_wsproto_does() -> None:
    data = _frame(0x81, b'{"topic":"a"}') + _frame(0x81, b"\xff\xfe bad")
    got, sent_back = await _receive_all([data], 5)
    assert got == ['{"topic":"a"}']  # the good one first, then the close
    assert sent_back.startswith(b"\x88")  # our close frame (1007) went back


async def test_a_masked_server_frame_is_refused_by_wsproto() -> None:
    masked = struct.pack("!BB", 0x81, 0x80 | 5) + b"\0\0\0\0" + b"hello"
    got, sent_back = await _receive_all([_frame(0x81, b"ok") + masked], 5)
    assert got == ["ok"]
    assert sent_back.startswith(b"\x88")


def test_a_frame_over_the_cap_is_refused_before_it_is_buffered() -> None:
    splitter = FrameSplitter(max_size=1000)
    splitter.feed(struct.pack("!BBH", 0x81, 126, 5000))  # the header alone
    with pytest.raises(FrameTooLarge):
        splitter.split(deque())


def test_a_partial_frame_waits_for_the_rest() -> None:
    splitter = FrameSplitter(max_size=1 << 20)
    frame = _frame(0x81, b"x" * 300)
    out: deque[str | bytes] = deque()
    for i in range(len(frame) - 1):
        splitter.feed(frame[i : i + 1])
        assert splitter.split(out) is None
    assert not out
    splitter.feed(frame[-1:])
    assert splitter.split(out) is None
    assert list(out) == ["x" * 300]


def test_bytes_handed_to_split_are_the_same_as_fed_first() -> None:
    frames = _frame(0x81, b"a" * 200) + _frame(0x82, b"b" * 3) + _frame(0x81, b"c")
    ping = _frame(0x89, b"p")
    stream = frames + ping + _frame(0x81, b"d")
    fed, given = FrameSplitter(max_size=1 << 20), FrameSplitter(max_size=1 << 20)
    out_fed: deque[str | bytes] = deque()
    out_given: deque[str | bytes] = deque()
    slow_fed, slow_given = [], []
    for i in range(0, len(stream), 7):  # cuts through headers and payloads
        piece = stream[i : i + 7]
        fed.feed(piece)
        slow_fed.append(fed.split(out_fed))
        slow_given.append(given.split(out_given, piece))
    assert slow_given == slow_fed and ping in slow_given  # the ping, whole, once
    assert fed.split(out_fed) is None and given.split(out_given) is None
    assert list(out_given) == list(out_fed) == ["a" * 200, b"bbb", "c", "d"]


async def test_a_new_message_inside_a_fragmented_one_is_refused_by_wsproto() -> None:
    start = _frame(0x01, b"frag-")  # text, not final
    intruder = _frame(0x81, b"new")  # a whole new message before the continuation
    got, sent_back = await _receive_all([start + intruder + _frame(0x80, b"end")], 5)
    assert got == []
    assert sent_back.startswith(b"\x88")
