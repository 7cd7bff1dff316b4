"""No order left hanging, and flips that re-open: on hand-made markets at the default sizes.

The hang of issue 8, at its root: two market orders on the same side against one unchanged quote
(a flip's close and, right after it, the new entry). Nautilus 1.231's liquidity ledger counts the
fill model's slippage level (touch ± n ticks, no level of the real L1 book) as used up by the first;
the second finds nothing, and an unacknowledged market order is not "open", so the engine's
exhausted-book slip skips it: neither filled nor rejected, for ever. The venue acknowledges market
orders (as Bybit does), so the second fills; and the strategy bounds every order that must
complete anyway (``auction_trader/core/orders.py``).
"""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

import auction_trader.backtest.engine as engine_module
from auction_trader.backtest.outputs import run_single
from auction_trader.config import AuctionConfig
from auction_trader.core import orders as policy
from tests.scripted_strategy import Action, ScriptedStrategy
from tests.test_strategy import MIN, SEC, T0, Scripted, at, book, enter, market

PRICE = 50_000.0
# The defaults that matter here: 2 % risk, 10x; a 10-tick stop puts every entry at the cap.
DEFAULT_SIZES = ["warmup_minutes=0", "rolling_window_minutes=5", "min_va_bins=1", "spread_lookback_minutes=5", "cooldown_minutes=0"]


def cap_market(tmp_path, minutes: int = 8, step_at: int | None = None):
    """A flat book at 50,000.0 / 50,000.1, 1 BTC a side, a quote every 10 s, a small buy 5 s after
    each; from ``step_at`` seconds on, 5 USDT higher."""
    segments = [(0, minutes * 60, PRICE)] if step_at is None else [(0, step_at, PRICE), (step_at, minutes * 60, PRICE + 5)]
    quotes, trades = book(segments)
    return market(tmp_path / "cat", quotes, trades)


def flip_script():
    # Long at the 00:01 close (stop 10 ticks under: capped at 10x), short at the 00:03 close (a flip).
    return {at(0): enter(1, PRICE + 0.1, PRICE - 1.0, PRICE + 500, PRICE + 1000),
            at(2): enter(-1, PRICE, PRICE + 1.0, PRICE - 500, PRICE - 1000, close_first=True)}  # fmt: skip


def run_scripted(tmp_path, catalog, config, script, name="run", **kwargs):
    result = run_single(config, catalog, None, None, tmp_path / name, lambda c: Scripted(c, script), report=False, **kwargs)
    out = result.out_dir
    return result, pq.read_table(out / "fills.parquet").to_pylist(), pq.read_table(out / "signals_1m.parquet").to_pylist(), json.loads((out / "alerts.json").read_text())


def _acks_off(monkeypatch):
    """The venue as it was before the fix: market orders not acknowledged before they fill."""

    class Unacknowledged(engine_module.BacktestEngine):
        def add_venue(self, *args, **kwargs):
            kwargs["use_market_order_acks"] = False
            return super().add_venue(*args, **kwargs)

    monkeypatch.setattr(engine_module, "BacktestEngine", Unacknowledged)


# -- the venue --------------------------------------------------------------------------------------


class StatusAtStop(ScriptedStrategy):
    """Remembers every order's status when the run stops."""

    def on_stop(self) -> None:
        self.final = {o.client_order_id.value: o.status.name for o in self.cache.orders()}


def _two_sells(tmp_path, catalog):
    t = T0 + 62 * SEC  # between two quotes: both orders meet the same one (bid 50,000.0)
    actions = [Action(T0 + 32 * SEC, "market", "BUY", "0.500"),
               Action(t, "market", "SELL", "0.500", reduce_only=True), Action(t, "market", "SELL", "0.400")]  # fmt: skip
    strategy = StatusAtStop(actions)
    config = AuctionConfig().with_overrides(DEFAULT_SIZES)
    run_single(config, catalog, None, None, tmp_path, lambda c: strategy, report=False, flatten_at_end=False)
    fills = pq.read_table(tmp_path / "fills.parquet").to_pylist()
    return strategy, [(f["side"], f["qty"], f["price"]) for f in fills]


def test_two_market_orders_on_one_quote_both_fill(tmp_path):
    catalog = cap_market(tmp_path)
    strategy, fills = _two_sells(tmp_path / "run", catalog)
    # bid 50,000.0 - 1 tick for both: the second meets the slippage level the first "consumed" and
    # fills through Nautilus's exhausted-level slip, one tick beyond the touch - the same price here.
    assert fills == [("BUY", 0.5, 50_000.2), ("SELL", 0.5, 49_999.9), ("SELL", 0.4, 49_999.9)]
    assert set(strategy.final.values()) == {"FILLED"}


def test_without_market_acks_the_second_order_hangs(tmp_path, monkeypatch):
    """The root cause, reproduced: the venue as Nautilus sets it up by default leaves the second
    market order submitted, never filled nor rejected."""
    _acks_off(monkeypatch)
    catalog = cap_market(tmp_path)
    strategy, fills = _two_sells(tmp_path / "run", catalog)
    assert fills == [("BUY", 0.5, 50_000.2), ("SELL", 0.5, 49_999.9)]
    assert strategy.final[strategy.seen[-1]["order"]] == "SUBMITTED"


# -- flips at the leverage cap --------------------------------------------------------------------------


@pytest.mark.parametrize("limit", [True, False], ids=["limit", "market"])
def test_a_flip_at_the_leverage_cap_reopens_on_the_margin_the_close_frees(tmp_path, limit):
    catalog = cap_market(tmp_path)
    config = AuctionConfig().with_overrides([*DEFAULT_SIZES, f"use_limit_for_entry={str(limit).lower()}"])
    result, fills, signals, alerts = run_scripted(tmp_path, catalog, config, flip_script())
    long_qty = sum(f["qty"] for f in fills if f["purpose"] == "entry" and f["side"] == "BUY")
    assert long_qty == pytest.approx(1.999), "10,000 x 10 / 50,000.1, rounded down: at the cap"
    close = next(f for f in fills if f["purpose"] == "flip")
    assert close["side"] == "SELL" and close["qty"] == pytest.approx(1.999)
    flip = next(r for r in signals if r["ts_min"] == at(2))
    snap = json.loads(flip["feature_snapshot"])
    assert (flip["chosen_action"], flip["reason_code"]) == ("ENTER_SHORT", "SCRIPTED_ENTER_SHORT")
    # Sized once the long was flat: on the whole (smaller) balance, not on the ~0 the long held.
    balance_after_close = 10_000 + sum(
        (-1 if f["side"] == "BUY" else 1) * f["price"] * f["qty"] - f["commission"] for f in fills if f["ts_event"] <= close["ts_event"]
    )  # fmt: skip
    assert snap["margin"] == pytest.approx(balance_after_close, abs=1e-6)
    assert snap["qty"] == pytest.approx(int(balance_after_close * 10 / PRICE * 1000) / 1000)
    shorts = [f for f in fills if f["purpose"] == "entry" and f["side"] == "SELL"]
    assert shorts and min(f["ts_event"] for f in shorts) > close["ts_event"], "the new entry goes out once the old position is flat"
    assert sum(f["qty"] for f in shorts) > 0.5 * snap["qty"]
    assert not [a for a in alerts if a["alert"] in ("order stuck", "order rejected")]


def test_a_flip_that_cannot_size_records_that_it_only_closed(tmp_path):
    # The new trade's stop is on the wrong side of its entry for this market: sizing gives nothing;
    # the minute says EXIT (the close went out) and why.
    catalog = cap_market(tmp_path)
    script = flip_script()
    script[at(2)] = enter(-1, PRICE, PRICE, PRICE - 500, PRICE - 1000, close_first=True)
    _, fills, signals, _ = run_scripted(tmp_path, catalog, AuctionConfig().with_overrides(DEFAULT_SIZES), script)
    flip = next(r for r in signals if r["ts_min"] == at(2))
    assert (flip["chosen_action"], flip["reason_code"]) == ("EXIT", "SCRIPTED_ENTER_SHORT:SIZE_NO_STOP_DISTANCE")
    assert [f["purpose"] for f in fills].count("flip") == 1 and not [f for f in fills if f["purpose"] == "entry" and f["side"] == "SELL"]


# -- the strategy's bound -------------------------------------------------------------------------------


def test_a_hanging_market_entry_is_cancelled_resent_and_reported(tmp_path, monkeypatch):
    """With the venue that hangs (market acks off), the flip's market entry meets the quote its
    close consumed and is never answered; at the next minute close past the bound the strategy
    cancels it, re-sends the quantity and says so; the trade goes on."""
    _acks_off(monkeypatch)
    catalog = cap_market(tmp_path, minutes=10, step_at=240)  # the quote changes before the re-send
    config = AuctionConfig().with_overrides([*DEFAULT_SIZES, "use_limit_for_entry=false"])
    # Without the margin gate: the hung order stays "submitted" in Nautilus's cache for ever, and
    # the gate, which counts open orders, would see the re-sent one as a second entry.
    result, fills, signals, alerts = run_scripted(tmp_path, catalog, config, flip_script(), margin_check=False)
    stuck = [json.loads(a["detail"]) for a in alerts if a["alert"] == "order stuck"]
    assert [s["reason"] for s in stuck] == ["ORDER_STUCK:ENTRY:RESENT"]
    stuck_at = next(a["ts_ms"] for a in alerts if a["alert"] == "order stuck")
    close = next(f for f in fills if f["purpose"] == "flip")
    assert policy.COMPLETION_BOUND_MS <= stuck_at - close["ts_event"] // 1_000_000 < policy.COMPLETION_BOUND_MS + 60_000
    shorts = [f for f in fills if f["purpose"] == "entry" and f["side"] == "SELL"]
    assert len(shorts) == 1 and shorts[0]["ts_event"] > stuck_at * 1_000_000, "the re-sent order filled"
    flip = json.loads(next(r for r in signals if r["ts_min"] == at(2))["feature_snapshot"])
    assert shorts[0]["qty"] == pytest.approx(flip["qty"])


def test_a_market_entry_stuck_twice_is_given_up_and_the_record_says_so(tmp_path, monkeypatch):
    """The same on a book that never changes: the re-sent order meets the same used-up price and
    hangs too; the second time the strategy gives the entry up; the flip's minute says the close
    went out and nothing opened, and why."""
    _acks_off(monkeypatch)
    catalog = cap_market(tmp_path, minutes=10)
    config = AuctionConfig().with_overrides([*DEFAULT_SIZES, "use_limit_for_entry=false"])
    _, fills, signals, alerts = run_scripted(tmp_path, catalog, config, flip_script(), margin_check=False)
    reasons = [json.loads(a["detail"])["reason"] for a in alerts if a["alert"] == "order stuck"]
    assert reasons == ["ORDER_STUCK:ENTRY:RESENT", "ORDER_STUCK:ENTRY:GIVEN_UP"]
    flip = next(r for r in signals if r["ts_min"] == at(2))
    assert (flip["chosen_action"], flip["reason_code"]) == ("EXIT", "SCRIPTED_ENTER_SHORT:ENTRY_GIVEN_UP")
    assert not [f for f in fills if f["purpose"] == "entry" and f["side"] == "SELL"]
    later = [r for r in signals if r["ts_min"] > at(6)]
    assert later and all(json.loads(r["acceptance_state"])["state"] == "FLAT" for r in later), "nothing left waiting"


def test_order_policy():
    assert policy.must_complete("MARKET")
    assert not any(policy.must_complete(t) for t in ("LIMIT", "STOP_MARKET", "MARKET_IF_TOUCHED"))
    assert not policy.overdue(0, 59_999, 50_000) and policy.overdue(0, 60_000, 1)
    assert not policy.overdue(0, 600_000, 0), "no tick since it was sent: a gap of the data, not a stuck order"
    assert [policy.on_stuck(n) for n in range(3)] == [policy.RESEND, policy.GIVE_UP, policy.GIVE_UP]
    assert policy.stuck_reason("time", policy.GIVE_UP) == "ORDER_STUCK:TIME:GIVEN_UP"


def test_heat_in_the_snapshots_is_risk_over_equity(tmp_path):
    """At the cap a 10-tick stop risks 1.999 x 1.1 ≈ 2.2 USDT of 10,000: 0.02 %, not the
    thousands of percent the free margin (≈ 0 at the cap) gave."""
    catalog = cap_market(tmp_path)
    script = {at(0): enter(1, PRICE + 0.1, PRICE - 1.0, PRICE + 500, PRICE + 1000)}
    result, *_ = run_scripted(tmp_path, catalog, AuctionConfig().with_overrides([*DEFAULT_SIZES, "use_limit_for_entry=false"]), script)
    import sqlite3

    rows = sqlite3.connect(result.out_dir / "execution.db").execute("SELECT position_state, account_state FROM state_snapshots").fetchall()
    heats = [json.loads(a)["heat"] for p, a in rows if p != "null" and json.loads(p)["qty"] > 0]
    assert heats and all(h == pytest.approx(1.999 * (50_000.2 - 49_999.0) / 10_000, rel=0.01) for h in heats), heats
