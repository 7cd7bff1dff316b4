"""The Bybit v5 REST look-ups our own code makes, through pybit (blocking: call off the event loop).

* the funding rate of the latest settlement (``/v5/market/funding/history``), fetched after each
  00/08/16 UTC settlement - never by subscribing to ``tickers`` (DESIGN.md "Live path");
* the real account for shadow mode: the USDT wallet (equity, available balance) and the BTCUSDT
  position - read-only.

pybit's ``HTTP`` session builds its URL from ``endpoint``; pointing that attribute at the stand-in
(or a mirror) is pybit's own way to change the host. Keys are passed in, never read here, never
logged (pybit logs requests at DEBUG only, without the secret).
"""

from __future__ import annotations

from dataclasses import dataclass

from pybit.unified_trading import HTTP

CATEGORY = "linear"
DEFAULT_REST = {
    "mainnet": "https://api.bybit.com",
    "demo": "https://api-demo.bybit.com",
    "testnet": "https://api-testnet.bybit.com",
}


class RestError(RuntimeError):
    """A Bybit answer with ``retCode != 0`` (the code and message, never the request's keys)."""


@dataclass(frozen=True)
class AccountView:
    equity: float
    available: float
    position_side: str  # "LONG" | "SHORT" | "FLAT"
    position_qty: float
    position_entry: float | None


class BybitRest:
    """A pybit session on one endpoint; every method blocks (seconds, on a bad network)."""

    def __init__(self, base_url: str, api_key: str | None = None, api_secret: str | None = None, symbol: str = "BTCUSDT", timeout: int = 10) -> None:
        self.symbol = symbol
        self._http = HTTP(api_key=api_key, api_secret=api_secret, timeout=timeout, max_retries=2, retry_delay=1)
        self._http.endpoint = base_url.rstrip("/")

    @staticmethod
    def _result(answer: dict) -> dict:
        if answer.get("retCode") != 0:
            raise RestError(f"Bybit retCode {answer.get('retCode')}: {answer.get('retMsg')}")
        return answer["result"]

    def last_funding(self) -> tuple[int, float]:
        """``(settlement ts ms, rate in bps)`` of the latest funding settlement."""
        result = self._result(self._http.get_funding_rate_history(category=CATEGORY, symbol=self.symbol, limit=1))
        row = result["list"][0]
        return int(row["fundingRateTimestamp"]), float(row["fundingRate"]) * 10_000

    def amend(self, symbol: str, order_link_id: str, qty: str | None = None, trigger_price: str | None = None) -> dict:
        """``/v5/order/amend`` by client order id (the DEMO path of a stop move: see
        :mod:`auction_trader.adapters.bybit.execution`)."""
        args = {"category": CATEGORY, "symbol": symbol, "orderLinkId": order_link_id}
        if qty is not None:
            args["qty"] = qty
        if trigger_price is not None:
            args["triggerPrice"] = trigger_price
        return self._result(self._http.amend_order(**args))

    def executions(self, symbol: str, order_link_id: str) -> list[dict]:
        """The venue's executions (fills) of one order, newest first (``/v5/execution/list``)."""
        return self._result(self._http.get_executions(category=CATEGORY, symbol=symbol, orderLinkId=order_link_id, limit=100))["list"]

    def account(self) -> AccountView:
        """The real account, read-only: USDT wallet and the symbol's position (one-way mode)."""
        wallet = self._result(self._http.get_wallet_balance(accountType="UNIFIED", coin="USDT"))
        acct = wallet["list"][0]
        coin = next((c for c in acct.get("coin", []) if c.get("coin") == "USDT"), {})
        equity = _num(coin.get("equity")) or _num(acct.get("totalEquity")) or 0.0
        available = _num(acct.get("totalAvailableBalance"))
        if available is None:
            available = _num(coin.get("availableToWithdraw")) or _num(coin.get("walletBalance")) or 0.0
        positions = self._result(self._http.get_positions(category=CATEGORY, symbol=self.symbol))["list"]
        side, qty, entry = "FLAT", 0.0, None
        for p in positions:
            size = _num(p.get("size")) or 0.0
            if size > 0 and p.get("side") in ("Buy", "Sell"):
                side, qty, entry = ("LONG" if p["side"] == "Buy" else "SHORT"), size, _num(p.get("avgPrice"))
        return AccountView(equity, available, side, qty, entry)


    def venue_state(self) -> tuple[list[dict], list[dict], int]:
        """``(positions, open orders, ts_ms)``: the symbol's position list and every open order (plain
        and conditional) as Bybit answers them, for :func:`auction_trader.live.reconcile.snapshot_from_bybit`.
        ``ts_ms`` is when the request started: the answer is at least that fresh."""
        import time  # noqa: PLC0415

        ts_ms = time.time_ns() // 1_000_000
        positions = self._result(self._http.get_positions(category=CATEGORY, symbol=self.symbol))["list"]
        orders: dict[str, dict] = {}
        for kind in ("Order", "StopOrder"):
            for o in self._result(self._http.get_open_orders(category=CATEGORY, symbol=self.symbol, orderFilter=kind, limit=50))["list"]:
                orders[o["orderId"]] = o
        return positions, list(orders.values()), ts_ms


def _num(value) -> float | None:
    if value in (None, ""):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
