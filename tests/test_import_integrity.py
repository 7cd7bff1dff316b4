"""Imports that can never corrupt a catalog (issue 9): what each failure class is refused with.

Every case: the strict import fails naming file, line and field and leaves the catalog byte for
byte as it was; skipping rejects exactly the bad row and lands the rest; and the catalog reads back
with Nautilus's ``ParquetDataCatalog`` (whose reader aborts the process on out-of-range values or
non-ASCII ids, so reading it is itself the check).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from auction_trader.data.cli import main as data_cli
from auction_trader.data.errors import DataError
from auction_trader.data.importing import import_files
from tests.conftest import tree_digest
from tests.test_import_errors import (
    BYBIT_HEADER,
    T0,
    TARDIS_QUOTES,
    TARDIS_TRADES,
    binance_quote,
    binance_trade,
    bybit_row,
    good_bybit_rows,
    ob_message,
    seed_catalog,
    tardis_quote,
    write_gz,
    write_zip,
)

BTC = "BTCUSDT-LINEAR.BYBIT"
CSV_TRADES = "time,price,size,side,id"


def readable(catalog: Path) -> tuple[int, int]:
    """(trades, quotes) as Nautilus's own reader returns them."""
    if not (catalog / "data").is_dir():
        return 0, 0
    nautilus = ParquetDataCatalog(str(catalog))
    return len(nautilus.trade_ticks()), len(nautilus.quote_ticks())


def write(path: Path, lines: list[str]) -> Path:
    if path.name.endswith(".gz"):
        return write_gz(path, lines)
    if path.name.endswith(".zip"):
        return write_zip(path, lines)
    path.write_text("\n".join(lines) + "\n")
    return path


def csv_trade(i: int, price: str | None = None, size: str = "0.010", ts: str | None = None, trade_id: str | None = None) -> str:
    return f"{ts or T0 * 1000 + i},{price or f'{42000 + i / 10:.1f}'},{size},{('buy', 'sell')[i % 2]},{trade_id or f'c{i}'}"


def tardis_row(i: int, *, price: str | None = None, amount: str | None = None, ts: str | None = None, local: str | None = None, trade_id: str | None = None) -> str:
    return (
        f"bybit,BTCUSDT,{ts or 1704067200000000 + i * 1000},{local or 1704067200050000 + i * 1000},{trade_id or f't{i}'},"
        f"buy,{price or f'{42000 + i / 10:.1f}'},{amount or f'0.{i + 1:03d}'}"
    )


def ob_lines(n: int = 10, **last) -> list[str]:
    lines = [ob_message("snapshot", 1_704_067_200_000, [["42000.0", "1.5"]], [["42000.1", "3"]])]
    lines += [ob_message("delta", 1_704_067_200_000 + 100 * i, [["42000.0", f"{1 + i}.5"]], []) for i in range(1, n)]
    return lines


def check_case(tmp_path: Path, fmt: str, name: str, lines: list[str], line: int, field: str, fragment: str, good: int, **kw) -> None:
    """The shared assertion of every case (see the module doc)."""
    src = write(tmp_path / name, lines)
    catalog = seed_catalog(tmp_path)
    before = tree_digest(catalog)
    counts = readable(catalog)
    with pytest.raises(DataError) as info:
        import_files(fmt, [src], catalog, **kw)
    message = str(info.value)
    assert f"{src}:{line}: {field}: " in message and fragment in message, message
    assert tree_digest(catalog) == before
    assert readable(catalog) == counts
    # The command line says the same, exit status 1, no traceback.
    assert data_cli(["import", fmt, str(src), "--catalog", str(catalog), *_cli_args(kw)]) == 1
    assert tree_digest(catalog) == before
    report = import_files(fmt, [src], catalog, skip_bad_rows=True, **kw)
    assert [(r.line, r.field) for r in report.rejects] == [(line, field)]
    assert report.trades.written + report.quotes.written == good
    trades, quotes = readable(catalog)
    assert trades + quotes == counts[0] + counts[1] + good


def _cli_args(kw: dict) -> list[str]:
    out = []
    if "instrument_id" in kw:
        out += ["--instrument", kw["instrument_id"]]
    if "ts_unit" in kw:
        out += ["--ts-unit", kw["ts_unit"]]
    return out


# -- 1. numbers out of range ------------------------------------------------------------------------

RANGE_CASES = {
    "bybit price 1e20": ("bybit-trades", "a.csv.gz", [BYBIT_HEADER] + [bybit_row(i, price="1e20" if i == 3 else None) for i in range(8)], 5, "price", "1e+20 is above 199999.8, the highest price BTCUSDT-LINEAR.BYBIT allows", 7),
    "bybit price below the minimum": ("bybit-trades", "a.csv.gz", [BYBIT_HEADER] + [bybit_row(i, price="0.05" if i == 2 else None) for i in range(8)], 4, "price", "0.05 is below 0.1, the lowest price BTCUSDT-LINEAR.BYBIT allows", 7),
    "bybit size 1e20": ("bybit-trades", "a.csv.gz", [BYBIT_HEADER] + [bybit_row(i, size="1e20" if i == 6 else "0.010") for i in range(8)], 8, "size", "1e+20 is above 9007199254740.991, the largest value held exactly at 3 decimal(s)", 7),
    "binance size 99999999999999999": ("binance-feed", "f.gz", [binance_trade(i, q="99999999999999999" if i == 4 else "0.310") for i in range(8)], 5, "q", "is above 9007199254740.991, the largest value held exactly at 3 decimal(s)", 7),
    "binance quote ask 1e300": ("binance-feed", "f.gz", [binance_quote(i, a="1e300" if i == 1 else "63960.00") for i in range(6)], 2, "a", "1e+300 is above 199999.8", 5),
    "ob500 ask level 1e25": ("bybit-ob500", "x_ob500.data.zip", ob_lines()[:3] + [ob_message("delta", 1_704_067_200_300, [["42000.0", "9"]], [["42000.1", "0"], ["1e25", "2"]]), ob_message("delta", 1_704_067_200_400, [["42000.0", "8"]], [["1e25", "0"], ["42000.1", "3"]])] + ob_lines()[5:], 4, "a.price", "1e+25 is above 199999.8", 9),
    "tardis price 1e19 (was clamped)": ("tardis-trades", "t.csv", [TARDIS_TRADES] + [tardis_row(i, price="1e19" if i == 5 else None) for i in range(9)], 7, "price", "1e+19 is above 199999.8", 8),
    "tardis quote size 5e13": ("tardis-quotes", "q.csv", [TARDIS_QUOTES] + [tardis_quote(i) if i != 2 else tardis_quote(i).replace(",3.25", ",5e13") for i in range(6)], 4, "bid_amount", "50000000000000.0 is above 9007199254740.991", 5),
    "csv size below one lot": ("csv", "c.csv", [CSV_TRADES] + [csv_trade(i, size="0.0000001" if i == 1 else "0.010") for i in range(5)], 3, "size", "1e-07 is below 0.001, the instrument's lot", 4),
    "csv price of another instrument above Nautilus's range": ("csv", "x.csv", [CSV_TRADES] + [csv_trade(i, price="2e13" if i == 2 else "1.5") for i in range(5)], 4, "price", "above 17014118346046.0, the highest price Nautilus's fixed-point values hold", 4),
}


@pytest.mark.parametrize("case", sorted(RANGE_CASES))
def test_numbers_out_of_range_are_refused(tmp_path, case):
    fmt, name, lines, line, field, fragment, good = RANGE_CASES[case]
    kw = {"instrument_id": "XRPUSDT-LINEAR.BYBIT"} if "another instrument" in case else {}
    check_case(tmp_path, fmt, name, lines, line, field, fragment, good, **kw)


# -- 2. identifiers Nautilus cannot hold ------------------------------------------------------------

ID_CASES = {
    "bybit id with an undecodable byte": ("bybit-trades", "a.csv", [BYBIT_HEADER] + [bybit_row(i) for i in range(6)], 4, "line", "not valid UTF-8 text (byte 0xff", 5),
    "bybit id with an accent": ("bybit-trades", "a.csv.gz", [BYBIT_HEADER] + [bybit_row(i).replace("-aaaa-", "-aéaa-") if i == 1 else bybit_row(i) for i in range(6)], 3, "trdMatchID", "contains the non-ASCII character 'é'", 5),
    "tardis id in Chinese (aborted the process)": ("tardis-trades", "t.csv", [TARDIS_TRADES] + [tardis_row(i, trade_id="交易1" if i == 4 else None) for i in range(6)], 6, "id", "contains the non-ASCII character '交'", 5),
    "binance string id with a control character": ("binance-feed", "f.gz", [binance_trade(i, t="ab\u0007c" if i == 2 else 5182006711 + i) for i in range(5)], 3, "t", "contains a control character", 4),
    "csv id longer than Nautilus holds": ("csv", "c.csv", [CSV_TRADES] + [csv_trade(i, trade_id="x" * 37 if i == 3 else None) for i in range(6)], 5, "id", "is 37 characters long; Nautilus trade ids hold at most 36", 5),
}


@pytest.mark.parametrize("case", sorted(ID_CASES))
def test_identifiers_nautilus_cannot_hold_are_refused(tmp_path, case):
    fmt, name, lines, line, field, fragment, good = ID_CASES[case]
    if "undecodable" in case:
        src = tmp_path / name
        text = ("\n".join(lines) + "\n").encode()
        src.write_bytes(text.replace(b"00000002-aaaa", b"00000002-a\xffaa"))
        lines = None
    if lines is None:
        catalog = seed_catalog(tmp_path)
        before = tree_digest(catalog)
        with pytest.raises(DataError, match=rf"{re.escape(str(src))}:{line}: {field}: .*{re.escape(fragment)}"):
            import_files(fmt, [src], catalog)
        assert tree_digest(catalog) == before
        report = import_files(fmt, [src], catalog, skip_bad_rows=True)
        assert [(r.line, r.field) for r in report.rejects] == [(line, field)] and report.trades.written == good
        assert readable(catalog) == (5 + good, 0)
        return
    check_case(tmp_path, fmt, name, lines, line, field, fragment, good)


def test_an_instrument_id_that_is_not_ascii_is_refused(tmp_path):
    src = write_gz(tmp_path / "a.csv.gz", [BYBIT_HEADER] + good_bybit_rows(3))
    with pytest.raises(DataError, match="--instrument 'BTCÜSDT-LINEAR.BYBIT': an instrument id is printable ASCII"):
        import_files("bybit-trades", [src], tmp_path / "cat", instrument_id="BTCÜSDT-LINEAR.BYBIT")
    assert not (tmp_path / "cat").exists()


# -- 3. time units -----------------------------------------------------------------------------------

TIME_CASES = {
    "binance trade time in seconds": ("binance-feed", "f.gz", [binance_trade(i, T=1721347202 + i if i == 2 else 1721347202812 + i) for i in range(5)], 3, "T", "1721347204 as milliseconds is 1970-01-20T22:09:07.204000000Z, before the plausible window 2009-01-03T18:15:05Z", "the values look like seconds", 4),
    "binance quote time far too large": ("binance-feed", "f.gz", [binance_quote(i, T=10**20 if i == 3 else 1721347202812 + i) for i in range(5)], 4, "T", "100000000000000000000 as milliseconds is after the year 2262", "", 4),
    "ob500 cts in microseconds": ("bybit-ob500", "x_ob500.data.zip", ob_lines()[:4] + [ob_message("delta", 1_704_067_200_400_000, [["42000.0", "7"]], [])] + ob_lines()[5:], 5, "cts", "1704067200400000 as milliseconds is after the year 2262", "the values look like microseconds", 9),
    "tardis timestamp in milliseconds": ("tardis-trades", "t.csv", [TARDIS_TRADES] + [tardis_row(i, ts="1704067200003" if i == 3 else None) for i in range(6)], 5, "timestamp", "1704067200003 as microseconds is 1970-01-20T17:21:07.200003000Z, before the plausible window", "the values look like milliseconds", 5),
    "tardis local timestamp in nanoseconds": ("tardis-quotes", "q.csv", [TARDIS_QUOTES] + [tardis_quote(i) if i != 1 else tardis_quote(i).replace("1704067200051000", "1704067200051000000") for i in range(5)], 3, "local_timestamp", "1704067200051000000 as microseconds is after the year 2262, beyond nanosecond timestamps", "the values look like nanoseconds", 4),
    "bybit timestamp in milliseconds": ("bybit-trades", "a.csv.gz", [BYBIT_HEADER] + [bybit_row(i, ts=f"{(T0 + i) * 1000}" if i == 4 else None) for i in range(7)], 6, "timestamp", "1704067204000 as seconds is after the year 2262", "the values look like milliseconds", 6),
    "csv in the far future": ("csv", "c.csv", [CSV_TRADES] + [csv_trade(i, ts="4102444800000" if i == 1 else None) for i in range(5)], 3, "time", "4102444800000 as milliseconds is 2100-01-01T00:00:00.000000000Z, after the plausible window", "", 4),
}


@pytest.mark.parametrize("case", sorted(TIME_CASES))
def test_timestamps_outside_the_plausible_window_name_the_unit(tmp_path, case):
    fmt, name, lines, line, field, fragment, hint, good = TIME_CASES[case]
    kw = {"ts_unit": "ms"} if fmt == "csv" else {}
    check_case(tmp_path, fmt, name, lines, line, field, fragment, good, **kw)
    if hint:
        (tmp_path / "again").mkdir()
        with pytest.raises(DataError, match=hint):
            import_files(fmt, [tmp_path / name], seed_catalog(tmp_path / "again"), **kw)


def test_the_plausible_window_is_configurable_and_mixed_units_are_caught(tmp_path):
    lines = [CSV_TRADES, csv_trade(0, ts="1704067200"), csv_trade(1, ts="1704067201000"), csv_trade(2, ts="1704067202000")]
    src = write(tmp_path / "mixed.csv", lines)
    warnings: list[str] = []
    with pytest.raises(DataError, match=rf"{src}:2: time: 1704067200 as milliseconds is 1970-01-20.*the values look like seconds"):
        import_files("csv", [src], tmp_path / "cat", warn=warnings.append)
    assert any("ambiguous" in w for w in warnings)
    assert not (tmp_path / "cat").exists()
    ok = write(tmp_path / "ok.csv", [CSV_TRADES] + [csv_trade(i) for i in range(3)])
    assert data_cli(["import", "csv", str(ok), "--catalog", str(tmp_path / "cat"), "--earliest", "2024-06-01"]) == 1
    assert data_cli(["import", "csv", str(ok), "--catalog", str(tmp_path / "cat"), "--earliest", "2023-06-01", "--latest", "2024-06-01"]) == 0


# -- 4. JSON types -----------------------------------------------------------------------------------

JSON_CASES = {
    "binance price true": ("binance-feed", "f.gz", [binance_trade(i, p=True if i == 1 else f"{63960 + i / 10:.2f}") for i in range(5)], 2, "p", "not a number: JSON true", 4),
    "binance size null": ("binance-feed", "f.gz", [binance_trade(i, q=None if i == 3 else "0.310") for i in range(5)], 4, "q", "not a number: JSON null", 4),
    "binance price as a list": ("binance-feed", "f.gz", [binance_trade(i, p=[63960] if i == 2 else "63960.00") for i in range(5)], 3, "p", "not a number: JSON [63960]", 4),
    "binance time as text": ("binance-feed", "f.gz", [binance_trade(i, T="1721347202812" if i == 0 else 1721347202812 + i) for i in range(5)], 1, "T", 'not an integer timestamp in milliseconds: "1721347202812"', 4),
    "binance time as a float": ("binance-feed", "f.gz", [binance_quote(i, T=1.7e12 if i == 2 else 1721347202812 + i) for i in range(5)], 3, "T", "not an integer timestamp in milliseconds: 1700000000000.0", 4),
    "binance id true": ("binance-feed", "f.gz", [binance_trade(i, t=True if i == 4 else 5182006711 + i) for i in range(6)], 5, "t", "not a trade id: true", 5),
    "binance maker flag as text": ("binance-feed", "f.gz", [binance_trade(i, m="true" if i == 1 else False) for i in range(4)], 2, "m", 'unknown side flag "true"', 3),
    "binance bid as an object": ("binance-feed", "f.gz", [binance_quote(i, b={"px": 1} if i == 1 else "63959.90") for i in range(4)], 2, "b", 'not a number: JSON {"px": 1}', 3),
    "ob500 level size true": ("bybit-ob500", "x_ob500.data.zip", ob_lines()[:3] + [ob_message("delta", 1_704_067_200_300, [["42000.0", True]], [])] + ob_lines()[4:], 4, "b.size", "not a number: JSON true", 9),
    "ob500 cts as text": ("bybit-ob500", "x_ob500.data.zip", ob_lines()[:2] + [ob_lines()[2].replace('"cts": 1704067200200', '"cts": "1704067200200"')] + ob_lines()[3:], 3, "cts", 'not an integer timestamp in milliseconds: "1704067200200"', 9),
    "ob500 type as a number": ("bybit-ob500", "x_ob500.data.zip", ob_lines()[:5] + [ob_lines()[5].replace('"type": "delta"', '"type": 5')] + ob_lines()[6:], 6, "type", "unknown message type 5", 9),
}


@pytest.mark.parametrize("case", sorted(JSON_CASES))
def test_json_values_of_the_wrong_type_are_refused_not_coerced(tmp_path, case):
    fmt, name, lines, line, field, fragment, good = JSON_CASES[case]
    check_case(tmp_path, fmt, name, lines, line, field, fragment, good)


# -- 5. duplicates within an import ----------------------------------------------------------------


def _trades(catalog: Path) -> list[tuple]:
    return [(t.ts_event, str(t.price), str(t.size), t.aggressor_side.name, t.trade_id.value) for t in ParquetDataCatalog(str(catalog)).trade_ticks()]


def _quotes(catalog: Path) -> list[tuple]:
    return [(q.ts_event, str(q.bid_price), str(q.ask_price), str(q.bid_size), str(q.ask_size)) for q in ParquetDataCatalog(str(catalog)).quote_ticks()]


def test_a_repeated_trade_id_in_one_file_is_written_once_and_counted(tmp_path):
    rows = good_bybit_rows(10)
    src = write_gz(tmp_path / "a.csv.gz", [BYBIT_HEADER] + rows[:6] + [rows[5]] + rows[6:] + [rows[9]])
    report = import_files("bybit-trades", [src], tmp_path / "cat")
    assert (report.trades.written, report.trades.repeated) == (10, 2)
    assert "2 duplicated within this import (written once)" in report.summary()
    assert len(_trades(tmp_path / "cat")) == 10 and len({t[4] for t in _trades(tmp_path / "cat")}) == 10


def test_the_same_capture_twice_and_overlapping_recordings_give_exactly_the_unique_ticks(binance_feeds, tmp_path):
    feed = binance_feeds[0]
    once = tmp_path / "once"
    import_files("binance-feed", [feed], once)
    twice = tmp_path / "twice"
    report = import_files("binance-feed", [feed, feed], twice)
    assert tree_digest(twice) == tree_digest(once)
    assert report.trades.repeated == 974 and report.quotes.repeated == report.quotes.written == 7_113
    # Two recordings of the same stream that overlap by a third: as the whole, tick for tick.
    lines = __import__("gzip").decompress(feed.read_bytes()).decode().splitlines()
    a = write_gz(tmp_path / "a.gz", lines[: len(lines) * 2 // 3])
    b = write_gz(tmp_path / "b.gz", lines[len(lines) // 3 :])
    both = tmp_path / "both"
    import_files("binance-feed", [b, a], both)
    assert _trades(both) == _trades(once) and _quotes(both) == _quotes(once)
    assert np.all(np.diff([q[0] for q in _quotes(both)]) >= 0)  # no back and forth in time


def test_overlapping_files_without_trade_ids_are_merged_by_their_rows(tmp_path):
    # Identical fills in one millisecond are distinct trades; the same fill in two files is one.
    rows = [f"{T0 * 1000 + i // 3},42000.{i % 2},0.001,buy" for i in range(30)]
    whole = write(tmp_path / "whole.csv", ["time,price,size,side"] + rows)
    a = write(tmp_path / "a.csv", ["time,price,size,side"] + rows[:20])
    b = write(tmp_path / "b.csv", ["time,price,size,side"] + rows[10:][::-1])  # newest first
    import_files("csv", [whole], tmp_path / "one")
    report = import_files("csv", [a, b], tmp_path / "two")
    assert report.trades.written == 30 and report.trades.repeated == 10
    assert _trades(tmp_path / "two") == _trades(tmp_path / "one")
    again = import_files("csv", [b], tmp_path / "two")
    assert (again.trades.written, again.trades.duplicates) == (0, 20)


def test_overlapping_files_that_disagree_are_refused_by_name(tmp_path):
    rows = good_bybit_rows(12)
    a = write_gz(tmp_path / "a.csv.gz", [BYBIT_HEADER] + rows[:8])
    other = [bybit_row(i).replace("-aaaa-", "-ffff-") for i in range(4, 12)]  # another source's ids
    b = write_gz(tmp_path / "b.csv.gz", [BYBIT_HEADER] + other)
    with pytest.raises(DataError, match=r"overlap in time but hold different ticks") as info:
        import_files("bybit-trades", [a, b], tmp_path / "cat")
    assert f"{a}:" in str(info.value) and f"{b}:" in str(info.value)
    assert not (tmp_path / "cat").exists()


# -- 8. messages, not tracebacks ------------------------------------------------------------------


def test_a_catalog_path_that_is_a_file_is_named(tmp_path, capsys):
    not_dir = tmp_path / "cat"
    not_dir.write_text("x")
    src = write_gz(tmp_path / "a.csv.gz", [BYBIT_HEADER] + good_bybit_rows(3))
    for argv in (
        ["import", "bybit-trades", str(src), "--catalog", str(not_dir)],
        ["inspect", "--catalog", str(not_dir)],
        ["synth", "--catalog", str(not_dir), "--hours", "0.1", "--seed", "1"],
        ["import", "bybit-trades", str(src), "--catalog", str(not_dir / "sub")],
    ):
        assert data_cli(argv) == 1
        err = capsys.readouterr().err
        assert err.startswith("error: ") and str(not_dir) in err and "Traceback" not in err
    assert not_dir.read_text() == "x"


def test_input_paths_that_are_not_files_are_named(tmp_path, capsys):
    assert data_cli(["import", "bybit-trades", str(tmp_path), "--catalog", str(tmp_path / "cat")]) == 1
    assert f"error: {tmp_path}: is a directory, not a file" in capsys.readouterr().err
    assert data_cli(["import", "bybit-trades", str(tmp_path / "missing.csv"), "--catalog", str(tmp_path / "cat")]) == 1
    assert "missing.csv: no such file" in capsys.readouterr().err
    assert not (tmp_path / "cat").exists()


def test_a_read_only_catalog_is_refused_with_a_message(tmp_path, capsys):
    catalog = seed_catalog(tmp_path)
    before = tree_digest(catalog)
    src = write_gz(tmp_path / "a.csv.gz", [BYBIT_HEADER] + good_bybit_rows(3))
    with _read_only(catalog):
        assert data_cli(["import", "bybit-trades", str(src), "--catalog", str(catalog)]) == 1
        err = capsys.readouterr().err
        assert f"cannot write to the catalog {catalog.absolute()}" in err and "Traceback" not in err
    assert tree_digest(catalog) == before


class _read_only:
    """chmod 555 (or, for root, who ignores modes, the immutable attribute); skip where neither works."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self):
        import os
        import subprocess

        if os.geteuid() != 0:
            self.path.chmod(0o555)
            self.undo = lambda: self.path.chmod(0o755)
            return self
        if subprocess.run(["chattr", "+i", str(self.path)], capture_output=True, check=False).returncode != 0:
            pytest.skip("running as root where the immutable attribute is not available: a read-only catalog cannot be made")
        self.undo = lambda: subprocess.run(["chattr", "-i", str(self.path)], check=True)
        return self

    def __exit__(self, *exc) -> None:
        self.undo()


def test_features_out_that_cannot_be_written_fails_before_the_run(tmp_path, capsys):
    from auction_trader.features.__main__ import main as features_cli

    catalog = seed_catalog(tmp_path)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    assert features_cli(["--catalog", str(catalog), "--out", str(out_dir)]) == 1
    assert f"--out {out_dir}: is a directory" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert features_cli(["--catalog", str(catalog), "--out", str(blocker / "f.parquet")]) == 1
    err = capsys.readouterr().err
    assert f"{blocker} is a file, so no directory can be made there" in err and "loaded" not in err


def test_a_utf8_bom_before_the_header_is_ignored_and_missing_columns_show_the_header_plainly(tmp_path):
    src = tmp_path / "bom.csv"
    src.write_bytes(b"\xef\xbb\xbf" + ("\n".join([BYBIT_HEADER] + good_bybit_rows(4)) + "\n").encode())
    assert import_files("bybit-trades", [src], tmp_path / "cat").trades.written == 4
    broken = tmp_path / "broken.csv"
    broken.write_bytes(b"\xef\xbb\xbftimestamp,symbol,side,price\n1704067200.0,BTCUSDT,Buy,42000.0\n")
    with pytest.raises(DataError, match=r"broken.csv:1: missing column\(s\) size \(the header has 4 column\(s\): 'timestamp', 'symbol', 'side', 'price'\)"):
        import_files("bybit-trades", [broken], tmp_path / "cat2")


def test_rejects_are_listed_once_however_often_a_file_is_imported(tmp_path):
    rows = good_bybit_rows(6)
    rows[2] = bybit_row(2, side="Hold")
    src = write_gz(tmp_path / "a.csv.gz", [BYBIT_HEADER] + rows)
    for _ in range(3):
        report = import_files("bybit-trades", [src], tmp_path / "cat", skip_bad_rows=True)
    lines = report.rejects_file.read_text().splitlines()
    assert len(lines) == 2 and "unknown side 'Hold'" in lines[1]


def test_a_continuation_file_starting_inside_the_last_burst_completes_it(tmp_path):
    """Bybit splits files at a time boundary, not between trades of one millisecond."""
    burst = [bybit_row(100 + i, ts=f"{T0 + 50}.5000") for i in range(5)]  # five fills, one instant
    first = write_gz(tmp_path / "1.csv.gz", [BYBIT_HEADER] + good_bybit_rows(10) + burst[:3])
    second = write_gz(tmp_path / "2.csv.gz", [BYBIT_HEADER] + burst[2:] + [bybit_row(200 + i, ts=f"{T0 + 60 + i}.0") for i in range(5)])
    catalog = tmp_path / "cat"
    import_files("bybit-trades", [first], catalog)
    report = import_files("bybit-trades", [second], catalog)
    assert (report.trades.written, report.trades.duplicates) == (7, 1)
    ids = [t[4][:8] for t in _trades(catalog)]
    assert ids == [f"{i:08d}" for i in range(10)] + [f"{100 + i:08d}" for i in range(5)] + [f"{200 + i:08d}" for i in range(5)]
    assert data_cli(["inspect", "--catalog", str(catalog), "--quick"]) == 0
    # And in one command, either order.
    import_files("bybit-trades", [second, first], tmp_path / "one")
    assert _trades(tmp_path / "one") == _trades(catalog)


def test_the_report_names_every_count_and_json_catalog_label_survives(tmp_path):
    # The synthetic label is json the tools read; a broken one is named, not a traceback.
    catalog = tmp_path / "cat"
    catalog.mkdir()
    (catalog / "SYNTHETIC.json").write_text("{not json")
    src = write_gz(tmp_path / "a.csv.gz", [BYBIT_HEADER] + good_bybit_rows(3))
    with pytest.raises(DataError, match=r"SYNTHETIC.json: unreadable synthetic-market label"):
        import_files("bybit-trades", [src], catalog)
    (catalog / "SYNTHETIC.json").write_text(json.dumps({"generator": "x"}))
    with pytest.raises(DataError, match="holds a synthetic market"):
        import_files("bybit-trades", [src], catalog)


# -- streaming: the chunk sizes never change the result -------------------------------------------


def test_chunk_and_piece_sizes_do_not_change_what_an_import_writes(tmp_path, monkeypatch, binance_feeds):
    """The same files imported with tiny chunks, pieces and order windows give the same catalog
    as with the defaults: newest-first files, rows out of order, Tardis's own arrival order."""
    from auction_trader.data import formats, merge, validate

    rows = good_bybit_rows(300)
    rows[150] = bybit_row(150, ts=f"{T0 + 999}.0")  # far in the future: only this row is dropped
    rows[40] = bybit_row(40, ts=f"{T0 + 3}.0")  # back in time
    bybit = write_gz(tmp_path / "desc.csv.gz", [BYBIT_HEADER] + rows[::-1])
    tardis = tmp_path / "t.csv"
    jitter = [tardis_row(i, ts=str(1704067200000000 + i * 1000 + (i % 7) * 1500)) for i in range(300)]
    write(tardis, [TARDIS_TRADES] + jitter)
    lines = __import__("gzip").decompress(binance_feeds[0].read_bytes()).decode().splitlines()[:3000]
    feed = write_gz(tmp_path / "feed.gz", lines)

    def run(name: str) -> dict:
        catalog = tmp_path / name
        import_files("bybit-trades", [bybit], catalog, skip_bad_rows=True)
        import_files("tardis-trades", [tardis], catalog.with_name(name + "-t"))
        import_files("binance-feed", [feed, feed], catalog.with_name(name + "-b"))
        return {k: tree_digest(catalog.with_name(name + s)) for k, s in (("bybit", ""), ("tardis", "-t"), ("binance", "-b"))}

    default = run("default")
    monkeypatch.setattr(formats, "CHUNK_ROWS", 7)
    monkeypatch.setattr(merge, "PIECE_ROWS", 13)
    monkeypatch.setattr(validate, "ORDER_BLOCK", 5)
    assert run("tiny") == default
    stored = _trades(tmp_path / "default")
    assert len(stored) == 298 and [t[0] for t in stored] == sorted(t[0] for t in stored)


def test_a_read_only_subdirectory_does_not_stop_a_commit_half_way(tmp_path, capsys):
    """The old catalog is swapped out whole, so a directory that cannot be written in (read-only,
    immutable) neither blocks the new files nor leaves a half-moved catalog; its leftovers are
    reported and removed by a later writer."""
    catalog = seed_catalog(tmp_path)
    sub = next((catalog / "data" / "trade_tick").iterdir())
    src = write_gz(tmp_path / "a.csv.gz", [BYBIT_HEADER] + good_bybit_rows(4))
    with _read_only(sub) as locked:
        report = import_files("bybit-trades", [src], catalog)
        assert report.trades.written == 4
        assert "the commit is complete, but its leftovers could not be removed" in capsys.readouterr().err
        assert readable(catalog) == (9, 0)
        # The read-only directory left with the old tree; once it can be removed, a writer does.
        locked.path = next(catalog.glob(".txn/*/next/data/trade_tick/*"))
    import_files("bybit-trades", [src], catalog)
    assert not (catalog / ".txn").exists() and readable(catalog) == (9, 0)
