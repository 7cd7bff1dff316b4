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

Every order carries tags ``setup=…``, ``purpose=…`` (entry, stop, tp1, tp2, time, inside, flip, kill)
and ``signal_ts_min=…``. The strategy keeps what a run reports: the features and the signal log of
every minute, one record per position (specv2 §3.3 ``positions``), state snapshots and alerts.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np
from nautilus_trader.config import StrategyConfig
from nautilus_trader.model.enums import LiquiditySide, OrderSide, TimeInForce, TriggerType
from nautilus_trader.model.events import OrderCanceled, OrderExpired, OrderFilled, OrderRejected
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.objects import Price
from nautilus_trader.model.orders import Order
from nautilus_trader.trading.strategy import Strategy

from auction_trader.config import AuctionConfig
from auction_trader.core import orders as policy
from auction_trader.core.exits import market_exit_price, net_exit_pnl
from auction_trader.core.initiative import LONG
from auction_trader.core.minute import minute_from_row
from auction_trader.core.risk import DailyLossGuard
from auction_trader.core.setups import Candidate
from auction_trader.core.signals import ENTER_LONG, ENTER_SHORT, EXIT, HOLD, Context, Decision, SignalEngine, amend
from auction_trader.core.sizing import heat, position_size, remainder_within_cap, tp_split
from auction_trader.indicators import AuctionFeatures
from auction_trader.instrument import BTCUSDT, InstrumentSpec

MINUTE_NS = 60_000_000_000


class AuctionStrategyConfig(StrategyConfig, frozen=True):
    """``auction`` is an :class:`AuctionConfig` as a dict (``config.model_dump()``); empty = defaults."""

    instrument_id: str = BTCUSDT.instrument_id
    auction: dict | None = None


@dataclass
class _Trade:
    """One position's life, from the entry signal to flat: what the positions table records."""

    candidate: Candidate
    signal_ts_min: int
    planned_steps: int
    margin: float  # available margin when the entry was sized
    risk_pct: float
    entry_order: Order | None = None
    entry_submitted_ns: int = 0
    filled_steps: int = 0
    entry_cost: float = 0.0  # Σ price × qty of entry fills
    entry_fees: float = 0.0  # Σ commissions of entry fills
    exit_qty: float = 0.0
    exit_value: float = 0.0
    exited_steps: int = 0
    closing: bool = False  # a market exit (time, inside, kill, flip) is on its way
    fees: float = 0.0
    opened_ns: int | None = None
    closed_ns: int | None = None
    tp1_done: bool = False
    breakeven: bool = False  # TP1 filled and the stop moved to the entry price
    stop_order: Order | None = None
    tp_orders: dict[str, Order] = field(default_factory=dict)
    exit_purpose: str | None = None
    resync: bool = False  # a protective order was in flight when it needed changing
    tp_valid: tuple[bool, bool] | None = None  # which targets were on the right side of the entry
    record: dict | None = None  # the signals_1m record of the entry's minute, kept truthful
    flip: bool = False  # the entry of a flip (its close went out first)
    resends: dict[str, int] = field(default_factory=dict)  # purpose -> stuck market orders re-sent
    abandoned: set = field(default_factory=set)  # client order ids the trade no longer waits for

    @property
    def entry_price(self) -> float:
        qty = self.filled_steps
        return self.entry_cost / qty if qty else math.nan

    @property
    def open_steps(self) -> int:
        return self.filled_steps - self.exited_steps

    @property
    def entry_working(self) -> bool:
        o = self.entry_order
        return o is not None and not o.is_closed and o.client_order_id not in self.abandoned

    @property
    def stop_price(self) -> float:
        """The stop level now: the plan's, or the entry price once TP1 moved it to breakeven."""
        return self.entry_price if self.breakeven else self.candidate.stop

    def orders(self) -> list[Order]:
        return [o for o in (self.entry_order, self.stop_order, *self.tp_orders.values()) if o is not None]

    def tags(self, purpose: str) -> list[str]:
        return [f"setup={self.candidate.setup}", f"purpose={purpose}", f"signal_ts_min={self.signal_ts_min}"]


@dataclass
class _Flip:
    """A flip decided at a minute close: the old trade is closing; the new entry waits for flat."""

    old: _Trade
    candidate: Candidate
    signal_ts_min: int
    record: dict  # the minute's signals_1m record, completed when the entry goes out (or cannot)


class AuctionStrategy(Strategy):
    """See the module docstring."""

    def __init__(self, config: AuctionStrategyConfig | None = None, hooks=None) -> None:
        config = config or AuctionStrategyConfig()
        super().__init__(config)
        self.hooks = hooks  # the live node's seam (see "live node seam" below); None in backtests
        self.params = AuctionConfig.model_validate(config.auction or {})
        self.instrument_id = InstrumentId.from_str(config.instrument_id)
        self.spec = BTCUSDT if config.instrument_id == BTCUSDT.instrument_id else None
        self.features: AuctionFeatures | None = None
        self.engine: SignalEngine | None = None
        self.guard = DailyLossGuard(self.params.risk.max_daily_loss)
        self.trade: _Trade | None = None  # the latest trade (a flip briefly overlaps two)
        self._owner: dict = {}  # client order id -> the trade that placed it
        self._flip: _Flip | None = None
        self._waiting: dict = {}  # client order id -> (sent ns, "submit" | "cancel" | "modify"): answers due
        self._feature_parts: list[dict[str, np.ndarray]] = []
        self._signals: list[dict] = []
        self._positions: list[dict] = []
        self._snapshots: list[dict] = []
        self._alerts: list[dict] = []
        self._last_snapshot_min: int | None = None
        self._va_was_valid = False

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
        self.features = AuctionFeatures(self.params, spec)
        self.engine = SignalEngine(self.params, self.tick)
        if getattr(self.hooks, "sequenced", False):
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
            self._keep_features()
        if self.trade is not None and self.trade.opened_ns is not None and self.trade.closed_ns is None:
            self._record_position(self.trade, status="OPEN")

    def on_reset(self) -> None:
        self.trade, self._flip = None, None
        self._waiting.clear()

    # -- market data -------------------------------------------------------------------------------

    def _on_minute_timer(self, event) -> None:
        self.close_minute(event.ts_event)

    def close_minute(self, ts_ns: int) -> None:
        """Close the minutes ending by ``ts_ns`` and decide: the minute timer's work, also the
        entry for a live node whose sequencer closes minutes at boundary + grace."""
        # The minute may already have been closed by a tick stamped at the boundary; either way the
        # latest closed minute gets its decision once.
        self.features.close_through(ts_ns)
        row = self.features.row
        if row is None or self._decided_for(row.ts_min):
            return
        self._keep_features()
        self._on_minute(row, ts_ns)

    def _decided_for(self, ts_min: int) -> bool:
        return bool(self._signals) and self._signals[-1]["ts_min"] >= ts_min

    def _keep_features(self) -> None:
        """Every minute's features for ``features_1m`` (``log_features_every_minute``); without it
        the rows are dropped as they come and the run writes no features file."""
        part = self.features.drain()
        if len(part["ts_min"]) and self.params.monitoring.log_features_every_minute:
            self._feature_parts.append(part)
            self._hook_features(part)

    # -- the minute's decision ---------------------------------------------------------------------

    def _on_minute(self, row, now_ns: int) -> None:
        minute = minute_from_row(row, self.params, self.features.nearest_trade_distance)
        account = self.portfolio.account(self.instrument_id.venue)
        balance = float(account.balance_total(self.instrument.settlement_currency))
        unrealized = self._unrealized(row.mid_close)
        kill = self.guard.on_minute(minute.decision_ts, balance, balance + unrealized)
        if kill and self.guard.tripped_at == minute.decision_ts:
            self._alert(now_ns, "kill switch activated", {"day_start_balance": self.guard.day_start_balance, "balance": balance})
        self._watch_quality(row, now_ns)
        self._police_orders(now_ns)
        self._age_entry(now_ns)
        ctx = Context(
            kill_switch=kill,
            net_unrealized=self._net_at_exit(minute.bid, minute.ask),
            entry_working=(self.trade is not None and self.trade.opened_ns is None and self.trade.entry_working) or self._flip is not None,
        )
        decision, record = self.engine.on_minute(minute, ctx)
        self._act(decision, record, now_ns)
        self._signals.append(record)
        self._hook_record("signals_1m", record)
        self._snapshot(now_ns, "PERIODIC", minute.ts_min)

    def _act(self, decision: Decision, record: dict, now_ns: int) -> None:
        """Turns the decision into orders and makes ``record`` say what was done."""
        if decision.action == EXIT:
            self._exit(decision.exit_reason, now_ns)
        elif decision.action in (ENTER_LONG, ENTER_SHORT):
            old = self.trade
            if decision.close_first and old is not None and old.opened_ns is not None and old.closed_ns is None:
                # A flip: close now, open once flat - sized on the margin the close frees.
                self._flip = _Flip(old, decision.candidate, record["ts_min"], record)
                self._exit("flip", now_ns)
                return
            if decision.close_first:
                self._exit("flip", now_ns)
            self._enter(decision.candidate, record["ts_min"], now_ns, record)

    # -- entries -----------------------------------------------------------------------------------

    def _enter(self, c: Candidate, signal_ts_min: int, now_ns: int, record: dict, flip: bool = False) -> bool:
        """Sizes and submits the entry and completes ``record`` with what was done: the quantity,
        or - when sizing gives less than one step - ``HOLD`` (a flip: ``EXIT``, the close went
        out) with the reason."""
        if not self._may_enter():
            return False
        account = self.portfolio.account(self.instrument_id.venue)
        margin = float(account.balance_free(self.instrument.settlement_currency))
        sizing = self.params.sizing
        size = position_size(margin, sizing.risk_pct, c.entry, c.stop, self.step, sizing.max_leverage)
        if size.steps < 1:
            why = "SIZE_" + size.reason.upper().replace(" ", "_")
            amend(record, EXIT if flip else HOLD, f"{record['reason_code']}:{why}", qty=0.0, margin=margin)
            return False
        amend(record, qty=size.qty, margin=margin)
        if size.leverage_capped:
            self._alert(now_ns, "leverage cap hit", {"qty": size.qty, "leverage": size.leverage})
        t = _Trade(c, signal_ts_min, size.steps, margin, sizing.risk_pct, record=record, flip=flip)
        side = OrderSide.BUY if c.direction == LONG else OrderSide.SELL
        qty = self.instrument.make_qty(size.qty)
        if self.params.execution.use_limit_for_entry:
            order = self.order_factory.limit(self.instrument_id, side, qty, self.instrument.make_price(c.entry), TimeInForce.GTC, tags=t.tags("entry"))
        else:
            order = self.order_factory.market(self.instrument_id, side, qty, tags=t.tags("entry"))
        t.entry_order, t.entry_submitted_ns = order, now_ns
        self.trade = t
        self._submit(t, order)
        self._snapshot(now_ns, "STATE_CHANGE")
        return True

    def _submit(self, t: _Trade, order: Order) -> None:
        self._owner[order.client_order_id] = t
        if policy.must_complete(order.order_type.name):
            self._waiting[order.client_order_id] = (self.clock.timestamp_ns(), "submit")
        self.submit_order(order)

    def _cancel(self, order: Order) -> None:
        self._waiting[order.client_order_id] = (self.clock.timestamp_ns(), "cancel")
        self.cancel_order(order)

    def _flip_entry(self, ts_ns: int) -> None:
        """The old position of a flip is flat: open the new one on the margin now available."""
        f, self._flip = self._flip, None
        self._enter(f.candidate, f.signal_ts_min, ts_ns, f.record, flip=True)

    # -- no order left hanging ---------------------------------------------------------------------

    def _police_orders(self, now_ns: int) -> None:
        """Every order that must complete (market orders) and every cancel or modification must
        be answered within :data:`~auction_trader.core.orders.COMPLETION_BOUND_MS`; this runs at
        each minute close and handles those that are not (core/orders.py)."""
        for cid, (sent_ns, what) in sorted(self._waiting.items(), key=lambda kv: kv[1][0]):
            order = self.cache.order(cid)
            if order is None or order.is_closed:
                del self._waiting[cid]
                continue
            answered = (what == "modify" and not order.is_pending_update) or (what == "cancel" and not order.is_pending_cancel and not order.is_inflight)
            if answered:
                del self._waiting[cid]
                continue
            if not policy.overdue(sent_ns // 1_000_000, now_ns // 1_000_000, self._last_tick_ns() // 1_000_000):
                continue
            del self._waiting[cid]
            t = self._owner.get(cid)
            purpose = _tag(order, "purpose") or "unknown"
            if what != "submit":
                # An unanswered cancel or change: stop waiting for the order; the next sync of
                # protection places fresh orders.
                self._alert(now_ns, "order request unanswered", {"client_order_id": str(cid), "purpose": purpose, "request": what, "reason": f"ORDER_{what.upper()}_UNANSWERED"})
                if t is not None:
                    t.abandoned.add(cid)
                    self._forget_order(t, order)
                continue
            self._stuck(t, order, purpose, now_ns)

    def _last_tick_ns(self) -> int:
        """When the market last spoke (the latest quote or trade in the cache): an order cannot
        have been answered in a gap of the data, so the bound runs in market time."""
        quote = self.cache.quote_tick(self.instrument_id)
        trade = self.cache.trade_tick(self.instrument_id)
        return max(quote.ts_event if quote is not None else 0, trade.ts_event if trade is not None else 0)

    def _stuck(self, t: _Trade | None, order: Order, purpose: str, now_ns: int) -> None:
        """A market order neither filled nor rejected within the bound: cancel it, stop waiting for
        it, re-send the missing quantity once, then give up."""
        if order.is_open or order.is_inflight:
            self.cancel_order(order)
        if t is None or t.closed_ns is not None:
            return
        t.abandoned.add(order.client_order_id)
        action = policy.on_stuck(t.resends.get(purpose, 0))
        self._alert(now_ns, "order stuck", {"client_order_id": str(order.client_order_id), "purpose": purpose, "reason": policy.stuck_reason(purpose, action)})
        side = order.side
        if purpose == "entry":
            remaining = t.planned_steps - t.filled_steps
            if action == policy.RESEND and remaining > 0 and not t.closing:
                t.resends[purpose] = t.resends.get(purpose, 0) + 1
                t.entry_order = self.order_factory.market(self.instrument_id, side, self.instrument.make_qty(remaining * self.step), tags=t.tags("entry"))
                self._submit(t, t.entry_order)
                return
            t.planned_steps, t.entry_order = t.filled_steps, None
            if t.opened_ns is None:
                if t.record is not None:  # nothing was opened: the minute's record says so
                    amend(t.record, EXIT if t.flip else HOLD, f"{t.record['reason_code']}:ENTRY_GIVEN_UP", qty=0.0)
                self._forget(t)
            else:
                self._sync_protection(t)
            return
        if t.open_steps <= 0:
            return
        if action == policy.RESEND:
            t.resends[purpose] = t.resends.get(purpose, 0) + 1
            self._exit_steps(t, t.open_steps, purpose)
            return
        # Give up the exit: the position stays, protected by its stop; the next decision may exit again.
        t.closing, t.exit_purpose = False, None
        if self._flip is not None and self._flip.old is t:
            amend(self._flip.record, HOLD, f"{self._flip.record['reason_code']}:EXIT_GIVEN_UP")
            self._flip = None
        self._sync_protection(t)

    def _forget_order(self, t: _Trade, order: Order) -> None:
        if t.entry_order is order:
            t.entry_order = None
        if t.stop_order is order:
            t.stop_order = None
        for name, o in list(t.tp_orders.items()):
            if o is order:
                t.tp_orders[name] = None

    def _age_entry(self, now_ns: int) -> None:
        """A limit entry still working after the timeout is cancelled; the rest goes at market."""
        t = self.trade
        if t is None or not t.entry_working or t.entry_order.order_type.name != "LIMIT":
            return
        if now_ns - t.entry_submitted_ns >= self.params.execution.limit_order_timeout_minutes * MINUTE_NS and not t.entry_order.is_pending_cancel:
            self._cancel(t.entry_order)

    def on_order_canceled(self, event: OrderCanceled) -> None:
        t = self._owner.get(event.client_order_id)
        if t is None or t.closed_ns is not None:
            return
        if t.entry_order is not None and event.client_order_id == t.entry_order.client_order_id:
            remaining = self._remainder(t, event.ts_event) if not t.closing else 0
            if remaining > 0:
                side = OrderSide.BUY if t.candidate.direction == LONG else OrderSide.SELL
                order = self.order_factory.market(self.instrument_id, side, self.instrument.make_qty(remaining * self.step), tags=t.tags("entry"))
                t.entry_order = order
                self._submit(t, order)
            elif t.opened_ns is None:
                self._forget(t)  # closed before anything filled
            elif t.open_steps == 0:
                self._flat(t, event.ts_event)
        self._resync_protection(t)

    def _remainder(self, t: _Trade, ts_ns: int) -> int:
        """The rest of a timed-out limit entry, trimmed to what the leverage cap allows now: an
        entry sized right at the cap no longer fits once its first part paid the spread and fees."""
        remaining = t.planned_steps - t.filled_steps
        quote = self.cache.quote_tick(self.instrument_id)
        if remaining <= 0 or quote is None:
            return remaining
        bid, ask = quote.bid_price.as_double(), quote.ask_price.as_double()
        mid = (bid + ask) / 2
        equity = self._balance() + self._unrealized(mid)
        held = t.open_steps * self.step
        price = ask if t.candidate.direction == LONG else bid
        allowed = remainder_within_cap(remaining, equity, held, mid, price, self.step, self.params.sizing.max_leverage)
        if allowed < remaining:
            self._alert(ts_ns, "entry remainder trimmed to the leverage cap", {"planned": remaining * self.step, "sent": allowed * self.step})
            t.planned_steps = t.filled_steps + allowed
        return allowed

    def on_order_expired(self, event: OrderExpired) -> None:
        self.on_order_canceled(event)  # same handling: the rest goes at market

    def on_order_rejected(self, event: OrderRejected) -> None:
        self._alert(event.ts_event, "order rejected", {"client_order_id": str(event.client_order_id), "reason": event.reason})
        t = self._owner.get(event.client_order_id)
        if t is not None and t.entry_order is not None and event.client_order_id == t.entry_order.client_order_id and t.opened_ns is None:
            if t.record is not None:  # nothing was opened: the minute's record says so
                amend(t.record, EXIT if t.flip else HOLD, f"{t.record['reason_code']}:ENTRY_REJECTED", qty=0.0)
            self._forget(t)

    def on_order_denied(self, event) -> None:
        self.on_order_rejected(event)

    def _forget(self, t: _Trade) -> None:
        if self.trade is t:
            self.trade = None
        if self._flip is not None and self._flip.old is t:
            self._flip_entry(self.clock.timestamp_ns())

    # -- fills -------------------------------------------------------------------------------------

    def on_order_filled(self, event: OrderFilled) -> None:
        """Books the fill on the trade that placed the order. Orders submitted or changed from here
        may fill at once (re-entering this handler), so state is re-checked after each of them."""
        order = self.cache.order(event.client_order_id)
        t = self._owner.get(event.client_order_id)
        if t is None and order is not None and order.is_reduce_only:
            t = self.trade  # a close placed from outside the strategy (e.g. the end of a backtest)
        if t is None or t.closed_ns is not None:
            return
        purpose = _tag(order, "purpose")
        price, qty = float(event.last_px), float(event.last_qty)
        steps = round(qty / self.step)
        t.fees += float(event.commission)
        if event.client_order_id in t.abandoned:
            self._alert(event.ts_event, "fill of an abandoned order", {"client_order_id": str(event.client_order_id), "purpose": purpose, "qty": qty})
        if purpose == "entry":
            t.filled_steps += steps
            t.entry_cost += price * steps
            t.entry_fees += float(event.commission)
            if t.opened_ns is None:
                t.opened_ns = event.ts_event
                self.engine.position_opened(t.candidate, price, event.ts_event // 1_000_000)
                self._snapshot(event.ts_event, "STATE_CHANGE")
            if t.closing:
                # The entry filled while its cancel was on the way: that quantity leaves too.
                self._exit_steps(t, steps, t.exit_purpose or "exit")
        else:
            t.exited_steps += steps
            t.exit_qty += qty
            t.exit_value += price * qty
            if purpose == "tp1":
                t.tp1_done = True
                t.breakeven = self.params.exits.move_stop_to_breakeven_after_tp1
            if t.exit_purpose is None or purpose in ("stop", "tp2"):
                t.exit_purpose = purpose
        if t.open_steps <= 0 and not t.entry_working:
            self._flat(t, event.ts_event)
        elif not t.closing:
            self._sync_protection(t)

    def _sync_protection(self, t: _Trade) -> None:
        """Stop for the trade's open quantity; TP1 / TP2 a split of it; after TP1 the stop sits at
        the entry price."""
        steps = t.open_steps
        if steps <= 0 or t.closed_ns is not None:
            return
        c = t.candidate
        exit_side = OrderSide.SELL if c.direction == LONG else OrderSide.BUY
        entry = t.entry_price
        stop_price = self.instrument.make_price(t.stop_price)
        t.stop_order = self._place(t, t.stop_order, "stop", exit_side, steps, stop_price, stop=True)
        # Targets must be beyond the actual entry; the split is of the open quantity.
        tp1 = c.tp1 if c.tp1 is not None and c.direction * (c.tp1 - entry) > 0 and not t.tp1_done else None
        tp2 = c.tp2 if c.tp2 is not None and c.direction * (c.tp2 - entry) > 0 else None
        if t.tp_valid is None:
            t.tp_valid = (tp1 is not None, tp2 is not None)
        if tp1 is not None and tp2 is not None:
            n1, n2 = tp_split(steps, self.params.exits.tp1_pct)
        else:
            n1, n2 = (steps, 0) if tp1 is not None else (0, steps if tp2 is not None else 0)
        for name, n, level in (("tp1", n1, tp1), ("tp2", n2, tp2)):
            price = self.instrument.make_price(level) if level is not None else None
            t.tp_orders[name] = self._place(t, t.tp_orders.get(name), name, exit_side, n, price, stop=False)

    def _place(self, t: _Trade, order: Order | None, purpose: str, side: OrderSide, steps: int, level: Price | None, stop: bool) -> Order | None:
        """Submit, resize or cancel one protective order so that it holds ``steps`` at ``level``.

        The stop is a stop-market triggered on the bid/ask; a take-profit a market-if-touched order
        (the same trigger), or with ``use_market_for_exit: false`` a limit resting at the target.
        An order still in flight (submitted, or with a change pending) cannot be changed yet: the
        wish is remembered and applied when the venue answers (``on_order_accepted/updated``)."""
        resting_limit = not stop and not self.params.execution.use_market_for_exit
        if order is not None and not order.is_closed and order.client_order_id not in t.abandoned:
            if order.is_inflight or order.is_pending_update or order.is_pending_cancel:
                t.resync = True
                return order
            if steps <= 0 or level is None:
                self._cancel(order)
                return None
            qty = self.instrument.make_qty(steps * self.step)
            if resting_limit and (order.quantity != qty or order.price != level):
                self._waiting[order.client_order_id] = (self.clock.timestamp_ns(), "modify")
                self.modify_order(order, quantity=qty, price=level)
            elif not resting_limit and (order.quantity != qty or order.trigger_price != level):
                self._waiting[order.client_order_id] = (self.clock.timestamp_ns(), "modify")
                self.modify_order(order, quantity=qty, trigger_price=level)
            return order
        if steps <= 0 or level is None:
            return None
        qty = self.instrument.make_qty(steps * self.step)
        if resting_limit:
            new = self.order_factory.limit(self.instrument_id, side, qty, level, TimeInForce.GTC, reduce_only=True, tags=t.tags(purpose))
        else:
            factory = self.order_factory.stop_market if stop else self.order_factory.market_if_touched
            new = factory(self.instrument_id, side, qty, level, TriggerType.BID_ASK, reduce_only=True, tags=t.tags(purpose))
        self._submit(t, new)
        return new

    def on_order_accepted(self, event) -> None:
        self._resync_protection(self._owner.get(event.client_order_id))

    def on_order_updated(self, event) -> None:
        self._resync_protection(self._owner.get(event.client_order_id))

    def _resync_protection(self, t: _Trade | None) -> None:
        if t is not None and t.resync and t.opened_ns is not None and t.closed_ns is None and not t.closing:
            t.resync = False
            self._sync_protection(t)

    # -- exits -------------------------------------------------------------------------------------

    def _exit(self, purpose: str, now_ns: int) -> None:
        """Market exit of the current trade (time, inside, kill, flip); a working entry is cancelled."""
        t = self.trade
        if t is None or t.closing:
            return
        t.closing = True
        t.planned_steps = t.filled_steps  # nothing more to buy
        if t.entry_working and not t.entry_order.is_pending_cancel:
            self._cancel(t.entry_order)
        if t.open_steps <= 0:
            if t.opened_ns is None:
                self._forget(t)
            return
        t.exit_purpose = purpose
        self._exit_steps(t, t.open_steps, purpose)

    def _exit_steps(self, t: _Trade, steps: int, purpose: str) -> None:
        side = OrderSide.SELL if t.candidate.direction == LONG else OrderSide.BUY
        order = self.order_factory.market(self.instrument_id, side, self.instrument.make_qty(steps * self.step), reduce_only=True, tags=t.tags(purpose))
        self._submit(t, order)

    def _flat(self, t: _Trade, ts_ns: int) -> None:
        """The trade is flat: record it, tell the engine (cooldown), cancel its siblings. Runs once."""
        if t.closed_ns is not None:
            return
        t.closed_ns = ts_ns
        self._record_position(t, status="STOPPED" if t.exit_purpose == "stop" else "CLOSED")
        self.engine.position_closed(ts_ns // 1_000_000, t.candidate)
        for order in t.orders():
            if not order.is_closed and not order.is_pending_cancel:
                self._cancel(order)
        self._snapshot(ts_ns, "STATE_CHANGE")
        self._forget(t)  # a flip waiting for this trade to be flat opens its entry now

    def _record_position(self, t: _Trade, status: str) -> None:
        self._record_position_row(t, status)
        self._hook_record("positions", self._positions[-1])

    def _record_position_row(self, t: _Trade, status: str) -> None:
        c = t.candidate
        exit_price = t.exit_value / t.exit_qty if t.exit_qty else None
        qty = t.filled_steps * self.step
        realized = (exit_price - t.entry_price) * t.exit_qty * c.direction if exit_price is not None else 0.0
        self._positions.append(
            {
                "id": len(self._positions) + 1,
                "ts_ms_open": t.opened_ns // 1_000_000,
                "ts_ms_close": t.closed_ns // 1_000_000 if t.closed_ns is not None else None,
                "side": "LONG" if c.direction == LONG else "SHORT",
                "entry_price": t.entry_price,
                "exit_price": exit_price,
                "qty_contracts": qty,
                "qty_at_tp1": self._tp1_qty(t),
                "stop_price": c.stop,
                "tp1_price": c.tp1,
                "tp2_price": c.tp2,
                "strategy_tag": c.setup,
                "status": status,
                "realized_pnl": realized,
                "fees_paid": t.fees,
                "funding_paid": None,
                "leverage_used": qty * t.entry_price / t.margin,  # notional over the margin it was sized on
                "risk_pct_used": t.risk_pct,
                "exit_reason": t.exit_purpose,
                "signal_ts_min": t.signal_ts_min,
            },
        )

    # -- helpers -------------------------------------------------------------------------------------

    def _tp1_qty(self, t: _Trade) -> float | None:
        """The plan's TP1 share of the whole entry (None when TP1 was not a valid target)."""
        if not t.tp_valid or not t.tp_valid[0]:
            return None
        steps = tp_split(t.filled_steps, self.params.exits.tp1_pct)[0] if t.tp_valid[1] else t.filled_steps
        return steps * self.step if steps else None

    def _mid(self) -> float:
        quote = self.cache.quote_tick(self.instrument_id)
        return math.nan if quote is None else (quote.bid_price.as_double() + quote.ask_price.as_double()) / 2

    def _balance(self) -> float:
        account = self.portfolio.account(self.instrument_id.venue)
        return float(account.balance_total(self.instrument.settlement_currency))

    def _unrealized(self, mid: float) -> float:
        t = self.trade
        if t is None or t.opened_ns is None or t.filled_steps == 0 or math.isnan(mid):
            return 0.0
        return (mid - t.entry_price) * t.open_steps * self.step * t.candidate.direction

    def _net_at_exit(self, bid: float, ask: float) -> float:
        """The open position's P&L if a market exit went out now - at the bid (long) or ask
        (short) of the close, ``slippage_ticks_exit`` beyond - net of its share of the entry fees
        paid and the exit's taker fee: what the time stop's "profitable net of fees" judges."""
        t = self.trade
        if t is None or t.opened_ns is None or t.open_steps <= 0:
            return 0.0
        d = t.candidate.direction
        price = market_exit_price(d, bid, ask, self.params.execution.slippage_ticks_exit, self.tick)
        share = t.open_steps / t.filled_steps
        return net_exit_pnl(d, t.open_steps * self.step, t.entry_price, price, t.entry_fees * share, float(self.instrument.taker_fee))

    def _watch_quality(self, row, now_ns: int) -> None:
        if row.va_valid != self._va_was_valid and not row.va_valid and self.features.initialized:
            self._alert(now_ns, "VA invalid", {"va_bin_count": int(row.va_bin_count)})
        self._va_was_valid = bool(row.va_valid)
        if row.ambiguous_trade_frac_1m > self.params.initiative.ambiguous_trade_frac_max:
            self._alert(now_ns, "high ambiguous fraction", {"ambiguous_trade_frac_1m": float(row.ambiguous_trade_frac_1m)})

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

    def _snapshot(self, ts_ns: int, kind: str, ts_min: int | None = None) -> None:
        """Every ``state_snapshot_interval_minutes`` and on every state change (specv2 §16.3)."""
        if kind == "PERIODIC":
            interval = self.params.monitoring.state_snapshot_interval_minutes
            minute = ts_min // 60_000
            if minute % interval != 0 or self._last_snapshot_min == minute:
                return
            self._last_snapshot_min = minute
        account = self.portfolio.account(self.instrument_id.venue)
        t = self.trade
        balance = self._balance()
        free = float(account.balance_free(self.instrument.settlement_currency))
        position = None
        risk = []
        if t is not None:
            steps = t.open_steps
            stop = t.stop_price if t.filled_steps else t.candidate.stop
            position = {"side": "LONG" if t.candidate.direction == LONG else "SHORT", "setup": t.candidate.setup, "entry": t.entry_price if t.filled_steps else None, "qty": steps * self.step, "stop": stop, "tp1": t.candidate.tp1, "tp2": t.candidate.tp2, "tp1_done": t.tp1_done}
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
                "acceptance_state": json.dumps({"up": self.engine.up.state(), "down": self.engine.down.state(), "state": self.engine.state}, sort_keys=True, default=_nan_none),
                "pending_orders": json.dumps(orders, sort_keys=True),
                # heat: risk to the current stops over the capital sizing is based on - the equity,
                # one position at a time (DESIGN.md)
                "account_state": json.dumps({"balance": balance, "free": free, "heat": heat(risk, balance + self._unrealized(self._mid())), "kill_switch": self.guard.active}, sort_keys=True),
            },
        )

    # -- what a run reports --------------------------------------------------------------------------

    def features_columns(self) -> dict[str, np.ndarray]:
        if not self._feature_parts:
            return {}
        names = list(self._feature_parts[0])
        return {n: np.concatenate([p[n] for p in self._feature_parts]) for n in names}

    def signal_records(self) -> list[dict]:
        return list(self._signals)

    def position_records(self) -> list[dict]:
        return list(self._positions)

    def state_snapshots(self) -> list[dict]:
        return list(self._snapshots)

    def alerts(self) -> list[dict]:
        return list(self._alerts)


def _tag(order: Order | None, key: str) -> str | None:
    for tag in (order.tags or []) if order is not None else []:
        name, _, value = tag.partition("=")
        if name == key:
            return value
    return None


def _nan_none(value):
    return None if isinstance(value, float) and math.isnan(value) else value

