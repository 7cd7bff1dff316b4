"""Writing to a Nautilus ``ParquetDataCatalog``: one writer at a time, all or nothing, crash-safe.

The layout is Nautilus's own (``data/<type>/<instrument>/<start>_<end>.parquet``, disjoint closed
intervals per directory, the instrument stored beside the ticks), so ``ParquetDataCatalog``,
``BacktestNode`` and every Nautilus tool read what is written here.

What :class:`CatalogWriter` adds is the discipline a store of months of data needs:

* **One writer**: it holds the catalog's lock (:mod:`auction_trader.data.lock`) from before it
  looks at the catalog until its commit is done; a second writer waits, or fails saying whom it
  waited for.
* **All or nothing, crash-safe**: the next version is built beside the current one and swapped
  in at once (:mod:`auction_trader.data.transaction`); leftovers of a writer that died are
  finished or removed by the next one.
* **Incremental**: ticks can be added in any number of chunks and sources; they are staged on
  disk and merged in time order in bounded memory (:mod:`auction_trader.data.merge`):
  de-duplicated (re-importing a file adds nothing), conflicts refused, intervals kept disjoint.
* **Labelled**: a catalog built by the synthetic market carries ``SYNTHETIC.json``; real imports
  refuse to mix into it, and ``inspect`` says so.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from nautilus_trader.model.data import QuoteTick, TradeTick
from nautilus_trader.persistence.funcs import class_to_filename, urisafe_identifier

from auction_trader.config import AuctionConfig
from auction_trader.data.errors import DataError
from auction_trader.data.lock import CatalogLock
from auction_trader.data.merge import (
    DAY_NS,
    Edges,
    FileSink,
    Merger,
    MergeStats,
    RunStager,
    Source,
    existing_source,
    interval_filename,
    rewrite,
    rows_of,
)
from auction_trader.data.ticks import QuoteBatch, TradeBatch
from auction_trader.data.transaction import Transaction, recover
from auction_trader.instrument import InstrumentSpec, perpetual_for

SYNTHETIC_MARKER = "SYNTHETIC.json"
KINDS = {"trades": TradeTick, "quotes": QuoteTick}

__all__ = [
    "SYNTHETIC_MARKER",
    "CatalogWriter",
    "data_dir",
    "file_intervals",
    "format_inventory",
    "has_data",
    "interval_filename",
    "inventory",
    "is_synthetic",
]


def data_dir(root: Path, data_cls: type, instrument_id: str) -> Path:
    return Path(root) / "data" / class_to_filename(data_cls) / urisafe_identifier(instrument_id)


def parse_interval(name: str) -> tuple[int, int] | None:
    """(start, end) ns from a file name in Nautilus's convention, or None."""
    import re

    match = re.match(r"^(\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d-\d{9}Z)_(\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d-\d{9}Z)\.parquet$", name)
    if not match:
        return None
    return _name_to_ns(match.group(1)), _name_to_ns(match.group(2))


def _name_to_ns(part: str) -> int:
    date, time = part[:-1].split("T")
    h, m, s, nanos = time.split("-")
    return int(np.datetime64(f"{date}T{h}:{m}:{s}", "ns").astype(np.int64)) + int(nanos)


def file_intervals(directory: Path) -> list[tuple[int, int, Path]]:
    """(start, end, file) of every Parquet file in a catalog data directory, by start."""
    out = []
    if Path(directory).is_dir():
        for path in Path(directory).glob("*.parquet"):
            interval = parse_interval(path.name)
            if interval:
                out.append((*interval, path))
            else:  # not named by Nautilus's convention: read the bounds from the data
                ts = pq.read_table(path, columns=["ts_init"]).column("ts_init").to_numpy()
                if len(ts):
                    out.append((int(ts.min()), int(ts.max()), path))
    return sorted(out, key=lambda t: t[0])


def is_synthetic(root: Path) -> dict | None:
    marker = Path(root) / SYNTHETIC_MARKER
    if not marker.is_file():
        return None
    try:
        return json.loads(marker.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"{marker}: unreadable synthetic-market label ({exc})") from None


def has_data(root: Path) -> bool:
    return any((Path(root) / "data").rglob("*.parquet")) if (Path(root) / "data").is_dir() else False


class CatalogWriter:
    """Adds ticks to the catalog at ``root``; :meth:`commit` makes them visible, all at once.

    Use as a context manager: leaving the block with an error discards everything staged, and
    the catalog is as it was. ``replace``: the next version starts empty (the synthetic market
    replaces itself). ``edges``: where output files are cut (default: UTC days). ``direct``: rows
    arrive in time order from one source and go straight into catalog files, skipping the
    staging and merge (the synthetic market, which writes into an empty catalog).
    """

    def __init__(
        self,
        root: Path,
        spec: InstrumentSpec | None,
        config: AuctionConfig | None = None,
        *,
        wait: float = 600.0,
        log: Callable[[str], None] | None = None,
        replace: bool = False,
        edges: Edges | None = None,
        direct: bool = False,
    ) -> None:
        self.root = Path(root).absolute()
        self.spec = spec
        self.config = config or AuctionConfig()
        self.log = log or (lambda message: print(message, file=sys.stderr, flush=True))
        self.replace, self.direct = replace, direct
        self.edges = edges
        self.lock = CatalogLock(self.root, wait, self.log)
        self.txn: Transaction | None = None
        self.committed = False
        self._stagers: dict[tuple[str, str], RunStager] = {}
        self._sinks: dict[str, FileSink] = {}
        self._sources = 0

    def __enter__(self) -> CatalogWriter:
        self.lock.acquire()
        try:
            for message in recover(self.root):
                self.log(message)
            self.txn = Transaction(self.root, keep_existing=not self.replace)
        except BaseException:
            self.lock.release()
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        crashed = exc_type is not None and not issubclass(exc_type, Exception)
        try:
            if self.txn is not None and not self.committed and not crashed:
                self.txn.abort()
        finally:
            # A writer that created the catalog directory and committed nothing takes it away again.
            remove = self.lock.created_root and not self.committed and not crashed
            self.lock.release()
            if remove:
                try:
                    self.root.rmdir()
                except OSError:
                    pass

    @property
    def scratch(self) -> Path:
        return self.txn.scratch

    def existing(self, kind: str) -> list[tuple[int, int, Path]]:
        """The catalog's current files of one kind for this writer's instrument."""
        return file_intervals(data_dir(self.root, KINDS[kind], self.spec.instrument_id))

    # -- adding ticks ---------------------------------------------------------------------------

    def stager(self, kind: str, name: str, drop_repeats: bool = False, key: object = None) -> RunStager:
        """The staging of one source's rows (``name``: the input file, for messages; ``key``: what
        makes it a source of its own, by default its name - a file given twice is two sources).

        ``drop_repeats``: identical consecutive quotes of the source are dropped (imports do).
        """
        key = (kind, name if key is None else key)
        if key not in self._stagers:
            self._stagers[key] = RunStager(self.txn.scratch, kind, name, self._sources, drop_repeats)
            self._sources += 1
        return self._stagers[key]

    def add_trades(self, batch: TradeBatch, source: str = "(added trades)") -> None:
        self._add("trades", batch, source)

    def add_quotes(self, batch: QuoteBatch, source: str = "(added quotes)") -> None:
        self._add("quotes", batch, source)

    def _add(self, kind: str, batch: TradeBatch | QuoteBatch, source: str) -> None:
        if len(batch) == 0:
            return
        if self.direct:
            self._sink(kind).add(rows_of(batch, np.zeros(len(batch), np.int64)))
        else:
            self.stager(kind, source).add(batch)

    def _sink(self, kind: str) -> FileSink:
        if kind not in self._sinks:
            rel = data_dir(Path("."), KINDS[kind], self.spec.instrument_id)
            self._sinks[kind] = FileSink(self.txn, rel, kind, self.spec, self.edges or Edges())
        return self._sinks[kind]

    # -- commit ---------------------------------------------------------------------------------

    def commit(self, marker: dict | None = None) -> dict[str, MergeStats]:
        """Merge what was added into the next version and swap it in; per kind, what it did."""
        stats = {kind: MergeStats() for kind in KINDS}
        for kind in KINDS:
            if self.direct:
                if kind in self._sinks:
                    stats[kind].files = self._sinks[kind].close()
                    stats[kind].written = self._sinks[kind].rows
            else:
                self._merge(kind, stats[kind])
        if self.spec is not None and any(s.files or s.rewritten for s in stats.values()):
            self._stage_instrument()
        if marker is not None:
            self.txn.set_marker(marker)
        self.txn.commit()
        self.committed = True
        return stats

    def _merge(self, kind: str, stats: MergeStats) -> None:
        runs = [s for s in (st.close() for (k, _), st in self._stagers.items() if k == kind) if s is not None]
        if not runs:
            return
        for i, run in enumerate(runs):  # dense indices for the merge's arrays
            run.index = i
            for piece in run.pieces:
                piece.source = i
        existing = self.existing(kind)
        sources: list[Source] = list(runs)
        for start, end, path in existing:
            if any(start <= r.last and end >= r.first for r in runs):
                sources.append(existing_source(self.root, path, start, end, len(sources), kind, self.spec))
        rel = data_dir(Path("."), KINDS[kind], self.spec.instrument_id)
        starts = [start for start, _, _ in existing]
        edges = Edges(self.edges.period, self.edges.origin, starts) if self.edges else Edges(DAY_NS, 0, starts)
        sink = FileSink(self.txn, rel, kind, self.spec, edges)
        merger = Merger(kind, sources, sink, stats)
        merger.run()
        stats.files = sink.close()
        for source_index, groups in merger.touched.items():
            stats.rewritten.append(rewrite(self.txn, sources[source_index], groups, kind, self.spec))

    def _stage_instrument(self) -> None:
        from nautilus_trader.persistence.catalog import ParquetDataCatalog

        final_dir = self.txn.path(Path("data") / "crypto_perpetual" / urisafe_identifier(self.spec.instrument_id))
        if final_dir.is_dir() and any(final_dir.glob("*.parquet")):
            return
        ParquetDataCatalog(str(self.txn.next)).write_data([perpetual_for(self.spec, self.config)])


def recover_leftovers(root: Path, wait: float = 600.0) -> list[str]:
    """Finish or remove what an interrupted writer left in ``root`` (under the catalog's lock)."""
    from auction_trader.data.transaction import TXN_DIR

    root = Path(root)
    if not (root / TXN_DIR).is_dir():
        return []
    with CatalogLock(root, wait, lambda message: print(message, file=sys.stderr, flush=True)):
        done = recover(root)
    for message in done:
        print(message, file=sys.stderr, flush=True)
    return done


def inventory(root: Path, **kwargs) -> dict:
    from auction_trader.data.inventory import inventory as _inventory

    return _inventory(root, **kwargs)


def format_inventory(inv: dict) -> str:
    from auction_trader.data.inventory import format_inventory as _format

    return _format(inv)
