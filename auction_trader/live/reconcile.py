"""Our stored plan against the venue: resume, re-protect, or halt (specv2 §10.4, DESIGN.md "Live path").

The plan is the authority. Nautilus's own reconciliation adopts whatever the venue says (it invents
fills); that is how it keeps its cache straight, not a reason to trade on it. So, after Nautilus's
reconciliation at start and every N seconds while running, the node compares the venue's position and
open orders with what the plan (the checkpointed trade) claims:

* MATCH: same side and quantity, every venue order is one the plan claims (by ``client_order_id``,
  which is our store's key: Bybit drops order tags) with the same side, type and levels → resume.
* REPROTECT: the position matches but some of the plan's protection orders (stop, TP1, TP2) are not on
  the venue → place them again (new client ids, same levels and quantities) and alert.
* HALT: anything else - another quantity or side, a venue order the plan does not claim (a manual
  order), a claimed order whose levels differ, a claimed entry that vanished. No guessing: alert,
  no new entries, venue stops left in place, until the operator resolves it.

Quantities are compared in lot steps (0.001 BTC), prices to half a tick, so float noise is never a
mismatch and a one-contract position is compared exactly.

Plain Python, no Nautilus: the node turns its cache and REST answers into :class:`VenueSnapshot` and
its checkpoint into :class:`Plan`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

MATCH, REPROTECT, HALT = "MATCH", "REPROTECT", "HALT"
PROTECTION = frozenset({"stop", "tp1", "tp2"})
LONG, SHORT = "LONG", "SHORT"


@dataclass(frozen=True)
class PlannedOrder:
    """An order the plan has working on the venue. ``qty`` is what remains to fill."""

    client_order_id: str
    purpose: str  # entry, stop, tp1, tp2, exit, ...
    side: str  # BUY | SELL
    order_type: str  # MARKET, LIMIT, STOP_MARKET, ...
    qty: float
    price: float | None = None
    trigger_price: float | None = None


@dataclass(frozen=True)
class Plan:
    """What the checkpoint says we hold. ``side`` None (or qty 0) is flat."""

    side: str | None
    qty: float
    stop: float | None = None
    tp1: float | None = None
    tp1_qty: float | None = None
    tp2: float | None = None
    tp2_qty: float | None = None
    orders: tuple[PlannedOrder, ...] = ()
    updated_ms: int = 0  # when the plan last changed (a fill, an order placed or cancelled)

    def __post_init__(self) -> None:
        _check_side(self.side, "plan")


@dataclass(frozen=True)
class VenueOrder:
    client_order_id: str | None  # None: placed without one (by hand on the venue)
    side: str
    order_type: str
    qty: float  # leaves (unfilled) quantity
    price: float | None = None
    trigger_price: float | None = None


@dataclass(frozen=True)
class VenueSnapshot:
    side: str | None
    qty: float
    avg_price: float | None = None
    orders: tuple[VenueOrder, ...] = ()
    ts_ms: int = 0  # when the venue said so

    def __post_init__(self) -> None:
        _check_side(self.side, "venue")


@dataclass(frozen=True)
class Verdict:
    action: str  # MATCH | REPROTECT | HALT
    reason: str
    place: tuple[PlannedOrder, ...] = ()  # REPROTECT: orders to place again
    details: dict[str, Any] = field(default_factory=dict)


def _check_side(side: str | None, who: str) -> None:
    if side not in (None, LONG, SHORT):
        raise ValueError(f"{who} side must be LONG, SHORT or None (got {side!r})")


_KINDS = {
    "MARKET": "market", "LIMIT": "limit",
    # Bybit reports every conditional order as a Market or Limit order with a trigger price; which
    # Nautilus type placed it (stop or if-touched) is not in the answer.
    "STOP_MARKET": "trigger-market", "MARKET_IF_TOUCHED": "trigger-market", "TRAILING_STOP_MARKET": "trigger-market",
    "STOP_LIMIT": "trigger-limit", "LIMIT_IF_TOUCHED": "trigger-limit", "TRAILING_STOP_LIMIT": "trigger-limit",
}


def order_kind(order_type: str) -> str:
    """What can be compared across Nautilus and Bybit: market, limit, trigger-market, trigger-limit."""
    return _KINDS.get(order_type.upper(), order_type.upper())


def snapshot_from_bybit(positions: list[Mapping[str, Any]], orders: list[Mapping[str, Any]], symbol: str, ts_ms: int) -> VenueSnapshot:
    """A :class:`VenueSnapshot` from Bybit v5 answers: ``/v5/position/list`` and ``/v5/order/realtime``
    ``result.list`` (one-way mode; other symbols ignored). ``orderLinkId`` is our client order id
    (Nautilus sends it); an empty one is an order placed by hand."""
    side, qty, avg = None, 0.0, None
    for p in positions:
        size = float(p.get("size") or 0)
        if p.get("symbol") == symbol and size > 0 and p.get("side") in ("Buy", "Sell"):
            side, qty, avg = (LONG if p["side"] == "Buy" else SHORT), size, float(p["avgPrice"]) if p.get("avgPrice") else None
    venue_orders = []
    for o in orders:
        if o.get("symbol") != symbol:
            continue
        trigger = float(o.get("triggerPrice") or 0) or None
        limit = o.get("orderType") == "Limit"
        kind = ("STOP_LIMIT" if limit else "STOP_MARKET") if trigger else ("LIMIT" if limit else "MARKET")
        leaves = o.get("leavesQty")
        remaining = float(leaves) if leaves not in (None, "") else float(o["qty"]) - float(o.get("cumExecQty") or 0)
        venue_orders.append(VenueOrder(o.get("orderLinkId") or None, "BUY" if o["side"] == "Buy" else "SELL", kind, remaining,
                                       float(o["price"]) if limit and o.get("price") else None, trigger))
    return VenueSnapshot(side, qty, avg, tuple(venue_orders), ts_ms)


def _steps(qty: float, step: float) -> int:
    return round(qty / step)


def _position(side: str | None, qty: float, step: float) -> tuple[str | None, int]:
    n = _steps(qty, step)
    return (None, 0) if n == 0 or side is None else (side, n)


def _same_level(a: float | None, b: float | None, tick: float) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) < tick / 2


def _describe(side: str | None, steps: int, step: float) -> str:
    return "flat" if side is None else f"{side} {round(steps * step, 9):g}"


def reconcile(plan: Plan, venue: VenueSnapshot, *, step: float = 0.001, tick: float = 0.1) -> Verdict:
    """The verdict for one comparison (at start, or one check while running)."""
    p_side, p_steps = _position(plan.side, plan.qty, step)
    v_side, v_steps = _position(venue.side, venue.qty, step)
    details: dict[str, Any] = {"plan": _describe(p_side, p_steps, step), "venue": _describe(v_side, v_steps, step)}
    if (p_side, p_steps) != (v_side, v_steps):
        return Verdict(HALT, f"position mismatch: venue {details['venue']}, plan {details['plan']}", details=details)

    claimed = {o.client_order_id: o for o in plan.orders}
    on_venue: dict[str, VenueOrder] = {}
    for o in venue.orders:
        if o.client_order_id is None or o.client_order_id not in claimed:
            details["order"] = {"client_order_id": o.client_order_id, "side": o.side, "type": o.order_type, "qty": o.qty,
                                "price": o.price, "trigger_price": o.trigger_price}
            return Verdict(HALT, f"venue order not in the plan: {o.client_order_id or 'no client id'} {o.side} {o.order_type} {o.qty:g}", details=details)
        on_venue[o.client_order_id] = o

    missing: list[PlannedOrder] = []
    for cid, mine in claimed.items():
        theirs = on_venue.get(cid)
        if theirs is None:
            missing.append(mine)
            continue
        differs = [
            what for what, same in (
                ("side", theirs.side == mine.side),
                ("type", order_kind(theirs.order_type) == order_kind(mine.order_type)),
                ("price", _same_level(theirs.price, mine.price, tick)),
                ("trigger", _same_level(theirs.trigger_price, mine.trigger_price, tick)),
                # a partly filled order rests with less; more than the plan wants is not ours
                ("qty", _steps(theirs.qty, step) <= _steps(mine.qty, step)),
            ) if not same
        ]
        if differs:
            details["order"] = {"client_order_id": cid, "differs": differs}
            return Verdict(HALT, f"order {cid} ({mine.purpose}) differs from the plan: {', '.join(differs)}", details=details)

    if missing:
        unprotected = [o for o in missing if o.purpose not in PROTECTION]
        if unprotected or p_side is None:
            o = (unprotected or missing)[0]
            details["missing"] = [m.client_order_id for m in missing]
            return Verdict(HALT, f"claimed order {o.client_order_id} ({o.purpose}) is not on the venue", details=details)
        details["missing"] = [m.client_order_id for m in missing]
        return Verdict(REPROTECT, f"position matches ({details['plan']}); protection missing on the venue: "
                       + ", ".join(f"{o.purpose} {o.client_order_id}" for o in missing), place=tuple(missing), details=details)
    return Verdict(MATCH, f"venue matches the plan ({details['plan']}, {len(claimed)} order(s))", details=details)


class RunningReconciler:
    """The check while running: every ``interval_s`` with nothing in flight, plan vs venue.

    A single mismatch can be a race (a fill the venue reports before our event arrives), so only
    ``confirmations`` consecutive mismatching checks count; a check is skipped (and the count reset)
    while anything is in flight or when the snapshot is stale - older than ``max_age_s`` or older
    than the plan's last change. A fill of an order the plan does not own is never a race: it is a
    mismatch at once (:meth:`on_fill`)."""

    def __init__(self, *, interval_s: float = 30.0, confirmations: int = 2, max_age_s: float = 10.0, step: float = 0.001, tick: float = 0.1) -> None:
        if confirmations < 1:
            raise ValueError("confirmations must be >= 1")
        self.interval_ms = int(interval_s * 1000)
        self.confirmations = confirmations
        self.max_age_ms = int(max_age_s * 1000)
        self.step, self.tick = step, tick
        self.last_check_ms: int | None = None
        self.mismatches = 0
        self.skipped: str | None = None  # why the last check was skipped

    def due(self, now_ms: int) -> bool:
        return self.last_check_ms is None or now_ms - self.last_check_ms >= self.interval_ms

    def check(self, plan: Plan, venue: VenueSnapshot, now_ms: int, *, in_flight: bool = False) -> Verdict | None:
        """One periodic check; a verdict only when confirmed (REPROTECT or HALT), else None."""
        self.last_check_ms = now_ms
        if in_flight:
            return self._skip("orders or fills in flight")
        if now_ms - venue.ts_ms > self.max_age_ms:
            return self._skip(f"venue snapshot is {(now_ms - venue.ts_ms) / 1000:.1f} s old")
        if venue.ts_ms < plan.updated_ms:
            return self._skip("venue snapshot predates the plan's last change")
        self.skipped = None
        verdict = reconcile(plan, venue, step=self.step, tick=self.tick)
        if verdict.action == MATCH:
            self.mismatches = 0
            return None
        self.mismatches += 1
        if self.mismatches < self.confirmations:
            return None
        self.mismatches = 0
        return Verdict(verdict.action, verdict.reason, verdict.place, {**verdict.details, "confirmations": self.confirmations})

    def on_fill(self, client_order_id: str | None, owned: Iterable[str]) -> Verdict | None:
        """A venue fill: HALT at once when the plan does not own its order (a manual trade)."""
        if client_order_id is not None and client_order_id in set(owned):
            return None
        return Verdict(HALT, f"fill of an order the plan does not own: {client_order_id or 'no client id'} (manual trade?)",
                       details={"client_order_id": client_order_id})

    def _skip(self, why: str) -> None:
        self.mismatches = 0
        self.skipped = why
        return None


def act(verdict: Verdict | None, controller: Any, alerts: Any, ts_ms: int | None = None) -> tuple[PlannedOrder, ...]:
    """Carry a verdict out: HALT → position_mismatch alert and ``controller.halt``; REPROTECT → alert and
    the orders the node must place again (returned); MATCH/None → nothing."""
    if verdict is None or verdict.action == MATCH:
        return ()
    alerts.emit("position_mismatch", verdict.reason, {"action": verdict.action, **verdict.details}, ts_ms)
    if verdict.action == HALT:
        controller.halt(verdict.reason, verdict.details)
        return ()
    return verdict.place


def plan_from_state(trade: Mapping[str, Any] | None, orders: Iterable[Mapping[str, Any]], updated_ms: int = 0) -> Plan:
    """A :class:`Plan` from a checkpoint's trade dict (``side``, ``qty``, ``stop``, ``tp1``, ``tp1_qty``,
    ``tp2``, ``tp2_qty``; None when flat) and the store's open ``orders`` rows."""
    planned = tuple(
        PlannedOrder(str(o["client_order_id"]), str(o.get("purpose") or ""), str(o["side"]), str(o.get("order_type") or ""),
                     float(o["qty"]), o.get("price"), o.get("trigger_price"))
        for o in orders
    )
    if not trade:
        return Plan(None, 0.0, orders=planned, updated_ms=updated_ms)
    return Plan(trade["side"], float(trade["qty"]), trade.get("stop"), trade.get("tp1"), trade.get("tp1_qty"), trade.get("tp2"),
                trade.get("tp2_qty"), planned, updated_ms)
