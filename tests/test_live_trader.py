"""The live node as a trader runs it: default sizing (2 % risk, 10x cap), flips both ways, market and
limit entries with partial fills, the day's P&L in ``run_live.py status``.

Three nodes run side by side in one test (the scenario is paced by minute closes, so running them
one after the other would triple the wall time), each against its own Bybit v5 stand-in without the
synthetic feed: a pusher thread streams a book the test moves, so every fill is decided here.

* ``--paper``, market entries (``use_limit_for_entry=false``).
* ``--live`` in DEMO (orders over REST), limit entries at the passive side of the book, filled in
  parts by the stand-in (``partial_fills``): each part is one quote update.
* ``--live`` in MAINNET (orders over the trade socket), market entries: a flip's close and new
  entry follow each other within milliseconds.

All at the config's sizing (``risk_pct`` 0.02, ``max_leverage`` 10) on a 10,000 USDT account. The
scripted signal source (tests/live_script.py, ``steps``) decides: long at minute t1, a flip to short
at t2, a flip back to long at t3; then the test moves the book through the last trade's stop. Every
entry is checked against the sizing formula computed here by hand from the equity the account had
when the entry was sized (DESIGN.md "Sizing and exits")::

    qty = floor(min(equity x risk_pct / |entry - stop|, max_leverage x equity / entry) / 0.001) x 0.001

with a 200-tick (20 USDT) stop near 50,000 the risk term is 10 BTC and the cap (~2 BTC) decides.
After the last exit ``run_live.py status`` (answered by the running node) shows the UTC day's P&L,
held to the P&L of the stored fills.

A second test drives a paper node through a funding settlement (see its comment below).
"""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import ROUND_HALF_EVEN, Decimal

import pytest

from nautilus_trader.model.currencies import USDT
from nautilus_trader.model.data import QuoteTick, TradeTick
from nautilus_trader.model.enums import AggressorSide
from nautilus_trader.model.identifiers import InstrumentId, TradeId
from nautilus_trader.model.objects import Price, Quantity

from auction_trader.backtest.funding import FUNDING_INTERVAL_NS, next_funding_after
from auction_trader.config import AuctionConfig
from auction_trader.live.node import Endpoints, LiveNode, NodeOptions
from tests.live_harness import MINUTE_NS, REPO, NodeProcess, endpoint_args, minute_ms_after, preseed, rows, until
from tests.live_script import SCRIPT_ENV, ScriptedAuction

standin_mod = pytest.importorskip("tests.bybit_standin", reason="the Bybit stand-in (tests/bybit_standin) is not in this tree")

BID = Decimal("50000.0")
TICK = Decimal("0.1")
STEP = Decimal("0.001")
BALANCE = Decimal(10_000)
RISK_PCT = Decimal("0.02")
MAX_LEVERAGE = Decimal(10)
STOP_TICKS = 200
MIN_MS = 60_000

COMMON = [
    "warmup_minutes=2", "rolling_window_minutes=3", "spread_lookback_minutes=3", "min_va_bins=1",
    "require_manual_activation=false", "cooldown_minutes=0", "limit_order_timeout_minutes=1",
]  # fmt: skip


def hand_qty(equity: Decimal, entry: Decimal, stop: Decimal) -> Decimal:
    """The spec's sizing, by hand: risk over the stop distance, capped at max_leverage x equity."""
    risk = equity * RISK_PCT / abs(entry - stop)
    cap = MAX_LEVERAGE * equity / entry
    return (min(risk, cap) / STEP).to_integral_value(rounding="ROUND_FLOOR") * STEP


class Pusher:
    """Quotes at (bid, bid + 1 tick) every 250 ms, 5 BTC a side, and a 0.001 print every second
    (at the ask, or at the bid after a move down)."""

    def __init__(self, standin) -> None:
        self.s = standin
        self.bid = BID
        self.down = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _push(self) -> None:
        with self._lock:
            bid = self.bid
            self.s.push_quote(str(bid), str(bid + TICK), "5.000", "5.000")

    def _run(self) -> None:
        n = 0
        while not self._stop.wait(0.25):
            self._push()
            n += 1
            if n % 4 == 0:
                with self._lock:
                    self.s.push_trade(str(self.bid if self.down else self.bid + TICK), "0.001", "Sell" if self.down else "Buy")

    def move(self, bid: Decimal) -> None:
        """A new book and a print at its touch on the side it moved to (stops trigger on it)."""
        with self._lock:
            self.down = bid < self.bid
            self.bid = bid
            self.s.push_quote(str(bid), str(bid + TICK), "5.000", "5.000")
            self.s.push_trade(str(bid if self.down else bid + TICK), "0.001", "Sell" if self.down else "Buy")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def _d(x) -> Decimal:
    return Decimal(repr(x)) if isinstance(x, float) else Decimal(str(x))


def _signal(data, ts_min: int) -> dict | None:
    found = [s for s in rows(data, "signals_1m") if s["ts_min"] == ts_min]
    return found[0] if found else None


class Run:
    """One node and its stand-in, pusher and scripted minutes."""

    def __init__(self, tmp_path, mode: str, limit_entry: bool, environment: str = "demo") -> None:
        self.mode, self.limit_entry, self.environment = mode, limit_entry, environment
        self.name = mode if mode == "paper" else f"live-{environment}"
        self.data = tmp_path / self.name
        self.s = standin_mod.StandIn(seed=7, port=0, feed=False, balance=str(BALANCE)).start()
        if limit_entry:
            self.s.partial_fills("0.5")
        self.pusher = Pusher(self.s)
        self.node: NodeProcess | None = None
        preseed(self.data, 3)
        self.sets = [*COMMON, f"use_limit_for_entry={'true' if limit_entry else 'false'}", f"starting_balance={BALANCE}"]

    def start(self) -> None:
        """The node, its scripted steps in a file written once it is warm (:meth:`schedule`)."""
        self.steps_file = self.data.parent / f"{self.name}-steps.json"
        args = [f"--{self.mode}", "--data-dir", str(self.data), *endpoint_args(self.s), *[a for x in self.sets for a in ("--set", x)]]
        env = {SCRIPT_ENV: json.dumps({"steps": str(self.steps_file)})}
        if self.mode == "live":
            args[1:1] = ["--yes-i-mean-live", "--environment", self.environment]
            suffix = "_DEMO" if self.environment == "demo" else ""
            env.update({f"BYBIT_API_KEY{suffix}": self.s.api_key, f"BYBIT_API_SECRET{suffix}": self.s.api_secret})
        self.node = NodeProcess(args, env=env, scripted=True)

    def schedule(self, t1: int) -> None:
        """Long at minute t1, short (a flip) at t1 + 1, long (a flip back) at t1 + 2."""
        at = "passive" if self.limit_entry else "touch"
        levels = {"stop_ticks": STOP_TICKS, "tp1_ticks": 3000, "tp2_ticks": 6000, "at": at}
        self.t = [t1, t1 + MIN_MS, t1 + 2 * MIN_MS]
        steps = [{"ts_min": t, "action": a, **levels} for t, a in zip(self.t, ("long", "short", "long"), strict=True)]
        tmp = self.steps_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(steps))
        tmp.rename(self.steps_file)

    def warm(self) -> subprocess.Popen | None:
        """Waits for the warm-up; a live node (which starts in observation whatever
        require_manual_activation says) is sent ``activate`` - the running command is returned."""
        assert self.node.wait_for(r"warm-up complete", 60), self.node.output[-3000:]
        if self.mode == "live":
            return subprocess.Popen([sys.executable, "run_live.py", "activate", "--data-dir", str(self.data)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        return None

    def stop(self) -> int | None:
        """Waits for the node (SIGINT already sent, or sent here), then stops the stand-in."""
        try:
            if self.node is None:
                return None
            try:
                rc = self.node.proc.wait(30)
            except subprocess.TimeoutExpired:
                return self.node.stop()  # SIGINT again, then kill; fails loudly
            self.node._reader.join(5)
            return rc
        finally:
            self.pusher.stop()
            self.s.stop()


def _entry_price(limit_entry: bool, direction: int) -> Decimal:
    """The scripted candidate's entry: at every decision the book is (BID, BID + 1 tick); "touch"
    takes the far side (a long at the ask), "passive" rests on the near side (a long at the bid)."""
    bid, ask = BID, BID + TICK
    if direction == 1:
        return bid if limit_entry else ask
    return ask if limit_entry else bid


def _scenario(run: Run) -> dict:
    """Drives one node through long -> short -> long and the stop; returns what it measured."""
    node, s = run.node, run.s
    live = run.mode == "live"
    for i, (ts_min, direction) in enumerate(zip(run.t, (1, -1, 1), strict=True)):
        sig = until(lambda ts=ts_min: (r := _signal(run.data, ts)) and r["chosen_action"] != "HOLD" and r, (ts_min + MIN_MS) / 1000 - time.time() + 45, f"the decision of minute {i + 1}", node, s if live else None)
        assert sig["chosen_action"] == ("ENTER_LONG" if direction == 1 else "ENTER_SHORT"), sig
        if run.limit_entry:
            # The limit rests at the passive side; a one-tick move of the book onto it lets the
            # stand-in fill it in 0.5 BTC parts, one per quote update.
            def limit_on_venue(d=direction):
                return [o for o in s.open_orders() if o["orderType"] == "Limit" and not o.get("reduceOnly") and o["side"] == ("Buy" if d == 1 else "Sell")]

            limit = until(limit_on_venue, 40, f"limit entry {i + 1} on the venue", node, s)[0]
            assert Decimal(limit["price"]) == _entry_price(True, direction), limit
            run.pusher.move(BID - TICK if direction == 1 else BID + TICK)

        def entry_done(k=i):
            mine = [f for f in rows(run.data, "fills") if f["purpose"] == "entry" and f["signal_ts_min"] == run.t[k]]
            sig = _signal(run.data, run.t[k])
            qty = json.loads(sig["feature_snapshot"]).get("qty") if sig else None
            return qty and sum(_d(f["qty"]) for f in mine) == Decimal(str(qty))

        until(entry_done, 40, f"entry {i + 1} filled to the quantity it was sized to", node, s if live else None)
        if live:
            want = Decimal(str(json.loads(_signal(run.data, ts_min)["feature_snapshot"])["qty"]))
            until(lambda w=want, d=direction: _d(s.position().get("size") or 0) == w and s.position().get("side") == ("Buy" if d == 1 else "Sell"), 30, f"the venue position of trade {i + 1}", node, s)
            until(lambda: len([o for o in s.open_orders() if o.get("reduceOnly")]) == 3, 30, f"stop, TP1 and TP2 of trade {i + 1}", node, s)
        if run.limit_entry:
            run.pusher.move(BID)
    # The last trade (long) is stopped out: the book falls through its stop.
    run.pusher.move(BID - (STOP_TICKS + 50) * TICK)
    if live:
        until(lambda: _d(s.position().get("size") or 0) == 0, 30, "the stop to close the last trade", node, s)
        until(lambda: s.open_orders() == [], 40, "no open order left on the venue", node, s)
    until(lambda: len([p for p in rows(run.data, "positions") if p["status"] != "OPEN"]) >= 3, 40, "three closed positions in the store", node, s if live else None)
    time.sleep(0.5)
    # ``status`` is answered by the running node, which writes a fresh node_status row as it answers
    status = subprocess.run([sys.executable, "run_live.py", "status", "--data-dir", str(run.data)], cwd=REPO, capture_output=True, text=True, timeout=30)
    out = {"status": status.stdout + status.stderr, "node_status": rows(run.data, "node_status")[0]}
    if live:
        out.update(venue_orders=s.orders(), venue_fills=s.fills(), venue_position=s.position(), venue_open=s.open_orders())
    return out


def _check(run: Run, out: dict) -> None:
    data = run.data
    fills = rows(data, "fills")
    positions = rows(data, "positions")
    signals = {r["ts_min"]: r for r in rows(data, "signals_1m")}
    # -- sizing, trade by trade: the spec's formula on the balance the account had when sized
    for i, (ts_min, direction) in enumerate(zip(run.t, (1, -1, 1), strict=True)):
        sig = signals[ts_min]
        snap = json.loads(sig["feature_snapshot"])
        assert sig["chosen_action"] == ("ENTER_LONG" if direction == 1 else "ENTER_SHORT") and "SIZE_" not in sig["reason_code"], sig
        # The equity when the entry was sized: the starting balance less everything the fills before
        # that entry realised (flat at that moment: a flip's entry waits for the close).
        before = [f for f in fills if f["ts_event"] < min(g["ts_event"] for g in fills if g["purpose"] == "entry" and g["signal_ts_min"] == ts_min)]
        balance = BALANCE + _cash(before)
        entry = _entry_price(run.limit_entry, direction)
        entry_fills = [f for f in fills if f["purpose"] == "entry" and f["signal_ts_min"] == ts_min]
        stop = entry - direction * STOP_TICKS * TICK
        want = hand_qty(balance, entry, stop)
        assert Decimal(str(snap["qty"])) == want, (i, snap, balance, entry)
        print(f"{run.name} trade {i + 1}: equity {balance:.4f}, entry {entry}, hand qty {want}, margin the node sized on {snap['margin']}")
        assert sum(_d(f["qty"]) for f in entry_fills) == want, (i, entry_fills)
        assert want * entry > (MAX_LEVERAGE - Decimal("0.01")) * balance, "the leverage cap decides at a 20 USDT stop"
        if run.limit_entry:
            assert len(entry_fills) >= 2 and all(f["order_type"] == "LIMIT" for f in entry_fills), entry_fills
        else:
            assert all(f["order_type"] == "MARKET" for f in entry_fills), entry_fills
    # -- positions: three trades, the first two closed by the flips, the last by its stop
    assert [(p["side"], p["exit_reason"]) for p in positions] == [("LONG", "flip"), ("SHORT", "flip"), ("LONG", "stop")], positions
    for p, ts_min in zip(positions, run.t, strict=True):
        entry_qty = sum(_d(f["qty"]) for f in fills if f["purpose"] == "entry" and f["signal_ts_min"] == ts_min)
        exit_qty = sum(_d(f["qty"]) for f in fills if f["purpose"] != "entry" and f["signal_ts_min"] == ts_min)
        assert _d(p["qty_contracts"]) == entry_qty == exit_qty, (p, entry_qty, exit_qty)
        assert p["signal_ts_min"] == ts_min
    # -- the day's P&L: everything realised today (the node started flat with BALANCE), now flat
    realised = _cash(fills)
    st = out["node_status"]
    assert st["day_pnl"] is not None, st
    assert _d(st["day_pnl"]).quantize(Decimal("0.01")) == realised.quantize(Decimal("0.01")), (st, realised)
    assert _d(st["balance"]).quantize(Decimal("0.01")) == (BALANCE + realised).quantize(Decimal("0.01")), (st, realised)
    assert "day P&L" in out["status"] and f"{float(realised):+.2f}" in out["status"], out["status"]
    # -- orders: every one in the store by client order id, each trade's protection placed once
    # (resized in place on partial fills, never placed twice), the flipped trades' siblings
    # cancelled, nothing left working; every fill belongs to a stored order of its purpose
    orders = rows(data, "orders")
    purpose_of = {o["client_order_id"]: o["purpose"] for o in orders}
    assert all(purpose_of.get(f["client_order_id"]) == f["purpose"] for f in fills), (fills, orders)
    for ts_min in run.t:
        mine = [o for o in orders if str(o["trade_id"]) == str(ts_min)]
        for purpose in ("stop", "tp1", "tp2"):
            assert len([o for o in mine if o["purpose"] == purpose]) == 1, (purpose, mine)
    for ts_min in run.t[:2]:  # the flipped trades' siblings were cancelled
        sib = [o for o in orders if str(o["trade_id"]) == str(ts_min) and o["purpose"] in ("stop", "tp1", "tp2")]
        assert {o["status"] for o in sib} == {"CANCELED"}, sib
    assert all(o["status"] in ("FILLED", "CANCELED") for o in orders), orders
    alerts = [a["type"] for a in rows(data, "alerts")]
    assert not {"order_rejected", "order_stuck", "order_unanswered", "flip_account_late"} & set(alerts), alerts
    if run.mode != "live":
        return
    # -- the venue: flat, nothing open, every venue fill stored, no order twice
    assert out["venue_open"] == [] and _d(out["venue_position"].get("size") or 0) == 0
    links = [o["orderLinkId"] for o in out["venue_orders"]]
    assert len(links) == len(set(links))
    rejected = [o for o in out["venue_orders"] if o["orderStatus"] == "Rejected"]
    assert rejected == [], rejected
    stored = sorted((f["client_order_id"], _d(f["price"]), _d(f["qty"])) for f in fills)
    assert stored == sorted((f["order_link_id"], Decimal(f["price"]), Decimal(f["qty"])) for f in out["venue_fills"])


def _cash(fills: list[dict]) -> Decimal:
    """Realised P&L net of fees of a sequence of fills (one-way position, average entry)."""
    pos = Decimal(0)
    avg = Decimal(0)
    cash = Decimal(0)
    for f in sorted(fills, key=lambda f: f["ts_event"]):
        qty = _d(f["qty"]) * (1 if f["side"] == "BUY" else -1)
        px = _d(f["price"])
        cash -= _d(f["commission"])
        if pos and (pos > 0) != (qty > 0):
            closed = min(abs(qty), abs(pos))
            cash += (px - avg) * closed * (1 if pos > 0 else -1)
            pos += qty
            if pos == 0:
                avg = Decimal(0)
            elif (pos > 0) == (qty > 0):
                avg = px
        else:
            avg = (avg * abs(pos) + px * abs(qty)) / (abs(pos) + abs(qty))
            pos += qty
    return cash


def test_default_sizing_flips_both_ways_paper_market_and_live_partial_limits(tmp_path):
    runs = [Run(tmp_path, "paper", limit_entry=False), Run(tmp_path, "live", limit_entry=True), Run(tmp_path, "live", limit_entry=False, environment="mainnet")]
    results: dict = {}
    try:
        t0 = time.time()
        for r in runs:
            r.start()
        activations = [a for a in (r.warm() for r in runs) if a is not None]
        for a in activations:
            text, _ = a.communicate(timeout=30)
            assert a.returncode == 0, text
        # t1: the first minute whose close is at least 5 s away (its decision reads the steps file)
        t1 = minute_ms_after(5)
        for r in runs:
            r.schedule(t1)
        with ThreadPoolExecutor(len(runs)) as pool:
            futures = {r.name: pool.submit(_scenario, r) for r in runs}
            for mode, fut in futures.items():
                results[mode] = fut.result()
        elapsed = time.time() - t0
    finally:
        for r in runs:  # both stop at once (each takes a few seconds)
            if r.node is not None and r.node.proc.poll() is None:
                r.node.proc.send_signal(signal.SIGINT)
        codes = [r.stop() for r in runs]
    assert codes == [0] * len(runs), [r.node.output[-3000:] for r in runs]
    for r in runs:
        _check(r, results[r.name])
    print(f"scenario time {elapsed:.0f} s")


# -- funding across a settlement (item 4) ------------------------------------------------------------
# A ``--paper`` node across a funding settlement, with a position: the charge is booked at the rate
# the node fetched from Bybit (the stand-in's funding history), in the balance and in the store.
#
# The node's clock is the wall clock and a settlement (00/08/16 UTC) comes every 8 hours, so a node
# process cannot be made to cross one inside a test. Everything the node does with time takes the
# time as an argument, though (``LiveNode.on_tick`` takes the tick's exchange time, ``LiveNode.pump``
# the "now" of its timer), so here the node runs in this process, built as ``run_live.py --paper``
# builds it (store, paper venue, the scripted strategy, the REST client on the stand-in), without
# the TradingNode around it (its only part in paper mode is the data client, which this test stands
# in for by calling ``on_tick``), and is driven through a settlement a day before now: ticks every
# 250 ms (quotes) and 1 s (trades) from 6 minutes before the settlement to 1 minute after, and the
# pump every 100 ms of that clock.

IID = InstrumentId.from_str("BTCUSDT-LINEAR.BYBIT")
FUNDING_BID, FUNDING_ASK = "50000.0", "50000.1"
RATE = "0.00025"  # the stand-in's published rate: 2.5 bps, not the config's 1 bps
FUNDING_SETTINGS = [
    "warmup_minutes=2", "rolling_window_minutes=3", "spread_lookback_minutes=3", "min_va_bins=1",
    "require_manual_activation=false", "use_limit_for_entry=false", "cooldown_minutes=0",
]  # fmt: skip


def _ticks(start_ns: int, end_ns: int) -> list[tuple[object, bool]]:
    out = []
    n = 0
    for ts in range(start_ns, end_ns, 250_000_000):
        out.append((QuoteTick(IID, Price.from_str(FUNDING_BID), Price.from_str(FUNDING_ASK), Quantity.from_str("5.000"), Quantity.from_str("5.000"), ts, ts), False))
        if n % 4 == 2:
            out.append((TradeTick(IID, Price.from_str(FUNDING_ASK), Quantity.from_str("0.001"), AggressorSide.BUYER, TradeId(f"t{ts}"), ts + 1, ts + 1), True))
        n += 1
    return out


def test_paper_node_books_funding_at_the_fetched_rate_across_a_settlement(tmp_path):
    s = standin_mod.StandIn(seed=7, port=0, feed=False, funding_rate=RATE).start()
    try:
        published_ms, _ = _latest_published(s)
        instant = next_funding_after(time.time_ns()) - 3 * FUNDING_INTERVAL_NS  # a settlement a day ago
        if instant % (24 * 60 * MINUTE_NS) == 0:
            instant -= FUNDING_INTERVAL_NS  # not 00:00 UTC: the day's P&L below starts flat, in the same UTC day
        assert instant <= published_ms * 1_000_000, "the stand-in's history has a settlement at or after it"
        start = instant - 6 * MINUTE_NS
        enter_ts_min = (instant - 3 * MINUTE_NS) // 1_000_000  # the long is decided at this minute's close
        script = {"enter_ts_min": enter_ts_min, "direction": 1, "stop_ticks": 200, "tp1_ticks": 3000, "tp2_ticks": 6000}
        config = AuctionConfig().with_overrides(FUNDING_SETTINGS)
        out = io.StringIO()
        node = LiveNode(config, NodeOptions(mode="paper", data_dir=tmp_path / "paper", endpoints=Endpoints(rest_url=s.rest_url)), strategy_factory=lambda c, h: ScriptedAuction(c, script, h), out=out)
        node._open_services()
        try:
            node._fetch_funding_now()
            node.strategy = node.strategy_factory(config, node.hooks)
            from auction_trader.live.paper import PaperVenue  # noqa: PLC0415

            node.paper = PaperVenue(config, node.strategy, node.data_dir / "catalog")
            node.paper.set_funding_rate(1.0)  # what it would settle at without the fetch
            node.sequencer.watermark = start - 1
            ticks = _ticks(start, instant + MINUTE_NS)
            i = 0
            for now in range(start, instant + MINUTE_NS, 100_000_000):
                while i < len(ticks) and ticks[i][0].ts_event <= now:
                    node.on_tick(*ticks[i])
                    i += 1
                node.pump(now)
                if node._funding_future is not None:  # the fetch runs off the loop: let it finish
                    node._funding_future.result(10)
                    node.pump(now)
            balance_after = node.paper.account().balance_total(USDT).as_decimal()
        finally:
            node._shutdown()
    finally:
        s.stop()
    text = out.getvalue()
    fills = rows(tmp_path / "paper", "fills")
    assert [f["purpose"] for f in fills] == ["entry"], text[-3000:]
    qty = Decimal(repr(fills[0]["qty"]))
    assert qty == Decimal("1.999"), "10x cap on 10,000 USDT at 50,000.1"
    # The settlement's charge, by hand: qty x the mid before the instant x the fetched rate, to 8 dp.
    mark = (Decimal(FUNDING_BID) + Decimal(FUNDING_ASK)) / 2
    amount = (qty * mark * Decimal(RATE)).quantize(Decimal("0.00000001"), rounding=ROUND_HALF_EVEN)
    assert amount == Decimal("24.98752499")
    funding = rows(tmp_path / "paper", "funding")
    assert [(r["ts_ms"], r["side"], Decimal(repr(r["qty"])), Decimal(repr(r["rate_bps"])), Decimal(repr(r["amount"]))) for r in funding] == [(instant // 1_000_000, "LONG", qty, Decimal("2.5"), amount)], text[-3000:]
    assert f"funding: settlement {time.strftime('%Y-%m-%d %H:%M', time.gmtime(instant / 1e9))} UTC at +2.5000 bps" in text
    # The balance: the start less the entry's fee less the funding.
    fee = Decimal(repr(fills[0]["commission"]))
    assert balance_after == Decimal(10_000) - fee - amount, (balance_after, fee, amount)
    status = rows(tmp_path / "paper", "node_status")[0]
    assert Decimal(repr(status["balance"])).quantize(Decimal("0.00000001")) == (Decimal(10_000) - fee - amount), status
    assert json.loads(status["position"])["side"] == "LONG"
    # The day's P&L (the day began with the warm-up's first decision, flat at 10,000): the fee, the
    # funding and the open position's unrealised P&L at the last mid.
    unrealised = (mark - Decimal(repr(fills[0]["price"]))) * qty
    assert Decimal(repr(status["day_pnl"])).quantize(Decimal("0.000001")) == (-fee - amount + unrealised).quantize(Decimal("0.000001")), (status, fee, amount, unrealised)


def _latest_published(s) -> tuple[int, float]:
    from auction_trader.adapters.bybit.rest import BybitRest  # noqa: PLC0415

    return BybitRest(s.rest_url, None, None, "BTCUSDT").last_funding()


# -- a live flip's entry waits for the account (the race behind the flip sizing) ---------------------


def test_flip_entry_waits_for_the_account_to_show_the_close():
    """On a live venue the account update follows the closing fill: sized at the fill, a flip got
    the free margin of an account still holding the old position's margin (0.177 BTC instead of
    1.984 on the stand-in, once in three runs). The core's lifecycle, on a venue of dicts whose
    account lags: the new entry goes out only when the account shows the close (``on_account``),
    sized on that margin; an account that never reports is settled at the next minute close."""
    from auction_trader.core.initiative import LONG, SHORT
    from auction_trader.core.lifecycle import Lifecycle
    from auction_trader.core.setups import Candidate
    from auction_trader.core.signals import ENTER_LONG, ENTER_SHORT, Decision, SignalEngine
    from tests.test_checkpoint import T0, DictVenue

    class LaggingVenue(DictVenue):
        margin, current = 10_000.0, True

        def free_margin(self):
            return self.margin

        def account_current(self):
            return self.current

    config = AuctionConfig().with_overrides(["use_limit_for_entry=false"])
    for late_forever in (False, True):
        venue = LaggingVenue()
        life = Lifecycle(config, SignalEngine(config, 0.1), venue, 0.001, 0.1, 0.00055)
        long_ = Candidate("breakin", LONG, 42_000.0, 41_900.0, 44_000.0, 46_000.0)
        rec1 = {"ts_min": T0 // 1_000_000, "reason_code": "SCRIPTED", "chosen_action": ENTER_LONG, "feature_snapshot": "{}"}
        life.act(Decision(ENTER_LONG, "SCRIPTED", long_), rec1, T0)
        # 10,000 x 2 % / 100 = 2 BTC (the cap, 10 x 10,000 / 42,000 = 2.38 BTC, does not bind)
        assert venue.log == [("submit", "O-1", "MARKET", 2000, None)]
        venue.orders["O-1"]["status"] = "closed"
        life.on_fill("O-1", "entry", False, 42_000.0, 2.0, 42.0, T0 + 1)
        for cid in ("O-2", "O-3", "O-4"):
            venue.accept(cid)
        short = Candidate("breakin", SHORT, 42_000.0, 42_100.0, 40_000.0, 38_000.0)
        rec2 = {"ts_min": T0 // 1_000_000 + 60_000, "reason_code": "SCRIPTED", "chosen_action": ENTER_SHORT, "feature_snapshot": "{}"}
        life.act(Decision(ENTER_SHORT, "SCRIPTED", short, close_first=True, exit_reason="flip"), rec2, T0 + MINUTE_NS)
        assert venue.log[-1] == ("submit", "O-5", "MARKET", 2000, None)  # the close
        # The close fills; the account still shows the old position's margin.
        venue.current, venue.margin = False, 885.0
        venue.orders["O-5"]["status"] = "closed"
        n = len(venue.log)
        life.on_fill("O-5", "flip", True, 42_000.0, 2.0, 46.2, T0 + MINUTE_NS + 1)
        assert [e for e in venue.log[n:] if e[0] == "submit"] == [], "no entry sized on a stale account"
        assert life.trade is None and life.flip is not None and "qty" not in rec2["feature_snapshot"]
        if not late_forever:
            venue.current, venue.margin = True, 9_911.8
            life.on_account()
            # 9,911.8 x 2 % / 100 = 1.982 BTC
            assert venue.log[-1] == ("submit", "O-6", "MARKET", 1982, None) and json.loads(rec2["feature_snapshot"])["qty"] == 1.982
            assert not [a for a in venue.alerts if a[1] == "flip entry sized before the account showed the close"]
        else:
            life.settle_flip(T0 + 2 * MINUTE_NS)
            # 885 x 2 % / 100 = 0.177 BTC: what the account says, with an alert
            assert venue.log[-1] == ("submit", "O-6", "MARKET", 177, None)
            assert (T0 + 2 * MINUTE_NS, "flip entry sized before the account showed the close") in venue.alerts
        assert life.flip is None and life.trade is not None and life.trade.direction == SHORT
