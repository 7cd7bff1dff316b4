"""Tardis.dev CSV datasets (``trades`` and ``quotes``).

Columns: trades ``exchange,symbol,timestamp,local_timestamp,id,side,price,amount``; quotes
``exchange,symbol,timestamp,local_timestamp,ask_amount,ask_price,bid_price,bid_amount``;
timestamps in microseconds. Rows are ordered by ``local_timestamp`` (arrival), so that is the order
checked; the exchange ``timestamp`` becomes ``ts_event``.

The files are read here, line by line, rather than by Nautilus's ``TardisCSVDataLoader``: that
loader holds the whole file in memory, aborts the process on a non-ASCII trade id and clamps
out-of-range values without a word. The tests check this reader against it on valid files.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from auction_trader.data.errors import BadRow, DataError, Rejects
from auction_trader.data.formats import ChunkBuffer, FileInfo, ImportOptions
from auction_trader.data.formats._io import Truncated, read_header, read_lines
from auction_trader.data.parse import QuoteRows, TradeRows, positive, side
from auction_trader.data.timestamps import to_ns

TRADE_COLUMNS = ("exchange", "symbol", "timestamp", "local_timestamp", "id", "side", "price", "amount")
QUOTE_COLUMNS = ("exchange", "symbol", "timestamp", "local_timestamp", "ask_amount", "ask_price", "bid_price", "bid_amount")
UNITS = {"ts": "us", "order": "us"}


def _micros(text: str, name: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise BadRow(name, f"not a microsecond timestamp: {text!r}")
    return to_ns(text, "us", name)


def _rows(path: Path, rejects: Rejects, options: ImportOptions, info: FileInfo, columns: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str], str]]:
    """(line number, row by column, text) of every well-formed row for the instrument's symbol."""
    lines = read_lines(path)
    header = read_header(path, lines, columns)
    index = {c: header.index(c) for c in columns}
    checked = False
    try:
        for line_no, text, bad in lines:
            if not text:
                continue
            info.rows_read += 1
            if bad:
                rejects.add(line_no, "line", bad, text)
                continue
            fields = text.split(",")
            if len(fields) != len(header):
                rejects.add(line_no, "row", f"expected {len(header)} columns, got {len(fields)}", text)
                continue
            row = {c: fields[i] for c, i in index.items()}
            if row["symbol"].upper() != options.raw_symbol:
                if not checked:
                    raise DataError(
                        f"{path}:{line_no}: symbol: the file holds {row['symbol']!r} but the instrument is "
                        f"{options.instrument_id} (pass --instrument for another symbol)",
                    )
                rejects.add(line_no, "symbol", f"{row['symbol']!r} is not {options.raw_symbol!r}", text)
                continue
            checked = True
            yield line_no, row, text
    except Truncated as exc:
        rejects.add(exc.line, "file", exc.reason, exc.partial)


def read_trades(path: Path, rejects: Rejects, options: ImportOptions, info: FileInfo) -> Iterator:
    names = {"ts": "timestamp", "order": "local_timestamp", "price": "price", "size": "amount", "id": "id"}
    buffer = ChunkBuffer(trades=TradeRows(names, dict(UNITS)))
    every = buffer.every()
    for line_no, row, text in _rows(path, rejects, options, info, TRADE_COLUMNS):
        try:
            ts = _micros(row["timestamp"], "timestamp")
            local = _micros(row["local_timestamp"], "local_timestamp")
            price = positive(row["price"], "price")
            size = positive(row["amount"], "amount")
            aggressor = side(row["side"], allow_none=True)
        except BadRow as bad:
            rejects.add(line_no, bad.field, bad.reason, text)
            continue
        buffer.trades.add(line_no, ts, price, size, aggressor, row["id"], order=local)
        if line_no % every == 0 and buffer.full():
            yield buffer.take()
    yield buffer.take()


def read_quotes(path: Path, rejects: Rejects, options: ImportOptions, info: FileInfo) -> Iterator:
    names = {"ts": "timestamp", "order": "local_timestamp", "bid": "bid_price", "ask": "ask_price", "bid_size": "bid_amount", "ask_size": "ask_amount"}
    buffer = ChunkBuffer(quotes=QuoteRows(names, dict(UNITS)))
    every = buffer.every()
    for line_no, row, text in _rows(path, rejects, options, info, QUOTE_COLUMNS):
        try:
            ts = _micros(row["timestamp"], "timestamp")
            local = _micros(row["local_timestamp"], "local_timestamp")
            bid = positive(row["bid_price"], "bid_price")
            ask = positive(row["ask_price"], "ask_price")
            bid_size = positive(row["bid_amount"], "bid_amount")
            ask_size = positive(row["ask_amount"], "ask_amount")
            if bid >= ask:
                raise BadRow("bid_price", f"crossed or locked quote: bid {bid} >= ask {ask}")
        except BadRow as bad:
            rejects.add(line_no, bad.field, bad.reason, text)
            continue
        buffer.quotes.add(line_no, ts, bid, bid_size, ask, ask_size, order=local)
        if line_no % every == 0 and buffer.full():
            yield buffer.take()
    yield buffer.take()
