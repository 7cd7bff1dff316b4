"""Bybit public daily trade dumps (``public.bybit.com/trading/<SYMBOL>/<SYMBOL><YYYY-MM-DD>.csv.gz``).

Header ``timestamp,symbol,side,size,price,tickDirection,trdMatchID,grossValue,homeNotional,
foreignNotional`` and, in newer files, ``RPI``. ``timestamp`` is seconds with a decimal fraction
(converted exactly, no float), ``side`` is the taker's side, ``size`` is in the base coin and
``trdMatchID`` becomes the trade id. RPI trades (filled against Retail Price Improvement orders)
are real volume and are kept; their count is reported. Files may be written oldest or newest
first; either is accepted, rows out of the file's own order are not.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from auction_trader.data.errors import BadRow, DataError, Rejects
from auction_trader.data.formats import ChunkBuffer, FileInfo, ImportOptions
from auction_trader.data.formats._io import Truncated, read_header, read_lines
from auction_trader.data.parse import TradeRows, positive, side
from auction_trader.data.timestamps import to_ns

REQUIRED = ("timestamp", "symbol", "side", "size", "price")


def read(path: Path, rejects: Rejects, options: ImportOptions, info: FileInfo) -> Iterator:
    info.allow_descending = True
    lines = read_lines(path)
    header = read_header(path, lines, REQUIRED)
    col = {name: header.index(name) for name in header}
    i_ts, i_sym, i_side, i_size, i_price = (col[c] for c in REQUIRED)
    i_id = col.get("trdMatchID")
    i_rpi = col.get("RPI")
    width = len(header)
    names = {"ts": "timestamp", "price": "price", "size": "size", "id": "trdMatchID"}
    buffer = ChunkBuffer(trades=TradeRows(names, {"ts": "s"}))
    rpi = 0
    symbol_checked = False
    symbol = options.raw_symbol
    every = buffer.every()
    try:
        for line_no, text, bad in lines:
            if not text:
                continue
            info.rows_read += 1
            if bad:
                rejects.add(line_no, "line", bad, text)
                continue
            fields = next(csv.reader([text])) if '"' in text else text.split(",")
            if len(fields) != width:
                rejects.add(line_no, "row", f"expected {width} columns, got {len(fields)}", text)
                continue
            if fields[i_sym] != symbol:
                if not symbol_checked:
                    raise DataError(
                        f"{path}:{line_no}: symbol: the file holds {fields[i_sym]!r} trades but the "
                        f"instrument is {options.instrument_id} (pass --instrument for another symbol)",
                    )
                rejects.add(line_no, "symbol", f"{fields[i_sym]!r} is not {options.raw_symbol!r}", text)
                continue
            symbol_checked = True
            try:
                ts = to_ns(fields[i_ts], "s", "timestamp")
                price = positive(fields[i_price], "price")
                size = positive(fields[i_size], "size")
                aggressor = side(fields[i_side])
            except BadRow as row:
                rejects.add(line_no, row.field, row.reason, text)
                continue
            if i_rpi is not None and fields[i_rpi] not in ("", "0", "false", "False"):
                rpi += 1
            buffer.trades.add(line_no, ts, price, size, aggressor, fields[i_id] if i_id is not None else "")
            if line_no % every == 0 and buffer.full():
                yield buffer.take()
    except Truncated as exc:
        rejects.add(exc.line, "file", exc.reason, exc.partial)
    yield buffer.take()
    if rpi:
        info.notes.append(f"{rpi} RPI trade(s) kept")
