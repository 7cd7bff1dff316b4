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

Buffered: ``handle_trade_tick`` / ``handle_quote_tick`` are the ``append`` of one list (a C call,
no Python frame per tick); the ticks go to the Rust engine in one call
(``FeatureEngine.on_ticks``, which reads each field once) before anything is read - ``row``,
``initialized``, ``minutes``, ``close_through``, ``drain``, ``nearest_trade_distance``,
``finish`` - so a reader sees every tick handed in, exactly as if each had been applied at once.
A strategy that reads the indicator every minute (AuctionStrategy's timer) holds at most a
minute of ticks here.
"""

from __future__ import annotations

import numpy as np
from nautilus_trader.indicators.base import Indicator
from nautilus_trader.model.data import QuoteTick, TradeTick

import rust_indicators
from auction_trader.config import AuctionConfig
from auction_trader.features.params import engine_config
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
        self._on_trade = self._engine.on_trade  # per-event entry points, for subclasses that feed
        self._on_quote = self._engine.on_quote  # the engine themselves
        self._row: rust_indicators.FeatureRow | None = None
        # Ticks not yet applied, in arrival order. One list for the indicator's life (cleared in
        # place): strategies bind ``handle_*_tick`` - its ``append`` - once, at start. A subclass
        # with its own tick handlers keeps them.
        if not hasattr(self, "_pending"):
            self._pending: list = []
            cls = type(self)
            if cls.handle_trade_tick is AuctionFeatures.handle_trade_tick:
                self.handle_trade_tick = self._pending.append
            if cls.handle_quote_tick is AuctionFeatures.handle_quote_tick:
                self.handle_quote_tick = self._pending.append
        self._pending.clear()

    def handle_trade_tick(self, tick: TradeTick) -> None:  # replaced per instance by list.append
        self._pending.append(tick)

    def handle_quote_tick(self, tick: QuoteTick) -> None:  # replaced per instance by list.append
        self._pending.append(tick)

    def _apply(self) -> None:
        """Hand the buffered ticks to the engine."""
        if self._pending:
            closed = self._engine.on_ticks(self._pending, TradeTick)
            self._pending.clear()
            if closed:
                self._minute_closed()

    @property
    def row(self) -> rust_indicators.FeatureRow | None:
        self._apply()
        return self._row

    @property
    def initialized(self) -> bool:
        self._apply()
        return Indicator.initialized.__get__(self)

    @property
    def has_inputs(self) -> bool:
        self._apply()
        return Indicator.has_inputs.__get__(self)

    def close_through(self, ts_ns: int) -> bool:
        """The clock reached ``ts_ns``: close the minutes that ended before it. True if any did."""
        self._apply()
        if self._engine.close_through(ts_ns):
            self._minute_closed()
            return True
        return False

    def finish(self) -> None:
        """End of data: close the open minute."""
        self._apply()
        if self._engine.finish():
            self._minute_closed()

    def nearest_trade_distance(self, level: float) -> float | None:
        """Distance from ``level`` to the nearest trade of the last completed minute (crossing check)."""
        self._apply()
        return self._engine.nearest_trade_distance(level)

    def drain(self) -> dict[str, np.ndarray]:
        """Every row completed since the last drain, as columns (for the run's features file)."""
        self._apply()
        return self._engine.drain()

    @property
    def minutes(self) -> int:
        """Minutes completed so far."""
        self._apply()
        return self._engine.minutes_closed

    def _minute_closed(self) -> None:
        self._row = self._engine.last_row()
        if not Indicator.has_inputs.__get__(self):
            self._set_has_inputs(True)
        if not Indicator.initialized.__get__(self) and self._engine.minutes_closed >= self._warmup:
            self._set_initialized(True)

    def _reset(self) -> None:
        self._start_engine()
