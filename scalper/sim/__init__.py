"""The simulated Bybit v5 exchange (linear USDT perpetuals) on loopback.

It is the test bed and the newcomer's default exchange, so it behaves like Bybit, not
like a stub: same paths, envelopes, field names and JSON types (numbers as strings),
signature and recv_window checks, retCodes for bad input, rate limits. One port serves
REST, ``/v5/public/linear``, ``/v5/private`` and a control API (``/sim/state``, ``/sim/faults``)::

    async with open_sim(SimConfig(seed=1, rate=500)) as sim:
        sim.rest_url          # "http://127.0.0.1:PORT"
        sim.ws_public_url     # "ws://127.0.0.1:PORT/v5/public/linear"
        sim.ws_private_url    # "ws://127.0.0.1:PORT/v5/private"
        sim.inject({"kind": "ret_code", "path": "/v5/order/create", "code": 10006})
        sim.state()           # == GET /sim/state
        sim.exchange          # the venue (market, books, accounts) for tests

Modules, one job each: ``specs`` (listed contracts), ``book`` (integer L2 book),
``market`` (seeded random walk, trades), ``accounts`` (orders, positions, wallet),
``checks`` (Bybit's refusals of order parameters), ``fills`` (taking liquidity, booking
fills), ``stops`` (protective stops of positions), ``matching`` (the order operations),
``venue`` (market + matching, and the fan-out of changes), ``rows``/``marketrows``
(Bybit's record shapes), ``public``/``private`` (stream topics), ``params`` (reading
request parameters), ``rest`` (routing, auth, rate limits) with its endpoint groups
``rest_market``/``rest_orders``/``rest_account``, ``ws`` (WebSocket sessions),
``outbox`` (a connection's send queue), ``faults`` (fault registry), ``app`` (the ASGI
app), ``server`` (``open_sim``), ``cli`` (``scalper exchange``).
"""

from __future__ import annotations

from .errors import VenueError
from .server import Sim, SimConfig, open_sim
from .venue import Exchange

__all__ = ["Exchange", "Sim", "SimConfig", "VenueError", "open_sim"]
