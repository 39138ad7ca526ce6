"""The simulated exchange's position and account endpoints.

One of the three endpoint groups ``sim.rest.RestApi`` routes to: positions and their
stops and leverage (``/v5/position/*``), the wallet, and the account discovery generic
clients (ccxt) make before trading (account info, the key's permissions, coin info).
Authentication, rate limits and, where Bybit asks for one, the ``category`` check
happen in the route before the call.
"""

from __future__ import annotations

import attrs

from .accounts import Account
from .errors import VenueError
from .params import Params, Result, listed_symbol, opt_int, opt_str, page, req_str
from .venue import Exchange

__all__ = ["AccountEndpoints"]

_WEEK_MS = 7 * 86_400_000


@attrs.frozen
class AccountEndpoints:
    """Positions, wallet and account facts of the venue ``ex``."""

    ex: Exchange

    def positions(self, account: Account, params: Params) -> Result:
        symbol = listed_symbol(params, self.ex.specs)
        settle = opt_str(params, "settleCoin")
        limit = opt_int(params, "limit", 20, 1, 200)
        if symbol is not None:
            names = [symbol]
        elif settle is not None:
            names = [s for s, p in sorted(account.positions.items()) if p.size != 0]
            if settle != "USDT":
                names = []
        else:
            raise VenueError(
                10001, "Missing some parameters that must be filled in, symbol or settleCoin"
            )
        if symbol is not None:
            listed = self.ex.position_rows(account, symbol, stream=False)
        else:  # settleCoin: only the rows that hold a position
            listed = [self.ex.position_row(account, s, stream=False) for s in names]
        rows, cursor = page(listed, params, limit)
        return {"list": rows, "nextPageCursor": cursor, "category": "linear"}

    def trading_stop(self, account: Account, params: Params) -> Result:
        self.ex.set_trading_stop(account, params)
        return {}

    def closed_pnl(self, account: Account, params: Params) -> Result:
        """``/v5/position/closed-pnl``: one row per closing order, newest first (by
        createdTime, as Bybit sorts them); the window ``startTime``..``endTime`` is on
        createdTime too (at most 7 days, default the last 7 days)."""
        symbol = listed_symbol(params, self.ex.specs)
        now = self.ex.now_ms()
        start_t = opt_int(params, "startTime", -1, 0, 2**62)
        end_t = opt_int(params, "endTime", -1, 0, 2**62)
        if start_t < 0 and end_t < 0:
            end_t, start_t = now, now - _WEEK_MS
        elif start_t < 0:
            start_t = end_t - _WEEK_MS
        elif end_t < 0:
            end_t = start_t + _WEEK_MS
        if end_t < start_t:
            raise VenueError(10001, "params error: endTime must not be before startTime")
        if end_t - start_t > _WEEK_MS:
            raise VenueError(10001, "params error: the time range must not exceed 7 days")
        limit = opt_int(params, "limit", 50, 1, 100)
        records = [
            r
            for r in sorted(
                account.closed_pnl.values(),
                key=lambda r: (-r.created_ms, r.order.order_id),
            )
            if (symbol is None or r.order.symbol == symbol) and start_t <= r.created_ms <= end_t
        ]
        rows, cursor = page(records, params, limit)
        return {
            "nextPageCursor": cursor,
            "category": "linear",
            "list": [self.ex.closed_pnl_row(r) for r in rows],
        }

    def set_leverage(self, account: Account, params: Params) -> Result:
        self.ex.set_leverage(account, params)
        return {}

    def wallet(self, account: Account, params: Params) -> Result:
        account_type = req_str(params, "accountType")
        if account_type != "UNIFIED":
            raise VenueError(10001, "accountType only support UNIFIED")
        coin = opt_str(params, "coin")
        row = self.ex.wallet_row(account)
        if coin is not None and "USDT" not in coin.split(","):
            row["coin"] = []
        return {"list": [row]}

    # ------------------------------------------------ account discovery
    def account_info(self, _account: Account, _params: Params) -> Result:
        """``/v5/account/info``: a unified trading account (UTA 2.0), regular margin."""
        return {
            "marginMode": "REGULAR_MARGIN",
            "updatedTime": str(self.ex.now_ms()),
            "unifiedMarginStatus": 5,
            "dcpStatus": "OFF",
            "timeWindow": 10,
            "smpGroup": 0,
            "isMasterTrader": False,
            "spotHedgingStatus": "OFF",
        }

    def api_key_info(self, account: Account, _params: Params) -> Result:
        """``/v5/user/query-api``: this key, read-write, trading permissions, UTA."""
        return {
            "id": "1",
            "note": "simulator",
            "apiKey": account.api_key,
            "readOnly": 0,
            "secret": "",
            "permissions": {
                "ContractTrade": ["Order", "Position"],
                "Spot": [],
                "Wallet": ["AccountTransfer"],
                "Options": [],
                "Derivatives": [],
                "CopyTrading": [],
                "BlockTrade": [],
                "Exchange": [],
                "NFT": [],
                "Affiliate": [],
            },
            "ips": ["*"],
            "type": 1,
            "deadlineDay": -1,
            "expiredAt": "",
            "createdAt": "2024-01-01T00:00:00Z",
            "unified": 0,
            "uta": 1,
            "userID": 1,
            "inviterID": 0,
            "vipLevel": "No VIP",
            "mktMakerLevel": "0",
            "affiliateID": 0,
            "rsaPublicKey": "",
            "isMaster": True,
            "parentUid": "0",
            "kycLevel": "LEVEL_DEFAULT",
            "kycRegion": "",
        }

    def coin_info(self, _account: Account, _params: Params) -> Result:
        """``/v5/asset/coin/query-info``: the one coin the simulator knows, USDT."""
        chain = {
            "chainType": "ERC20",
            "confirmation": "12",
            "withdrawFee": "1",
            "depositMin": "0",
            "withdrawMin": "2",
            "chain": "ETH",
            "chainDeposit": "1",
            "chainWithdraw": "1",
            "minAccuracy": "6",
            "withdrawPercentageFee": "0",
        }
        return {
            "rows": [{"name": "USDT", "coin": "USDT", "remainAmount": "1000000", "chains": [chain]}]
        }
