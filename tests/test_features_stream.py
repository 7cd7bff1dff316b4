"""The streamed feature pass (issue 13): chunks cut at one millisecond in both streams give the rows
of one pass over the whole range, whatever the chunk size, with bounds inside the files."""

from __future__ import annotations

import numpy as np
import pytest

from auction_trader.config import AuctionConfig
from auction_trader.data.synth import generate, write_synthetic
from auction_trader.features import compute, compute_streamed, engine_config, iter_ticks, load_ticks
from auction_trader.features.catalog import Ticks
from tests.test_strategy import MIN, SEC, T0, book, market

IID = "BTCUSDT-LINEAR.BYBIT"
CONFIG = AuctionConfig().with_overrides(["rolling_window_minutes=30", "warmup_minutes=30"])


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    path = tmp_path_factory.mktemp("fstream") / "cat"
    write_synthetic(path, generate(2.0, 5, T0 + 23 * 3_600 * SEC), AuctionConfig())  # 23:00-01:00: two files a type
    return path


def _same(a, b):
    assert a.column_names == b.column_names and a.num_rows == b.num_rows
    for name in a.column_names:
        x, y = a.column(name).to_numpy(zero_copy_only=False), b.column(name).to_numpy(zero_copy_only=False)
        assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), name


@pytest.mark.parametrize("rows", [997, 20_000, 1_000_000])
@pytest.mark.parametrize("bounds", [(None, None), (T0 + 23 * 3_600 * SEC + 17 * MIN + 3, T0 + 24 * 3_600 * SEC + 41 * MIN)])
def test_streamed_features_equal_the_whole_pass(synthetic, rows, bounds):
    whole = load_ticks(synthetic, IID, *bounds)
    chunks = list(iter_ticks(synthetic, IID, *bounds, rows=rows))
    assert sum(c.count for c in chunks) == whole.count > 50_000
    assert np.array_equal(np.concatenate([c.trade_ts for c in chunks]), whole.trade_ts)
    assert np.array_equal(np.concatenate([c.bid for c in chunks]), whole.bid)
    for a, b in zip(chunks, chunks[1:]):  # no millisecond split between two chunks
        last = max(a.trade_ts[-1] if len(a.trade_ts) else 0, a.quote_ts[-1] if len(a.quote_ts) else 0) // 1_000_000
        first = min(b.trade_ts[0] if len(b.trade_ts) else 2**62, b.quote_ts[0] if len(b.quote_ts) else 2**62) // 1_000_000
        assert last < first
    if rows < 100_000:
        assert len(chunks) > 3
    _same(compute_streamed(chunks, CONFIG), compute(whole, CONFIG))


def test_equal_milliseconds_across_a_chunk_cut(tmp_path):
    """Trades and quotes sharing milliseconds, chunks of 3 rows: trades still first in each ms."""
    quotes, trades = book([(0, 600, 50_000.0)], step=5)
    trades += [(T0 + s * SEC, 50_000.1, 0.001, 1) for s in range(0, 600, 5)] * 3
    catalog = market(tmp_path / "cat", quotes, trades)
    whole = load_ticks(catalog, IID)
    config = AuctionConfig().with_overrides(["rolling_window_minutes=5", "warmup_minutes=0", "min_va_bins=1", "spread_lookback_minutes=5"])
    _same(compute_streamed(iter_ticks(catalog, IID, rows=3), config), compute(whole, config))
    assert isinstance(whole, Ticks) and engine_config(config, whole.spec).rolling_window_minutes == 5
