"""Bybit daily order-book archives (``<date>_<SYMBOL>_ob500.data.zip``, or the unzipped ``.data``).

Each line is one ``orderbook.500.<SYMBOL>`` message: ``{"topic", "type": "snapshot"|"delta",
"ts", "cts", "data": {"s", "b": [[price, size], ...], "a": [...], "u", "seq"}}``, pushed every
100 ms. A snapshot replaces the book; a delta sets each listed level's size, size 0 deleting it.
After every message the best bid and ask with their sizes form one L1 snapshot; a message that
leaves the top of book unchanged adds nothing and is counted.

``ts_event`` is ``cts``, the matching engine's time (Bybit: "can be correlated with T from the
public trade channel"), falling back to ``ts`` when absent - trades are classified against these
quotes, so both must be on the engine's clock.

Nautilus ships ``BybitOrderBookDeltaDataLoader`` for this format; it materialises every level of
every message as a DataFrame row (tens of millions of rows for a BTCUSDT day) and does not derive
L1, so it does not fit a day-sized import. The tests use it as an independent cross-check of the
book built here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from auction_trader.data.errors import BadRow, DataError, Rejects
from auction_trader.data.formats import ChunkBuffer, FileInfo, ImportOptions
from auction_trader.data.formats._io import Truncated, read_lines
from auction_trader.data.parse import QuoteRows, number
from auction_trader.data.timestamps import stamp

NAMES = {"ts": "cts", "bid": "b.price", "ask": "a.price", "bid_size": "b.size", "ask_size": "a.size"}


class _Side:
    """One side of the book: price -> size, with the best price kept current."""

    def __init__(self, is_bid: bool) -> None:
        self.levels: dict[float, float] = {}
        self.is_bid = is_bid
        self.best: float | None = None

    def clear(self) -> None:
        self.levels.clear()
        self.best = None

    def set(self, price: float, size: float) -> float:
        """Set a level (size 0 deletes it); returns the size it had (0 if none), for rollback."""
        before = self.levels.get(price, 0.0)
        self._set(price, size)
        return before

    def _set(self, price: float, size: float) -> None:
        if size == 0:
            if self.levels.pop(price, None) is not None and price == self.best:
                self.best = (max if self.is_bid else min)(self.levels) if self.levels else None
            return
        self.levels[price] = size
        if self.best is None or (price > self.best if self.is_bid else price < self.best):
            self.best = price

    def top(self) -> tuple[float, float] | None:
        return (self.best, self.levels[self.best]) if self.best is not None else None


def _levels(data: dict, key: str) -> list[tuple[float, float]]:
    raw = data.get(key, [])
    if not isinstance(raw, list):
        raise BadRow(key, "levels must be a list of [price, size]")
    out = []
    for level in raw:
        if not isinstance(level, list) or len(level) != 2:
            raise BadRow(key, f"level {level!r} is not [price, size]")
        price = number(level[0], f"{key}.price")
        size = number(level[1], f"{key}.size")
        if price <= 0:
            raise BadRow(f"{key}.price", f"must be positive, got {level[0]!r}")
        if size < 0:
            raise BadRow(f"{key}.size", f"must not be negative, got {level[1]!r}")
        out.append((price, size))
    return out


def read(path: Path, rejects: Rejects, options: ImportOptions, info: FileInfo) -> Iterator:
    buffer = ChunkBuffer(quotes=QuoteRows(dict(NAMES), {"ts": "ms"}))
    every = buffer.every()
    bids, asks = _Side(True), _Side(False)
    have_snapshot = False
    last_top = None
    unchanged = 0
    try:
        for line_no, text, bad in read_lines(path):
            if not text.strip():
                continue
            info.rows_read += 1
            if bad:
                rejects.add(line_no, "line", bad, text)
                continue
            try:
                message = json.loads(text)
            except json.JSONDecodeError as exc:
                rejects.add(line_no, "json", f"invalid JSON ({exc.msg} at column {exc.colno})", text)
                continue
            try:
                if not isinstance(message, dict) or not isinstance(message.get("data"), dict):
                    raise BadRow("data", "missing or not an object")
                data = message["data"]
                kind = message.get("type")
                if kind not in ("snapshot", "delta"):
                    raise BadRow("type", f"unknown message type {json.dumps(kind)[:40]} (expected snapshot/delta)")
                symbol = data.get("s")
                if symbol != options.raw_symbol:
                    raise DataError(
                        f"{path}:{line_no}: data.s: the archive holds {symbol!r} but the instrument is "
                        f"{options.instrument_id} (pass --instrument for another symbol)",
                    )
                field = "cts" if "cts" in message else "ts"
                ns = stamp(message.get(field), "ms", field)
                new_bids, new_asks = _levels(data, "b"), _levels(data, "a")
                if kind == "delta" and not have_snapshot:
                    raise BadRow("type", "delta before any snapshot: the book is unknown")
            except BadRow as row:
                rejects.add(line_no, row.field, row.reason, text)
                continue
            saved = (dict(bids.levels), bids.best, dict(asks.levels), asks.best) if kind == "snapshot" else None
            if kind == "snapshot":
                bids.clear()
                asks.clear()
            undo = [(bids, price, bids.set(price, size)) for price, size in new_bids]
            undo += [(asks, price, asks.set(price, size)) for price, size in new_asks]
            bid, ask = bids.top(), asks.top()
            if bid is not None and ask is not None and bid[0] >= ask[0]:
                # A message that crosses the book is malformed: in skip mode it is taken back whole.
                if saved is not None:
                    bids.levels, bids.best, asks.levels, asks.best = saved[0], saved[1], saved[2], saved[3]
                else:
                    for side_book, price, before in reversed(undo):
                        side_book.set(price, before)
                rejects.add(line_no, "book", f"crossed or locked book after this message: bid {bid[0]} >= ask {ask[0]}", text[:300])
                continue
            have_snapshot = have_snapshot or kind == "snapshot"
            if bid is None or ask is None:
                unchanged += 1  # one side empty: no L1 to report
                continue
            top = (bid, ask)
            if top == last_top:
                unchanged += 1
                continue
            last_top = top
            buffer.quotes.add(line_no, ns, bid[0], bid[1], ask[0], ask[1])
            if line_no % every == 0 and buffer.full():
                yield buffer.take()
    except Truncated as exc:
        rejects.add(exc.line, "file", exc.reason, exc.partial)
    yield buffer.take()
    if unchanged:
        info.notes.append(f"{unchanged} message(s) left the top of book unchanged (no L1 row)")
