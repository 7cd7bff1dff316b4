"""AuctionFeatures: the rolling value area, order flow and quote imbalance as a Nautilus indicator.

The computation is the Rust engine's; this class only moves Nautilus ticks into it, reading each
tick field once (every attribute access on a Cython tick allocates), and hands out the latest
completed minute. A strategy feeds it from its tick handlers and, to get each minute's row at the
minute boundary rather than at the next tick, calls :meth:`close_through` from a one-minute timer
or bar handler::

    def on_trade_tick(self, tick):
        self.features.handle_trade_tick(tick)

    def on_quote_tick(self, tick):
        self.features.handle_quote_tick(tick)

``register_indicator_for_*_ticks`` works too, but Nautilus then builds an ``InstrumentId`` for every
tick to find the registered indicators: measured, it roughly doubles the indicator's cost per tick
(benchmarks/features_bench.py).
"""

from __future__ import annotations

import numpy as np
from nautilus_trader.indicators.base import Indicator
from nautilus_trader.model.data import QuoteTick, TradeTick

import rust_indicators
from auction_trader.config import AuctionConfig
from auction_trader.features import engine_config
from auction_trader.instrument import BTCUSDT, InstrumentSpec


class AuctionFeatures(Indicator):
    """Per-minute features (docs/features.md) of one instrument; initialized after the warm-up.

    ``row`` is the latest completed minute (a ``rust_indicators.FeatureRow``: one attribute per
    column, e.g. ``row.poc``, ``row.of_1m``), ``None`` before the first minute closes.
    """

    def __init__(self, config: AuctionConfig, spec: InstrumentSpec = BTCUSDT) -> None:
        super().__init__(params=[spec.instrument_id, config.value_area.rolling_window_minutes, config.startup.warmup_minutes])
        self._engine_config = engine_config(config, spec)
        self._warmup = config.startup.warmup_minutes
        self._start_engine()

    def _start_engine(self) -> None:
        self._engine = rust_indicators.FeatureEngine(self._engine_config)
        # Bound once: these run for every tick.
        self._on_trade = self._engine.on_trade
        self._on_quote = self._engine.on_quote
        self.row: rust_indicators.FeatureRow | None = None

    def handle_trade_tick(self, tick: TradeTick) -> None:
        if self._on_trade(tick.ts_event, tick.price.as_double(), tick.size.as_double(), tick.aggressor_side):
            self._minute_closed()

    def handle_quote_tick(self, tick: QuoteTick) -> None:
        if self._on_quote(tick.ts_event, tick.bid_price.as_double(), tick.bid_size.as_double(), tick.ask_price.as_double(), tick.ask_size.as_double()):
            self._minute_closed()

    def close_through(self, ts_ns: int) -> bool:
        """The clock reached ``ts_ns``: close the minutes that ended before it. True if any did."""
        if self._engine.close_through(ts_ns):
            self._minute_closed()
            return True
        return False

    def finish(self) -> None:
        """End of data: close the open minute."""
        if self._engine.finish():
            self._minute_closed()

    def nearest_trade_distance(self, level: float) -> float | None:
        """Distance from ``level`` to the nearest trade of the last completed minute (crossing check)."""
        return self._engine.nearest_trade_distance(level)

    def drain(self) -> dict[str, np.ndarray]:
        """Every row completed since the last drain, as columns (for the run's features file)."""
        return self._engine.drain()

    @property
    def minutes(self) -> int:
        """Minutes completed so far."""
        return self._engine.minutes_closed

    def _minute_closed(self) -> None:
        self.row = self._engine.last_row()
        if not self.has_inputs:
            self._set_has_inputs(True)
        if not self.initialized and self._engine.minutes_closed >= self._warmup:
            self._set_initialized(True)

    def _reset(self) -> None:
        self._start_engine()
