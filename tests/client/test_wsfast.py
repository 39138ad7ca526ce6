"""The lean public-stream WebSocket connection (``bybit.wsfast``) against a real
trio-websocket server on loopback: messages both ways, fragments joined, protocol pings
answered, a close by the peer and a refused handshake surface as errors that
``WsConnection`` treats as drops, and a burst yields to other tasks."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.lowlevel
import trio_websocket

from scalper.bybit.ws import _DROPS
from scalper.bybit.wsfast import WsClosed, open_wsproto


async def _serve(nursery: trio.Nursery, handler: Any) -> int:
    async def on_request(request: trio_websocket.WebSocketRequest) -> None:
        if request.path == "/refuse":
            await request.reject(403)
            return
        ws = await request.accept()
        await handler(ws)

    server = await nursery.start(trio_websocket.serve_websocket, on_request, "127.0.0.1", 0, None)
    return int(server.port)


async def test_messages_both_ways_fragments_and_pings() -> None:
    got: list[str] = []

    async def handler(ws: trio_websocket.WebSocketConnection) -> None:
        got.append(str(await ws.get_message()))
        await ws.send_message("one")
        await ws.send_message("x" * 200_000)  # big enough to come in several reads
        await ws.ping(b"p1")  # answered by the client without the caller's help
        await ws.send_message(b"\x00bin")
        await ws.aclose()

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            port = await _serve(nursery, handler)
            async with open_wsproto(f"ws://127.0.0.1:{port}/v5/public/linear") as ws:
                await ws.send_message('{"op":"subscribe"}')
                assert await ws.get_message() == "one"
                assert await ws.get_message() == "x" * 200_000
                assert await ws.get_message() == b"\x00bin"
                with pytest.raises(WsClosed) as closed:
                    await ws.get_message()
                assert isinstance(closed.value, _DROPS)  # a drop: WsConnection reconnects
            nursery.cancel_scope.cancel()
    assert got == ['{"op":"subscribe"}']


async def test_a_refused_handshake_is_an_error_that_counts_as_a_drop() -> None:
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:

            async def idle(ws: trio_websocket.WebSocketConnection) -> None:
                await trio.sleep_forever()

            port = await _serve(nursery, idle)
            with pytest.raises(WsClosed) as refused:
                async with open_wsproto(f"ws://127.0.0.1:{port}/refuse"):
                    pass
            assert isinstance(refused.value, _DROPS)
            nursery.cancel_scope.cancel()


async def test_a_burst_of_queued_messages_still_yields_to_other_tasks() -> None:
    async def handler(ws: trio_websocket.WebSocketConnection) -> None:
        for i in range(200):
            await ws.send_message(str(i))
        await trio.sleep_forever()

    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await trio.lowlevel.checkpoint()
            ticks += 1

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            port = await _serve(nursery, handler)
            async with open_wsproto(f"ws://127.0.0.1:{port}/", yield_every=16) as ws:
                await trio.sleep(0.2)  # let all 200 arrive: one read holds many
                nursery.start_soon(ticker)
                start = ticks
                for i in range(200):
                    assert await ws.get_message() == str(i)
                assert ticks - start >= 200 // 16 - 1  # the reader yielded as it went
            nursery.cancel_scope.cancel()


async def test_a_frame_over_the_size_bound_closes_the_connection_as_a_drop() -> None:
    async def handler(ws: trio_websocket.WebSocketConnection) -> None:
        await ws.send_message("x" * 2000)
        await trio.sleep_forever()

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            port = await _serve(nursery, handler)
            async with open_wsproto(f"ws://127.0.0.1:{port}/", max_message_size=1000) as ws:
                with pytest.raises(WsClosed, match="larger than 1000 bytes") as closed:
                    await ws.get_message()
                assert isinstance(closed.value, _DROPS)
                with pytest.raises(WsClosed, match="larger than 1000 bytes"):
                    await ws.get_message()  # closed for good, with its reason
            nursery.cancel_scope.cancel()
