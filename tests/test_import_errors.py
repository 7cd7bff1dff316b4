"""Bad input for every importer: strict mode names file, line and field and leaves the catalog as it
was; --skip-bad-rows lands the good rows and writes the bad ones beside the catalog."""

from __future__ import annotations

import csv
import gzip
import json
import zipfile
from pathlib import Path

import pytest
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from auction_trader.data.cli import main as data_cli
from auction_trader.data.errors import DataError, rejects_path
from auction_trader.data.importing import import_files
from tests.conftest import tree_digest

BTC = "BTCUSDT-LINEAR.BYBIT"
BYBIT_HEADER = "timestamp,symbol,side,size,price,tickDirection,trdMatchID,grossValue,homeNotional,foreignNotional,RPI"
T0 = 1_704_067_200  # 2024-01-01T00:00:00Z


def bybit_row(i: int, *, ts: str | None = None, side: str = "Buy", size: str = "0.010", price: str | None = None, symbol: str = "BTCUSDT", rpi: str = "0") -> str:
    ts = ts or f"{T0 + i}.{1000 + i:04d}"
    price = price or f"{42000 + i / 10:.1f}"
    return f"{ts},{symbol},{side},{size},{price},PlusTick,{i:08d}-aaaa-bbbb-cccc-000000000000,1,{size},1,{rpi}"


def write_gz(path: Path, lines: list[str]) -> Path:
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    return path


def good_bybit_rows(n: int = 20) -> list[str]:
    return [bybit_row(i) for i in range(n)]


def seed_catalog(tmp_path: Path) -> Path:
    """A catalog that already holds data, so 'left exactly as it was' is tested on a real catalog."""
    catalog = tmp_path / "cat"
    src = write_gz(tmp_path / "seed.csv.gz", [BYBIT_HEADER] + [bybit_row(i, ts=f"{T0 - 3600 + i}.0") for i in range(5)])
    import_files("bybit-trades", [src], catalog)
    return catalog


# -- bybit-trades ----------------------------------------------------------------------------------

BYBIT_CASES = {
    # name: (mutate rows (header at 0), expected line, expected field, fragment)
    "non-numeric price": (lambda r: r.__setitem__(5, bybit_row(4, price="4200x.0")), 6, "price", "not a number: '4200x.0'"),
    "zero size": (lambda r: r.__setitem__(3, bybit_row(2, size="0")), 4, "size", "must be positive"),
    "negative price": (lambda r: r.__setitem__(8, bybit_row(7, price="-1.0")), 9, "price", "must be positive"),
    "unknown side": (lambda r: r.__setitem__(2, bybit_row(1, side="Hold")), 3, "side", "unknown side 'Hold'"),
    "short row": (lambda r: r.__setitem__(10, "1704067210.0,BTCUSDT,Buy"), 11, "row", "expected 11 columns, got 3"),
    "time backwards": (lambda r: r.__setitem__(12, bybit_row(11, ts=f"{T0 + 3}.0")), 13, "timestamp", "time goes backwards"),
    "price off the tick grid": (lambda r: r.__setitem__(7, bybit_row(6, price="42000.65")), 8, "price", "is not a multiple of the instrument's increment 0.1"),
    "bad timestamp": (lambda r: r.__setitem__(4, bybit_row(3, ts="yesterday")), 5, "timestamp", "not a timestamp"),
}


def strict_then_skip(fmt: str, src: Path, catalog: Path, line: int, field: str, fragment: str):
    """A bad row: the strict import fails naming ``file:line: field`` and leaves the catalog as it
    was; the skipping import rejects that row alone. Returns the skipping import's report (None
    for a file-level error, ``field`` empty, which no skipping can get past)."""
    before = tree_digest(catalog)
    with pytest.raises(DataError) as info:
        import_files(fmt, [src], catalog)
    assert f"{src}:{line}: {field + ': ' if field else ''}" in str(info.value) and fragment in str(info.value)
    assert tree_digest(catalog) == before
    assert not rejects_path(catalog).exists()
    if not field:
        return None
    report = import_files(fmt, [src], catalog, skip_bad_rows=True)
    assert [(r.line, r.field) for r in report.rejects] == [(line, field)]
    return report


@pytest.mark.parametrize("case", sorted(BYBIT_CASES))
def test_bybit_trades_bad_row_strict_and_skip(tmp_path, case):
    mutate, line, field, fragment = BYBIT_CASES[case]
    rows = [BYBIT_HEADER] + good_bybit_rows()
    mutate(rows)
    src = write_gz(tmp_path / "BTCUSDT2024-01-01.csv.gz", rows)
    catalog = seed_catalog(tmp_path)
    report = strict_then_skip("bybit-trades", src, catalog, line, field, fragment)
    assert report.trades.written == 19
    stored = ParquetDataCatalog(str(catalog)).trade_ticks(instrument_ids=[BTC])
    assert len(stored) == 5 + 19
    with catalog.with_name("cat.rejects.csv").open() as f:
        rejects = list(csv.DictReader(f))
    assert [(r["file"], int(r["line"]), r["field"]) for r in rejects] == [(str(src), line, field)]


def test_bybit_truncated_gzip_keeps_the_good_lines(tmp_path):
    rows = [BYBIT_HEADER] + [bybit_row(i) for i in range(3000)]
    full = gzip.compress(("\n".join(rows) + "\n").encode())
    src = tmp_path / "BTCUSDT2024-01-01.csv.gz"
    src.write_bytes(full[: len(full) * 2 // 3])
    catalog = tmp_path / "cat"
    with pytest.raises(DataError, match=r"truncated gzip stream") as info:
        import_files("bybit-trades", [src], catalog)
    assert f"{src}:" in str(info.value) and ": file: " in str(info.value)
    assert not catalog.exists()
    report = import_files("bybit-trades", [src], catalog, skip_bad_rows=True)
    written = report.trades.written
    assert 1000 < written < 3000
    assert report.rejects[-1].field == "file" and report.rejects[-1].line == written + 2
    # Every row before the damage landed, in order.
    stored = ParquetDataCatalog(str(catalog)).trade_ticks(instrument_ids=[BTC])
    assert [t.trade_id.value[:8] for t in stored] == [f"{i:08d}" for i in range(written)]


def test_bybit_missing_column_and_wrong_symbol(tmp_path):
    src = write_gz(tmp_path / "a.csv.gz", ["timestamp,symbol,side,price", "1704067200.0,BTCUSDT,Buy,42000.0"])
    with pytest.raises(DataError, match=rf"{src}:1: missing column\(s\) size"):
        import_files("bybit-trades", [src], tmp_path / "cat", skip_bad_rows=True)
    src = write_gz(tmp_path / "b.csv.gz", [BYBIT_HEADER, bybit_row(0, symbol="ETHUSDT")])
    with pytest.raises(DataError, match=rf"{src}:2: symbol: the file holds 'ETHUSDT' trades but the instrument is {BTC}"):
        import_files("bybit-trades", [src], tmp_path / "cat")
    assert not (tmp_path / "cat").exists()


def test_bybit_newest_first_file_is_read_in_time_order(tmp_path):
    rows = good_bybit_rows(10)
    src = write_gz(tmp_path / "desc.csv.gz", [BYBIT_HEADER] + rows[::-1] + [bybit_row(99, rpi="1")])
    # The RPI row (newest) breaks the file's newest-first order: rejected in skip mode.
    report = import_files("bybit-trades", [src], tmp_path / "cat", skip_bad_rows=True)
    assert report.trades.written == 10 and len(report.rejects) == 1 and report.rejects[0].line == 12
    stored = ParquetDataCatalog(str(tmp_path / "cat")).trade_ticks(instrument_ids=[BTC])
    assert [t.ts_event for t in stored] == sorted(t.ts_event for t in stored)
    assert stored[0].ts_event == T0 * 10**9 + 100_000_000  # '1704067200.1000' exactly


# -- binance-feed ----------------------------------------------------------------------------------


def binance_trade(i: int, **over) -> str:
    data = {"e": "trade", "E": 1721347202813 + i, "T": 1721347202812 + i, "s": "BTCUSDT", "t": 5182006711 + i, "p": f"{63960 + i / 10:.2f}", "q": "0.310", "X": "MARKET", "m": i % 2 == 0}
    data.update(over)
    return f"{1721347201292005428 + i} " + json.dumps({"stream": "btcusdt@trade", "data": data})


def binance_quote(i: int, **over) -> str:
    data = {"e": "bookTicker", "u": 4984035701909 + i, "s": "BTCUSDT", "b": "63959.90", "B": f"{20 + i}.327", "a": "63960.00", "A": "4.952", "T": 1721347202812 + i, "E": 1721347202813 + i}
    data.update(over)
    return f"{1721347201291825027 + i} " + json.dumps({"stream": "btcusdt@bookTicker", "data": data})


BINANCE_CASES = {
    "bad json": (lambda r: r.__setitem__(3, "1721347201292005428 {\"stream\": \"btcusdt@trade\", "), 4, "json", "invalid JSON"),
    "missing price": (lambda r: r.__setitem__(2, binance_trade(2, p=None).replace('"p": null, ', "")), 3, "p", "missing field 'p'"),
    "crossed quote": (lambda r: r.__setitem__(6, binance_quote(6, b="63961.00")), 7, "b", "crossed or locked quote"),
    "unknown side flag": (lambda r: r.__setitem__(8, binance_trade(8, m="yes")), 9, "m", "unknown side flag"),
    "zero quote size": (lambda r: r.__setitem__(10, binance_quote(10, A="0.000")), 11, "A", "must be positive"),
    "trade time backwards": (lambda r: r.__setitem__(12, binance_trade(12, T=1721347202000)), 13, "timestamp", "time goes backwards"),
}


@pytest.mark.parametrize("case", sorted(BINANCE_CASES))
def test_binance_feed_bad_row_strict_and_skip(tmp_path, case):
    mutate, line, field, fragment = BINANCE_CASES[case]
    rows = [binance_trade(i) if i % 2 == 0 else binance_quote(i) for i in range(16)]
    mutate(rows)
    src = write_gz(tmp_path / "feed.gz", rows)
    report = strict_then_skip("binance-feed", src, seed_catalog(tmp_path), line, field, fragment)
    assert report.trades.written + report.quotes.written == 15


# -- bybit-ob500 -----------------------------------------------------------------------------------


def ob_message(kind: str, cts: int, bids: list, asks: list, symbol: str = "BTCUSDT") -> str:
    return json.dumps({"topic": f"orderbook.500.{symbol}", "type": kind, "ts": cts + 2, "cts": cts, "data": {"s": symbol, "b": bids, "a": asks, "u": cts, "seq": cts}})


def write_zip(path: Path, lines: list[str]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(path.name.removesuffix(".zip"), "\n".join(lines) + "\n")
    return path


def ob_lines() -> list[str]:
    lines = [ob_message("snapshot", 1_704_067_200_000, [["42000.0", "1.5"], ["41999.9", "2"]], [["42000.1", "3"], ["42000.2", "4"]])]
    for i in range(1, 10):
        lines.append(ob_message("delta", 1_704_067_200_000 + 100 * i, [["42000.0", f"{1 + i}.5"]], [["42000.1", f"{3 + i}"]]))
    return lines


OB_CASES = {
    "crossed book": (lambda r: r.__setitem__(4, ob_message("delta", 1_704_067_200_400, [["42000.5", "1"]], [])), 5, "book", "crossed or locked book"),
    "delta before snapshot": (lambda r: r.insert(0, ob_message("delta", 1_704_067_199_900, [["42000.0", "1"]], [])), 1, "type", "delta before any snapshot"),
    "negative size": (lambda r: r.__setitem__(3, ob_message("delta", 1_704_067_200_300, [["42000.0", "-1"]], [])), 4, "b.size", "must not be negative"),
    "bad json": (lambda r: r.__setitem__(6, r[6][:40]), 7, "json", "invalid JSON"),
    "time backwards": (lambda r: r.__setitem__(8, ob_message("delta", 1_704_067_200_050, [["42000.0", "9"]], [])), 9, "timestamp", "time goes backwards"),
}


@pytest.mark.parametrize("case", sorted(OB_CASES))
def test_ob500_bad_message_strict_and_skip(tmp_path, case):
    mutate, line, field, fragment = OB_CASES[case]
    lines = ob_lines()
    mutate(lines)
    src = write_zip(tmp_path / "2024-01-01_BTCUSDT_ob500.data.zip", lines)
    report = strict_then_skip("bybit-ob500", src, seed_catalog(tmp_path), line, field, fragment)
    assert report.quotes.written >= 8


def test_ob500_truncated_zip_is_refused_by_name(tmp_path):
    src = write_zip(tmp_path / "x_ob500.data.zip", ob_lines())
    src.write_bytes(src.read_bytes()[:-30])
    with pytest.raises(DataError, match=rf"{src}: not a readable zip archive"):
        import_files("bybit-ob500", [src], tmp_path / "cat", skip_bad_rows=True)
    assert not (tmp_path / "cat").exists()


# -- tardis ----------------------------------------------------------------------------------------

TARDIS_TRADES = "exchange,symbol,timestamp,local_timestamp,id,side,price,amount"
TARDIS_QUOTES = "exchange,symbol,timestamp,local_timestamp,ask_amount,ask_price,bid_price,bid_amount"


def tardis_trade(i: int, side: str = "buy", price: str | None = None, local: int | None = None) -> str:
    price = price or f"{42000 + i / 10:.1f}"
    return f"bybit,BTCUSDT,{1704067200000000 + i * 1000},{local or 1704067200050000 + i * 1000},t{i},{side},{price},0.{i + 1:03d}"


def tardis_quote(i: int, bid: str = "42000.0", ask: str = "42000.1") -> str:
    return f"bybit,BTCUSDT,{1704067200000000 + i * 1000},{1704067200050000 + i * 1000},1.5,{ask},{bid},{i + 1}.25"


def test_tardis_trades_and_quotes_agree_with_nautilus_tardis_loader(tmp_path):
    from nautilus_trader.adapters.tardis.loaders import TardisCSVDataLoader
    from nautilus_trader.model.identifiers import InstrumentId

    trades = tmp_path / "trades.csv"
    trades.write_text("\n".join([TARDIS_TRADES] + [tardis_trade(i, side=("buy", "sell", "unknown")[i % 3]) for i in range(12)]) + "\n")
    quotes = tmp_path / "quotes.csv.gz"
    write_gz(quotes, [TARDIS_QUOTES] + [tardis_quote(i) for i in range(12)])
    catalog = tmp_path / "cat"
    import_files("tardis-trades", [trades], catalog)
    import_files("tardis-quotes", [quotes], catalog)
    nautilus = ParquetDataCatalog(str(catalog))
    got = nautilus.trade_ticks(instrument_ids=[BTC])
    assert [(t.ts_event, str(t.price), str(t.size), t.aggressor_side.name) for t in got[:3]] == [
        (1704067200000000000, "42000.0", "0.001", "BUYER"),
        (1704067200001000000, "42000.1", "0.002", "SELLER"),
        (1704067200002000000, "42000.2", "0.003", "NO_AGGRESSOR"),
    ]
    assert all(t.ts_init == t.ts_event for t in got)
    q = nautilus.quote_ticks(instrument_ids=[BTC])
    assert len(q) == 12 and (str(q[0].bid_price), str(q[0].ask_price), str(q[0].bid_size), str(q[0].ask_size)) == ("42000.0", "42000.1", "1.250", "1.500")
    # Nautilus's own Tardis loader reads the same files to the same ticks.
    loader = TardisCSVDataLoader(1, 3, instrument_id=InstrumentId.from_str(BTC))
    theirs = loader.load_trades(trades, as_legacy_cython=True)
    assert [(t.ts_event, str(t.price), str(t.size), t.aggressor_side.name, t.trade_id.value) for t in theirs] == [
        (t.ts_event, str(t.price), str(t.size), t.aggressor_side.name, t.trade_id.value) for t in got
    ]
    theirs = loader.load_quotes(quotes, as_legacy_cython=True)
    assert [(x.ts_event, str(x.bid_price), str(x.ask_price), str(x.bid_size), str(x.ask_size)) for x in theirs] == [
        (x.ts_event, str(x.bid_price), str(x.ask_price), str(x.bid_size), str(x.ask_size)) for x in q
    ]


TARDIS_CASES = {
    "non-numeric price": ("trades", lambda r: r.__setitem__(4, tardis_trade(3, price="abc")), 5, "price", "not a number"),
    "unknown side": ("trades", lambda r: r.__setitem__(2, tardis_trade(1, side="long")), 3, "side", "unknown side 'long'"),
    "local time backwards": ("trades", lambda r: r.__setitem__(6, tardis_trade(5, local=1704067200000001)), 7, "local_timestamp", "time goes backwards"),
    "off-grid price": ("trades", lambda r: r.__setitem__(3, tardis_trade(2, price="42000.25")), 4, "price", "not a multiple"),
    "crossed quote": ("quotes", lambda r: r.__setitem__(5, tardis_quote(4, bid="42000.2")), 6, "bid_price", "crossed or locked quote"),
    "missing column": ("quotes", lambda r: r.__setitem__(0, TARDIS_QUOTES.replace(",bid_amount", "")), 1, "", "missing column(s) bid_amount"),
}


@pytest.mark.parametrize("case", sorted(TARDIS_CASES))
def test_tardis_bad_rows(tmp_path, case):
    kind, mutate, line, field, fragment = TARDIS_CASES[case]
    rows = [TARDIS_TRADES if kind == "trades" else TARDIS_QUOTES] + [(tardis_trade if kind == "trades" else tardis_quote)(i) for i in range(10)]
    mutate(rows)
    src = tmp_path / f"{kind}.csv"
    src.write_text("\n".join(rows) + "\n")
    report = strict_then_skip(f"tardis-{kind}", src, seed_catalog(tmp_path), line, field, fragment)
    if field:
        assert report.trades.written + report.quotes.written == 9


# -- generic csv -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stamps", "unit", "warns", "first_ns"),
    [
        (["1704067200", "1704067201"], "s", False, 1_704_067_200_000_000_000),
        (["1704067200.5", "1704067201.25"], "s", False, 1_704_067_200_500_000_000),
        (["1704067200123", "1704067201000"], "ms", False, 1_704_067_200_123_000_000),
        (["1704067200000001", "1704067201000000"], "us", False, 1_704_067_200_000_001_000),
        (["1704067200000000007", "1704067201000000000"], "ns", False, 1_704_067_200_000_000_007),
        (["2024-01-01T00:00:00.000000009Z", "2024-01-01T01:00:01.5+01:00"], "iso", False, 1_704_067_200_000_000_009),
        (["2024-01-01 00:00:00", "2024-01-01 00:00:01"], "iso", True, 1_704_067_200_000_000_000),
    ],
)
def test_csv_timestamp_units_are_detected(tmp_path, stamps, unit, warns, first_ns):
    src = tmp_path / "t.csv"
    src.write_text("time,px,qty,side\n" + "".join(f"{s},42000.{i},0.5,{('buy', 'sell')[i]}\n" for i, s in enumerate(stamps)))
    warnings: list[str] = []
    report = import_files("csv", [src], tmp_path / "cat", warn=warnings.append)
    assert f"timestamps in {unit}" in report.files[0].notes[-1]
    assert any("ambiguous" in w or "timezone" in w for w in warnings) == warns
    got = ParquetDataCatalog(str(tmp_path / "cat")).trade_ticks(instrument_ids=[BTC])
    assert got[0].ts_event == first_ns
    assert [t.aggressor_side.name for t in got] == ["BUYER", "SELLER"]


def test_csv_timestamp_out_of_range_is_a_row_error(tmp_path):
    src = tmp_path / "t.csv"
    src.write_text("time,price,size\n1704067200,42000.0,1\n99999999999999,42000.0,1\n")
    with pytest.raises(DataError, match=rf"{src}:3: time: 99999999999999 as seconds is after the year 2262, beyond nanosecond timestamps"):
        import_files("csv", [src], tmp_path / "cat", ts_unit="s")


def test_csv_quotes_with_column_mapping_and_maker_flag(tmp_path):
    quotes = tmp_path / "q.csv"
    quotes.write_text("When,BestBid,BidQty,BestAsk,AskQty\n1704067200123,42000.0,1.5,42000.1,2\n1704067200456,42000.0,1.4,42000.2,2\n")
    import_files("csv", [quotes], tmp_path / "cat", columns={"ts": "When", "bid": "BestBid", "bid_size": "BidQty", "ask": "BestAsk", "ask_size": "AskQty"}, kind="quotes")
    q = ParquetDataCatalog(str(tmp_path / "cat")).quote_ticks(instrument_ids=[BTC])
    assert [(x.ts_event, str(x.ask_price)) for x in q] == [(1704067200123000000, "42000.1"), (1704067200456000000, "42000.2")]
    trades = tmp_path / "t.csv"
    trades.write_text("ts,price,qty,is_buyer_maker\n1704067200000,42000.0,0.1,true\n1704067200001,42000.1,0.1,false\n")
    import_files("csv", [trades], tmp_path / "cat2")
    t = ParquetDataCatalog(str(tmp_path / "cat2")).trade_ticks(instrument_ids=[BTC])
    assert [x.aggressor_side.name for x in t] == ["SELLER", "BUYER"]


def test_csv_errors_name_the_problem(tmp_path):
    src = tmp_path / "x.csv"
    src.write_text("time,amount\n1704067200,1\n")
    with pytest.raises(DataError, match=rf"{src}:1: price: no column for 'price'"):
        import_files("csv", [src], tmp_path / "cat")
    with pytest.raises(DataError, match=r"--columns price=px: no column 'px'"):
        import_files("csv", [src], tmp_path / "cat", columns={"price": "px"})
    src.write_text("ts,price,size,side\n1704067200,42000.0,0.1,buy\n1704067201,42000.0,0.1,maybe\n")
    with pytest.raises(DataError, match=rf"{src}:3: side: unknown side 'maybe'"):
        import_files("csv", [src], tmp_path / "cat")
    src.write_text("ts,bid,bid_size,ask,ask_size\n1704067200,42000.1,1,42000.0,1\n")
    with pytest.raises(DataError, match=rf"{src}:2: bid: crossed or locked quote"):
        import_files("csv", [src], tmp_path / "cat")
    assert not (tmp_path / "cat").exists()


# -- the command line --------------------------------------------------------------------------------


def test_cli_reports_errors_and_counts(tmp_path, capsys):
    rows = [BYBIT_HEADER] + good_bybit_rows(6)
    rows[3] = bybit_row(2, side="Hold")
    src = write_gz(tmp_path / "BTCUSDT2024-01-01.csv.gz", rows)
    catalog = tmp_path / "cat"
    assert data_cli(["import", "bybit-trades", str(src), "--catalog", str(catalog)]) == 1
    err = capsys.readouterr().err
    assert f"error: {src}:4: side: unknown side 'Hold'" in err and "--skip-bad-rows" in err
    assert data_cli(["import", "bybit-trades", str(src), "--catalog", str(catalog), "--skip-bad-rows"]) == 0
    out = capsys.readouterr().out
    assert "6 rows read, 1 rejected" in out and "5 written" in out and "cat.rejects.csv" in out
    assert data_cli(["inspect", "--catalog", str(catalog)]) == 0
    out = capsys.readouterr().out
    assert "real market data" in out and "trade_tick" in out and "rejected rows so far: 1" in out


def test_import_refuses_to_mix_into_a_synthetic_catalog(tmp_path):
    catalog = tmp_path / "synthetic"
    catalog.mkdir()
    (catalog / "SYNTHETIC.json").write_text(json.dumps({"generator": "x"}))
    src = write_gz(tmp_path / "a.csv.gz", [BYBIT_HEADER] + good_bybit_rows(3))
    with pytest.raises(DataError, match="holds a synthetic market"):
        import_files("bybit-trades", [src], catalog)


def test_conflicting_rows_in_an_existing_range_are_refused(tmp_path):
    catalog = tmp_path / "cat"
    import_files("bybit-trades", [write_gz(tmp_path / "a.csv.gz", [BYBIT_HEADER] + good_bybit_rows(10))], catalog)
    before = tree_digest(catalog)
    changed = good_bybit_rows(10)
    changed[5] = bybit_row(5, size="0.020")
    src = write_gz(tmp_path / "b.csv.gz", [BYBIT_HEADER] + changed)
    with pytest.raises(DataError, match=rf"{src}:7: trade id '00000005-.*' at 2024-01-01T00:00:05.100500000Z is also in .*cat/data/trade_tick/.* with other values \(price 42000.5, size 0.020, buyer vs price 42000.5, size 0.010, buyer\)"):
        import_files("bybit-trades", [src], catalog)
    assert tree_digest(catalog) == before
    # A trade the catalog does not have, inside the time range one of its files covers.
    extra = good_bybit_rows(10)
    extra.insert(4, bybit_row(3, ts=f"{T0 + 3}.9000").replace("00000003-aaaa", "99999999-aaaa"))
    src = write_gz(tmp_path / "c.csv.gz", [BYBIT_HEADER] + extra)
    with pytest.raises(DataError, match=rf"{src}:6: 1 new row\(s\) fall inside data already in the catalog \(.*cat/data/trade_tick/"):
        import_files("bybit-trades", [src], catalog)
    assert tree_digest(catalog) == before


def test_unknown_format_and_bad_instrument(tmp_path):
    with pytest.raises(DataError, match="unknown format 'bybit-candles'"):
        import_files("bybit-candles", [], tmp_path / "cat")
    with pytest.raises(DataError, match="--instrument 'BTCUSDT'"):
        import_files("csv", [], tmp_path / "cat", instrument_id="BTCUSDT")


def test_empty_file_imports_nothing_and_says_so(tmp_path):
    src = write_gz(tmp_path / "empty.csv.gz", [BYBIT_HEADER])
    report = import_files("bybit-trades", [src], tmp_path / "cat")
    assert report.rows_read == 0 and report.trades.written == 0
    assert "0 rows read" in report.summary()

