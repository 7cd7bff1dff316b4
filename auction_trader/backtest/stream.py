"""A catalog range as a stream of Nautilus ticks, in bounded memory.

A single backtest does not need the whole range in memory: Nautilus's
``BacktestEngine.add_data_iterator`` pulls ``list[Data]`` blocks from a generator as it runs. This
module provides both halves:

* :func:`scan_range` - what the run needs to know before its first tick (how many trades and
  quotes, the first and last timestamps, and the latest timestamp before the last, where the
  end-of-run actor flattens when orders reach the venue with the next tick), from the Parquet
  row-group statistics of the catalog's files; only the ``ts_init`` column of row groups that
  straddle a bound of the range is read;
* :func:`stream_ticks` - the range's trades and quotes merged into replay order (time, and trades
  before quotes at equal ``ts_init``, each type in catalog order: the order of
  :func:`~auction_trader.backtest.engine.load_data`), in blocks of :data:`BLOCK_TICKS`. Each type is
  read through Nautilus's own Rust reader (``ParquetDataCatalog.backend_session``, the reader
  behind ``ParquetDataCatalog.query``) chunk by chunk, so the objects are exactly those the
  in-memory path builds.

Memory: the blocks in flight (one being replayed, one being merged, the reader's chunks) - a few
hundred thousand ticks at most, about 0.3 KB each as Nautilus objects - whatever the range.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from nautilus_trader.core.nautilus_pyo3 import drop_cvec_pycapsule
from nautilus_trader.model.data import QuoteTick, TradeTick, capsule_to_list
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from auction_trader.data.catalog import data_dir, file_intervals
from auction_trader.data.errors import DataError

#: Ticks per block handed to the engine (about 15 MB of Nautilus objects).
BLOCK_TICKS = 50_000

_NO_END = 2**63 - 1


@dataclass(frozen=True)
class TickRange:
    """What a range of a catalog holds, known before replaying it."""

    trades: int
    quotes: int
    first_ts: int  # -1 when the range is empty
    last_ts: int
    before_last_ts: int | None  # the latest tick time < last_ts (None: every tick is at last_ts)

    @property
    def ticks(self) -> int:
        return self.trades + self.quotes


@dataclass(frozen=True)
class _Group:
    path: Path
    index: int
    rows: int
    lo: int | None  # ts_init statistics (None when the file has none)
    hi: int | None


def _groups(catalog: Path, cls: type, instrument_id: str, lo: int, hi: int) -> list[_Group]:
    """Row groups of the catalog's files for ``cls`` that may hold ticks in ``[lo, hi]``."""
    directory = data_dir(catalog, cls, instrument_id)
    if not directory.is_dir():
        return []
    out = []
    for first, last, path in file_intervals(directory):
        if first > hi or last < lo:
            continue
        meta = pq.ParquetFile(path).metadata
        col = meta.schema.names.index("ts_init")
        for i in range(meta.num_row_groups):
            group = meta.row_group(i)
            stats = group.column(col).statistics
            g_lo, g_hi = (int(stats.min), int(stats.max)) if stats is not None and stats.has_min_max else (None, None)
            if g_lo is not None and (g_lo > hi or g_hi < lo):
                continue
            out.append(_Group(path, i, group.num_rows, g_lo, g_hi))
    return out


def _ts(group: _Group) -> np.ndarray:
    return pq.ParquetFile(group.path).read_row_group(group.index, columns=["ts_init"]).column("ts_init").to_numpy().astype(np.int64)


def scan_range(catalog: str | Path, instrument_id: str, start_ns: int | None = None, end_ns: int | None = None) -> TickRange:
    """Counts and bounds of the catalog's trades and quotes in ``[start_ns, end_ns]`` (inclusive)."""
    root = Path(catalog)
    if not (root / "data").is_dir():
        raise DataError(f"{catalog}: not a catalog (no data/ directory)")
    lo = -1 if start_ns is None else int(start_ns)
    hi = _NO_END if end_ns is None else int(end_ns)
    counts = {}
    first, last = None, None
    groups: list[_Group] = []
    for cls in (TradeTick, QuoteTick):
        n = 0
        for g in _groups(root, cls, instrument_id, lo, hi):
            groups.append(g)
            if g.lo is not None and lo <= g.lo and g.hi <= hi:
                n += g.rows
                g_first, g_last = g.lo, g.hi
            else:
                ts = _ts(g)
                ts = ts[(ts >= lo) & (ts <= hi)]
                if not len(ts):
                    continue
                n += len(ts)
                g_first, g_last = int(ts.min()), int(ts.max())
            first = g_first if first is None else min(first, g_first)
            last = g_last if last is None else max(last, g_last)
        counts[cls] = n
    if first is None:
        return TickRange(counts[TradeTick], counts[QuoteTick], -1, -1, None)
    # The latest time before the last: the newest row groups first, until none can beat it.
    before = None
    for g in sorted(groups, key=lambda g: _NO_END if g.hi is None else g.hi, reverse=True):
        if before is not None and g.hi is not None and g.hi <= before:
            break
        ts = _ts(g)
        ts = ts[(ts >= lo) & (ts <= hi) & (ts < last)]
        if len(ts):
            before = int(ts.max()) if before is None else max(before, int(ts.max()))
    return TickRange(counts[TradeTick], counts[QuoteTick], first, last, before)


def _chunks(root: Path, catalog: ParquetDataCatalog, cls: type, instrument_id: str, start_ns: int | None, end_ns: int | None) -> Iterator[list]:
    """One type's ticks in catalog order, a reader chunk at a time (Nautilus objects)."""
    if not data_dir(root, cls, instrument_id).is_dir():
        return
    kwargs = {"identifiers": [instrument_id]}
    if start_ns is not None:
        kwargs["start"] = int(start_ns)
    if end_ns is not None:
        kwargs["end"] = int(end_ns)
    session = catalog.backend_session(cls, **kwargs)
    for chunk in session.to_query_result():
        items = capsule_to_list(chunk)
        drop_cvec_pycapsule(chunk)
        if items:
            yield items


class _Pending:
    """One type's ticks read but not yet merged: objects and their ``ts_init``."""

    def __init__(self, source: Iterator[list], lo: int, hi: int) -> None:
        self.source = source
        self.lo, self.hi = lo, hi
        self.items: list = []
        self.ts = np.zeros(0, np.int64)
        self.done = False

    def pull(self) -> None:
        chunk = next(self.source, None)
        if chunk is None:
            self.done = True
            return
        ts = np.fromiter((d.ts_init for d in chunk), np.int64, len(chunk))
        keep = (ts >= self.lo) & (ts <= self.hi)  # the bounds exactly, whatever the reader does
        if not keep.all():
            chunk = [d for d, k in zip(chunk, keep, strict=True) if k]
            ts = ts[keep]
        self.items = self.items + chunk if self.items else chunk
        self.ts = np.concatenate([self.ts, ts]) if len(self.ts) else ts

    def take_before(self, cutoff: int | None) -> tuple[list, np.ndarray]:
        """Remove and return the pending ticks with ``ts_init < cutoff`` (all of them: None)."""
        n = len(self.ts) if cutoff is None else int(np.searchsorted(self.ts, cutoff, side="left"))
        items, ts = self.items[:n], self.ts[:n]
        self.items, self.ts = self.items[n:], self.ts[n:]
        return items, ts


def stream_ticks(
    catalog: str | Path, instrument_id: str, start_ns: int | None = None, end_ns: int | None = None, block: int = BLOCK_TICKS,
) -> Iterator[list]:
    """The range's ticks in replay order, in blocks of about ``block`` (the last one shorter).

    Equal ``ts_init``: all trades of that instant before its quotes, as in
    :func:`~auction_trader.backtest.engine.load_data` (a stable sort of trades then quotes).
    """
    root = Path(catalog)
    cat = ParquetDataCatalog(str(root))
    lo = -1 if start_ns is None else int(start_ns)
    hi = _NO_END if end_ns is None else int(end_ns)
    trades = _Pending(_chunks(root, cat, TradeTick, instrument_id, start_ns, end_ns), lo, hi)
    quotes = _Pending(_chunks(root, cat, QuoteTick, instrument_id, start_ns, end_ns), lo, hi)
    out: list = []
    while True:
        for p in (trades, quotes):
            while not p.done and not p.items:
                p.pull()
        if trades.done and quotes.done and not trades.items and not quotes.items:
            break
        # Everything before the earliest "last read" time of the streams still being read is
        # final: no later chunk can hold a tick before it (each type is in time order).
        open_ends = [int(p.ts[-1]) for p in (trades, quotes) if not p.done]
        cutoff = min(open_ends) if open_ends else None
        t_items, t_ts = trades.take_before(cutoff)
        q_items, q_ts = quotes.take_before(cutoff)
        if not t_items and not q_items:
            # All pending ticks are at the cutoff instant: read on in the streams that reached it.
            for p in (trades, quotes):
                if not p.done and int(p.ts[-1]) == cutoff:
                    p.pull()
            continue
        if not q_items:
            out.extend(t_items)
        elif not t_items:
            out.extend(q_items)
        else:
            both = t_items + q_items
            order = np.argsort(np.concatenate([t_ts, q_ts]), kind="stable")  # trades first at ties
            out.extend([both[i] for i in order.tolist()])
        if len(out) >= block:
            yield out
            out = []
    if out:
        yield out
