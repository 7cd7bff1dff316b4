"""Restart recovery: ``kill -9`` of a live node (Bybit stand-in on 127.0.0.1) mid-position, then a
restart that resumes the same trade from the stored checkpoint.

The node runs the real AuctionStrategy with one scripted entry (tests/live_script.py). A long of
0.5 BTC is entered at market, protected by a stop 200 ticks below and TP1/TP2 3 and 6 ticks above;
the node is killed with SIGKILL once the checkpoint holds that plan. The restarted node rebuilds its
feature engine from the recording, restores the plan, and - after Nautilus's own reconciliation -
finds the venue matching it (MATCH): no order is sent again, the stop and targets keep their levels,
and the restored plan still drives them (TP1 resizes the stop and moves it to the entry price, TP2
ends the trade flat with the stop cancelled). The time stop's start, the cooldown and the kill
switch's day baseline are the ones checkpointed before the kill.

A second restart, with the stop deleted on the venue while the node was down, finds the position
matching and protection missing (REPROTECT): the stop is placed again at the same level, once, with
a ``position_mismatch`` alert.

A restart after the kill switch tripped restores it tripped (same day baseline and trip time) and
the restored switch frees entries only at the next 00:00 UTC.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from decimal import Decimal

import pytest

from tests.live_harness import REPO, NodeProcess, checkpoint, endpoint_args, minute_ms_after, preseed, rows, until
from tests.live_script import SCRIPT_ENV
from tests.test_live_orders import TICK, Pusher, _size

standin_mod = pytest.importorskip("tests.bybit_standin", reason="the Bybit stand-in (tests/bybit_standin) is not in this tree")

SETS = ["warmup_minutes=2", "rolling_window_minutes=3", "spread_lookback_minutes=3", "min_va_bins=1", "require_manual_activation=false",
        "risk_pct=0.0001", "cooldown_minutes=7", "use_limit_for_entry=false", "max_hold_minutes=45"]  # fmt: skip


def _creates(standin) -> list[str]:
    """orderLinkIds of every create request the venue received (accepted or not)."""
    return [r["args"].get("orderLinkId") for r in standin.order_requests() if r.get("action") == "create"]


def _protection(standin) -> dict[str, tuple[str, Decimal, Decimal]]:
    """orderLinkId -> (side, qty, trigger) of the reduce-only orders resting on the venue."""
    return {o["orderLinkId"]: (o["side"], Decimal(o["qty"]), Decimal(o["triggerPrice"])) for o in standin.open_orders() if o.get("reduceOnly")}


def _plan_in_checkpoint(data, venue: dict) -> dict | None:
    """The checkpoint, once it holds the open trade with exactly the venue's protection."""
    cp = checkpoint(data)
    life = (cp.get("strategy") or {}).get("lifecycle") or {}
    if life.get("trade") is None:
        return None
    t = life["trades"][life["trade"]]
    ids = {t["stop_id"], *[v for v in t["tp_ids"].values() if v]}
    return cp if t["opened_ns"] is not None and ids == set(venue) and ids <= set(life["owner"]) else None


class Trade:
    """A stand-in, its book pusher, a live node that entered 0.5 BTC long and placed its protection,
    and the checkpoint holding that plan."""

    def __init__(self, tmp_path) -> None:
        self.s = standin_mod.StandIn(seed=7, port=0, feed=False).start()
        self.pusher = Pusher(self.s)
        self.nodes: list[NodeProcess] = []
        self.data = tmp_path / "live"
        preseed(self.data, 3)
        script = {"enter_ts_min": minute_ms_after(20), "direction": 1, "stop_ticks": 200, "tp1_ticks": 3, "tp2_ticks": 6, "at": "touch"}
        self.args = ["--live", "--yes-i-mean-live", "--environment", "demo", "--data-dir", str(self.data), *endpoint_args(self.s),
                     *[a for x in SETS for a in ("--set", x)]]
        self.env = {SCRIPT_ENV: json.dumps(script), "BYBIT_API_KEY_DEMO": self.s.api_key, "BYBIT_API_SECRET_DEMO": self.s.api_secret}

    def open(self) -> None:
        s = self.s
        node = self.start()
        assert node.wait_for(r"warm-up complete", 40), node.output[-3000:]
        activate = subprocess.run([sys.executable, "run_live.py", "activate", "--data-dir", str(self.data)], cwd=REPO, capture_output=True, text=True, timeout=30)
        assert activate.returncode == 0, activate.stdout + activate.stderr
        until(lambda: _size(s) == Decimal("0.5"), 90, "the entry to fill 0.5 BTC", node, s)
        self.venue = until(lambda: (p := _protection(s)) and len(p) == 3 and p, 20, "stop, TP1 and TP2 on the venue", node, s)
        self.before = until(lambda: _plan_in_checkpoint(self.data, self.venue), 20, "the checkpoint to hold the protected trade", node, s)["strategy"]
        self.entry = Decimal(str(s.position()["avgPrice"]))
        assert sorted(v[2] for v in self.venue.values()) == [self.entry - 200 * TICK, self.entry + 3 * TICK, self.entry + 6 * TICK]
        self.stop_id = next(k for k, v in self.venue.items() if v[2] == self.entry - 200 * TICK)

    def start(self) -> NodeProcess:
        node = NodeProcess(self.args, env=self.env, scripted=True)
        self.nodes.append(node)
        return node

    def assert_state_kept(self) -> None:
        """Time stop, cooldown and the kill switch's day baseline: as checkpointed before the kill."""
        after, before = checkpoint(self.data)["strategy"], self.before
        assert after["signals"]["position"]["time_stop"] == before["signals"]["position"]["time_stop"]
        assert after["signals"]["position"]["opened_ts"] == before["signals"]["position"]["opened_ts"]
        assert after["signals"]["cooldown"] == before["signals"]["cooldown"]
        assert {k: after["kill_switch"][k] for k in ("day", "day_start_balance", "day_start_equity", "active")} == \
               {k: before["kill_switch"][k] for k in ("day", "day_start_balance", "day_start_equity", "active")}

    def finish_through_targets(self, node: NodeProcess, stop_id: str) -> None:
        """TP1 fills -> the stop ``stop_id`` is resized to the rest and moved to the entry price;
        TP2 -> flat and the stop cancelled: the restored plan drives the venue's orders."""
        s, entry = self.s, self.entry
        self.pusher.move(entry + 3 * TICK)
        until(lambda: _size(s) == Decimal("0.35"), 20, "TP1 to sell 0.15", node, s)
        until(lambda: _protection(s).get(stop_id) == ("Sell", Decimal("0.35"), entry), 30, "the stop at 0.35 moved to the entry price", node, s)
        self.pusher.move(entry + 6 * TICK)
        until(lambda: _size(s) == 0, 20, "TP2 to close the rest", node, s)
        until(lambda: s.open_orders() == [], 30, "the stop to be cancelled once flat", node, s)

    def close(self) -> int | None:
        rc = None
        try:
            for node in self.nodes[:-1]:
                if node.proc.poll() is None:
                    node.proc.kill()
            if self.nodes and self.nodes[-1].proc.poll() is None:
                rc = self.nodes[-1].stop()
        finally:
            self.pusher.stop()
            self.s.stop()
        return rc


def _closed_positions(data) -> list[dict]:
    return [p for p in rows(data, "positions") if p["status"] != "OPEN"]


def test_live_kill_9_mid_position_resumes_the_same_trade_and_reprotects(tmp_path):
    t = Trade(tmp_path)
    try:
        t.open()
        s = t.s
        t.nodes[-1].kill()
        creates, received = _creates(s), s.orders_received()
        assert len(creates) == 4 and received == 4  # entry, stop, TP1, TP2

        # Restart 1: the venue holds what the plan says -> MATCH, nothing sent.
        node = t.start()
        assert node.wait_for(r"restart: checkpoint restored \(\d+ ticks re-fed\): LONG 0\.5 @", 60), node.output[-3000:]
        assert node.wait_for(r"reconciliation at start: MATCH: venue matches the plan \(LONG 0\.5, 3 order\(s\)\)", 60), node.output[-3000:]
        time.sleep(2)  # a restart that re-placed protection would have done it by now
        assert _creates(s) == creates and s.orders_received() == received, s.order_requests()[-10:]
        assert _protection(s) == t.venue  # the same orders, levels and sizes
        t.assert_state_kept()
        node.kill()

        # Restart 2: the stop vanished while the node was down (cancelled by hand) -> REPROTECT:
        # the same stop level placed again, once, with an alert; no halt.
        s.call(lambda: s.exchange._cancel(s.exchange.find(None, t.stop_id), "CancelByUser"))
        node = t.start()
        assert node.wait_for(r"reconciliation at start: REPROTECT: position matches \(LONG 0\.5\); protection missing on the venue: stop " + t.stop_id, 60), node.output[-3000:]
        new = until(lambda: [k for k, v in _protection(s).items() if v == ("Sell", Decimal("0.5"), t.entry - 200 * TICK)], 20, "a new stop at the same level", node, s)
        time.sleep(2)
        assert len(new) == 1 and new[0] != t.stop_id and _creates(s) == [*creates, new[0]], s.order_requests()[-10:]  # the stop alone, once
        assert {k: v for k, v in _protection(s).items() if k != new[0]} == {k: v for k, v in t.venue.items() if k != t.stop_id}
        t.assert_state_kept()
        alerts = [a for a in rows(t.data, "alerts") if a["type"] in ("position_mismatch", "halt")]
        assert [a["type"] for a in alerts] == ["position_mismatch"], alerts
        assert "HALTED" not in node.output

        # The restored plan drives the venue's orders: TP1 resizes the new stop and moves it to the
        # entry price, TP2 ends the trade.
        t.finish_through_targets(node, new[0])
        assert _creates(s) == [*creates, new[0]]  # nothing else was ever placed
    finally:
        rc = t.close()
    assert rc == 0, t.nodes[-1].output[-3000:]
    closed = _closed_positions(t.data)
    assert len(closed) == 1 and closed[0]["side"] == "LONG" and closed[0]["exit_reason"] == "tp2", rows(t.data, "positions")
    assert [o["status"] for o in rows(t.data, "orders") if o["client_order_id"] == t.stop_id] == ["MISSING"]


def test_live_restart_after_the_kill_switch_tripped_keeps_it_tripped_until_midnight(tmp_path):
    """The day's loss passes ``max_daily_loss`` (0.1 % of 100 000 USDT: the wallet loses 500 USDT
    behind the node's back); the kill switch trips at the next minute close and is checkpointed;
    after ``kill -9`` the restarted node restores it tripped, with the same day baseline and trip
    time - and that restored switch frees entries at the next 00:00 UTC, not before."""
    from auction_trader.core.risk import DAY_MS, DailyLossGuard

    s = standin_mod.StandIn(seed=7, port=0, feed=False).start()
    pusher = Pusher(s)
    nodes: list[NodeProcess] = []
    data = tmp_path / "live"
    preseed(data, 3)
    sets = ["warmup_minutes=2", "rolling_window_minutes=3", "spread_lookback_minutes=3", "min_va_bins=1", "max_daily_loss=0.001"]
    args = ["--live", "--yes-i-mean-live", "--environment", "demo", "--data-dir", str(data), *endpoint_args(s), *[a for x in sets for a in ("--set", x)]]
    env = {"BYBIT_API_KEY_DEMO": s.api_key, "BYBIT_API_SECRET_DEMO": s.api_secret}

    def guard() -> dict:
        return ((checkpoint(data).get("strategy") or {}).get("kill_switch")) or {}

    try:
        nodes.append(NodeProcess(args, env=env))
        node = nodes[-1]
        assert node.wait_for(r"warm-up replayed into the strategy", 60), node.output[-3000:]
        base = until(lambda: (g := guard()).get("day") is not None and g, 20, "the day's baseline in the checkpoint", node, s)
        assert base["day_start_balance"] == 100_000.0 and not base["active"]

        def lose() -> None:
            s.exchange.account.wallet -= Decimal(500)
            s.exchange._emit_wallet()

        s.call(lose)
        tripped = until(lambda: (g := guard()).get("active") and g, 75, "the kill switch to trip at a minute close", node, s)
        assert tripped["day"] == base["day"] and tripped["day_start_balance"] == 100_000.0 and tripped["tripped_at"] is not None
        assert until(lambda: [a for a in rows(data, "alerts") if a["type"] == "kill_switch"], 10, "the kill_switch alert", node)
        killed_ms = node.kill()

        s.call(lambda: (setattr(s.exchange.account, "wallet", Decimal(100_000)), s.exchange._emit_wallet()))  # the loss made good: still tripped
        nodes.append(NodeProcess(args, env=env))
        node = nodes[-1]
        assert node.wait_for(r"restart: checkpoint restored \(\d+ ticks re-fed\): flat; kill switch TRIPPED \(day start balance 100000\.00\)", 60), node.output[-3000:]
        fresh = until(lambda: (cp := checkpoint(data)).get("_ts_ms", 0) > killed_ms and cp, 10, "a checkpoint from the restarted node", node)
        after = fresh["strategy"]["kill_switch"]
        assert {k: after[k] for k in ("day", "day_start_balance", "day_start_equity", "active", "tripped_at")} == \
               {k: tripped[k] for k in ("day", "day_start_balance", "day_start_equity", "active", "tripped_at")}
    finally:
        for n in nodes[:-1]:
            if n.proc.poll() is None:
                n.proc.kill()
        rc = nodes[-1].stop() if nodes else None
        pusher.stop()
        s.stop()
    assert rc == 0, nodes[-1].output[-3000:]
    assert [a["type"] for a in rows(data, "alerts")].count("kill_switch") == 1  # tripped once; the restart did not re-trip it
    # The restored switch: still tripped later the same day, with the balance back; free at 00:00 UTC.
    g = DailyLossGuard.from_state(0.001, after)
    midnight = (after["day"] + 1) * DAY_MS
    assert g.on_minute(midnight - 60_000, 100_000.0, 100_000.0) is True
    assert g.on_minute(midnight, 100_000.0, 100_000.0) is False
