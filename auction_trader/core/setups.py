"""The three setups (specv2 §6.4-6.6, DESIGN.md "Signals") as trigger conditions plus the trade they propose.

Each trigger returns a :class:`Candidate` or None. A candidate carries its entry reference (the
trigger bar's close: the entry is a limit there), stop and targets; a target on the wrong side of
the entry is dropped, and a candidate with no target left proposes no trade (``valid`` is False,
``reason`` says why) - but the setup still *signalled*, which is what the signal flags record.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from auction_trader.config import AuctionConfig
from auction_trader.core.acceptance import Ended
from auction_trader.core.initiative import LONG, SHORT, entry_initiative, fail_initiative
from auction_trader.core.minute import Minute

BREAKIN, FAILBREAK, BREAKOUT = "breakin", "failbreak", "breakout"
PRIORITY = (BREAKIN, FAILBREAK, BREAKOUT)  # specv2 §6.7


@dataclass(frozen=True)
class Candidate:
    """A trade a setup proposes at a minute close."""

    setup: str
    direction: int
    entry: float
    stop: float
    tp1: float | None
    tp2: float | None
    locked: float | None = None  # breakouts: the locked edge a close must stay beyond
    via: str = ""  # "retest" / "retest_failed" when retest mode produced it

    @property
    def valid(self) -> bool:
        return (self.tp1 is not None or self.tp2 is not None) and self.direction * (self.entry - self.stop) > 0

    @property
    def name(self) -> str:
        return f"{self.setup.upper()}_{'LONG' if self.direction == LONG else 'SHORT'}"

    @property
    def reason(self) -> str:
        base = self.name + (f":{self.via.upper()}" if self.via else "")
        if self.direction * (self.entry - self.stop) <= 0:
            return f"{base}:STOP_NOT_BEYOND_ENTRY"
        if self.tp1 is None and self.tp2 is None:
            return f"{base}:NO_VALID_TARGET"
        return base


class Levels:
    """Price arithmetic on the instrument's tick grid."""

    def __init__(self, config: AuctionConfig, tick: float) -> None:
        self.tick = tick
        self.decimals = max(0, -math.floor(math.log10(tick) + 1e-9))
        self.buffer_ticks = config.risk.stop_buffer_ticks
        self.crossing_mult = config.acceptance.crossing_spread_mult
        self.pullback_mult = config.acceptance.pullback_spread_mult

    def ticks(self, price: float) -> int:
        """A price on the grid (bar prices, bin edges) as a whole number of ticks."""
        return round(price / self.tick)

    def half_ticks(self, price: float) -> Fraction:
        """A price on the half-tick grid (the POC, the middle of its bin) as exact ticks."""
        return Fraction(round(2 * price / self.tick), 2)

    def price(self, ticks: int | Fraction) -> float:
        """Ticks (exact: an int or a Fraction) to the nearest grid price, halves up."""
        return round(math.floor(ticks + Fraction(1, 2)) * self.tick, self.decimals)

    def on_grid(self, price: float) -> float:
        """A level that may sit half a tick off the grid (the POC), as an order price: halves up."""
        return price if math.isnan(price) else self.price(self.half_ticks(price))

    def beyond(self, price: float, direction: int) -> float:
        """``stop_buffer_ticks`` beyond ``price`` in ``direction`` (+1 above, -1 below), on the grid."""
        return self.price(self.ticks(price) + direction * self.buffer_ticks)

    def crossing_distance(self, m: Minute) -> float:
        """A bar crosses a level when it trades within max(mult x average spread, one tick) of it."""
        spread = self.crossing_mult * m.spread_avg
        return max(spread, self.tick) if not math.isnan(spread) else self.tick

    def pullback_distance(self, m: Minute) -> float:
        spread = self.pullback_mult * m.spread_avg
        return max(spread, self.tick) if not math.isnan(spread) else self.tick


def _targets(direction: int, entry: float, *targets: float) -> list[float | None]:
    """Targets beyond the entry in the trade's direction; the others are dropped (None)."""
    return [t if not math.isnan(t) and direction * (t - entry) > 0 else None for t in targets]


def _value_targets(direction: int, m: Minute, lv: Levels) -> list[float | None]:
    """Break-in and failed-breakout targets: TP1 the POC (on the grid, halves up), TP2 the
    opposite value-area edge."""
    return _targets(direction, m.close, lv.on_grid(m.poc), m.vah if direction == LONG else m.val)


def breakin_trigger(direction: int, m: Minute, config: AuctionConfig, lv: Levels, run: Ended | None) -> float | None:
    """Break-in (A, specv2 §6.4): a poke beyond the edge closing back inside value.

    The poke is this bar's own excursion (low below VAL for a long), or a run of fewer than
    ``accept_outside_k`` closes beyond it that ``run`` (the sequence this bar's close ended, if any)
    records; its extreme is the most extreme price of either. The bar must close back inside, trade
    near the edge (a crossing) and show entry initiative in ``direction``. A run that had reached k
    closes is no poke: that is a failed breakout (:func:`failbreak`), never a break-in.

    Returns the poke's extreme (the stop is beyond it), or None when there is no trigger.
    """
    if run is not None and run.count >= config.acceptance.accept_outside_k:
        return None
    if direction == LONG:
        edge = m.val
        extreme = min(m.low, run.extreme) if run is not None else m.low
        poked, back = extreme < edge, m.close > edge
    else:
        edge = m.vah
        extreme = max(m.high, run.extreme) if run is not None else m.high
        poked, back = extreme > edge, m.close < edge
    if not (poked and back and m.crossed(edge, lv.crossing_distance(m)) and entry_initiative(direction, m, config, "entry")):
        return None
    return extreme


def breakin_candidate(direction: int, m: Minute, lv: Levels, extreme: float) -> Candidate:
    """The break-in trade at this close: stop beyond the poke's extreme, TP1 POC, TP2 the opposite edge."""
    tp1, tp2 = _value_targets(direction, m, lv)
    return Candidate(BREAKIN, direction, m.close, lv.beyond(extreme, -direction), tp1, tp2)


def failbreak(direction: int, m: Minute, config: AuctionConfig, lv: Levels, locked: float, extreme: float, via: str = "") -> Candidate | None:
    """Failed breakout (C, specv2 §6.6): an acceptance that had reached ``accept_outside_k`` closes
    beyond ``locked`` (taken or not) and this bar is the first close back inside.

    ``direction`` is the trade's: SHORT after a failed acceptance above VAH. The bar must have traded
    beyond the locked edge (``high > locked``) and near it (a crossing), with the failed-breakout
    initiative (``of_fail_*``, ``qimb_fail_min``). ``extreme`` is the most extreme price since the
    sequence started, this bar included: the stop goes beyond it."""
    d = -direction  # the direction of the failed acceptance
    poked = d * ((m.high if d > 0 else m.low) - locked) > 0
    if not (poked and m.crossed(locked, lv.crossing_distance(m)) and fail_initiative(direction, m, config)):
        return None
    tp1, tp2 = _value_targets(direction, m, lv)
    return Candidate(FAILBREAK, direction, m.close, lv.beyond(extreme, -direction), tp1, tp2, via=via)


def breakout_candidate(direction: int, m: Minute, config: AuctionConfig, lv: Levels, locked: float, stop_from: float | None = None, via: str = "") -> Candidate:
    """Acceptance outside value (§6.5). Targets (DESIGN.md): locked edge ± m × (VAH − VAL); stop:
    the locked edge (or, after a retest, the pullback's extreme) minus the buffer."""
    width = lv.ticks(m.vah) - lv.ticks(m.val)
    ex = config.exits
    tp1, tp2 = _targets(
        direction,
        m.close,
        *(lv.price(lv.ticks(locked) + direction * Fraction(repr(mult)) * width) for mult in (ex.breakout_tp1_va_mult, ex.breakout_tp2_va_mult)),
    )
    reference = stop_from if stop_from is not None else locked
    return Candidate(BREAKOUT, direction, m.close, lv.beyond(reference, -direction), tp1, tp2, locked=locked, via=via)
