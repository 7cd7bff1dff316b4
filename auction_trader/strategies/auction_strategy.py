"""AuctionStrategy: the Nautilus face of the auction core.

Ticks feed the :class:`~auction_trader.indicators.AuctionFeatures` indicator; a timer at every minute
boundary closes the minute and asks the :class:`~auction_trader.core.signals.SignalEngine` for a
decision, which becomes orders:

* entry: a limit at the trigger bar's close (or a market order, ``use_limit_for_entry: false``);
  still working after ``limit_order_timeout_minutes`` it is cancelled and the rest goes at market;
* protection the moment an entry fills: a reduce-only stop-market, and TP1 / TP2 as reduce-only
  market-if-touched orders (market when touched; with ``use_market_for_exit: false`` reduce-only
  limits resting at the targets), resized as entry fills arrive; after TP1 the stop moves to the
  entry price; flat again, every sibling is cancelled;
* exits decided at a minute close (breakout closed back inside, time stop, kill switch) are market
  orders; a flip is the close at market, then - once the old position is flat - the new entry,
  sized on the margin the close freed (DESIGN.md "Signals");
* no order is left hanging: :mod:`auction_trader.core.orders` says which orders may rest and
  which must complete at once, and every minute close polices them (a stuck market order is
  cancelled and re-sent once, then given up, with an alert and a reason code).

The trade lifecycle itself - the plan of the open trade, its fills, which orders it wants, stuck
orders, flips - is :class:`~auction_trader.core.lifecycle.Lifecycle` in the framework-free core;
this class adapts Nautilus events to it, and :class:`NautilusVenue` implements its
:class:`~auction_trader.core.lifecycle.Venue` port with Nautilus orders. All decision state round-trips through :meth:`AuctionStrategy.checkpoint`
/ :meth:`AuctionStrategy.restore`.

Every order carries tags ``setup=…``, ``purpose=…`` (entry, stop, tp1, tp2, time, inside, flip, kill)
and ``signal_ts_min=…``. The strategy keeps what a run reports: the features and the signal log of
every minute, one record per position (specv2 §3.3 ``positions``), state snapshots and alerts.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable

import msgspec
import numpy as np
from nautilus_trader.config import StrategyConfig
from nautilus_trader.model.data import TradeTick
from nautilus_trader.model.enums import OrderSide, TimeInForce, TriggerType
from nautilus_trader.model.events import OrderCanceled, OrderExpired, OrderFilled, OrderRejected
from nautilus_trader.model.identifiers import ClientOrderId, InstrumentId
from nautilus_trader.model.orders import Order
from nautilus_trader.trading.strategy import Strategy

from auction_trader.config import AuctionConfig
from auction_trader.core.initiative import LONG
from auction_trader.core.lifecycle import Lifecycle, OrderView
from auction_trader.core.minute import minute_from_row
from auction_trader.core.risk import DailyLossGuard
from auction_trader.core.signals import SignalEngine
from auction_trader.core.sizing import heat
from auction_trader.indicators import AuctionFeatures
from auction_trader.instrument import BTCUSDT, InstrumentSpec

MINUTE_NS = 60_000_000_000
#: Without a live node's hooks (backtests), the feature rows stay in the Rust engine (about 0.4 KB a
#: row) and are drained this many at a time: a drain per minute cost a dict of one-row arrays per
#: minute (9 KB each, and 2 % of a backtest's CPU). :meth:`AuctionStrategy.features_columns` and
#: :meth:`AuctionStrategy.checkpoint` drain what is left first, so nothing reads a row late.
FEATURE_DRAIN_MINUTES = 1440
#: Version of the :meth:`AuctionStrategy.checkpoint` layout; :meth:`AuctionStrategy.restore` refuses others.
CHECKPOINT_VERSION = 1


class AuctionStrategyConfig(StrategyConfig, frozen=True):
    """``auction`` is an :class:`AuctionConfig` as a dict (``config.model_dump()``); empty = defaults."""

    instrument_id: str = BTCUSDT.instrument_id
    auction: dict | None = None


class AuctionStrategy(Strategy):
    """See the module docstring."""

    def __init__(self, config: AuctionStrategyConfig | None = None, hooks=None) -> None:
        config = config or AuctionStrategyConfig()
        if hooks is not None and config.external_order_claims is None:
            # A live node restarted mid-trade finds its orders at the venue; Nautilus adopts them
            # as external orders unless a strategy claims the instrument. Claimed, their events
            # reach this strategy, whose restored plan owns them by client order id.
            config = msgspec.structs.replace(config, external_order_claims=[InstrumentId.from_str(config.instrument_id)])
        super().__init__(config)
        self.hooks = hooks  # the live node's seam (see "live node seam" below); None in backtests
        self.params = AuctionConfig.model_validate(config.auction or {})
        self.instrument_id = InstrumentId.from_str(config.instrument_id)
        self.spec = BTCUSDT if config.instrument_id == BTCUSDT.instrument_id else None
        self.features: AuctionFeatures | None = None
        # Seam for the grid's fast path (auction_trader/grid/fast.py): a callable (config, spec) ->
        # an AuctionFeatures that is fed from elsewhere; None: the indicator fed by this strategy's ticks.
        self.features_factory = None
        self._engine: SignalEngine | None = None
        self.lifecycle: Lifecycle | None = None
        self.guard = DailyLossGuard(self.params.risk.max_daily_loss)
        self._feature_parts: list[dict[str, np.ndarray]] = []
        self._drained_minutes = 0  # features.minutes at the last drain
        # A backtest's RunSpool (auction_trader/backtest/spool.py, set by run_single): finished
        # features and signals go there as the run goes instead of piling up here (see _spill).
        self.spool = None
        self._signals: list[dict] = []
        self._snapshots: list[dict] = []
        self._alerts: list[dict] = []
        self._last_snapshot_min: int | None = None
        self._last_decided_min: int | None = None
        self._closed_through_ns: int | None = None  # the latest minute timer: features closed through it
        self._va_was_valid = False
        self._last_fill_init = 0  # ts_init of the latest fill: a live account update after it shows it

    @property
    def engine(self) -> SignalEngine | None:
        """The signal engine (the lifecycle reports positions opened and closed to it)."""
        return self._engine

    @engine.setter
    def engine(self, engine: SignalEngine) -> None:
        self._engine = engine
        if self.lifecycle is not None:
            self.lifecycle.signals = engine

    @property
    def trade(self):
        """The lifecycle's current trade (None when flat and no entry is working)."""
        return self.lifecycle.trade if self.lifecycle is not None else None

    # -- lifecycle -------------------------------------------------------------------------------

    def on_start(self) -> None:
        instrument = self.cache.instrument(self.instrument_id)
        if instrument is None:
            self.log.error(f"no instrument {self.instrument_id} in the cache")
            self.stop()
            return
        self.instrument = instrument
        spec = self.spec or InstrumentSpec(str(self.instrument_id), instrument.raw_symbol.value, instrument.price_precision, instrument.size_precision)
        self.tick = float(instrument.price_increment)
        self.step = float(instrument.size_increment)
        self.features = (self.features_factory or AuctionFeatures)(self.params, spec)
        self.engine = SignalEngine(self.params, self.tick)
        self.lifecycle = Lifecycle(self.params, self.engine, NautilusVenue(self), self.step, self.tick, float(instrument.taker_fee))
        if self.hooks is not None:
            self.lifecycle.may_enter = self._may_enter
            self.lifecycle.on_position = lambda row: self._hook_record("positions", row)
            self.lifecycle.on_record_amended = self._record_amended
        if getattr(self.hooks, "sequenced", False):
            # A live venue reports the account after a fill: a flip's entry waits for that report.
            self.msgbus.subscribe(topic="events.account.*", handler=self._on_account_state)
            return  # a live node's sequencer feeds self.features in exchange time and calls close_minute
        # Ticks go straight to the indicator: bound here, each tick skips a Python frame of ours.
        self.on_trade_tick = self.features.handle_trade_tick
        self.on_quote_tick = self.features.handle_quote_tick
        self.subscribe_quote_ticks(self.instrument_id)
        self.subscribe_trade_ticks(self.instrument_id)
        # A Nautilus timer first fires one interval after its start: start at the current minute
        # boundary to fire at every following one.
        start = self.clock.timestamp_ns() // MINUTE_NS * MINUTE_NS
        self.clock.set_timer_ns("minute-close", MINUTE_NS, start, 0, self._on_minute_timer)

    def on_stop(self) -> None:
        if self.features is not None:
            self.features.finish()
            self._keep_features(flush=True)
        if self.lifecycle is not None:
            self.lifecycle.record_open_position()

    def on_reset(self) -> None:
        if self.lifecycle is not None:
            self.lifecycle.reset()

    # -- decision state: checkpoint and restore ----------------------------------------------------

    def checkpoint(self) -> dict:
        """All decision state as JSON-safe primitives: the signal engine (acceptance sequences, retest
        wait, pending break-ins, open position and its time stop, cooldown), the kill switch's day
        baseline, the trade lifecycle (open trade plan, orders by client order id, requests awaiting
        an answer, a flip waiting for flat), and the minute bookkeeping.

        The feature engine (Rust) has no serialisation: the checkpoint says how far it had got
        (``features``: minutes closed, closed through which minute timer) and :meth:`restore`
        rebuilds it by feeding it the recorded ticks again - deterministic, so the same state.
        Call between two events (e.g. after a minute's decision), never inside a handler."""
        self._keep_features(flush=True)  # every row closed so far is reported before the checkpoint
        return {
            "version": CHECKPOINT_VERSION,
            "instrument_id": str(self.instrument_id),
            "signals": self.engine.state(),
            "kill_switch": self.guard.state(),
            "lifecycle": self.lifecycle.state(),
            "minute": {"last_decided_min": self._last_decided_min, "last_snapshot_min": self._last_snapshot_min, "va_was_valid": self._va_was_valid},
            "features": {"minutes": self.features.minutes, "closed_through_ns": self._closed_through_ns},
        }

    def restore(self, state: dict, ticks: Iterable | None = None) -> None:
        """Continue from ``state`` (a :meth:`checkpoint`, possibly through JSON) on a started
        strategy whose orders are in the cache (Nautilus's reconciliation, or the same venue).

        ``ticks``: the trade and quote ticks the checkpointed strategy had received (in receipt
        order, through the checkpoint): the feature engine is rebuilt from them and must then have
        closed as many minutes as the checkpoint says (ValueError otherwise). None leaves the
        feature engine as it is. The ``signals_1m`` records an open trade still completes (its
        entry minute's, a pending flip's) come back into :meth:`signal_records`."""
        if state.get("version") != CHECKPOINT_VERSION:
            raise ValueError(f"checkpoint version {state.get('version')!r}: this strategy reads version {CHECKPOINT_VERSION}")
        if state["instrument_id"] != str(self.instrument_id):
            raise ValueError(f"checkpoint of {state['instrument_id']}, this strategy trades {self.instrument_id}")
        if self.lifecycle is None:
            raise RuntimeError("restore() needs a started strategy (on_start builds the engines it restores)")
        self.engine.restore(state["signals"])
        self.guard = DailyLossGuard.from_state(self.params.risk.max_daily_loss, state["kill_switch"])
        self.lifecycle.restore(state["lifecycle"])
        minute = state["minute"]
        self._last_decided_min = minute["last_decided_min"]
        self._last_snapshot_min = minute["last_snapshot_min"]
        self._va_was_valid = bool(minute["va_was_valid"])
        self._signals = sorted(self.lifecycle.open_records(), key=lambda r: r["ts_min"])
        if ticks is not None:
            self._rebuild_features(ticks, state["features"])

    def _rebuild_features(self, ticks: Iterable, expected: dict) -> None:
        features = self.features
        features.reset()
        for tick in ticks:
            if isinstance(tick, TradeTick):
                features.handle_trade_tick(tick)
            else:
                features.handle_quote_tick(tick)
        if expected["closed_through_ns"] is not None:
            features.close_through(expected["closed_through_ns"])
        features.drain()  # rows the checkpointed strategy already reported
        self._drained_minutes = features.minutes
        self._closed_through_ns = expected["closed_through_ns"]
        if features.minutes != expected["minutes"]:
            raise ValueError(f"the ticks given rebuild {features.minutes} minutes of features, the checkpoint had {expected['minutes']}")

    # -- market data -------------------------------------------------------------------------------

    def _on_minute_timer(self, event) -> None:
        self.close_minute(event.ts_event)

    def close_minute(self, ts_ns: int) -> None:
        """Close the minutes ending by ``ts_ns`` and decide: the minute timer's work, also the
        entry for a live node whose sequencer closes minutes at boundary + grace."""
        # The minute may already have been closed by a tick stamped at the boundary; either way the
        # latest closed minute gets its decision once.
        self.features.close_through(ts_ns)
        self._closed_through_ns = ts_ns
        row = self.features.row
        if row is None or self._decided_for(row.ts_min):
            return
        self._keep_features()
        self._on_minute(row, ts_ns)

    def _decided_for(self, ts_min: int) -> bool:
        return self._last_decided_min is not None and self._last_decided_min >= ts_min

    def _keep_features(self, flush: bool = False) -> None:
        """Every minute's features for ``features_1m`` (``log_features_every_minute``); without it
        the rows are dropped as they come and the run writes no features file. A live node's hooks
        get every minute's row at once; otherwise rows are drained :data:`FEATURE_DRAIN_MINUTES`
        at a time (``flush``: now, whatever is pending)."""
        minutes = self.features.minutes
        if not flush and self.hooks is None and minutes - self._drained_minutes < FEATURE_DRAIN_MINUTES:
            return
        self._drained_minutes = minutes
        part = self.features.drain()
        if len(part["ts_min"]) and self.params.monitoring.log_features_every_minute:
            self._feature_parts.append(part)
            self._hook_features(part)
        if self.spool is not None:
            self._spill()

    def _spill(self) -> None:
        """Hand the spool the features kept so far and the signal records nothing will amend any
        more (those before the earliest record an open trade or a pending flip may still
        complete), and forget them."""
        for part in self._feature_parts:
            self.spool.features(part)
        self._feature_parts = []
        open_records = self.lifecycle.open_records() if self.lifecycle is not None else []
        first_open = min((r["ts_min"] for r in open_records), default=None)
        n = len(self._signals)
        if first_open is not None:
            n = next((i for i, r in enumerate(self._signals) if r["ts_min"] >= first_open), n)
        if n:
            self.spool.signals(self._signals[:n])
            del self._signals[:n]

    # -- the minute's decision ---------------------------------------------------------------------

    def _on_minute(self, row, now_ns: int) -> None:
        minute = minute_from_row(row, self.params, self.features.nearest_trade_distance)
        balance = self._balance()
        unrealized = self.lifecycle.unrealized(row.mid_close)
        kill = self.guard.on_minute(minute.decision_ts, balance, balance + unrealized)
        if kill and self.guard.tripped_at == minute.decision_ts:
            self._alert(now_ns, "kill switch activated", {"day_start_balance": self.guard.day_start_balance, "balance": balance})
        self._watch_quality(row, now_ns)
        self.lifecycle.settle_flip(now_ns)
        self.lifecycle.police(now_ns)
        self.lifecycle.age_entry(now_ns)
        ctx = self.lifecycle.context(kill, minute.bid, minute.ask)
        decision, record = self.engine.on_minute(minute, ctx)
        self.lifecycle.act(decision, record, now_ns)
        self._signals.append(record)
        self._last_decided_min = record["ts_min"]
        self._hook_record("signals_1m", record)
        self._snapshot(now_ns, "PERIODIC", minute.ts_min)

    def _record_amended(self, record: dict) -> None:
        """A record changed after its minute was decided goes to the store again (only then: one
        amended while its minute is being decided is stored by :meth:`_on_minute`)."""
        if self._decided_for(record["ts_min"]):
            self._hook_record("signals_1m", record)

    def _alert(self, ts_ns: int, kind: str, detail: dict) -> None:
        self._alerts.append({"ts_ms": int(ts_ns) // 1_000_000, "alert": kind, "detail": json.dumps(detail, sort_keys=True, default=str)})
        self._hook_record("alerts", self._alerts[-1])

    # -- live node seam: the node's gate and store (hooks=None in backtests) ---------------------------

    def _may_enter(self) -> bool:
        """The live node's gate (active, not halted, warmed up); always open without a node."""
        return self.hooks is None or bool(self.hooks.may_enter())

    def _hook_record(self, table: str, row: dict) -> None:
        if self.hooks is not None:
            self.hooks.record(table, row)

    def _hook_features(self, part: dict) -> None:
        if self.hooks is not None:
            names = list(part)
            for i in range(len(part["ts_min"])):
                self.hooks.record("features_1m", {k: part[k][i].item() if hasattr(part[k][i], "item") else part[k][i] for k in names})

    def _balance(self) -> float:
        account = self.portfolio.account(self.instrument_id.venue)
        return float(account.balance_total(self.instrument.settlement_currency))

    def _free_margin(self) -> float:
        account = self.portfolio.account(self.instrument_id.venue)
        return float(account.balance_free(self.instrument.settlement_currency))

    def _quote(self) -> tuple[float, float] | None:
        quote = self.cache.quote_tick(self.instrument_id)
        return None if quote is None else (quote.bid_price.as_double(), quote.ask_price.as_double())

    # -- Nautilus events -> the lifecycle ------------------------------------------------------------

    def on_order_accepted(self, event) -> None:
        self.lifecycle.on_accepted(event.client_order_id.value)

    def on_order_updated(self, event) -> None:
        self.lifecycle.on_accepted(event.client_order_id.value)

    def on_order_canceled(self, event: OrderCanceled) -> None:
        self.lifecycle.on_canceled(event.client_order_id.value, event.ts_event)

    def on_order_expired(self, event: OrderExpired) -> None:
        self.on_order_canceled(event)  # same handling: the rest goes at market

    def on_order_rejected(self, event: OrderRejected) -> None:
        self.lifecycle.on_rejected(event.client_order_id.value, event.ts_event, event.reason)

    def on_order_denied(self, event) -> None:
        self.on_order_rejected(event)

    def _on_account_state(self, event) -> None:
        if self.lifecycle is not None:
            self.lifecycle.on_account()

    def on_order_filled(self, event: OrderFilled) -> None:
        self._last_fill_init = max(self._last_fill_init, event.ts_init)
        order = self.cache.order(event.client_order_id)
        cid = event.client_order_id.value
        self.lifecycle.on_fill(
            cid,
            _tag(order, "purpose") or self.lifecycle.purpose_of(cid),
            order is not None and order.is_reduce_only,
            float(event.last_px),
            float(event.last_qty),
            float(event.commission),
            event.ts_event,
        )

    # -- helpers -------------------------------------------------------------------------------------

    def _mid(self) -> float:
        quote = self._quote()
        return math.nan if quote is None else (quote[0] + quote[1]) / 2

    def _watch_quality(self, row, now_ns: int) -> None:
        if row.va_valid != self._va_was_valid and not row.va_valid and self.features.initialized:
            self._alert(now_ns, "VA invalid", {"va_bin_count": int(row.va_bin_count)})
        self._va_was_valid = bool(row.va_valid)
        if row.ambiguous_trade_frac_1m > self.params.initiative.ambiguous_trade_frac_max:
            self._alert(now_ns, "high ambiguous fraction", {"ambiguous_trade_frac_1m": float(row.ambiguous_trade_frac_1m)})

    def _snapshot(self, ts_ns: int, kind: str, ts_min: int | None = None) -> None:
        """Every ``state_snapshot_interval_minutes`` and on every state change (specv2 §16.3)."""
        if kind == "PERIODIC":
            interval = self.params.monitoring.state_snapshot_interval_minutes
            minute = ts_min // 60_000
            if minute % interval != 0 or self._last_snapshot_min == minute:
                return
            self._last_snapshot_min = minute
        t = self.trade
        balance = self._balance()
        free = self._free_margin()
        position = None
        risk = []
        if t is not None:
            steps = t.open_steps
            stop = t.stop_price if t.filled_steps else t.candidate.stop
            position = {"side": "LONG" if t.direction == LONG else "SHORT", "setup": t.candidate.setup, "entry": t.entry_price if t.filled_steps else None, "qty": steps * self.step, "stop": stop, "tp1": t.candidate.tp1, "tp2": t.candidate.tp2, "tp1_done": t.tp1_done}
            if steps:
                risk.append((steps * self.step, t.entry_price, stop))
        orders = [
            {"id": str(o.client_order_id), "type": o.order_type.name, "side": o.side.name, "qty": float(o.quantity), "tags": o.tags}
            for o in self.cache.orders_open(instrument_id=self.instrument_id, strategy_id=self.id)
        ]
        self._snapshots.append(
            {
                "ts_ms": int(ts_ns) // 1_000_000,
                "snapshot_type": kind,
                "position_state": json.dumps(position, sort_keys=True),
                "acceptance_state": json.dumps({"up": self.engine.up.state(), "down": self.engine.down.state(), "state": self.engine.phase}, sort_keys=True, default=_nan_none),
                "pending_orders": json.dumps(orders, sort_keys=True),
                # heat: risk to the current stops over the capital sizing is based on - the equity,
                # one position at a time (DESIGN.md)
                "account_state": json.dumps({"balance": balance, "free": free, "heat": heat(risk, balance + self.lifecycle.unrealized(self._mid())), "kill_switch": self.guard.active}, sort_keys=True),
            },
        )

    # -- what a run reports --------------------------------------------------------------------------

    def features_columns(self) -> dict[str, np.ndarray]:
        if self.features is not None:
            self._keep_features(flush=True)
        if not self._feature_parts:
            return {}
        names = list(self._feature_parts[0])
        return {n: np.concatenate([p[n] for p in self._feature_parts]) for n in names}

    def signal_records(self) -> list[dict]:
        return list(self._signals)

    def position_records(self) -> list[dict]:
        return list(self.lifecycle.positions) if self.lifecycle is not None else []

    def state_snapshots(self) -> list[dict]:
        return list(self._snapshots)

    def alerts(self) -> list[dict]:
        return list(self._alerts)


class NautilusVenue:
    """The lifecycle's :class:`~auction_trader.core.lifecycle.Venue` port on Nautilus: orders from
    the strategy's order factory, looked up in the cache by client order id; the account through
    the portfolio; the quote from the cache; time from the strategy's clock."""

    def __init__(self, strategy: AuctionStrategy) -> None:
        self.s = strategy
        self._unsent: dict[str, Order] = {}  # created, not submitted yet

    def create(self, kind: str, direction: int, steps: int, level: float | None, tags: list[str], reduce_only: bool) -> str:
        s = self.s
        side = OrderSide.BUY if direction == LONG else OrderSide.SELL
        qty = s.instrument.make_qty(steps * s.step)
        f = s.order_factory
        if kind == "MARKET":
            order = f.market(s.instrument_id, side, qty, reduce_only=reduce_only, tags=tags)
        elif kind == "LIMIT":
            order = f.limit(s.instrument_id, side, qty, s.instrument.make_price(level), TimeInForce.GTC, reduce_only=reduce_only, tags=tags)
        else:
            factory = f.stop_market if kind == "STOP_MARKET" else f.market_if_touched
            order = factory(s.instrument_id, side, qty, s.instrument.make_price(level), TriggerType.BID_ASK, reduce_only=reduce_only, tags=tags)
        self._unsent[order.client_order_id.value] = order
        return order.client_order_id.value

    def submit(self, cid: str) -> None:
        self.s.submit_order(self._unsent.pop(cid))

    def modify(self, cid: str, steps: int, level: float) -> None:
        s = self.s
        order = s.cache.order(ClientOrderId(cid))
        qty = s.instrument.make_qty(steps * s.step)
        price = s.instrument.make_price(level)
        if order.order_type.name == "LIMIT":
            s.modify_order(order, quantity=qty, price=price)
        else:
            s.modify_order(order, quantity=qty, trigger_price=price)

    def cancel(self, cid: str) -> None:
        self.s.cancel_order(self.s.cache.order(ClientOrderId(cid)))

    def view(self, cid: str) -> OrderView | None:
        order = self.s.cache.order(ClientOrderId(cid))
        if order is None:
            return None
        level = order.trigger_price if order.has_trigger_price else (order.price if order.has_price else None)
        return OrderView(
            kind=order.order_type.name,
            purpose=_tag(order, "purpose") or self.s.lifecycle.purpose_of(cid),
            steps=round(float(order.quantity) / self.s.step),
            level=level.as_double() if level is not None else None,
            closed=order.is_closed,
            open=order.is_open,
            inflight=order.is_inflight,
            pending_update=order.is_pending_update,
            pending_cancel=order.is_pending_cancel,
        )

    def on_grid(self, price: float) -> float:
        return self.s.instrument.make_price(price).as_double()

    def now_ns(self) -> int:
        return self.s.clock.timestamp_ns()

    def last_tick_ns(self) -> int:
        """When the market last spoke (the latest quote or trade in the cache): an order cannot
        have been answered in a gap of the data, so the bound runs in market time."""
        cache, iid = self.s.cache, self.s.instrument_id
        quote, trade = cache.quote_tick(iid), cache.trade_tick(iid)
        return max(quote.ts_event if quote is not None else 0, trade.ts_event if trade is not None else 0)

    def free_margin(self) -> float:
        return self.s._free_margin()

    def account_current(self) -> bool:
        s = self.s
        if not getattr(s.hooks, "sequenced", False):
            return True  # a backtest's (and paper's) simulated account is updated with each fill
        account = s.portfolio.account(s.instrument_id.venue)
        last = account.last_event if account is not None else None
        return last is not None and last.ts_init > s._last_fill_init

    def balance(self) -> float:
        return self.s._balance()

    def quote(self) -> tuple[float, float] | None:
        return self.s._quote()

    def alert(self, ts_ns: int, kind: str, detail: dict) -> None:
        self.s._alert(ts_ns, kind, detail)

    def state_changed(self, ts_ns: int) -> None:
        self.s._snapshot(ts_ns, "STATE_CHANGE")


def _tag(order: Order | None, key: str) -> str | None:
    for tag in (order.tags or []) if order is not None else []:
        name, _, value = tag.partition("=")
        if name == key:
            return value
    return None


def _nan_none(value):
    return None if isinstance(value, float) and math.isnan(value) else value
