"""Tardis.dev CSV datasets (``trades`` and ``quotes``), parsed by Nautilus's own Tardis loader.

Columns: trades ``exchange,symbol,timestamp,local_timestamp,id,side,price,amount``; quotes
``exchange,symbol,timestamp,local_timestamp,ask_amount,ask_price,bid_price,bid_amount``;
timestamps in microseconds. Rows are ordered by ``local_timestamp`` (arrival), so that is the order
checked; the exchange ``timestamp`` becomes ``ts_event``.

Nautilus's loader stops at the first unparsable field and knows nothing of our rules (positive
sizes, crossed quotes, the symbol), so every row is validated here first; with --skip-bad-rows the
loader is handed a copy holding only the good rows. Precision is left for the loader to infer from
the whole file, so a price off the instrument's tick grid still shows up as such.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from nautilus_trader.adapters.tardis.loaders import TardisCSVDataLoader
from nautilus_trader.model.identifiers import InstrumentId

from auction_trader.data.errors import BadRow, DataError, Rejects
from auction_trader.data.formats import ImportOptions, Parsed
from auction_trader.data.formats._io import Truncated, read_header, read_lines
from auction_trader.data.parse import BUYER, NO_AGGRESSOR, SELLER, QuoteRows, TradeRows, infer_precision, positive, side, to_units

TRADE_COLUMNS = ("exchange", "symbol", "timestamp", "local_timestamp", "id", "side", "price", "amount")
QUOTE_COLUMNS = ("exchange", "symbol", "timestamp", "local_timestamp", "ask_amount", "ask_price", "bid_price", "bid_amount")
US = 1_000


def _micros(text: str, name: str) -> int:
    if not text.isdigit() or int(text) == 0:
        raise BadRow(name, f"not a microsecond timestamp: {text!r}")
    return int(text)


def _validate(path: Path, rejects: Rejects, options: ImportOptions, columns: tuple[str, ...], check) -> tuple[list[str], list[str], list[int], list[int], int]:
    """Checks every row; returns (header line, good lines, their line numbers, their local timestamps, rows read)."""
    lines = read_lines(path)
    header = read_header(path, lines, columns)
    header_text = ",".join(header)
    index = {c: header.index(c) for c in columns}
    good, numbers, order = [], [], []
    read = 0
    try:
        for line_no, text in lines:
            if not text:
                continue
            read += 1
            fields = text.split(",")
            if len(fields) != len(header):
                rejects.add(line_no, "row", f"expected {len(header)} columns, got {len(fields)}", text)
                continue
            row = {c: fields[i] for c, i in index.items()}
            if row["symbol"].upper() != options.raw_symbol:
                if not good and not len(rejects):
                    raise DataError(
                        f"{path}:{line_no}: symbol: the file holds {row['symbol']!r} but the instrument is "
                        f"{options.instrument_id} (pass --instrument for another symbol)",
                    )
                rejects.add(line_no, "symbol", f"{row['symbol']!r} is not {options.raw_symbol!r}", text)
                continue
            try:
                _micros(row["timestamp"], "timestamp")
                local = _micros(row["local_timestamp"], "local_timestamp")
                check(row)
            except BadRow as bad:
                rejects.add(line_no, bad.field, bad.reason, text)
                continue
            good.append(text)
            numbers.append(line_no)
            order.append(local * US)
    except Truncated as exc:
        rejects.add(exc.line, "file", exc.reason, exc.partial)
    return [header_text], good, numbers, order, read


def _precision(options: ImportOptions, prices: list[float], sizes: list[float]) -> tuple[int, int]:
    if options.spec is not None:
        return options.spec.price_precision, options.spec.size_precision
    return infer_precision(np.array(prices)), infer_precision(np.array(sizes))


def _load(path: Path, header: list[str], good: list[str], rejected: bool, options: ImportOptions, kind: str, precision: tuple[int, int]) -> list:
    loader = TardisCSVDataLoader(*precision, instrument_id=InstrumentId.from_str(options.instrument_id))
    load = loader.load_trades if kind == "trades" else loader.load_quotes
    if not good:
        return []
    if not rejected and not path.name.endswith(".zip"):
        data = load(path, as_legacy_cython=False)
    else:
        with tempfile.TemporaryDirectory(prefix="tardis-clean-") as tmp:
            clean = Path(tmp) / "clean.csv"
            clean.write_text("\n".join(header + good) + "\n")
            data = load(clean, as_legacy_cython=False)
    if len(data) != len(good):
        raise DataError(f"{path}: Nautilus's Tardis loader returned {len(data)} rows for {len(good)} valid lines")
    return data


def _on_grid(value: float, name: str, precision: int | None) -> float:
    if precision is not None and to_units(np.array([value]), precision)[1][0]:
        raise BadRow(name, f"{value!r} is not a multiple of the instrument's increment {10.0**-precision:g}")
    return value


def read_trades(path: Path, rejects: Rejects, options: ImportOptions) -> Parsed:
    pp = options.spec.price_precision if options.spec else None
    sp = options.spec.size_precision if options.spec else None
    prices, sizes = [], []

    def check(row: dict) -> None:
        price = _on_grid(positive(row["price"], "price"), "price", pp)
        size = _on_grid(positive(row["amount"], "amount"), "amount", sp)
        side(row["side"], allow_none=True)
        prices.append(price)
        sizes.append(size)

    header, good, numbers, order, read = _validate(path, rejects, options, TRADE_COLUMNS, check)
    objects = _load(path, header, good, bool(len(rejects)), options, "trades", _precision(options, prices, sizes))
    rows = TradeRows()
    codes = {"BUYER": BUYER, "SELLER": SELLER, "NO_AGGRESSOR": NO_AGGRESSOR}
    for line_no, t in zip(numbers, objects, strict=True):
        rows.add(line_no, int(t.ts_event), t.price.as_double(), t.size.as_double(), codes[str(t.aggressor_side)], str(t.trade_id))
    return Parsed(trades=rows, rows_read=read, trade_order=order)


def read_quotes(path: Path, rejects: Rejects, options: ImportOptions) -> Parsed:
    pp = options.spec.price_precision if options.spec else None
    sp = options.spec.size_precision if options.spec else None
    prices, sizes = [], []

    def check(row: dict) -> None:
        bid = _on_grid(positive(row["bid_price"], "bid_price"), "bid_price", pp)
        ask = _on_grid(positive(row["ask_price"], "ask_price"), "ask_price", pp)
        bid_size = _on_grid(positive(row["bid_amount"], "bid_amount"), "bid_amount", sp)
        ask_size = _on_grid(positive(row["ask_amount"], "ask_amount"), "ask_amount", sp)
        if bid >= ask:
            raise BadRow("bid_price", f"crossed or locked quote: bid {bid} >= ask {ask}")
        prices.extend((bid, ask))
        sizes.extend((bid_size, ask_size))

    header, good, numbers, order, read = _validate(path, rejects, options, QUOTE_COLUMNS, check)
    objects = _load(path, header, good, bool(len(rejects)), options, "quotes", _precision(options, prices, sizes))
    rows = QuoteRows()
    for line_no, q in zip(numbers, objects, strict=True):
        rows.add(line_no, int(q.ts_event), q.bid_price.as_double(), q.bid_size.as_double(), q.ask_price.as_double(), q.ask_size.as_double())
    return Parsed(quotes=rows, rows_read=read, quote_order=order)
