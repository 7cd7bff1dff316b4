"""``run_live.py --live`` (MAINNET: orders over the trade socket) through 100+ dropped connections
of each socket (public, private, trade), a burst of 10006 answers and a frozen feed, with a position
and its stop and targets open on the venue.

The schedule. The reconnect backoff of Nautilus's Bybit sockets is fixed in Rust -
``BybitWebSocketClient::connect`` (crates/adapters/bybit/src/websocket/client.rs, ``WebSocketConfig
{ reconnect_delay_initial_ms: 500, reconnect_delay_max_ms: 5_000, reconnect_backoff_factor: 1.5,
reconnect_jitter_ms: 250 }``); the Python constructors (``new_public``/``new_private``/``new_trade``)
take only ``heartbeat``, and ``BybitDataClientConfig``/``BybitExecClientConfig`` have no reconnect
setting (their ``retry_delay_*`` fields are the HTTP client's). The network client (crates/network,
1.231) resets the backoff only once a connection has stayed up 10 s ("remained active for at least
10s, resetting reconnect cycle"), not on a successful reconnect: drops in a row wait 0, 0, 0.5,
0.75, 1.1, 1.7, 2.5, 3.8, then ~5 s each (+ up to 0.25 s jitter). A cycle of k drops followed by
10 s of quiet costs (sum of the first k waits + k x (lifetime + handshake) + 10 s) / k a drop:
k = 6 or 7 is the minimum (~2.7 s a drop; 100 drops in a row took 489 s on the bare public client).
So: CYCLES cycles of DROPS_PER_CYCLE drops, the three sockets (separate clients, separate backoffs)
dropped concurrently in the same cycle, each reconnection closed again DROP_AFTER_MS after it opened
(long enough to re-authenticate and resubscribe, so every drop cuts a working socket); the next
cycle starts STABLE_S after the latest reconnection the stand-in saw, so every socket's backoff has
reset. The drops begin as soon as the node is warm and active: the cycles that fall before the
scripted entry run while the node waits for its minute, and no cycle is started that could overlap
the entry and its 10006 retries.

Measured (2 cores shared with other test runs, load average 4-8; ``pytest tests/test_live_drops.py
-m slow -s``), four runs: 102 drops of each socket every time (stand-in connections after the
start: public 102, private 102, trade 102), each cycle's drops 6.0-6.7 s, 280-286 s from
activation to the last reconnection, the test 295-306 s, pytest 299-314 s (4 min 59 s - 5 min
14 s); no stale event during the drops. Runs 3 and 4 (the ones that counted them) each booked 1
fill by REST: the TP1 fill's private frame was lost to a drop.

The trade: a scripted market entry whose first four order requests get 10006 (the execution client
re-sends the same client order id after 0.5/1/2/4 s and gives up after a fifth 10006); stop, TP1 and
TP2 rest while most cycles run; in cycle TP1_CYCLE the price goes through TP1 right after the drops
are injected, so the TP1 fill and the stop's resize to the entry price happen while the sockets are
being cut (a fill whose private frame is lost comes back through the execution client's REST fill
check, auction_trader/adapters/bybit/execution.py).
After the last drop: ticks flow, the feed freezes (the stale event), resumes, and the price goes
through TP2. Afterwards: every socket reconnected once per drop (the stand-in's connection count),
ticks were recorded after the last drop, no order reached the venue twice and exactly the four
orders of the trade did, every venue fill is in the store's ``fills`` table, the node's books
(orders, the closed trade) agree with the venue's, the venue is flat with nothing open.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from decimal import Decimal

import pytest

from tests.live_harness import REPO, NodeProcess, endpoint_args, minute_ms_after, preseed, rows, until
from tests.live_script import SCRIPT_ENV
from tests.test_live_orders import TICK, Pusher, _size

standin_mod = pytest.importorskip("tests.bybit_standin", reason="the Bybit stand-in (tests/bybit_standin) is not in this tree")

KINDS = ("public", "private", "trade")
CYCLES = 17
DROPS_PER_CYCLE = 6  # 17 x 6 = 102 drops of each socket
DROP_AFTER_MS = 300  # each reconnection lives 300 ms: long enough to re-authenticate and resubscribe
STABLE_S = 10.4  # Nautilus resets a socket's reconnect backoff once it has stayed up 10 s
CYCLE_BOUND_S = 60  # one cycle's drops and reconnections (~6 s when the backoff has reset)
TP1_CYCLE = CYCLES // 2  # the cycle during which the price goes through TP1
BURST = 4  # 10006 answers in a row to the entry: the execution client re-sends after 0.5/1/2/4 s, the 5th attempt passes
ENTRY_CLEAR_S = 15.0  # no drop cycle starts within this long of the entry's minute close (a cycle's drops take ~6 s)
GRACE_S = 0.5  # the config's minute_grace_ms: the entry goes out at its minute's close + this
TICKS_WINDOW_S = 5.0  # of ticks between the last drop cycle and the freeze
FILL_SETTLE_S = 1.0  # the last fill frame to reach the node before it stops


@pytest.mark.slow
def test_live_100_drops_of_each_socket_a_10006_burst_and_a_frozen_feed(tmp_path):
    s = standin_mod.StandIn(seed=7, port=0, feed=False).start()
    pusher = Pusher(s)
    node = None
    t_start = time.monotonic()
    cycle_s: list[float] = []
    try:
        data = tmp_path / "live"
        preseed(data, 3)
        enter_ts_min = minute_ms_after(25)
        entry_at = enter_ts_min / 1000 + 60 + GRACE_S  # wall clock of the entry's submission
        script = {"enter_ts_min": enter_ts_min, "direction": 1, "stop_ticks": 200, "tp1_ticks": 3, "tp2_ticks": 6, "at": "touch"}
        sets = ["warmup_minutes=2", "rolling_window_minutes=3", "spread_lookback_minutes=3", "min_va_bins=1", "require_manual_activation=false",
                "risk_pct=0.0001", "cooldown_minutes=0", "use_limit_for_entry=false", "data_stale_seconds=3", f"minute_grace_ms={int(GRACE_S * 1000)}"]  # fmt: skip
        args = ["--live", "--yes-i-mean-live", "--environment", "mainnet", "--data-dir", str(data), *endpoint_args(s), *[a for x in sets for a in ("--set", x)]]
        env = {SCRIPT_ENV: json.dumps(script), "BYBIT_API_KEY": s.api_key, "BYBIT_API_SECRET": s.api_secret}
        node = NodeProcess(args, env=env, scripted=True)
        assert node.wait_for(r"warm-up complete", 40), node.output[-3000:]
        activate = subprocess.run([sys.executable, "run_live.py", "activate", "--data-dir", str(data)], cwd=REPO, capture_output=True, text=True, timeout=30)
        assert activate.returncode == 0, activate.stdout + activate.stderr
        s.fail_next(BURST, 10006, "orders")
        t_active = time.monotonic()

        entry: Decimal | None = None

        def entered() -> Decimal:
            """Wait (bounded) for the entry to fill 0.5 BTC through the burst and for stop, TP1, TP2 to rest."""
            until(lambda: _size(s) == Decimal("0.5"), max(0.0, entry_at - time.time()) + 60, "the entry to fill 0.5 BTC through the 10006 burst", node, s)
            until(lambda: len([o for o in s.open_orders() if o.get("reduceOnly")]) == 3, 40, "stop, TP1 and TP2", node, s)
            return Decimal(str(s.position()["avgPrice"]))

        # -- drop cycles: every socket DROPS_PER_CYCLE times in a row, then quiet until every socket has been up STABLE_S
        before = s.stats()["connects"]
        for cycle in range(CYCLES):
            if entry is None and (cycle == TP1_CYCLE or time.time() + ENTRY_CLEAR_S > entry_at):
                entry = entered()  # no socket is cut while the entry and its retries are on the way
            t_cycle = time.monotonic()
            for kind in KINDS:
                s.drop(kind, times=DROPS_PER_CYCLE, after_ms=DROP_AFTER_MS)
            if cycle == TP1_CYCLE:
                pusher.move(entry + 3 * TICK)  # through TP1 while the sockets are being cut
            want = {k: before[k] + DROPS_PER_CYCLE * (cycle + 1) for k in KINDS}
            st = until(lambda: (st := s.stats()) and (st if all(st["connects"][k] >= want[k] and st["open"][k] for k in KINDS) else None), CYCLE_BOUND_S, f"every socket back after drop cycle {cycle + 1}", node, s)
            cycle_s.append(time.monotonic() - t_cycle)
            if cycle < CYCLES - 1:
                latest = max(st["connect_times"][k][-1] for k in KINDS) / 1000
                time.sleep(max(0.0, latest + STABLE_S - time.time()))
        drops_s = time.monotonic() - t_active
        stats = s.stats()
        last_public_connect_ms = stats["connect_times"]["public"][-1]

        until(lambda: _size(s) == Decimal("0.35"), 30, "TP1 to have sold 0.15", node, s)

        def stop_at_entry():
            stops = [o for o in s.open_orders() if o.get("reduceOnly") and Decimal(o["triggerPrice"]) < entry + TICK]
            return stops and Decimal(stops[0]["triggerPrice"]) == entry and Decimal(stops[0]["qty"]) == Decimal("0.35")

        until(stop_at_entry, 40, "the stop resized to 0.35 and moved to the entry price", node, s)

        # -- frozen feed: the stale event, then the feed back (counted from here: a cycle may have raised one)
        time.sleep(max(0.0, last_public_connect_ms / 1000 + TICKS_WINDOW_S - time.time()))  # ticks flowing on the last connections
        stale_before = node.output.count("DATA FEED STALE")
        back_before = node.output.count("data feed back after a gap")
        s.freeze(True)
        stale = node.wait_for(r"DATA FEED STALE", 20, count=stale_before + 1)
        s.freeze(False)
        assert stale, node.output[-3000:]
        assert node.wait_for(r"data feed back after a gap", 20, count=back_before + 1), node.output[-3000:]

        pusher.move(entry + 6 * TICK)  # through TP2: flat
        until(lambda: _size(s) == 0, 30, "TP2 to close the rest", node, s)
        until(lambda: s.open_orders() == [], 40, "the stop to be cancelled once flat", node, s)
        time.sleep(FILL_SETTLE_S)
        venue_orders, venue_fills, order_requests = s.orders(), s.fills(), s.order_requests()
    finally:
        rc = node.stop() if node is not None else None
        pusher.stop()
        s.stop()
    drops = {k: stats["connects"][k] - before[k] for k in KINDS}
    recovered = node.output.count("found on the venue, not received: booked")  # fills the execution client's REST check booked
    print(f"\ndrops {drops} in {drops_s:.1f} s from activation ({len(cycle_s)} cycles of {', '.join(f'{c:.1f}' for c in cycle_s)} s); "
          f"{stale_before} stale events during the drops; {recovered} fills recovered by REST; test {time.monotonic() - t_start:.1f} s")  # fmt: skip
    assert rc == 0, node.output[-3000:]

    # every drop was a closed connection and a reconnection, on every socket; one connection of each is left
    for kind in KINDS:
        assert drops[kind] >= CYCLES * DROPS_PER_CYCLE >= 100, (kind, stats["connects"], before)
        assert stats["open"][kind] == 1, stats["open"]
    # the burst was answered: exactly BURST order requests got 10006, and the trade went on
    assert sum(1 for r in order_requests if r["retCode"] == 10006) == BURST

    # ticks resumed: quotes and trades recorded after the public socket's last reconnection
    from nautilus_trader.persistence.catalog import ParquetDataCatalog

    catalog = ParquetDataCatalog(str(data / "catalog"))
    after_ns = last_public_connect_ms * 1_000_000
    # (the pusher sends a quote every 250 ms and a print a second; at least TICKS_WINDOW_S pass between the
    # last reconnection and the freeze: half of them is the floor)
    quotes_after = sum(1 for q in catalog.quote_ticks() if q.ts_event > after_ns)
    trades_after = sum(1 for t in catalog.trade_ticks() if t.ts_event > after_ns)
    print(f"recorded after the last drop: {quotes_after} quotes, {trades_after} trades")
    assert quotes_after >= 4 * TICKS_WINDOW_S / 2 and trades_after >= TICKS_WINDOW_S / 2

    # no order sent twice: one venue order per client order id, one accepted create per id, and the
    # trade's four orders only (entry, stop, TP1, TP2; the stop is moved by an amendment, not a new order)
    links = [o["orderLinkId"] for o in venue_orders]
    assert len(links) == len(set(links)) == 4, ("an order reached the venue twice", links)
    created = [r["args"].get("orderLinkId") for r in order_requests if r["action"] == "create" and r["retCode"] == 0]
    assert sorted(created) == sorted(links), (created, links)
    burst_ids = {r["args"].get("orderLinkId") for r in order_requests if r["retCode"] == 10006}
    assert len(burst_ids) == 1 and burst_ids <= set(created), burst_ids  # the entry's id, re-sent until it passed

    # no lost fill: every venue execution is a row of the store's fills table (price, size, fee), with
    # its order's purpose; the node's orders and closed trade agree with the venue
    venue_status = {o["orderLinkId"]: o["orderStatus"] for o in venue_orders}
    names = {"Filled": "FILLED", "Cancelled": "CANCELED", "Deactivated": "CANCELED"}  # an untriggered stop cancelled: Deactivated
    orders = {o["client_order_id"]: o for o in rows(data, "orders")}
    assert {o["purpose"] for o in orders.values()} == {"entry", "stop", "tp1", "tp2"}, orders
    assert {k: o["status"] for k, o in orders.items()} == {k: names.get(v, v) for k, v in venue_status.items()}
    stored_fills = rows(data, "fills")
    stored = sorted((f["client_order_id"], Decimal(repr(f["price"])), Decimal(repr(f["qty"])), Decimal(repr(f["commission"]))) for f in stored_fills)
    assert stored == sorted((f["order_link_id"], Decimal(f["price"]), Decimal(f["qty"]), Decimal(f["fee"])) for f in venue_fills), (stored, venue_fills)
    assert all(f["purpose"] == orders[f["client_order_id"]]["purpose"] for f in stored_fills), stored_fills
    purpose = {k: o["purpose"] for k, o in orders.items()}
    qty = {p: sum(Decimal(f["qty"]) for f in venue_fills if purpose[f["order_link_id"]] == p) for p in ("entry", "tp1", "tp2", "stop")}
    assert qty == {"entry": Decimal("0.5"), "tp1": Decimal("0.15"), "tp2": Decimal("0.35"), "stop": 0}, qty
    gross = sum((Decimal(f["price"]) * Decimal(f["qty"]) * (1 if f["side"] == "Sell" else -1)) for f in venue_fills)
    fees = sum(Decimal(f["fee"]) for f in venue_fills)
    (trade,) = rows(data, "positions")
    assert trade["status"] == "CLOSED" and trade["exit_reason"] == "tp2" and trade["qty_contracts"] == 0.5 and trade["qty_at_tp1"] == 0.15, trade
    assert trade["realized_pnl"] == pytest.approx(float(gross), abs=1e-6) and trade["fees_paid"] == pytest.approx(float(fees), abs=1e-6), (trade, gross, fees)
