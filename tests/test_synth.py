"""The synthetic market: deterministic, well-formed, calibrated, with the auction structure the
strategy trades, and a ``synth`` command that never touches real data."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from auction_trader.config import AuctionConfig
from auction_trader.data.catalog import SYNTHETIC_MARKER, CatalogWriter, format_inventory, inventory
from auction_trader.data.cli import main
from auction_trader.data.errors import DataError
from auction_trader.data.synth import (
    BALANCE,
    FAILED_DOWN,
    FAILED_UP,
    GENERATOR,
    TREND_DOWN,
    TREND_UP,
    fair_path,
    generate,
    parse_start,
    schedule,
    synth_command,
    value_area_bps,
    write_synthetic,
)
from auction_trader.data.ticks import BUYER, SELLER, TradeBatch
from auction_trader.instrument import BTCUSDT
from tests.conftest import tree_digest

START = "2024-01-01T00:00:00Z"
START_NS = parse_start(START)
MINUTE = 60_000_000_000
HOUR = 60 * MINUTE


@pytest.fixture(scope="module")
def market2():
    return generate(2.0, 42, START_NS)


@pytest.fixture(scope="module")
def market10():
    return generate(10.0, 42, START_NS)


def _mtimes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in sorted(root.rglob("*")) if p.is_file()}


def _published_mid_at(quotes, ts: np.ndarray) -> np.ndarray:
    i = np.searchsorted(quotes.ts_event, ts, "right") - 1
    return (quotes.bid[i] + quotes.ask[i]) / 2.0


# -- determinism ----------------------------------------------------------------------------------


def test_same_seed_writes_byte_identical_catalogs_and_other_seeds_differ(tmp_path):
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        write_synthetic(tmp_path / name, generate(1.5, seed, START_NS), AuctionConfig())
    a, b, c = (tree_digest(tmp_path / n) for n in "abc")
    assert len(a) == 4  # trades, quotes, instrument, SYNTHETIC.json
    assert a == b
    assert SYNTHETIC_MARKER in a and a[SYNTHETIC_MARKER] != c[SYNTHETIC_MARKER]
    trades_a = [v for k, v in a.items() if k.startswith("data/trade_tick")]
    trades_c = [v for k, v in c.items() if k.startswith("data/trade_tick")]
    assert trades_a and trades_a != trades_c


def test_marker_names_the_market_and_holds_no_wall_clock(market2):
    marker = market2.marker()
    assert marker["generator"] == GENERATOR
    assert (marker["seed"], marker["hours"], marker["start"]) == (42, 2.0, "2024-01-01T00:00:00.000000000Z")
    assert marker["counts"] == {"trades": len(market2.trades), "quotes": len(market2.quotes)}
    assert [r["kind"] for r in marker["regimes"]] == [r.kind for r in market2.regimes]
    # Every date in the label lies inside the market: nothing records when it was generated.
    text = json.dumps(marker)
    dates = re.findall(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", text)
    assert dates and all("2024-01-01T00:00:00" <= d <= "2024-01-01T02:00:00" for d in dates)


# -- invariants -----------------------------------------------------------------------------------


def test_quotes_are_well_formed(market2):
    q = market2.quotes
    assert len(q) > 2 * 3600 * 5
    assert np.all(q.bid < q.ask)
    assert np.all(q.bid > 0)
    assert np.all(q.bid_size > 0) and np.all(q.ask_size > 0)
    assert np.all(np.diff(q.ts_event) >= 0)
    assert np.all(q.ts_event % 1_000_000 == 0)
    assert q.ts_event[0] == START_NS and q.ts_event[-1] < START_NS + 2 * HOUR
    same = (
        (q.bid[1:] == q.bid[:-1]) & (q.ask[1:] == q.ask[:-1])
        & (q.bid_size[1:] == q.bid_size[:-1]) & (q.ask_size[1:] == q.ask_size[:-1])
    )
    assert not same.any()
    spread = q.ask - q.bid
    assert np.mean(spread == 1) >= 0.90
    assert spread.max() > 1  # wider for a moment, sometimes


def test_trades_are_well_formed(market2):
    t = market2.trades
    assert len(t) > 2 * 3600 * 10
    assert np.all(t.price > 0) and np.all(t.size >= 1)
    assert np.all(np.diff(t.ts_event) >= 0)
    assert np.all(t.ts_event % 1_000_000 == 0)
    assert t.ts_event[0] > market2.quotes.ts_event[0]  # no trade before the first quote
    assert t.ts_event[-1] < START_NS + 2 * HOUR
    assert set(np.unique(t.aggressor).tolist()) == {BUYER, SELLER}
    assert len(set(t.trade_id.tolist())) == len(t)


def test_trades_happen_at_the_touch_of_the_true_book(market2):
    t, book = market2.trades, market2.book
    state = book.state_at(t.ts_event)
    buy = t.aggressor == BUYER
    through = np.where(buy, t.price - book.ask[state], book.bid[state] - t.price)
    assert through.min() == 0  # never inside the spread or on the wrong side
    assert through.max() <= 2  # sweeps go at most two ticks through
    assert 0.80 <= np.mean(through == 0) < 1.0


def test_trades_stay_near_the_published_quotes(market2):
    """The published book is up to ~100 ms stale: close to the trades, not identical."""
    t, q = market2.trades, market2.quotes
    i = np.searchsorted(q.ts_event, t.ts_event, "left") - 1  # latest quote strictly before
    assert i.min() >= 0
    off = np.where(t.aggressor == BUYER, t.price - q.ask[i], q.bid[i] - t.price)
    assert np.abs(off).max() <= 150  # 15 USDT, 2.5 bps: never wildly off the book
    assert np.mean(np.abs(off) <= 3) >= 0.90
    sign = np.where(t.price >= q.ask[i], 1, np.where(t.price <= q.bid[i], -1, 0))
    truth = np.where(t.aggressor == BUYER, 1, -1)
    agree = np.mean(sign == truth)
    assert 0.85 <= agree < 0.995  # inferred flow is informative, and sometimes wrong


# -- regimes --------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 42])
def test_a_10h_schedule_starts_in_balance_and_holds_every_kind(seed):
    regimes = schedule(10.0, seed, START_NS)
    assert regimes[0].kind == BALANCE and regimes[0].minutes >= 60
    assert regimes[0].start == START_NS and regimes[-1].end == START_NS + 10 * HOUR
    assert all(a.end == b.start for a, b in zip(regimes, regimes[1:]))
    kinds = [r.kind for r in regimes]
    trends = sum(k in (TREND_UP, TREND_DOWN) for k in kinds)
    failed = sum(k in (FAILED_UP, FAILED_DOWN) for k in kinds)
    assert trends >= 2 and failed >= 2 and kinds.count(BALANCE) >= 5
    later = [r.kind for r in regimes if r.start >= START_NS + 4 * HOUR]  # after the 4 h warm-up
    assert any(k.startswith("trend") for k in later) and any(k.startswith("failed") for k in later)
    assert all(a.kind == BALANCE or b.kind == BALANCE for a, b in zip(regimes, regimes[1:]))


def test_trends_move_value_and_balances_do_not():
    directional, balance = [], []
    for seed in range(8):
        x, segments = fair_path(10.0, seed)
        for kind, a, b in segments:
            net = x[b - 1] - (x[a - 1] if a else 0.0)
            if kind == BALANCE:
                balance.append(abs(net))
            elif kind in (TREND_UP, TREND_DOWN):
                directional.append(net if kind == TREND_UP else -net)
    assert np.mean(directional) > 4 * np.mean(balance)
    assert np.mean(np.array(directional) > 20.0) >= 0.8


def test_failed_breakouts_poke_beyond_the_value_edge_and_return():
    checked = 0
    for seed in range(8):
        x, segments = fair_path(10.0, seed)
        for kind, a, b in segments:
            if kind not in (FAILED_UP, FAILED_DOWN) or b == len(x):
                continue
            # The same 4 h (or, when price is already outside it, 1 h) area the generator aims at.
            val, vah = value_area_bps(x[max(0, a - 144_000) : a : 10])
            if not val <= x[a - 1] <= vah:
                val, vah = value_area_bps(x[max(0, a - 36_000) : a : 10])
            seg = x[a:b]
            if kind == FAILED_UP:
                assert seg.max() > vah + 2.0 and seg[-1] < vah
            else:
                assert seg.min() < val - 2.0 and seg[-1] > val
            checked += 1
    assert checked >= 15


def test_the_data_reflects_the_regimes(market10):
    t, q = market10.trades, market10.quotes
    nets: dict[str, list[float]] = {}
    buys: dict[str, list[float]] = {}
    for r in market10.regimes:
        mid = _published_mid_at(q, np.array([r.start, r.end - 1]))
        nets.setdefault(r.kind, []).append(math.log(mid[1] / mid[0]) * 1e4)
        a, b = np.searchsorted(t.ts_event, [r.start, r.end])
        buys.setdefault(r.kind, []).append(float(np.mean(t.aggressor[a:b] == BUYER)))
    assert nets[TREND_UP] and nets[TREND_DOWN]
    assert min(nets[TREND_UP]) > 20 and max(nets[TREND_DOWN]) < -20
    trend_move = np.mean(np.abs(nets[TREND_UP] + nets[TREND_DOWN]))
    assert trend_move > 2 * np.mean(np.abs(nets[BALANCE]))
    assert min(buys[TREND_UP]) > 0.55 and max(buys[TREND_DOWN]) < 0.45
    assert all(0.46 < f < 0.54 for f in buys[BALANCE])


def test_busier_in_imbalance_than_in_balance(market10):
    t = market10.trades
    prints = np.concatenate([[True], t.ts_event[1:] != t.ts_event[:-1]])
    rate = {"balance": [], "imbalance": []}
    for r in market10.regimes:
        a, b = np.searchsorted(t.ts_event, [r.start, r.end])
        rate["balance" if r.kind == BALANCE else "imbalance"].append(prints[a:b].sum() / (r.minutes * 60))
    assert np.mean(rate["imbalance"]) > 1.4 * np.mean(rate["balance"])


# -- calibration ----------------------------------------------------------------------------------


def test_calibration_figures_fall_in_the_documented_ranges(market10):
    s = market10.stats()
    assert 12 <= s["trades_per_s"] <= 23  # Bybit's BTCUSDT day
    assert 4.5 <= s["prints_per_s"] <= 8
    assert 0.50 <= s["same_ms_share"] <= 0.75
    assert 0.04 <= s["multi_level_print_share"] <= 0.12
    q = s["fill_size_btc"]
    assert 0.001 <= q["10"] <= 0.002 and 0.002 <= q["25"] <= 0.003
    assert 0.007 <= q["50"] <= 0.016 and 0.05 <= q["75"] <= 0.08
    assert 0.22 <= q["90"] <= 0.27 and 1.1 <= q["99"] <= 2.0
    assert 0.09 <= s["mean_fill_btc"] <= 0.12
    assert 0.94 <= s["spread_1tick_share"] <= 0.99
    assert 2.7 <= s["l1_size_btc"]["50"] <= 20
    assert 3.0 <= s["mid_1m_sd_bps"] <= 6.0
    assert 5 <= s["quotes_per_s"] <= 10
    assert 0.3 <= s["price_changes_per_s"] <= 3
    sizes = market10.trades.size
    assert sizes.min() == 1 and sizes.dtype == np.int64


def test_quote_imbalance_leans_with_order_flow_but_imperfectly(market10):
    t, q = market10.trades, market10.quotes
    minute = (t.ts_event - START_NS) // MINUTE
    signed = np.where(t.aggressor == BUYER, t.size, -t.size).astype(float)
    of_norm = np.bincount(minute, weights=signed) / np.bincount(minute, weights=t.size.astype(float))
    closes = START_NS + (np.arange(len(of_norm)) + 1) * MINUTE - 1_000_000
    i = np.searchsorted(q.ts_event, closes, "right") - 1
    qimb = (q.bid_size[i] - q.ask_size[i]) / (q.bid_size[i] + q.ask_size[i])
    buyers, sellers = of_norm > 0.1, of_norm < -0.1
    assert buyers.sum() > 50 and sellers.sum() > 50
    assert np.mean(qimb[buyers] > 0.1) > np.mean(qimb[sellers] > 0.1) + 0.1
    assert 0.05 < np.corrcoef(qimb, of_norm)[0, 1] < 0.6


# -- the synth command ----------------------------------------------------------------------------


def test_synth_command_is_idempotent_and_overwrites_only_when_asked(tmp_path, capsys):
    catalog = tmp_path / "synthetic"
    config = AuctionConfig()
    assert synth_command(catalog, 1.0, 3, START, False, config) == 0
    first = capsys.readouterr().out
    assert "SYNTHETIC" in first and "1-minute mid log-return sd" in first
    before, digest = _mtimes(catalog), tree_digest(catalog)

    assert synth_command(catalog, 1.0, 3, START, False, config) == 0
    assert "up to date" in capsys.readouterr().out
    assert _mtimes(catalog) == before and tree_digest(catalog) == digest

    with pytest.raises(DataError, match="other settings.*--overwrite"):
        synth_command(catalog, 1.0, 4, START, False, config)
    assert tree_digest(catalog) == digest

    assert synth_command(catalog, 1.0, 4, START, True, config) == 0
    assert json.loads((catalog / SYNTHETIC_MARKER).read_text())["seed"] == 4
    assert tree_digest(catalog) != digest
    fresh = tmp_path / "fresh"
    write_synthetic(fresh, generate(1.0, 4, START_NS), config)
    assert tree_digest(catalog) == tree_digest(fresh)  # replaced wholly, nothing of seed 3 left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fresh", "synthetic"]  # no staging left


def test_synth_command_repairs_an_incomplete_copy_of_itself(tmp_path, capsys):
    catalog = tmp_path / "s"
    config = AuctionConfig()
    synth_command(catalog, 0.5, 5, START, False, config)
    digest = tree_digest(catalog)
    for path in (catalog / "data" / "quote_tick").rglob("*.parquet"):
        path.unlink()
    assert synth_command(catalog, 0.5, 5, START, False, config) == 0
    assert "incomplete" in capsys.readouterr().out
    assert tree_digest(catalog) == digest


def test_synth_command_never_touches_real_data(tmp_path):
    catalog = tmp_path / "real"
    batch = TradeBatch(
        np.array([START_NS, START_NS + 1_000_000], np.int64),
        np.array([600_000, 600_001], np.int64),
        np.array([5, 7], np.int64),
        np.array([BUYER, SELLER], np.uint8),
        np.array(["a", "b"], dtype=object),
    )
    with CatalogWriter(catalog, BTCUSDT) as writer:
        writer.add_trades(batch)
        writer.commit()
    digest = tree_digest(catalog)
    for overwrite in (False, True):
        with pytest.raises(DataError, match="not synthetic.*another --catalog"):
            synth_command(catalog, 1.0, 1, START, overwrite, AuctionConfig())
    assert tree_digest(catalog) == digest


@pytest.mark.parametrize(
    ("hours", "seed", "start", "message"),
    [
        (0.0, 1, START, "positive"),
        (-2.0, 1, START, "positive"),
        (float("nan"), 1, START, "positive"),
        (10_000.0, 1, START, "at most"),
        (1.0, -1, START, "non-negative"),
        (1.0, 1, "yesterday", "ISO 8601"),
    ],
)
def test_synth_command_rejects_bad_arguments(tmp_path, hours, seed, start, message):
    with pytest.raises(DataError, match=message):
        synth_command(tmp_path / "c", hours, seed, start, False, AuctionConfig())
    assert not (tmp_path / "c").exists()


def test_cli_reports_errors_as_exit_code_1(tmp_path, capsys):
    assert main(["synth", "--catalog", str(tmp_path / "c"), "--hours", "0", "--seed", "1"]) == 1
    assert "error:" in capsys.readouterr().err


# -- reading back ---------------------------------------------------------------------------------


def test_the_catalog_reads_back_with_nautilus(tmp_path, market2):
    from nautilus_trader.persistence.catalog import ParquetDataCatalog

    write_synthetic(tmp_path / "c", market2, AuctionConfig())
    catalog = ParquetDataCatalog(str(tmp_path / "c"))
    trades, quotes = catalog.trade_ticks(), catalog.quote_ticks()
    assert len(trades) == len(market2.trades) and len(quotes) == len(market2.quotes)
    k = len(trades) // 2
    assert trades[k].ts_event == market2.trades.ts_event[k]
    assert round(trades[k].price.as_double() * 10) == market2.trades.price[k]
    assert round(trades[k].size.as_double() * 1000) == market2.trades.size[k]
    assert int(trades[k].aggressor_side) == market2.trades.aggressor[k]
    m = len(quotes) // 2
    assert quotes[m].ts_event == market2.quotes.ts_event[m]
    assert round(quotes[m].bid_price.as_double() * 10) == market2.quotes.bid[m]
    assert round(quotes[m].ask_size.as_double() * 1000) == market2.quotes.ask_size[m]
    assert [str(i.id) for i in catalog.instruments()] == [BTCUSDT.instrument_id]
    report = format_inventory(inventory(tmp_path / "c"))
    assert "SYNTHETIC" in report and "seed 42" in report
    assert market2.end_ns - market2.start_ns == 2 * HOUR
