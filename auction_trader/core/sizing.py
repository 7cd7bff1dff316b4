"""Risk-based position sizing (specv2 §7, §20.1) and the partial-exit split (§8, §20.2).

Quantities are counted in whole qty steps (one "contract" in the spec's words is one step, 0.001
BTC): integers, so rounding is exact and explicit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Size:
    """A sized entry: ``steps`` qty steps (0 = no trade), and what shaped it."""

    steps: int
    qty: float
    notional: float
    leverage: float
    leverage_capped: bool
    reason: str  # "ok", "leverage cap hit", "below one qty step", "no stop distance", "no margin"


def position_size(
    available_margin: float,
    risk_pct: float,
    entry: float,
    stop: float,
    qty_step: float,
    max_leverage: float,
) -> Size:
    """qty = margin × risk / |entry − stop|, rounded down to a step, capped at max leverage.

    specv2 §20.1: 10,000 × 2% / (50,000 − 49,500) = 0.4 BTC, 20,000 notional, 2x.
    """
    distance = abs(entry - stop)
    if available_margin <= 0:
        return Size(0, 0.0, 0.0, 0.0, False, "no margin")
    if distance <= 0 or entry <= 0:
        return Size(0, 0.0, 0.0, 0.0, False, "no stop distance")
    steps = _floor_steps(available_margin * risk_pct / distance, qty_step)
    capped = False
    cap_steps = _floor_steps(available_margin * max_leverage / entry, qty_step)
    if steps > cap_steps:
        steps, capped = cap_steps, True
    if steps < 1:
        return Size(0, 0.0, 0.0, 0.0, capped, "below one qty step")
    qty = steps * qty_step
    notional = qty * entry
    return Size(steps, qty, notional, notional / available_margin, capped, "leverage cap hit" if capped else "ok")


def _floor_steps(qty: float, step: float) -> int:
    # 1e-9 absorbs float noise in e.g. 0.4 / 0.001 = 399.99999999999994.
    return int(math.floor(qty / step + 1e-9))


def remainder_within_cap(remaining_steps: int, equity: float, held_qty: float, held_price: float, price: float, qty_step: float, max_leverage: float) -> int:
    """The rest of an entry (``remaining_steps``, to go at ``price``) trimmed so that the position
    - ``held_qty`` already held, valued at ``held_price`` - stays within ``max_leverage × equity``:
    what the venue's margin check (Bybit's, the backtest's order gate) lets through."""
    room = max_leverage * equity - held_qty * held_price
    if room <= 0 or price <= 0:
        return 0
    return max(0, min(remaining_steps, _floor_steps(room / price, qty_step)))


def tp_split(steps: int, tp1_pct: float) -> tuple[int, int]:
    """(steps at TP1, steps at TP2): TP1's share rounded to the nearest step (halves up), at least
    one step when the position holds more than one; a one-step position exits whole at TP2.

    specv2 §20.2: 0.4 BTC, 30% -> 0.12 at TP1, 0.28 at TP2.
    """
    if steps <= 1 or tp1_pct <= 0:
        return 0, steps
    tp1 = min(max(1, math.floor(steps * tp1_pct + 0.5 + 1e-9)), steps)
    return tp1, steps - tp1


def heat(positions: list[tuple[float, float, float]], capital: float) -> float:
    """Risk on the table (specv2 §9.5, DESIGN.md "Sizing and exits"): Σ open qty × |entry − current
    stop| / the capital the sizing is based on - equity less the margin held by *other* positions
    (with one position at a time, the equity). A fresh uncapped trade shows about ``risk_pct``; a
    trade whose stop moved to breakeven shows 0; a leverage-capped trade less than ``risk_pct``.

    (Dividing by the free margin instead - near 0 at the leverage cap - gave figures like 1219 %.)
    """
    if capital <= 0:
        return math.inf if any(qty * abs(entry - stop) > 0 for qty, entry, stop in positions) else 0.0
    return sum(qty * abs(entry - stop) for qty, entry, stop in positions) / capital
