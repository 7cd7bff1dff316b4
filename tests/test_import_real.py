"""Importing the real feeds in ../shared/data, checked against independent parses of the sources."""

from __future__ import annotations

import gzip
import json
from decimal import Decimal
from pathlib import Path

import pytest
from nautilus_trader.adapters.bybit.loaders import BybitOrderBookDeltaDataLoader
from nautilus_trader.model.book import OrderBook
from nautilus_trader.model.data import BookOrder, OrderBookDelta
from nautilus_trader.model.enums import BookAction, BookType, OrderSide
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.objects import Price, Quantity
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from auction_trader.data.cli import main as data_cli
from auction_trader.data.importing import import_files
from tests.conftest import tree_digest

BTC = "BTCUSDT-LINEAR.BYBIT"
XRP = "XRPUSDT-LINEAR.BYBIT"
MS = 1_000_000


def parse_binance(paths: list[Path]) -> tuple[list[tuple], list[tuple]]:
    """Straight from the source text: (ts ns, price, size, aggressor) and (ts, bid, bid size, ask, ask size)."""
    trades, quotes = [], []
    for path in paths:
        with gzip.open(path, "rt") as f:
            for line in f:
                message = json.loads(line.split(" ", 1)[1])
                stream = message.get("stream", "")
                d = message.get("data", {})
                if stream.endswith("@trade"):
                    trades.append((d["T"] * MS, Decimal(d["p"]), Decimal(d["q"]), "SELLER" if d["m"] else "BUYER"))
                elif stream.endswith("@bookTicker"):
                    quotes.append((d["T"] * MS, Decimal(d["b"]), Decimal(d["B"]), Decimal(d["a"]), Decimal(d["A"])))
    return trades, quotes


def test_binance_feed_import_matches_the_source_exactly(binance_feeds, tmp_path):
    catalog = tmp_path / "real"
    assert data_cli(["import", "binance-feed", *map(str, binance_feeds), "--catalog", str(catalog)]) == 0
    src_trades, src_quotes = parse_binance(binance_feeds)
    # The README's counts for the three windows.
    assert len(src_trades) == 974 + 9_727 + 21_313
    assert len(src_quotes) == 7_113 + 45_147 + 66_089

    nautilus = ParquetDataCatalog(str(catalog))
    trades = nautilus.trade_ticks(instrument_ids=[BTC])
    quotes = nautilus.quote_ticks(instrument_ids=[BTC])
    assert [(t.ts_event, t.price.as_decimal(), t.size.as_decimal(), t.aggressor_side.name) for t in trades] == src_trades
    assert [
        (q.ts_event, q.bid_price.as_decimal(), q.bid_size.as_decimal(), q.ask_price.as_decimal(), q.ask_size.as_decimal())
        for q in quotes
    ] == src_quotes
    assert all(t.ts_init == t.ts_event for t in trades)
    instrument = nautilus.instruments(instrument_ids=[BTC])[0]
    assert (str(instrument.price_increment), str(instrument.size_increment), str(instrument.taker_fee), str(instrument.maker_fee)) == (
        "0.1",
        "0.001",
        "0.0005",
        "-0.0001",
    )


def test_reimporting_the_same_files_adds_nothing(binance_feeds, tmp_path):
    catalog = tmp_path / "real"
    first = import_files("binance-feed", binance_feeds[:2], catalog)
    assert first.trades.written == 974 + 9_727
    before = tree_digest(catalog)
    again = import_files("binance-feed", binance_feeds[:2], catalog)
    assert (again.trades.written, again.quotes.written) == (0, 0)
    assert (again.trades.duplicates, again.quotes.duplicates) == (974 + 9_727, 7_113 + 45_147)
    assert tree_digest(catalog) == before
    # A file overlapping what is there plus a new window: only the new window is written.
    more = import_files("binance-feed", binance_feeds[1:], catalog)
    assert more.trades.duplicates == 9_727 and more.trades.written == 21_313
    assert len(ParquetDataCatalog(str(catalog)).trade_ticks(instrument_ids=[BTC])) == 32_014


def hand_l1() -> list[tuple]:
    """L1 after the first four messages of the XRPUSDT ob500 fixture, derived by hand from its text.

    1 snapshot (cts ...589): bids 1.9531 x 6203, 1.9530 ...; asks 1.9532 x 10480, 1.9533 ...
    2 delta (cts ...691): bid 1.9531 -> 6198; no ask level <= 1.9532 touched
    3 delta (cts ...782): bid 1.9531 -> 7171; ask 1.9532 -> 8761
    4 delta (cts ...887): bid 1.9531 -> 7065; ask 1.9532 -> 8741
    """
    d = Decimal
    return [
        (1733011200589 * MS, d("1.9531"), d("6203"), d("1.9532"), d("10480")),
        (1733011200691 * MS, d("1.9531"), d("6198"), d("1.9532"), d("10480")),
        (1733011200782 * MS, d("1.9531"), d("7171"), d("1.9532"), d("8761")),
        (1733011200887 * MS, d("1.9531"), d("7065"), d("1.9532"), d("8741")),
    ]


def nautilus_book_l1(zip_path: Path) -> list[tuple]:
    """Independent L1: Nautilus's own ob500 loader for the levels, Nautilus's OrderBook for the book.

    The loader emits a CLEAR row per side of a snapshot and Nautilus's CLEAR empties the whole
    book, so a snapshot is applied as one clear followed by its levels.
    """
    frame = BybitOrderBookDeltaDataLoader.load(zip_path)
    iid = InstrumentId.from_str(XRP)
    book = OrderBook(iid, BookType.L2_MBP)
    tops = []
    for sequence, group in frame.groupby("sequence", sort=False):
        if (group["action"] == "CLEAR").any():
            book.clear(sequence, 0)
        for row in group[group["action"] != "CLEAR"].itertuples():
            side = OrderSide.BUY if row.side == "BUY" else OrderSide.SELL
            order = BookOrder(side, Price(row.price, 4), Quantity(row.size, 0), 0)
            book.apply_delta(OrderBookDelta(iid, BookAction[row.action], order, 0, int(sequence), 0, 0))
        top = (book.best_bid_price().as_decimal(), book.best_bid_size().as_decimal(), book.best_ask_price().as_decimal(), book.best_ask_size().as_decimal())
        if not tops or tops[-1] != top:
            tops.append(top)
    return tops


@pytest.mark.parametrize("source", ["zip", "jsonl"])
def test_ob500_fixture_gives_the_hand_derived_l1(ob500_zip, ob500_jsonl, tmp_path, source):
    path = ob500_zip if source == "zip" else ob500_jsonl
    report = import_files("bybit-ob500", [path], tmp_path / "xrp", instrument_id=XRP)
    assert report.files[0].rows_read == 50
    quotes = ParquetDataCatalog(str(tmp_path / "xrp")).quote_ticks(instrument_ids=[XRP])
    got = [(q.ts_event, q.bid_price.as_decimal(), q.bid_size.as_decimal(), q.ask_price.as_decimal(), q.ask_size.as_decimal()) for q in quotes]
    assert got[:4] == hand_l1()
    # Every row of the day agrees with the book Nautilus builds from its own loader.
    assert [g[1:] for g in got] == nautilus_book_l1(ob500_zip)
    # Precision was read from the data: XRPUSDT quotes 4 decimals, whole-coin sizes.
    instrument = ParquetDataCatalog(str(tmp_path / "xrp")).instruments(instrument_ids=[XRP])[0]
    assert (instrument.price_precision, instrument.size_precision) == (4, 0)
    assert report.quotes.written + int(report.files[0].notes[0].split()[0]) == 50


def test_ob500_for_another_symbol_is_refused_by_name(ob500_zip, tmp_path):
    with pytest.raises(Exception) as info:
        import_files("bybit-ob500", [ob500_zip], tmp_path / "btc")
    assert f"{ob500_zip}:1: data.s: the archive holds 'XRPUSDT' but the instrument is {BTC}" in str(info.value)
    assert not (tmp_path / "btc").exists()
