"""The net position from fills (auction_trader/core/position.py), hand-checked."""

from __future__ import annotations

import json
from decimal import Decimal as D

from auction_trader.core.position import NetPosition, Part


def test_fills_open_add_reduce_and_flip_in_one_fill():
    p = NetPosition()
    assert p.apply(1, D("0.4")) == [Part(D("0.4"), True, True, False)]  # opens long 0.4
    assert p.apply(1, D("0.1")) == [Part(D("0.1"), True, False, False)]  # adds: 0.5
    assert p.apply(-1, D("0.2")) == [Part(D("0.2"), False, False, False)]  # reduces: 0.3
    # sells 0.5 against 0.3 long: closes 0.3 (flat, the trip ends), opens 0.2 short (a new trip)
    assert p.apply(-1, D("0.5")) == [Part(D("0.3"), False, False, True), Part(D("0.2"), True, True, False)]
    assert (p.qty, p.side) == (D("-0.2"), -1)
    back = NetPosition.from_state(json.loads(json.dumps(p.state())))
    assert back.qty == D("-0.2")
    assert back.apply(1, D("0.2")) == [Part(D("0.2"), False, False, True)] and back.qty == 0 and back.side == 0


def test_the_funding_ledger_and_the_round_trips_read_the_same_position():
    from auction_trader.backtest.funding import FundingLedger
    from auction_trader.backtest.metrics import Fill, round_trips

    fills = [(1, D("0.4"), D("100")), (-1, D("0.6"), D("110")), (1, D("0.2"), D("105"))]
    ledger = FundingLedger(1.0)
    for i, (side, qty, _) in enumerate(fills):
        ledger.on_fill(i, side * qty)
    assert ledger.position == D(0)
    trips = round_trips([Fill(ts=i, side=s, qty=q, price=px, commission=D("0.06") * q, liquidity="TAKER", order_type="MARKET", reduce_only=False, client_order_id=f"O-{i}", trade_id=f"T-{i}", bid=0.0, ask=0.0) for i, (s, q, px) in enumerate(fills)])
    # long 0.4 @ 100 out @ 110: +4; short 0.2 @ 110 out @ 105: +1; the flip fill's fee split 0.4 / 0.2
    assert [(t.side, t.qty, t.gross, t.closed) for t in trips] == [(1, D("0.4"), D("4.0"), True), (-1, D("0.2"), D("1.0"), True)]
    assert [t.fees for t in trips] == [D("0.024") + D("0.024"), D("0.012") + D("0.012")]
