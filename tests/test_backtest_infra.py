"""Backtest infrastructure: fills, slippage, funding, margin, money, outputs, determinism, CLI.

Everything runs on small synthetic catalogs (1-2 h) with a scripted strategy that submits tagged
orders at fixed times (tests/scripted_strategy.py). Expected values are computed independently from
the catalog's quotes and trades, not from the engine's own records.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import sys
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from auction_trader.backtest import FILL_COLUMNS, TRADE_COLUMNS, FundingLedger, build_engine, run_engine, run_single
from auction_trader.backtest.funding import FUNDING_INTERVAL_NS, funding_instants
from auction_trader.config import AuctionConfig
from auction_trader.data.synth import generate, write_synthetic
from auction_trader.features import compute, load_ticks
from auction_trader.instrument import BTCUSDT_ID
from auction_trader.store import ExecutionStore
from tests.conftest import REPO_ROOT
from tests.scripted_strategy import Action, ReportingScriptedStrategy, ScriptedStrategy

TICK = Decimal("0.1")
MIN = 60_000_000_000


def ns(text: str) -> int:
    return int(np.datetime64(text, "ns").astype(np.int64))


def D(x) -> Decimal:
    return Decimal(repr(float(x)))


@pytest.fixture(scope="module")
def cat2h(tmp_path_factory) -> Path:
    """06:45-08:45 UTC: two hours that cross the 08:00 funding instant."""
    path = tmp_path_factory.mktemp("cat") / "two_hours"
    write_synthetic(path, generate(2, 11, ns("2024-01-01T06:45")))
    return path


@pytest.fixture(scope="module")
def catf(tmp_path_factory) -> Path:
    """Two 45-minute segments, 07:30-08:15 and 15:30-16:15 UTC: around two funding instants."""
    path = tmp_path_factory.mktemp("cat") / "funding"
    write_synthetic(path, generate(0.75, 5, ns("2024-01-01T07:30")))
    write_synthetic(path, generate(0.75, 6, ns("2024-01-01T15:30")))
    return path


class Quotes:
    """The catalog's quotes and trades, for independent checks."""

    def __init__(self, catalog: Path) -> None:
        t = load_ticks(catalog, BTCUSDT_ID)
        self.ts, self.bid, self.ask = t.quote_ts, t.bid, t.ask
        self.trade_ts, self.trade_px = t.trade_ts, t.trade_price

    def at_or_before(self, ts: int) -> tuple[float, float]:
        i = int(np.searchsorted(self.ts, ts, "right")) - 1
        return float(self.bid[i]), float(self.ask[i])

    def before(self, ts: int) -> tuple[float, float]:
        i = int(np.searchsorted(self.ts, ts, "left")) - 1
        return float(self.bid[i]), float(self.ask[i])

    def candidates(self, ts: int) -> set[tuple[float, float]]:
        """The quote a fill at ts can have met: the latest at or before ts, or (when it was a trade
        sharing its timestamp with a later-applied quote) the one before that timestamp."""
        return {self.at_or_before(ts), self.before(ts)}


@pytest.fixture(scope="module")
def q2h(cat2h) -> Quotes:
    return Quotes(cat2h)


@pytest.fixture(scope="module")
def qf(catf) -> Quotes:
    return Quotes(catf)


def run(cfg, catalog, actions, out, *, start=None, end=None, reporting=False, features=None, **kw):
    strategy_cls = ReportingScriptedStrategy if reporting else ScriptedStrategy
    holder = {}

    def factory(_config):
        holder["s"] = strategy_cls(actions, features=features)
        return holder["s"]

    kw.setdefault("report", False)
    result = run_single(cfg, catalog, start, end, out, factory, **kw)
    return result, holder["s"]


def cfg_with(*overrides: str) -> AuctionConfig:
    return AuctionConfig().with_overrides(list(overrides))


def assert_identity(result) -> None:
    m = result.metrics
    assert m["pnl_rounding_residual"] == 0.0
    gross = sum((t.gross for t in result.trips), Decimal(0))
    fees = sum((f.commission for f in result.fills), Decimal(0))
    funding = sum((e.amount for e in result.funding), Decimal(0))
    net = D(m["ending_balance"]) - D(m["starting_balance"])
    assert gross - fees - funding == net  # exact, in Decimal
    assert abs(m["net_pnl"] - (m["gross_pnl"] - m["fees_paid"] - m["funding_paid"])) < 1e-9
    assert abs(m["net_pnl"] - (m["ending_balance"] - m["starting_balance"])) < 1e-9


# -- slippage ---------------------------------------------------------------------------------------


def _market_script(t0: int) -> list[Action]:
    return [
        Action(t0 + 1 * MIN, "market", "BUY", "0.100", tags=["setup=breakin", "purpose=entry"]),
        Action(t0 + 3 * MIN, "market", "SELL", "0.100", reduce_only=True, tags=["purpose=exit"]),
        Action(t0 + 5 * MIN, "market", "SELL", "0.050", tags=["setup=breakout", "purpose=entry"]),
        Action(t0 + 7 * MIN, "market", "BUY", "0.050", reduce_only=True, tags=["purpose=time_stop"]),
        # a long closed by a stop-market three ticks under the bid
        Action(t0 + 9 * MIN, "market", "BUY", "0.020", tags=["purpose=entry"]),
        Action(t0 + 9 * MIN, "stop_market", "SELL", "0.020", anchor="bid", offset_ticks=-3, reduce_only=True, tags=["purpose=stop"]),
        # a short closed by a stop-market above the ask
        Action(t0 + 15 * MIN, "market", "SELL", "0.020", tags=["purpose=entry"]),
        Action(t0 + 15 * MIN, "stop_market", "BUY", "0.020", anchor="ask", offset_ticks=3, reduce_only=True, tags=["purpose=stop"]),
        # take-profits as market-if-touched, both sides
        Action(t0 + 21 * MIN, "market", "BUY", "0.030", tags=["purpose=entry"]),
        Action(t0 + 21 * MIN, "mit", "SELL", "0.030", anchor="ask", offset_ticks=3, reduce_only=True, tags=["purpose=tp1"]),
        Action(t0 + 27 * MIN, "market", "SELL", "0.030", tags=["purpose=entry"]),
        Action(t0 + 27 * MIN, "mit", "BUY", "0.030", anchor="bid", offset_ticks=-3, reduce_only=True, tags=["purpose=tp2"]),
        Action(t0 + 33 * MIN, "close", tags=["purpose=exit"]),
    ]


@pytest.mark.parametrize(("entry", "exit_"), [(2, 3), (0, 0)])
def test_market_type_fills_slip_n_ticks_beyond_the_quote(cat2h, q2h, tmp_path, entry, exit_):
    t0 = ns("2024-01-01T06:50")
    cfg = cfg_with(f"slippage_ticks_entry={entry}", f"slippage_ticks_exit={exit_}")
    result, strategy = run(cfg, cat2h, _market_script(t0), tmp_path, start=t0, end=t0 + 40 * MIN)
    fills = result.fills
    types = {f.order_type for f in fills}
    assert {"MARKET", "STOP_MARKET", "MARKET_IF_TOUCHED"} <= types
    assert len(fills) == 12
    for f in fills:
        n = exit_ if f.reduce_only else entry
        assert f.liquidity == "TAKER"
        assert (f.bid, f.ask) in q2h.candidates(f.ts)
        touch = D(f.ask) if f.side > 0 else D(f.bid)
        assert f.price == touch + f.side * n * TICK, (f.order_type, f.side, f.price, f.bid, f.ask)
        assert f.commission == f.price * f.qty * Decimal("0.0005")  # taker 5 bps
    # fill_on_next_quote: a market order decided at a time alert reaches the matching engine with
    # the first tick after the decision and fills against the quote in force then, never at the
    # decision instant itself.
    by_id = {f.client_order_id: f for f in fills}
    for seen in strategy.seen:
        f = by_id.get(seen["order"])
        if f is not None and f.order_type == "MARKET":
            assert f.ts > seen["ts"]
            assert (f.bid, f.ask) == q2h.at_or_before(f.ts)
    # stops and take-profits trigger after they were placed
    placed = {s["order"]: s["ts"] for s in strategy.seen}
    for f in fills:
        if f.order_type != "MARKET":
            assert f.ts > placed[f.client_order_id]
    assert result.metrics["slippage_cost"] == pytest.approx(
        float(sum(f.qty * (exit_ if f.reduce_only else entry) * TICK for f in fills)), abs=1e-9,
    )
    assert_identity(result)


# -- limit orders -----------------------------------------------------------------------------------


def test_limit_orders_fill_at_their_price_as_maker_by_trades_and_by_the_book(cat2h, q2h, tmp_path):
    t0 = ns("2024-01-01T06:50")
    actions = []
    for k in range(8):
        side = "BUY" if k % 2 == 0 else "SELL"
        at = t0 + (1 + 4 * k) * MIN
        anchor, off = ("bid", -(k // 2) * 4) if side == "BUY" else ("ask", (k // 2) * 4)
        actions.append(Action(at, "limit", side, "0.200", anchor=anchor, offset_ticks=off, tags=["purpose=entry", f"setup=s{k}"]))
        actions.append(Action(at + 3 * MIN, "cancel_all"))
        actions.append(Action(at + 3 * MIN, "close", tags=["purpose=exit"]))
    cfg = cfg_with("maker_fee_bps=-1", "taker_fee_bps=5")
    result, strategy = run(cfg, cat2h, actions, tmp_path, start=t0, end=t0 + 40 * MIN)
    limit_price = {s["order"]: Decimal(repr(s["price"])) for s in strategy.seen if s["order"] and "price" in s}
    placed = {s["order"]: s["ts"] for s in strategy.seen if s["order"]}
    limit_fills = [f for f in result.fills if f.order_type == "LIMIT"]
    assert len(limit_fills) >= 6
    by_trade = by_book = 0
    for f in limit_fills:
        price = limit_price[f.client_order_id]
        assert f.price == price
        assert f.liquidity == "MAKER"
        assert f.commission == -(price * f.qty * Decimal("0.0001"))  # a rebate: negative commission
        assert f.ts > placed[f.client_order_id]  # never filled by a print from before the order
        quote_crosses = (f.ask <= float(price)) if f.side > 0 else (f.bid >= float(price))
        trade_here = q2h.trade_px[(q2h.trade_ts == f.ts)]
        trade_crosses = bool(np.any(trade_here <= float(price) + 1e-9)) if f.side > 0 else bool(np.any(trade_here >= float(price) - 1e-9))
        assert quote_crosses or trade_crosses
        by_book += quote_crosses
        by_trade += trade_crosses and not quote_crosses
    assert by_trade >= 1 and by_book >= 1, (by_trade, by_book)
    assert result.metrics["maker_fills"] == len(limit_fills)
    assert_identity(result)  # the rebates were credited to the balance


def test_an_order_is_never_filled_by_a_print_from_before_it(cat2h, tmp_path):
    """Nautilus's L1 book takes a trade as both best bid and ask until the next quote: without the
    gate restoring the quoted book, a buy limit at the bid placed just after a sell print at the bid
    would fill at once against that (past) print."""
    t = load_ticks(cat2h, BTCUSDT_ID)
    events = np.concatenate([t.trade_ts, t.quote_ts])
    events.sort()
    picks = []
    for side_code, side, anchor_px in ((2, "BUY", t.bid), (1, "SELL", t.ask)):  # seller print at the bid / buyer at the ask
        for i in np.flatnonzero((t.trade_side == side_code) & (t.trade_ts > ns("2024-01-01T07:00"))):
            ts = int(t.trade_ts[i])
            q = int(np.searchsorted(t.quote_ts, ts, "right")) - 1
            nxt = events[np.searchsorted(events, ts, "right")]
            if t.trade_price[i] == anchor_px[q] and nxt - ts > 5_000_000 and ts > (picks[-1][0] + 3 * MIN if picks else 0):
                picks.append((ts, side, float(anchor_px[q])))
                break
    assert len(picks) == 2
    actions = []
    for ts, side, price in picks:
        actions.append(Action(ts + 1, "limit", side, "0.500", price=price, tags=["purpose=entry"]))
        actions.append(Action(ts + MIN, "cancel_all"))
        actions.append(Action(ts + MIN, "close", tags=["purpose=exit"]))
    start = picks[0][0] - MIN
    result, strategy = run(AuctionConfig(), cat2h, actions, tmp_path, start=start, end=picks[-1][0] + 2 * MIN)
    placed = {s["order"]: s["ts"] for s in strategy.seen if s["order"]}
    limit_fills = [f for f in result.fills if f.order_type == "LIMIT"]
    assert {f.client_order_id for f in limit_fills} <= set(placed)
    for f in limit_fills:
        assert f.ts > placed[f.client_order_id], "filled by a print that happened before the order"
        assert f.liquidity == "MAKER"
    assert result.metrics["orders_filled_by_purpose"]["exit"] >= 1


# -- funding ----------------------------------------------------------------------------------------


def _expected_funding(q: Quotes, instant: int, qty: str, rate_bps: float, sign: int) -> Decimal:
    bid, ask = q.before(instant)
    mid = (D(bid) + D(ask)) / 2
    return (sign * Decimal(qty) * mid * Decimal(repr(rate_bps)) / 10_000).quantize(Decimal("1e-8"), ROUND_HALF_EVEN)


def _hold_script(side: str, qty: str = "0.200") -> list[Action]:
    other = "SELL" if side == "BUY" else "BUY"
    return [
        Action(ns("2024-01-01T07:45"), "market", side, qty, tags=["purpose=entry"]),
        Action(ns("2024-01-01T07:50"), "cancel_all"),  # records the balance before 08:00
        Action(ns("2024-01-01T08:05"), "cancel_all"),  # ... and after it
        Action(ns("2024-01-01T16:10"), "market", other, qty, reduce_only=True, tags=["purpose=exit"]),
    ]


@pytest.mark.parametrize(
    ("side", "rate", "sign_paid"),
    [("BUY", 1.0, 1), ("SELL", 1.0, -1), ("BUY", -3.0, -1)],
    ids=["long-pays", "short-receives", "negative-rate-long-receives"],
)
def test_funding_is_settled_at_each_instant_on_the_position_held(catf, qf, tmp_path, side, rate, sign_paid):
    cfg = cfg_with(f"funding_rate_8h_bps={rate}")
    result, strategy = run(cfg, catf, _hold_script(side), tmp_path)
    events = result.funding
    assert [e.ts for e in events] == [ns("2024-01-01T08:00"), ns("2024-01-01T16:00")]
    for e in events:
        assert e.side == ("LONG" if side == "BUY" else "SHORT")
        assert e.qty == Decimal("0.2")
        bid, ask = qf.before(e.ts)
        assert e.mark_price == (D(bid) + D(ask)) / 2
        expected = _expected_funding(qf, e.ts, "0.200", rate, 1 if side == "BUY" else -1)
        assert e.amount == expected
        assert (e.amount > 0) == (sign_paid > 0)
    # the balance the strategy (and its daily kill switch) reads moved by exactly the 08:00 charge
    (_, before, _), (_, after, _) = strategy.balances[1], strategy.balances[2]
    assert after - before == -events[0].amount
    assert result.metrics["funding_paid"] == float(sum(e.amount for e in events))
    assert result.metrics["funding_events"] == 2
    assert_identity(result)
    # the trade carries its funding; the ledger is in execution.db
    assert len(result.trips) == 1 and result.trips[0].funding == events[0].amount + events[1].amount
    with ExecutionStore(tmp_path / "execution.db") as store:
        rows = store.funding()
    assert [(r["ts_ms"], r["side"], r["amount"]) for r in rows] == [(e.ts // 1_000_000, e.side, float(e.amount)) for e in events]


def test_no_position_no_funding(catf, tmp_path):
    actions = [
        Action(ns("2024-01-01T07:40"), "market", "BUY", "0.100", tags=["purpose=entry"]),
        Action(ns("2024-01-01T07:55"), "market", "SELL", "0.100", reduce_only=True, tags=["purpose=exit"]),
        Action(ns("2024-01-01T08:05"), "market", "SELL", "0.100", tags=["purpose=entry"]),
        Action(ns("2024-01-01T15:45"), "market", "BUY", "0.100", reduce_only=True, tags=["purpose=exit"]),
        Action(ns("2024-01-01T16:05"), "market", "BUY", "0.100", tags=["purpose=entry"]),
    ]
    result, _ = run(cfg_with("funding_rate_8h_bps=5"), catf, actions, tmp_path)
    assert result.funding == []
    assert result.metrics["trades"] == 3  # the last one closed by the end-of-run flatten
    assert result.metrics["exits_by_reason"]["end_of_run"] == 1
    assert_identity(result)


def test_funding_ledger_rules():
    b1 = ns("2024-01-01T08:00")
    ledger = FundingLedger(2.0)
    ledger.start(b1 - 10 * MIN)
    ledger.on_fill(b1 - MIN, Decimal("0.300"))
    ledger.on_fill(b1, Decimal("0.200"))  # at the instant: does not count for it
    mark = Decimal("60000.05")
    events = ledger.settle_through(b1 + 5, mark)
    assert len(events) == 1 and events[0].qty == Decimal("0.300")
    assert events[0].amount == (Decimal("0.3") * mark * Decimal("0.0002")).quantize(Decimal("1e-8"))
    # a gap in the data spanning two instants settles both, on the position held
    events = ledger.settle_through(b1 + 2 * FUNDING_INTERVAL_NS, mark)
    assert [e.ts for e in events] == [b1 + FUNDING_INTERVAL_NS, b1 + 2 * FUNDING_INTERVAL_NS]
    assert all(e.qty == Decimal("0.500") for e in events)
    ledger.on_fill(b1 + 2 * FUNDING_INTERVAL_NS + 1, Decimal("-0.500"))
    assert ledger.settle_through(b1 + 4 * FUNDING_INTERVAL_NS, mark) == []
    assert funding_instants(b1, b1 + FUNDING_INTERVAL_NS) == [b1 + FUNDING_INTERVAL_NS]


# -- margin -----------------------------------------------------------------------------------------


def test_leverage_allows_nine_x_and_denies_beyond_ten_x(cat2h, tmp_path):
    t0 = ns("2024-01-01T07:00")
    # price ~60k, balance 10k: 1.5 BTC ~ 9x, +0.3 BTC ~ 10.8x, 1.8 BTC from flat ~ 10.8x
    actions = [
        Action(t0 + MIN, "market", "BUY", "1.500", tags=["purpose=entry"]),
        Action(t0 + 2 * MIN, "market", "BUY", "0.300", tags=["purpose=entry"]),
        Action(t0 + 3 * MIN, "market", "SELL", "1.500", reduce_only=True, tags=["purpose=exit"]),
        Action(t0 + 4 * MIN, "market", "SELL", "1.800", tags=["purpose=entry"]),
        Action(t0 + 5 * MIN, "cancel_all"),
    ]
    result, strategy = run(cfg_with("max_leverage=10"), cat2h, actions, tmp_path / "guarded", start=t0, end=t0 + 10 * MIN)
    assert [f.qty for f in result.fills] == [Decimal("1.5"), Decimal("1.5")]
    assert len(result.margin_denials) == 2 and all("INSUFFICIENT_MARGIN" in r for _, r in result.margin_denials)
    assert 8.5 < result.metrics["max_leverage_used"] < 9.5
    # Bybit margin: a 9x position locks notional / 10 of the wallet; ~10 % stays free
    _, total, free = strategy.balances[1]
    assert Decimal("0.05") < free / total < Decimal("0.15")
    # Nautilus alone (no gate) accepts the 10.8x order: its margin accounts run no margin check
    result2, strategy2 = run(cfg_with("max_leverage=10"), cat2h, actions, tmp_path / "raw", start=t0, end=t0 + 10 * MIN, margin_check=False)
    assert [f.qty for f in result2.fills][:2] == [Decimal("1.5"), Decimal("0.3")]
    assert result2.metrics["max_leverage_used"] > 10
    assert strategy2.balances[2][2] == 0  # free balance clamped at zero, nothing else happens


# -- a realistic run: money, outputs, determinism -----------------------------------------------------


def _busy_script() -> list[Action]:
    t = ns("2024-01-01T06:50")
    return [
        # maker entry, partial take-profit, stop-market exit of the rest
        Action(t + 0 * MIN, "limit", "BUY", "0.500", anchor="bid", tags=["setup=breakin", "purpose=entry", "signal_ts_min=1704091740000"]),
        Action(t + 5 * MIN, "cancel_all"),
        Action(t + 5 * MIN, "market", "SELL", "0.150", reduce_only=True, tags=["setup=breakin", "purpose=tp1"]),
        Action(t + 5 * MIN, "stop_market", "SELL", "0.350", anchor="bid", offset_ticks=-5, reduce_only=True, tags=["setup=breakin", "purpose=stop"]),
        # a taker short, flipped long in one order (two round trips), held across 08:00
        Action(t + 20 * MIN, "cancel_all"),
        Action(t + 20 * MIN, "close", tags=["purpose=exit"]),
        Action(t + 21 * MIN, "market", "SELL", "0.300", tags=["setup=failbreak", "purpose=entry"]),
        Action(t + 40 * MIN, "market", "BUY", "0.700", tags=["setup=breakout", "purpose=entry"]),
        Action(t + 60 * MIN, "mit", "SELL", "0.400", anchor="ask", offset_ticks=1500, reduce_only=True, tags=["setup=breakout", "purpose=tp2"]),
        Action(t + 85 * MIN, "cancel_all"),
        Action(t + 85 * MIN, "close", tags=["purpose=time_stop"]),
        # a maker short entry closed by a maker take-profit
        Action(t + 90 * MIN, "limit", "SELL", "0.250", anchor="ask", tags=["setup=breakin", "purpose=entry"]),
        Action(t + 93 * MIN, "limit", "BUY", "0.250", anchor="bid", offset_ticks=-2, reduce_only=True, tags=["setup=breakin", "purpose=tp1"]),
        Action(t + 100 * MIN, "market", "BUY", "0.100", tags=["setup=breakout", "purpose=entry"]),  # left to the end-of-run flatten
    ]


@pytest.fixture(scope="module")
def busy(cat2h, tmp_path_factory):
    """The same run twice (the second with progress lines on), into two directories."""
    cfg = AuctionConfig()
    table = compute(load_ticks(cat2h, BTCUSDT_ID), cfg)
    features = {name: table.column(name).to_numpy(zero_copy_only=False) for name in table.column_names}
    base = tmp_path_factory.mktemp("runs")
    first = run(cfg, cat2h, _busy_script(), base / "a", reporting=True, features=features, report=True)
    second = run(cfg, cat2h, _busy_script(), base / "b", reporting=True, features=features, report=True, progress=True)
    return first, second


def test_pnl_identity_holds_exactly_over_several_round_trips(busy):
    (result, _), _ = busy
    m = result.metrics
    assert m["trades"] >= 5 and m["maker_fills"] >= 2 and m["taker_fills"] >= 4
    assert m["funding_events"] == 1 and m["funding_paid"] != 0
    assert any(f.commission < 0 for f in result.fills) and any(f.commission > 0 for f in result.fills)
    assert_identity(result)
    trades = pq.read_table(result.out_dir / "trades.parquet").to_pydict()
    assert sum(trades["net_pnl"]) == pytest.approx(m["net_pnl"], abs=1e-9)
    assert sum(trades["funding"]) == pytest.approx(m["funding_paid"], abs=1e-12)
    fills = pq.read_table(result.out_dir / "fills.parquet").to_pydict()
    assert sum(fills["commission"]) == pytest.approx(m["fees_paid"], abs=1e-9)
    assert m["trades_by_setup"] == {"breakin": 2, "breakout": 2, "failbreak": 1}
    assert m["exits_by_reason"]["end_of_run"] == 1
    assert m["max_drawdown"] > 0 and m["equity_minutes"] == 120


def test_fills_parquet_records_the_quote_each_fill_met(busy, q2h):
    (result, _), _ = busy
    table = pq.read_table(result.out_dir / "fills.parquet").to_pydict()
    assert len(table["ts_event"]) == len(result.fills) >= 8
    for ts, bid, ask, side, price, liq, otype, reduce_only in zip(
        table["ts_event"], table["bid_at_fill"], table["ask_at_fill"], table["side"], table["price"], table["liquidity"], table["order_type"], table["reduce_only"], strict=True,
    ):
        assert (bid, ask) in q2h.candidates(ts)
        if liq == "TAKER" and otype != "LIMIT":
            n = 1  # default slippage_ticks_entry / _exit
            expected = D(ask) + n * TICK if side == "BUY" else D(bid) - n * TICK
            assert D(price) == expected, (otype, reduce_only)
        elif liq == "TAKER":
            # A marketable limit takes the displayed touch, then (displayed size consumed) walks
            # up to its limit: never better than the touch.
            assert (D(price) >= D(ask)) if side == "BUY" else (D(price) <= D(bid)), (price, bid, ask)
    assert table["setup"][0] == "breakin" and table["purpose"][0] == "entry"
    assert table["signal_ts_min"][0] == 1704091740000
    assert None in table["signal_ts_min"]  # untagged -> null


def test_every_output_file_exists_with_its_documented_columns(busy):
    (result, _), _ = busy
    out = result.out_dir
    for name in ("metrics.json", "fills.parquet", "trades.parquet", "features_1m.parquet", "signals_1m.parquet", "alerts.json", "execution.db", "report.html"):
        assert (out / name).is_file(), name
    assert pq.read_schema(out / "fills.parquet").names == FILL_COLUMNS
    assert pq.read_schema(out / "trades.parquet").names == TRADE_COLUMNS
    features = pq.read_schema(out / "features_1m.parquet").names
    assert {"ts_min", "close", "poc", "vah", "val", "ambiguous_trade_frac_1m"} <= set(features)
    signals = pq.read_schema(out / "signals_1m.parquet").names
    assert signals[:7] == ["ts_min", "signal_breakin_long", "signal_breakin_short", "signal_breakout_long", "signal_breakout_short", "signal_failbreak_long", "signal_failbreak_short"]
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("starting_balance", "ending_balance", "gross_pnl", "fees_paid", "funding_paid", "net_pnl", "trades", "win_rate", "avg_win",
                "avg_loss", "pnl_per_trade", "max_drawdown", "sharpe_annualised_1m", "slippage_cost", "spread_at_taker_fills",
                "ambiguous_trade_frac", "inferred_side_agreement", "trades_by_setup", "exits_by_reason", "funding_events", "run", "config"):
        assert key in metrics, key
    assert metrics["run"]["synthetic_data"] is True
    assert 0 < metrics["inferred_side_agreement"]["agreement"] <= 1
    db = sqlite3.connect(out / "execution.db")
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"positions", "state_snapshots", "grid_search_results", "funding"} <= tables
    cols = [r[1] for r in db.execute("PRAGMA table_info(positions)")]
    assert cols == ["id", "ts_ms_open", "ts_ms_close", "side", "entry_price", "exit_price", "qty_contracts", "qty_at_tp1", "stop_price", "tp1_price",
                    "tp2_price", "strategy_tag", "status", "realized_pnl", "fees_paid", "funding_paid", "leverage_used", "risk_pct_used",
                    "exit_reason", "signal_ts_min"]
    positions = db.execute("SELECT ts_ms_open, ts_ms_close, funding_paid FROM positions ORDER BY id").fetchall()
    assert len(positions) == metrics["trades"]
    # funding_paid is the ledger's charge inside each position's life
    paid = [p[2] for p in positions if p[2]]
    assert paid == [pytest.approx(metrics["funding_paid"], abs=1e-12)]
    assert db.execute("SELECT count(*) FROM state_snapshots").fetchone()[0] == len(_busy_script())
    db.close()


def test_two_runs_write_byte_identical_files_and_progress_goes_to_stderr(busy, capfd):
    (a, _), (b, _) = busy
    names = sorted(p.name for p in a.out_dir.iterdir())
    assert names == sorted(p.name for p in b.out_dir.iterdir())
    for name in names:
        assert hashlib.sha256((a.out_dir / name).read_bytes()).digest() == hashlib.sha256((b.out_dir / name).read_bytes()).digest(), name
    page = (a.out_dir / "report.html").read_text()
    assert 'id="tearsheet-0"' in page and 'id="price-chart"' in page
    assert "Run started" not in page and "Elapsed" not in page
    assert "VAH" in page and "buy fills" in page and "signal: break-in long" in page


def test_progress_lines(cat2h, tmp_path, capsys):
    t0 = ns("2024-01-01T07:00")
    run(AuctionConfig(), cat2h, [Action(t0 + MIN, "market", "BUY", "0.010")], tmp_path, start=t0, end=t0 + 30 * MIN, progress=True)
    err = capsys.readouterr().err.strip().splitlines()
    lines = [line for line in err if line.startswith("[backtest]")]
    # 30 simulated minutes: a line every 2 minutes (about twenty per run), then the final one
    assert len(lines) == 15 and all("ETA" in line and "elapsed" in line for line in lines[:-1])
    assert lines[0].split()[1:3] == ["2024-01-01", "07:02:00"]
    percents = [float(line.split("(")[1].split("%")[0]) for line in lines]
    assert percents == sorted(percents) and percents[-1] == 100.0 and "done" in lines[-1]
    quiet = run(AuctionConfig(), cat2h, [Action(t0 + MIN, "market", "BUY", "0.010")], tmp_path / "q", start=t0, end=t0 + 30 * MIN)
    assert not [line for line in capsys.readouterr().err.splitlines() if line.startswith("[backtest]")]
    assert quiet[0].metrics["net_pnl"] != 0


# -- the store ----------------------------------------------------------------------------------------


def test_execution_store_round_trip_and_strictness(tmp_path):
    with ExecutionStore(tmp_path / "x.db") as store:
        store.insert_positions([{"ts_ms_open": 1, "side": "LONG", "entry_price": 100.5, "qty_contracts": 0.01, "stop_price": 99.0}])
        store.insert_state_snapshots([{"ts_ms": 5, "snapshot_type": "PERIODIC", "position_state": {"b": 1, "a": [1, 2]}}])
        rid = store.add_grid_result("abc", {"alpha_bin": 0.25}, {"net_pnl": 1.5}, created_at=1700000000000)
        with pytest.raises(ValueError, match="unknown column"):
            store.insert_positions([{"ts_ms_open": 1, "side": "LONG", "entry_price": 1, "qty_contracts": 1, "stop_price": 1, "oops": 2}])
        with pytest.raises(ValueError, match="NOT NULL"):
            store.insert_positions([{"ts_ms_open": 1, "side": "LONG", "entry_price": 1, "qty_contracts": 1}])
        assert store.positions()[0]["entry_price"] == 100.5 and store.positions()[0]["funding_paid"] is None
        assert store.state_snapshots()[0]["position_state"] == '{"a":[1,2],"b":1}'
        assert rid == 1 and json.loads(store.grid_results()[0]["metrics_json"]) == {"net_pnl": 1.5}


# -- run_backtest.py ----------------------------------------------------------------------------------


def _main(argv, capsys):
    sys.path.insert(0, str(REPO_ROOT))
    import run_backtest  # noqa: PLC0415

    code = run_backtest.main(argv)
    return code, capsys.readouterr()


def test_run_backtest_error_paths(cat2h, tmp_path, capsys, monkeypatch):
    default = str(REPO_ROOT / "configs" / "default.yaml")
    code, out = _main([str(tmp_path / "missing.yaml")], capsys)
    assert code == 1 and "cannot read config" in out.err
    code, out = _main([default, "--set", "va_fraction=2"], capsys)
    assert code == 1 and "va_fraction" in out.err
    code, out = _main([default, "--catalog", str(tmp_path / "nope")], capsys)
    assert code == 1 and "not a catalog" in out.err
    code, out = _main([default, "--catalog", str(cat2h), "--start", "2023-01-01T00:00", "--end", "2023-01-01T01:00"], capsys)
    assert code == 1 and "no trades or quotes" in out.err
    code, out = _main([default, "--catalog", str(cat2h), "--start", "tomorrow"], capsys)
    assert code == 1 and "--start" in out.err
    grid = tmp_path / "grid.yaml"  # a grid config goes to the grid search, validated before anything runs
    grid.write_text("grid:\n  alpha_bin: [0.2, -0.3]\n")
    code, out = _main([str(grid), "--catalog", str(cat2h)], capsys)
    assert code == 1 and f"{grid}:2" in out.err and "alpha_bin" in out.err

    import auction_trader.backtest.outputs as outputs  # noqa: PLC0415

    def unavailable():
        raise outputs.StrategyUnavailable("the auction strategy is not available yet (test)")

    monkeypatch.setattr(outputs, "auction_strategy_factory", unavailable)
    code, out = _main([default, "--catalog", str(cat2h)], capsys)
    assert code == 2 and "not available yet" in out.err


def test_run_backtest_help_describes_the_options():
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "run_backtest.py"), "--help"], capture_output=True, text=True, timeout=60, cwd=REPO_ROOT)
    assert proc.returncode == 0
    for word in ("--catalog", "--start", "--end", "--out", "--set", "metrics.json", "report.html", "grid"):
        assert word in proc.stdout, word
    assert "only validates" not in proc.stdout


def test_build_engine_exposes_the_context(cat2h):
    t0 = ns("2024-01-01T07:00")
    engine, ctx = build_engine(AuctionConfig(), cat2h, t0, t0 + 5 * MIN, ScriptedStrategy([]))
    try:
        assert ctx.first_ts >= t0 and ctx.last_ts <= t0 + 5 * MIN and ctx.ticks == ctx.trades + ctx.quotes > 1000
        run_engine(engine, ctx)
        assert ctx.venue.ticks == ctx.ticks
        assert len(ctx.venue.minute_quotes) == 5
        account = engine.cache.account_for_venue(ctx.instrument.id.venue)
        assert account.balance_total().as_decimal() == Decimal("10000")
    finally:
        engine.dispose()


def test_cost_comparison_script_runs_the_variants_side_by_side(cat2h):
    import importlib.util  # noqa: PLC0415

    spec = importlib.util.spec_from_file_location("cost_comparison", REPO_ROOT / "scripts" / "cost_comparison.py")
    cc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cc)
    t0 = ns("2024-01-01T07:00")
    actions = [
        Action(t0 + MIN, "limit", "BUY", "0.300", anchor="bid", tags=["purpose=entry"]),
        Action(t0 + 6 * MIN, "cancel_all"),
        Action(t0 + 6 * MIN, "close", tags=["purpose=exit"]),
        Action(t0 + 8 * MIN, "market", "SELL", "0.300", tags=["purpose=entry"]),
        Action(t0 + 12 * MIN, "close", tags=["purpose=exit"]),
    ]
    cfg = AuctionConfig()
    chosen = [v for v in cc.variants(cfg) if v[0] in ("0-tick slippage", "1-tick slippage", "maker = taker fee")]
    results = cc.compare(cfg, cat2h, t0, t0 + 15 * MIN, lambda c: ScriptedStrategy(actions), chosen)
    (_, zero), (_, one), (_, maker_taker) = results
    assert zero["slippage_cost"] == 0 and one["slippage_cost"] == pytest.approx(0.9 * 0.1, abs=1e-9)  # 3 taker fills x 0.3 BTC x 1 tick
    assert zero["net_pnl"] - one["net_pnl"] == pytest.approx(0.09 + (one["fees_paid"] - zero["fees_paid"]), abs=1e-9)
    assert maker_taker["maker_fills"] >= 1 and maker_taker["fees_paid"] > one["fees_paid"]
    text = cc.table(results)
    assert "0-tick slippage" in text and "slippage cost" in text and text.count("\n") == len(cc.ROWS)
