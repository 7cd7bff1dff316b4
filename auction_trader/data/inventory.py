"""What ``inspect`` shows and verifies: a catalog's inventory, and whether it can be trusted.

Inventory, per data type and instrument: files, rows, first/last timestamp, gaps over a minute,
the trade/quote overlap, the synthetic label, the rejected rows so far.

Verification - a catalog that fails any of these is reported with the file (and row) at fault,
and ``inspect`` exits with status 1:

* every file is read back by Nautilus's own ``ParquetDataCatalog`` (in a child process: its
  reader aborts on bad data) and yields the rows the file holds;
* every file is named by Nautilus's ``<start>_<end>.parquet`` convention, its rows lie inside that
  interval, and the intervals of a directory are disjoint (Nautilus picks files by their names);
* time never goes backwards within a file;
* no tick is there twice (a trade id at one time; an identical quote at one time);
* values are what Nautilus can hold and the instrument allows: fixed-point values on the
  instrument's precision and range, sizes positive, bid below ask, aggressor codes known, trade
  ids printable ASCII of at most 36 characters, and (for real data) times inside the plausible
  window of :mod:`auction_trader.data.validate`.

Everything is read a batch at a time, so a catalog of months is checked in bounded memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from auction_trader.data.catalog import is_synthetic, parse_interval
from auction_trader.data.errors import DataError
from auction_trader.data.parse import iso
from auction_trader.data.ticks import decode_fixed, encode_fixed
from auction_trader.data.validate import Limits, check_id
from auction_trader.instrument import BTCUSDT, InstrumentSpec, raw_symbol

GAP_NS = 60 * 1_000_000_000
BATCH = 200_000
TICKS = ("trade_tick", "quote_tick")


@dataclass
class Series:
    data_type: str
    instrument_id: str
    files: int
    rows: int
    first: int | None
    last: int | None
    gaps: list[tuple[int, int]]  # (from, to) of every gap longer than a minute
    paths: list[Path] = field(default_factory=list)


def inventory(root: Path, verify: bool = True, nautilus: bool = True) -> dict:
    """Everything ``inspect`` prints, as data: per type counts, spans, gaps, overlap, labels,
    and (``verify``) the problems found; ``nautilus``: also read every file back with Nautilus."""
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise DataError(f"{root} is a file, not a catalog directory")
    if not (root / "data").is_dir():
        raise DataError(f"{root}: not a catalog (no data/ directory)")
    notes = _leftovers(root)
    synthetic = is_synthetic(root)
    problems: list[str] = []
    series: list[Series] = []
    try:
        type_dirs = sorted(p for p in (root / "data").iterdir() if p.is_dir())
    except OSError as exc:
        raise DataError(f"{root / 'data'}: cannot be listed ({exc.strerror})") from None
    for type_dir in type_dirs:
        for inst_dir in sorted(p for p in type_dir.iterdir() if p.is_dir()):
            found = _series(root, type_dir.name, inst_dir, synthetic is None, verify, problems)
            if found is not None:
                series.append(found)
    if verify and nautilus:
        _read_back(root, series, problems)
    overlap = {}
    for inst in sorted({s.instrument_id for s in series}):
        t = next((s for s in series if s.instrument_id == inst and s.data_type == "trade_tick"), None)
        q = next((s for s in series if s.instrument_id == inst and s.data_type == "quote_tick"), None)
        if t and q and t.first is not None and q.first is not None:
            start, end = max(t.first, q.first), min(t.last, q.last)
            overlap[inst] = {
                "start": start if start <= end else None,
                "end": end if start <= end else None,
                "trades_before_first_quote": _count_before(t.paths, q.first),
            }
    rejects = root.resolve().with_name(root.resolve().name + ".rejects.csv")
    return {
        "path": str(root),
        "synthetic": synthetic,
        "series": series,
        "overlap": overlap,
        "rejects_file": str(rejects) if rejects.exists() else None,
        "rejects": max(0, sum(1 for _ in rejects.open()) - 1) if rejects.exists() else 0,
        "verified": verify,
        "nautilus": verify and nautilus,
        "problems": problems,
        "notes": notes,
    }


def _leftovers(root: Path) -> list[str]:
    """Finish or remove what an interrupted writer left, if no writer is at work now."""
    from auction_trader.data.lock import CatalogLock
    from auction_trader.data.transaction import TXN_DIR, recover

    if not (root / TXN_DIR).exists():
        return []
    try:
        with CatalogLock(root, wait=0, log=lambda _m: None):
            return recover(root)
    except DataError as exc:
        return [f"an interrupted or running write left {root / TXN_DIR} ({exc}); the catalog shows its last commit"]


def _spec_of(root: Path, instrument_id: str, schema: pa.Schema) -> InstrumentSpec:
    if instrument_id == BTCUSDT.instrument_id:
        return BTCUSDT
    meta = schema.metadata or {}
    return InstrumentSpec(instrument_id, raw_symbol(instrument_id), int(meta.get(b"price_precision", 0)), int(meta.get(b"size_precision", 0)))


def _series(root: Path, data_type: str, inst_dir: Path, real: bool, verify: bool, problems: list[str]) -> Series | None:
    rel = lambda p: str(Path(p).relative_to(root))  # noqa: E731
    paths = sorted(inst_dir.glob("*.parquet"))
    if not paths:
        return None
    named = []
    for path in paths:
        interval = parse_interval(path.name)
        if interval is None:
            problems.append(f"{rel(path)}: not named <start>_<end>.parquet as Nautilus names catalog files; it cannot tell the file's interval")
        else:
            named.append((*interval, path))
    named.sort(key=lambda t: t[0])
    reach: tuple[int, Path] | None = None  # the latest end so far, and its file
    for s2, e2, p2 in named:
        if reach is not None and s2 <= reach[0]:
            e1, p1 = reach
            problems.append(
                f"{rel(p1)} and {rel(p2)}: intervals overlap ({iso(s2)[:23]} -> {iso(min(e1, e2))[:23]}); Nautilus "
                "requires disjoint files (the same ticks may be there twice)",
            )
        if reach is None or e2 > reach[0]:
            reach = (e2, p2)
    order = [p for _, _, p in named] + [p for p in paths if parse_interval(p.name) is None]
    rows, first, last, gaps, prev_ts = 0, None, None, [], None
    for path in order:
        try:
            parquet = pq.ParquetFile(path)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is a finding, not a crash
            problems.append(f"{rel(path)}: not a readable Parquet file ({exc})")
            continue
        rows += parquet.metadata.num_rows
        if data_type not in TICKS:
            continue
        checker = _FileCheck(root, path, data_type, inst_dir.name, parquet.schema_arrow, real, problems) if verify else None
        try:
            for batch in parquet.iter_batches(batch_size=BATCH, columns=None if verify else ["ts_init"]):
                ts = batch.column(batch.schema.get_field_index("ts_init")).to_numpy().astype(np.int64)
                if len(ts) == 0:
                    continue
                if checker is not None:
                    checker.batch(batch, ts)
                srt = np.sort(ts)
                first = int(srt[0]) if first is None else min(first, int(srt[0]))
                last = int(srt[-1]) if last is None else max(last, int(srt[-1]))
                joined = srt if prev_ts is None else np.concatenate([[prev_ts], srt])
                d = np.diff(joined)
                gaps += [(int(joined[i]), int(joined[i + 1])) for i in np.flatnonzero(d > GAP_NS)]
                prev_ts = int(srt[-1])
        except Exception as exc:  # noqa: BLE001
            problems.append(f"{rel(path)}: cannot be read ({type(exc).__name__}: {exc})")
            continue
    return Series(data_type, inst_dir.name, len(paths), rows, first, last, sorted(gaps), order)


class _FileCheck:
    """The per-row checks of one tick file, a batch at a time (carrying the last timestamp's rows)."""

    def __init__(self, root: Path, path: Path, data_type: str, instrument_id: str, schema: pa.Schema, real: bool, problems: list[str]) -> None:
        self.name = str(path.relative_to(root))
        self.data_type, self.problems, self.real = data_type, problems, real
        self.interval = parse_interval(path.name)
        self.spec = _spec_of(root, instrument_id, schema)
        self.limits = Limits.for_spec(self.spec)
        self.row = 0
        self.prev: int | None = None
        self.tail: list[tuple] = []  # identities at the last timestamp seen
        self.tail_ts: int | None = None
        self.found: dict[str, int] = {}
        self.bad = False
        want = {"trade_tick": ("price", "size", "aggressor_side", "trade_id", "ts_event", "ts_init"),
                "quote_tick": ("bid_price", "ask_price", "bid_size", "ask_size", "ts_event", "ts_init")}[data_type]  # fmt: skip
        missing = [c for c in want if c not in schema.names]
        if missing:
            self._problem(f"lacks the column(s) {', '.join(missing)} Nautilus expects", None)
            self.bad = True
        meta = schema.metadata or {}
        if meta.get(b"instrument_id", b"").decode(errors="replace") not in ("", instrument_id):
            self._problem(f"its metadata names instrument {meta[b'instrument_id']!r}, but it sits under {instrument_id}", None)

    def _problem(self, text: str, row: int | None) -> None:
        """One message per kind of problem per file, at the first row (counted from 1) where it occurs."""
        key = text.split(":")[0]
        if key in self.found:
            return
        self.found[key] = 1
        where = f" (row {row + 1})" if row is not None else ""
        self.problems.append(f"{self.name}{where}: {text}")

    def batch(self, batch: pa.RecordBatch, ts: np.ndarray) -> None:
        if self.bad:
            return
        n = len(ts)
        base = self.row
        self.row += n
        prev = np.concatenate([[ts[0] if self.prev is None else self.prev], ts[:-1]])
        back = np.flatnonzero(ts < prev)
        if len(back):
            i = int(back[0])
            self._problem(f"time goes backwards: {iso(ts[i])} after {iso(prev[i])}", base + i)
        self.prev = int(ts[-1])
        if self.interval is not None:
            out = np.flatnonzero((ts < self.interval[0]) | (ts > self.interval[1]))
            if len(out):
                self._problem(f"holds a row at {iso(ts[out[0]])}, outside the interval its name gives", base + int(out[0]))
        if self.real:
            out = np.flatnonzero((ts < self.limits.earliest) | (ts > self.limits.latest))
            if len(out):
                self._problem(f"a time outside the plausible window {self.limits.window()}: {iso(ts[out[0]])}", base + int(out[0]))
        cols = {name: batch.column(batch.schema.get_field_index(name)) for name in batch.schema.names}
        if self.data_type == "trade_tick":
            self._trades(cols, ts, base)
        else:
            self._quotes(cols, ts, base)

    def _fixed(self, column: pa.Array, precision: int, name: str, base: int, low: int, high: int, what: str) -> np.ndarray | None:
        """Decode a fixed-point column, checking every value is exactly units x 10^(16 - precision)."""
        with np.errstate(invalid="ignore", over="ignore"):
            units = decode_fixed(column, precision)
        raw = column.buffers()[1]
        again = encode_fixed(units, precision).buffers()[1]
        width = column.type.byte_width
        a = np.frombuffer(raw, np.uint8)[column.offset * width :][: len(column) * width].reshape(-1, width)
        b = np.frombuffer(again, np.uint8).reshape(-1, width)
        wrong = np.flatnonzero((a != b).any(axis=1))
        if len(wrong):
            self._problem(f"{name}: a value Nautilus cannot hold at precision {precision} (raw fixed-point out of range or off the precision)", base + int(wrong[0]))
            return None
        bad = np.flatnonzero((units < low) | (units > high))
        if len(bad):
            self._problem(f"{name}: {units[bad[0]] / 10**precision} is outside {what}", base + int(bad[0]))
        return units

    def _trades(self, cols: dict, ts: np.ndarray, base: int) -> None:
        p, s = self.spec.price_precision, self.spec.size_precision
        lim = self.limits
        price_range = f"{lim.price_min.units / 10**p} .. {lim.price_max.units / 10**p}"
        self._fixed(cols["price"], p, "price", base, lim.price_min.units, lim.price_max.units, price_range)
        self._fixed(cols["size"], s, "size", base, 1, lim.size_max.units, f"1 lot .. {lim.size_max.units / 10**s}")
        side = cols["aggressor_side"].to_numpy()
        bad = np.flatnonzero(side > 2)
        if len(bad):
            self._problem(f"aggressor_side: unknown code {side[bad[0]]}", base + int(bad[0]))
        ids = cols["trade_id"].to_numpy(zero_copy_only=False)
        joined = "".join(ids)
        if not (joined.isascii() and joined.isprintable()) or max(map(len, ids), default=0) > 36 or min(map(len, ids), default=1) < 1:
            for i, text in enumerate(ids):
                why = check_id(text) if text else "an empty trade id"
                if why:
                    self._problem(f"trade_id: {why}", base + i)
                    break
        self._duplicates(ts, [ids.astype(str)], base, "trade id")

    def _quotes(self, cols: dict, ts: np.ndarray, base: int) -> None:
        p, s = self.spec.price_precision, self.spec.size_precision
        lim = self.limits
        price_range = f"{lim.price_min.units / 10**p} .. {lim.price_max.units / 10**p}"
        bid = self._fixed(cols["bid_price"], p, "bid_price", base, lim.price_min.units, lim.price_max.units, price_range)
        ask = self._fixed(cols["ask_price"], p, "ask_price", base, lim.price_min.units, lim.price_max.units, price_range)
        bs = self._fixed(cols["bid_size"], s, "bid_size", base, 1, lim.size_max.units, f"1 lot .. {lim.size_max.units / 10**s}")
        az = self._fixed(cols["ask_size"], s, "ask_size", base, 1, lim.size_max.units, f"1 lot .. {lim.size_max.units / 10**s}")
        if bid is None or ask is None or bs is None or az is None:
            return
        crossed = np.flatnonzero(bid >= ask)
        if len(crossed):
            self._problem(f"bid {bid[crossed[0]] / 10**p} is not below ask {ask[crossed[0]] / 10**p}", base + int(crossed[0]))
        self._duplicates(ts, [bid, ask, bs, az], base, "quote")

    def _duplicates(self, ts: np.ndarray, keys: list[np.ndarray], base: int, what: str) -> None:
        """The same identity twice at one timestamp (the last timestamp is carried to the next batch)."""
        carried = 0
        if self.tail and self.tail_ts == int(ts[0]):
            carried = len(self.tail[0])
            keys = [np.concatenate([t, k]) for t, k in zip(self.tail, keys, strict=True)]
            ts = np.concatenate([np.full(carried, self.tail_ts, np.int64), ts])
        same = ts[1:] == ts[:-1]
        shared = np.zeros(len(ts), dtype=bool)
        shared[1:] |= same
        shared[:-1] |= same
        idx = np.flatnonzero(shared)
        if len(idx):
            sub = [k[idx] for k in keys]
            order = np.lexsort((*reversed(sub), ts[idx]))
            equal = ts[idx][order][1:] == ts[idx][order][:-1]
            for k in sub:
                equal &= k[order][1:] == k[order][:-1]
            if equal.any():
                j = int(idx[order[int(np.flatnonzero(equal)[0]) + 1]])
                self._problem(f"duplicated {what} at {iso(ts[j])} (the same tick twice)", base + max(j - carried, 0))
        start = int(np.searchsorted(ts, ts[-1], "left"))
        self.tail, self.tail_ts = [k[start:] for k in keys], int(ts[-1])


def _read_back(root: Path, series: list[Series], problems: list[str]) -> None:
    from auction_trader.data.nautilus_read import read_back

    files, expected = [], {}
    for s in series:
        for path in s.paths:
            files.append(path)
            try:
                expected[path] = pq.ParquetFile(path).metadata.num_rows if s.data_type in TICKS else None
            except Exception:  # noqa: BLE001 - already reported as unreadable
                expected[path] = None
    if not files:
        return
    got = read_back(root, files)
    for path in files:
        result = got.get(path)
        name = path.relative_to(root)
        if isinstance(result, str):
            problems.append(f"{name}: Nautilus's ParquetDataCatalog cannot read it ({result})")
        elif result is not None and expected[path] is not None and result != expected[path]:
            problems.append(f"{name}: Nautilus's ParquetDataCatalog reads {result:,} rows of its {expected[path]:,}")


def _count_before(paths: list[Path], ts: int) -> int:
    """Trades that no quote precedes: the order-flow classifier cannot sign them."""
    total = 0
    for path in paths:
        interval = parse_interval(path.name)
        if interval is not None and interval[0] > ts:
            continue
        col = pq.read_table(path, columns=["ts_event"]).column("ts_event").to_numpy()
        total += int((col <= ts).sum())
    return total


def format_inventory(inv: dict) -> str:
    """The human-readable ``inspect`` report."""
    lines = [f"catalog {inv['path']}"]
    for note in inv.get("notes", []):
        lines.append(f"  note: {note}")
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
        gaps = str(len(s.gaps)) if s.data_type in TICKS else "-"
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
    if inv.get("verified"):
        problems = inv["problems"]
        if problems:
            lines.append(f"  PROBLEMS ({len(problems)}) - this catalog cannot be trusted as it is:")
            lines += [f"    {p}" for p in problems]
        else:
            files = sum(s.files for s in inv["series"])
            rows = sum(s.rows for s in inv["series"] if s.data_type in TICKS)
            read = "read back by Nautilus's ParquetDataCatalog, " if inv.get("nautilus") else ""
            lines.append(
                f"  verified: {files} file(s), {rows:,} ticks: {read}intervals disjoint and matching their names, "
                "time in order within each file, no duplicated ticks, prices/sizes/ids/times within range",
            )
    return "\n".join(lines)
