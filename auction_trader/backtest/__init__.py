"""Backtests on Nautilus's own matching engine, plus what it lacks for this market.

* :func:`build_engine` - venue, instrument, data, deterministic slippage, Bybit margin, funding,
  progress (:mod:`.engine`, :mod:`.fills`, :mod:`.venue`, :mod:`.funding`, :mod:`.progress`);
  :func:`rearm_engine` readies a finished engine for another run (grids reuse one per worker);
  without ``data=`` the range is streamed from the catalog in bounded memory (:mod:`.stream`);
  the order gate is :mod:`.gate`, the end-of-run actor :mod:`.end_of_run`;
* :func:`run_single` - one run and its run directory: metrics.json, fills/trades/features/signals
  Parquet, execution.db, report.html (:mod:`.outputs`, :mod:`.metrics`, :mod:`.report`).
"""

from auction_trader.backtest.engine import BacktestContext, EndOfRun, OrderGate, build_engine, load_data, rearm_engine, reseed, run_engine, venue_shape
from auction_trader.backtest.stream import TickRange, scan_range, stream_ticks
from auction_trader.backtest.funding import FundingEvent, FundingLedger
from auction_trader.backtest.metrics import PnlIdentityError
from auction_trader.backtest.outputs import FILL_COLUMNS, TRADE_COLUMNS, RunResult, StrategyUnavailable, auction_strategy_factory, run_single

__all__ = [
    "FILL_COLUMNS",
    "TRADE_COLUMNS",
    "BacktestContext",
    "EndOfRun",
    "OrderGate",
    "TickRange",
    "FundingEvent",
    "FundingLedger",
    "PnlIdentityError",
    "RunResult",
    "StrategyUnavailable",
    "auction_strategy_factory",
    "build_engine",
    "load_data",
    "rearm_engine",
    "reseed",
    "run_engine",
    "run_single",
    "scan_range",
    "stream_ticks",
    "venue_shape",
]
