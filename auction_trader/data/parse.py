"""Row-level parsing shared by the importers: numbers, sides, and the rows a reader collects.

Rows are first collected as floats (one ``float()`` per field, cheap) and converted to exact
integer units in one vectorised step per chunk by :mod:`auction_trader.data.validate`, where
prices off the instrument's tick grid or outside its range are caught. A float parsed from a
decimal string with at most 15 significant digits is the nearest double to it, so
``rint(value * 10^precision)`` recovers the exact integer for every realistic price and size
(checked against the residual, which must be ~0).

Numbers are parsed strictly: JSON ``true`` is not 1.0, ``null`` is not 0, ``"1_000"`` is not a
thousand.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from auction_trader.data.errors import BadRow
from auction_trader.data.ticks import BUYER, NO_AGGRESSOR, SELLER

_SIDES = {
    "buy": BUYER, "b": BUYER, "buyer": BUYER, "bid": BUYER, "1": BUYER, "+1": BUYER,
    "sell": SELLER, "s": SELLER, "seller": SELLER, "ask": SELLER, "-1": SELLER,
}


def number(text: str | int | float, name: str) -> float:
    """A finite float from decimal text (or a JSON number), or BadRow naming the field.

    Only text and real numbers are numbers: a JSON ``true``/``null``/list is refused rather
    than coerced (``float(True)`` is 1.0).
    """
    if type(text) is not str and (isinstance(text, bool) or not isinstance(text, (str, int, float))):
        raise BadRow(name, f"not a number: {_json(text)}")
    try:
        value = float(text)
    except (TypeError, ValueError, OverflowError):
        raise BadRow(name, f"not a number: {text!r}") from None
    if value - value != 0.0:  # inf or nan
        raise BadRow(name, f"not a finite number: {text!r}")
    if type(text) is str and "_" in text:
        raise BadRow(name, f"not a number: {text!r}")
    return value


def _json(value: object) -> str:
    import json

    try:
        return f"JSON {json.dumps(value)[:60]}"
    except (TypeError, ValueError):
        return repr(value)[:60]


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


@dataclass
class TradeRows:
    """One chunk of a file's parsed trades (floats), until the validation layer makes them exact.

    ``names`` maps our fields (ts, price, size, id, order) to the file's own field names, and
    ``units`` gives the unit each timestamp field was written in: messages speak the file's
    language ("T: 1721347202 as milliseconds is 1970-01-20...; the values look like seconds").
    ``order`` is the file's own ordering key per row when it is not the exchange time (Tardis's
    local_timestamp); a trade id of "" means the source has none.
    """

    names: dict[str, str] = field(default_factory=lambda: {"ts": "timestamp", "price": "price", "size": "size", "id": "id"})
    units: dict[str, str] = field(default_factory=lambda: {"ts": "ns"})
    ts: list[int] = field(default_factory=list)
    price: list[float] = field(default_factory=list)
    size: list[float] = field(default_factory=list)
    aggressor: list[int] = field(default_factory=list)
    trade_id: list[str] = field(default_factory=list)
    line: list[int] = field(default_factory=list)
    order: list[int] | None = None

    def __len__(self) -> int:
        return len(self.ts)

    def add(self, line: int, ts: int, price: float, size: float, aggressor: int, trade_id: str, order: int | None = None) -> None:
        self.line.append(line)
        self.ts.append(ts)
        self.price.append(price)
        self.size.append(size)
        self.aggressor.append(aggressor)
        self.trade_id.append(trade_id)
        if order is not None:
            if self.order is None:
                self.order = []
            self.order.append(order)

    def empty_like(self) -> TradeRows:
        return TradeRows(dict(self.names), dict(self.units))

    def floats(self) -> tuple[np.ndarray, np.ndarray]:
        """Every price and every size of the chunk (for inferring a new instrument's precision)."""
        return np.array(self.price, np.float64), np.array(self.size, np.float64)


@dataclass
class QuoteRows:
    """One chunk of a file's parsed L1 snapshots (floats); see :class:`TradeRows`."""

    names: dict[str, str] = field(default_factory=lambda: {"ts": "timestamp", "bid": "bid", "ask": "ask", "bid_size": "bid_size", "ask_size": "ask_size"})
    units: dict[str, str] = field(default_factory=lambda: {"ts": "ns"})
    ts: list[int] = field(default_factory=list)
    bid: list[float] = field(default_factory=list)
    ask: list[float] = field(default_factory=list)
    bid_size: list[float] = field(default_factory=list)
    ask_size: list[float] = field(default_factory=list)
    line: list[int] = field(default_factory=list)
    order: list[int] | None = None

    def __len__(self) -> int:
        return len(self.ts)

    def add(self, line: int, ts: int, bid: float, bid_size: float, ask: float, ask_size: float, order: int | None = None) -> None:
        self.line.append(line)
        self.ts.append(ts)
        self.bid.append(bid)
        self.ask.append(ask)
        self.bid_size.append(bid_size)
        self.ask_size.append(ask_size)
        if order is not None:
            if self.order is None:
                self.order = []
            self.order.append(order)

    def empty_like(self) -> QuoteRows:
        return QuoteRows(dict(self.names), dict(self.units))

    def floats(self) -> tuple[np.ndarray, np.ndarray]:
        return np.array(self.bid + self.ask, np.float64), np.array(self.bid_size + self.ask_size, np.float64)
