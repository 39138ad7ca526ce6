"""The simulated Bybit v5 exchange (linear USDT perpetuals) on loopback.

``open_sim(SimConfig(...))`` serves REST, the public and private WebSockets and a
control API (faults, state) on one port; ``Exchange`` is the venue without sockets.
See DESIGN section 7 for the contract.
"""

from __future__ import annotations

from .errors import VenueError
from .server import Sim, SimConfig, open_sim
from .venue import Exchange

__all__ = ["Exchange", "Sim", "SimConfig", "VenueError", "open_sim"]
