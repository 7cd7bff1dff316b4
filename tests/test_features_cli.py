"""python -m auction_trader.features: replay, summary, determinism, errors."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from auction_trader.config import AuctionConfig
from auction_trader.data.importing import import_files
from auction_trader.data.synth import generate, write_synthetic
from auction_trader.features import FEATURE_COLUMNS
from auction_trader.features.__main__ import main as features_cli

START = 1_704_067_200_000_000_000


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    path = tmp_path_factory.mktemp("synthetic") / "cat"
    write_synthetic(path, generate(2.0, 5, START), AuctionConfig())
    return path


def test_same_catalog_gives_a_byte_identical_file(synthetic, tmp_path, capsys):
    args = ["--catalog", str(synthetic), "--set", "rolling_window_minutes=30"]
    assert features_cli([*args, "--out", str(tmp_path / "a.parquet")]) == 0
    assert features_cli([*args, "--out", str(tmp_path / "b.parquet")]) == 0
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()
    table = pq.read_table(tmp_path / "a.parquet")
    assert table.column_names == FEATURE_COLUMNS
    assert table.num_rows == 120
    meta = table.schema.metadata
    assert b'"rolling_window_minutes": 30' in meta[b"auction_trader.config"]
    out = capsys.readouterr().out
    assert "minutes with a valid value area" in out and "inferred sign agrees" in out and "tick-rule fallback" in out


def test_start_and_end_select_minutes(synthetic, tmp_path):
    out = tmp_path / "part.parquet"
    assert features_cli(["--catalog", str(synthetic), "--out", str(out), "--start", "2024-01-01T00:30:00", "--end", "2024-01-01T00:59:59.999Z"]) == 0
    ts = pq.read_table(out).column("ts_min").to_pylist()
    assert ts[0] == (START // 1_000_000) + 30 * 60_000 and len(ts) == 30


def test_real_feeds_with_the_checkers_settings(binance_feeds, tmp_path, capsys):
    catalog = tmp_path / "real"
    import_files("binance-feed", binance_feeds, catalog)
    out = tmp_path / "real.parquet"
    code = features_cli([
        "--catalog", str(catalog), "--out", str(out),
        "--set", "rolling_window_minutes=3", "--set", "min_va_bins=5", "--set", "spread_lookback_minutes=3",
    ])
    assert code == 0
    table = pq.read_table(out)
    # Every minute from 2024-07-18 23:57 to 2024-08-09 00:00, the 20-day gap included.
    first, last = table.column("ts_min")[0].as_py(), table.column("ts_min")[-1].as_py()
    assert (first, last) == (1721347020000, 1723161600000)
    assert table.num_rows == (last - first) // 60_000 + 1
    text = capsys.readouterr().out
    assert "trades with the exchange taker side" in text and "32,014" in text


def test_errors_are_clear(tmp_path, capsys):
    assert features_cli(["--catalog", str(tmp_path), "--out", str(tmp_path / "x.parquet")]) == 1
    assert "no trades or quotes for BTCUSDT-LINEAR.BYBIT" in capsys.readouterr().err
    assert features_cli(["--catalog", str(tmp_path), "--out", str(tmp_path / "x.parquet"), "--set", "va_fraction=2"]) == 1
    assert "value_area.va_fraction" in capsys.readouterr().err
    assert features_cli(["--catalog", str(tmp_path), "--out", str(tmp_path / "x.parquet"), "--start", "yesterday-ish"]) == 1
    assert "--start/--end" in capsys.readouterr().err
