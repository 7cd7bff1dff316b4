"""AuctionStrategy on Nautilus's matching engine: order handling on hand-made markets, then whole
runs on the synthetic market and on the real feeds."""

from __future__ import annotations

import json
import sqlite3
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from auction_trader.backtest.outputs import OUTPUT_FILES, run_single
from auction_trader.config import AuctionConfig
from auction_trader.core.setups import Candidate
from auction_trader.core.signals import ENTER_LONG, ENTER_SHORT, HOLD, Decision, SignalEngine
from auction_trader.data.catalog import CatalogWriter
from auction_trader.data.importing import import_files
from auction_trader.data.synth import generate, write_synthetic
from auction_trader.data.ticks import QuoteBatch, TradeBatch
from auction_trader.features import load_ticks
from auction_trader.instrument import BTCUSDT
from auction_trader.strategies import AuctionStrategy, AuctionStrategyConfig
from tests.conftest import tree_digest

T0 = 1_704_067_200_000_000_000  # 2024-01-01 00:00 UTC
SEC = 1_000_000_000
MIN = 60 * SEC
TICK = Decimal("0.1")


def at(minute: int) -> int:
    """ts_min (ms) of minute ``minute`` after T0: its decision is taken at its close."""
    return T0 // 1_000_000 + minute * 60_000


# -- a scripted decision source over hand-made ticks --------------------------------------------------


class ScriptedEngine(SignalEngine):
    """The real signal engine for positions and exits (time stop, kill switch); entries only at
    scripted minutes - its own setups are held back, so each test controls what gets traded."""

    script: dict

    def on_minute(self, m, ctx=None):
        decision, record = super().on_minute(m, ctx)
        forced = self.script.get(m.ts_min)
        if forced is None and decision.action in (ENTER_LONG, ENTER_SHORT):
            forced = Decision(HOLD, "NOT_SCRIPTED")
        if forced is not None:
            decision = forced
            record = {**record, "chosen_action": forced.action, "reason_code": forced.reason}
        return decision, record


class Scripted(AuctionStrategy):
    def __init__(self, config: AuctionConfig, script: dict) -> None:
        super().__init__(AuctionStrategyConfig(auction=config.model_dump()))
        self._script = script

    def on_start(self) -> None:
        super().on_start()
        engine = ScriptedEngine(self.params, self.tick)
        engine.script = self._script
        self.engine = engine


def enter(direction: int, entry: float, stop: float, tp1: float | None, tp2: float | None, setup="breakin", close_first=False) -> Decision:
    c = Candidate(setup, direction, entry, stop, tp1, tp2)
    action = ENTER_LONG if direction == 1 else ENTER_SHORT
    return Decision(action, f"SCRIPTED_{action}", c, close_first=close_first, exit_reason="flip" if close_first else None)


def market(path: Path, quotes: list[tuple], trades: list[tuple]) -> Path:
    """A catalog from explicit quotes (ts, bid, bid size, ask, ask size) and trades (ts, price, size, side)."""
    q = np.array(sorted(quotes), dtype=float)
    t = np.array(sorted(trades), dtype=float)
    with CatalogWriter(path, BTCUSDT) as w:
        w.add_quotes(QuoteBatch(q[:, 0].astype(np.int64), np.rint(q[:, 1] * 10).astype(np.int64), np.rint(q[:, 3] * 10).astype(np.int64),
                                np.rint(q[:, 2] * 1000).astype(np.int64), np.rint(q[:, 4] * 1000).astype(np.int64)))  # fmt: skip
        w.add_trades(TradeBatch(t[:, 0].astype(np.int64), np.rint(t[:, 1] * 10).astype(np.int64), np.rint(t[:, 2] * 1000).astype(np.int64),
                                t[:, 3].astype(np.uint8), np.array([str(i) for i in range(len(t))], dtype=object)))  # fmt: skip
        w.commit()
    return path


def book(segments: list[tuple[int, int, float]], step: int = 10, base: int = T0) -> tuple[list, list]:
    """Quotes every ``step`` seconds over (from s, to s, bid) segments (ask = bid + 0.1, 1 BTC a
    side), with a small buy print at the ask 5 s after each quote."""
    quotes, trades = [], []
    for start, end, bid in segments:
        for sec in range(start, end, step):
            ask = round(bid + 0.1, 1)
            quotes.append((base + sec * SEC, bid, 1.0, ask, 1.0))
            trades.append((base + (sec + 5) * SEC, ask, 0.001, 1))
    return quotes, trades


def flat_market(minutes: int, bid: float = 100.0, extra_quotes=(), extra_trades=()):
    quotes, trades = book([(0, minutes * 60, bid)])
    return quotes + list(extra_quotes), trades + list(extra_trades)


def cfg(*overrides: str) -> AuctionConfig:
    base = ["warmup_minutes=0", "rolling_window_minutes=5", "min_va_bins=1", "spread_lookback_minutes=5", "risk_pct=0.0001", "cooldown_minutes=0"]
    return AuctionConfig().with_overrides([*base, *overrides])


def scripted_run(tmp_path, config, script, quotes, trades):
    catalog = market(tmp_path / "cat", quotes, trades)
    result = run_single(config, catalog, None, None, tmp_path / "run", lambda c: Scripted(c, script), report=False)
    fills = pq.read_table(result.out_dir / "fills.parquet").to_pylist()
    positions = sqlite3.connect(result.out_dir / "execution.db").execute("SELECT side, entry_price, exit_price, qty_contracts, status, exit_reason FROM positions ORDER BY id").fetchall()
    return result, fills, positions


def test_a_limit_entry_partly_filled_goes_to_market_after_the_timeout(tmp_path):
    # Entry decided at 00:01:00: limit buy 1.0 BTC at the bid 100.0 (risk 0.0001 x 10,000 / 1.0).
    # Its queue place is set by the next quote (00:01:10: 1.0 displayed at 100.0 ahead of us). A
    # seller prints 1.2 at 100.0 at 00:01:15: 1.0 ahead of us trades first, 0.2 is ours.
    # Still working at the 00:02:00 close: cancelled, the remaining 0.8 at market = ask + 1 tick.
    quotes, trades = flat_market(5, extra_trades=[(T0 + 75 * SEC, 100.0, 1.2, 2)])
    script = {at(0): enter(1, 100.0, 99.0, 101.0, 102.0)}
    result, fills, positions = scripted_run(tmp_path, cfg(), script, quotes, trades)
    entries = [(f["order_type"], f["price"], f["qty"], f["liquidity"]) for f in fills if f["purpose"] == "entry"]
    assert entries == [("LIMIT", 100.0, 0.2, "MAKER"), ("MARKET", 100.2, 0.8, "TAKER")]
    market_fill = next(f for f in fills if f["order_type"] == "MARKET")
    assert market_fill["ts_event"] > T0 + 2 * MIN, "decided at the 00:02 close, filled on the next tick"
    assert positions[0][:4] == ("LONG", pytest.approx((0.2 * 100.0 + 0.8 * 100.2) / 1.0), positions[0][2], 1.0)
    assert result.metrics["fees_paid"] == pytest.approx(0.2 * 100.0 * -0.0001 + 0.8 * 100.2 * 0.0005 + positions[0][2] * 1.0 * 0.0005, abs=1e-9)


def test_after_tp1_the_stop_moves_to_the_entry_price(tmp_path):
    # Market entry at the 00:01 close: ask 100.1 + 1 tick = 100.2; 0.909 BTC (1 USDT risk / 1.1).
    # TP1 100.6, TP2 101.5, stop 99.0. From 00:01:30 the bid is 100.6: TP1 sells 30% (0.273) at
    # bid - 1 tick = 100.5. From 00:02:30 the bid is 100.1: the stop, now at the entry 100.2,
    # exits the rest (0.636) at 100.0.
    quotes, trades = book([(0, 90, 100.0), (90, 120, 100.6), (120, 150, 100.4), (150, 300, 100.1)], step=5)
    script = {at(0): enter(1, 100.1, 99.0, 100.6, 101.5)}
    result, fills, positions = scripted_run(tmp_path, cfg("use_limit_for_entry=false"), script, quotes, trades)
    by_purpose = {f["purpose"]: f for f in fills}
    assert set(by_purpose) == {"entry", "tp1", "stop"}
    assert by_purpose["entry"]["price"] == 100.2 and by_purpose["entry"]["qty"] == pytest.approx(0.909)
    assert by_purpose["tp1"]["price"] == 100.5 and by_purpose["tp1"]["qty"] == pytest.approx(0.273), "30% of 0.909 = 0.2727 -> 0.273"
    stop = by_purpose["stop"]
    assert stop["qty"] == pytest.approx(0.636) and stop["price"] == 100.0
    assert T0 + 150 * SEC <= stop["ts_event"] < T0 + 156 * SEC, "it fired when the bid fell to the entry price"
    assert positions == [("LONG", 100.2, pytest.approx((0.273 * 100.5 + 0.636 * 100.0) / 0.909), 0.909, "STOPPED", "stop")]


def test_time_stop_exits_at_a_minute_close_when_not_profitable(tmp_path):
    # Entry at the 00:01 close; the first close after the fill (00:02) starts the clock; after
    # max_hold_minutes = 2 the 00:04 close exits at market (flat market: not profitable net of fees).
    quotes, trades = flat_market(7)
    script = {at(0): enter(1, 100.1, 95.0, 110.0, 120.0)}
    result, fills, positions = scripted_run(tmp_path, cfg("use_limit_for_entry=false", "max_hold_minutes=2"), script, quotes, trades)
    time_exit = next(f for f in fills if f["purpose"] == "time")
    assert T0 + 4 * MIN < time_exit["ts_event"] < T0 + 4 * MIN + 11 * SEC
    assert time_exit["order_type"] == "MARKET" and time_exit["price"] == 99.9, "bid 100.0 - 1 tick exit slippage"
    assert positions[0][4:] == ("CLOSED", "time")


def test_a_flip_closes_then_opens_two_trades(tmp_path):
    quotes, trades = flat_market(5)
    script = {at(0): enter(1, 100.1, 99.0, 105.0, 110.0), at(2): enter(-1, 100.0, 101.0, 95.0, 90.0, close_first=True)}
    result, fills, positions = scripted_run(tmp_path, cfg("use_limit_for_entry=false"), script, quotes, trades)
    purposes = [(f["side"], f["purpose"]) for f in fills]
    assert purposes[:3] == [("BUY", "entry"), ("SELL", "flip"), ("SELL", "entry")]
    assert [p[0] for p in positions] == ["LONG", "SHORT"]
    assert positions[0][5] == "flip" and positions[1][5] == "end_of_run"
    assert result.metrics["trades"] == 2


# -- whole runs ---------------------------------------------------------------------------------------

RUN_CONFIG = AuctionConfig().with_overrides(["rolling_window_minutes=60", "warmup_minutes=60", "spread_lookback_minutes=30"])


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    path = tmp_path_factory.mktemp("synthetic") / "cat"
    write_synthetic(path, generate(4.0, 4, T0 + 5 * 3_600 * SEC), AuctionConfig())  # 05:00-09:00, crosses 08:00
    return path


@pytest.fixture(scope="module")
def two_runs(synthetic, tmp_path_factory):
    base = tmp_path_factory.mktemp("runs")
    first = run_single(RUN_CONFIG, synthetic, None, None, base / "a")
    second = run_single(RUN_CONFIG, synthetic, None, None, base / "b")
    return first, second


def test_two_runs_are_byte_identical(two_runs):
    first, second = two_runs
    assert tree_digest(first.out_dir) == tree_digest(second.out_dir)
    assert set(OUTPUT_FILES) <= set(tree_digest(first.out_dir))
    assert {"metrics.json", "fills.parquet", "signals_1m.parquet", "features_1m.parquet", "execution.db", "report.html"} <= set(tree_digest(first.out_dir))


def test_the_strategy_trades_both_sides_and_the_money_adds_up(two_runs):
    result, _ = two_runs
    m = result.metrics
    assert m["trades"] >= 3
    positions = sqlite3.connect(result.out_dir / "execution.db").execute("SELECT side, status FROM positions").fetchall()
    assert {"LONG", "SHORT"} <= {p[0] for p in positions}, "FLAT -> LONG -> FLAT and SHORT transitions"
    net = Decimal(str(m["net_pnl"]))
    assert net == Decimal(str(m["gross_pnl"])) - Decimal(str(m["fees_paid"])) - Decimal(str(m["funding_paid"]))
    assert m["ending_balance"] - m["starting_balance"] == pytest.approx(m["net_pnl"], abs=1e-9)
    signals = pq.read_table(result.out_dir / "signals_1m.parquet").to_pylist()
    states = [json.loads(s["acceptance_state"])["state"] for s in signals]
    assert "LONG" in states or "SHORT" in states
    # Every minute gets its decision at its close, but the last: the data ends before its close.
    assert len(signals) == 239


def test_no_entry_fills_at_or_before_its_signal_minute_closes(two_runs):
    result, _ = two_runs
    fills = pq.read_table(result.out_dir / "fills.parquet").to_pylist()
    entries = [f for f in fills if f["purpose"] == "entry"]
    assert entries
    for f in entries:
        assert f["ts_event"] > (f["signal_ts_min"] + 60_000) * 1_000_000


def test_market_fills_pay_the_touch_plus_slippage(two_runs, synthetic):
    result, _ = two_runs
    ticks = load_ticks(synthetic, BTCUSDT.instrument_id)
    fills = pq.read_table(result.out_dir / "fills.parquet").to_pylist()
    market = [f for f in fills if f["order_type"] in ("MARKET", "STOP_MARKET", "MARKET_IF_TOUCHED")]
    assert market
    for f in market:
        # The quote in force at the fill, read independently from the catalog.
        i = int(np.searchsorted(ticks.quote_ts, f["ts_event"], "right")) - 1
        bid, ask = Decimal(repr(float(ticks.bid[i]))), Decimal(repr(float(ticks.ask[i])))
        n = RUN_CONFIG.execution.slippage_ticks_exit if f["reduce_only"] else RUN_CONFIG.execution.slippage_ticks_entry
        expected = ask + n * TICK if f["side"] == "BUY" else bid - n * TICK
        assert Decimal(repr(f["price"])) == expected, f


@pytest.mark.parametrize(("direction", "side"), [(1, "LONG"), (-1, "SHORT")])
def test_funding_is_charged_at_each_boundary_crossed_with_a_position(tmp_path, direction, side):
    # A position opened at 07:57 and held through 08:00 (stop and targets far away) pays
    # qty x mid x 1 bp at 08:00 when long, receives it when short; nothing before or after.
    base = T0 + 7 * 3_600 * SEC + 55 * MIN  # 07:55
    quotes, trades = book([(0, 10 * 60, 100.0)], base=base)
    start = (base // 1_000_000) + 60_000  # decided at the 07:57 close
    c = enter(direction, 100.0, 100.0 - direction * 5, 100.0 + direction * 10, 100.0 + direction * 20)
    result, fills, positions = scripted_run(tmp_path, cfg("use_limit_for_entry=false", "funding_rate_8h_bps=1"), {start: c}, quotes, trades)
    db = sqlite3.connect(result.out_dir / "execution.db")
    funding = db.execute("SELECT ts_ms, side, qty, mark_price, amount FROM funding").fetchall()
    qty = positions[0][3]
    assert len(funding) == 1
    ts, fside, fqty, mark, amount = funding[0]
    assert ts == (T0 + 8 * 3_600 * SEC) // 1_000_000 and fside == side and fqty == qty and mark == 100.05
    assert amount == pytest.approx(direction * qty * 100.05 * 0.0001, abs=1e-8)
    assert db.execute("SELECT funding_paid FROM positions").fetchone()[0] == pytest.approx(amount, abs=1e-12)
    m = result.metrics
    assert m["funding_paid"] == pytest.approx(amount, abs=1e-12)
    assert m["ending_balance"] - m["starting_balance"] == pytest.approx(m["gross_pnl"] - m["fees_paid"] - m["funding_paid"], abs=1e-9)


def test_real_feeds_with_short_windows(binance_feeds, tmp_path):
    catalog = tmp_path / "real"
    import_files("binance-feed", binance_feeds[:2], catalog)
    config = AuctionConfig().with_overrides(["rolling_window_minutes=3", "min_va_bins=5", "spread_lookback_minutes=3", "warmup_minutes=3"])
    a = run_single(config, catalog, None, None, tmp_path / "a", report=False)
    b = run_single(config, catalog, None, None, tmp_path / "b", report=False)
    assert tree_digest(a.out_dir) == tree_digest(b.out_dir)
    signals = pq.read_table(a.out_dir / "signals_1m.parquet")
    assert signals.num_rows >= 8
    m = a.metrics
    assert m["ending_balance"] - m["starting_balance"] == pytest.approx(m["net_pnl"], abs=1e-9)


def test_dry_run_replay_gives_the_backtests_signal_log_until_the_first_trade(two_runs, synthetic):
    """One decision path: without Nautilus, the same engines over the same ticks decide the same,
    minute for minute, until the first order changes the state (positions)."""
    from auction_trader.replay import replay_signals

    result, _ = two_runs
    run = pq.read_table(result.out_dir / "signals_1m.parquet").to_pylist()
    replayed = replay_signals(load_ticks(synthetic, BTCUSDT.instrument_id), RUN_CONFIG)
    first_entry = next(i for i, r in enumerate(run) if r["chosen_action"].startswith("ENTER"))
    assert first_entry > 60
    assert replayed[:first_entry] == run[:first_entry]
    # The entry's record also says what the strategy did: the quantity and the margin it sized on.
    done = json.loads(run[first_entry]["feature_snapshot"])
    assert done.pop("qty") > 0 and done.pop("margin") == RUN_CONFIG.backtest.starting_balance
    assert {**run[first_entry], "feature_snapshot": done} == {**replayed[first_entry], "feature_snapshot": json.loads(replayed[first_entry]["feature_snapshot"])}
    assert len(replayed) == len(run)
