"""The one validation layer every importer passes through, whatever the source format.

A reader turns text into float rows and refuses what it cannot parse (a missing field, JSON
``true`` where a price belongs). Everything that decides whether a row may enter a catalog is
checked here, once, the same way for every format:

* **Numbers**: finite, positive, on the instrument's tick and lot grid, and inside the range the
  instrument allows (BTCUSDT: prices 0.1-199999.8) and Nautilus can hold in its fixed-point
  values (prices up to 17,014,118,346,046). A price beyond that range used to be cast to int64
  (1e20 became INT64_MIN) and made ``ParquetDataCatalog`` panic on read. Values must also stay
  below 2^53 units, where a float still holds every integer exactly.
* **Identifiers**: trade ids are printable ASCII, at most 36 characters (Nautilus's ``TradeId``;
  its reader aborts on anything else). Refused, not transformed: an id is compared across files
  to find duplicates, and a changed id would no longer match.
* **Timestamps**: inside a plausible window - not before ``earliest`` (by default the Bitcoin
  genesis block, 2009-01-03: no crypto market data is older) and not after ``latest`` (by default
  a day from now). A value outside names the unit it was read in and the unit it looks like, so
  a feed in seconds read as milliseconds says so instead of landing in 1970.
* **Quotes**: bid below ask.
* **Time order** (:class:`TimeOrder`): a file's rows follow its own clock, oldest first or (where
  the format allows) newest first.

Strict imports stop at the first bad row of a chunk, naming file, line and field; with
``--skip-bad-rows`` each bad row is rejected and the rest land.
"""

from __future__ import annotations

import bisect
import math
import time
from dataclasses import dataclass

import numpy as np
from nautilus_trader.model.objects import PRICE_MAX, QUANTITY_MAX

from auction_trader.data.errors import Rejects
from auction_trader.data.parse import QuoteRows, TradeRows, iso, to_units
from auction_trader.data.ticks import QuoteBatch, TradeBatch
from auction_trader.data.timestamps import NS_PER, UNIT_NAMES, looks_like
from auction_trader.instrument import InstrumentSpec, perpetual_for

GENESIS_NS = 1_231_006_505_000_000_000  # 2009-01-03T18:15:05Z, the Bitcoin genesis block
DAY_NS = 86_400 * 1_000_000_000
EXACT_UNITS = 2**53 - 1  # largest count of units a float64 (and our readers) hold exactly
MAX_ID = 36  # Nautilus TradeId
ORDER_BLOCK = 100_000  # rows a skipping import looks ahead to decide which rows are out of order


@dataclass(frozen=True)
class Bound:
    """One end of a value range, in integer units, with what imposes it (for messages)."""

    units: int
    text: str  # e.g. "199999.8, the highest price BTCUSDT-LINEAR.BYBIT allows"


@dataclass(frozen=True)
class Limits:
    """What a row of one instrument must satisfy to enter its catalog."""

    spec: InstrumentSpec
    earliest: int  # ns
    latest: int  # ns
    price_min: Bound
    price_max: Bound
    size_max: Bound

    @classmethod
    def for_spec(cls, spec: InstrumentSpec, earliest: int | None = None, latest: int | None = None) -> Limits:
        """The instrument's own price range where it has one, else Nautilus's, else exactness."""
        instrument = perpetual_for(spec)
        p, s = spec.price_precision, spec.size_precision
        price_max = _tightest(
            spec.price_scale,
            p,
            [
                (instrument.max_price, f"the highest price {spec.instrument_id} allows"),
                (PRICE_MAX, "the highest price Nautilus's fixed-point values hold"),
            ],
        )
        size_max = _tightest(spec.size_scale, s, [(QUANTITY_MAX, "the largest quantity Nautilus's fixed-point values hold")])
        low = instrument.min_price
        price_min = Bound(int(round(float(low) * spec.price_scale)), f"{low}, the lowest price {spec.instrument_id} allows") if low is not None else Bound(1, f"{decimal_text(1, p)}, one tick")
        now = time.time_ns()
        return cls(spec, GENESIS_NS if earliest is None else earliest, now + DAY_NS if latest is None else latest, price_min, price_max, size_max)

    def window(self) -> str:
        return f"{iso(self.earliest)[:19]}Z .. {iso(self.latest)[:19]}Z"


def decimal_text(units: int, precision: int) -> str:
    """Integer units at ``precision`` decimals as exact decimal text (no float rounding)."""
    if precision == 0:
        return str(units)
    sign, units = ("-" if units < 0 else ""), abs(units)
    return f"{sign}{units // 10**precision}.{units % 10**precision:0{precision}d}"


def _tightest(scale: int, precision: int, candidates: list[tuple[object, str]]) -> Bound:
    bounds = [Bound(EXACT_UNITS, f"{decimal_text(EXACT_UNITS, precision)}, the largest value held exactly at {precision} decimal(s)")]
    for value, what in candidates:
        if value is not None:
            units = int(math.floor(float(value) * scale + 1e-9))
            bounds.append(Bound(units, f"{decimal_text(units, precision)}, {what}"))
    return min(bounds, key=lambda b: b.units)


# -- rows -> exact batches --------------------------------------------------------------------------


class _Problems:
    """Bad rows of one chunk: the first problem of each row, reported in line order."""

    def __init__(self, lines: np.ndarray) -> None:
        self.lines = lines
        self.bad = np.zeros(len(lines), dtype=bool)
        self.found: list[tuple[int, str, str]] = []

    def flag(self, mask: np.ndarray, field: str, reason) -> None:
        new = mask & ~self.bad
        for i in np.flatnonzero(new):
            self.found.append((int(self.lines[i]), field, reason(int(i))))
        self.bad |= new

    def report(self, rejects: Rejects) -> np.ndarray:
        """Send the problems to ``rejects`` (strict: raises at the first); returns the good rows."""
        for line, field, reason in sorted(self.found):
            rejects.add(line, field, reason)
        return np.flatnonzero(~self.bad)


def _exact(values: list[float], precision: int, low: Bound, high: Bound, step: float, field: str, problems: _Problems) -> np.ndarray:
    """Floats -> integer units, flagging non-finite, non-positive, out-of-range and off-grid values."""
    floats = np.array(values, np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        scaled = floats * 10.0**precision
        problems.flag(~np.isfinite(floats), field, lambda i: f"not a finite number: {float(floats[i])!r}")
        problems.flag(floats <= 0, field, lambda i: f"must be positive, got {float(floats[i])!r}")
        problems.flag(scaled > high.units + 1e-6, field, lambda i: f"{float(floats[i])!r} is above {high.text}")
        problems.flag(scaled < low.units - 1e-6, field, lambda i: f"{float(floats[i])!r} is below {low.text}")
        safe = np.where(problems.bad, 0.0, floats)
    units, off = to_units(safe, precision)
    problems.flag(off, field, lambda i: f"{float(floats[i])!r} is not a multiple of the instrument's increment {step:g}")
    return units


def _times(values: list[int], unit: str, field: str, limits: Limits, problems: _Problems) -> np.ndarray:
    """Nanoseconds (already < 2^63, see timestamps.stamp/to_ns) inside the plausible window."""
    ns = np.array(values, np.int64)
    k = NS_PER.get(unit, 1)

    def reason(i: int) -> str:
        raw = int(ns[i]) // k if ns[i] % k == 0 else ns[i] / k
        side = "before" if ns[i] < limits.earliest else "after"
        return (
            f"{raw} as {UNIT_NAMES[unit]} is {iso(ns[i])}, {side} the plausible window "
            f"{limits.window()} for {limits.spec.instrument_id}{looks_like(raw, unit)} (--earliest/--latest set the window)"
        )

    problems.flag((ns < limits.earliest) | (ns > limits.latest), field, reason)
    return ns


def check_id(text: str) -> str | None:
    """Why ``text`` cannot be a Nautilus trade id, or None."""
    if len(text) > MAX_ID:
        return f"{text[:40]!r}... is {len(text)} characters long; Nautilus trade ids hold at most {MAX_ID}"
    if not text.isascii():
        bad = next(c for c in text if not c.isascii())
        return f"{text!r} contains the non-ASCII character {bad!r}; Nautilus trade ids are ASCII (its reader aborts on anything else)"
    if not text.isprintable():
        return f"{text!r} contains a control character; Nautilus trade ids are printable ASCII"
    if not text.strip():
        return f"{text!r} is blank"
    return None


def _ids(values: list[str], field: str, problems: _Problems) -> np.ndarray:
    ids = np.array(values, dtype=object)
    joined = "".join(values)
    if not (joined.isascii() and joined.isprintable() and max(map(len, values), default=0) <= MAX_ID and all(v == "" or v.strip() for v in values)):
        why = [check_id(v) if v else None for v in values]
        problems.flag(np.array([w is not None for w in why], dtype=bool), field, lambda i: why[i])
    return ids


def exact_trades(rows: TradeRows, limits: Limits, rejects: Rejects) -> tuple[TradeBatch, np.ndarray | None]:
    """A chunk of trades as exact integer units, bad rows rejected; plus the file's order key."""
    spec, names, units = limits.spec, rows.names, rows.units
    lines = np.array(rows.line, np.int64)
    problems = _Problems(lines)
    ts = _times(rows.ts, units["ts"], names["ts"], limits, problems)
    order = _times(rows.order, units["order"], names["order"], limits, problems) if rows.order is not None else None
    price = _exact(rows.price, spec.price_precision, limits.price_min, limits.price_max, spec.tick_size, names["price"], problems)
    low_size = Bound(1, f"{decimal_text(1, spec.size_precision)}, the instrument's lot")
    size = _exact(rows.size, spec.size_precision, low_size, limits.size_max, 1 / spec.size_scale, names["size"], problems)
    ids = _ids(rows.trade_id, names["id"], problems)
    keep = problems.report(rejects)
    batch = TradeBatch(ts, price, size, np.array(rows.aggressor, np.uint8), ids, lines)
    if len(keep) < len(batch):
        return batch.take(keep), (order[keep] if order is not None else None)
    return batch, order


def exact_quotes(rows: QuoteRows, limits: Limits, rejects: Rejects) -> tuple[QuoteBatch, np.ndarray | None]:
    """A chunk of L1 snapshots as exact integer units, bad rows rejected; plus the order key."""
    spec, names, units = limits.spec, rows.names, rows.units
    lines = np.array(rows.line, np.int64)
    problems = _Problems(lines)
    ts = _times(rows.ts, units["ts"], names["ts"], limits, problems)
    order = _times(rows.order, units["order"], names["order"], limits, problems) if rows.order is not None else None
    p, s = spec.price_precision, spec.size_precision
    low_size = Bound(1, f"{decimal_text(1, spec.size_precision)}, the instrument's lot")
    cols = {}
    for name, values in (("bid", rows.bid), ("ask", rows.ask)):
        cols[name] = _exact(values, p, limits.price_min, limits.price_max, spec.tick_size, names[name], problems)
    for name, values in (("bid_size", rows.bid_size), ("ask_size", rows.ask_size)):
        cols[name] = _exact(values, s, low_size, limits.size_max, 1 / spec.size_scale, names[name], problems)
    bid, ask = cols["bid"], cols["ask"]
    problems.flag(bid >= ask, names["bid"], lambda i: f"crossed or locked quote: bid {bid[i] / spec.price_scale} >= ask {ask[i] / spec.price_scale}")
    keep = problems.report(rejects)
    batch = QuoteBatch(ts, bid, ask, cols["bid_size"], cols["ask_size"], lines)
    if len(keep) < len(batch):
        return batch.take(keep), (order[keep] if order is not None else None)
    return batch, order


# -- time order -------------------------------------------------------------------------------------


class TimeOrder:
    """Holds a file to its own time order, a chunk at a time.

    The direction (oldest or newest first, the latter only where the format allows it) is the
    majority of the steps in the first ``block`` rows. Strict: the first row against it stops the
    import. Skipping: the rows kept are a longest monotonic subsequence, computed over a window of
    two blocks and decided for the first - one row far in the future no longer drags everything
    after it out, as a running maximum would. Memory: two blocks, whatever the file's length.
    """

    def __init__(self, rejects: Rejects, field: str, allow_descending: bool, block: int | None = None) -> None:
        self.rejects = rejects
        self.field = field
        self.allow_descending = allow_descending
        self.block = block or ORDER_BLOCK
        self.direction: int | None = None if allow_descending else 1
        self.pending: list[tuple[object, np.ndarray]] = []
        self.pending_rows = 0
        self.last: int | None = None  # strict: the previous row's key, direction-normalised
        self.floor: int | None = None  # skipping: the last kept key, direction-normalised
        self.last_kept_raw: int | None = None

    @property
    def descending(self) -> bool:
        return self.direction == -1

    def push(self, batch, key: np.ndarray) -> list:
        """Rows in file order -> the rows decided so far (file order)."""
        if len(batch) == 0:
            return []
        self.pending.append((batch, np.asarray(key, np.int64)))
        self.pending_rows += len(batch)
        if self.direction is None and self.pending_rows >= self.block:
            self._detect()
        if self.direction is None:
            return []
        if self.rejects.strict:
            return self._strict()
        return self._skipping(final=False)

    def finish(self) -> list:
        if not self.pending:
            return []
        if self.direction is None:
            self._detect()
        return self._strict() if self.rejects.strict else self._skipping(final=True)

    def _detect(self) -> None:
        keys = np.concatenate([k for _, k in self.pending])
        steps = np.diff(keys)
        self.direction = -1 if self.allow_descending and (steps < 0).sum() > (steps > 0).sum() else 1

    def _order(self) -> str:
        return "newest first" if self.descending else "oldest first"

    def _strict(self) -> list:
        out = []
        for batch, key in self.pending:
            k = key * self.direction
            prev = np.concatenate([[k[0] if self.last is None else self.last], k[:-1]])
            back = np.flatnonzero(k < prev)
            if len(back):
                i = int(back[0])
                before = int(prev[i] * self.direction)
                word = "forwards" if self.descending else "backwards"
                self.rejects.add(int(batch.line[i]), self.field, f"time goes {word}: {iso(key[i])} after {iso(before)} in a file ordered {self._order()}")
            self.last = int(k[-1])
            out.append(batch)
        self.pending, self.pending_rows = [], 0
        return out

    def _skipping(self, final: bool) -> list:
        if not final and self.pending_rows < 2 * self.block:
            return []
        batches = [b for b, _ in self.pending]
        batch = type(batches[0]).concat(batches) if len(batches) > 1 else batches[0]
        raw = np.concatenate([k for _, k in self.pending])
        k = raw * self.direction
        decide = len(k) if final else self.block
        keep = _monotonic_keep(k, self.floor)
        decided_keep = keep[keep < decide]
        dropped = np.setdiff1d(np.arange(decide), decided_keep)
        for i in dropped:
            j = int(np.searchsorted(keep, i))
            around = [int(raw[keep[m]]) for m in (j - 1, j) if 0 <= m < len(keep)]
            if j == 0 and self.last_kept_raw is not None:
                around.insert(0, self.last_kept_raw)
            between = (" between " + " and ".join(iso(a) for a in around[-2:])) if around else ""
            self.rejects.add(int(batch.line[i]), self.field, f"out of time order: {iso(raw[i])}{between} in a file ordered {self._order()}")
        if len(decided_keep):
            self.floor = int(k[decided_keep[-1]])
            self.last_kept_raw = int(raw[decided_keep[-1]])
        out = [batch if len(decided_keep) == len(batch) else batch.take(decided_keep)]
        if decide < len(batch):
            rest = np.arange(decide, len(batch))
            self.pending = [(batch.take(rest), raw[decide:])]
            self.pending_rows = len(rest)
        else:
            self.pending, self.pending_rows = [], 0
        return out


def _monotonic_keep(k: np.ndarray, floor: int | None) -> np.ndarray:
    """Indices of a longest non-decreasing subsequence of ``k`` whose values are >= ``floor``."""
    ok = np.ones(len(k), dtype=bool) if floor is None else k >= floor
    candidates = np.flatnonzero(ok)
    values = k[candidates]
    if len(values) == 0 or np.all(values[1:] >= values[:-1]):
        return candidates
    tails: list[int] = []
    tail_index: list[int] = []
    parent = np.full(len(values), -1, dtype=np.int64)
    for i, value in enumerate(values.tolist()):
        j = bisect.bisect_right(tails, value)
        if j > 0:
            parent[i] = tail_index[j - 1]
        if j == len(tails):
            tails.append(value)
            tail_index.append(i)
        else:
            tails[j] = value
            tail_index[j] = i
    out = []
    i = tail_index[-1]
    while i != -1:
        out.append(i)
        i = int(parent[i])
    return candidates[np.array(out[::-1], dtype=np.int64)]
