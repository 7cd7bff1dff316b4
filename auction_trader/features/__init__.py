"""Per-minute features from a catalog: the Rust engine replayed over stored trades and quotes.

The same engine runs inside the strategy (through :class:`~auction_trader.indicators.AuctionFeatures`)
and here, over a whole catalog at once, so a features file is exactly what the strategy saw.
Column definitions: ``docs/features.md``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from nautilus_trader.model.data import QuoteTick, TradeTick

import rust_indicators
from auction_trader.config import AuctionConfig
from auction_trader.data.catalog import data_dir, file_intervals
from auction_trader.data.errors import DataError
from auction_trader.data.ticks import decode_fixed
from auction_trader.instrument import BTCUSDT, InstrumentSpec

FEATURE_COLUMNS: list[str] = list(rust_indicators.FEATURE_COLUMNS)


def engine_config(config: AuctionConfig, spec: InstrumentSpec = BTCUSDT) -> rust_indicators.EngineConfig:
    """The engine's parameters from the plugin's configuration and the instrument's grid."""
    va, init, qi = config.value_area, config.initiative, config.quote_imbalance
    return rust_indicators.EngineConfig(
        tick_size=spec.tick_size,
        size_step=10.0**-spec.size_precision,
        rolling_window_minutes=va.rolling_window_minutes,
        va_fraction=va.va_fraction,
        base_bin_ticks=va.base_bin_ticks,
        alpha_bin=va.alpha_bin,
        bin_width_max_ticks=va.bin_width_max_ticks,
        rebucket_interval_minutes=va.rebucket_interval_minutes,
        rebucket_change_pct=va.rebucket_change_pct,
        min_va_bins=va.min_va_bins,
        max_quote_staleness_ms=init.max_quote_staleness_ms,
        use_tick_rule_fallback=init.use_tick_rule_fallback,
        order_flow_source=init.order_flow_source,
        qimb_ema_span_seconds=qi.qimb_ema_span_seconds,
        spread_lookback_minutes=qi.spread_lookback_minutes,
        use_bvc=init.use_bvc,
        lookback_bvc=init.lookback_bvc,
    )


@dataclass
class Ticks:
    """One instrument's trades and quotes from a catalog, as float columns in time order."""

    spec: InstrumentSpec
    trade_ts: np.ndarray
    trade_price: np.ndarray
    trade_size: np.ndarray
    trade_side: np.ndarray
    quote_ts: np.ndarray
    bid: np.ndarray
    bid_size: np.ndarray
    ask: np.ndarray
    ask_size: np.ndarray

    @property
    def count(self) -> int:
        return len(self.trade_ts) + len(self.quote_ts)


def load_ticks(catalog: str | Path, instrument_id: str, start_ns: int | None = None, end_ns: int | None = None) -> Ticks:
    """Reads the catalog's Parquet files directly (columns, not objects) between two times."""
    catalog = Path(catalog)
    tables = {}
    precision = None
    for cls in (TradeTick, QuoteTick):
        parts = []
        for first, last, path in file_intervals(data_dir(catalog, cls, instrument_id)):
            if (end_ns is not None and first > end_ns) or (start_ns is not None and last < start_ns):
                continue
            table = pq.read_table(path)
            meta = table.schema.metadata or {}
            precision = (int(meta[b"price_precision"]), int(meta[b"size_precision"]))
            ts = table.column("ts_event").to_numpy().astype(np.int64)
            keep = np.ones(len(ts), dtype=bool)
            if start_ns is not None:
                keep &= ts >= start_ns
            if end_ns is not None:
                keep &= ts <= end_ns
            parts.append(table.filter(pa.array(keep)) if not keep.all() else table)
        tables[cls] = pa.concat_tables(parts) if parts else None
    if precision is None:
        raise DataError(f"{catalog}: no trades or quotes for {instrument_id}" + (" in the requested range" if start_ns or end_ns else ""))
    price_p, size_p = precision
    spec = InstrumentSpec(instrument_id, instrument_id.split(".")[0].split("-")[0], price_p, size_p)

    def prices(table: pa.Table | None, name: str, p: int) -> np.ndarray:
        return np.zeros(0) if table is None else decode_fixed(table.column(name), p) / 10.0**p

    def times(table: pa.Table | None) -> np.ndarray:
        return np.zeros(0, np.int64) if table is None else table.column("ts_event").to_numpy().astype(np.int64)

    trades, quotes = tables[TradeTick], tables[QuoteTick]
    return Ticks(
        spec=spec,
        trade_ts=times(trades),
        trade_price=prices(trades, "price", price_p),
        trade_size=prices(trades, "size", size_p),
        trade_side=np.zeros(0, np.uint8) if trades is None else trades.column("aggressor_side").to_numpy().astype(np.uint8),
        quote_ts=times(quotes),
        bid=prices(quotes, "bid_price", price_p),
        bid_size=prices(quotes, "bid_size", size_p),
        ask=prices(quotes, "ask_price", price_p),
        ask_size=prices(quotes, "ask_size", size_p),
    )


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


def write_features(table: pa.Table, out: str | Path, config: AuctionConfig, source: str) -> None:
    """Parquet with the parameters in its metadata; same inputs, same bytes."""
    meta = {"auction_trader.config": json.dumps(config.flat(), sort_keys=True), "auction_trader.source": source}
    pq.write_table(table.replace_schema_metadata(meta), out)


def summary(table: pa.Table) -> str:
    """The numbers a trader checks first: coverage, validity, ambiguity, agreement with the exchange."""
    n = table.num_rows
    if n == 0:
        return "no minutes"
    col = {name: table.column(name).to_numpy(zero_copy_only=False) for name in table.column_names}
    valid = int(col["va_valid"].sum())
    ambiguous = col["ambiguous_trade_frac_1m"]
    trading = ~np.isnan(ambiguous)
    agree, disagree, unknown = (int(col[c].sum()) for c in ("side_agree", "side_disagree", "side_unknown"))
    known = agree + disagree
    causes = [
        ("same-timestamp print (buyers and sellers merged)", "disagree_same_ts"),
        ("stale quote", "disagree_stale"),
        ("tick-rule fallback", "disagree_fallback"),
        ("inside the spread, unsigned", "disagree_inside"),
        ("quote rule against a fresh quote (feed latency)", "disagree_quote"),
    ]
    first, last = (str(np.datetime64(int(col["ts_min"][i]), "ms")) for i in (0, -1))
    lines = [
        f"{'minutes':<52} {n:>10,}   ({first} .. {last} UTC)",
        f"{'minutes with trades':<52} {int(trading.sum()):>10,}",
        f"{'minutes with a valid value area':<52} {valid:>10,}   ({valid / n:.1%})",
        f"{'mean ambiguous fraction (minutes with trades)':<52} {float(np.mean(ambiguous[trading])) if trading.any() else float('nan'):>10.4f}",
    ]
    if known:
        lines.append(f"{'trades with the exchange taker side':<52} {known:>10,}")
        lines.append(f"{'  inferred sign agrees':<52} {agree:>10,}   ({agree / known:.2%})")
        lines.append(f"{'  disagrees':<52} {disagree:>10,}   ({disagree / known:.2%})")
        for label, name in causes:
            count = int(col[name].sum())
            lines.append(f"{'    ' + label:<52} {count:>10,}   ({count / known:.2%})")
    if unknown:
        lines.append(f"{'trades without a taker side in the data':<52} {unknown:>10,}")
    lines += flow_comparison(col)
    return "\n".join(lines)


def flow_comparison(col: dict) -> list[str]:
    """How far the inferred order flow differs from the exchange's taker side, minute by minute
    (both are in every features table, whatever ``order_flow_source`` chose for ``of_1m``)."""
    volume = col["volume"]
    sided = (col["side_agree"] + col["side_disagree"]) > 0
    if not sided.any():
        return []
    inferred, exchange = col["of_1m_inferred"][sided], col["of_1m_exchange"][sided]
    gap = np.abs(inferred - exchange) / volume[sided]
    flipped = int(np.sum(np.sign(inferred) != np.sign(exchange)))
    n = int(sided.sum())
    return [
        f"{'order flow, inferred vs the exchange taker side':<52} {n:>10,}   minutes",
        f"{'  mean |OF_norm inferred - OF_norm exchange|':<52} {float(np.mean(gap)):>10.4f}",
        f"{'  minutes where the sign of OF_1m differs':<52} {flipped:>10,}   ({flipped / n:.2%})",
    ]
