"""The exchange-side stop of the open position: what is wanted, asked for, held.

Every position carries a stop on the exchange (``/v5/position/trading-stop``), so a
crash of the bot never leaves it unprotected. The engine asks once per wanted value
until the exchange answers or a position read says what it holds; a refusal closes
the position (a position the exchange will not protect is not kept).
"""

from __future__ import annotations

from decimal import Decimal

import attrs

__all__ = ["Protection"]


@attrs.define
class Protection:
    """The stop's three facts: held by the exchange, last asked for, refused."""

    #: the stop the exchange is known to hold (a position read, or ``ProtectionSet``)
    held: Decimal | None = None
    #: the stop last asked for (once per wanted value until an answer or a read)
    sent: Decimal | None = None
    #: why the exchange refused the stop (the position is then closed at once)
    refused: str | None = None

    def forget(self) -> None:
        """A new position (or none): what the exchange held for the old one is moot."""
        self.held = self.sent = None

    def ask(self, wanted: Decimal | None) -> bool:
        """True when ``wanted`` must be sent now (and note it as sent)."""
        if wanted is None or wanted == self.held or wanted == self.sent:
            return False
        self.sent = wanted
        return True
