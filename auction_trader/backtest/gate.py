"""The order gate: every trading command passes it on its way to Nautilus's ``RiskEngine``."""

from __future__ import annotations

from decimal import Decimal

from nautilus_trader.backtest.engine import BacktestEngine
from nautilus_trader.execution.messages import SubmitOrder
from nautilus_trader.model.currencies import USDT
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.identifiers import InstrumentId, Venue

from auction_trader.backtest.venue import VenueModule

VENUE = Venue("BYBIT")


class OrderGate:
    """In front of Nautilus's ``RiskEngine.execute`` endpoint, the one every trading command takes.

    For every command it first restores the quoted book (:meth:`VenueModule.restore_quoted_book`).
    Then it denies, as Bybit would, orders whose initial margin exceeds the available balance: an
    order that does not reduce the position is allowed when, with every open
    order on its side filled at its price, the position's notional stays within
    ``max_leverage × equity`` (equity = wallet balance + unrealized P&L at the latest mid). The
    price is the order's limit or trigger price, else the touch it would take (ask for a buy, bid
    for a sell). Reduce-only orders, and orders that only shrink the position, always pass.
    Denials are counted in :attr:`denied` (client order id, reason).
    """

    def __init__(self, engine: BacktestEngine, instrument_id: InstrumentId, leverage: Decimal, venue: VenueModule, check_margin: bool = True) -> None:
        kernel = engine.kernel
        self.check_margin = check_margin
        self._msgbus = kernel.msgbus
        self._cache = kernel.cache
        self._risk = kernel.risk_engine
        self._instrument_id = instrument_id
        self._leverage = leverage
        self._venue = venue
        self.denied: list[tuple[str, str]] = []
        # Registered once per engine: the RiskEngine's reset does not register its endpoint again.
        self._msgbus.deregister(endpoint="RiskEngine.execute", handler=self._risk.execute)
        self._msgbus.register(endpoint="RiskEngine.execute", handler=self.execute)

    def new_run(self, check_margin: bool = True) -> None:
        self.check_margin = check_margin
        self.denied = []

    def execute(self, command) -> None:
        self._venue.attach()
        self._venue.restore_quoted_book()
        if self.check_margin and isinstance(command, SubmitOrder) and command.instrument_id == self._instrument_id:
            reason = self._check(command.order)
            if reason is not None:
                self.denied.append((command.order.client_order_id.value, reason))
                self._risk._deny_order(command.order, reason)
                return
        self._risk.execute(command)

    def _check(self, order) -> str | None:
        if order.is_reduce_only:
            return None
        touch = self._venue.touch()
        if touch is None:
            return None
        bid, ask = (p.as_decimal() for p in touch)
        sign = 1 if order.side == OrderSide.BUY else -1
        position = self._venue.ledger.position
        orders = [o for o in self._cache.orders_open(instrument_id=self._instrument_id) if not o.is_reduce_only and o.side == order.side]
        exposure = position
        notional_orders = Decimal(0)
        for o in [*orders, order]:
            qty = o.leaves_qty.as_decimal()
            exposure += sign * qty
            notional_orders += qty * self._price(o, bid, ask)
        if abs(exposure) <= abs(position):
            return None  # only shrinks the position
        account = self._cache.account_for_venue(VENUE)
        balance = account.balance_total(USDT).as_decimal()
        mid = (bid + ask) / 2
        unrealized = position * (mid - self._avg_entry())
        equity = balance + unrealized
        # Notional of the resulting position: what it holds now (at mid) plus what the orders add.
        held = abs(position) * mid if (position >= 0) == (sign > 0) else -abs(position) * mid
        notional = held + notional_orders
        limit = self._leverage * equity
        if notional > limit:
            return (
                f"INSUFFICIENT_MARGIN: notional {notional:.2f} USDT would exceed {self._leverage}x equity "
                f"{equity:.2f} USDT ({limit:.2f})"
            )
        return None

    def _avg_entry(self) -> Decimal:
        positions = self._cache.positions_open(instrument_id=self._instrument_id)
        if not positions:
            return Decimal(0)
        return Decimal(repr(positions[0].avg_px_open))

    @staticmethod
    def _price(order, bid: Decimal, ask: Decimal) -> Decimal:
        if order.has_price:
            return order.price.as_decimal()
        if order.has_trigger_price:
            return order.trigger_price.as_decimal()
        return ask if order.side == OrderSide.BUY else bid
