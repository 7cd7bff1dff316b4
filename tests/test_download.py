"""The Bybit archive downloader against a local server: resume, retry, verify, cache, import.

Everything runs offline: :class:`tests.bybit_fixtures.ArchiveServer` serves generated archives on
127.0.0.1 at Bybit's URL paths, and the expected catalog contents come from the fixture generator,
not from the importer.
"""

from __future__ import annotations

import gzip
import io
import json
import sys
import zipfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from auction_trader.config import AuctionConfig
from auction_trader.data.cli import main as data_cli
from auction_trader.data.download import (
    MAX_DAYS,
    OB500,
    TRADES,
    HttpSettings,
    archive_url,
    day_range,
    download,
    resolve_cache_dir,
    verify_archive,
)
from auction_trader.data.errors import DataError
from tests.bybit_fixtures import ArchiveServer, DayFixture, corrupted, make_day, ob500_path, trades_path
from tests.conftest import tree_digest

D1, D2, D3 = date(2024, 1, 1), date(2024, 1, 2), date(2024, 1, 3)
FAST = HttpSettings(timeout=5, retries=3, backoff=0.01, max_backoff=0.05, log_interval=0.0)
BTC = "BTCUSDT-LINEAR.BYBIT"


def fixture_for(day: date) -> DayFixture:
    """Three days that differ where it matters: price level, file order (newest first), RPI column."""
    return {
        D1: lambda: make_day(D1, 1),
        D2: lambda: make_day(D2, 2, mid_price=42_310.0, newest_first=True, rpi=True),
        D3: lambda: make_day(D3, 3, steps=600, mid_price=41_950.0),
    }[day]()


@pytest.fixture
def server():
    with ArchiveServer() as s:
        for day in (D1, D2, D3):
            s.put_day(fixture_for(day))
        yield s


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    return tmp_path / "catalog", tmp_path / "cache"


def run(server: ArchiveServer, dirs, first: date, last: date, http: HttpSettings = FAST, skip_bad_rows: bool = False) -> int:
    catalog, cache = dirs
    return download(
        str(first), str(last), catalog, base_url=server.url, cache_dir=cache, skip_bad_rows=skip_bad_rows, config=AuctionConfig(), http=http,
    )


def cached_file(cache: Path, kind: str, day: date) -> Path:
    name = trades_path(day) if kind == "trades" else ob500_path(day)
    return cache / ("bybit-trades" if kind == "trades" else "bybit-ob500") / "BTCUSDT" / name.rsplit("/", 1)[1]


def catalog_trades(catalog: Path) -> list[tuple]:
    ticks = ParquetDataCatalog(str(catalog)).trade_ticks(instrument_ids=[BTC])
    ts = [t.ts_event for t in ticks]
    assert ts == sorted(ts)
    return sorted(
        (t.ts_event, int(t.price.as_decimal() * 10), int(t.size.as_decimal() * 1000), int(t.aggressor_side), t.trade_id.value) for t in ticks
    )


def catalog_quotes(catalog: Path) -> list[tuple]:
    ticks = ParquetDataCatalog(str(catalog)).quote_ticks(instrument_ids=[BTC])
    return [
        (q.ts_event, int(q.bid_price.as_decimal() * 10), int(q.bid_size.as_decimal() * 1000), int(q.ask_price.as_decimal() * 10), int(q.ask_size.as_decimal() * 1000))
        for q in ticks
    ]


def expected_trades(*days: date) -> list[tuple]:
    return sorted((t.ts_ns, t.price, t.size, t.aggressor, t.trade_id) for d in days for t in fixture_for(d).trades)


def expected_quotes(*days: date) -> list[tuple]:
    return [(q.ts_ns, q.bid, q.bid_size, q.ask, q.ask_size) for d in days for q in fixture_for(d).l1]


def summary_rows(stdout: str) -> dict[tuple[str, str], list[str]]:
    """(day, kind) -> the summary table's cells."""
    rows = {}
    for line in stdout.partition("\nproblems:")[0].splitlines():
        cells = line.split()
        if len(cells) >= 3 and cells[0][:4].isdigit() and cells[1] in ("trades", "ob500"):
            rows[(cells[0], cells[1])] = cells[2:]
    return rows


# -- 1. end to end --------------------------------------------------------------------------------


def test_two_days_download_and_import_exactly(server, dirs, capsys):
    catalog, cache = dirs
    assert run(server, dirs, D1, D2) == 0
    out, err = capsys.readouterr()

    assert catalog_trades(catalog) == expected_trades(D1, D2)
    assert catalog_quotes(catalog) == expected_quotes(D1, D2)
    assert len(expected_trades(D1, D2)) > 6_000 and len(expected_quotes(D1, D2)) > 2_000

    for day in (D1, D2):
        fx = fixture_for(day)
        for kind, body in (("trades", fx.trades_gz), ("ob500", fx.ob_zip)):
            path = cached_file(cache, kind, day)
            assert path.read_bytes() == body
            record = json.loads(path.with_name(path.name + ".json").read_text())
            assert record["size"] == len(body) == record["content_length"]
            assert record["etag"] == server.files[trades_path(day) if kind == "trades" else ob500_path(day)].etag
            assert len(record["sha256"]) == 64
            assert not path.with_name(path.name + ".part").exists()

    rows = summary_rows(out)
    assert set(rows) == {(str(d), k) for d in (D1, D2) for k in ("trades", "ob500")}
    assert all(cells[0] == "downloaded" for cells in rows.values())
    t1 = rows[(str(D1), "trades")]
    n1 = len(fixture_for(D1).trades)
    assert t1[3:7] == [f"{n1:,}", f"{n1:,}", "0", "0"]  # read, written, in catalog, rejected
    q2 = rows[(str(D2), "ob500")]
    assert q2[3:5] == [f"{len(fixture_for(D2).messages):,}", f"{len(fixture_for(D2).l1):,}"]
    assert "2 of 2 day(s) imported" in out

    hits = list(server.hits)
    assert len(hits) == 4 and all(h.status == 200 and h.range is None for h in hits)
    assert all(h.user_agent.startswith("auction-trader/") for h in hits)
    assert "2024-01-01 trades: received" in err  # plain progress lines: stderr is not a terminal here


def test_urls_follow_bybits_published_layout():
    assert archive_url(TRADES, "BTCUSDT", D1) == "https://public.bybit.com/trading/BTCUSDT/BTCUSDT2024-01-01.csv.gz"
    assert archive_url(OB500, "BTCUSDT", D1) == "https://quote-saver.bycsi.com/orderbook/linear/BTCUSDT/2024-01-01_BTCUSDT_ob500.data.zip"
    assert archive_url(OB500, "BTCUSDT", D1, "http://m:8/x/") == "http://m:8/x/orderbook/linear/BTCUSDT/2024-01-01_BTCUSDT_ob500.data.zip"


# -- 2./3. interrupted and resumed transfers -------------------------------------------------------


def test_cut_off_transfer_resumes_with_a_range_request(server, dirs):
    catalog, cache = dirs
    path = trades_path(D1)
    server.cut_once(path, after=40_000)
    assert run(server, dirs, D1, D1) == 0

    first, second = server.hits_for(path)
    assert (first.status, first.range) == (200, None)
    assert (second.status, second.range, second.if_range) == (206, "bytes=40000-", server.files[path].etag)
    assert cached_file(cache, "trades", D1).read_bytes() == fixture_for(D1).trades_gz
    assert catalog_trades(catalog) == expected_trades(D1)


def test_part_left_by_a_killed_run_is_resumed_not_restarted(server, dirs):
    catalog, cache = dirs
    body = fixture_for(D1).ob_zip
    part = cached_file(cache, "ob500", D1).with_name(f"{D1}_BTCUSDT_ob500.data.zip.part")
    part.parent.mkdir(parents=True)
    part.write_bytes(body[:20_001])  # killed before it could even save the server's validators

    assert run(server, dirs, D1, D1) == 0
    (hit,) = server.hits_for(ob500_path(D1))
    assert (hit.status, hit.range, hit.if_range) == (206, "bytes=20001-", None)
    assert cached_file(cache, "ob500", D1).read_bytes() == body
    assert not part.exists()
    assert catalog_quotes(catalog) == expected_quotes(D1)


def test_a_failed_run_leaves_a_part_that_the_next_run_resumes_with_if_range(server, dirs, capsys):
    catalog, cache = dirs
    path = trades_path(D1)
    server.cut_once(path, after=30_000)
    assert run(server, dirs, D1, D1, http=HttpSettings(retries=0, backoff=0.01)) == 1
    out = capsys.readouterr().out
    assert "giving up" in out and "30,000 bytes kept" in out
    assert not (catalog / "data" / "trade_tick").exists()  # the day was incomplete: nothing imported

    assert run(server, dirs, D1, D1) == 0
    resumed = server.hits_for(path)[-1]
    assert (resumed.status, resumed.range, resumed.if_range) == (206, "bytes=30000-", server.files[path].etag)
    assert cached_file(cache, "trades", D1).read_bytes() == fixture_for(D1).trades_gz
    assert catalog_trades(catalog) == expected_trades(D1)


def test_a_file_changed_upstream_is_fetched_whole_not_spliced(server, dirs):
    catalog, cache = dirs
    path = trades_path(D1)
    server.cut_once(path, after=30_000)
    assert run(server, dirs, D1, D1, http=HttpSettings(retries=0, backoff=0.01)) == 1
    replacement = make_day(D1, 99)  # Bybit re-published the day: new bytes, new ETag
    server.put(path, replacement.trades_gz, modified=1_704_240_000)

    assert run(server, dirs, D1, D1) == 0
    resumed = server.hits_for(path)[-1]
    assert resumed.range == "bytes=30000-" and resumed.status == 200  # If-Range did not match
    assert cached_file(cache, "trades", D1).read_bytes() == replacement.trades_gz
    assert catalog_trades(catalog) == sorted((t.ts_ns, t.price, t.size, t.aggressor, t.trade_id) for t in replacement.trades)


def test_a_complete_part_answered_with_416_is_verified_and_kept(server, dirs):
    catalog, cache = dirs
    body = fixture_for(D1).trades_gz
    part = cached_file(cache, "trades", D1).with_name(f"BTCUSDT{D1}.csv.gz.part")
    part.parent.mkdir(parents=True)
    part.write_bytes(body)  # killed between the last byte and the rename

    assert run(server, dirs, D1, D1) == 0
    hits = server.hits_for(trades_path(D1))
    assert [(h.status, h.range) for h in hits] == [(416, f"bytes={len(body)}-")]
    assert cached_file(cache, "trades", D1).read_bytes() == body
    assert catalog_trades(catalog) == expected_trades(D1)


def test_a_complete_but_corrupt_part_is_downloaded_again(server, dirs):
    _, cache = dirs
    body = fixture_for(D1).trades_gz
    part = cached_file(cache, "trades", D1).with_name(f"BTCUSDT{D1}.csv.gz.part")
    part.parent.mkdir(parents=True)
    part.write_bytes(corrupted(body, "flip"))

    assert run(server, dirs, D1, D1) == 0
    assert [(h.status, h.range) for h in server.hits_for(trades_path(D1))] == [(416, f"bytes={len(body)}-"), (200, None)]
    assert cached_file(cache, "trades", D1).read_bytes() == body


# -- retries ------------------------------------------------------------------------------------


def test_server_errors_are_retried_and_then_succeed(server, dirs):
    catalog, _ = dirs
    server.fail(ob500_path(D1), 503, times=2)
    assert run(server, dirs, D1, D1) == 0
    assert [h.status for h in server.hits_for(ob500_path(D1))] == [503, 503, 200]
    assert catalog_quotes(catalog) == expected_quotes(D1)


def test_persistent_server_errors_fail_that_day_only(server, dirs, capsys):
    catalog, _ = dirs
    server.fail(trades_path(D2), 502, times=100)
    assert run(server, dirs, D1, D3, http=HttpSettings(retries=2, backoff=0.01)) == 1
    out = capsys.readouterr().out
    assert len(server.hits_for(trades_path(D2))) == 3  # one try and two retries
    assert summary_rows(out)[(str(D2), "trades")][0] == "failed"
    assert "giving up after 3 attempt(s) without progress: HTTP 502" in out
    assert catalog_trades(catalog) == expected_trades(D1, D3)
    assert catalog_quotes(catalog) == expected_quotes(D1, D3)


def test_an_unreachable_host_fails_every_file_with_the_reason(dirs, capsys, tmp_path):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    catalog, cache = dirs
    code = download(str(D1), str(D1), catalog, base_url=f"http://127.0.0.1:{port}", cache_dir=cache, http=HttpSettings(retries=1, backoff=0.01))
    out = capsys.readouterr().out
    assert code == 1
    assert {c[0] for c in summary_rows(out).values()} == {"failed"}
    assert "cannot reach" in out and "0 of 1 day(s) imported" in out


# -- 4. corrupt archives ------------------------------------------------------------------------


def test_an_archive_corrupt_once_is_downloaded_again(server, dirs, capsys):
    catalog, cache = dirs
    server.corrupt(ob500_path(D1), "flip", times=1)
    assert run(server, dirs, D1, D1) == 0
    err = capsys.readouterr().err
    assert [(h.status, h.range) for h in server.hits_for(ob500_path(D1))] == [(200, None), (200, None)]
    assert f"{D1}_BTCUSDT_ob500.data.zip is corrupt" in err
    assert cached_file(cache, "ob500", D1).read_bytes() == fixture_for(D1).ob_zip
    assert not cached_file(cache, "ob500", D1).with_name(f"{D1}_BTCUSDT_ob500.data.zip.corrupt").exists()
    assert catalog_quotes(catalog) == expected_quotes(D1)


@pytest.mark.parametrize(("kind", "how"), [("trades", "flip"), ("ob500", "truncate"), ("trades", "truncate")])
def test_an_archive_corrupt_every_time_fails_its_day_only(server, dirs, capsys, kind, how):
    catalog, cache = dirs
    path = trades_path(D2) if kind == "trades" else ob500_path(D2)
    server.corrupt(path, how, times=None)
    assert run(server, dirs, D1, D3) == 1
    out = capsys.readouterr().out

    assert len(server.hits_for(path)) == 2  # the first try and one fresh download
    rows = summary_rows(out)
    assert rows[(str(D2), kind)][0] == "failed"
    other = "ob500" if kind == "trades" else "trades"
    assert rows[(str(D2), other)][0] == "downloaded" and rows[(str(D2), other)][3] == "-"  # fetched, not imported
    bad = cached_file(cache, kind, D2)
    problem = next(line for line in out.splitlines() if line.startswith(f"  {D2} {kind}"))
    assert server.url + path in problem and str(bad) in problem and "corrupt again" in problem
    assert bad.with_name(bad.name + ".corrupt").exists() and not bad.exists()
    assert catalog_trades(catalog) == expected_trades(D1, D3)
    assert catalog_quotes(catalog) == expected_quotes(D1, D3)
    assert "2 of 3 day(s) imported" in out


def test_a_cached_file_damaged_on_disk_is_downloaded_again(server, dirs):
    _, cache = dirs
    assert run(server, dirs, D1, D1) == 0
    path = cached_file(cache, "trades", D1)
    path.write_bytes(corrupted(path.read_bytes(), "flip"))
    assert run(server, dirs, D1, D1) == 0
    assert len(server.hits_for(trades_path(D1))) == 2
    assert path.read_bytes() == fixture_for(D1).trades_gz


# -- 5. missing days -------------------------------------------------------------------------------


def test_a_missing_day_is_reported_and_the_others_import(server, dirs, capsys):
    catalog, cache = dirs
    server.make_missing(ob500_path(D2))
    assert run(server, dirs, D1, D3) == 1
    out = capsys.readouterr().out
    rows = summary_rows(out)
    assert rows[(str(D2), "ob500")][0] == "missing"
    assert rows[(str(D2), "trades")][0] == "downloaded"
    assert f"no archive at {server.url}{ob500_path(D2)} (HTTP 404)" in out
    assert "not imported: the day's other archive is missing or failed" in out
    assert cached_file(cache, "trades", D2).read_bytes() == fixture_for(D2).trades_gz  # kept for a later run
    assert catalog_trades(catalog) == expected_trades(D1, D3)
    assert catalog_quotes(catalog) == expected_quotes(D1, D3)


def test_a_day_the_server_never_had_is_missing_in_both_archives(server, dirs, capsys):
    catalog, _ = dirs
    assert run(server, dirs, D3, D3 + timedelta(days=1)) == 1
    rows = summary_rows(capsys.readouterr().out)
    day4 = str(D3 + timedelta(days=1))
    assert rows[(day4, "trades")][0] == rows[(day4, "ob500")][0] == "missing"
    assert catalog_trades(catalog) == expected_trades(D3)


# -- rows the importer refuses ------------------------------------------------------------------


def test_a_malformed_row_fails_the_days_import_unless_bad_rows_are_skipped(server, dirs, capsys):
    catalog, _ = dirs
    lines = gzip.decompress(fixture_for(D2).trades_gz).decode().splitlines()
    fields = lines[100].split(",")
    fields[4] = "4231O.5"  # a letter O for a zero, in the price
    lines[100] = ",".join(fields)
    bad_id = fields[6]
    server.put(trades_path(D2), gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0))

    assert run(server, dirs, D1, D2) == 1
    out = capsys.readouterr().out
    assert f"BTCUSDT{D2}.csv.gz:101: price: not a number: '4231O.5'" in out
    assert "not imported: the day's trades import failed" in out
    assert catalog_trades(catalog) == expected_trades(D1)
    assert catalog_quotes(catalog) == expected_quotes(D1)  # nothing of the bad day landed

    assert run(server, dirs, D1, D2, skip_bad_rows=True) == 0
    out = capsys.readouterr().out
    rows = summary_rows(out)
    n = len(fixture_for(D2).trades)
    assert rows[(str(D2), "trades")][3:7] == [f"{n:,}", f"{n - 1:,}", "0", "1"]  # read, written, in catalog, rejected
    assert "rejected rows are listed in" in out
    assert catalog_trades(catalog) == [t for t in expected_trades(D1, D2) if t[4] != bad_id]
    assert catalog_quotes(catalog) == expected_quotes(D1, D2)


# -- 6. second run ------------------------------------------------------------------------------


def test_a_second_run_downloads_and_writes_nothing(server, dirs, capsys):
    catalog, cache = dirs
    assert run(server, dirs, D1, D2) == 0
    capsys.readouterr()
    requests, before = server.count(), tree_digest(catalog)

    assert run(server, dirs, D1, D2) == 0
    out = capsys.readouterr().out
    assert server.count() == requests == 4
    assert tree_digest(catalog) == before
    rows = summary_rows(out)
    assert all(cells[0] == "cached" for cells in rows.values()) and len(rows) == 4
    n = len(fixture_for(D1).trades)
    assert rows[(str(D1), "trades")][3:6] == [f"{n:,}", "0", f"{n:,}"]  # read, written, already in the catalog

    # The cache alone suffices: no server at all.
    catalog2 = catalog.parent / "catalog2"
    code = download(str(D1), str(D2), catalog2, base_url="http://127.0.0.1:9", cache_dir=cache, http=FAST)
    assert code == 0
    assert catalog_trades(catalog2) == expected_trades(D1, D2)


def test_an_intact_archive_placed_in_the_cache_by_hand_is_used(server, dirs):
    catalog, cache = dirs
    for kind, body in (("trades", fixture_for(D1).trades_gz), ("ob500", fixture_for(D1).ob_zip)):
        path = cached_file(cache, kind, D1)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
    assert run(server, dirs, D1, D1) == 0
    assert server.count() == 0
    assert catalog_quotes(catalog) == expected_quotes(D1)


# -- 7. arguments -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "last", "message"),
    [
        ("2024-01-03", "2024-01-01", "--from 2024-01-03 is after --to 2024-01-01"),
        ("2024-1-01", "2024-01-02", "--from '2024-1-01': expected a UTC day as YYYY-MM-DD"),
        ("2024-01-01", "20240102", "--to '20240102': expected a UTC day as YYYY-MM-DD"),
        ("2024-02-30", "2024-03-01", "--from '2024-02-30': not a calendar day"),
        ("yesterday", "2024-03-01", "--from 'yesterday': expected"),
        ("2022-01-01", "2023-01-02", f"is 367 days; at most {MAX_DAYS} per call"),
    ],
)
def test_bad_dates_are_refused_before_any_request(server, dirs, first, last, message):
    catalog, cache = dirs
    with pytest.raises(DataError) as info:
        download(first, last, catalog, base_url=server.url, cache_dir=cache, http=FAST)
    assert message in str(info.value)
    assert server.count() == 0 and not cache.exists()


def test_future_days_and_bad_base_urls_are_refused():
    tomorrow = datetime.now(UTC).date() + timedelta(days=1)
    with pytest.raises(DataError, match="is in the future"):
        download(str(tomorrow), str(tomorrow), Path("unused"))
    with pytest.raises(DataError, match="--base-url 'ftp://x': expected an http"):
        download(str(D1), str(D1), Path("unused"), base_url="ftp://x")
    assert len(day_range("2024-02-28", "2024-03-01")) == 3  # leap day included
    assert len(day_range("2023-01-01", "2023-12-31")) == 365


def test_cache_directory_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("AUCTION_TRADER_CACHE", str(tmp_path / "env"))
    assert resolve_cache_dir(tmp_path / "explicit") == tmp_path / "explicit"
    assert resolve_cache_dir(None) == tmp_path / "env"
    monkeypatch.delenv("AUCTION_TRADER_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert resolve_cache_dir(None) == tmp_path / "home" / ".cache" / "auction-trader"


# -- 8. the command line ------------------------------------------------------------------------


def test_cli_download_end_to_end(server, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("AUCTION_TRADER_CACHE", str(tmp_path / "env-cache"))
    catalog = tmp_path / "cli-catalog"
    args = ["download", "--from", str(D1), "--to", str(D2), "--base-url", server.url, "--catalog", str(catalog)]
    assert data_cli(args) == 0
    out = capsys.readouterr().out
    assert "2 of 2 day(s) imported" in out
    assert cached_file(tmp_path / "env-cache", "ob500", D2).read_bytes() == fixture_for(D2).ob_zip
    assert catalog_trades(catalog) == expected_trades(D1, D2)
    assert catalog_quotes(catalog) == expected_quotes(D1, D2)

    assert data_cli([*args, "--cache", str(tmp_path / "flag-cache")]) == 0  # --cache wins over the env
    assert cached_file(tmp_path / "flag-cache", "trades", D1).read_bytes() == fixture_for(D1).trades_gz
    assert server.count() == 8


def test_cli_reports_bad_dates_as_an_error(server, tmp_path, capsys):
    code = data_cli(["download", "--from", "2024-01-05", "--to", "2024-01-01", "--base-url", server.url, "--catalog", str(tmp_path / "c"), "--cache", str(tmp_path / "k")])
    assert code == 1
    assert capsys.readouterr().err.strip() == "error: --from 2024-01-05 is after --to 2024-01-01; give the first day first"


# -- verification details ------------------------------------------------------------------------


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "body", "problem"),
    [
        ("a.csv.gz", gzip.compress(b"x" * 1000)[:-3], "truncated gzip stream"),
        ("a.csv.gz", gzip.compress(b"x" * 1000) + b"junk", "corrupt gzip data after 1 complete member"),
        ("a.csv.gz", b"hello", "corrupt gzip data after 0"),
        ("a.csv.gz", b"", "empty file"),
        ("a.zip", _zip({"a": b"1", "b": b"2"}), "exactly one file in the zip archive, found 2"),
        ("a.zip", _zip({"a": b"1" * 5000})[:-10], "not a readable zip archive"),
        ("a.zip", corrupted(_zip({"a": bytes(range(256)) * 400}), "flip"), ""),
    ],
    # Named, not derived from the bodies: gzip and zip stamp the current time into them, and the
    # parallel workers must collect the same test ids.
    ids=["gz-truncated", "gz-trailing-junk", "gz-not-gzip", "gz-empty", "zip-two-members", "zip-truncated", "zip-flipped-byte"],
)
def test_verification_rejects_damaged_archives(tmp_path, name, body, problem):
    path = tmp_path / name
    path.write_bytes(body)
    with pytest.raises(DataError, match=problem or "."):
        verify_archive(path)


def test_verification_accepts_intact_archives(tmp_path):
    multi = tmp_path / "multi.csv.gz"
    multi.write_bytes(gzip.compress(b"a,b\n") + gzip.compress(b"1,2\n"))  # multi-member gzip, as gzip(1) allows
    verify_archive(multi)
    verify_archive(multi, expected_size=multi.stat().st_size)
    with pytest.raises(DataError, match="but the server announced"):
        verify_archive(multi, expected_size=multi.stat().st_size + 1)
    single = tmp_path / "one.data.zip"
    single.write_bytes(fixture_for(D1).ob_zip)
    verify_archive(single)


# -- progress -----------------------------------------------------------------------------------


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("tty", [True, False])
def test_progress_is_a_bar_on_a_terminal_and_plain_lines_elsewhere(monkeypatch, tty):
    from auction_trader.data.download import _Progress

    stream = _Terminal() if tty else io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    with _Progress("2024-01-01 trades", 2**20, 2**18, interval=0.0) as progress:
        progress.update(2**18)
        progress.update(2**19)
    text = stream.getvalue()
    if tty:
        assert "2024-01-01 trades: 100%" in text and "1.00M/1.00M" in text and "\n" in text  # the finished bar stays
        assert "download:" not in text
    else:
        assert text.splitlines() == [
            "download: 2024-01-01 trades: receiving 1.0 MiB from byte 262,144",
            *[line for line in text.splitlines()[1:3] if " of 1.0 MiB (" in line],
            "download: 2024-01-01 trades: received 768.0 KiB in 0.0s",
        ]
        assert "512.0 KiB of 1.0 MiB (50%)" in text and "1.0 MiB of 1.0 MiB (100%)" in text


def test_a_file_another_process_is_downloading_is_waited_for(server, dirs, capsys):
    import fcntl
    import threading
    import time

    _, cache = dirs
    target = cached_file(cache, "trades", D1)
    target.parent.mkdir(parents=True)
    codes: list[int] = []
    with target.with_name(target.name + ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # as another download run would hold it
        worker = threading.Thread(target=lambda: codes.append(run(server, dirs, D1, D1)))
        worker.start()
        err, deadline = "", time.monotonic() + 20
        while "waiting" not in err and time.monotonic() < deadline:
            time.sleep(0.02)
            err += capsys.readouterr().err
        assert f"BTCUSDT{D1}.csv.gz: another process is downloading it; waiting" in err
        time.sleep(0.1)
        assert worker.is_alive() and server.count(trades_path(D1)) == 0
        fcntl.flock(lock, fcntl.LOCK_UN)
    worker.join(30)
    assert codes == [0] and server.count(trades_path(D1)) == 1


def test_a_forbidden_file_fails_at_once_with_a_hint(server, dirs, capsys):
    server.fail(ob500_path(D1), 403, times=1)
    assert run(server, dirs, D1, D1) == 1
    out = capsys.readouterr().out
    assert [h.status for h in server.hits_for(ob500_path(D1))] == [403]  # not retried
    assert "HTTP 403 Forbidden (some hosts answer 403 for files that do not exist)" in out
    assert summary_rows(out)[(str(D1), "ob500")][0] == "failed"


def test_if_range_uses_a_strong_etag_else_last_modified():
    from auction_trader.data.download import _Validators

    assert _Validators("u", '"abc"', "Mon, 01 Jan 2024 00:00:00 GMT").if_range() == '"abc"'
    assert _Validators("u", 'W/"abc"', "Mon, 01 Jan 2024 00:00:00 GMT").if_range() == "Mon, 01 Jan 2024 00:00:00 GMT"
    assert _Validators("u").if_range() is None
