"""Streamed single runs (issue 13): the catalog range pulled block by block gives the same ticks in
the same order as the in-memory load, and every output file of a streamed run is byte-identical to
the in-memory run's - on synthetic seeds (the sample's and two others), with bounds that cut files,
and on a hand-made market with a funding settlement, a gap in the data and a flip."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from nautilus_trader.model.data import QuoteTick

from auction_trader.backtest.engine import _end_of_run_ts, build_engine, load_data
from auction_trader.backtest.outputs import run_single
from auction_trader.backtest.stream import scan_range, stream_ticks
from auction_trader.config import AuctionConfig
from auction_trader.data.synth import generate, write_synthetic
from tests.conftest import tree_digest
from tests.test_strategy import MIN, SEC, T0, Scripted, at, book, cfg, enter, market

IID = "BTCUSDT-LINEAR.BYBIT"
RUN_CONFIG = AuctionConfig().with_overrides(["rolling_window_minutes=60", "warmup_minutes=60", "spread_lookback_minutes=30"])


def _key(tick) -> tuple:
    return (type(tick).__name__, tick.ts_init, repr(tick))


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """Three seeds, 3 hours each from 06:30: the 08:00 funding instant inside every run."""
    root = tmp_path_factory.mktemp("stream")
    out = {}
    for seed in (42, 7, 11):
        path = root / f"seed{seed}"
        write_synthetic(path, generate(3.0, seed, T0 + 6 * 3_600 * SEC + 30 * MIN), AuctionConfig())
        out[seed] = path
    return out


@pytest.fixture(scope="module")
def ties(tmp_path_factory):
    """A catalog where many trades and quotes share timestamps (every 5 s a quote and a trade at
    the same instant, and bursts of trades at one instant)."""
    quotes, trades = book([(0, 1_800, 50_000.0)], step=5)
    trades += [(T0 + (sec + 0) * SEC, 50_000.1, 0.001, 1) for sec in range(0, 1_800, 5)]  # at each quote's instant
    trades += [(T0 + 600 * SEC, 50_000.1, 0.002, 1)] * 7  # a burst at one instant
    return market(tmp_path_factory.mktemp("ties") / "cat", quotes, trades)


@pytest.mark.parametrize("block", [1, 7, 50_000])
@pytest.mark.parametrize("bounds", [(None, None), (T0 + 300 * SEC, T0 + 600 * SEC), (T0 + 600 * SEC, None)])
def test_the_stream_is_the_in_memory_load_in_order(ties, block, bounds):
    data, trades, quotes = load_data(ties, IID, *bounds)
    blocks = list(stream_ticks(ties, IID, *bounds, block=block))
    assert [_key(t) for b in blocks for t in b] == [_key(t) for t in data]
    assert all(len(b) >= block for b in blocks[:-1])
    span = scan_range(ties, IID, *bounds)
    assert (span.trades, span.quotes, span.first_ts, span.last_ts) == (trades, quotes, data[0].ts_init, data[-1].ts_init)
    assert span.before_last_ts == _end_of_run_ts(data, True)


def test_the_stream_is_the_in_memory_load_on_a_synthetic_seed_with_bounds_inside_the_file(synthetic):
    start, end = T0 + 7 * 3_600 * SEC + 17 * SEC + 3, T0 + 8 * 3_600 * SEC + 59 * SEC
    data, trades, quotes = load_data(synthetic[7], IID, start, end)
    keys = [_key(t) for b in stream_ticks(synthetic[7], IID, start, end, block=10_000) for t in b]
    assert keys == [_key(t) for t in data]
    span = scan_range(synthetic[7], IID, start, end)
    assert (span.trades, span.quotes) == (trades, quotes) and span.ticks > 50_000
    assert quotes == sum(type(t) is QuoteTick for t in data)


def test_an_empty_range_is_said_so(synthetic, tmp_path):
    from auction_trader.data.errors import DataError

    span = scan_range(synthetic[42], IID, T0, T0 + MIN)  # before the market opens
    assert (span.ticks, span.first_ts, span.before_last_ts) == (0, -1, None)
    with pytest.raises(DataError, match="no trades or quotes"):
        build_engine(RUN_CONFIG, synthetic[42], T0, T0 + MIN, Scripted(RUN_CONFIG, {}))


def _both(config, catalog, tmp_path, factory=None, start=None, end=None, report=False):
    streamed = run_single(config, catalog, start, end, tmp_path / "streamed", factory, report=report)
    in_memory = run_single(config, catalog, start, end, tmp_path / "memory", factory, report=report, data=load_data(catalog, IID, start, end))
    return streamed, in_memory


@pytest.mark.parametrize("seed", [42, 7, 11])
def test_streamed_and_in_memory_runs_write_the_same_bytes(synthetic, tmp_path, seed):
    report = seed == 42  # report.html (5 MB of plotly) once
    start = T0 + 6 * 3_600 * SEC + 45 * MIN + 123 if seed == 11 else None  # and a bound inside a file once
    streamed, in_memory = _both(RUN_CONFIG, synthetic[seed], tmp_path, start=start, report=report)
    a, b = tree_digest(streamed.out_dir), tree_digest(in_memory.out_dir)
    assert a == b
    assert {"metrics.json", "fills.parquet", "features_1m.parquet", "signals_1m.parquet", "execution.db"} <= set(a)
    assert ("report.html" in a) == report
    assert streamed.metrics["ticks"] == in_memory.metrics["ticks"] > 100_000
    assert len(pq.read_table(streamed.out_dir / "features_1m.parquet")) >= 150


def test_funding_a_gap_and_a_flip_stream_to_the_same_bytes(tmp_path):
    """Held long through the 08:00 funding, 20 minutes without any tick (07:59:30 - 08:19:30),
    then flipped short at a minute close after the gap; end-of-run flatten on the last tick."""
    base = T0 + 7 * 3_600 * SEC + 50 * MIN  # 07:50
    quotes, trades = book([(0, 570, 50_000.0), (1_770, 2_400, 50_010.0)], step=5, base=base)
    catalog = market(tmp_path / "cat", quotes, trades)
    first = base // 1_000_000 + 2 * 60_000  # ts_min of 07:52 (decided at its close)
    script = {
        first: enter(1, 50_000.1, 49_000.0, 51_000.0, 52_000.0),
        at(8 * 60 + 25): enter(-1, 50_010.0, 50_500.0, 49_000.0, 48_000.0, close_first=True),
    }
    config = cfg("use_limit_for_entry=false", "risk_pct=0.001", "max_hold_minutes=1000")
    streamed, in_memory = _both(config, catalog, tmp_path, lambda c: Scripted(c, script))
    assert tree_digest(streamed.out_dir) == tree_digest(in_memory.out_dir)
    fills = pq.read_table(streamed.out_dir / "fills.parquet").to_pylist()
    assert [(f["side"], f["purpose"]) for f in fills] == [("BUY", "entry"), ("SELL", "flip"), ("SELL", "entry"), ("BUY", "end_of_run")]
    assert len(streamed.funding) == 1 and streamed.funding[0].ts == T0 + 8 * 3_600 * SEC
    assert streamed.metrics["funding_paid"] != 0
