"""Raw Binance USD-M futures websocket captures (hftbacktest's collector format).

Each line is ``<local receive ns> <json>``. Of the streams, ``<symbol>@trade`` gives trades
(``p`` price, ``q`` size, ``T`` trade time in ms, ``t`` id, ``m`` buyer-is-maker: ``m=true`` means
the seller was the aggressor) and ``<symbol>@bookTicker`` gives L1 snapshots (``b``/``B``,
``a``/``A``, ``T``). The exchange time ``T`` becomes ``ts_event``; the local receive stamp only
orders the file. Depth diffs and REST depth snapshots are not L1 and are counted, not imported.
Within each stream the exchange time must not go backwards.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from auction_trader.data.errors import BadRow, DataError, Rejects
from auction_trader.data.formats import ChunkBuffer, FileInfo, ImportOptions
from auction_trader.data.formats._io import Truncated, read_lines
from auction_trader.data.parse import BUYER, SELLER, QuoteRows, TradeRows, positive
from auction_trader.data.timestamps import stamp

TRADE_NAMES = {"ts": "T", "price": "p", "size": "q", "id": "t"}
QUOTE_NAMES = {"ts": "T", "bid": "b", "ask": "a", "bid_size": "B", "ask_size": "A"}


def _field(data: dict, key: str):
    try:
        return data[key]
    except KeyError:
        raise BadRow(key, f"missing field {key!r}") from None


def _trade_id(value) -> str:
    """Binance trade ids are JSON integers; text is accepted, anything else is refused."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise BadRow("t", f"not a trade id: {json.dumps(value)[:60]}")
    return str(value)


def read(path: Path, rejects: Rejects, options: ImportOptions, info: FileInfo) -> Iterator:
    buffer = ChunkBuffer(trades=TradeRows(dict(TRADE_NAMES), {"ts": "ms"}), quotes=QuoteRows(dict(QUOTE_NAMES), {"ts": "ms"}))
    every = buffer.every()
    symbol = options.raw_symbol.lower()
    other = 0
    try:
        for line_no, text, bad in read_lines(path):
            if not text.strip():
                continue
            info.rows_read += 1
            if bad:
                rejects.add(line_no, "line", bad, text)
                continue
            recv, _, payload = text.partition(" ")
            if not recv.isascii() or not recv.isdigit() or not payload:
                rejects.add(line_no, "line", "expected '<receive ns> <json>'", text)
                continue
            try:
                message = json.loads(payload)
            except json.JSONDecodeError as exc:
                rejects.add(line_no, "json", f"invalid JSON ({exc.msg} at column {exc.colno})", text)
                continue
            stream = message.get("stream") if isinstance(message, dict) else None
            if not isinstance(stream, str) or not stream.endswith(("@trade", "@bookTicker")):
                other += 1  # depth diffs, REST depth snapshots
                continue
            if not stream.startswith(symbol + "@"):
                raise DataError(
                    f"{path}:{line_no}: stream: {stream!r} is not {options.raw_symbol} "
                    f"(the instrument is {options.instrument_id}; pass --instrument for another symbol)",
                )
            data = message.get("data")
            try:
                if not isinstance(data, dict):
                    raise BadRow("data", "missing or not an object")
                if stream.endswith("@trade"):
                    maker = _field(data, "m")
                    if not isinstance(maker, bool):
                        raise BadRow("m", f"unknown side flag {json.dumps(maker)[:40]} (expected true/false)")
                    buffer.trades.add(
                        line_no,
                        stamp(_field(data, "T"), "ms", "T"),
                        positive(_field(data, "p"), "p"),
                        positive(_field(data, "q"), "q"),
                        SELLER if maker else BUYER,
                        _trade_id(_field(data, "t")),
                    )
                else:
                    bid = positive(_field(data, "b"), "b")
                    ask = positive(_field(data, "a"), "a")
                    if bid >= ask:
                        raise BadRow("b", f"crossed or locked quote: bid {bid} >= ask {ask}")
                    buffer.quotes.add(
                        line_no,
                        stamp(_field(data, "T"), "ms", "T"),
                        bid,
                        positive(_field(data, "B"), "B"),
                        ask,
                        positive(_field(data, "A"), "A"),
                    )
            except BadRow as row:
                rejects.add(line_no, row.field, row.reason, text)
            if line_no % every == 0 and buffer.full():
                yield buffer.take()
    except Truncated as exc:
        rejects.add(exc.line, "file", exc.reason, exc.partial)
    yield buffer.take()
    if other:
        info.notes.append(f"{other} depth/snapshot message(s) skipped (not L1)")
