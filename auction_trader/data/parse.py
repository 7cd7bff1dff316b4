"""Row-level parsing shared by the importers: numbers, sides, timestamps, and exact units.

Rows are first collected as floats (one ``float()`` per field, cheap) and converted to exact
integer units in one vectorised step per file, where prices off the instrument's tick grid are
caught. A float parsed from a decimal string with at most 15 significant digits is the nearest
double to it, so ``rint(value * 10^precision)`` recovers the exact integer for every realistic
price and size (checked against the residual, which must be ~0).
"""

from __future__ import annotations

import math

import numpy as np

from auction_trader.data.errors import BadRow, Rejects
from auction_trader.data.ticks import BUYER, NO_AGGRESSOR, SELLER, QuoteBatch, TradeBatch
from auction_trader.instrument import InstrumentSpec

_SIDES = {
    "buy": BUYER, "b": BUYER, "buyer": BUYER, "bid": BUYER, "1": BUYER, "+1": BUYER,
    "sell": SELLER, "s": SELLER, "seller": SELLER, "ask": SELLER, "-1": SELLER,
}


def number(text: str, name: str) -> float:
    """A finite float, or BadRow naming the field."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise BadRow(name, f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise BadRow(name, f"not a finite number: {text!r}")
    return value


def positive(text: str, name: str) -> float:
    value = number(text, name)
    if value <= 0:
        raise BadRow(name, f"must be positive, got {text!r}")
    return value


def side(text: str, name: str = "side", allow_none: bool = False) -> int:
    """Taker side -> Nautilus aggressor code. Unknown values are errors, not guesses."""
    key = (text or "").strip().lower()
    if key in _SIDES:
        return _SIDES[key]
    if allow_none and key in ("", "none", "0", "unknown", "n/a"):
        return NO_AGGRESSOR
    raise BadRow(name, f"unknown side {text!r} (expected Buy/Sell)")


def iso(ns: int | np.integer) -> str:
    """Nanoseconds since the epoch as a readable UTC time."""
    return str(np.datetime64(int(ns), "ns")) + "Z"


def infer_precision(values: np.ndarray, max_precision: int = 9) -> int:
    """Smallest number of decimals that represents every value exactly."""
    values = np.asarray(values, dtype=np.float64)
    for p in range(max_precision + 1):
        scaled = values * 10.0**p
        if np.all(np.abs(scaled - np.rint(scaled)) <= np.maximum(1e-6, np.abs(scaled) * 1e-14)):
            return p
    return max_precision


def to_units(values: np.ndarray, precision: int) -> tuple[np.ndarray, np.ndarray]:
    """Floats -> exact integer units at ``precision``, plus a mask of values off that grid."""
    scaled = np.asarray(values, dtype=np.float64) * 10.0**precision
    units = np.rint(scaled)
    off = np.abs(scaled - units) > np.maximum(1e-6, np.abs(scaled) * 1e-14)
    return units.astype(np.int64), off


class TradeRows:
    """Accumulates one file's parsed trades (floats) until they can be made exact."""

    def __init__(self) -> None:
        self.ts: list[int] = []
        self.price: list[float] = []
        self.size: list[float] = []
        self.aggressor: list[int] = []
        self.trade_id: list[str] = []
        self.line: list[int] = []

    def __len__(self) -> int:
        return len(self.ts)

    def add(self, line: int, ts: int, price: float, size: float, aggressor: int, trade_id: str) -> None:
        self.line.append(line)
        self.ts.append(ts)
        self.price.append(price)
        self.size.append(size)
        self.aggressor.append(aggressor)
        self.trade_id.append(trade_id)

    def floats(self) -> tuple[np.ndarray, np.ndarray]:
        return np.array(self.price, np.float64), np.array(self.size, np.float64)

    def to_batch(self, spec: InstrumentSpec, rejects: Rejects) -> tuple[TradeBatch, np.ndarray]:
        """All rows in exact units, and a mask of the rows rejected for being off the grid."""
        price, size = self.floats()
        price_units, price_off = to_units(price, spec.price_precision)
        size_units, size_off = to_units(size, spec.size_precision)
        batch = TradeBatch(
            np.array(self.ts, np.int64),
            price_units,
            size_units,
            np.array(self.aggressor, np.uint8),
            np.array(self.trade_id, dtype=object),
            np.array(self.line, np.int64),
        )
        bad = _grid_rejects(batch.line, [("price", price, price_off, spec.tick_size), ("size", size, size_off, 10.0**-spec.size_precision)], rejects)
        return batch, bad


class QuoteRows:
    """Accumulates one file's parsed L1 snapshots (floats) until they can be made exact."""

    def __init__(self) -> None:
        self.ts: list[int] = []
        self.bid: list[float] = []
        self.ask: list[float] = []
        self.bid_size: list[float] = []
        self.ask_size: list[float] = []
        self.line: list[int] = []

    def __len__(self) -> int:
        return len(self.ts)

    def add(self, line: int, ts: int, bid: float, bid_size: float, ask: float, ask_size: float) -> None:
        self.line.append(line)
        self.ts.append(ts)
        self.bid.append(bid)
        self.ask.append(ask)
        self.bid_size.append(bid_size)
        self.ask_size.append(ask_size)

    def floats(self) -> tuple[np.ndarray, np.ndarray]:
        prices = np.array(self.bid + self.ask, np.float64)
        sizes = np.array(self.bid_size + self.ask_size, np.float64)
        return prices, sizes

    def to_batch(self, spec: InstrumentSpec, rejects: Rejects) -> tuple[QuoteBatch, np.ndarray]:
        """All rows in exact units, and a mask of the rows rejected for being off the grid."""
        cols = {}
        checks = []
        for name, values, precision, step in (
            ("bid", self.bid, spec.price_precision, spec.tick_size),
            ("ask", self.ask, spec.price_precision, spec.tick_size),
            ("bid_size", self.bid_size, spec.size_precision, 10.0**-spec.size_precision),
            ("ask_size", self.ask_size, spec.size_precision, 10.0**-spec.size_precision),
        ):
            floats = np.array(values, np.float64)
            cols[name], off = to_units(floats, precision)
            checks.append((name, floats, off, step))
        lines = np.array(self.line, np.int64)
        batch = QuoteBatch(np.array(self.ts, np.int64), cols["bid"], cols["ask"], cols["bid_size"], cols["ask_size"], lines)
        return batch, _grid_rejects(lines, checks, rejects)


def _grid_rejects(lines: np.ndarray, checks: list, rejects: Rejects) -> np.ndarray:
    """Reject rows whose value is not a multiple of the instrument's increment (first bad row first)."""
    bad = np.zeros(len(lines), dtype=bool)
    found = []
    for name, floats, off, step in checks:
        for i in np.flatnonzero(off):
            found.append((int(lines[i]), name, float(floats[i]), step, i))
        bad |= off
    for line, name, value, step, _ in sorted(found):
        rejects.add(line, name, f"{value!r} is not a multiple of the instrument's increment {step:g}")
    return bad


def check_time_order(
    ts: np.ndarray,
    lines: np.ndarray,
    rejects: Rejects,
    field: str,
    allow_descending: bool = False,
) -> np.ndarray:
    """Indices of the rows to keep, in ascending time order; rows going back in time are rejected.

    A file is read in its own order: ascending, or (when ``allow_descending``, as some exchange
    dumps are written newest first) descending, whichever most steps between rows follow. A row
    whose time goes backwards against that order is malformed. When rows must be skipped, the
    fewest are dropped: everything outside one longest non-decreasing run of the file.
    """
    n = len(ts)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    steps = np.diff(ts)
    descending = bool(allow_descending and (steps < 0).sum() > (steps > 0).sum())
    seq = ts[::-1] if descending else ts
    back = np.flatnonzero(seq[1:] < seq[:-1]) + 1
    if len(back) == 0:
        keep = np.arange(n)
    else:
        order = "newest first" if descending else "oldest first"
        if rejects.strict:
            i = int(back[0])
            line = int(lines[n - 1 - i] if descending else lines[i])
            rejects.add(line, field, f"time goes backwards: {iso(seq[i])} after {iso(seq[i - 1])} in a file ordered {order}")
        keep = _longest_non_decreasing(seq)
        dropped = np.setdiff1d(np.arange(n), keep)
        for i in dropped:
            k = int(np.searchsorted(keep, i))
            around = " between " + " and ".join(iso(seq[keep[j]]) for j in (k - 1, k) if 0 <= j < len(keep))
            line = int(lines[n - 1 - i] if descending else lines[i])
            rejects.add(line, field, f"out of time order: {iso(seq[i])}{around} in a file ordered {order}")
    return (n - 1 - keep) if descending else keep


def _longest_non_decreasing(seq: np.ndarray) -> np.ndarray:
    """Indices of one longest non-decreasing subsequence (patience sorting, O(n log n))."""
    import bisect

    tails: list[int] = []  # tails[k] = smallest tail value of a run of length k+1
    tail_index: list[int] = []
    parent = np.full(len(seq), -1, dtype=np.int64)
    for i, value in enumerate(seq.tolist()):
        k = bisect.bisect_right(tails, value)
        if k > 0:
            parent[i] = tail_index[k - 1]
        if k == len(tails):
            tails.append(value)
            tail_index.append(i)
        else:
            tails[k] = value
            tail_index[k] = i
    out = []
    i = tail_index[-1]
    while i != -1:
        out.append(i)
        i = int(parent[i])
    return np.array(out[::-1], dtype=np.int64)
