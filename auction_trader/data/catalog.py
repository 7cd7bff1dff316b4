"""Writing to, and reading the inventory of, a Nautilus ``ParquetDataCatalog``.

The layout is Nautilus's own (``data/<type>/<instrument>/<start>_<end>.parquet``, disjoint
intervals per directory, the instrument stored beside the ticks), so ``ParquetDataCatalog``,
``BacktestNode`` and every Nautilus tool read what is written here.

What this adds is the discipline an importer needs:

* All-or-nothing: files are written to a staging directory beside the catalog and moved in only
  when every file of the import is ready. A failed import leaves the catalog as it was.
* Idempotent: rows that fall inside data already in the catalog are compared with it; identical
  rows are counted as duplicates and skipped (re-importing a file adds nothing), different rows
  are a conflict and stop the import. New rows outside existing intervals are written in one file
  per gap, keeping intervals disjoint.
* Labelled: a catalog built by the synthetic market carries ``SYNTHETIC.json``; real imports
  refuse to mix into it, and ``inspect`` says so.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from nautilus_trader.core.datetime import unix_nanos_to_iso8601
from nautilus_trader.model.data import QuoteTick, TradeTick
from nautilus_trader.persistence.catalog import ParquetDataCatalog
from nautilus_trader.persistence.funcs import class_to_filename, urisafe_identifier

from auction_trader.config import AuctionConfig
from auction_trader.data.errors import DataError
from auction_trader.data.parse import iso
from auction_trader.data.ticks import QuoteBatch, TradeBatch, quotes_table, trades_table
from auction_trader.instrument import InstrumentSpec, perpetual_for

SYNTHETIC_MARKER = "SYNTHETIC.json"
ROW_GROUP_SIZE = 5_000  # ParquetDataCatalog's default max_rows_per_group


def data_dir(root: Path, data_cls: type, instrument_id: str) -> Path:
    return Path(root) / "data" / class_to_filename(data_cls) / urisafe_identifier(instrument_id)


def interval_filename(start: int, end: int) -> str:
    """Nautilus's file naming: ISO-8601 nanosecond bounds with ':' and '.' made path-safe."""

    def safe(ns: int) -> str:
        return unix_nanos_to_iso8601(int(ns)).replace(":", "-").replace(".", "-")

    return f"{safe(start)}_{safe(end)}.parquet"


_NAME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d-\d{9}Z)_(\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d-\d{9}Z)\.parquet$")


def _name_to_ns(part: str) -> int:
    date, time = part[:-1].split("T")
    h, m, s, nanos = time.split("-")
    return int(np.datetime64(f"{date}T{h}:{m}:{s}", "ns").astype(np.int64)) + int(nanos)


def file_intervals(directory: Path) -> list[tuple[int, int, Path]]:
    """(start, end, file) of every Parquet file in a catalog data directory, by start."""
    out = []
    if directory.is_dir():
        for path in directory.glob("*.parquet"):
            match = _NAME.match(path.name)
            if match:
                out.append((_name_to_ns(match.group(1)), _name_to_ns(match.group(2)), path))
            else:  # not named by Nautilus's convention: read the bounds from the data
                ts = pq.read_table(path, columns=["ts_init"]).column("ts_init").to_numpy()
                out.append((int(ts.min()), int(ts.max()), path))
    return sorted(out, key=lambda t: t[0])


def is_synthetic(root: Path) -> dict | None:
    marker = Path(root) / SYNTHETIC_MARKER
    return json.loads(marker.read_text()) if marker.exists() else None


def has_data(root: Path) -> bool:
    return any((Path(root) / "data").rglob("*.parquet")) if (Path(root) / "data").is_dir() else False


@dataclass
class WriteResult:
    """What one data type of an import did to the catalog."""

    written: int = 0
    duplicates: int = 0
    files: list[str] = field(default_factory=list)


class CatalogWriter:
    """Stages new ticks beside the catalog and moves them in on :meth:`commit`, all or nothing.

    Use as a context manager: leaving the block with an exception discards the staged files.
    """

    def __init__(self, root: Path, spec: InstrumentSpec, config: AuctionConfig | None = None) -> None:
        self.root = Path(root).resolve()
        self.spec = spec
        self.config = config or AuctionConfig()
        self.staging = self.root.parent / f".{self.root.name}.staging-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._moves: list[tuple[Path, Path]] = []

    def __enter__(self) -> CatalogWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)

    # -- staging --------------------------------------------------------------------------------

    def add_trades(self, batch: TradeBatch) -> WriteResult:
        return self._stage(TradeTick, trades_table(batch, self.spec))

    def add_quotes(self, batch: QuoteBatch) -> WriteResult:
        return self._stage(QuoteTick, quotes_table(batch, self.spec))

    def _stage(self, data_cls: type, table: pa.Table) -> WriteResult:
        result = WriteResult()
        if table.num_rows == 0:
            return result
        final_dir = data_dir(self.root, data_cls, self.spec.instrument_id)
        existing = file_intervals(final_dir)
        ts = table.column("ts_init").to_numpy()
        covered = np.zeros(len(ts), dtype=bool)
        for start, end, path in existing:
            lo, hi = np.searchsorted(ts, start, "left"), np.searchsorted(ts, end, "right")
            if lo == hi:
                continue
            covered[lo:hi] = True
            result.duplicates += self._check_duplicates(table.slice(lo, hi - lo), path)
        remaining = np.flatnonzero(~covered)
        if len(remaining):
            # Rows outside every existing interval: one new file per gap between them.
            starts = np.array([s for s, _, _ in existing], dtype=np.int64)
            gap = np.searchsorted(starts, ts[remaining], "right")
            for g in np.unique(gap):
                rows = remaining[gap == g]
                part = table.take(pa.array(rows))
                name = interval_filename(int(ts[rows[0]]), int(ts[rows[-1]]))
                staged = self.staging / final_dir.relative_to(self.root) / name
                staged.parent.mkdir(parents=True, exist_ok=True)
                pq.write_table(part, staged, row_group_size=ROW_GROUP_SIZE)
                self._moves.append((staged, final_dir / name))
                result.written += len(rows)
                result.files.append(str((final_dir / name).relative_to(self.root)))
        return result

    @staticmethod
    def _check_duplicates(new: pa.Table, path: Path) -> int:
        """All of ``new`` must already be in ``path``; returns how many rows that is."""
        old = pq.read_table(path)
        if old.num_rows == new.num_rows and old.cast(new.schema).equals(new):
            return new.num_rows  # the common case, a file imported again: one columnar comparison
        names = new.schema.names
        have = set(zip(*(old.column(c).to_pylist() for c in names)))
        rows = list(zip(*(new.column(c).to_pylist() for c in names)))
        differ = [i for i, row in enumerate(rows) if row not in have]
        if differ:
            first = int(new.column("ts_init")[differ[0]].as_py())
            raise DataError(
                f"{len(differ)} new row(s) fall inside data already in the catalog ({path}) but are "
                f"not in it (first at {iso(first)}). The catalog keeps one version of a time range: "
                "import into another catalog, or remove that file first.",
            )
        return len(rows)

    def _stage_instrument(self) -> None:
        final_dir = self.root / "data" / "crypto_perpetual" / urisafe_identifier(self.spec.instrument_id)
        if final_dir.is_dir() and any(final_dir.glob("*.parquet")):
            return
        # The instrument is serialised by Nautilus itself.
        staging_catalog = ParquetDataCatalog(str(self.staging))
        staging_catalog.write_data([perpetual_for(self.spec, self.config)])
        for staged in (self.staging / "data" / "crypto_perpetual").rglob("*.parquet"):
            self._moves.append((staged, self.root / staged.relative_to(self.staging)))

    # -- commit ---------------------------------------------------------------------------------

    def commit(self, marker: dict | None = None) -> None:
        """Move every staged file into the catalog (and write the synthetic label, if any)."""
        self._stage_instrument()
        for staged, final in self._moves:
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staged, final)
        if marker is not None:
            (self.root / SYNTHETIC_MARKER).write_text(json.dumps(marker, indent=2, sort_keys=True) + "\n")
        self._moves.clear()


# -- inventory ------------------------------------------------------------------------------------

GAP_NS = 60 * 1_000_000_000


@dataclass
class Series:
    data_type: str
    instrument_id: str
    files: int
    rows: int
    first: int | None
    last: int | None
    gaps: list[tuple[int, int]]  # (from, to) of every gap longer than a minute


def inventory(root: Path) -> dict:
    """Everything ``inspect`` prints, as data: per type counts, spans, gaps, overlap, labels."""
    root = Path(root)
    if not (root / "data").is_dir():
        raise DataError(f"{root}: not a catalog (no data/ directory)")
    series: list[Series] = []
    for type_dir in sorted(p for p in (root / "data").iterdir() if p.is_dir()):
        for inst_dir in sorted(p for p in type_dir.iterdir() if p.is_dir()):
            files = [p for _, _, p in file_intervals(inst_dir)]
            if not files:
                continue
            rows = sum(pq.ParquetFile(p).metadata.num_rows for p in files)
            first = last = None
            gaps: list[tuple[int, int]] = []
            if type_dir.name in ("trade_tick", "quote_tick"):
                ts = np.concatenate([pq.read_table(p, columns=["ts_event"]).column("ts_event").to_numpy() for p in files])
                ts = np.sort(ts.astype(np.int64))
                first, last = int(ts[0]), int(ts[-1])
                d = np.diff(ts)
                gaps = [(int(ts[i]), int(ts[i + 1])) for i in np.flatnonzero(d > GAP_NS)]
            series.append(Series(type_dir.name, inst_dir.name, len(files), rows, first, last, gaps))
    overlap = {}
    for inst in {s.instrument_id for s in series}:
        t = next((s for s in series if s.instrument_id == inst and s.data_type == "trade_tick"), None)
        q = next((s for s in series if s.instrument_id == inst and s.data_type == "quote_tick"), None)
        if t and q:
            start, end = max(t.first, q.first), min(t.last, q.last)
            overlap[inst] = {
                "start": start if start <= end else None,
                "end": end if start <= end else None,
                "trades_before_first_quote": _count_before(root, inst, q.first),
            }
    rejects = root.resolve().with_name(root.resolve().name + ".rejects.csv")
    return {
        "path": str(root),
        "synthetic": is_synthetic(root),
        "series": series,
        "overlap": overlap,
        "rejects_file": str(rejects) if rejects.exists() else None,
        "rejects": max(0, sum(1 for _ in rejects.open()) - 1) if rejects.exists() else 0,
    }


def _count_before(root: Path, instrument_id: str, ts: int) -> int:
    """Trades that no quote precedes: the order-flow classifier cannot sign them."""
    total = 0
    for start, _, path in file_intervals(data_dir(root, TradeTick, instrument_id)):
        if start >= ts:
            break
        col = pq.read_table(path, columns=["ts_event"]).column("ts_event").to_numpy()
        total += int((col <= ts).sum())
    return total


def format_inventory(inv: dict) -> str:
    """The human-readable ``inspect`` report."""
    lines = [f"catalog {inv['path']}"]
    synth = inv["synthetic"]
    if synth:
        lines.append(
            f"  SYNTHETIC market (generator {synth.get('generator')}, seed {synth.get('seed')}, "
            f"{synth.get('hours')} h from {synth.get('start')}) - not real data",
        )
    else:
        lines.append("  real market data (no synthetic label)")
    header = f"  {'type':<16} {'instrument':<24} {'files':>5} {'rows':>11}  {'first (UTC)':<23} {'last (UTC)':<23} {'gaps>1m':>7}"
    lines += [header, "  " + "-" * (len(header) - 2)]
    for s in inv["series"]:
        first = iso(s.first)[:23] if s.first is not None else "-"
        last = iso(s.last)[:23] if s.last is not None else "-"
        gaps = str(len(s.gaps)) if s.data_type in ("trade_tick", "quote_tick") else "-"
        lines.append(f"  {s.data_type:<16} {s.instrument_id:<24} {s.files:>5} {s.rows:>11,}  {first:<23} {last:<23} {gaps:>7}")
    for s in inv["series"]:
        for a, b in s.gaps[:10]:
            lines.append(f"  gap in {s.data_type}: {iso(a)[:23]} -> {iso(b)[:23]} ({(b - a) / 60e9:.1f} min)")
        if len(s.gaps) > 10:
            lines.append(f"  ... and {len(s.gaps) - 10} more gaps in {s.data_type}")
    for inst, ov in inv["overlap"].items():
        if ov["start"] is None:
            lines.append(f"  {inst}: trades and quotes do not overlap in time")
        else:
            lines.append(
                f"  {inst}: trades and quotes overlap {iso(ov['start'])[:23]} -> {iso(ov['end'])[:23]} "
                f"({(ov['end'] - ov['start']) / 60e9:.1f} min); trades before the first quote: "
                f"{ov['trades_before_first_quote']}",
            )
    if inv["rejects_file"]:
        lines.append(f"  rejected rows so far: {inv['rejects']} (in {inv['rejects_file']})")
    return "\n".join(lines)
