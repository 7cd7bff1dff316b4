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
from pathlib import Path

from auction_trader.data.errors import BadRow, DataError, Rejects
from auction_trader.data.formats import ImportOptions, Parsed
from auction_trader.data.formats._io import Truncated, read_lines
from auction_trader.data.parse import BUYER, SELLER, QuoteRows, TradeRows, positive

MS = 1_000_000


def _field(data: dict, key: str, name: str):
    try:
        return data[key]
    except KeyError:
        raise BadRow(name, f"missing field {key!r}") from None


def _ms(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise BadRow(name, f"not a millisecond timestamp: {value!r}")
    return value * MS


def read(path: Path, rejects: Rejects, options: ImportOptions) -> Parsed:
    trades, quotes = TradeRows(), QuoteRows()
    parsed = Parsed(trades=trades, quotes=quotes)
    symbol = options.raw_symbol.lower()
    other = 0
    try:
        for line_no, text in read_lines(path):
            if not text.strip():
                continue
            parsed.rows_read += 1
            recv, _, payload = text.partition(" ")
            if not recv.isdigit() or not payload:
                rejects.add(line_no, "line", "expected '<receive ns> <json>'", text)
                continue
            try:
                message = json.loads(payload)
            except json.JSONDecodeError as exc:
                rejects.add(line_no, "json", f"invalid JSON ({exc.msg} at column {exc.colno})", text)
                continue
            stream = message.get("stream") if isinstance(message, dict) else None
            if stream is None or not stream.endswith(("@trade", "@bookTicker")):
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
                    maker = _field(data, "m", "m")
                    if not isinstance(maker, bool):
                        raise BadRow("m", f"unknown side flag {maker!r} (expected true/false)")
                    trades.add(
                        line_no,
                        _ms(_field(data, "T", "T"), "T"),
                        positive(_field(data, "p", "p"), "p"),
                        positive(_field(data, "q", "q"), "q"),
                        SELLER if maker else BUYER,
                        str(_field(data, "t", "t")),
                    )
                else:
                    bid = positive(_field(data, "b", "b"), "b")
                    ask = positive(_field(data, "a", "a"), "a")
                    if bid >= ask:
                        raise BadRow("b", f"crossed or locked quote: bid {bid} >= ask {ask}")
                    quotes.add(
                        line_no,
                        _ms(_field(data, "T", "T"), "T"),
                        bid,
                        positive(_field(data, "B", "B"), "B"),
                        ask,
                        positive(_field(data, "A", "A"), "A"),
                    )
            except BadRow as bad:
                rejects.add(line_no, bad.field, bad.reason, text)
    except Truncated as exc:
        rejects.add(exc.line, "file", exc.reason, exc.partial)
    if other:
        parsed.notes.append(f"{other} depth/snapshot message(s) skipped (not L1)")
    return parsed
