"""Plan vs venue, hand-built: MATCH / REPROTECT / HALT at start, and the running check's
confirmations, in-flight and stale-snapshot skips, and foreign fills."""

from __future__ import annotations

import pytest

from auction_trader.live.control import ControlState, Controller
from auction_trader.live.reconcile import (
    HALT,
    MATCH,
    REPROTECT,
    Plan,
    PlannedOrder,
    RunningReconciler,
    VenueOrder,
    VenueSnapshot,
    act,
    plan_from_state,
    reconcile,
    snapshot_from_bybit,
)

# A long of 0.003 BTC: stop 86_900.0 for all, TP1 0.002 at 87_200.0, TP2 0.001 at 87_400.0.
STOP = PlannedOrder("AT-2-stop", "stop", "SELL", "STOP_MARKET", 0.003, None, 86_900.0)
TP1 = PlannedOrder("AT-2-tp1", "tp1", "SELL", "LIMIT", 0.002, 87_200.0)
TP2 = PlannedOrder("AT-2-tp2", "tp2", "SELL", "LIMIT", 0.001, 87_400.0)
PLAN = Plan("LONG", 0.003, 86_900.0, 87_200.0, 0.002, 87_400.0, 0.001, (STOP, TP1, TP2), updated_ms=1_000)


def venue_order(o: PlannedOrder, **change) -> VenueOrder:
    fields = {"client_order_id": o.client_order_id, "side": o.side, "order_type": o.order_type, "qty": o.qty, "price": o.price,
              "trigger_price": o.trigger_price}
    return VenueOrder(**(fields | change))


def venue(side="LONG", qty=0.003, orders=(STOP, TP1, TP2), ts_ms=2_000, extra=()) -> VenueSnapshot:
    return VenueSnapshot(side, qty, 87_000.0, tuple(venue_order(o) for o in orders) + tuple(extra), ts_ms)


# -- at start --------------------------------------------------------------------------------------


def test_match_resumes():
    v = reconcile(PLAN, venue())
    assert v.action == MATCH and v.reason == "venue matches the plan (LONG 0.003, 3 order(s))"


def test_flat_and_flat_match():
    assert reconcile(Plan(None, 0.0), VenueSnapshot(None, 0.0)).action == MATCH
    assert reconcile(Plan("LONG", 0.0), VenueSnapshot(None, 0.0)).action == MATCH  # qty 0 is flat whatever the side


def test_float_noise_is_not_a_mismatch_but_one_step_is():
    assert reconcile(PLAN, venue(qty=0.0030000000004)).action == MATCH
    v = reconcile(PLAN, venue(qty=0.004))
    assert v.action == HALT and v.reason == "position mismatch: venue LONG 0.004, plan LONG 0.003"


def test_one_contract_position():
    stop = PlannedOrder("AT-9-stop", "stop", "BUY", "STOP_MARKET", 0.001, None, 87_100.0)
    plan = Plan("SHORT", 0.001, 87_100.0, orders=(stop,))
    assert reconcile(plan, VenueSnapshot("SHORT", 0.001, 87_000.0, (venue_order(stop),))).action == MATCH
    v = reconcile(plan, VenueSnapshot(None, 0.0))
    assert (v.action, v.reason) == (HALT, "position mismatch: venue flat, plan SHORT 0.001")
    v = reconcile(plan, VenueSnapshot("LONG", 0.001, 87_000.0, (venue_order(stop),)))
    assert v.reason == "position mismatch: venue LONG 0.001, plan SHORT 0.001"
    v = reconcile(Plan(None, 0.0), VenueSnapshot("SHORT", 0.001))
    assert v.reason == "position mismatch: venue SHORT 0.001, plan flat"


def test_protection_missing_is_reprotect_with_the_orders_to_place():
    v = reconcile(PLAN, venue(orders=(TP1,)))
    assert v.action == REPROTECT
    assert v.place == (STOP, TP2)
    assert v.reason == "position matches (LONG 0.003); protection missing on the venue: stop AT-2-stop, tp2 AT-2-tp2"


def test_protection_orders_left_when_flat_are_a_halt():
    plan = Plan(None, 0.0, orders=(STOP,))
    v = reconcile(plan, VenueSnapshot(None, 0.0))
    assert v.action == HALT and "claimed order AT-2-stop (stop) is not on the venue" in v.reason


def test_missing_entry_order_is_a_halt():
    entry = PlannedOrder("AT-3-entry", "entry", "BUY", "LIMIT", 0.002, 86_950.0)
    v = reconcile(Plan(None, 0.0, orders=(entry,)), VenueSnapshot(None, 0.0))
    assert v.action == HALT and v.reason == "claimed order AT-3-entry (entry) is not on the venue"


def test_foreign_or_manual_venue_order_is_a_halt():
    manual = VenueOrder(None, "SELL", "LIMIT", 0.003, 88_000.0)
    v = reconcile(PLAN, venue(extra=(manual,)))
    assert v.action == HALT and v.reason == "venue order not in the plan: no client id SELL LIMIT 0.003"
    other = VenueOrder("someone-else-1", "BUY", "MARKET", 0.001)
    assert reconcile(PLAN, venue(extra=(other,))).reason.startswith("venue order not in the plan: someone-else-1")


def test_claimed_order_with_other_levels_is_a_halt():
    moved = venue_order(STOP, trigger_price=86_500.0)
    v = reconcile(PLAN, VenueSnapshot("LONG", 0.003, 87_000.0, (moved, venue_order(TP1), venue_order(TP2))))
    assert v.action == HALT and v.reason == "order AT-2-stop (stop) differs from the plan: trigger"
    bigger = venue_order(TP1, qty=0.003, side="BUY")
    v = reconcile(PLAN, VenueSnapshot("LONG", 0.003, 87_000.0, (venue_order(STOP), bigger, venue_order(TP2))))
    assert v.reason == "order AT-2-tp1 (tp1) differs from the plan: side, qty"
    # within half a tick is the same level
    near = venue_order(STOP, trigger_price=86_900.04)
    assert reconcile(PLAN, VenueSnapshot("LONG", 0.003, 87_000.0, (near, venue_order(TP1), venue_order(TP2)))).action == MATCH


def test_partly_filled_entry_resting_matches():
    """Entry of 0.005: 0.002 filled (the plan knows), 0.003 still resting; stop sized to what is open."""
    entry = PlannedOrder("AT-4-entry", "entry", "BUY", "LIMIT", 0.003, 86_950.0)
    stop = PlannedOrder("AT-4-stop", "stop", "SELL", "STOP_MARKET", 0.002, None, 86_800.0)
    plan = Plan("LONG", 0.002, 86_800.0, orders=(entry, stop))
    assert reconcile(plan, VenueSnapshot("LONG", 0.002, 86_950.0, (venue_order(entry), venue_order(stop)))).action == MATCH


def test_bad_side_is_an_error():
    with pytest.raises(ValueError, match="plan side must be LONG, SHORT or None"):
        Plan("BUY", 0.001)


def test_plan_from_state():
    rows = [{"client_order_id": "AT-2-stop", "purpose": "stop", "side": "SELL", "order_type": "STOP_MARKET", "qty": 0.003,
             "price": None, "trigger_price": 86_900.0}]
    plan = plan_from_state({"side": "LONG", "qty": 0.003, "stop": 86_900.0}, rows, updated_ms=5)
    assert plan.orders == (STOP,) and plan.side == "LONG" and plan.updated_ms == 5
    assert plan_from_state(None, []).side is None


# -- while running ---------------------------------------------------------------------------------


def test_two_consecutive_mismatches_halt_one_does_not():
    r = RunningReconciler(interval_s=30, confirmations=2, max_age_s=10)
    assert r.check(PLAN, venue(qty=0.004, ts_ms=10_000), now_ms=10_500) is None
    assert r.mismatches == 1
    assert r.check(PLAN, venue(ts_ms=40_000), now_ms=40_500) is None  # a match resets
    assert r.mismatches == 0
    assert r.check(PLAN, venue(qty=0.004, ts_ms=70_000), now_ms=70_500) is None
    v = r.check(PLAN, venue(qty=0.004, ts_ms=100_000), now_ms=100_500)
    assert v.action == HALT and v.details["confirmations"] == 2 and "venue LONG 0.004, plan LONG 0.003" in v.reason


def test_interval():
    r = RunningReconciler(interval_s=30)
    assert r.due(0)
    r.check(PLAN, venue(ts_ms=1_000), now_ms=1_000)
    assert not r.due(30_999) and r.due(31_000)


def test_partial_fill_in_flight_is_no_false_mismatch():
    """The venue already shows 0.001 more (a TP1 part fill) but its fill event is still in flight."""
    r = RunningReconciler(confirmations=2)
    part = venue(qty=0.002, ts_ms=5_000)
    assert r.check(PLAN, part, now_ms=5_100) is None
    assert r.check(PLAN, part, now_ms=6_100, in_flight=True) is None
    assert r.skipped == "orders or fills in flight" and r.mismatches == 0
    assert r.check(PLAN, part, now_ms=7_100, in_flight=True) is None
    # the fill arrived: the plan now says 0.002 with TP1 resting 0.001 - a match
    plan = Plan("LONG", 0.002, orders=(PlannedOrder("AT-2-stop", "stop", "SELL", "STOP_MARKET", 0.002, None, 86_900.0),
                                       PlannedOrder("AT-2-tp1", "tp1", "SELL", "LIMIT", 0.001, 87_200.0), TP2), updated_ms=7_200)
    now = VenueSnapshot("LONG", 0.002, 87_000.0, (venue_order(plan.orders[0]), venue_order(plan.orders[1]), venue_order(TP2)), 8_000)
    assert r.check(plan, now, now_ms=8_100) is None and r.mismatches == 0


def test_stale_snapshots_are_skipped():
    r = RunningReconciler(confirmations=1, max_age_s=10)
    assert r.check(PLAN, venue(qty=0.004, ts_ms=1_000), now_ms=20_000) is None
    assert r.skipped == "venue snapshot is 19.0 s old"
    plan = Plan("LONG", 0.003, orders=PLAN.orders, updated_ms=30_000)
    assert r.check(plan, venue(qty=0.004, ts_ms=29_000), now_ms=31_000) is None
    assert r.skipped == "venue snapshot predates the plan's last change"
    v = r.check(plan, venue(qty=0.004, ts_ms=30_500), now_ms=31_000)  # fresh: confirmations=1 halts at once
    assert v.action == HALT and r.skipped is None


def test_missing_stop_while_running_reprotects_after_confirmation():
    r = RunningReconciler(confirmations=2)
    assert r.check(PLAN, venue(orders=(TP1, TP2), ts_ms=1_000), now_ms=1_000) is None
    v = r.check(PLAN, venue(orders=(TP1, TP2), ts_ms=31_000), now_ms=31_000)
    assert v.action == REPROTECT and v.place == (STOP,)


def test_fill_of_a_foreign_order_halts_at_once():
    r = RunningReconciler()
    owned = [o.client_order_id for o in PLAN.orders]
    assert r.on_fill("AT-2-tp1", owned) is None
    v = r.on_fill("manual-7", owned)
    assert v.action == HALT and v.reason == "fill of an order the plan does not own: manual-7 (manual trade?)"
    assert r.on_fill(None, owned).reason == "fill of an order the plan does not own: no client id (manual trade?)"


class Alerts:
    def __init__(self):
        self.sent = []

    def emit(self, kind, message, details=None, ts_ms=None):
        self.sent.append((kind, message))


def test_act_halts_alerts_and_returns_orders():
    alerts = Alerts()
    c = Controller(ControlState(mode="live", active=True, warmup_minutes=240), alerts)
    assert act(reconcile(PLAN, venue()), c, alerts) == () and alerts.sent == []
    assert act(reconcile(PLAN, venue(orders=(TP1, TP2))), c, alerts) == (STOP,)
    assert alerts.sent[-1][0] == "position_mismatch" and not c.state.halted
    assert act(reconcile(PLAN, venue(qty=0.001)), c, alerts) == ()
    assert c.state.halted and c.state.halt_reason == "position mismatch: venue LONG 0.001, plan LONG 0.003" and not c.may_enter()
    assert [k for k, _ in alerts.sent] == ["position_mismatch", "position_mismatch", "halt"]


# -- Bybit answers ---------------------------------------------------------------------------------
# Shapes as in Bybit v5 /v5/position/list and /v5/order/realtime (fields trimmed to the ones read).


def _bybit_order(link, side, order_type, qty, price="0", trigger="0", leaves=None, symbol="BTCUSDT", cum="0"):
    return {"orderId": f"v-{link}", "orderLinkId": link, "symbol": symbol, "side": side, "orderType": order_type, "qty": qty,
            "price": price, "triggerPrice": trigger, "leavesQty": leaves if leaves is not None else qty, "cumExecQty": cum,
            "stopOrderType": "Stop" if trigger != "0" else "", "reduceOnly": True}


def test_snapshot_from_bybit_matches_the_plan():
    positions = [{"symbol": "BTCUSDT", "side": "Buy", "size": "0.003", "avgPrice": "87000.00"},
                 {"symbol": "ETHUSDT", "side": "Sell", "size": "5.0", "avgPrice": "3000.00"}]
    orders = [_bybit_order("AT-2-stop", "Sell", "Market", "0.003", trigger="86900.00"),
              _bybit_order("AT-2-tp1", "Sell", "Limit", "0.002", price="87200.00"),
              _bybit_order("AT-2-tp2", "Sell", "Limit", "0.001", price="87400.00"),
              _bybit_order("eth-1", "Buy", "Limit", "1", price="2900", symbol="ETHUSDT")]
    snap = snapshot_from_bybit(positions, orders, "BTCUSDT", 5_000)
    assert (snap.side, snap.qty, snap.avg_price, snap.ts_ms) == ("LONG", 0.003, 87_000.0, 5_000)
    assert snap.orders[0] == VenueOrder("AT-2-stop", "SELL", "STOP_MARKET", 0.003, None, 86_900.0)
    assert snap.orders[1] == VenueOrder("AT-2-tp1", "SELL", "LIMIT", 0.002, 87_200.0, None)
    assert len(snap.orders) == 3
    assert reconcile(PLAN, snap).action == MATCH


def test_snapshot_from_bybit_flat_partial_and_manual():
    flat = snapshot_from_bybit([{"symbol": "BTCUSDT", "side": "", "size": "0", "avgPrice": "0"}], [], "BTCUSDT", 1)
    assert (flat.side, flat.qty) == (None, 0.0)
    part = snapshot_from_bybit([], [_bybit_order("AT-5-entry", "Buy", "Limit", "0.005", price="86950", leaves="", cum="0.002")], "BTCUSDT", 1)
    assert part.orders[0].qty == pytest.approx(0.003)
    manual = snapshot_from_bybit([], [_bybit_order("", "Sell", "Limit", "0.001", price="90000")], "BTCUSDT", 1)
    assert manual.orders[0].client_order_id is None
    assert reconcile(Plan(None, 0.0), manual).reason == "venue order not in the plan: no client id SELL LIMIT 0.001"
