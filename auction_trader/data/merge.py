"""Imported ticks into a catalog: staged per source, then merged in time order in bounded memory.

Each input file becomes a *source*: its valid rows, written in sorted pieces of at most
:data:`PIECE_ROWS` rows to the transaction's scratch space as they are read (so a 30-day import
never holds more than a piece per source in memory). The catalog's own files that overlap an
import in time are sources too. The merge walks all sources in time windows (every timestamp
whole in one window) and decides, row by row:

* **Identity.** A trade is its exchange time and trade id. Rows without an id (a CSV without an
  id column) get one made from the row itself: ``r<hash of time, price, size, side>.<k>`` for the
  k-th such row of its file at that time, so the same capture imported twice, or a row already
  in the catalog, carries the same id again. A quote is its time, prices, sizes and k.
* **Duplicates** - the same identity from two sources, or twice from one file (a repeated trade
  id) - are written once and counted: "already in the catalog" or "duplicated within this import".
  Identical consecutive L1 snapshots of one file are dropped and counted, as before.
* **Conflicts** stop the import: the same trade id at the same time with another price, size or
  side; and a source lacking a row that another source holds at a time strictly inside the first
  source's span (a file covers its span completely, so two captures that overlap must agree where
  they overlap; the catalog keeps one version of a time range). At the first and last timestamp of
  a source the rule is relaxed: a file may start or end in the middle of a burst of trades sharing
  one millisecond, and the next file completes it.
* **Order.** Output is in time order; rows sharing a timestamp keep their file's order, the
  source that started earlier first (it holds the beginning of a burst its successor completes).

New rows land in new files, one per UTC day (or per the caller's edges) and never straddling an
existing file, so intervals stay disjoint as Nautilus requires. An existing file is rewritten only
when a burst at its first or last timestamp is completed; otherwise it is kept byte for byte.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from auction_trader.data.errors import DataError
from auction_trader.data.parse import iso
from auction_trader.data.ticks import QuoteBatch, TradeBatch, decode_fixed, quotes_table, trades_table
from auction_trader.data.transaction import Transaction, step
from auction_trader.instrument import InstrumentSpec

PIECE_ROWS = 200_000
ROW_GROUP_SIZE = 5_000  # ParquetDataCatalog's default max_rows_per_group
DAY_NS = 86_400 * 1_000_000_000

VALUES = {"trades": ("price", "size", "aggressor", "trade_id"), "quotes": ("bid", "ask", "bid_size", "ask_size")}
PAYLOAD = {"trades": ("price", "size", "aggressor"), "quotes": ("bid", "ask", "bid_size", "ask_size")}
COLUMNS = {kind: ("ts", *values, "line", "seq") for kind, values in VALUES.items()}

Rows = dict  # column name -> numpy array, all of one length


def _len(rows: Rows) -> int:
    return len(rows["ts"])


def _take(rows: Rows, index) -> Rows:
    return {k: v[index] for k, v in rows.items()}


def _concat(parts: list[Rows]) -> Rows:
    parts = [p for p in parts if _len(p)]
    if len(parts) == 1:
        return parts[0]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def rows_of(batch: TradeBatch | QuoteBatch, seq: np.ndarray) -> Rows:
    """A validated batch as merge rows; ``seq`` orders rows sharing a timestamp (file order)."""
    line = batch.line if len(batch.line) else np.full(len(batch), -1, np.int64)
    if isinstance(batch, TradeBatch):
        return {"ts": batch.ts_event, "price": batch.price, "size": batch.size, "aggressor": batch.aggressor,
                "trade_id": batch.trade_id, "line": line, "seq": seq}  # fmt: skip
    return {"ts": batch.ts_event, "bid": batch.bid, "ask": batch.ask, "bid_size": batch.bid_size,
            "ask_size": batch.ask_size, "line": line, "seq": seq}  # fmt: skip


def batch_of(kind: str, rows: Rows) -> TradeBatch | QuoteBatch:
    if kind == "trades":
        return TradeBatch(rows["ts"], rows["price"], rows["size"], rows["aggressor"], rows["trade_id"], rows["line"])
    return QuoteBatch(rows["ts"], rows["bid"], rows["ask"], rows["bid_size"], rows["ask_size"], rows["line"])


# -- sources and their pieces -------------------------------------------------------------------------


@dataclass
class Piece:
    """Sorted rows of one source, loaded when the merge reaches ``first``."""

    source: int
    first: int
    last: int
    load: Callable[[], Rows]


@dataclass
class Source:
    index: int
    name: str  # the input file, or the catalog file
    existing: bool  # a file already in the catalog
    first: int
    last: int
    rows: int
    pieces: list[Piece] = field(default_factory=list)
    rel: Path | None = None  # existing: the file's path relative to the catalog root
    drop_repeats: bool = False  # an imported file: identical consecutive L1 snapshots are dropped

    @property
    def rank(self) -> tuple:
        return (self.first, 0 if self.existing else 1, self.index)


class RunStager:
    """One input file's rows of one kind, written to scratch space in sorted pieces as they come."""

    def __init__(self, scratch: Path, kind: str, name: str, index: int, drop_repeats: bool = False) -> None:
        self.dir = scratch / f"{index}-{kind}"
        self.kind, self.name, self.index, self.drop_repeats = kind, name, index, drop_repeats
        self.buffer: list[Rows] = []
        self.buffered = 0
        self.pieces: list[Piece] = []
        self.rows = 0

    def add(self, batch: TradeBatch | QuoteBatch, descending: bool = False) -> None:
        """Rows in file order; ``descending``: the file is newest first (its order is reversed)."""
        if len(batch) == 0:
            return
        line = batch.line if len(batch.line) else np.arange(self.rows, self.rows + len(batch), dtype=np.int64)
        self.buffer.append(rows_of(batch, -line if descending else line))
        self.buffered += len(batch)
        self.rows += len(batch)
        if self.buffered >= PIECE_ROWS:
            self._flush()

    def _flush(self) -> None:
        if not self.buffered:
            return
        rows = _concat(self.buffer)
        rows = _take(rows, np.lexsort((rows["seq"], rows["ts"])))
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / f"{len(self.pieces):06d}.arrow"
        table = pa.table({k: pa.array(v, pa.string()) if k == "trade_id" else v for k, v in rows.items()})
        with pa.OSFile(str(path), "wb") as sink, ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        self.pieces.append(Piece(self.index, int(rows["ts"][0]), int(rows["ts"][-1]), lambda path=path: _read_piece(path)))
        self.buffer, self.buffered = [], 0

    def close(self) -> Source | None:
        self._flush()
        if not self.pieces:
            return None
        first = min(p.first for p in self.pieces)
        last = max(p.last for p in self.pieces)
        return Source(self.index, self.name, False, first, last, self.rows, self.pieces, drop_repeats=self.drop_repeats)


def _read_piece(path: Path) -> Rows:
    with pa.memory_map(str(path)) as source:
        table = ipc.open_file(source).read_all()
    return {name: table.column(name).to_numpy(zero_copy_only=False) for name in table.column_names}


def existing_source(root: Path, path: Path, start: int, end: int, index: int, kind: str, spec: InstrumentSpec) -> Source:
    """A catalog file as a merge source, read a few row groups at a time."""
    try:
        parquet = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"{path}: a catalog file the import overlaps cannot be read ({exc}); run `inspect` on the catalog") from None
    meta = parquet.metadata
    pieces, group, rows = [], [], 0
    ts_col = parquet.schema_arrow.get_field_index("ts_init")
    for i in range(meta.num_row_groups):
        group.append(i)
        rows += meta.row_group(i).num_rows
        if rows >= PIECE_ROWS or i == meta.num_row_groups - 1:
            stats = [meta.row_group(g).column(ts_col).statistics for g in group]
            if all(s is not None and s.has_min_max for s in stats):
                lo, hi = min(int(s.min) for s in stats), max(int(s.max) for s in stats)
            else:
                ts = parquet.read_row_groups(group, columns=["ts_init"]).column("ts_init").to_numpy().astype(np.int64)
                lo, hi = int(ts.min()), int(ts.max())
            offset = sum(meta.row_group(g).num_rows for g in range(group[0]))
            pieces.append(Piece(index, lo, hi, lambda g=tuple(group), o=offset: _read_existing(path, g, o, kind, spec)))
            group, rows = [], 0
    return Source(index, str(path), True, start, end, meta.num_rows, pieces, path.relative_to(root))


def _read_existing(path: Path, groups: tuple[int, ...], offset: int, kind: str, spec: InstrumentSpec) -> Rows:
    try:
        table = pq.ParquetFile(path).read_row_groups(list(groups))
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"{path}: a catalog file the import overlaps cannot be read ({exc}); run `inspect` on the catalog") from None
    meta = table.schema.metadata or {}
    precision = (int(meta.get(b"price_precision", spec.price_precision)), int(meta.get(b"size_precision", spec.size_precision)))
    if precision != (spec.price_precision, spec.size_precision):
        raise DataError(
            f"{path}: written with price/size precision {precision}, but the instrument {spec.instrument_id} "
            f"has {(spec.price_precision, spec.size_precision)}; data of two precisions cannot share a catalog",
        )
    p, s = precision
    n = table.num_rows
    rows: Rows = {"ts": table.column("ts_init").to_numpy().astype(np.int64)}
    if kind == "trades":
        rows.update(price=decode_fixed(table.column("price"), p), size=decode_fixed(table.column("size"), s),
                    aggressor=table.column("aggressor_side").to_numpy().astype(np.uint8),
                    trade_id=table.column("trade_id").to_numpy(zero_copy_only=False))  # fmt: skip
    else:
        rows.update(bid=decode_fixed(table.column("bid_price"), p), ask=decode_fixed(table.column("ask_price"), p),
                    bid_size=decode_fixed(table.column("bid_size"), s), ask_size=decode_fixed(table.column("ask_size"), s))  # fmt: skip
    rows["line"] = np.full(n, -1, np.int64)
    rows["seq"] = np.arange(offset, offset + n, dtype=np.int64)
    order = np.lexsort((rows["seq"], rows["ts"]))
    return rows if np.all(order[1:] > order[:-1]) else _take(rows, order)


# -- output files ---------------------------------------------------------------------------------


class Edges:
    """Where output files are cut: every ``period`` from ``origin`` (UTC days for imports), and
    at the start of every existing file (a new file never straddles one)."""

    def __init__(self, period: int = DAY_NS, origin: int = 0, extra: list[int] | None = None) -> None:
        self.period, self.origin = period, origin
        self.extra = np.array(sorted(extra or []), np.int64)

    def after(self, ts: int) -> int:
        """The first edge strictly after ``ts``: rows before it share a file with the row at ``ts``."""
        edge = self.origin + ((ts - self.origin) // self.period + 1) * self.period
        i = int(np.searchsorted(self.extra, ts, "right"))
        return min(edge, int(self.extra[i])) if i < len(self.extra) else edge


def interval_filename(start: int, end: int) -> str:
    """Nautilus's file naming: ISO-8601 nanosecond bounds with ':' and '.' made path-safe."""
    from nautilus_trader.core.datetime import unix_nanos_to_iso8601

    def safe(ns: int) -> str:
        return unix_nanos_to_iso8601(int(ns)).replace(":", "-").replace(".", "-")

    return f"{safe(start)}_{safe(end)}.parquet"


class FileSink:
    """Rows in time order -> catalog files in the transaction's next tree, cut at ``edges``,
    written in row groups of exactly :data:`ROW_GROUP_SIZE` (as ``ParquetDataCatalog`` writes)."""

    def __init__(self, txn: Transaction, rel_dir: Path, kind: str, spec: InstrumentSpec, edges: Edges) -> None:
        self.txn, self.rel_dir, self.kind, self.spec, self.edges = txn, Path(rel_dir), kind, spec, edges
        self.files: list[str] = []
        self.rows = 0
        self._writer: pq.ParquetWriter | None = None
        self._pending: pa.Table | None = None
        self._first = self._last = self._edge = 0
        self._part: Path | None = None

    def _encode(self, rows: Rows) -> pa.Table:
        batch = batch_of(self.kind, rows)
        return trades_table(batch, self.spec) if self.kind == "trades" else quotes_table(batch, self.spec)

    def add(self, rows: Rows) -> None:
        n = _len(rows)
        i = 0
        ts = rows["ts"]
        while i < n:
            if self._writer is None:
                self._open(int(ts[i]))
            j = int(np.searchsorted(ts, self._edge, "left"))
            j = max(j, i)
            if j > i:
                self._append(self._encode(_take(rows, slice(i, j))), int(ts[j - 1]))
                i = j
            if i < n:
                self._close()

    def add_table(self, table: pa.Table, first: int, last: int) -> None:
        """Already-encoded rows (an existing file's, copied when it is rewritten)."""
        if table.num_rows == 0:
            return
        if self._writer is None:
            self._open(first)
        self._append(table, last)

    def _open(self, first: int) -> None:
        directory = self.txn.path(self.rel_dir)
        directory.mkdir(parents=True, exist_ok=True)
        self._part = directory / f".part-{len(self.files)}.parquet"
        step(f"write {self.rel_dir}/{self._part.name}")
        self._writer = pq.ParquetWriter(str(self._part), self._encode(_take(self._empty(), slice(0, 0))).schema)
        self._first, self._edge = first, self.edges.after(first)

    def _empty(self) -> Rows:
        cols = {"ts": np.zeros(0, np.int64), "line": np.zeros(0, np.int64), "seq": np.zeros(0, np.int64)}
        for name in VALUES[self.kind]:
            cols[name] = np.zeros(0, object if name == "trade_id" else (np.uint8 if name == "aggressor" else np.int64))
        return cols

    def _append(self, table: pa.Table, last: int) -> None:
        self._pending = table if self._pending is None else pa.concat_tables([self._pending, table])
        self._last = last
        self.rows += table.num_rows
        full = self._pending.num_rows // ROW_GROUP_SIZE * ROW_GROUP_SIZE
        for start in range(0, full, ROW_GROUP_SIZE):
            self._writer.write_table(self._pending.slice(start, ROW_GROUP_SIZE), row_group_size=ROW_GROUP_SIZE)
        self._pending = self._pending.slice(full)

    def _close(self) -> None:
        if self._writer is None:
            return
        if self._pending is not None and self._pending.num_rows:
            self._writer.write_table(self._pending, row_group_size=ROW_GROUP_SIZE)
        self._writer.close()
        self._writer, self._pending = None, None
        name = interval_filename(self._first, self._last)
        step(f"name {self.rel_dir}/{name}")
        self._part.rename(self._part.with_name(name))
        self.files.append(str(self.rel_dir / name))

    def close(self) -> list[str]:
        self._close()
        return self.files


# -- the merge ------------------------------------------------------------------------------------


@dataclass
class MergeStats:
    """What one data type of an import did to the catalog."""

    written: int = 0
    in_catalog: int = 0  # rows already in the catalog
    repeated: int = 0  # rows given twice within this import (a repeated id, a file given twice)
    repeats: int = 0  # identical consecutive L1 snapshots dropped
    files: list[str] = field(default_factory=list)
    rewritten: list[str] = field(default_factory=list)  # existing files completed at an edge


def _mix(*cols: np.ndarray) -> np.ndarray:
    """A 64-bit hash of integer columns (splitmix64 steps): stable across runs and machines."""
    h = np.full(len(cols[0]), 0x9E3779B97F4A7C15, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for c in cols:
            h ^= c.astype(np.int64).view(np.uint64)
            h += np.uint64(0x9E3779B97F4A7C15)
            h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            h ^= h >> np.uint64(31)
    return h


def _occurrence(keys: list[np.ndarray], seq: np.ndarray) -> np.ndarray:
    """For each row, how many earlier rows (by ``seq``) share all of ``keys``."""
    order = np.lexsort((seq, *reversed(keys)))
    same = np.ones(len(order) - 1, dtype=bool) if len(order) else np.zeros(0, bool)
    for k in keys:
        ks = k[order]
        same &= ks[1:] == ks[:-1]
    starts = np.flatnonzero(np.concatenate([[True], ~same])) if len(order) else np.zeros(0, np.int64)
    run_start = np.repeat(starts, np.diff(np.concatenate([starts, [len(order)]])))
    out = np.empty(len(order), np.int64)
    out[order] = np.arange(len(order)) - run_start
    return out


class Merger:
    """Merges the sources of one data type of one instrument into the next catalog version."""

    def __init__(self, kind: str, sources: list[Source], sink: FileSink, stats: MergeStats) -> None:
        self.kind, self.sources, self.sink, self.stats = kind, sources, sink, stats
        self.spec = sink.spec
        self.rank = np.empty(len(sources), np.int64)
        for r, s in enumerate(sorted(sources, key=lambda s: s.rank)):
            self.rank[s.index] = r
        self.existing = np.array([s.existing for s in sources], dtype=bool)
        self.drops = np.array([s.drop_repeats for s in sources], dtype=bool)
        files = sorted((s for s in sources if s.existing), key=lambda s: s.first)
        self.file_start = np.array([s.first for s in files], np.int64)
        self.file_end = np.array([s.last for s in files], np.int64)
        self.file_source = [s.index for s in files]
        self.touched: dict[int, dict[int, Rows]] = {}  # existing source -> {edge ts: its final rows}
        self.last_quote: dict[int, tuple] = {}
        self.lacks: dict[tuple[int, int], tuple] = {}  # (source, other) -> first row other has and source lacks

    def run(self) -> None:
        pieces = sorted((p for s in self.sources for p in s.pieces), key=lambda p: (p.first, p.source))
        active: list[tuple[Piece, Rows]] = []
        i = 0
        while i < len(pieces) or active:
            if not active:
                active.append((pieces[i], pieces[i].load()))
                i += 1
            limit = min(p.last for p, _ in active)
            while i < len(pieces) and pieces[i].first <= limit:
                active.append((pieces[i], pieces[i].load()))
                limit = min(limit, pieces[i].last)
                i += 1
            parts, rest = [], []
            for piece, rows in active:
                cut = int(np.searchsorted(rows["ts"], limit, "right"))
                if cut:
                    part = _take(rows, slice(0, cut))
                    part["src"] = np.full(cut, piece.source, np.int64)
                    parts.append(part)
                if cut < _len(rows):
                    rest.append((piece, _take(rows, slice(cut, None))))
            active = rest
            if parts:
                self._window(_concat(parts))

    # -- one window: every row of every timestamp in it ---------------------------------------

    def _window(self, w: Rows) -> None:
        if self.kind == "quotes" and self.drops.any():
            w = self._drop_repeats(w)
        if self.kind == "trades":
            key_cols = [self._trade_ids(w)]
        else:
            k = _occurrence([w["src"], w["ts"], *(w[c] for c in PAYLOAD["quotes"])], w["seq"])
            key_cols = [*(w[c] for c in PAYLOAD["quotes"]), k]
        # Within a group of identical rows the catalog's own copy is the one kept (so it is not
        # counted as new), else the earliest source's; output order is decided afterwards.
        rank = self.rank[w["src"]]
        order = np.lexsort((w["seq"], rank, ~self.existing[w["src"]], *reversed(key_cols), w["ts"]))
        w = _take(w, order)
        keys = [c[order] for c in key_cols]
        n = _len(w)
        new_group = np.ones(n, dtype=bool)
        same = w["ts"][1:] == w["ts"][:-1]
        for c in keys:
            same &= c[1:] == c[:-1]
        new_group[1:] = ~same
        group = np.cumsum(new_group) - 1
        head = np.flatnonzero(new_group)
        kept_src = w["src"][head][group]
        if self.kind == "trades":
            self._check_payload(w, head, group)
        runs = ~self.existing[w["src"]]
        dropped = ~new_group & runs
        self.stats.in_catalog += int((dropped & self.existing[kept_src]).sum())
        self.stats.repeated += int((dropped & ~self.existing[kept_src]).sum())
        self._check_interior(w, head, group)
        kept = _take(w, head)
        kept = _take(kept, np.lexsort((kept["seq"], self.rank[kept["src"]], kept["ts"])))
        self._output(kept)

    def _trade_ids(self, w: Rows) -> np.ndarray:
        ids = w["trade_id"]
        empty = np.flatnonzero(ids == "")
        if len(empty):
            ids = ids.copy()
            sub = _take(w, empty)
            k = _occurrence([sub["src"], sub["ts"], sub["price"], sub["size"], sub["aggressor"]], sub["seq"])
            h = _mix(sub["ts"], sub["price"], sub["size"], sub["aggressor"])
            ids[empty] = [f"r{a:016x}.{b}" for a, b in zip(h.tolist(), k.tolist(), strict=True)]
            w["trade_id"] = ids
        try:
            return ids.astype("S36")
        except UnicodeEncodeError:
            bad = next(s for s in ids if not s.isascii())
            raise DataError(f"a trade id in the catalog is not ASCII ({bad!r}); run `inspect` on the catalog") from None

    def _drop_repeats(self, w: Rows) -> Rows:
        """Identical consecutive L1 snapshots of one file carry nothing: dropped and counted."""
        order = np.lexsort((w["seq"], w["ts"], w["src"]))
        w = _take(w, order)
        n = _len(w)
        same = w["src"][1:] == w["src"][:-1]
        for c in PAYLOAD["quotes"]:
            same &= w[c][1:] == w[c][:-1]
        repeat = np.zeros(n, dtype=bool)
        repeat[1:] = same
        firsts = np.flatnonzero(np.concatenate([[True], w["src"][1:] != w["src"][:-1]]))
        for i in firsts.tolist():
            src = int(w["src"][i])
            if self.last_quote.get(src) == tuple(int(w[c][i]) for c in PAYLOAD["quotes"]):
                repeat[i] = True
        lasts = np.concatenate([firsts[1:] - 1, [n - 1]])
        for i in lasts.tolist():
            self.last_quote[int(w["src"][i])] = tuple(int(w[c][i]) for c in PAYLOAD["quotes"])
        repeat &= self.drops[w["src"]]
        self.stats.repeats += int(repeat.sum())
        return _take(w, ~repeat)

    def _where(self, w: Rows, i: int) -> str:
        source = self.sources[int(w["src"][i])]
        line = int(w["line"][i])
        return f"{source.name}:{line}" if line >= 0 and not source.existing else source.name

    def _check_payload(self, w: Rows, head: np.ndarray, group: np.ndarray) -> None:
        first = head[group]
        differ = np.zeros(_len(w), dtype=bool)
        for c in PAYLOAD["trades"]:
            differ |= w[c] != w[c][first]
        if differ.any():
            i = int(np.flatnonzero(differ)[0])
            j = int(first[i])
            p, z = self.spec.price_precision, self.spec.size_precision
            sides = {0: "no aggressor", 1: "buyer", 2: "seller"}
            show = lambda r: f"price {w['price'][r] / 10**p:.{p}f}, size {w['size'][r] / 10**z:.{z}f}, {sides.get(int(w['aggressor'][r]), '?')}"  # noqa: E731
            raise DataError(
                f"{self._where(w, i)}: trade id {w['trade_id'][i]!r} at {iso(w['ts'][i])} is also in {self._where(w, j)} "
                f"with other values ({show(i)} vs {show(j)}): one trade cannot have two prices. "
                "The catalog keeps one version of a time range: fix or drop one of the sources.",
            )

    def _check_interior(self, w: Rows, head: np.ndarray, group: np.ndarray) -> None:
        """Rows inside an existing file's span must already be in it; two input files must not
        each hold rows inside the other's span that the other lacks."""
        group_ts = w["ts"][head]
        lo, hi = int(group_ts[0]), int(group_ts[-1])
        runs = ~self.existing[w["src"]]
        for source in self.sources:
            if source.last <= lo or source.first >= hi:
                continue
            inside = (group_ts > source.first) & (group_ts < source.last)
            if not inside.any():
                continue
            present = np.zeros(len(head), dtype=bool)
            present[group[w["src"] == source.index]] = True
            missing = inside & ~present
            if not missing.any():
                continue
            rows = np.flatnonzero(missing[group] & runs)
            if source.existing and len(rows):
                self._conflict_with_catalog(source, w, rows)
            others, first = np.unique(w["src"][rows], return_index=True)
            for other, i in zip(others.tolist(), rows[first].tolist(), strict=True):
                if other == source.index:
                    continue
                self.lacks.setdefault((source.index, other), (source.index, self._where(w, i), int(w["ts"][i])))
                if (other, source.index) in self.lacks:
                    self._conflict_between(source.index, other)

    def _conflict_with_catalog(self, source: Source, w: Rows, rows: np.ndarray) -> None:
        i = int(rows[0])
        span = f"{iso(source.first)[:23]} -> {iso(source.last)[:23]}"
        raise DataError(
            f"{self._where(w, i)}: {len(rows)} new row(s) fall inside data already in the catalog ({source.name}, "
            f"{span}) but are not in it (first at {iso(w['ts'][i])}). The catalog keeps one version of a time range: "
            "import into another catalog, or remove that file first.",
        )

    def _conflict_between(self, a: int, b: int) -> None:
        """Files ``a`` and ``b`` each lack a row the other holds inside its span: two versions."""
        sa, sb = self.sources[a], self.sources[b]
        _, where_b, ts_b = self.lacks[(a, b)]
        _, where_a, ts_a = self.lacks[(b, a)]
        raise DataError(
            f"{sa.name} and {sb.name} overlap in time but hold different ticks: {sa.name} lacks the row at "
            f"{iso(ts_b)} ({where_b}) and {sb.name} lacks the row at {iso(ts_a)} ({where_a}). Overlapping files must "
            "agree where they overlap (one may miss rows the other has, not both); import them into separate "
            "catalogs, or leave one out.",
        )

    def _output(self, kept: Rows) -> None:
        new = ~self.existing[kept["src"]]
        if not new.any():
            return
        ts = kept["ts"]
        f = np.searchsorted(self.file_start, ts, "right") - 1
        in_file = (f >= 0) & (ts <= self.file_end[np.maximum(f, 0)]) if len(self.file_start) else np.zeros(len(ts), bool)
        for i in np.flatnonzero(new & in_file).tolist():
            source = self.file_source[int(f[i])]
            edge = int(ts[i])
            groups = self.touched.setdefault(source, {})
            if edge not in groups:
                groups[edge] = _take(kept, np.flatnonzero(ts == edge))
        self.stats.written += int(new.sum())
        gap = np.flatnonzero(new & ~in_file)
        if len(gap):
            self.sink.add(_take(kept, gap))


def rewrite(txn: Transaction, source: Source, edges: dict[int, Rows], kind: str, spec: InstrumentSpec) -> str:
    """An existing file with a burst at its first or last timestamp completed: the same interval
    and name, its other rows copied as they are."""
    path = Path(source.name)
    parquet = pq.ParquetFile(path)
    rel_dir = source.rel.parent
    txn.remove(source.rel)
    sink = FileSink(txn, rel_dir, kind, spec, Edges(period=2**62, origin=source.first - 1))
    schema = sink._encode(sink._empty()).schema
    head = edges.get(source.first)
    tail = edges.get(source.last) if source.last != source.first else None
    if head is not None:
        sink.add(head)
    for i in range(parquet.metadata.num_row_groups):
        table = parquet.read_row_group(i)
        ts = table.column("ts_init").to_numpy().astype(np.int64)
        keep = np.ones(len(ts), dtype=bool)
        if head is not None:
            keep &= ts != source.first
        if tail is not None:
            keep &= ts != source.last
        if not keep.all():
            table = table.filter(pa.array(keep))
            ts = ts[keep]
        if table.num_rows:
            sink.add_table(table.cast(schema), int(ts[0]), int(ts[-1]))
    if tail is not None:
        sink.add(tail)
    files = sink.close()
    return files[0]
