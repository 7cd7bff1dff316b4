"""A test strategy that submits orders at scripted times, with tags, and records what it saw.

Each :class:`Action` fires from a time alert at ``ts`` (alerts at a tick's timestamp fire after the
ticks of that timestamp). Prices of limit / stop / if-touched orders are given relative to the
quote standing at that moment (``anchor`` "bid" / "ask" / "mid" plus ``offset_ticks``) or as an
absolute ``price``. ``seen`` keeps, per action, the quote the strategy saw and the order's id.

:class:`ReportingScriptedStrategy` also offers the duck-typed methods the backtest outputs read from
AuctionStrategy (``features_columns``, ``signal_records``, ``position_records``,
``state_snapshots``, ``alerts``), filled with simple but real records of its own trading.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
from nautilus_trader.config import StrategyConfig
from nautilus_trader.model.data import QuoteTick, TradeTick
from nautilus_trader.model.enums import OrderSide, PositionSide
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.objects import Price, Quantity
from nautilus_trader.trading.strategy import Strategy

MINUTE_NS = 60_000_000_000


@dataclass
class Action:
    ts: int
    kind: str  # market | limit | stop_market | mit | close | cancel_all
    side: str = "BUY"
    qty: str = "0.010"
    reduce_only: bool = False
    anchor: str | None = None  # bid | ask | mid (for priced orders)
    offset_ticks: int = 0
    price: float | None = None
    tags: list[str] = field(default_factory=list)


class ScriptedConfig(StrategyConfig, frozen=True):
    instrument_id: str = "BTCUSDT-LINEAR.BYBIT"


class ScriptedStrategy(Strategy):
    def __init__(self, actions: list[Action], features: dict | None = None, strategy_id: str = "SCRIPTED-001") -> None:
        super().__init__(ScriptedConfig(strategy_id=strategy_id))
        self.instrument_id = InstrumentId.from_str(self.config.instrument_id)
        self.actions = sorted(actions, key=lambda a: a.ts)
        self._features = features
        self.seen: list[dict] = []
        self.quotes = 0
        self.trades = 0
        self.balances: list[tuple[int, Decimal, Decimal]] = []  # (ts, wallet balance, free balance) at each action
        self._positions: list[dict] = []
        self._open: dict | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    def on_start(self) -> None:
        self.subscribe_quote_ticks(self.instrument_id)
        self.subscribe_trade_ticks(self.instrument_id)
        for i, action in enumerate(self.actions):
            self.clock.set_time_alert_ns(f"action-{i:05d}", action.ts, self._make_handler(i))

    def on_quote_tick(self, tick: QuoteTick) -> None:
        self.quotes += 1

    def on_trade_tick(self, tick: TradeTick) -> None:
        self.trades += 1

    def _make_handler(self, i: int):
        return lambda event: self._act(i, event.ts_event)

    def _act(self, i: int, ts: int) -> None:
        action = self.actions[i]
        quote = self.cache.quote_tick(self.instrument_id)
        bid, ask = float(quote.bid_price.as_decimal()), float(quote.ask_price.as_decimal())
        account = self.portfolio.account(self.instrument_id.venue)
        self.balances.append((ts, account.balance_total().as_decimal(), account.balance_free().as_decimal()))
        record = {"i": i, "ts": ts, "bid": bid, "ask": ask, "quote_ts": quote.ts_event, "order": None}
        side = OrderSide.BUY if action.side == "BUY" else OrderSide.SELL
        qty = Quantity.from_str(action.qty)
        tags = list(action.tags) or None
        factory = self.order_factory
        if action.kind == "close":
            self.close_all_positions(self.instrument_id, tags=tags)
        elif action.kind == "cancel_all":
            self.cancel_all_orders(self.instrument_id)
        else:
            if action.kind == "market":
                order = factory.market(self.instrument_id, side, qty, reduce_only=action.reduce_only, tags=tags)
            else:
                price = self._price(action, bid, ask)
                if action.kind == "limit":
                    order = factory.limit(self.instrument_id, side, qty, price, reduce_only=action.reduce_only, tags=tags)
                elif action.kind == "stop_market":
                    order = factory.stop_market(self.instrument_id, side, qty, price, reduce_only=action.reduce_only, tags=tags)
                elif action.kind == "mit":
                    order = factory.market_if_touched(self.instrument_id, side, qty, price, reduce_only=action.reduce_only, tags=tags)
                else:
                    raise ValueError(action.kind)
                record["price"] = float(price.as_decimal())
            record["order"] = order.client_order_id.value
            self.submit_order(order)
        self.seen.append(record)

    @staticmethod
    def _price(action: Action, bid: float, ask: float) -> Price:
        if action.price is not None:
            return Price(action.price, 1)
        base = {"bid": bid, "ask": ask, "mid": (bid + ask) / 2}[action.anchor or "mid"]
        return Price(round(base + action.offset_ticks * 0.1, 1), 1)

    # -- position records ------------------------------------------------------------------------

    def on_position_opened(self, event) -> None:
        self._open = {
            "ts_ms_open": event.ts_event // 1_000_000,
            "side": "LONG" if event.side == PositionSide.LONG else "SHORT",
            "entry_price": float(event.avg_px_open),
            "qty_contracts": float(event.quantity),
            "stop_price": 0.0,
            "strategy_tag": "scripted",
            "status": "OPEN",
            "leverage_used": 0.0,
            "risk_pct_used": 0.0,
        }

    def on_position_closed(self, event) -> None:
        if self._open is None:
            return
        row = dict(self._open)
        row.update(
            ts_ms_close=event.ts_event // 1_000_000,
            exit_price=float(event.avg_px_close),
            status="CLOSED",
            realized_pnl=float(event.realized_pnl.as_decimal()),
        )
        self._positions.append(row)
        self._open = None


class ReportingScriptedStrategy(ScriptedStrategy):
    """The scripted strategy plus the duck-typed output methods of AuctionStrategy."""

    def features_columns(self) -> dict[str, np.ndarray]:
        return self._features or {}

    def signal_records(self) -> list[dict]:
        rows = []
        for rec in self.seen:
            ts_min = rec["ts"] // MINUTE_NS * 60_000 - 60_000
            rows.append(
                {
                    "ts_min": ts_min,
                    "signal_breakin_long": 1 if self.actions[rec["i"]].side == "BUY" else 0,
                    "signal_breakin_short": 0,
                    "signal_breakout_long": 0,
                    "signal_breakout_short": 0,
                    "signal_failbreak_long": 0,
                    "signal_failbreak_short": 0,
                    "acceptance_state": json.dumps({"count": 0}),
                    "chosen_action": "HOLD" if self.actions[rec["i"]].kind == "cancel_all" else "ENTER_LONG",
                    "reason_code": self.actions[rec["i"]].kind,
                    "feature_snapshot": json.dumps({"bid": rec["bid"], "ask": rec["ask"]}),
                },
            )
        return rows

    def position_records(self) -> list[dict]:
        return [dict(r) for r in self._positions] + ([dict(self._open)] if self._open else [])

    def state_snapshots(self) -> list[dict]:
        return [
            {
                "ts_ms": ts // 1_000_000,
                "snapshot_type": "PERIODIC",
                "position_state": json.dumps({"n": i}),
                "acceptance_state": json.dumps({}),
                "pending_orders": json.dumps([]),
                "account_state": json.dumps({"equity": float(bal), "free": float(free)}),
            }
            for i, (ts, bal, free) in enumerate(self.balances)
        ]

    def alerts(self) -> list[dict]:
        return [{"ts_ms": self.actions[0].ts // 1_000_000, "kind": "test", "message": "scripted alert"}] if self.actions else []


def dec(x) -> Decimal:
    return Decimal(str(x))
