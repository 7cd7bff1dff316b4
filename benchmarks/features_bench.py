#!/usr/bin/env python
"""Feature engine speed, each figure against a baseline measured in the same run.

On a synthetic catalog of at least a million ticks:
  1. batch mode: rust_indicators.compute_features over every tick (best of 3) - ticks/s;
  2. inside Nautilus: a backtest with an empty strategy subscribed to the same trades and quotes,
     then one feeding AuctionFeatures from its tick handlers (AuctionStrategy's way) and one
     registering it with Nautilus - the indicator's added cost per tick is the difference from the
     empty run divided by the ticks (best of two runs each);
  3. against the Python oracle of the tests (tests/features_oracle.py) on the first hour - speed-up.
Targets (issue 3): batch >= 5 M ticks/s, indicator <= 1 us/tick over the empty strategy, >= 50x oracle.

    .venv/bin/python benchmarks/features_bench.py [--hours 12] [--seed 3]
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rust_indicators
from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
from nautilus_trader.config import LoggingConfig, StrategyConfig
from nautilus_trader.model.currencies import USDT
from nautilus_trader.model.enums import AccountType, OmsType
from nautilus_trader.model.identifiers import InstrumentId, Venue
from nautilus_trader.model.objects import Money
from nautilus_trader.persistence.catalog import ParquetDataCatalog
from nautilus_trader.trading.strategy import Strategy

from auction_trader.config import AuctionConfig
from auction_trader.data.synth import generate, write_synthetic
from auction_trader.features import engine_config, load_ticks
from auction_trader.indicators import AuctionFeatures
from auction_trader.instrument import BTCUSDT, btcusdt_perpetual

ROOT = Path(__file__).resolve().parent.parent
START = 1_704_067_200_000_000_000
IID = InstrumentId.from_str(BTCUSDT.instrument_id)


class Subscriber(Strategy):
    """Subscribed to trades and quotes, doing nothing with them: the baseline."""

    def __init__(self, features: AuctionFeatures | None = None) -> None:
        super().__init__(StrategyConfig(strategy_id="BENCH-001"))
        self.features = features

    def on_start(self) -> None:
        self.subscribe_quote_ticks(IID)
        self.subscribe_trade_ticks(IID)


class Registered(Subscriber):
    """The indicator registered with Nautilus, which dispatches every tick to it."""

    def on_start(self) -> None:
        self.register_indicator_for_quote_ticks(IID, self.features)
        self.register_indicator_for_trade_ticks(IID, self.features)
        super().on_start()


class Handlers(Subscriber):
    """The indicator fed from the strategy's own handlers (how AuctionStrategy uses it)."""

    def on_trade_tick(self, tick) -> None:
        self.features.handle_trade_tick(tick)

    def on_quote_tick(self, tick) -> None:
        self.features.handle_quote_tick(tick)


def backtest_seconds(data: list, strategy: Strategy) -> float:
    engine = BacktestEngine(BacktestEngineConfig(logging=LoggingConfig(log_level="ERROR")))
    engine.add_venue(Venue("BYBIT"), OmsType.NETTING, AccountType.MARGIN, starting_balances=[Money(10_000, USDT)], base_currency=USDT)
    engine.add_instrument(btcusdt_perpetual())
    engine.add_data(data)  # sorting is outside the timed run
    engine.add_strategy(strategy)
    gc.collect()
    start = time.perf_counter()
    engine.run()
    seconds = time.perf_counter() - start
    engine.dispose()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hours", type=float, default=12.0)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    config = AuctionConfig()
    with tempfile.TemporaryDirectory(prefix="features-bench-") as tmp:
        catalog = Path(tmp) / "cat"
        write_synthetic(catalog, generate(args.hours, args.seed, START), config)
        ticks = load_ticks(catalog, BTCUSDT.instrument_id)
        n = ticks.count
        print(f"synthetic catalog: {args.hours:g} h, {len(ticks.trade_ts):,} trades + {len(ticks.quote_ts):,} quotes = {n:,} ticks")
        cols = (ticks.trade_ts, ticks.trade_price, ticks.trade_size, ticks.trade_side, ticks.quote_ts, ticks.bid, ticks.bid_size, ticks.ask, ticks.ask_size)
        cfg = engine_config(config)
        batch = min(_timed(lambda: rust_indicators.compute_features(cfg, *cols)) for _ in range(3))

        nautilus = ParquetDataCatalog(str(catalog))
        data = sorted(nautilus.trade_ticks() + nautilus.quote_ticks(), key=lambda d: d.ts_init)
        empty = min(backtest_seconds(data, Subscriber()) for _ in range(2))
        registered = min(backtest_seconds(data, Registered(AuctionFeatures(config))) for _ in range(2))
        handlers = min(backtest_seconds(data, Handlers(AuctionFeatures(config))) for _ in range(2))

        sys.path.insert(0, str(ROOT))
        oracle_line = None
        try:
            from tests.features_oracle import OracleParams, oracle_features  # noqa: PLC0415
        except ImportError as exc:  # the oracle lives with the tests
            oracle_line = f"python oracle: unavailable ({exc})"
        hour = START + 3_600_000_000_000
        t_mask, q_mask = ticks.trade_ts < hour, ticks.quote_ts < hour
        sub_cols = tuple(c[t_mask] for c in cols[:4]) + tuple(c[q_mask] for c in cols[4:])
        sub_n = int(t_mask.sum() + q_mask.sum())
        engine_hour = min(_timed(lambda: rust_indicators.compute_features(cfg, *sub_cols)) for _ in range(3))
        if oracle_line is None:
            trades = list(zip(*(c.tolist() for c in sub_cols[:4]), strict=True))
            quotes = list(zip(*(c.tolist() for c in sub_cols[4:]), strict=True))
            oracle = _timed(lambda: oracle_features(trades, quotes, OracleParams()))

    rows = [
        ("batch engine (compute_features)", batch, n / batch / 1e6, "M ticks/s", "target >= 5"),
        ("backtest, empty strategy", empty, n / empty / 1e3, "k ticks/s", "baseline"),
        ("backtest, fed from the handlers", handlers, n / handlers / 1e3, "k ticks/s", f"+{(handlers - empty) / n * 1e6:.3f} us/tick (target <= 1)"),
        ("backtest, registered with Nautilus", registered, n / registered / 1e3, "k ticks/s", f"+{(registered - empty) / n * 1e6:.3f} us/tick"),
    ]
    print(f"\n{'run':<40} {'seconds':>8} {'rate':>10}  {'':<10} note")
    for name, seconds, rate, unit, note in rows:
        print(f"{name:<40} {seconds:>8.2f} {rate:>10.2f}  {unit:<10} {note}")
    print("(registration costs more: Nautilus builds an InstrumentId per tick to find the registered indicators)")
    if oracle_line is None:
        print(f"first hour ({sub_n:,} ticks): python oracle {oracle:.2f} s, engine {engine_hour * 1e3:.1f} ms -> {oracle / engine_hour:,.0f}x (target >= 50)")
    else:
        print(oracle_line)


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
