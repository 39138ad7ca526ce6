"""Our client order ids (``orderLinkId``): how they are made and how ours are told apart.

Every order carries one, so a restart, a reconnect or a late push can always tell
which orders are ours: ``<prefix>-<session tag>-<kind><counter>``, where ``kind`` is
``e`` (an entry) or ``x`` (an exit), the session tag differs between runs (a base-36
start time) and the counter counts this run's orders from 1.
"""

from __future__ import annotations

from typing import Literal

import attrs

__all__ = ["MAX_ID_LEN", "LinkIds", "is_own_order_link_id", "make_session_tag"]

#: Bybit's limit on an orderLinkId's length
MAX_ID_LEN = 36

Kind = Literal["e", "x"]


def is_own_order_link_id(link_id: str, prefix: str) -> bool:
    """True when a client order id was made by a scalper engine with this prefix.

    Used at start-up and after a reconnect to find stray orders of earlier sessions.
    """
    return link_id.startswith(prefix + "-")


def make_session_tag(now_ms: int) -> str:
    """A short tag for this run's order ids (base 36 of the start time in ms).

    The shell calls it once at start-up with the wall clock, so ids of two runs never
    collide (a collision would make Bybit report a duplicate and the retry logic treat
    another run's order as ours).
    """
    if now_ms < 0:
        raise ValueError("now_ms must be >= 0")
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    n = now_ms
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out[-12:]


@attrs.define
class LinkIds:
    """The ids one engine instance issues, and the test of whether it issued one."""

    prefix: str
    session_tag: str
    #: how many ids were issued (the last one's number)
    issued: int = 0

    @property
    def head(self) -> str:
        return f"{self.prefix}-{self.session_tag}-"

    def next(self, kind: Kind) -> str:
        """A new id of ``kind``: ``e`` for an entry, ``x`` for a close."""
        self.issued += 1
        link_id = f"{self.head}{kind}{self.issued}"
        if len(link_id) > MAX_ID_LEN:  # pragma: no cover - 10**10 orders in one run
            raise OverflowError("order id counter exhausted; restart with a new session tag")
        return link_id

    def owns(self, link_id: str) -> bool:
        """True when this instance issued ``link_id`` (not merely one of the same prefix)."""
        head = self.head
        if not link_id.startswith(head):
            return False
        rest = link_id[len(head) :]
        return (
            len(rest) >= 2
            and rest[0] in "ex"
            and rest[1:].isdigit()
            and 1 <= int(rest[1:]) <= self.issued
        )
