"""What Nautilus 1.231's venue lacks for this market: deterministic N-tick slippage and Bybit margin.

Slippage (DESIGN.md "Slippage", specv2 §12.2). On an L1 book Nautilus fills a market order at the
opposite touch; its only slippage knob, ``prob_slippage``, moves the price one tick with a
probability drawn from Python's global ``random``. :class:`SlippageFillModel` instead answers the
matching engine's ``get_orderbook_for_fill_simulation`` hook with a one-level book whose only
liquidity sits ``n`` ticks beyond the touch, so every market-type fill (MARKET, and STOP_MARKET /
MARKET_IF_TOUCHED once triggered) prices at ``ask + n·tick`` (buy) or ``bid − n·tick`` (sell),
``n = slippage_ticks_exit`` for reduce-only orders and ``slippage_ticks_entry`` otherwise. Limit
orders get ``None``: Nautilus's own logic, i.e. the limit price as maker.

The touch is the latest *quote* the venue has processed (kept by
:class:`~auction_trader.backtest.venue.VenueModule`), not the matching core's bid/ask: with
``trade_execution=True`` a trade print transiently drags the core's touch to the trade price, and
the spec prices market fills off the L1 quote. The same quote is reported as ``bid_at_fill`` /
``ask_at_fill`` in ``fills.parquet``.

Margin (DESIGN.md, instrument margins 0.1). Nautilus's default ``LeveragedMarginModel`` charges
``notional / leverage × margin_init`` = 1 % of notional at 10x with the instrument's 0.1 rate: the
account would show 100x of buying power. Bybit's initial margin is ``notional / leverage``, and its
available balance subtracts the position's initial margin. :class:`BybitMarginModel` does exactly
that for both of Nautilus's slots (order margin and position margin), so ``balance_free`` is
Bybit's available balance and a 10x account locks its whole wallet at a notional of 10x.
"""

from __future__ import annotations

from decimal import Decimal

from nautilus_trader.accounting.margin_models import MarginModel
from nautilus_trader.backtest.models import FillModel
from nautilus_trader.model.book import OrderBook
from nautilus_trader.model.data import BookOrder
from nautilus_trader.model.enums import BookType, OrderSide, OrderType
from nautilus_trader.model.objects import Money, Price, Quantity

#: Order types that fill as takers at the touch (once triggered, for the conditional ones).
MARKET_TYPES = frozenset({OrderType.MARKET, OrderType.STOP_MARKET, OrderType.MARKET_IF_TOUCHED, OrderType.TRAILING_STOP_MARKET})

_UNLIMITED = 10_000_000  # contracts of simulated depth: more than any order can take


class SlippageFillModel(FillModel):
    """Market-type orders fill ``n`` ticks through the latest quote; limits use Nautilus's logic.

    ``touch`` is a zero-argument callable returning the latest quote's ``(bid, ask)`` as
    ``Price`` objects, or ``None`` before the first quote (then the matching core's touch is used).
    No randomness: ``prob_fill_on_limit`` 1 and ``prob_slippage`` 0 never consult ``random``.
    """

    def __init__(self, entry_ticks: int, exit_ticks: int, touch=None) -> None:
        super().__init__(prob_fill_on_limit=1.0, prob_slippage=0.0, random_seed=0)
        if entry_ticks < 0 or exit_ticks < 0:
            raise ValueError(f"slippage ticks must be >= 0 (entry {entry_ticks}, exit {exit_ticks})")
        self.entry_ticks = int(entry_ticks)
        self.exit_ticks = int(exit_ticks)
        self._touch = touch

    def get_orderbook_for_fill_simulation(self, instrument, order, best_bid, best_ask):
        if order.order_type not in MARKET_TYPES:
            return None
        quote = self._touch() if self._touch is not None else None
        bid, ask = quote if quote is not None else (best_bid, best_ask)
        n = self.exit_ticks if order.is_reduce_only else self.entry_ticks
        tick = instrument.price_increment
        book = OrderBook(instrument_id=instrument.id, book_type=BookType.L2_MBP)
        if order.side == OrderSide.BUY:
            price = Price.from_raw(ask.raw + n * tick.raw, instrument.price_precision)
            level = BookOrder(OrderSide.SELL, price, Quantity(_UNLIMITED, instrument.size_precision), 1)
        else:
            price = Price.from_raw(bid.raw - n * tick.raw, instrument.price_precision)
            level = BookOrder(OrderSide.BUY, price, Quantity(_UNLIMITED, instrument.size_precision), 1)
        book.add(level, 0, 0)
        return book


class BybitMarginModel(MarginModel):
    """Initial and position margin = ``notional / leverage`` (Bybit's IM; the instrument's rate unused).

    Nautilus subtracts order margin (``calculate_margin_init``, open limit/stop orders that are not
    reduce-only) and position margin (``calculate_margin_maint``) from the wallet to get the free
    balance; Bybit's available balance subtracts the initial margin of both, so both return it.
    """

    def calculate_margin_init(self, instrument, quantity, price, leverage, use_quote_for_inverse=False):
        return self._margin(instrument, quantity, price, leverage)

    def calculate_margin_maint(self, instrument, side, quantity, price, leverage, use_quote_for_inverse=False):
        return self._margin(instrument, quantity, price, leverage)

    @staticmethod
    def _margin(instrument, quantity, price, leverage) -> Money:
        notional = quantity.as_decimal() * price.as_decimal() * instrument.multiplier.as_decimal()
        return Money(notional / Decimal(leverage), instrument.quote_currency)
