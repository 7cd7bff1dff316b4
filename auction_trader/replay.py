"""Signals without execution: the feature engine and the signal engine over recorded ticks.

What a ``dry_run`` sees: every minute's features and decision, with no orders and so no
positions (no exits, cooldowns or flips). Used to study the rules offline and to check them
against an independent reading; the backtest runs the same two engines inside Nautilus.
"""

from __future__ import annotations

import numpy as np
import rust_indicators

from auction_trader.config import AuctionConfig
from auction_trader.core.minute import minute_from_row
from auction_trader.core.signals import Context, SignalEngine

MINUTE_NS = 60_000_000_000


def replay_signals(ticks, config: AuctionConfig) -> list[dict]:
    """``signals_1m`` records for every minute of ``ticks`` (an ``auction_trader.features.Ticks``)."""
    from auction_trader.features.params import engine_config  # noqa: PLC0415

    features = rust_indicators.FeatureEngine(engine_config(config, ticks.spec))
    signals = SignalEngine(config, ticks.spec.tick_size)
    records: list[dict] = []

    def decide() -> None:
        row = features.last_row()
        if row is None or (records and records[-1]["ts_min"] >= row.ts_min):
            return
        minute = minute_from_row(row, config, features.nearest_trade_distance)
        records.append(signals.on_minute(minute, Context())[1])

    # Events in time order, trades first at equal times; each minute is closed (and decided) at
    # its end, before the first event of a later minute - as the strategy's minute timer does.
    t_ts, q_ts = ticks.trade_ts, ticks.quote_ts
    order = np.lexsort((np.r_[np.zeros(len(t_ts)), np.ones(len(q_ts))], np.r_[t_ts, q_ts]))
    next_close = None
    for k in order:
        is_trade = k < len(t_ts)
        ts = int(t_ts[k]) if is_trade else int(q_ts[k - len(t_ts)])
        if next_close is None:
            next_close = (ts // MINUTE_NS + 1) * MINUTE_NS
        while ts >= next_close:
            features.close_through(next_close)
            decide()
            next_close += MINUTE_NS
        if is_trade:
            features.on_trade(ts, float(ticks.trade_price[k]), float(ticks.trade_size[k]), int(ticks.trade_side[k]))
        else:
            j = k - len(t_ts)
            features.on_quote(ts, float(ticks.bid[j]), float(ticks.bid_size[j]), float(ticks.ask[j]), float(ticks.ask_size[j]))
    return records
