"""Generic CSV trades or quotes, with a column mapping and auto-detected timestamps.

The file needs a header. Columns are found by common names (``timestamp``/``time``/``ts``,
``price``/``px``, ``size``/``qty``/``amount``, ``side``, ``bid``/``bid_price``, ``bid_size``, ...)
or mapped explicitly with ``--columns ts=Time,price=Px,size=Qty``. The kind (trades or quotes) is
taken from the columns unless ``--kind`` says. Timestamps may be unix s/ms/us/ns or ISO 8601; the
unit is detected from the first rows (:mod:`auction_trader.data.timestamps`) unless ``--ts-unit``
fixes it. A trade side column is optional (taker side Buy/Sell; a boolean ``is_buyer_maker`` /
``m`` column is read the Binance way); without one trades carry no aggressor. Files may be
ordered oldest or newest first.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from auction_trader.data.errors import BadRow, DataError, Rejects
from auction_trader.data.formats import ChunkBuffer, FileInfo, ImportOptions
from auction_trader.data.formats._io import Truncated, read_header, read_lines
from auction_trader.data.parse import BUYER, SELLER, QuoteRows, TradeRows, positive, side
from auction_trader.data.timestamps import UNITS, detect_unit, to_ns

SYNONYMS = {
    "ts": ("timestamp", "ts", "time", "ts_ms", "ts_event", "datetime", "date_time", "t"),
    "price": ("price", "px", "p", "trade_price"),
    "size": ("size", "qty", "quantity", "amount", "volume", "q", "v"),
    "side": ("side", "taker_side", "aggressor", "aggressor_side", "is_buyer_maker", "buyer_maker", "m"),
    "id": ("id", "trade_id", "tid", "trdmatchid"),
    "bid": ("bid", "bid_px", "bid_price", "best_bid", "b"),
    "bid_size": ("bid_size", "bid_sz", "bid_qty", "bid_amount", "bid_volume"),
    "ask": ("ask", "ask_px", "ask_price", "best_ask", "a"),
    "ask_size": ("ask_size", "ask_sz", "ask_qty", "ask_amount", "ask_volume"),
}
REQUIRED = {"trades": ("ts", "price", "size"), "quotes": ("ts", "bid", "bid_size", "ask", "ask_size")}
OPTIONAL = {"trades": ("side", "id"), "quotes": ()}
MAKER_FLAGS = ("is_buyer_maker", "buyer_maker", "m")
SAMPLE = 200


def _map_columns(path: Path, header: list[str], options: ImportOptions) -> tuple[str, dict[str, int]]:
    lower = {h.strip().lower(): i for i, h in enumerate(header)}
    for ours, theirs in options.columns.items():
        if ours not in SYNONYMS:
            raise DataError(f"{path}: --columns: unknown field {ours!r} (known: {', '.join(SYNONYMS)})")
        if theirs.strip().lower() not in lower:
            raise DataError(f"{path}:1: --columns {ours}={theirs}: no column {theirs!r} in the header ({', '.join(header)})")

    def find(ours: str) -> int | None:
        if ours in options.columns:
            return lower[options.columns[ours].strip().lower()]
        return next((lower[name] for name in SYNONYMS[ours] if name in lower), None)

    kind = options.kind or ("quotes" if find("bid") is not None and find("ask") is not None else "trades")
    if kind not in REQUIRED:
        raise DataError(f"{path}: --kind must be trades or quotes, not {kind!r}")
    mapping = {}
    for ours in REQUIRED[kind] + OPTIONAL[kind]:
        index = find(ours)
        if index is None and ours in REQUIRED[kind]:
            raise DataError(
                f"{path}:1: {ours}: no column for {ours!r} in the header ({', '.join(header)}); "
                f"map one with --columns {ours}=<column>",
            )
        if index is not None:
            mapping[ours] = index
    return kind, mapping


def read(path: Path, rejects: Rejects, options: ImportOptions, info: FileInfo) -> Iterator:
    if options.ts_unit not in UNITS:
        raise DataError(f"--ts-unit must be one of {', '.join(UNITS)}, not {options.ts_unit!r}")
    info.allow_descending = True
    lines = read_lines(path)
    header = read_header(path, lines)
    kind, col = _map_columns(path, header, options)
    maker_flag = "side" in col and header[col["side"]].strip().lower() in MAKER_FLAGS

    # The unit is decided from the first rows; they are buffered, then everything is parsed.
    buffered: list = []
    truncated: Truncated | None = None
    try:
        for item in lines:
            buffered.append(item)
            if len(buffered) >= SAMPLE:
                break
    except Truncated as exc:
        truncated = exc
    unit = options.ts_unit
    if unit == "auto":
        samples = []
        for _, text, bad in buffered:
            fields = next(csv.reader([text])) if text and not bad else []
            if len(fields) == len(header):
                samples.append(fields[col["ts"]])
        unit, warning = detect_unit(samples)
        options.warn(f"{path}: timestamps read as {unit}" + (f" - {warning}" if warning else ""))
    names = {ours: header[i] for ours, i in col.items()}
    names.setdefault("id", "id")
    units = {"ts": unit}
    buffer = ChunkBuffer(trades=TradeRows(names, units)) if kind == "trades" else ChunkBuffer(quotes=QuoteRows(names, units))
    every = buffer.every()

    def rest():
        yield from buffered
        if truncated is None:
            yield from lines

    width = len(header)
    try:
        for line_no, text, bad in rest():
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
            try:
                ts = to_ns(fields[col["ts"]], unit, header[col["ts"]])
                if kind == "trades":
                    price = positive(fields[col["price"]], header[col["price"]])
                    size = positive(fields[col["size"]], header[col["size"]])
                    aggressor = 0
                    if "side" in col:
                        raw = fields[col["side"]]
                        if maker_flag:
                            flag = raw.strip().lower()
                            if flag not in ("true", "false", "1", "0"):
                                raise BadRow(header[col["side"]], f"not a boolean buyer-is-maker flag: {raw!r}")
                            aggressor = SELLER if flag in ("true", "1") else BUYER
                        else:
                            aggressor = side(raw, header[col["side"]], allow_none=True)
                    buffer.trades.add(line_no, ts, price, size, aggressor, fields[col["id"]] if "id" in col else "")
                else:
                    bid = positive(fields[col["bid"]], header[col["bid"]])
                    ask = positive(fields[col["ask"]], header[col["ask"]])
                    if bid >= ask:
                        raise BadRow(header[col["bid"]], f"crossed or locked quote: bid {bid} >= ask {ask}")
                    bid_size = positive(fields[col["bid_size"]], header[col["bid_size"]])
                    ask_size = positive(fields[col["ask_size"]], header[col["ask_size"]])
                    buffer.quotes.add(line_no, ts, bid, bid_size, ask, ask_size)
            except BadRow as row:
                rejects.add(line_no, row.field, row.reason, text)
            if line_no % every == 0 and buffer.full():
                yield buffer.take()
        if truncated is not None:
            raise truncated
    except Truncated as exc:
        rejects.add(exc.line, "file", exc.reason, exc.partial)
    yield buffer.take()
    info.notes.append(f"read as {kind}, timestamps in {unit}")
