"""The import pipeline: read each file in chunks, validate, hold it to its time order, stage it,
then merge everything into the catalog in one commit.

Streamed: a file is read a chunk at a time (:data:`~auction_trader.data.formats.CHUNK_ROWS`
rows) and every chunk goes to disk before the next is read, so a 30-day import holds a few
chunks in memory, never the range (``benchmarks/data_memory_bench.py`` measures it).

Strict by default: the first malformed row raises :class:`DataError` (file, line, field) and the
catalog is left exactly as it was. With ``skip_bad_rows`` bad rows are rejected - listed in the
report and in the rejects CSV beside the catalog - and the good rows land.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from auction_trader.config import AuctionConfig
from auction_trader.data.catalog import CatalogWriter, is_synthetic
from auction_trader.data.errors import DataError, Reject, Rejects, append_rejects
from auction_trader.data.formats import FileInfo, ImportOptions, readers
from auction_trader.data.merge import MergeStats
from auction_trader.data.parse import infer_precision, iso
from auction_trader.data.validate import Limits, TimeOrder, exact_quotes, exact_trades
from auction_trader.instrument import BTCUSDT, InstrumentSpec, raw_symbol


@dataclass
class FileReport:
    path: str
    rows_read: int
    rejected: int
    notes: list[str]


@dataclass
class TypeReport:
    """One data type's journey: valid -> (repeats dropped) -> duplicates skipped -> written."""

    parsed: int = 0
    repeats_dropped: int = 0
    duplicates: int = 0  # already in the catalog
    repeated: int = 0  # given more than once within this import
    written: int = 0
    first: int | None = None
    last: int | None = None
    files: list[str] = field(default_factory=list)

    def see(self, ts: np.ndarray) -> None:
        if len(ts):
            lo, hi = int(ts.min()), int(ts.max())
            self.first = lo if self.first is None else min(self.first, lo)
            self.last = hi if self.last is None else max(self.last, hi)

    def merged(self, stats: MergeStats) -> None:
        self.written, self.duplicates, self.repeated = stats.written, stats.in_catalog, stats.repeated
        self.repeats_dropped = stats.repeats
        self.files = stats.files + stats.rewritten


@dataclass
class ImportReport:
    instrument_id: str
    files: list[FileReport]
    trades: TypeReport
    quotes: TypeReport
    rejects: list[Reject]  # the first Rejects.KEEP per file; all are in the rejects file
    rejects_file: Path | None
    rejected: int = 0

    @property
    def rows_read(self) -> int:
        return sum(f.rows_read for f in self.files)

    def summary(self) -> str:
        lines = [f"imported into {self.instrument_id}:"]
        for f in self.files:
            lines.append(f"  {f.path}: {f.rows_read:,} rows read, {f.rejected:,} rejected" + "".join(f"; {n}" for n in f.notes))
        for name, t in (("trades", self.trades), ("quotes", self.quotes)):
            if t.parsed == 0 and t.written == 0:
                continue
            span = f"{iso(t.first)[:23]} -> {iso(t.last)[:23]}" if t.first is not None else "-"
            extra = f", {t.repeats_dropped:,} identical consecutive L1 snapshots dropped" if t.repeats_dropped else ""
            extra += f", {t.repeated:,} duplicated within this import (written once)" if t.repeated else ""
            lines.append(f"  {name}: {t.parsed:,} valid, {t.written:,} written, {t.duplicates:,} already in the catalog{extra}; span {span}")
        lines.append(
            f"  total: {self.rows_read:,} rows read, {self.trades.written + self.quotes.written:,} written, "
            f"{self.rejected:,} rejected" + (f" (see {self.rejects_file})" if self.rejects_file else ""),
        )
        return "\n".join(lines)


def import_files(
    fmt: str,
    files: Sequence[str | Path],
    catalog: str | Path,
    *,
    instrument_id: str | None = None,
    skip_bad_rows: bool = False,
    config: AuctionConfig | None = None,
    kind: str | None = None,
    columns: dict[str, str] | None = None,
    ts_unit: str = "auto",
    warn: Callable[[str], None] = print,
    earliest: int | None = None,
    latest: int | None = None,
    wait: float = 600.0,
) -> ImportReport:
    """Import ``files`` of format ``fmt`` into the catalog at ``catalog``; see the module doc.

    ``earliest``/``latest`` (ns) bound plausible timestamps (default: 2009-01-03 to a day from
    now); ``wait``: seconds to wait for another writer of the catalog to finish.
    """
    config = config or AuctionConfig()
    instrument_id = instrument_id or config.instrument_id
    catalog = Path(catalog)
    if fmt not in readers():
        raise DataError(f"unknown format {fmt!r} (known: {', '.join(readers())})")
    _check_instrument(instrument_id)
    if catalog.exists() and not catalog.is_dir():
        raise DataError(f"{catalog} is a file, not a catalog directory")
    if is_synthetic(catalog):
        raise DataError(f"{catalog} holds a synthetic market; import real data into a separate catalog")
    paths = [Path(p) for p in files]
    for path in paths:
        if path.is_dir():
            raise DataError(f"{path}: is a directory, not a file")
        if not path.is_file():
            raise DataError(f"{path}: no such file")
    reader = readers()[fmt]

    def options(spec: InstrumentSpec | None) -> ImportOptions:
        return ImportOptions(instrument_id, kind=kind, columns=dict(columns or {}), ts_unit=ts_unit, warn=warn, spec=spec)

    with tempfile.TemporaryDirectory(prefix="auction-trader-rejects-") as spool, CatalogWriter(catalog, None, config, wait=wait) as writer:
        if is_synthetic(catalog):  # labelled while we waited for the lock
            raise DataError(f"{catalog} holds a synthetic market; import real data into a separate catalog")
        spec = _known_spec(instrument_id, catalog) or _spec_from_files(reader, paths, options(None))
        writer.spec = spec
        limits = Limits.for_spec(spec, earliest, latest)
        reports = {"trades": TypeReport(), "quotes": TypeReport()}
        file_reports, all_rejects = [], []
        for n, path in enumerate(paths):
            rejects = Rejects(path, strict=not skip_bad_rows, spool=Path(spool) / f"{n}.csv")
            info = FileInfo()
            _import_file(n, path, reader(path, rejects, options(spec), info), info, rejects, limits, writer, reports)
            file_reports.append(FileReport(str(path), info.rows_read, len(rejects), info.notes))
            all_rejects.append(rejects)
        stats = writer.commit()
        for kind_name, report in reports.items():
            report.merged(stats[kind_name])
        every = [r for rejects in all_rejects for r in rejects.all()]
        rejects_file = append_rejects(catalog, every)
    return ImportReport(
        instrument_id=instrument_id,
        files=file_reports,
        trades=reports["trades"],
        quotes=reports["quotes"],
        rejects=[r for rejects in all_rejects for r in sorted(rejects.items, key=lambda r: r.line)],
        rejects_file=rejects_file,
        rejected=len(every),
    )


def _import_file(n: int, path: Path, chunks, info: FileInfo, rejects: Rejects, limits: Limits, writer: CatalogWriter, reports: dict) -> None:
    """One file: chunks -> exact rows -> time order -> staged. Nothing of it is held beyond a chunk."""
    orders: dict[str, TimeOrder] = {}
    for chunk in chunks:
        for kind_name, rows, exact in (("trades", chunk.trades, exact_trades), ("quotes", chunk.quotes, exact_quotes)):
            if rows is None or not len(rows):
                continue
            batch, order_key = exact(rows, limits, rejects)
            if kind_name not in orders:
                field_name = rows.names.get("order", "timestamp") if rows.order is not None else "timestamp"
                orders[kind_name] = TimeOrder(rejects, field_name, info.allow_descending)
            time_order = orders[kind_name]
            for decided in time_order.push(batch, batch.ts_event if order_key is None else order_key):
                _stage(writer, kind_name, n, path, decided, time_order.descending, reports)
    for kind_name, time_order in orders.items():
        for decided in time_order.finish():
            _stage(writer, kind_name, n, path, decided, time_order.descending, reports)
    rejects.close()


def _stage(writer: CatalogWriter, kind_name: str, n: int, path: Path, batch, descending: bool, reports: dict) -> None:
    if len(batch):
        reports[kind_name].parsed += len(batch)
        reports[kind_name].see(batch.ts_event)
        writer.stager(kind_name, str(path), drop_repeats=True, key=n).add(batch, descending=descending)


def _check_instrument(instrument_id: str) -> None:
    from nautilus_trader.model.identifiers import InstrumentId

    if not (instrument_id.isascii() and instrument_id.isprintable()) or " " in instrument_id:
        raise DataError(f"--instrument {instrument_id!r}: an instrument id is printable ASCII without spaces")
    try:
        InstrumentId.from_str(instrument_id)
    except ValueError as exc:
        raise DataError(f"--instrument {instrument_id!r}: {exc}") from None


def _known_spec(instrument_id: str, catalog: Path) -> InstrumentSpec | None:
    """BTCUSDT is defined here; another id is known once the catalog holds its instrument."""
    if instrument_id == BTCUSDT.instrument_id:
        return BTCUSDT
    if (catalog / "data").is_dir():
        from nautilus_trader.persistence.catalog import ParquetDataCatalog

        found = ParquetDataCatalog(str(catalog)).instruments(instrument_ids=[instrument_id])
        if found:
            return InstrumentSpec(instrument_id, raw_symbol(instrument_id), found[0].price_precision, found[0].size_precision)
    return None


def _spec_from_files(reader, paths: list[Path], options: ImportOptions) -> InstrumentSpec:
    """A new instrument's precision: the fewest decimals that represent every price and size.

    A first pass over the files (bad rows are ignored here and reported by the import itself);
    only prices and sizes are looked at, a chunk at a time.
    """
    price_p = size_p = -1
    for path in paths:
        for chunk in reader(path, Rejects(path, strict=False), options, FileInfo()):
            for rows in (chunk.trades, chunk.quotes):
                if rows is not None and len(rows):
                    prices, sizes = rows.floats()
                    ok = np.isfinite(prices) & (prices > 0) & (prices < 1e15)
                    okz = np.isfinite(sizes) & (sizes > 0) & (sizes < 1e15)
                    if ok.any():
                        price_p = max(price_p, infer_precision(prices[ok]))
                    if okz.any():
                        size_p = max(size_p, infer_precision(sizes[okz]))
    instrument_id = options.instrument_id
    return InstrumentSpec(
        instrument_id,
        raw_symbol(instrument_id),
        price_p if price_p >= 0 else BTCUSDT.price_precision,
        size_p if size_p >= 0 else BTCUSDT.size_precision,
    )
