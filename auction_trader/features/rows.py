"""Every minute's features from ticks: the Rust engine over a whole range (:func:`compute`) or a
stream of chunks (:func:`compute_streamed`, the same rows in bounded memory), and the Parquet
file that holds them."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

import rust_indicators
from auction_trader.config import AuctionConfig
from auction_trader.features.catalog import Ticks
from auction_trader.features.params import FEATURE_COLUMNS, engine_config


def compute(ticks: Ticks, config: AuctionConfig) -> pa.Table:
    """Every minute's features as an Arrow table (columns in ``FEATURE_COLUMNS`` order)."""
    cols = rust_indicators.compute_features(
        engine_config(config, ticks.spec),
        ticks.trade_ts,
        ticks.trade_price,
        ticks.trade_size,
        ticks.trade_side,
        ticks.quote_ts,
        ticks.bid,
        ticks.bid_size,
        ticks.ask,
        ticks.ask_size,
    )
    return pa.table({name: cols[name] for name in FEATURE_COLUMNS})


def compute_streamed(chunks: Iterable[Ticks], config: AuctionConfig, progress: Callable[[Ticks], None] | None = None) -> pa.Table:
    """:func:`compute` over consecutive chunks (:func:`~auction_trader.features.catalog.iter_ticks`):
    the same rows, holding one chunk of ticks and the minute rows at a time."""
    engine = None
    parts = []
    for ticks in chunks:
        if engine is None:
            engine = rust_indicators.FeatureEngine(engine_config(config, ticks.spec))
        engine.on_arrays(
            ticks.trade_ts, ticks.trade_price, ticks.trade_size, ticks.trade_side,
            ticks.quote_ts, ticks.bid, ticks.bid_size, ticks.ask, ticks.ask_size,
        )  # fmt: skip
        parts.append(pa.table(engine.drain()))
        if progress is not None:
            progress(ticks)
    if engine is None:
        return pa.table({name: [] for name in FEATURE_COLUMNS})
    engine.finish()
    parts.append(pa.table(engine.drain()))
    table = pa.concat_tables([p.select(FEATURE_COLUMNS) for p in parts if p.num_rows]) if any(p.num_rows for p in parts) else parts[-1]
    return table.select(FEATURE_COLUMNS).combine_chunks()


def write_features(table: pa.Table, out: str | Path, config: AuctionConfig, source: str) -> None:
    """Parquet with the parameters in its metadata; same inputs, same bytes."""
    meta = {"auction_trader.config": json.dumps(config.flat(), sort_keys=True), "auction_trader.source": source}
    pq.write_table(table.replace_schema_metadata(meta), out)
