"""The stand-in's market: the project's synthetic BTCUSDT generator replayed on the wall clock.

`auction_trader.data.synth.MarketStream` makes a seeded market an hour at a time (trades with
their taker side, L1 snapshots with sizes). The stand-in plays it from the moment it starts: a
synthetic tick stamped ``start_ns + dt`` goes out at ``t0 + dt`` on the wall clock and carries that
wall-clock time, so a client sees a live-looking market whose content is fixed by ``--seed``.

Units are the generator's: prices in 0.1 USDT ticks, sizes in 0.001 BTC lots (exact integers);
:func:`price_text` / :func:`qty_text` render them the way Bybit does for BTCUSDT (two price
decimals, ``priceScale`` 2; three quantity decimals).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from decimal import Decimal
from typing import Iterator

from auction_trader.data.synth import MarketStream, parse_start

SYNTH_START = "2024-01-01T00:00:00Z"
PRICE_TICK = Decimal("0.1")  # one generator price unit
QTY_STEP = Decimal("0.001")  # one generator size unit
BUY, SELL = 1, 2  # the generator's aggressor codes (Nautilus's)


def price_text(units: int) -> str:
    """0.1-tick units as Bybit prints a BTCUSDT price: ``943215`` -> ``"94321.50"``."""
    return f"{units // 10}.{units % 10}0"


def qty_text(lots: int) -> str:
    """0.001-BTC lots as Bybit prints a quantity: ``12`` -> ``"0.012"``."""
    return f"{lots // 1000}.{lots % 1000:03d}"


@dataclass(frozen=True)
class Quote:
    """An L1 snapshot at synthetic offset ``dt_ns`` from the market's start."""

    dt_ns: int
    bid: int
    ask: int
    bid_size: int
    ask_size: int


@dataclass(frozen=True)
class Trade:
    """A public trade at synthetic offset ``dt_ns``; ``side`` is the taker's ("Buy"/"Sell")."""

    dt_ns: int
    price: int
    size: int
    side: str
    trade_id: str


def synthetic_events(seed: int, hours: float) -> Iterator[Quote | Trade]:
    """Quotes and trades of the seeded market in time order (a trade sharing a millisecond with a
    quote comes first, as in the generator: it traded against the book before the change)."""
    start_ns = parse_start(SYNTH_START)
    for chunk in MarketStream(hours, seed, start_ns):
        t, q = chunk.trades, chunk.quotes
        trades = (
            (int(t.ts_event[i]) - start_ns, 0, i, Trade(int(t.ts_event[i]) - start_ns, int(t.price[i]), int(t.size[i]), "Buy" if int(t.aggressor[i]) == BUY else "Sell", str(t.trade_id[i])))
            for i in range(len(t))
        )
        quotes = (
            (int(q.ts_event[i]) - start_ns, 1, i, Quote(int(q.ts_event[i]) - start_ns, int(q.bid[i]), int(q.ask[i]), int(q.bid_size[i]), int(q.ask_size[i])))
            for i in range(len(q))
        )
        for _, _, _, event in heapq.merge(trades, quotes):
            yield event
