"""The run's per-minute files written while it runs (auction_trader/backtest/spool.py, issue 13).

A run no longer than a row group writes the bytes ``pyarrow.parquet.write_table`` wrote (the
sample's digests in tests/test_lifecycle_identity.py hold that for full runs). Here the spool is
made to work hard on a short run - features drained every 7 minutes, row groups of 64 rows, so
records are handed over while a trade is open and the files have several row groups - and the
files must hold exactly the rows of the run that spools nothing until the end, with streamed and
in-memory runs still byte-identical.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from auction_trader.backtest import spool as spool_module
from auction_trader.backtest.engine import load_data
from auction_trader.backtest.outputs import run_single
from auction_trader.backtest.spool import RunSpool, rows_table
from auction_trader.config import AuctionConfig
from auction_trader.data.synth import generate, write_synthetic
from auction_trader.strategies import auction_strategy
from tests.conftest import tree_digest
from tests.test_lifecycle_identity import SHORT, T0, WIDE

IID = "BTCUSDT-LINEAR.BYBIT"
CONFIG = AuctionConfig().with_overrides([*SHORT, *WIDE])


def test_one_row_group_is_the_bytes_of_write_table(tmp_path):
    rows = [{"ts_min": i, "flag": i % 2, "state": f"s{i}", "nested": {"b": i, "a": [1, 2]}} for i in range(10)]
    pq.write_table(rows_table(rows), tmp_path / "whole.parquet")
    spool = RunSpool(tmp_path, row_group_rows=10)
    spool.signals(rows[:3])
    spool.signals(rows[3:])
    path = spool.signals_file.close()
    assert path.read_bytes() == (tmp_path / "whole.parquet").read_bytes()
    assert pq.read_table(path).column("nested").to_pylist()[0] == '{"a":[1,2],"b":0}'
    assert not list(tmp_path.glob(".*partial"))


def test_row_groups_of_n_rows_hold_every_row_in_order(tmp_path):
    spool = RunSpool(tmp_path, row_group_rows=4)
    for lo in (0, 3, 5, 6):  # parts of 3, 2, 1 and 4 rows
        hi = {0: 3, 3: 5, 5: 6, 6: 10}[lo]
        spool.features({"ts_min": pa.array(range(lo, hi)).to_numpy(), "x": pa.array([i / 2 for i in range(lo, hi)]).to_numpy()})
    path = spool.features_file.close()
    meta = pq.ParquetFile(path).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [4, 4, 2]
    assert pq.read_table(path).to_pydict() == {"ts_min": list(range(10)), "x": [i / 2 for i in range(10)]}


def test_nothing_written_is_no_file_or_an_empty_one_and_a_failed_run_leaves_none(tmp_path):
    spool = RunSpool(tmp_path, row_group_rows=2)
    assert spool.features_file.close() is None
    assert pq.read_table(spool.signals_file.close(empty=pa.table({}))).num_rows == 0
    spool = RunSpool(tmp_path / "x", row_group_rows=2)
    (tmp_path / "x").mkdir()
    spool.signals([{"a": 1}, {"a": 2}, {"a": 3}])  # one group written, one row buffered
    assert spool.signals_file.partial.exists()
    spool.abort()
    assert list((tmp_path / "x").iterdir()) == []


def test_a_column_that_changes_type_mid_run_is_an_error(tmp_path):
    spool = RunSpool(tmp_path, row_group_rows=2)
    spool.signals([{"a": 1}, {"a": 2}])
    with pytest.raises(ValueError, match="changed type"):
        spool.signals([{"a": "x"}, {"a": "y"}])
    spool.abort()


def _columns(path) -> dict:
    """Every column's values as bytes (NaN equal to NaN, unlike Table.equals)."""
    table = pq.read_table(path)
    return {c: [repr(v) for v in table.column(c).to_pylist()] for c in table.column_names}


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    path = tmp_path_factory.mktemp("spool") / "cat"
    write_synthetic(path, generate(6.5, 42, T0), AuctionConfig())
    return path


def test_spilled_mid_run_the_files_hold_the_rows_of_the_run_kept_in_memory(catalog, tmp_path, monkeypatch):
    whole = run_single(CONFIG, catalog, None, None, tmp_path / "whole", report=False)
    monkeypatch.setattr(auction_strategy, "FEATURE_DRAIN_MINUTES", 7)
    monkeypatch.setattr(spool_module, "ROW_GROUP_ROWS", 64)
    spills = []
    original = auction_strategy.AuctionStrategy._spill

    def spy(self):
        spills.append(bool(self.lifecycle.open_records()))
        original(self)

    monkeypatch.setattr(auction_strategy.AuctionStrategy, "_spill", spy)
    streamed = run_single(CONFIG, catalog, None, None, tmp_path / "streamed", report=False)
    in_memory = run_single(CONFIG, catalog, None, None, tmp_path / "memory", report=False, data=load_data(catalog, IID))

    assert whole.metrics["trades"] >= 3 and whole.metrics["ticks"] > 100_000
    assert len(spills) >= 30 and any(spills)  # handed over mid-run, once at least with a trade open
    assert tree_digest(streamed.out_dir) == tree_digest(in_memory.out_dir)
    for name in ("features_1m.parquet", "signals_1m.parquet"):
        assert pq.ParquetFile(streamed.out_dir / name).metadata.num_row_groups > 1
        assert _columns(streamed.out_dir / name) == _columns(whole.out_dir / name), name
    for name in ("fills.parquet", "trades.parquet", "execution.db", "alerts.json"):
        assert (streamed.out_dir / name).read_bytes() == (whole.out_dir / name).read_bytes(), name
    assert streamed.metrics == whole.metrics
