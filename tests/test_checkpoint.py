"""Decision state survives a restart: ``state()`` / ``from_state()`` of every core piece, and
``AuctionStrategy.checkpoint()`` / ``restore()`` mid-backtest (issue 11, "Checkpoint round trip").

The backtest harness (:func:`run_with_restarts`) is a restart in all but the process: at each cut
the running strategy's :meth:`checkpoint` goes through JSON, the strategy is removed from the
Nautilus trader, and a *new* ``AuctionStrategy`` (fresh object, nothing shared) is added, started,
and restored from that JSON, its feature engine rebuilt from the recorded ticks up to the cut. The
venue side stays what it is - the same simulated exchange, account, position and resting orders,
as Bybit keeps them while our process restarts (Nautilus's own account and position cannot be
loaded into a fresh ``BacktestEngine``; rebuilding them by replaying would only re-run the old
strategy). The new strategy finds its orders in the cache, numbers new orders on from the
cache's count (Nautilus's ``Strategy._start``), and continues. Compared with the uninterrupted
run, item for item: every venue fill (price, qty, time, client order id, tags), the ``signals_1m``
records minute by minute, the positions rows, the state snapshots, the alerts and the features.
"""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest

from auction_trader.config import AuctionConfig
from auction_trader.core.acceptance import Sequence
from auction_trader.core.exits import TimeStop
from auction_trader.core.initiative import LONG, SHORT
from auction_trader.core.risk import Cooldown, DailyLossGuard
from auction_trader.core.setups import Candidate
from auction_trader.core.trade import FlipPlan, Trade
from tests.test_lifecycle_identity import MINUTE_NS, RUNS, T0, sample_catalog


def through_json(state: dict) -> dict:
    """What a store gives back: strict JSON (no NaN) there and back."""
    return json.loads(json.dumps(state, allow_nan=False))


# -- the core pieces, one by one ----------------------------------------------------------------


def test_acceptance_sequence_round_trip_and_continues_the_same():
    a = Sequence(LONG, 3)
    for ts, close in ((0, 101.0), (1, 102.0)):
        a.update(ts, close, close + 0.5, close - 0.5, 100.0, True)
    b = Sequence.from_state(LONG, 3, through_json(a.to_state()))
    assert b.to_state() == a.to_state() and (b.count, b.locked, b.extreme, b.started_ts) == (2, 100.0, 102.5, 0)
    # the third close beyond fires on both
    assert a.update(2, 103.0, 103.5, 102.5, 100.0, True) and b.update(2, 103.0, 103.5, 102.5, 100.0, True)
    idle = Sequence(SHORT, 3)
    back = Sequence.from_state(SHORT, 3, through_json(idle.to_state()))
    assert math.isnan(back.locked) and math.isnan(back.extreme) and not back.active


def test_cooldown_time_stop_and_kill_switch_round_trip():
    c = Cooldown(5)
    c.position_closed(1_000_000)
    c2 = Cooldown.from_state(5, through_json(c.state()))
    assert c2.until_ms == 1_300_000 and not c2.allows(1_299_999) and c2.allows(1_300_000)

    t = TimeStop(10, True)
    t.on_close(60_000, 0.0)
    t2 = TimeStop.from_state(through_json(t.state()))
    assert t2.started_at == 60_000 and not t2.on_close(60_000 + 9 * 60_000, -1.0) and t2.on_close(60_000 + 10 * 60_000, -1.0)

    g = DailyLossGuard(0.03)
    g.on_minute(86_400_000 + 60_000, 10_000.0, 10_000.0)
    assert g.on_minute(86_400_000 + 120_000, 9_690.0, 9_690.0)  # -3.1 % of the day's start: tripped
    g2 = DailyLossGuard.from_state(0.03, through_json(g.state()))
    assert (g2.day_start_balance, g2.active, g2.tripped_at) == (10_000.0, True, 86_400_000 + 120_000)
    assert g2.on_minute(86_400_000 + 180_000, 10_500.0, 10_500.0)  # still tripped the same day
    assert not g2.on_minute(2 * 86_400_000, 10_500.0, 10_500.0)  # freed at 00:00 UTC


def test_trade_plan_and_flip_round_trip():
    c = Candidate("breakout", LONG, 42_000.0, 41_900.0, 42_100.0, None, locked=41_950.0, via="retest")
    t = Trade(c, 1_704_067_260_000, 400, 10_000.0, 0.02, entry_id="O-1", entry_submitted_ns=5, record={"ts_min": 1_704_067_260_000, "reason_code": "X"})
    t.book_entry(42_000.5, 250, 1.5)
    t.book_exit("tp1", 42_100.0, 0.1, 100, 0.2, True)
    t.stop_id, t.tp_ids, t.abandoned, t.resends, t.tp_valid = "O-2", {"tp1": None, "tp2": "O-3"}, {"O-9"}, {"entry": 1}, (True, False)
    back = Trade.from_state(through_json(t.state()))
    assert back == t
    assert (back.open_steps, back.breakeven, back.stop_price) == (150, True, 42_000.5)
    assert back.protection(0.3) == t.protection(0.3)
    f = FlipPlan(t, Candidate("breakin", SHORT, 41_990.0, 42_050.0, 41_900.0, 41_800.0), 1_704_067_320_000, {"ts_min": 1_704_067_320_000})
    f2 = FlipPlan.from_state(through_json(f.state()), back)
    assert f2.old is back and f2.candidate == f.candidate and f2.record == f.record


def test_signal_engine_restored_mid_replay_decides_the_same_every_minute():
    """The signal engine alone over the sample's first four hours (short windows, k = 2, break-ins
    waiting for 2 closes, retests): one engine runs straight, the other is rebuilt from JSON at
    every 7th minute; both see the same minutes and must give the same records."""
    import rust_indicators

    from auction_trader.core.minute import minute_from_row
    from auction_trader.core.signals import Context, SignalEngine
    from auction_trader.features import engine_config, load_ticks

    config = AuctionConfig().with_overrides(["rolling_window_minutes=60", "warmup_minutes=60", "spread_lookback_minutes=30", "accept_outside_k=2", "accept_inside_k=2"])
    ticks = load_ticks(str(sample_catalog()), "BTCUSDT-LINEAR.BYBIT", end_ns=T0 + 240 * MINUTE_NS)
    features = rust_indicators.FeatureEngine(engine_config(config, ticks.spec))
    tick = ticks.spec.tick_size
    straight, restarted = SignalEngine(config, tick), SignalEngine(config, tick)
    a, b = [], []
    events = sorted([(int(ts), 0, k) for k, ts in enumerate(ticks.trade_ts)] + [(int(ts), 1, k) for k, ts in enumerate(ticks.quote_ts)])
    next_close = events[0][0] // MINUTE_NS * MINUTE_NS + MINUTE_NS
    for ts, kind, k in events:
        while ts >= next_close:
            features.close_through(next_close)
            row = features.last_row()
            if row is not None and (not a or a[-1]["ts_min"] < row.ts_min):
                minute = minute_from_row(row, config, features.nearest_trade_distance)
                if len(a) % 7 == 0:
                    restarted = SignalEngine.from_state(config, tick, through_json(restarted.state()))
                a.append(straight.on_minute(minute, Context())[1])
                b.append(restarted.on_minute(minute, Context())[1])
            next_close += MINUTE_NS
        if kind == 0:
            features.on_trade(ts, float(ticks.trade_price[k]), float(ticks.trade_size[k]), int(ticks.trade_side[k]))
        else:
            features.on_quote(ts, float(ticks.bid[k]), float(ticks.bid_size[k]), float(ticks.ask[k]), float(ticks.ask_size[k]))
    assert len(a) > 200
    assert b == a
    reasons = {r["reason_code"].split(":")[0] for r in a}
    assert {"BREAKIN_PENDING_LONG", "RETEST_PENDING_LONG"} & reasons or {"BREAKIN_PENDING_SHORT", "RETEST_PENDING_SHORT"} & reasons, reasons


# -- the strategy, mid-backtest -------------------------------------------------------------------


def run_with_restarts(config: AuctionConfig, start_ns: int | None, end_ns: int | None, cuts: list[int]) -> dict:
    """A backtest on the sample in which the strategy is replaced by a restored new one at each of
    ``cuts`` (ns; every tick stamped at or before a cut reaches the old strategy). Returns what
    the run reported, assembled over the strategies."""
    from auction_trader.backtest.engine import build_engine, load_data, reseed
    from auction_trader.backtest.outputs import auction_strategy_factory, collect_fills

    factory = auction_strategy_factory()
    data = load_data(sample_catalog(), config.instrument_id, start_ns, end_ns)
    strategy = factory(config)
    engine, ctx = build_engine(config, sample_catalog(), start_ns, end_ns, strategy, data=data)
    trader = engine.kernel.trader
    parts: list[dict] = []
    checkpoints: list[dict] = []
    try:
        reseed()
        resume = None  # a later run() must say where to resume: without a start it replays from the first tick
        for cut in cuts:
            engine.run(start=resume, end=cut, streaming=True)
            resume = cut + 1
            state = json.dumps(strategy.checkpoint(), allow_nan=False)
            checkpoints.append(json.loads(state))
            parts.append(_reported(strategy))
            now = strategy.clock.timestamp_ns()
            # the old process is gone: no handler of the old strategy runs again
            trader._has_controller = True  # what a Controller does: add strategies to a running trader
            trader.remove_strategy(strategy.id)
            for sub in engine.kernel.msgbus.subscriptions():
                if getattr(sub.handler, "__self__", None) is strategy:
                    engine.kernel.msgbus.unsubscribe(topic=sub.topic, handler=sub.handler)
            strategy = factory(config)
            trader.add_strategy(strategy)
            strategy.clock.set_time(now)
            trader.start_strategy(strategy.id)
            recorded = [t for t in data[0] if t.ts_init <= cut]
            strategy.restore(json.loads(state), ticks=recorded)
            ctx.end_of_run.strategy = strategy
            ctx.strategy = strategy
        engine.run(start=resume)
        ctx.venue.finish(ctx.last_ts)

        parts.append(_reported(strategy))
        fills = collect_fills(engine, ctx)
    finally:
        engine.dispose()
    return {**_assemble(parts), "fills": fills, "checkpoints": checkpoints}


def _reported(strategy) -> dict:
    return {
        "signals": [dict(r) for r in strategy.signal_records()],
        "positions": strategy.position_records(),
        "snapshots": strategy.state_snapshots(),
        "alerts": strategy.alerts(),
        "features": strategy.features_columns(),
    }


def _assemble(parts: list[dict]) -> dict:
    """One run's reports from the strategies that took turns: a later strategy's copy of a
    record (an open trade's entry minute, amended after the restart) replaces the earlier one."""
    signals: dict[int, dict] = {}
    for p in parts:
        signals.update({r["ts_min"]: r for r in p["signals"]})
    features = [p["features"] for p in parts if p["features"]]
    return {
        "signals": [signals[k] for k in sorted(signals)],
        "positions": [row for p in parts for row in p["positions"]],
        "snapshots": [row for p in parts for row in p["snapshots"]],
        "alerts": [row for p in parts for row in p["alerts"]],
        "features": {n: np.concatenate([f[n] for f in features]) for n in features[0]} if features else {},
    }


def _same(a: dict, b: dict) -> list[str]:
    diffs = []
    for key in ("signals", "positions", "snapshots", "alerts"):
        if a[key] != b[key]:
            n = next((i for i, (x, y) in enumerate(zip(a[key], b[key], strict=False)) if x != y), min(len(a[key]), len(b[key])))
            diffs.append(f"{key}: first difference at item {n} of {len(a[key])} / {len(b[key])}: {a[key][n:n + 1]} != {b[key][n:n + 1]}")
    fa = [(f.ts, f.side, f.qty, f.price, f.commission, f.client_order_id, f.tags, f.liquidity) for f in a["fills"]]
    fb = [(f.ts, f.side, f.qty, f.price, f.commission, f.client_order_id, f.tags, f.liquidity) for f in b["fills"]]
    if fa != fb:
        diffs.append(f"fills differ: {len(fa)} vs {len(fb)}; first: {next(((x, y) for x, y in zip(fa, fb, strict=False) if x != y), None)}")
    if a["features"].keys() != b["features"].keys() or any(not np.array_equal(a["features"][k], b["features"][k], equal_nan=a["features"][k].dtype.kind == "f") for k in a["features"]):
        diffs.append("features differ")
    return diffs


@pytest.mark.parametrize("name", ["wide", "hold"])
def test_restored_at_20_random_minutes_the_run_is_the_uninterrupted_one(name):
    overrides, start, end = RUNS[name]
    config = AuctionConfig().with_overrides(list(overrides))
    first, last = start or T0, end
    straight = run_with_restarts(config, start, end, [])
    # 20 minutes drawn at random (seeded): 10 while the uninterrupted run held a position or had
    # an entry working, 10 from the rest; half the cuts at the minute boundary, half inside it
    busy = set()
    for row in straight["positions"]:
        busy.update(range((row["ts_ms_open"] * 1_000_000 - first) // MINUTE_NS, (row["ts_ms_close"] * 1_000_000 - first) // MINUTE_NS + 1))
    for r in straight["signals"]:
        if r["chosen_action"].startswith("ENTER"):
            busy.add((r["ts_min"] * 1_000_000 - first) // MINUTE_NS + 1)
    span = range(2, (last - first) // MINUTE_NS - 1)
    rng = random.Random(11)
    minutes = sorted(rng.sample(sorted(busy & set(span)), 10) + rng.sample(sorted(set(span) - busy), 10))
    cuts = [first + m * MINUTE_NS + (rng.randrange(1, 59) * 1_000_000_000 if i % 2 else 0) for i, m in enumerate(minutes)]
    restarted = run_with_restarts(config, start, end, cuts)
    assert not _same(straight, restarted), "\n".join(_same(straight, restarted))
    # the cuts met open trades and working orders, not only flat minutes
    assert sum(c["lifecycle"]["trade"] is not None for c in restarted["checkpoints"]) >= 8
    assert any(c["lifecycle"]["waiting"] or any(t["entry_id"] and t["opened_ns"] is None for t in c["lifecycle"]["trades"]) for c in restarted["checkpoints"]) or name == "hold"
    assert len(straight["fills"]) >= 7 and len(straight["signals"]) > 90


# -- the lifecycle without Nautilus: a venue of dicts ----------------------------------------------


class DictVenue:
    """The lifecycle's Venue port over plain dicts; every request is logged."""

    def __init__(self, orders: dict | None = None, count: int = 0) -> None:
        self.orders = {cid: dict(o) for cid, o in (orders or {}).items()}
        self.count = count
        self.log: list[tuple] = []
        self.alerts: list[tuple] = []
        self.now = T0

    def create(self, kind, direction, steps, level, tags, reduce_only):
        self.count += 1
        cid = f"O-{self.count}"
        self.orders[cid] = {"kind": kind, "direction": direction, "steps": steps, "level": level, "purpose": tags[1].split("=")[1], "reduce_only": reduce_only, "status": "new"}
        return cid

    def submit(self, cid):
        self.orders[cid]["status"] = "inflight"
        self.log.append(("submit", cid, self.orders[cid]["kind"], self.orders[cid]["steps"], self.orders[cid]["level"]))

    def accept(self, cid):
        self.orders[cid]["status"] = "open"

    def modify(self, cid, steps, level):
        self.orders[cid].update(steps=steps, level=level)
        self.log.append(("modify", cid, steps, level))

    def cancel(self, cid):
        self.orders[cid]["status"] = "closed"
        self.log.append(("cancel", cid))

    def view(self, cid):
        from auction_trader.core.lifecycle import OrderView

        o = self.orders.get(cid)
        if o is None:
            return None
        s = o["status"]
        return OrderView(o["kind"], o["purpose"], o["steps"], o["level"], s == "closed", s == "open", s == "inflight", False, False)

    def on_grid(self, price):
        return round(price, 1)

    def now_ns(self):
        return self.now

    def last_tick_ns(self):
        return self.now

    def free_margin(self):
        return 10_000.0

    def account_current(self):
        return True

    def balance(self):
        return 10_000.0

    def quote(self):
        return (41_999.9, 42_000.0)

    def alert(self, ts_ns, kind, detail):
        self.alerts.append((ts_ns, kind))

    def state_changed(self, ts_ns):
        pass


def test_lifecycle_restored_from_json_wants_the_same_orders():
    """Enter, fill, protect; checkpoint; then TP1 fills on the original and on the restored copy:
    both move the stop to the entry price and shrink nothing else - the same requests, the same
    state. No Nautilus anywhere: the core runs on the port alone."""
    from auction_trader.core.lifecycle import Lifecycle
    from auction_trader.core.signals import ENTER_LONG, Decision, SignalEngine

    config = AuctionConfig()
    engine = SignalEngine(config, 0.1)
    venue = DictVenue()
    life = Lifecycle(config, engine, venue, 0.001, 0.1, 0.00055)
    c = Candidate("breakin", LONG, 42_000.0, 41_900.0, 42_100.0, 42_200.0)
    record = {"ts_min": T0 // 1_000_000, "reason_code": "BREAKIN_LONG", "chosen_action": ENTER_LONG, "feature_snapshot": "{}"}
    life.act(Decision(ENTER_LONG, "BREAKIN_LONG", c), record, T0 + MINUTE_NS)
    # 10,000 x 2 % / (42,000 - 41,900) = 2 BTC = 2000 steps (the 10x cap, 2.38 BTC, does not bind)
    assert venue.log == [("submit", "O-1", "LIMIT", 2000, 42_000.0)]
    venue.accept("O-1")
    life.on_fill("O-1", "entry", False, 42_000.0, 2.0, 0.1, T0 + MINUTE_NS + 5)
    venue.orders["O-1"]["status"] = "closed"
    # the stop for all of it; TP1 30 % = 600 steps at the POC target, TP2 the other 1400
    assert venue.log[1:] == [("submit", "O-2", "STOP_MARKET", 2000, 41_900.0), ("submit", "O-3", "MARKET_IF_TOUCHED", 600, 42_100.0), ("submit", "O-4", "MARKET_IF_TOUCHED", 1400, 42_200.0)]
    for cid in ("O-2", "O-3", "O-4"):
        venue.accept(cid)

    saved = through_json({"signals": engine.state(), "lifecycle": life.state()})
    engine2 = SignalEngine.from_state(config, 0.1, saved["signals"])
    venue2 = DictVenue(venue.orders, venue.count)
    life2 = Lifecycle(config, engine2, venue2, 0.001, 0.1, 0.00055)
    life2.restore(saved["lifecycle"])
    assert life2.state() == life.state() and engine2.state() == engine.state()
    assert engine2.position.candidate is life2.trade.candidate  # linked again: position_closed matches it

    n = len(venue.log)
    for v, lc in ((venue, life), (venue2, life2)):
        v.orders["O-3"]["status"] = "closed"
        lc.on_fill("O-3", "tp1", True, 42_100.0, 0.6, 0.05, T0 + 3 * MINUTE_NS)
    assert venue.log[n:] == venue2.log == [("modify", "O-2", 1400, 42_000.0)]  # stop at the entry price, for what is left
    assert life2.state() == life.state()
    for v, lc in ((venue, life), (venue2, life2)):
        v.orders["O-2"]["status"] = "closed"
        lc.on_fill("O-2", "stop", True, 42_000.0, 1.4, 0.1, T0 + 4 * MINUTE_NS)
    assert venue.log[-1] == venue2.log[-1] == ("cancel", "O-4")
    assert life.positions == life2.positions and life2.trade is None
    row = life2.positions[0]
    # 0.6 at 42,100 and 1.4 at 42,000 against an entry at 42,000: realized +60; fees 0.1 + 0.05 + 0.1
    assert (row["status"], row["exit_reason"], row["qty_at_tp1"]) == ("STOPPED", "stop", 0.6)
    assert row["realized_pnl"] == pytest.approx(60.0) and row["fees_paid"] == pytest.approx(0.25)
    assert engine2.position is None and engine2.cooldown.until_ms == engine.cooldown.until_ms


def _protected_trade():
    """Enter 2 BTC long at 42,000, fill, protect (stop 41,900, TP1 600 steps at 42,100, TP2 1400
    at 42,200), every order accepted: (config, engine, venue, lifecycle)."""
    from auction_trader.core.lifecycle import Lifecycle
    from auction_trader.core.signals import ENTER_LONG, Decision, SignalEngine

    config = AuctionConfig()
    engine = SignalEngine(config, 0.1)
    venue = DictVenue()
    life = Lifecycle(config, engine, venue, 0.001, 0.1, 0.00055)
    c = Candidate("breakin", LONG, 42_000.0, 41_900.0, 42_100.0, 42_200.0)
    record = {"ts_min": T0 // 1_000_000, "reason_code": "BREAKIN_LONG", "chosen_action": ENTER_LONG, "feature_snapshot": "{}"}
    life.act(Decision(ENTER_LONG, "BREAKIN_LONG", c), record, T0 + MINUTE_NS)
    venue.accept("O-1")
    life.on_fill("O-1", "entry", False, 42_000.0, 2.0, 0.1, T0 + MINUTE_NS + 5)
    venue.orders["O-1"]["status"] = "closed"
    for cid in ("O-2", "O-3", "O-4"):
        venue.accept(cid)
    return config, engine, venue, life


def _restored(config, engine, life, venue):
    from auction_trader.core.lifecycle import Lifecycle
    from auction_trader.core.signals import SignalEngine

    saved = through_json({"signals": engine.state(), "lifecycle": life.state()})
    life2 = Lifecycle(config, SignalEngine.from_state(config, 0.1, saved["signals"]), venue, 0.001, 0.1, 0.00055)
    life2.restore(saved["lifecycle"])
    return life2


def test_lifecycle_orders_lost_places_the_same_protection_again():
    """A paper venue rebuilt after a restart holds none of the plan's orders: the restored plan,
    told they are lost, places its stop and targets again - same levels and sizes, once each, new
    ids - and after TP1 the stop at the entry price for what is left."""
    config, engine, venue, life = _protected_trade()
    empty = DictVenue(count=venue.count)  # ids continue after the stored run's
    life2 = _restored(config, engine, life, empty)
    lost = sorted({*life2.owner, *life2.waiting})
    assert lost == ["O-2", "O-3", "O-4"]
    life2.orders_lost(lost)
    assert empty.log == [("submit", "O-5", "STOP_MARKET", 2000, 41_900.0), ("submit", "O-6", "MARKET_IF_TOUCHED", 600, 42_100.0), ("submit", "O-7", "MARKET_IF_TOUCHED", 1400, 42_200.0)]
    t = life2.trade
    assert (t.stop_id, t.tp_ids) == ("O-5", {"tp1": "O-6", "tp2": "O-7"}) and sorted(life2.owner) == ["O-5", "O-6", "O-7"]

    # After TP1: the plan wants the stop at the entry price for the 1400 steps left, and TP2.
    venue.orders["O-3"]["status"] = "closed"
    life.on_fill("O-3", "tp1", True, 42_100.0, 0.6, 0.05, T0 + 3 * MINUTE_NS)
    empty = DictVenue(count=venue.count)
    life3 = _restored(config, engine, life, empty)
    life3.orders_lost(sorted({*life3.owner, *life3.waiting}))
    assert empty.log == [("submit", "O-5", "STOP_MARKET", 1400, 42_000.0), ("submit", "O-6", "MARKET_IF_TOUCHED", 1400, 42_200.0)]


def test_lifecycle_unbooked_counts_the_fills_the_plan_has_not_seen():
    """What a restarted live node books from the venue's reconciliation: of the quantity an order
    of the plan has filled at the venue, the part the checkpointed plan has not booked."""
    config, engine, venue, life = _protected_trade()
    life2 = _restored(config, engine, life, DictVenue(venue.orders, venue.count))
    assert life2.unbooked("O-3", 600) == 600  # TP1 filled while the node was down
    assert life2.unbooked("O-2", 0) == 0 and life2.unbooked("X-1", 500) == 0  # nothing filled; not the plan's
    life2.on_fill("O-3", "tp1", True, 42_100.0, 0.4, 0.03, T0 + 3 * MINUTE_NS)  # a part of it booked
    assert life2.unbooked("O-3", 600) == 200
    life3 = _restored(config, engine, life2, venue)
    assert life3.unbooked("O-3", 600) == 200 and life3.trade.booked == {"O-1": 2000, "O-3": 400}
