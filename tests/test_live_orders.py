"""``run_live.py --live`` against the Bybit v5 stand-in: a whole trade's orders on the venue.

The stand-in runs without its synthetic feed; a pusher thread here streams a book the test moves
(quotes every 250 ms, a small print at the ask every second), so every order's fate is decided by
the test. The node runs the real AuctionStrategy with one scripted entry (tests/live_script.py):

* DEMO (orders over REST): a market entry; stop and two targets placed reduce-only; the price rises
  through TP1 - 30 % sells, the stop is resized to the rest and moved to the entry price; then
  through TP2 - flat, and the stop is cancelled. The stand-in ends flat with no open order.
* MAINNET (orders over the trade socket), slower: a limit entry at the bid that nothing fills is
  cancelled after ``limit_order_timeout_minutes`` and the remainder goes at market; then the same
  exits.

Every order is kept in the store's ``orders`` table by client order id with its purpose.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from decimal import Decimal

import pytest

from tests.live_harness import REPO, NodeProcess, endpoint_args, minute_ms_after, preseed, rows, until
from tests.live_script import SCRIPT_ENV

standin_mod = pytest.importorskip("tests.bybit_standin", reason="the Bybit stand-in (tests/bybit_standin) is not in this tree")

BID = Decimal("50000.0")
TICK = Decimal("0.1")


class Pusher:
    """Quotes at (bid, bid + 1 tick) every 250 ms and a 0.001 print at the ask every second."""

    def __init__(self, standin) -> None:
        self.s = standin
        self.bid = BID
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        n = 0
        while not self._stop.wait(0.25):
            bid = self.bid
            self.s.push_quote(str(bid), str(bid + TICK))
            n += 1
            if n % 4 == 0:
                self.s.push_trade(str(bid + TICK), "0.001", "Buy")

    def move(self, bid: Decimal) -> None:
        """New book, and a print at the new ask (stops and targets trigger on the last price)."""
        self.bid = bid
        self.s.push_quote(str(bid), str(bid + TICK))
        self.s.push_trade(str(bid + TICK), "0.001", "Buy" if bid >= BID else "Sell")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def _size(standin) -> Decimal:
    return Decimal(str(standin.position().get("size", "0") or "0"))


def _run_trade(tmp_path, environment: str, limit_entry: bool, faults: int = 0) -> dict[str, Decimal]:
    """``faults``: that many rate-limit answers (10006) to the first order requests, and that many
    drops of each socket (public, private, trade) once the entry has filled. Returns the filled
    quantity per purpose, as the node stored its fills."""
    s = standin_mod.StandIn(seed=7, port=0, feed=False).start()
    pusher = Pusher(s)
    node = None
    try:
        data = tmp_path / "live"
        preseed(data, 3)
        # 10 USDT risk over a 20 USDT stop: 0.5 BTC; TP1 +0.3, TP2 +0.6 from the entry price.
        script = {"enter_ts_min": minute_ms_after(25), "direction": 1, "stop_ticks": 200, "tp1_ticks": 3, "tp2_ticks": 6, "at": "passive" if limit_entry else "touch"}
        sets = ["warmup_minutes=2", "rolling_window_minutes=3", "spread_lookback_minutes=3", "min_va_bins=1", "require_manual_activation=false",
                "risk_pct=0.0001", "cooldown_minutes=0", f"use_limit_for_entry={'true' if limit_entry else 'false'}", "limit_order_timeout_minutes=1"]  # fmt: skip
        args = ["--live", "--yes-i-mean-live", "--environment", environment, "--data-dir", str(data), *endpoint_args(s), *[a for x in sets for a in ("--set", x)]]
        suffix = "_DEMO" if environment == "demo" else ""
        env = {SCRIPT_ENV: json.dumps(script), f"BYBIT_API_KEY{suffix}": s.api_key, f"BYBIT_API_SECRET{suffix}": s.api_secret}
        node = NodeProcess(args, env=env, scripted=True)
        assert node.wait_for(r"warm-up complete", 40), node.output[-3000:]
        # --live starts in observation whatever require_manual_activation says: activate it
        activate = subprocess.run([sys.executable, "run_live.py", "activate", "--data-dir", str(data)], cwd=REPO, capture_output=True, text=True, timeout=30)
        assert activate.returncode == 0, activate.stdout + activate.stderr
        if faults:
            s.fail_next(faults, 10006, "orders")
        if limit_entry:
            limit = until(lambda: [o for o in s.open_orders() if o["orderType"] == "Limit"], 90, "the limit entry on the venue", node)
            assert Decimal(limit[0]["price"]) == BID and limit[0]["side"] == "Buy" and Decimal(limit[0]["qty"]) == Decimal("0.5")
        until(lambda: _size(s) == Decimal("0.5"), 150 if limit_entry else 90, "the entry to fill 0.5 BTC", node)
        protection = until(lambda: len([o for o in s.open_orders() if o.get("reduceOnly")]) == 3 and s.open_orders(), 20, "stop, TP1 and TP2", node)
        if faults:
            before = s.stats()["connects"]
            for kind in ("public", "private", "trade"):
                s.drop(kind, times=faults, after_ms=300)
            until(lambda: all(s.stats()["connects"][k] >= before[k] + faults for k in before) and all(s.stats()["open"][k] for k in before), 60, "every socket back after its drops", node, s)
        triggers = sorted(Decimal(o["triggerPrice"]) for o in protection)
        entry = Decimal(str(s.position()["avgPrice"]))
        assert triggers == [entry - 200 * TICK if not limit_entry else BID - 200 * TICK, BID + 3 * TICK if limit_entry else entry + 3 * TICK, BID + 6 * TICK if limit_entry else entry + 6 * TICK]
        pusher.move(entry + 3 * TICK)  # through TP1
        until(lambda: _size(s) == Decimal("0.35"), 20, "TP1 to sell 0.15", node, s)

        def stop_at_entry():
            stops = [o for o in s.open_orders() if o.get("reduceOnly") and Decimal(o["triggerPrice"]) < entry + TICK]
            return stops and Decimal(stops[0]["triggerPrice"]) == entry and Decimal(stops[0]["qty"]) == Decimal("0.35") and stops

        until(stop_at_entry, 40, "the stop resized to 0.35 and moved to the entry price", node, s)
        pusher.move(entry + 6 * TICK)  # through TP2: flat
        until(lambda: _size(s) == 0, 20, "TP2 to close the rest", node)
        until(lambda: s.open_orders() == [], 40, "the stop to be cancelled once flat", node, s)
        time.sleep(1)
        venue_all = s.orders()
        venue_fills = s.fills()
    finally:
        rc = node.stop() if node is not None else None
        pusher.stop()
        s.stop()
    assert rc == 0, node.output[-3000:]
    links = [o["orderLinkId"] for o in venue_all]
    assert len(links) == len(set(links)), "no order reached the venue twice"
    orders = rows(data, "orders")
    purposes = {o["purpose"] for o in orders}
    assert {"entry", "stop", "tp1", "tp2"} <= purposes, orders
    assert len({o["client_order_id"] for o in orders}) == len(orders)
    # Every venue fill is in the store's fills table, with its order's purpose, price, size and fee.
    stored = sorted((f["client_order_id"], Decimal(repr(f["price"])), Decimal(repr(f["qty"])), Decimal(repr(f["commission"]))) for f in rows(data, "fills"))
    assert stored == sorted((f["order_link_id"], Decimal(f["price"]), Decimal(f["qty"]), Decimal(f["fee"])) for f in venue_fills), (stored, venue_fills)
    purpose_of = {o["client_order_id"]: o["purpose"] for o in orders}
    assert all(f["purpose"] == purpose_of[f["client_order_id"]] for f in rows(data, "fills")), rows(data, "fills")
    if limit_entry:
        entries = [o for o in orders if o["purpose"] == "entry"]
        assert [o["order_type"] for o in entries] == ["LIMIT", "MARKET"] and entries[0]["status"] == "CANCELED"
    filled: dict[str, Decimal] = {}
    for f in rows(data, "fills"):
        filled[f["purpose"]] = filled.get(f["purpose"], Decimal(0)) + Decimal(repr(f["qty"]))
    return filled


# 0.5 BTC in; TP1 takes 30 % (0.15), TP2 the rest (0.35); the stop never fills.
WHOLE_TRADE = {"entry": Decimal("0.5"), "tp1": Decimal("0.15"), "tp2": Decimal("0.35")}


def test_live_demo_market_entry_protection_tp1_breakeven_and_flat(tmp_path):
    assert _run_trade(tmp_path, "demo", limit_entry=False) == WHOLE_TRADE


def test_live_mainnet_through_rate_limits_and_dropped_sockets(tmp_path):
    """Three 10006 answers to the first order requests, then every socket dropped three times in a
    row while stop and targets rest: the trade still ends flat with nothing left open, and no
    order reached the venue twice."""
    assert _run_trade(tmp_path, "mainnet", limit_entry=False, faults=3) == WHOLE_TRADE


@pytest.mark.slow
def test_live_mainnet_limit_entry_times_out_to_market_then_exits(tmp_path):
    assert _run_trade(tmp_path, "mainnet", limit_entry=True) == WHOLE_TRADE
