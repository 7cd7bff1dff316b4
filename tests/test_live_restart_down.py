"""Fills while the node was down (live, Bybit stand-in on 127.0.0.1).

The node enters 0.5 BTC long with its stop 200 ticks below and TP1/TP2 3 and 6 ticks above (the
setting of tests/test_live_restart.py) and is killed with SIGKILL. While it is down the stand-in's
market moves:

1. to TP1: the plan's TP1 fills at the venue (0.15). The restarted node learns it from Nautilus's
   reconciliation and books it on the restored trade - TP1 done, the stop resized to the remaining
   0.35 and moved to the entry price - with no halt and nothing placed again (one amend of the stop);
2. (killed again) to the stop, now at the entry price: the rest fills. The next restart books it:
   the trade is closed (exit reason ``stop``, its positions row holding both exits and their fees),
   TP2 is cancelled, the cooldown starts; no halt, no order placed;
3. (killed again, flat) a market order placed by hand fills: an order the plan does not own. The next
   restart finds a position the plan does not explain: one ``position_mismatch`` alert and HALT.
"""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from tests.live_harness import checkpoint, rows, until
from tests.test_live_orders import TICK, _size
from tests.test_live_restart import Trade, _creates, _protection

standin_mod = pytest.importorskip("tests.bybit_standin", reason="the Bybit stand-in (tests/bybit_standin) is not in this tree")


def _alerts(data, *types: str) -> list[dict]:
    return [a for a in rows(data, "alerts") if a["type"] in types]


def test_live_restart_books_the_plans_fills_made_while_down_and_halts_on_a_manual_one(tmp_path):
    t = Trade(tmp_path)
    try:
        t.open()
        s, entry = t.s, t.entry
        tp1_id = next(k for k, v in t.venue.items() if v[2] == entry + 3 * TICK)
        tp2_id = next(k for k, v in t.venue.items() if v[2] == entry + 6 * TICK)
        t.nodes[-1].kill()
        creates = _creates(s)
        assert len(creates) == 4

        # 1. TP1 fills while the node is down.
        t.pusher.move(entry + 3 * TICK)
        until(lambda: _size(s) == Decimal("0.35"), 20, "TP1 to fill at the venue while the node is down", t.nodes[-1], s)
        t.pusher.move(entry + TICK)  # back between the entry and TP2: nothing else triggers
        node = t.start()
        assert node.wait_for(r"reconciliation at start: MATCH: venue matches the plan \(LONG 0\.35, 2 order\(s\)\)", 90), node.output[-4000:]
        until(lambda: _protection(s).get(t.stop_id) == ("Sell", Decimal("0.35"), entry), 30, "the stop at 0.35 moved to the entry price", node, s)
        time.sleep(2)
        assert _creates(s) == creates  # the stop amended, nothing placed again
        assert set(_protection(s)) == {t.stop_id, tp2_id}
        life = checkpoint(t.data)["strategy"]["lifecycle"]
        trade = life["trades"][life["trade"]]
        assert trade["tp1_done"] and trade["breakeven"] and trade["exited_steps"] == 150
        assert [f["purpose"] for f in rows(t.data, "fills") if f["client_order_id"] == tp1_id] == ["tp1"]
        assert "HALTED" not in node.output and _alerts(t.data, "position_mismatch", "halt") == []
        node.kill()

        # 2. The stop (at the entry price now) fills while the node is down.
        t.pusher.move(entry - 2 * TICK)
        until(lambda: _size(s) == 0, 20, "the stop to fill at the venue while the node is down", node, s)
        node = t.start()
        assert node.wait_for(r"reconciliation at start: MATCH: venue matches the plan \(flat, 0 order\(s\)\)", 90), node.output[-4000:]
        until(lambda: s.open_orders() == [], 30, "TP2 to be cancelled", node, s)
        closed = until(lambda: [p for p in rows(t.data, "positions") if p["status"] != "OPEN"], 20, "the trade's positions row closed", node)
        assert len(closed) == 1
        p = closed[0]
        fills = {f["purpose"]: f for f in rows(t.data, "fills")}
        assert sorted(fills) == ["entry", "stop", "tp1"]
        assert (p["side"], p["status"], p["exit_reason"], p["qty_contracts"]) == ("LONG", "STOPPED", "stop", 0.5)
        assert p["entry_price"] == pytest.approx(fills["entry"]["price"])
        assert p["exit_price"] == pytest.approx((0.15 * fills["tp1"]["price"] + 0.35 * fills["stop"]["price"]) / 0.5)
        assert p["fees_paid"] == pytest.approx(sum(f["commission"] for f in fills.values()))
        assert p["realized_pnl"] == pytest.approx(0.15 * (fills["tp1"]["price"] - p["entry_price"]) + 0.35 * (fills["stop"]["price"] - p["entry_price"]))
        stop_row = next(o for o in rows(t.data, "orders") if o["client_order_id"] == t.stop_id)
        assert (stop_row["status"], stop_row["qty"], round(stop_row["trigger_price"], 1)) == ("FILLED", 0.35, float(entry))  # moved to the entry price
        cp = checkpoint(t.data)["strategy"]
        assert cp["lifecycle"]["trade"] is None and cp["signals"]["cooldown"]  # the cooldown started at the close
        time.sleep(2)
        assert _creates(s) == creates
        assert "HALTED" not in node.output and _alerts(t.data, "position_mismatch", "halt") == []
        node.kill()

        # 3. A manual market order fills while the node is down (flat): not the plan's.
        s.seed_order(side="Buy", orderType="Market", qty="0.2")
        until(lambda: _size(s) == Decimal("0.2"), 20, "the manual order to fill", node, s)
        node = t.start()
        assert node.wait_for(r"reconciliation at start: HALT: position mismatch: venue LONG 0\.2, plan flat", 90), node.output[-4000:]
        until(lambda: _alerts(t.data, "position_mismatch"), 20, "the position_mismatch alert", node)
        time.sleep(2)
        assert len(_alerts(t.data, "position_mismatch")) == 1
        assert _creates(s) == creates  # nothing sent: no close, no protection for a position the plan does not own
    finally:
        rc = t.close()
    assert rc == 0, t.nodes[-1].output[-3000:]
