"""The ticks behind the trading view: the volume profile at a minute and the footprint.

A run stores one row per minute; the profile histogram and the footprint need the trades
themselves. They are read from the run's catalog (``metrics.json`` records it) with pyarrow, one
Parquet row group at a time: a request reads only the row groups its time range overlaps, and the
decoded columns stay in a bounded cache, so moving the time slider re-reads nothing.

Both are computed exactly as the feature engine does (``docs/features.md``), and the tests hold
them to the run's own ``features_1m`` minute by minute:

* **Profile** at minute m: the trades of minutes ``m - W + 1 .. m`` (clipped to the run's range,
  as the engine only saw those), prices as integer ticks, sizes as integer lots, keyed at the
  minute's applied bin width ``key = floor(ticks / w) * w``; the value area is
  :func:`rust_indicators.value_area`, the engine's own function. Its POC / VAL / VAH bin keys equal
  the run's ``poc_bin / val_bin / vah_bin`` (or, in runs written before those columns existed,
  ``poc / val / vah``).
* **Footprint**: each trade's inferred side is its print's sign (trades sharing a millisecond are
  one print; quote rule against the latest quote strictly before it, compared exactly as
  ``notional >= ask * lots``; the zero-tick-continuation tick rule when the run used it), so the
  buy minus sell volume of a minute is that minute's ``of_1m``. The exchange's taker side (the
  catalog's aggressor side) is the alternative view where the data has it.

The tick rule carries a sign from print to print, so a window in the middle of a run is classified
from a little earlier on: far enough back that some print before the window was signed without
the carried sign (a decisive quote, or a price change), from where on every sign is the one the
engine gave. Reaching the run's first tick instead is exact by construction.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

MINUTE_NS = 60_000_000_000
MS_NS = 1_000_000

#: Decoded row groups kept in memory (a row group holds 5,000 ticks: about 25 MB at this bound).
CACHE_ROW_GROUPS = 1_000


@dataclass(frozen=True)
class Trades:
    """Trades in time order: ns timestamps, integer ticks and lots, Nautilus aggressor codes
    (0 none, 1 buyer, 2 seller)."""

    ts: np.ndarray
    ticks: np.ndarray
    lots: np.ndarray
    aggressor: np.ndarray

    def __len__(self) -> int:
        return len(self.ts)


@dataclass(frozen=True)
class Quotes:
    ts: np.ndarray
    bid: np.ndarray  # integer ticks
    ask: np.ndarray


@dataclass(frozen=True)
class _Group:
    path: Path
    index: int
    first: int  # ts_event bounds, ns
    last: int


class CatalogTicks:
    """One instrument's trades and quotes in a Nautilus catalog, read by row group on demand."""

    def __init__(self, catalog: Path, instrument_id: str) -> None:
        self.catalog = Path(catalog)
        self.instrument_id = instrument_id
        self._lock = threading.Lock()
        self._cache: OrderedDict[tuple[Path, int], tuple] = OrderedDict()
        self.price_precision = self.size_precision = None
        self._groups: dict[str, list[_Group]] = {"trades": [], "quotes": []}
        self._files: dict[Path, tuple[int, int]] = {}  # file -> (mtime_ns, size) when its groups were listed
        self.refresh()
        if self.price_precision is None:
            raise FileNotFoundError(f"{self.catalog}: no trades or quotes for {instrument_id}")

    def refresh(self) -> bool:
        """List the catalog's files again: a recording grows by new files (and loses old ones to
        its retention), so a live view calls this before reading. Only new or changed files are
        opened (their footer); returns whether anything changed."""
        from auction_trader.data.catalog import data_dir, file_intervals  # noqa: PLC0415 (imports Nautilus)
        from nautilus_trader.model.data import QuoteTick, TradeTick  # noqa: PLC0415

        changed = False
        seen: set[Path] = set()
        for name, cls in (("trades", TradeTick), ("quotes", QuoteTick)):
            keep = {}
            for g in self._groups[name]:
                keep.setdefault(g.path, []).append(g)
            groups = []
            for first, last, path in file_intervals(data_dir(self.catalog, cls, self.instrument_id)):
                seen.add(path)
                try:
                    st = path.stat()
                    sig = (st.st_mtime_ns, st.st_size)
                    if self._files.get(path) == sig and path in keep:
                        groups.extend(keep[path])
                        continue
                    meta = pq.ParquetFile(path).metadata
                except (OSError, ValueError):  # being written or just purged: next time
                    continue
                changed = True
                self._files[path] = sig
                with self._lock:  # a rewritten file's decoded row groups are stale
                    for key in [k for k in self._cache if k[0] == path]:
                        del self._cache[key]
                precision = meta.schema.to_arrow_schema().metadata or {}
                if b"price_precision" in precision:
                    self.price_precision = int(precision[b"price_precision"])
                    self.size_precision = int(precision[b"size_precision"])
                ts_col = meta.schema.names.index("ts_event")
                for i in range(meta.num_row_groups):
                    stats = meta.row_group(i).column(ts_col).statistics
                    lo, hi = (int(stats.min), int(stats.max)) if stats is not None and stats.has_min_max else (first, last)
                    groups.append(_Group(path, i, lo, hi))
            changed = changed or len(groups) != len(self._groups[name])
            self._groups[name] = groups
        for gone in set(self._files) - seen:
            del self._files[gone]
            with self._lock:
                for key in [k for k in self._cache if k[0] == gone]:
                    del self._cache[key]
        if self.price_precision is not None:
            self.tick_size = 10.0**-self.price_precision
            self.size_step = 10.0**-self.size_precision
        return changed

    @property
    def has_trades(self) -> bool:
        return bool(self._groups["trades"])

    def _read(self, kind: str, group: _Group) -> tuple:
        key = (group.path, group.index)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        from auction_trader.data.ticks import decode_fixed  # noqa: PLC0415

        if kind == "trades":
            t = pq.ParquetFile(group.path).read_row_group(group.index, columns=["price", "size", "aggressor_side", "ts_event"])
            cols = (
                t.column("ts_event").to_numpy().astype(np.int64),
                decode_fixed(t.column("price"), self.price_precision),
                decode_fixed(t.column("size"), self.size_precision),
                t.column("aggressor_side").to_numpy().astype(np.uint8),
            )
        else:
            t = pq.ParquetFile(group.path).read_row_group(group.index, columns=["bid_price", "ask_price", "ts_event"])
            cols = (
                t.column("ts_event").to_numpy().astype(np.int64),
                decode_fixed(t.column("bid_price"), self.price_precision),
                decode_fixed(t.column("ask_price"), self.price_precision),
            )
        with self._lock:
            self._cache[key] = cols
            while len(self._cache) > CACHE_ROW_GROUPS:
                self._cache.popitem(last=False)
        return cols

    def _range(self, kind: str, lo: int, hi: int) -> list[np.ndarray]:
        parts = [self._read(kind, g) for g in self._groups[kind] if g.last >= lo and g.first <= hi]
        n = 4 if kind == "trades" else 3
        if not parts:
            return [np.zeros(0, np.int64)] * (n - 1) + ([np.zeros(0, np.uint8)] if kind == "trades" else [np.zeros(0, np.int64)])
        cols = [np.concatenate([p[j] for p in parts]) for j in range(n)]
        ts = cols[0]
        if len(ts) > 1 and (np.diff(ts) < 0).any():
            order = np.argsort(ts, kind="stable")
            cols = [c[order] for c in cols]
            ts = cols[0]
        a, b = np.searchsorted(ts, lo, "left"), np.searchsorted(ts, hi, "right")
        return [c[a:b] for c in cols]

    def trades(self, lo: int, hi: int) -> Trades:
        """Trades with ``lo <= ts_event <= hi`` (ns)."""
        return Trades(*self._range("trades", lo, hi))

    def quotes(self, lo: int, hi: int) -> Quotes:
        return Quotes(*self._range("quotes", lo, hi))

    def first_ts(self) -> int | None:
        groups = self._groups["trades"] + self._groups["quotes"]
        return min(g.first for g in groups) if groups else None


# -- the profile -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Profile:
    """The rolling volume profile at one minute, at that minute's applied bin width."""

    ts_min: int  # ms
    width_ticks: int
    lo_key: int  # lowest bin with volume, ticks (dense from here, zero bins included)
    lots: np.ndarray  # per bin from lo_key upwards
    poc_key: int | None
    val_key: int | None
    vah_key: int | None
    va_lots: float
    total_lots: int
    trades: int
    window_start_ms: int  # first minute of the window (ms)


def profile_at(ticks: CatalogTicks, ts_min_ms: int, window_minutes: int, width_ticks: int, va_fraction: float, run_lo: int, run_hi: int) -> Profile:
    """The profile of the minutes ``m - W + 1 .. m`` as the engine held it at minute ``m``'s close."""
    import rust_indicators  # noqa: PLC0415

    m0 = ts_min_ms - (window_minutes - 1) * 60_000
    lo = max(m0 * MS_NS, run_lo)
    hi = min((ts_min_ms + 60_000) * MS_NS - 1, run_hi)
    t = ticks.trades(lo, hi) if hi >= lo else ticks.trades(1, 0)
    w = int(width_ticks)
    if len(t) == 0 or int(t.lots.sum()) == 0:
        return Profile(ts_min_ms, w, 0, np.zeros(0, np.int64), None, None, None, 0.0, 0, len(t), m0)
    keys = np.floor_divide(t.ticks, w) * w
    lo_key = int(keys.min())
    lots = np.bincount((keys - lo_key) // w, weights=t.lots.astype(np.float64)).astype(np.int64)
    have = np.flatnonzero(lots)
    poc, val, vah, va, _total = rust_indicators.value_area(
        (lo_key + have * w).tolist(), lots[have].astype(np.float64).tolist(), w, float(va_fraction),
    )
    return Profile(ts_min_ms, w, lo_key, lots, int(poc), int(val), int(vah), float(va), int(lots.sum()), len(t), m0)


# -- inferred side -----------------------------------------------------------------------------------


def _prints(t: Trades) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(print index of each trade, print ms, print lots, print notional = Σ ticks × lots)."""
    ms = t.ts // MS_NS
    start = np.ones(len(ms), dtype=bool)
    start[1:] = ms[1:] != ms[:-1]
    first = np.flatnonzero(start)
    pid = np.cumsum(start) - 1
    lots = np.add.reduceat(t.lots, first) if len(first) else np.zeros(0, np.int64)
    notional = np.add.reduceat(t.ticks * t.lots, first) if len(first) else np.zeros(0, np.int64)
    return pid, ms[first], lots, notional


def _compare_prices(n1: np.ndarray, l1: np.ndarray, n0: np.ndarray, l0: np.ndarray) -> np.ndarray:
    """sign(n1/l1 - n0/l0) exactly (VWAPs as rationals); float products decide, integers settle
    the near-ties."""
    a = n1.astype(np.float64) * l0.astype(np.float64)
    b = n0.astype(np.float64) * l1.astype(np.float64)
    out = np.sign(a - b).astype(np.int64)
    close = np.flatnonzero(np.abs(a - b) <= 1e-9 * np.maximum(np.abs(a), np.abs(b)))
    for i in close:
        x, y = int(n1[i]) * int(l0[i]), int(n0[i]) * int(l1[i])
        out[i] = (x > y) - (x < y)
    return out


@dataclass(frozen=True)
class Signed:
    """Trades with their print's sign as the engine computes it."""

    trades: Trades
    sign: np.ndarray  # int8 per trade: +1 buy, -1 sell, 0 unsigned
    ambiguous: np.ndarray  # bool per trade: the quote rule left its print ambiguous


def classify(t: Trades, q: Quotes, use_fallback: bool, known_start: bool) -> tuple[Signed, int]:
    """Sign every trade; returns the signed trades and the index of the first trade from which the
    signs no longer depend on the state before ``t`` (0 when ``known_start``: the run's start)."""
    pid, ms, lots, notional = _prints(t)
    qms = q.ts // MS_NS
    j = np.searchsorted(qms, ms, "left") - 1  # latest quote strictly before the print
    has = j >= 0
    jj = np.maximum(j, 0)
    ask = np.where(has, q.ask[jj] if len(q.ask) else 0, 0)
    bid = np.where(has, q.bid[jj] if len(q.bid) else 0, 0)
    qsign = np.zeros(len(ms), np.int64)
    buy = has & (notional >= ask * lots)
    sell = has & ~buy & (notional <= bid * lots)
    qsign[buy], qsign[sell] = 1, -1
    if use_fallback and len(ms):
        tick = np.zeros(len(ms), np.int64)
        if len(ms) > 1:
            tick[1:] = _compare_prices(notional[1:], lots[1:], notional[:-1], lots[:-1])
        w = np.where(qsign != 0, qsign, tick)
        idx = np.where(w != 0, np.arange(len(w)), -1)
        idx = np.maximum.accumulate(idx)
        final = np.where(idx >= 0, w[np.maximum(idx, 0)], 0)
        decided = np.flatnonzero(w != 0)
    else:
        final = qsign
        decided = np.arange(len(ms))
    # Without the history, the first print is exact only if it was decided on its own; a quote
    # rule needs a quote before it inside what was read.
    first_exact_print = 0 if known_start else (int(decided[0]) if len(decided) else len(ms))
    if not known_start and len(ms):
        missing = np.flatnonzero(~has)
        if len(missing):
            first_exact_print = max(first_exact_print, int(missing[-1]) + 1)
    first_trade = int(np.searchsorted(pid, first_exact_print, "left"))
    signed = Signed(t, final[pid].astype(np.int8), (qsign == 0)[pid])
    return signed, first_trade


def signed_trades(ticks: CatalogTicks, lo: int, hi: int, use_fallback: bool, run_lo: int) -> Signed:
    """The trades of ``[lo, hi]`` (ns) with the signs the engine gave them, reading back from
    ``lo`` only as far as it takes (doubling from two minutes) or to the run's first tick."""
    back = 2 * MINUTE_NS
    while True:
        start = max(run_lo, lo - back)
        known = start <= run_lo
        t = ticks.trades(start, hi)
        q = ticks.quotes(run_lo if known else start, hi)
        signed, first_exact = classify(t, q, use_fallback, known)
        k = int(np.searchsorted(t.ts, lo, "left"))
        if known or first_exact <= k:
            tt = Trades(t.ts[k:], t.ticks[k:], t.lots[k:], t.aggressor[k:])
            return Signed(tt, signed.sign[k:], signed.ambiguous[k:])
        back *= 2


# -- the footprint -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Footprint:
    minutes: list[int]  # ts_min ms, every minute of the range
    width_ticks: int
    keys: list[int]  # bin keys (ticks), ascending, every bin between the lowest and highest traded
    buy: np.ndarray  # lots [bin][minute]
    sell: np.ndarray
    unsigned: np.ndarray  # lots whose side is unknown (inferred 0, or no aggressor in the data)
    side: str  # inferred | exchange
    exchange_side_available: bool


def footprint(signed: Signed, m_first: int, m_last: int, width_ticks: int, side: str) -> Footprint:
    """Buy / sell volume per minute and price bin between two minutes (ms, inclusive)."""
    t = signed.trades
    minutes = list(range(m_first, m_last + 60_000, 60_000))
    exch = bool(len(t) and (t.aggressor != 0).any())
    w = int(width_ticks)
    if side == "exchange":
        sgn = np.where(t.aggressor == 1, 1, np.where(t.aggressor == 2, -1, 0))
    else:
        sgn = signed.sign.astype(np.int64)
    if len(t) == 0:
        z = np.zeros((0, len(minutes)), np.int64)
        return Footprint(minutes, w, [], z, z, z, side, exch)
    keys = np.floor_divide(t.ticks, w) * w
    lo, hi = int(keys.min()), int(keys.max())
    rows = (keys - lo) // w
    cols = (t.ts // MS_NS // 60_000 * 60_000 - m_first) // 60_000
    shape = ((hi - lo) // w + 1, len(minutes))

    def grid(mask: np.ndarray) -> np.ndarray:
        out = np.zeros(shape, np.int64)
        np.add.at(out, (rows[mask], cols[mask]), t.lots[mask])
        return out

    return Footprint(minutes, w, list(range(lo, hi + w, w)), grid(sgn > 0), grid(sgn < 0), grid(sgn == 0), side, exch)
