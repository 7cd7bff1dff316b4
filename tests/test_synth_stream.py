"""The synthetic market generated an hour at a time: the same bytes as the whole-market generator
it replaced, exact streamed statistics, and memory that does not grow with the span."""

from __future__ import annotations

import numpy as np
import pytest

from auction_trader.config import AuctionConfig
from auction_trader.data.synth import DEFAULT_CALIBRATION, STEPS_PER_HOUR, _PathStream, fair_path, generate, parse_start, synth_command, write_synthetic
from auction_trader.data.synth_stats import LEAF, pairwise_mean, percentile_of_counts
from tests.conftest import tree_digest

START = "2024-01-01T00:00:00Z"
INSTRUMENT = "data/crypto_perpetual/BTCUSDT-LINEAR.BYBIT/1970-01-01T00-00-00-000000000Z_1970-01-01T00-00-00-000000000Z.parquet"
QUOTES = "data/quote_tick/BTCUSDT-LINEAR.BYBIT/"
TRADES = "data/trade_tick/BTCUSDT-LINEAR.BYBIT/"

# Catalogs written by the generator that held the whole market in memory (before issue 13), for
# the same seed, hours and start: the streamed generator must reproduce them byte for byte.
PINNED = {
    (0.5, 5): {
        "SYNTHETIC.json": "f01cf9bcbe8958e657501581c63ff70829a0740d83c7daeb26ec4211e731160d",
        INSTRUMENT: "9d4212a9ed5534093a9ff169ef1e96834f925e2b1a0617edfdc62ea1800922e6",
        QUOTES + "2024-01-01T00-00-00-000000000Z_2024-01-01T00-29-59-904000000Z.parquet": "6434d31c4a50176aa8ac0ae2d900344f985b29d41f6b72a47c3401f23102ee13",
        TRADES + "2024-01-01T00-00-00-060000000Z_2024-01-01T00-29-59-690000000Z.parquet": "3c03987831607b66b3bf8ada15f9e669fcf4e1ee60adfe780e5456b8f8c7538c",
    },
    (10.0, 42): {  # the sample catalog of `bash setup.sh demo`
        "SYNTHETIC.json": "aadc69f917681a2b4dbc6709ebe25175b2355747e5bc42b5423e060cd17db3bd",
        INSTRUMENT: "9d4212a9ed5534093a9ff169ef1e96834f925e2b1a0617edfdc62ea1800922e6",
        QUOTES + "2024-01-01T00-00-00-000000000Z_2024-01-01T09-59-59-905000000Z.parquet": "522a8e8dfd3441af1efe270e3798d96dd501135d6a5314ea8ca0bbfc83210ffb",
        TRADES + "2024-01-01T00-00-00-207000000Z_2024-01-01T09-59-59-971000000Z.parquet": "371c068f8e75c1792751dc1c89a6843cbbbd06989d95530cb7bb91c6c3b0f84d",
    },
    (25.5, 11): {  # crosses a file boundary; the last hour is a half
        "SYNTHETIC.json": "8063100defde23bd1067485253f75459a5ab9ad87f27802842a3dbd6fd6a831d",
        INSTRUMENT: "9d4212a9ed5534093a9ff169ef1e96834f925e2b1a0617edfdc62ea1800922e6",
        QUOTES + "2024-01-01T00-00-00-000000000Z_2024-01-01T23-59-59-804000000Z.parquet": "46cc3201c53a1f0d4544b750f0dba7c411949603d73171fc5cfe53dd8c3c4419",
        QUOTES + "2024-01-02T00-00-00-205000000Z_2024-01-02T01-29-59-901000000Z.parquet": "0d70396ec97a6e80be0e635445f98d0b2c767a1d35ae2661c0cff6b990d65b09",
        TRADES + "2024-01-01T00-00-00-004000000Z_2024-01-01T23-59-59-932000000Z.parquet": "0c5b23cf90175dc79983a7874e1b09b29ed877218ca4d234c1f0378cf99a8b4a",
        TRADES + "2024-01-02T00-00-00-245000000Z_2024-01-02T01-29-59-534000000Z.parquet": "3f94b0b0c89b6b5faeef10575f34106a84c2d4b1d3d70f841cc3b79b6fac6032",
    },
}


@pytest.mark.parametrize(("hours", "seed"), [(0.5, 5), (25.5, 11)])
def test_streamed_synth_writes_the_bytes_of_the_whole_market_generator(tmp_path, hours, seed, capsys):
    assert synth_command(tmp_path / "c", hours, seed, START, False, AuctionConfig()) == 0
    assert tree_digest(tmp_path / "c") == PINNED[(hours, seed)]
    assert "pass 3/3" in capsys.readouterr().out


def test_the_sample_market_in_memory_is_unchanged(tmp_path):
    write_synthetic(tmp_path / "sample", generate(10.0, 42, parse_start(START)))
    assert tree_digest(tmp_path / "sample") == PINNED[(10.0, 42)]


@pytest.mark.parametrize("n", [1, 2, 7, 100, 1001, 25_000])
def test_quantiles_from_exact_counts_equal_numpy_percentile(n):
    rng = np.random.default_rng(n)
    sample = rng.integers(1, 60, n) if n % 2 else np.exp(rng.normal(0, 2, n)).round().astype(np.int64) + 1
    values, counts = np.unique(sample, return_counts=True)
    for q in (10, 25, 50, 75, 90, 99, 0, 100, 33.3):
        assert percentile_of_counts(values / 1000, counts, q) == np.percentile(sample / 1000, q)


@pytest.mark.parametrize("n", [1, 7, 8, 129, LEAF, LEAF + 1, 3 * LEAF + 17, 700_001])
def test_means_summed_in_pieces_equal_numpy_mean_bit_for_bit(n):
    values = np.random.default_rng(n).random(n) * 1e3
    assert pairwise_mean(lambda lo, hi: values[lo:hi], n) == np.mean(values)


def test_the_price_path_keeps_hours_not_the_span():
    path = _PathStream(30.0, 3, DEFAULT_CALIBRATION)
    whole, segments = fair_path(30.0, 3)
    most = 0
    for k0 in range(0, path.n, STEPS_PER_HOUR):
        k1 = min(path.n, k0 + STEPS_PER_HOUR)
        x, off = path.window(max(0, k0 - 150), min(path.n, k1 + 150))
        assert np.array_equal(x, whole[off : off + len(x)])
        path.release(k1 - 150)
        most = max(most, len(path.buf))
    assert path.segments == segments
    # Four hours of history, the regime being made and the hour asked for, trimmed in halves.
    assert most < 13 * STEPS_PER_HOUR < len(whole)
