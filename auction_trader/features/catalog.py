"""A catalog's trades and quotes as float columns for the feature engine: the whole range at once
(:func:`load_ticks`, small ranges and tests) or in chunks (:func:`iter_ticks`, any range in bounded
memory). Files and row groups outside the range are skipped from the file names and the Parquet
row-group statistics, without reading them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from nautilus_trader.model.data import QuoteTick, TradeTick

from auction_trader.data.catalog import data_dir, file_intervals
from auction_trader.data.errors import DataError
from auction_trader.data.ticks import decode_fixed
from auction_trader.instrument import InstrumentSpec

#: Rows read per Parquet batch by :func:`iter_ticks` (per type).
CHUNK_ROWS = 1_000_000


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


def _tables(catalog: Path, cls: type, instrument_id: str, start_ns: int | None, end_ns: int | None, rows: int) -> Iterator[pa.Table]:
    """One type's rows in ``[start_ns, end_ns]`` in catalog order, ``rows`` at a time; row groups
    outside the range (by their ``ts_event`` statistics) are not read."""
    directory = data_dir(catalog, cls, instrument_id)
    if not directory.is_dir():
        return
    lo = -1 if start_ns is None else start_ns
    hi = 2**63 - 1 if end_ns is None else end_ns
    for first, last, path in file_intervals(directory):
        if first > hi or last < lo:
            continue
        parquet = pq.ParquetFile(path)
        meta = parquet.metadata
        col = meta.schema.names.index("ts_event")
        groups = []
        for g in range(meta.num_row_groups):
            stats = meta.row_group(g).column(col).statistics
            if stats is not None and stats.has_min_max and (int(stats.min) > hi or int(stats.max) < lo):
                continue
            groups.append(g)
        for batch in parquet.iter_batches(batch_size=rows, row_groups=groups):
            table = pa.Table.from_batches([batch]).replace_schema_metadata(parquet.schema_arrow.metadata)
            ts = table.column("ts_event").to_numpy().astype(np.int64)
            keep = (ts >= lo) & (ts <= hi)
            if not keep.all():
                table = table.filter(pa.array(keep))
            if table.num_rows:
                yield table


def _precision(table: pa.Table) -> tuple[int, int]:
    meta = table.schema.metadata or {}
    return int(meta[b"price_precision"]), int(meta[b"size_precision"])


def _ticks(instrument_id: str, precision: tuple[int, int], trades: pa.Table | None, quotes: pa.Table | None) -> Ticks:
    price_p, size_p = precision
    spec = InstrumentSpec(instrument_id, instrument_id.split(".")[0].split("-")[0], price_p, size_p)

    def prices(table: pa.Table | None, name: str, p: int) -> np.ndarray:
        return np.zeros(0) if table is None or not table.num_rows else decode_fixed(table.column(name), p) / 10.0**p

    def times(table: pa.Table | None) -> np.ndarray:
        return np.zeros(0, np.int64) if table is None else table.column("ts_event").to_numpy().astype(np.int64)

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


def _no_ticks(catalog: Path, instrument_id: str, start_ns: int | None, end_ns: int | None) -> DataError:
    return DataError(f"{catalog}: no trades or quotes for {instrument_id}" + (" in the requested range" if start_ns or end_ns else ""))


def load_ticks(catalog: str | Path, instrument_id: str, start_ns: int | None = None, end_ns: int | None = None) -> Ticks:
    """Reads the catalog's Parquet files directly (columns, not objects) between two times."""
    catalog = Path(catalog)
    tables: dict[type, pa.Table | None] = {}
    precision = None
    for cls in (TradeTick, QuoteTick):
        parts = list(_tables(catalog, cls, instrument_id, start_ns, end_ns, CHUNK_ROWS))
        if parts:
            precision = _precision(parts[0])
        tables[cls] = pa.concat_tables(parts) if parts else None
    if precision is None:
        raise _no_ticks(catalog, instrument_id, start_ns, end_ns)
    return _ticks(instrument_id, precision, tables[TradeTick], tables[QuoteTick])


def iter_ticks(catalog: str | Path, instrument_id: str, start_ns: int | None = None, end_ns: int | None = None, rows: int = CHUNK_ROWS) -> Iterator[Ticks]:
    """The range in consecutive chunks of about ``rows`` trades or quotes, each cut at the same
    millisecond in both streams: ticks of one millisecond are always in the same chunk, so the
    feature engine's merge (trades first at equal milliseconds) sees the order of the whole."""
    catalog = Path(catalog)
    streams = {cls: _tables(catalog, cls, instrument_id, start_ns, end_ns, rows) for cls in (TradeTick, QuoteTick)}
    pending: dict[type, list[pa.Table]] = {TradeTick: [], QuoteTick: []}
    last_ms: dict[type, int] = {}
    done: dict[type, bool] = {TradeTick: False, QuoteTick: False}
    precision = None

    def pull(cls: type) -> None:
        nonlocal precision
        table = next(streams[cls], None)
        if table is None:
            done[cls] = True
            return
        precision = precision or _precision(table)
        pending[cls].append(table)
        last_ms[cls] = int(table.column("ts_event")[-1].as_py()) // 1_000_000

    def take(cls: type, cut_ms: int | None) -> pa.Table | None:
        if not pending[cls]:
            return None
        table = pa.concat_tables(pending[cls])
        if cut_ms is None:
            pending[cls] = []
            return table
        n = int(np.searchsorted(table.column("ts_event").to_numpy().astype(np.int64) // 1_000_000, cut_ms, side="left"))
        pending[cls] = [table.slice(n)] if n < table.num_rows else []
        return table.slice(0, n)

    for cls in pending:
        pull(cls)
    if precision is None:
        raise _no_ticks(catalog, instrument_id, start_ns, end_ns)
    while any(pending.values()) or not all(done.values()):
        for cls in pending:
            if not done[cls] and not pending[cls]:
                pull(cls)
        open_ends = [last_ms[cls] for cls in pending if not done[cls]]
        cut = min(open_ends) if open_ends else None  # everything before it is final
        trades, quotes = take(TradeTick, cut), take(QuoteTick, cut)
        if (trades is None or not trades.num_rows) and (quotes is None or not quotes.num_rows):
            if cut is None:
                break
            for cls in pending:  # all pending ticks are in the cut millisecond: read on
                if not done[cls] and last_ms[cls] == cut:
                    pull(cls)
            continue
        yield _ticks(instrument_id, precision, trades, quotes)
