"""Paper restart: ``kill -9`` of a paper node mid-position, then a restart that resumes the same
trade on the paper venue from the stored account (Bybit stand-in on 127.0.0.1 for market data).

The node runs the real AuctionStrategy with one scripted entry (tests/live_script.py): 0.5 BTC long
at market (10 USDT risk over a 200-tick stop on 100 000 USDT), a stop 200 ticks below the signal's
ask and TP1/TP2 3 and 6 ticks above it. The paper venue is the backtest's engine inside the node's
process, so SIGKILL loses it; the checkpoint keeps its balance (after the entry's fee) and position.
The restarted node rebuilds the venue with that balance, opens the stored position again at the
stored average price and places the plan's stop and targets again, once, at the same levels; the
old orders are stored as MISSING. Time stop, cooldown and the kill switch's day baseline are the
checkpointed ones.

The resumed trade then runs on pushed prices: TP1 (the stop resized and moved to the entry price),
then the stop at the entry price. Its fills book on the resumed trade (the positions row's
quantities, prices and fees are those of the stored fills) and the balance moves from the stored
one by exactly what the exits realised, net of their fees.

That trade loses about 25 USDT, past ``max_daily_loss`` 0.0002 (20 USDT) - not while it is open
(about 12.6 USDT then) - so the kill switch trips at the next minute close; a second ``kill -9`` and
restart keeps it tripped (same day baseline and trip time) and resumes the flat account's balance.

Hand-checked levels (quotes (50000.0, 50000.1), 1 tick of slippage on market-type fills, taker 5
bps): entry 0.5 @ 50000.2 (fee 12.50005); TP1 touched at bid 50000.4, filled 0.15 @ 50000.3; the
stop at 50000.2 touched at bid 49999.0, filled 0.35 @ 49998.9.
"""

from __future__ import annotations

import json
import threading
import time
from decimal import Decimal

import pytest

from tests.live_harness import NodeProcess, checkpoint, endpoint_args, minute_ms_after, preseed, rows, until
from tests.live_script import SCRIPT_ENV
from tests.test_live_orders import BID, TICK

standin_mod = pytest.importorskip("tests.bybit_standin", reason="the Bybit stand-in (tests/bybit_standin) is not in this tree")

SETS = ["warmup_minutes=2", "rolling_window_minutes=3", "spread_lookback_minutes=3", "min_va_bins=1", "require_manual_activation=false",
        "starting_balance=100000", "risk_pct=0.0001", "cooldown_minutes=7", "use_limit_for_entry=false", "max_hold_minutes=45",
        "max_daily_loss=0.0002"]  # fmt: skip
PROTECTION = ("stop", "tp1", "tp2")


class QuotePusher:
    """Quotes at (bid, bid + 1 tick) every 250 ms and, every second, a 0.001 print at the ask 100 ms
    after a quote. :meth:`move` changes the book with a quote alone: the paper venue (like the
    backtest) takes a trade as both best bid and best ask, and Bybit stamps both in milliseconds -
    a print in the same millisecond as the quote would be matched first (trades before quotes at
    equal times) and the fill priced off the previous quote."""

    def __init__(self, standin) -> None:
        self.s = standin
        self.bid = BID
        self._lock = threading.Lock()
        self._moved = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        n = 0
        while not self._stop.wait(0.25):
            bid = self.bid
            self.s.push_quote(str(bid), str(bid + TICK))
            n += 1
            if n % 4 == 0 and not self._stop.wait(0.1):
                with self._lock:  # at the ask now, and never within 50 ms of a move's quote
                    if time.monotonic() - self._moved > 0.05:
                        self.s.push_trade(str(self.bid + TICK), "0.001", "Buy")

    def move(self, bid: Decimal) -> None:
        with self._lock:
            self.bid = bid
            self.s.push_quote(str(bid), str(bid + TICK))
            self._moved = time.monotonic()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def _open_orders(data) -> dict[str, dict]:
    """purpose -> the stored order rows of the paper venue that are working (ACCEPTED)."""
    out: dict[str, list] = {}
    for o in rows(data, "orders"):
        if o["status"] == "ACCEPTED":
            out.setdefault(o["purpose"], []).append(o)
    return out


def _levels(orders: dict[str, list]) -> dict[str, tuple[str, float, float]]:
    return {p: (o[0]["side"], o[0]["qty"], round(o[0]["trigger_price"], 1)) for p, o in orders.items()}


def _protected(data) -> tuple[dict, dict] | None:
    """(checkpoint, working orders) once the checkpoint holds the open trade, the paper position and
    exactly the working stop, TP1 and TP2 of the store."""
    orders = _open_orders(data)
    if sorted(orders) != sorted(PROTECTION) or any(len(v) != 1 for v in orders.values()):
        return None
    cp = checkpoint(data)
    life = (cp.get("strategy") or {}).get("lifecycle") or {}
    if life.get("trade") is None or not (cp.get("paper") or {}).get("position"):
        return None
    t = life["trades"][life["trade"]]
    ids = {t["stop_id"], t["tp_ids"].get("tp1"), t["tp_ids"].get("tp2")}
    return (cp, orders) if ids == {o[0]["client_order_id"] for o in orders.values()} else None


def _fills(data, purpose: str) -> list[dict]:
    return [f for f in rows(data, "fills") if f["purpose"] == purpose]


def test_paper_kill_9_mid_position_resumes_the_account_and_the_trade(tmp_path):
    s = standin_mod.StandIn(seed=7, port=0, feed=False).start()
    pusher = QuotePusher(s)
    data = tmp_path / "live"
    preseed(data, 3)
    script = {"enter_ts_min": minute_ms_after(20), "direction": 1, "stop_ticks": 200, "tp1_ticks": 3, "tp2_ticks": 6, "at": "touch"}
    args = ["--paper", "--data-dir", str(data), *endpoint_args(s), *[a for x in SETS for a in ("--set", x)]]
    env = {SCRIPT_ENV: json.dumps(script)}
    nodes: list[NodeProcess] = []

    def start() -> NodeProcess:
        nodes.append(NodeProcess(args, env=env, scripted=True))
        return nodes[-1]

    try:
        node = start()
        assert node.wait_for(r"warm-up complete", 40), node.output[-3000:]
        before, old_orders = until(lambda: _protected(data), 120, "the paper entry, its protection and the checkpoint holding them", node)
        entry = _fills(data, "entry")
        assert [(f["side"], f["qty"], f["price"], f["commission"]) for f in entry] == [("BUY", 0.5, 50000.2, pytest.approx(12.50005))]
        paper = before["paper"]
        assert Decimal(paper["balance"]) == Decimal("100000") - Decimal("12.50005")  # the entry's fee, to the last unit
        assert {k: paper["position"][k] for k in ("side", "qty", "avg_px")} == {"side": "LONG", "qty": "0.5", "avg_px": "50000.2"}
        levels = _levels(old_orders)
        assert levels == {"stop": ("SELL", 0.5, float(BID + TICK - 200 * TICK)), "tp1": ("SELL", 0.15, 50000.4), "tp2": ("SELL", 0.35, 50000.7)}
        killed_ms = node.kill()
        assert s.orders_received() == 0  # paper sends nothing to the venue

        # Restart: the stored account, the same trade, its protection placed again once.
        node = start()
        assert node.wait_for(r"restart: checkpoint restored \(\d+ ticks re-fed\): LONG 0\.5 @ 50000\.2", 60), node.output[-3000:]
        resumed = node.wait_for(r"restart: paper account resumed: balance ([\d.]+) USDT, LONG 0\.5 @ 50000\.2; 3 working order\(s\) of the plan lost with the old venue, placed again as 3: stop \S+, tp1 \S+, tp2 \S+", 10)
        assert resumed and resumed.group(1) == paper["balance"], node.output[-3000:]
        after, new_orders = until(lambda: (p := _protected(data)) and p[0]["_ts_ms"] > killed_ms and p, 30, "the resumed trade's protection in the store", node)
        assert after["paper"]["balance"] == paper["balance"]  # to the last unit: no fee, no P&L from the re-opening
        assert {k: after["paper"]["position"][k] for k in ("side", "qty", "avg_px")} == {k: paper["position"][k] for k in ("side", "qty", "avg_px")}
        assert _levels(new_orders) == levels  # same levels and sizes, one order each
        assert {o[0]["client_order_id"] for o in new_orders.values()}.isdisjoint({o[0]["client_order_id"] for o in old_orders.values()})
        stored = {o["client_order_id"]: o["status"] for o in rows(data, "orders")}
        assert all(stored[o[0]["client_order_id"]] == "MISSING" for o in old_orders.values())
        assert len(stored) == 1 + 3 + 3  # entry, the old protection, the new: nothing else placed
        b, a = before["strategy"], after["strategy"]
        assert a["signals"]["position"]["time_stop"] == b["signals"]["position"]["time_stop"]
        assert a["signals"]["position"]["opened_ts"] == b["signals"]["position"]["opened_ts"]
        assert a["signals"]["cooldown"] == b["signals"]["cooldown"]
        assert {k: a["kill_switch"][k] for k in ("day", "day_start_balance", "day_start_equity", "active")} == \
               {k: b["kill_switch"][k] for k in ("day", "day_start_balance", "day_start_equity", "active")}
        assert not a["kill_switch"]["active"]

        # The resumed trade on pushed prices: TP1, the stop moved to the entry price, the stop.
        pusher.move(Decimal("50000.4"))
        until(lambda: _fills(data, "tp1"), 20, "TP1 to fill", node)
        until(lambda: (o := _open_orders(data)).get("stop") and (o["stop"][0]["qty"], round(o["stop"][0]["trigger_price"], 1)) == (0.35, 50000.2), 20, "the stop at 0.35 moved to the entry price", node)
        pusher.move(Decimal("49999.0"))
        until(lambda: _fills(data, "stop"), 20, "the stop to fill", node)
        closed = until(lambda: [p for p in rows(data, "positions") if p["status"] != "OPEN"], 20, "the trade's positions row closed", node)
        assert _open_orders(data) == {}  # TP2 cancelled once flat
        tp1, stop = _fills(data, "tp1"), _fills(data, "stop")
        assert [(f["qty"], f["price"]) for f in tp1] == [(0.15, 50000.3)] and [(f["qty"], f["price"]) for f in stop] == [(0.35, 49998.9)]
        p = closed[0]
        assert (p["side"], p["status"], p["exit_reason"], p["qty_contracts"], p["entry_price"]) == ("LONG", "STOPPED", "stop", 0.5, 50000.2)
        assert p["exit_price"] == pytest.approx((0.15 * 50000.3 + 0.35 * 49998.9) / 0.5)
        assert p["realized_pnl"] == pytest.approx(0.15 * 0.1 - 0.35 * 1.3)
        assert p["fees_paid"] == pytest.approx(entry[0]["commission"] + tp1[0]["commission"] + stop[0]["commission"])
        assert len([r for r in rows(data, "positions")]) == 1  # the same trade, one row

        # The kill switch trips at the next minute close; the account: stored balance + what the exits realised.
        tripped = until(lambda: (cp := checkpoint(data)).get("strategy", {}).get("kill_switch", {}).get("active") and cp, 90, "the kill switch to trip", node)
        realised = Decimal("0.15") * (Decimal("50000.3") - Decimal("50000.2")) + Decimal("0.35") * (Decimal("49998.9") - Decimal("50000.2"))
        fees = Decimal(str(tp1[0]["commission"])) + Decimal(str(stop[0]["commission"]))
        assert Decimal(tripped["paper"]["balance"]) == Decimal(paper["balance"]) + realised - fees
        assert tripped["paper"]["position"] is None
        killed_ms = node.kill()

        # A restart after the kill switch tripped: still tripped, the same baseline; the flat account's balance.
        node = start()
        assert node.wait_for(r"restart: checkpoint restored \(\d+ ticks re-fed\): flat; kill switch TRIPPED \(day start balance 100000\.00\)", 60), node.output[-3000:]
        assert node.wait_for(r"restart: paper account resumed: balance " + tripped["paper"]["balance"].replace(".", r"\.") + " USDT, flat", 10), node.output[-3000:]
        fresh = until(lambda: (cp := checkpoint(data)).get("_ts_ms", 0) > killed_ms and cp, 75, "a checkpoint from the restarted node", node)
        ks, was = fresh["strategy"]["kill_switch"], tripped["strategy"]["kill_switch"]
        assert {k: ks[k] for k in ("day", "day_start_balance", "day_start_equity", "active", "tripped_at")} == \
               {k: was[k] for k in ("day", "day_start_balance", "day_start_equity", "active", "tripped_at")}
        assert fresh["paper"] == {**tripped["paper"], "last_ts": fresh["paper"]["last_ts"]}
        assert s.orders_received() == 0
    finally:
        for n in nodes[:-1]:
            if n.proc.poll() is None:
                n.proc.kill()
        rc = nodes[-1].stop() if nodes else None
        pusher.stop()
        s.stop()
    assert rc == 0, nodes[-1].output[-3000:]
    assert [a["type"] for a in rows(data, "alerts")].count("kill_switch") == 1  # tripped once; the restart did not re-trip it
