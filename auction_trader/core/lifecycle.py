"""The trade lifecycle: decisions and venue events in, the orders the plan wants out.

:class:`Lifecycle` owns the open :class:`~auction_trader.core.trade.Trade` (a flip briefly
overlaps two), the orders it placed (client order id -> trade), the requests that must be answered
in time (:mod:`auction_trader.core.orders`) and a flip waiting for flat. It is driven by

* the minute close: :meth:`Lifecycle.police` (stuck orders), :meth:`Lifecycle.age_entry` (the limit
  entry's timeout), :meth:`Lifecycle.context` (what the signal engine needs) and
  :meth:`Lifecycle.act` (the engine's decision: enter, exit, flip);
* venue events, by client order id: :meth:`on_fill`, :meth:`on_canceled` (also expiries),
  :meth:`on_rejected` (also denials), :meth:`on_accepted` (also updates).

It speaks to the venue only through a :class:`Venue` port - create / submit / modify / cancel an
order, look one up as an :class:`OrderView`, the account's free margin and balance, the quote - so
it is plain Python: the Nautilus strategy implements the port, a test can implement it with a dict.
Protection is declarative: :meth:`Trade.protection` says which stop / TP orders the plan wants, and
:meth:`Lifecycle.sync_protection` compares them with the orders that exist and submits, resizes or
cancels the difference. Every piece of state round-trips through :meth:`Lifecycle.state` /
:meth:`Lifecycle.from_state` (JSON-safe primitives, orders by client order id).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from auction_trader.config import AuctionConfig
from auction_trader.core import orders as policy
from auction_trader.core.exits import market_exit_price, net_exit_pnl
from auction_trader.core.initiative import LONG
from auction_trader.core.setups import Candidate
from auction_trader.core.signals import ENTER_LONG, ENTER_SHORT, EXIT, HOLD, Context, Decision, SignalEngine, amend
from auction_trader.core.sizing import position_size, remainder_within_cap
from auction_trader.core.trade import PROTECTION, FlipPlan, Trade

MINUTE_NS = 60_000_000_000


@dataclass(frozen=True)
class OrderView:
    """What the lifecycle needs to know of one order at the venue."""

    kind: str  # MARKET, LIMIT, STOP_MARKET, MARKET_IF_TOUCHED
    purpose: str | None  # the order's purpose tag (entry, stop, tp1, ...)
    steps: int  # the order's quantity in qty steps
    level: float | None  # trigger price (stops, take-profits) or limit price
    closed: bool  # filled, cancelled, rejected or expired
    open: bool  # accepted and working
    inflight: bool  # submitted, not acknowledged yet
    pending_update: bool
    pending_cancel: bool


class Venue(Protocol):
    """The lifecycle's view of the venue and the account (on Nautilus:
    :class:`auction_trader.strategies.auction_strategy.NautilusVenue`)."""

    def create(self, kind: str, direction: int, steps: int, level: float | None, tags: list[str], reduce_only: bool) -> str:
        """Build an order (not sent yet); returns its client order id. ``kind``: MARKET, LIMIT
        (at ``level``), STOP_MARKET / MARKET_IF_TOUCHED (triggered at ``level`` on the bid/ask)."""

    def submit(self, cid: str) -> None: ...

    def modify(self, cid: str, steps: int, level: float) -> None: ...

    def cancel(self, cid: str) -> None: ...

    def view(self, cid: str) -> OrderView | None: ...

    def on_grid(self, price: float) -> float:
        """``price`` as the venue would quote it (the instrument's price grid)."""

    def now_ns(self) -> int: ...

    def last_tick_ns(self) -> int:
        """When the market last spoke (the latest quote or trade)."""

    def free_margin(self) -> float: ...

    def balance(self) -> float: ...

    def account_current(self) -> bool:
        """Does the account (free margin, balance) show every fill so far? A simulated venue's is
        updated with each fill; a live venue reports the account after the fill (Bybit: the wallet
        frame follows the execution frame)."""

    def quote(self) -> tuple[float, float] | None:
        """The latest (bid, ask)."""

    def alert(self, ts_ns: int, kind: str, detail: dict) -> None: ...

    def state_changed(self, ts_ns: int) -> None:
        """A trade opened, closed or was entered: a state snapshot is due (specv2 §16.3)."""


class Lifecycle:
    """See the module docstring. ``step``: the instrument's qty step; ``tick``: its price increment;
    ``taker_fee``: the rate a market exit pays."""

    def __init__(self, config: AuctionConfig, signals: SignalEngine, venue: Venue, step: float, tick: float, taker_fee: float) -> None:
        self.config = config
        self.signals = signals
        self.venue = venue
        self.step = step
        self.tick = tick
        self.taker_fee = taker_fee
        self.trade: Trade | None = None  # the latest trade (a flip briefly overlaps two)
        self.owner: dict[str, Trade] = {}  # client order id -> the trade that placed it
        self.flip: FlipPlan | None = None
        self.waiting: dict[str, tuple[int, str]] = {}  # client order id -> (sent ns, "submit" | "cancel" | "modify")
        self.positions: list[dict] = []  # positions rows recorded by this process
        self.positions_recorded = 0  # rows recorded over the run (ids continue across a restart)
        # Seams for a live node (defaults: a backtest's): may a new position open now (the node's
        # gate: active, not halted, warmed up), and where each positions row goes as it is made.
        self.may_enter: Callable[[], bool] = lambda: True
        self.on_position: Callable[[dict], None] = lambda row: None
        # A minute's signals_1m record changed (a flip's entry sized once the old position is flat,
        # an entry rejected or given up): a live store writes it again if its minute was decided.
        self.on_record_amended: Callable[[dict], None] = lambda record: None

    # -- the minute close ------------------------------------------------------------------------

    def entry_working(self, t: Trade) -> bool:
        cid = t.entry_id
        if cid is None or cid in t.abandoned:
            return False
        view = self.venue.view(cid)
        return view is not None and not view.closed

    def context(self, kill_switch: bool, bid: float, ask: float) -> Context:
        t = self.trade
        return Context(
            kill_switch=kill_switch,
            net_unrealized=self.net_at_exit(bid, ask),
            entry_working=(t is not None and t.opened_ns is None and self.entry_working(t)) or self.flip is not None,
        )

    def net_at_exit(self, bid: float, ask: float) -> float:
        """The open position's P&L if a market exit went out now - at the bid (long) or ask
        (short) of the close, ``slippage_ticks_exit`` beyond - net of its share of the entry fees
        paid and the exit's taker fee: what the time stop's "profitable net of fees" judges."""
        t = self.trade
        if t is None or t.opened_ns is None or t.open_steps <= 0:
            return 0.0
        d = t.direction
        price = market_exit_price(d, bid, ask, self.config.execution.slippage_ticks_exit, self.tick)
        share = t.open_steps / t.filled_steps
        return net_exit_pnl(d, t.open_steps * self.step, t.entry_price, price, t.entry_fees * share, self.taker_fee)

    def unrealized(self, mid: float) -> float:
        t = self.trade
        return 0.0 if t is None else t.unrealized(mid, self.step)

    def act(self, decision: Decision, record: dict, now_ns: int) -> None:
        """Turns the decision into orders and makes ``record`` say what was done."""
        if decision.action == EXIT:
            self.exit(decision.exit_reason, now_ns)
        elif decision.action in (ENTER_LONG, ENTER_SHORT):
            old = self.trade
            if decision.close_first and old is not None and old.is_open:
                # A flip: close now, open once flat - sized on the margin the close frees.
                self.flip = FlipPlan(old, decision.candidate, record["ts_min"], record)
                self.exit("flip", now_ns)
                return
            if decision.close_first:
                self.exit("flip", now_ns)
            self.enter(decision.candidate, record["ts_min"], now_ns, record)

    # -- entries ---------------------------------------------------------------------------------

    def enter(self, c: Candidate, signal_ts_min: int, now_ns: int, record: dict, flip: bool = False) -> bool:
        """Sizes and submits the entry and completes ``record`` with what was done: the quantity,
        or - when sizing gives less than one step - ``HOLD`` (a flip: ``EXIT``, the close went
        out) with the reason. Nothing happens while the node's gate is closed."""
        if not self.may_enter():
            return False
        margin = self.venue.free_margin()
        sizing = self.config.sizing
        size = position_size(margin, sizing.risk_pct, c.entry, c.stop, self.step, sizing.max_leverage)
        if size.steps < 1:
            why = "SIZE_" + size.reason.upper().replace(" ", "_")
            self._amend(record, EXIT if flip else HOLD, f"{record['reason_code']}:{why}", qty=0.0, margin=margin)
            return False
        self._amend(record, qty=size.qty, margin=margin)
        if size.leverage_capped:
            self.venue.alert(now_ns, "leverage cap hit", {"qty": size.qty, "leverage": size.leverage})
        t = Trade(c, signal_ts_min, size.steps, margin, sizing.risk_pct, record=record, flip=flip)
        kind = "LIMIT" if self.config.execution.use_limit_for_entry else "MARKET"
        cid = self.venue.create(kind, c.direction, size.steps, c.entry if kind == "LIMIT" else None, t.tags("entry"), False)
        t.entry_id, t.entry_submitted_ns = cid, now_ns
        self.trade = t
        self._submit(t, cid, kind)
        self.venue.state_changed(now_ns)
        return True

    def _submit(self, t: Trade, cid: str, kind: str) -> None:
        self.owner[cid] = t
        if policy.must_complete(kind):
            self.waiting[cid] = (self.venue.now_ns(), "submit")
        self.venue.submit(cid)

    def _cancel(self, cid: str) -> None:
        self.waiting[cid] = (self.venue.now_ns(), "cancel")
        self.venue.cancel(cid)

    def _market(self, t: Trade, direction: int, steps: int, purpose: str, reduce_only: bool) -> str:
        return self.venue.create("MARKET", direction, steps, None, t.tags(purpose), reduce_only)

    def _flip_entry(self, ts_ns: int) -> None:
        """The old position of a flip is flat: open the new one on the margin now available."""
        f, self.flip = self.flip, None
        self.enter(f.candidate, f.signal_ts_min, ts_ns, f.record, flip=True)

    def _open_flip(self) -> None:
        """The old position of a flip is gone: the new entry is sized on the margin the close
        freed - once the account shows it. Until a live venue's account update after the closing
        fill arrives, the closed position's margin still counts as used (a flip sized then got
        0.177 BTC instead of 1.984 on the stand-in), so the entry waits for :meth:`on_account`
        (or, at the latest, the next minute close: :meth:`settle_flip`)."""
        if self.venue.account_current():
            self._flip_entry(self.venue.now_ns())

    def on_account(self) -> None:
        """The account was updated: a flip waiting for it opens now."""
        if self.flip is not None and self.trade is None:
            self._open_flip()

    def settle_flip(self, now_ns: int) -> None:
        """At a minute close: a flip still waiting for the account opens on what the account says."""
        if self.flip is not None and self.trade is None:
            self.venue.alert(now_ns, "flip entry sized before the account showed the close", {"signal_ts_min": self.flip.signal_ts_min})
            self._flip_entry(now_ns)

    def _amend(self, record: dict, *args, **changes) -> None:
        """Change a minute's ``signals_1m`` record and say so (:attr:`on_record_amended`: a record
        changed after its minute was decided is stored again; the hook ignores the minute being
        decided)."""
        amend(record, *args, **changes)
        self.on_record_amended(record)

    # -- no order left hanging -------------------------------------------------------------------

    def police(self, now_ns: int) -> None:
        """Every order that must complete (market orders) and every cancel or modification must
        be answered within :data:`~auction_trader.core.orders.COMPLETION_BOUND_MS`; this runs at
        each minute close and handles those that are not (core/orders.py)."""
        for cid, (sent_ns, what) in sorted(self.waiting.items(), key=lambda kv: kv[1][0]):
            view = self.venue.view(cid)
            if view is None or view.closed:
                del self.waiting[cid]
                continue
            answered = (what == "modify" and not view.pending_update) or (what == "cancel" and not view.pending_cancel and not view.inflight)
            if answered:
                del self.waiting[cid]
                continue
            if not policy.overdue(sent_ns // 1_000_000, now_ns // 1_000_000, self.venue.last_tick_ns() // 1_000_000):
                continue
            del self.waiting[cid]
            t = self.owner.get(cid)
            purpose = view.purpose or "unknown"
            if what != "submit":
                # An unanswered cancel or change: stop waiting for the order; the next sync of
                # protection places fresh orders.
                self.venue.alert(now_ns, "order request unanswered", {"client_order_id": cid, "purpose": purpose, "request": what, "reason": f"ORDER_{what.upper()}_UNANSWERED"})
                if t is not None:
                    t.abandoned.add(cid)
                    t.forget_order(cid)
                continue
            self._stuck(t, cid, view, purpose, now_ns)

    def _stuck(self, t: Trade | None, cid: str, view: OrderView, purpose: str, now_ns: int) -> None:
        """A market order neither filled nor rejected within the bound: cancel it, stop waiting for
        it, re-send the missing quantity once, then give up."""
        if view.open or view.inflight:
            self.venue.cancel(cid)
        if t is None or t.closed_ns is not None:
            return
        t.abandoned.add(cid)
        action = policy.on_stuck(t.resends.get(purpose, 0))
        self.venue.alert(now_ns, "order stuck", {"client_order_id": cid, "purpose": purpose, "reason": policy.stuck_reason(purpose, action)})
        if purpose == "entry":
            remaining = t.planned_steps - t.filled_steps
            if action == policy.RESEND and remaining > 0 and not t.closing:
                t.resends[purpose] = t.resends.get(purpose, 0) + 1
                t.entry_id = self._market(t, t.direction, remaining, "entry", False)
                self._submit(t, t.entry_id, "MARKET")
                return
            t.planned_steps, t.entry_id = t.filled_steps, None
            if t.opened_ns is None:
                if t.record is not None:  # nothing was opened: the minute's record says so
                    self._amend(t.record, EXIT if t.flip else HOLD, f"{t.record['reason_code']}:ENTRY_GIVEN_UP", qty=0.0)
                self._forget(t)
            else:
                self.sync_protection(t)
            return
        if t.open_steps <= 0:
            return
        if action == policy.RESEND:
            t.resends[purpose] = t.resends.get(purpose, 0) + 1
            self._exit_steps(t, t.open_steps, purpose)
            return
        # Give up the exit: the position stays, protected by its stop; the next decision may exit again.
        t.closing, t.exit_purpose = False, None
        if self.flip is not None and self.flip.old is t:
            self._amend(self.flip.record, HOLD, f"{self.flip.record['reason_code']}:EXIT_GIVEN_UP")
            self.flip = None
        self.sync_protection(t)

    def age_entry(self, now_ns: int) -> None:
        """A limit entry still working after the timeout is cancelled; the rest goes at market."""
        t = self.trade
        if t is None or not self.entry_working(t):
            return
        view = self.venue.view(t.entry_id)
        if view.kind != "LIMIT":
            return
        if now_ns - t.entry_submitted_ns >= self.config.execution.limit_order_timeout_minutes * MINUTE_NS and not view.pending_cancel:
            self._cancel(t.entry_id)

    # -- venue events ----------------------------------------------------------------------------

    def on_canceled(self, cid: str, ts_ns: int) -> None:
        """An order was cancelled (or expired): a timed-out limit entry's rest goes at market."""
        t = self.owner.get(cid)
        if t is None or t.closed_ns is not None:
            return
        if t.entry_id is not None and cid == t.entry_id:
            remaining = self._remainder(t, ts_ns) if not t.closing else 0
            if remaining > 0:
                t.entry_id = self._market(t, t.direction, remaining, "entry", False)
                self._submit(t, t.entry_id, "MARKET")
            elif t.opened_ns is None:
                self._forget(t)  # closed before anything filled
            elif t.open_steps == 0:
                self._flat(t, ts_ns)
        self._resync(t)

    def _remainder(self, t: Trade, ts_ns: int) -> int:
        """The rest of a timed-out limit entry, trimmed to what the leverage cap allows now: an
        entry sized right at the cap no longer fits once its first part paid the spread and fees."""
        remaining = t.planned_steps - t.filled_steps
        quote = self.venue.quote()
        if remaining <= 0 or quote is None:
            return remaining
        bid, ask = quote
        mid = (bid + ask) / 2
        equity = self.venue.balance() + self.unrealized(mid)
        held = t.open_steps * self.step
        price = ask if t.direction == LONG else bid
        allowed = remainder_within_cap(remaining, equity, held, mid, price, self.step, self.config.sizing.max_leverage)
        if allowed < remaining:
            self.venue.alert(ts_ns, "entry remainder trimmed to the leverage cap", {"planned": remaining * self.step, "sent": allowed * self.step})
            t.planned_steps = t.filled_steps + allowed
        return allowed

    def on_rejected(self, cid: str, ts_ns: int, reason: str) -> None:
        """An order was rejected (or denied): an entry that opened nothing is forgotten."""
        self.venue.alert(ts_ns, "order rejected", {"client_order_id": cid, "reason": reason})
        t = self.owner.get(cid)
        if t is not None and t.entry_id is not None and cid == t.entry_id and t.opened_ns is None:
            if t.record is not None:  # nothing was opened: the minute's record says so
                self._amend(t.record, EXIT if t.flip else HOLD, f"{t.record['reason_code']}:ENTRY_REJECTED", qty=0.0)
            self._forget(t)

    def on_accepted(self, cid: str) -> None:
        """An order was accepted or updated: a change of protection that waited for it goes now."""
        self._resync(self.owner.get(cid))

    def _forget(self, t: Trade) -> None:
        if self.trade is t:
            self.trade = None
        if self.flip is not None and self.flip.old is t:
            self._open_flip()

    def unbooked(self, cid: str, filled_steps: int) -> int:
        """How many of an order's ``filled_steps`` (all the venue says it filled) the plan has not
        booked: fills a restarted node learns from the venue's reconciliation (made while it was
        down, or after its last checkpoint). 0 for an order the plan does not own."""
        t = self.owner.get(cid)
        return 0 if t is None else max(0, filled_steps - t.booked.get(cid, 0))

    def purpose_of(self, cid: str) -> str | None:
        """What an order of the plan is for, from the plan itself: orders a restarted node finds at
        the venue come back without their tags (Bybit keeps only the client order id)."""
        t = self.owner.get(cid)
        if t is None:
            return None
        if cid == t.entry_id:
            return "entry"
        if cid == t.stop_id:
            return "stop"
        for purpose, tp in t.tp_ids.items():
            if tp == cid:
                return purpose
        return t.exit_purpose

    def on_fill(self, cid: str, purpose: str | None, reduce_only: bool, price: float, qty: float, commission: float, ts_ns: int) -> None:
        """Books the fill on the trade that placed the order. Orders submitted or changed from here
        may fill at once (re-entering this handler), so state is re-checked after each of them.
        A reduce-only fill of an order nobody here placed (e.g. the end of a backtest) books on
        the current trade."""
        t = self.owner.get(cid)
        if t is None and reduce_only:
            t = self.trade
        if t is None or t.closed_ns is not None:
            return
        steps = round(qty / self.step)
        t.booked[cid] = t.booked.get(cid, 0) + steps
        if cid in t.abandoned:
            self.venue.alert(ts_ns, "fill of an abandoned order", {"client_order_id": cid, "purpose": purpose, "qty": qty})
        if purpose == "entry":
            t.book_entry(price, steps, commission)
            if t.opened_ns is None:
                t.opened_ns = ts_ns
                self.signals.position_opened(t.candidate, price, ts_ns // 1_000_000)
                self.venue.state_changed(ts_ns)
            if t.closing:
                # The entry filled while its cancel was on the way: that quantity leaves too.
                self._exit_steps(t, steps, t.exit_purpose or "exit")
        else:
            t.book_exit(purpose, price, qty, steps, commission, self.config.exits.move_stop_to_breakeven_after_tp1)
        if t.open_steps <= 0 and not self.entry_working(t):
            self._flat(t, ts_ns)
        elif not t.closing:
            self.sync_protection(t)

    # -- protection ------------------------------------------------------------------------------

    def sync_protection(self, t: Trade) -> None:
        """Make the venue hold what :meth:`Trade.protection` wants, purpose by purpose."""
        steps = t.open_steps
        if steps <= 0 or t.closed_ns is not None:
            return
        # The stop first, then the targets - sized on the open quantity and entry as they stood
        # when the sync began (an order placed here may fill at once and re-enter).
        entry = t.entry_price
        stop = t.stop_wanted(steps)
        t.stop_id = self._place(t, t.stop_id, "stop", stop.steps, self.venue.on_grid(stop.level))
        for wanted in t.targets_wanted(steps, entry, self.config.exits.tp1_pct):
            level = self.venue.on_grid(wanted.level) if wanted.level is not None else None
            t.tp_ids[wanted.purpose] = self._place(t, t.tp_ids.get(wanted.purpose), wanted.purpose, wanted.steps, level)

    def _place(self, t: Trade, cid: str | None, purpose: str, steps: int, level: float | None) -> str | None:
        """Submit, resize or cancel one protective order so that it holds ``steps`` at ``level``.

        The stop is a stop-market triggered on the bid/ask; a take-profit a market-if-touched order
        (the same trigger), or with ``use_market_for_exit: false`` a limit resting at the target.
        An order still in flight (submitted, or with a change pending) cannot be changed yet: the
        wish is remembered and applied when the venue answers (:meth:`on_accepted`)."""
        stop = purpose == "stop"
        resting_limit = not stop and not self.config.execution.use_market_for_exit
        view = self.venue.view(cid) if cid is not None else None
        if view is not None and not view.closed and cid not in t.abandoned:
            if view.inflight or view.pending_update or view.pending_cancel:
                t.resync = True
                return cid
            if steps <= 0 or level is None:
                self._cancel(cid)
                return None
            if view.steps != steps or view.level != level:
                self.waiting[cid] = (self.venue.now_ns(), "modify")
                self.venue.modify(cid, steps, level)
            return cid
        if steps <= 0 or level is None:
            return None
        kind = "LIMIT" if resting_limit else ("STOP_MARKET" if stop else "MARKET_IF_TOUCHED")
        new = self.venue.create(kind, -t.direction, steps, level, t.tags(purpose), True)
        self._submit(t, new, kind)
        return new

    def orders_lost(self, cids) -> None:
        """The venue holds none of these orders of the plan any more (a paper venue rebuilt after a
        restart): the plan stops waiting for them and places what it still wants again - the same
        stop and target levels, sized on the open quantity; an exit that was on its way goes again.
        A lost entry buys no more (the trade keeps what filled); a trade that opened nothing is
        forgotten."""
        for cid in cids:
            t = self.owner.pop(cid, None)
            self.waiting.pop(cid, None)
            if t is not None:
                t.forget_order(cid)
        t = self.trade
        if t is None or t.closed_ns is not None:
            return
        t.planned_steps = t.filled_steps
        if t.opened_ns is None:
            self._forget(t)
        elif t.closing:
            self._exit_steps(t, t.open_steps, t.exit_purpose or "exit")
        else:
            self.sync_protection(t)

    def _resync(self, t: Trade | None) -> None:
        if t is not None and t.resync and t.is_open and not t.closing:
            t.resync = False
            self.sync_protection(t)

    # -- exits -----------------------------------------------------------------------------------

    def exit(self, purpose: str, now_ns: int) -> None:
        """Market exit of the current trade (time, inside, kill, flip); a working entry is cancelled."""
        t = self.trade
        if t is None or t.closing:
            return
        t.closing = True
        t.planned_steps = t.filled_steps  # nothing more to buy
        if self.entry_working(t) and not self.venue.view(t.entry_id).pending_cancel:
            self._cancel(t.entry_id)
        if t.open_steps <= 0:
            if t.opened_ns is None:
                self._forget(t)
            return
        t.exit_purpose = purpose
        self._exit_steps(t, t.open_steps, purpose)

    def _exit_steps(self, t: Trade, steps: int, purpose: str) -> None:
        cid = self._market(t, -t.direction, steps, purpose, True)
        self._submit(t, cid, "MARKET")

    def _flat(self, t: Trade, ts_ns: int) -> None:
        """The trade is flat: record it, tell the engine (cooldown), cancel its siblings. Runs once."""
        if t.closed_ns is not None:
            return
        t.closed_ns = ts_ns
        self.record_position(t, status="STOPPED" if t.exit_purpose == "stop" else "CLOSED")
        self.signals.position_closed(ts_ns // 1_000_000, t.candidate)
        for cid in t.order_ids():
            view = self.venue.view(cid)
            if view is not None and not view.closed and not view.pending_cancel:
                self._cancel(cid)
        self.venue.state_changed(ts_ns)
        self._forget(t)  # a flip waiting for this trade to be flat opens its entry now

    def record_position(self, t: Trade, status: str) -> None:
        self.positions_recorded += 1
        self.positions.append(t.position_row(self.positions_recorded, status, self.step, self.config.exits.tp1_pct))
        self.on_position(self.positions[-1])

    def record_open_position(self) -> None:
        """At stop: a position still open gets its row (status OPEN)."""
        t = self.trade
        if t is not None and t.is_open:
            self.record_position(t, status="OPEN")

    def reset(self) -> None:
        self.trade, self.flip = None, None
        self.waiting.clear()

    def open_records(self) -> list[dict]:
        """The ``signals_1m`` records still completed by what happens next: the open trade's entry
        minute (an entry given up or rejected amends it) and a pending flip's minute."""
        out = []
        for record in (self.trade.record if self.trade is not None else None, self.flip.record if self.flip is not None else None):
            if record is not None and all(record is not r for r in out):
                out.append(record)
        return out

    # -- persistence -----------------------------------------------------------------------------

    def state(self) -> dict:
        """The open trade (and a flip's old trade), who owns which order, the requests awaiting an
        answer, the flip waiting for flat, and the count of positions rows recorded."""
        # Orders that are closed at the venue get no more events: their owners need no saving.
        owner = {cid: t for cid, t in self.owner.items() if cid in self.waiting or _alive(self.venue.view(cid))}
        trades: list[Trade] = []
        for t in (self.trade, self.flip.old if self.flip is not None else None, *owner.values()):
            if t is not None and all(t is not u for u in trades):
                trades.append(t)
        index = {id(t): i for i, t in enumerate(trades)}
        return {
            "trades": [t.state() for t in trades],
            "trade": index[id(self.trade)] if self.trade is not None else None,
            "owner": {cid: index[id(t)] for cid, t in owner.items()},
            "flip": None if self.flip is None else {**self.flip.state(), "old": index[id(self.flip.old)]},
            "waiting": {cid: [sent, what] for cid, (sent, what) in self.waiting.items()},
            "positions_recorded": self.positions_recorded,
        }

    def restore(self, state: dict) -> None:
        """Replace every piece of state by ``state`` (from :meth:`state`). The signal engine's open
        position is linked to its trade's candidate (the engine tells trades apart by identity)."""
        trades = [Trade.from_state(s) for s in state["trades"]]
        self.trade = trades[state["trade"]] if state["trade"] is not None else None
        self.owner = {cid: trades[i] for cid, i in state["owner"].items()}
        f = state["flip"]
        self.flip = None if f is None else FlipPlan.from_state(f, trades[f["old"]])
        self.waiting = {cid: (int(sent), what) for cid, (sent, what) in state["waiting"].items()}
        self.positions = []
        self.positions_recorded = int(state["positions_recorded"])
        p = self.signals.position
        if p is not None:
            for t in trades:
                if t.candidate == p.candidate and t.closed_ns is None:
                    p.candidate = t.candidate


def _alive(view: OrderView | None) -> bool:
    return view is not None and not view.closed
