"""A ``--paper`` node across a funding settlement, with a position: the charge is booked at the rate
the node fetched from Bybit (the stand-in's funding history), in the balance and in the store.

The node's clock is the wall clock and a settlement (00/08/16 UTC) comes every 8 hours, so a node
process cannot be made to cross one inside a test. Everything the node does with time takes the
time as an argument, though (``LiveNode.on_tick`` takes the tick's exchange time, ``LiveNode.pump``
the "now" of its timer), so here the node runs in this process, built as ``run_live.py --paper``
builds it (store, paper venue, the scripted strategy, the REST client on the stand-in), without
the TradingNode around it (its only part in paper mode is the data client, which this test stands
in for by calling ``on_tick``), and is driven through a settlement a day before now: ticks every
250 ms (quotes) and 1 s (trades) from 6 minutes before the settlement to 1 minute after, and the
pump every 100 ms of that clock.
"""

from __future__ import annotations

import io
import json
import time
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
from tests.live_harness import MINUTE_NS, rows
from tests.live_script import ScriptedAuction

standin_mod = pytest.importorskip("tests.bybit_standin", reason="the Bybit stand-in (tests/bybit_standin) is not in this tree")

IID = InstrumentId.from_str("BTCUSDT-LINEAR.BYBIT")
BID, ASK = "50000.0", "50000.1"
RATE = "0.00025"  # the stand-in's published rate: 2.5 bps, not the config's 1 bps
SETTINGS = [
    "warmup_minutes=2", "rolling_window_minutes=3", "spread_lookback_minutes=3", "min_va_bins=1",
    "require_manual_activation=false", "use_limit_for_entry=false", "cooldown_minutes=0",
]  # fmt: skip


def _ticks(start_ns: int, end_ns: int) -> list[tuple[object, bool]]:
    out = []
    n = 0
    for ts in range(start_ns, end_ns, 250_000_000):
        out.append((QuoteTick(IID, Price.from_str(BID), Price.from_str(ASK), Quantity.from_str("5.000"), Quantity.from_str("5.000"), ts, ts), False))
        if n % 4 == 2:
            out.append((TradeTick(IID, Price.from_str(ASK), Quantity.from_str("0.001"), AggressorSide.BUYER, TradeId(f"t{ts}"), ts + 1, ts + 1), True))
        n += 1
    return out


def test_paper_node_books_funding_at_the_fetched_rate_across_a_settlement(tmp_path):
    s = standin_mod.StandIn(seed=7, port=0, feed=False, funding_rate=RATE).start()
    try:
        published_ms, _ = _latest_published(s)
        instant = next_funding_after(time.time_ns()) - 3 * FUNDING_INTERVAL_NS  # a settlement a day ago
        assert instant <= published_ms * 1_000_000, "the stand-in's history has a settlement at or after it"
        start = instant - 6 * MINUTE_NS
        enter_ts_min = (instant - 3 * MINUTE_NS) // 1_000_000  # the long is decided at this minute's close
        script = {"enter_ts_min": enter_ts_min, "direction": 1, "stop_ticks": 200, "tp1_ticks": 3000, "tp2_ticks": 6000}
        config = AuctionConfig().with_overrides(SETTINGS)
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
    mark = (Decimal(BID) + Decimal(ASK)) / 2
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


def _latest_published(s) -> tuple[int, float]:
    from auction_trader.adapters.bybit.rest import BybitRest  # noqa: PLC0415

    return BybitRest(s.rest_url, None, None, "BTCUSDT").last_funding()
