"""AuctionFeatures inside a Nautilus backtest gives exactly the batch engine's rows."""

from __future__ import annotations

import numpy as np
import pytest
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
from auction_trader.features import FEATURE_COLUMNS, compute, load_ticks
from auction_trader.indicators import AuctionFeatures
from auction_trader.instrument import BTCUSDT, btcusdt_perpetual

START = 1_704_067_200_000_000_000  # 2024-01-01
CONFIG = AuctionConfig().with_overrides(["rolling_window_minutes=20", "min_va_bins=5", "spread_lookback_minutes=10", "warmup_minutes=20"])


class FeatureProbe(Strategy):
    """Registers the indicator for both tick types and keeps every completed row."""

    def __init__(self, features: AuctionFeatures) -> None:
        super().__init__(StrategyConfig(strategy_id="PROBE-001"))
        self.features = features
        self.iid = InstrumentId.from_str(BTCUSDT.instrument_id)
        self.initialized_at: int | None = None
        self.rows: list = []

    def on_start(self) -> None:
        self.register_indicator_for_quote_ticks(self.iid, self.features)
        self.register_indicator_for_trade_ticks(self.iid, self.features)
        self.subscribe_quote_ticks(self.iid)
        self.subscribe_trade_ticks(self.iid)

    def on_trade_tick(self, tick) -> None:
        self._watch()

    def on_quote_tick(self, tick) -> None:
        self._watch()

    def _watch(self) -> None:
        if self.features.initialized and self.initialized_at is None:
            self.initialized_at = self.features.minutes

    def on_stop(self) -> None:
        self.features.finish()


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    path = tmp_path_factory.mktemp("synthetic") / "cat"
    write_synthetic(path, generate(1.0, 11, START), AuctionConfig())
    return path


def run_backtest(catalog_path) -> FeatureProbe:
    engine = BacktestEngine(BacktestEngineConfig(logging=LoggingConfig(log_level="ERROR")))
    engine.add_venue(Venue("BYBIT"), OmsType.NETTING, AccountType.MARGIN, starting_balances=[Money(10_000, USDT)], base_currency=USDT)
    engine.add_instrument(btcusdt_perpetual())
    nautilus = ParquetDataCatalog(str(catalog_path))
    engine.add_data(nautilus.trade_ticks(instrument_ids=[BTCUSDT.instrument_id]))
    engine.add_data(nautilus.quote_ticks(instrument_ids=[BTCUSDT.instrument_id]))
    probe = FeatureProbe(AuctionFeatures(CONFIG))
    engine.add_strategy(probe)
    engine.run()
    engine.dispose()
    return probe


def test_indicator_in_a_backtest_equals_the_batch_engine(catalog):
    probe = run_backtest(catalog)
    streamed = probe.features.drain()
    batch = compute(load_ticks(catalog, BTCUSDT.instrument_id), CONFIG)
    assert len(streamed["ts_min"]) == batch.num_rows == 60
    for name in FEATURE_COLUMNS:
        np.testing.assert_array_equal(streamed[name], batch.column(name).to_numpy(), err_msg=name)
    # The latest row is the last minute's, and warm-up ended after 20 closed minutes.
    assert probe.features.row.ts_min == batch.column("ts_min")[-1].as_py()
    assert probe.features.initialized and probe.features.has_inputs
    assert probe.initialized_at == 20


def test_close_through_delivers_the_minute_at_its_boundary():
    features = AuctionFeatures(CONFIG)
    assert features.row is None and not features.has_inputs
    features._engine.on_quote(START, 42000.0, 1.0, 42000.1, 1.0)
    features._engine.on_trade(START + 5_000_000, 42000.1, 0.5, 1)
    assert not features.close_through(START + 59_999_999_999)
    assert features.close_through(START + 60_000_000_000)
    assert features.row.ts_min == START // 1_000_000 and features.row.of_1m == 0.5
    assert features.nearest_trade_distance(42000.0) == pytest.approx(0.1)
    features.reset()
    assert features.row is None and features.minutes == 0 and not features.initialized
