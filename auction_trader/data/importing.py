"""The import pipeline: read every file, make values exact, order by time, write all or nothing.

Strict by default: the first malformed row raises :class:`DataError` (file, line, field) before
anything is written. With ``skip_bad_rows`` bad rows are rejected - listed in the report and in the
rejects CSV beside the catalog - and the good rows land.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from auction_trader.config import AuctionConfig
from auction_trader.data.catalog import CatalogWriter, is_synthetic
from auction_trader.data.errors import DataError, Reject, Rejects, append_rejects
from auction_trader.data.formats import ImportOptions, Parsed, readers
from auction_trader.data.parse import check_time_order, infer_precision, iso
from auction_trader.data.ticks import QuoteBatch, TradeBatch
from auction_trader.instrument import BTCUSDT, InstrumentSpec, raw_symbol


@dataclass
class FileReport:
    path: str
    rows_read: int
    rejected: int
    notes: list[str]


@dataclass
class TypeReport:
    """One data type's journey: parsed -> (repeats dropped) -> duplicates skipped -> written."""

    parsed: int = 0
    repeats_dropped: int = 0
    duplicates: int = 0
    written: int = 0
    first: int | None = None
    last: int | None = None
    files: list[str] = field(default_factory=list)


@dataclass
class ImportReport:
    instrument_id: str
    files: list[FileReport]
    trades: TypeReport
    quotes: TypeReport
    rejects: list[Reject]
    rejects_file: Path | None

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
            lines.append(
                f"  {name}: {t.parsed:,} valid, {t.written:,} written, {t.duplicates:,} already in the catalog"
                f"{extra}; span {span}",
            )
        lines.append(
            f"  total: {self.rows_read:,} rows read, {self.trades.written + self.quotes.written:,} written, "
            f"{len(self.rejects):,} rejected" + (f" (see {self.rejects_file})" if self.rejects_file else ""),
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
) -> ImportReport:
    """Import ``files`` of format ``fmt`` into the catalog at ``catalog``; see the module doc."""
    config = config or AuctionConfig()
    instrument_id = instrument_id or config.instrument_id
    catalog = Path(catalog)
    if fmt not in readers():
        raise DataError(f"unknown format {fmt!r} (known: {', '.join(readers())})")
    try:
        InstrumentId.from_str(instrument_id)
    except ValueError as exc:
        raise DataError(f"--instrument {instrument_id!r}: {exc}") from None
    if is_synthetic(catalog):
        raise DataError(f"{catalog} holds a synthetic market; import real data into a separate catalog")
    reader = readers()[fmt]
    known = _known_spec(instrument_id, catalog)
    parsed: list[tuple[Path, Parsed, Rejects]] = []
    for path in map(Path, files):
        rejects = Rejects(path, strict=not skip_bad_rows)
        options = ImportOptions(instrument_id, kind=kind, columns=dict(columns or {}), ts_unit=ts_unit, warn=warn, spec=known)
        parsed.append((path, reader(path, rejects, options), rejects))

    spec = known or _spec_from_data(instrument_id, parsed)
    trades, quotes = [], []
    for _, p, rejects in parsed:
        if p.trades is not None and len(p.trades):
            trades.append(_exact_and_ordered(p, "trades", spec, rejects))
        if p.quotes is not None and len(p.quotes):
            quotes.append(_exact_and_ordered(p, "quotes", spec, rejects))
    trade_batch = _by_time(TradeBatch.concat(trades))
    quote_batch = _by_time(QuoteBatch.concat(quotes))
    quote_batch, repeats = quote_batch.drop_repeats()

    report_t = TypeReport(parsed=len(trade_batch), **_span(trade_batch))
    report_q = TypeReport(parsed=len(quote_batch), repeats_dropped=repeats, **_span(quote_batch))
    with CatalogWriter(catalog, spec, config) as writer:
        for report, result in ((report_t, writer.add_trades(trade_batch)), (report_q, writer.add_quotes(quote_batch))):
            report.written, report.duplicates, report.files = result.written, result.duplicates, result.files
        writer.commit()
    all_rejects = [r for _, _, rejects in parsed for r in rejects.items]
    return ImportReport(
        instrument_id=instrument_id,
        files=[FileReport(str(path), p.rows_read, len(rejects), p.notes) for path, p, rejects in parsed],
        trades=report_t,
        quotes=report_q,
        rejects=all_rejects,
        rejects_file=append_rejects(catalog, all_rejects),
    )


def _known_spec(instrument_id: str, catalog: Path) -> InstrumentSpec | None:
    """BTCUSDT is defined here; another id is known once the catalog holds its instrument."""
    if instrument_id == BTCUSDT.instrument_id:
        return BTCUSDT
    if (catalog / "data").is_dir():
        found = ParquetDataCatalog(str(catalog)).instruments(instrument_ids=[instrument_id])
        if found:
            return InstrumentSpec(instrument_id, raw_symbol(instrument_id), found[0].price_precision, found[0].size_precision)
    return None


def _spec_from_data(instrument_id: str, parsed: list[tuple[Path, Parsed, Rejects]]) -> InstrumentSpec:
    """A new instrument's precision: the fewest decimals that represent every price and size."""
    prices, sizes = [], []
    for _, p, _ in parsed:
        for rows in (p.trades, p.quotes):
            if rows is not None and len(rows):
                price, size = rows.floats()
                prices.append(price)
                sizes.append(size)
    if not prices:
        return InstrumentSpec(instrument_id, raw_symbol(instrument_id), BTCUSDT.price_precision, BTCUSDT.size_precision)
    return InstrumentSpec(instrument_id, raw_symbol(instrument_id), infer_precision(np.concatenate(prices)), infer_precision(np.concatenate(sizes)))


def _exact_and_ordered(p: Parsed, kind: str, spec: InstrumentSpec, rejects: Rejects) -> TradeBatch | QuoteBatch:
    rows = p.trades if kind == "trades" else p.quotes
    batch, off_grid = rows.to_batch(spec, rejects)
    order_key = p.order_key(kind)
    key = batch.ts_event if order_key is None else order_key
    keep = check_time_order(key, batch.line, rejects, "local_timestamp" if order_key is not None else "timestamp", p.allow_descending)
    return batch.take(keep[~off_grid[keep]])


def _by_time(batch):
    order = np.argsort(batch.ts_event, kind="stable")
    if np.all(order == np.arange(len(order))):
        return batch
    return batch.take(order)


def _span(batch) -> dict:
    if not len(batch):
        return {"first": None, "last": None}
    return {"first": int(batch.ts_event[0]), "last": int(batch.ts_event[-1])}
