"""The plan of one trade, from its entry signal to flat, on plain numbers (specv2 §3.3, §8, §9).

A :class:`Trade` is what the strategy knows of a position it opened: the proposal it came from
(:class:`~auction_trader.core.setups.Candidate`: entry reference, stop, targets), the quantity
planned, every fill booked (entry cost and fees, exits), the protective orders it owns (by client
order id), whether TP1 filled and the stop moved to the entry price, and how it ended. What the
plan *wants* at the venue - a stop for the open quantity, TP1 / TP2 a split of it - is
:meth:`Trade.protection`; :mod:`auction_trader.core.lifecycle` compares that with the orders that
exist. Quantities are whole qty steps (integers), prices floats, times ns; everything round-trips
through :meth:`Trade.state` / :meth:`Trade.from_state` as JSON.

A :class:`FlipPlan` is a flip decided at a minute close: the old trade is closing at market, the
new entry waits until it is flat (and is then sized on the margin the close freed).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

from auction_trader.core.initiative import LONG
from auction_trader.core.setups import Candidate
from auction_trader.core.sizing import tp_split

#: Purposes of the protective orders, in the order they are synced.
PROTECTION = ("stop", "tp1", "tp2")


@dataclass(frozen=True)
class Wanted:
    """One protective order the plan wants: ``steps`` at ``level`` (0 steps or no level: none)."""

    purpose: str  # stop, tp1, tp2
    steps: int
    level: float | None


@dataclass
class Trade:
    """One position's life, from the entry signal to flat: what the positions table records."""

    candidate: Candidate
    signal_ts_min: int
    planned_steps: int
    margin: float  # available margin when the entry was sized
    risk_pct: float
    entry_id: str | None = None  # client order id of the entry order (the latest one)
    entry_submitted_ns: int = 0
    filled_steps: int = 0
    entry_cost: float = 0.0  # Σ price × steps of entry fills
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
    stop_id: str | None = None
    tp_ids: dict[str, str | None] = field(default_factory=dict)
    exit_purpose: str | None = None
    resync: bool = False  # a protective order was in flight when it needed changing
    tp_valid: tuple[bool, bool] | None = None  # which targets were on the right side of the entry
    record: dict | None = None  # the signals_1m record of the entry's minute, kept truthful
    flip: bool = False  # the entry of a flip (its close went out first)
    resends: dict[str, int] = field(default_factory=dict)  # purpose -> stuck market orders re-sent
    abandoned: set[str] = field(default_factory=set)  # client order ids the trade no longer waits for
    booked: dict[str, int] = field(default_factory=dict)  # client order id -> steps of its fills booked here

    # -- what the plan says ----------------------------------------------------------------------

    @property
    def direction(self) -> int:
        return self.candidate.direction

    @property
    def entry_price(self) -> float:
        qty = self.filled_steps
        return self.entry_cost / qty if qty else math.nan

    @property
    def open_steps(self) -> int:
        return self.filled_steps - self.exited_steps

    @property
    def is_open(self) -> bool:
        """Opened (an entry filled) and not flat yet."""
        return self.opened_ns is not None and self.closed_ns is None

    @property
    def stop_price(self) -> float:
        """The stop level now: the plan's, or the entry price once TP1 moved it to breakeven."""
        return self.entry_price if self.breakeven else self.candidate.stop

    def order_ids(self) -> list[str]:
        """Every order the trade holds a reference to: entry, stop, TP1, TP2."""
        return [cid for cid in (self.entry_id, self.stop_id, *self.tp_ids.values()) if cid is not None]

    def forget_order(self, cid: str) -> None:
        """Drop every reference to ``cid`` (an order the trade stopped waiting for)."""
        if self.entry_id == cid:
            self.entry_id = None
        if self.stop_id == cid:
            self.stop_id = None
        for name, o in list(self.tp_ids.items()):
            if o == cid:
                self.tp_ids[name] = None

    def tags(self, purpose: str) -> list[str]:
        return [f"setup={self.candidate.setup}", f"purpose={purpose}", f"signal_ts_min={self.signal_ts_min}"]

    def stop_wanted(self, steps: int) -> Wanted:
        """The stop for ``steps`` (the open quantity): at the plan's level, or at the entry price
        once TP1 moved it to breakeven."""
        return Wanted("stop", steps, self.stop_price)

    def targets_wanted(self, steps: int, entry: float, tp1_pct: float) -> list[Wanted]:
        """TP1 / TP2 as a split of ``steps``; a target counts only beyond the actual ``entry``,
        TP1 no more once it filled. The first call fixes :attr:`tp_valid` (which targets the
        positions table reports)."""
        c = self.candidate
        tp1 = c.tp1 if c.tp1 is not None and c.direction * (c.tp1 - entry) > 0 and not self.tp1_done else None
        tp2 = c.tp2 if c.tp2 is not None and c.direction * (c.tp2 - entry) > 0 else None
        if self.tp_valid is None:
            self.tp_valid = (tp1 is not None, tp2 is not None)
        if tp1 is not None and tp2 is not None:
            n1, n2 = tp_split(steps, tp1_pct)
        else:
            n1, n2 = (steps, 0) if tp1 is not None else (0, steps if tp2 is not None else 0)
        return [Wanted("tp1", n1, tp1), Wanted("tp2", n2, tp2)]

    def protection(self, tp1_pct: float) -> list[Wanted]:
        """Every protective order the plan wants now, for the open quantity: stop, TP1, TP2."""
        steps = self.open_steps
        return [self.stop_wanted(steps), *self.targets_wanted(steps, self.entry_price, tp1_pct)]

    # -- fills -----------------------------------------------------------------------------------

    def book_entry(self, price: float, steps: int, commission: float) -> None:
        self.fees += commission
        self.filled_steps += steps
        self.entry_cost += price * steps
        self.entry_fees += commission

    def book_exit(self, purpose: str | None, price: float, qty: float, steps: int, commission: float, breakeven_after_tp1: bool) -> None:
        self.fees += commission
        self.exited_steps += steps
        self.exit_qty += qty
        self.exit_value += price * qty
        if purpose == "tp1":
            self.tp1_done = True
            self.breakeven = breakeven_after_tp1
        if self.exit_purpose is None or purpose in ("stop", "tp2"):
            self.exit_purpose = purpose

    # -- P&L -------------------------------------------------------------------------------------

    def unrealized(self, mid: float, step: float) -> float:
        """P&L of the open quantity at ``mid`` (0 before the first fill or without a price)."""
        if self.opened_ns is None or self.filled_steps == 0 or math.isnan(mid):
            return 0.0
        return (mid - self.entry_price) * self.open_steps * step * self.direction

    def tp1_qty(self, step: float, tp1_pct: float) -> float | None:
        """The plan's TP1 share of the whole entry (None when TP1 was not a valid target)."""
        if not self.tp_valid or not self.tp_valid[0]:
            return None
        steps = tp_split(self.filled_steps, tp1_pct)[0] if self.tp_valid[1] else self.filled_steps
        return steps * step if steps else None

    def position_row(self, row_id: int, status: str, step: float, tp1_pct: float) -> dict:
        """The specv2 §3.3 ``positions`` row (``funding_paid`` is filled from the ledger later)."""
        c = self.candidate
        exit_price = self.exit_value / self.exit_qty if self.exit_qty else None
        qty = self.filled_steps * step
        realized = (exit_price - self.entry_price) * self.exit_qty * c.direction if exit_price is not None else 0.0
        return {
            "id": row_id,
            "ts_ms_open": self.opened_ns // 1_000_000,
            "ts_ms_close": self.closed_ns // 1_000_000 if self.closed_ns is not None else None,
            "side": "LONG" if c.direction == LONG else "SHORT",
            "entry_price": self.entry_price,
            "exit_price": exit_price,
            "qty_contracts": qty,
            "qty_at_tp1": self.tp1_qty(step, tp1_pct),
            "stop_price": c.stop,
            "tp1_price": c.tp1,
            "tp2_price": c.tp2,
            "strategy_tag": c.setup,
            "status": status,
            "realized_pnl": realized,
            "fees_paid": self.fees,
            "funding_paid": None,
            "leverage_used": qty * self.entry_price / self.margin,  # notional over the margin it was sized on
            "risk_pct_used": self.risk_pct,
            "exit_reason": self.exit_purpose,
            "signal_ts_min": self.signal_ts_min,
        }

    # -- persistence -----------------------------------------------------------------------------

    def state(self) -> dict:
        """Every field as JSON-safe primitives (the candidate as a dict, sets as sorted lists)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["candidate"] = candidate_state(self.candidate)
        out["tp_ids"] = dict(self.tp_ids)
        out["resends"] = dict(self.resends)
        out["booked"] = dict(self.booked)
        out["abandoned"] = sorted(self.abandoned)
        out["tp_valid"] = list(self.tp_valid) if self.tp_valid is not None else None
        out["record"] = dict(self.record) if self.record is not None else None
        return out

    @classmethod
    def from_state(cls, state: dict) -> Trade:
        s = dict(state)
        s["candidate"] = candidate_from_state(s["candidate"])
        s["abandoned"] = set(s["abandoned"])
        s["tp_valid"] = tuple(s["tp_valid"]) if s["tp_valid"] is not None else None
        s["record"] = dict(s["record"]) if s["record"] is not None else None
        return cls(**s)


@dataclass
class FlipPlan:
    """A flip decided at a minute close: the old trade is closing; the new entry waits for flat."""

    old: Trade
    candidate: Candidate
    signal_ts_min: int
    record: dict  # the minute's signals_1m record, completed when the entry goes out (or cannot)

    def state(self) -> dict:
        """The old trade is the lifecycle's current trade: only its signal minute is stored."""
        return {"old_signal_ts_min": self.old.signal_ts_min, "candidate": candidate_state(self.candidate), "signal_ts_min": self.signal_ts_min, "record": dict(self.record)}

    @classmethod
    def from_state(cls, state: dict, old: Trade) -> FlipPlan:
        return cls(old, candidate_from_state(state["candidate"]), state["signal_ts_min"], dict(state["record"]))


def candidate_state(c: Candidate) -> dict:
    return asdict(c)


def candidate_from_state(state: dict) -> Candidate:
    return Candidate(**state)
