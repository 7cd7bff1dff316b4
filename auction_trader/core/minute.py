"""What the signal engine sees of one completed minute: the bar, the value area, the initiative
figures, and a way to ask whether the bar traded near a price."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Minute:
    """A closed minute. Prices NaN when undefined (no trades, no value area).

    ``nearest_trade`` answers the boundary-crossing question of specv2 §6.3: the distance from a
    level to the closest trade price of this minute (None without trades).
    """

    ts_min: int  # ms
    open: float
    high: float
    low: float
    close: float
    poc: float
    vah: float
    val: float
    va_valid: bool
    of_1m: float
    of_norm_1m: float
    qimb: float
    ambiguous_frac: float
    spread_avg: float
    nearest_trade: Callable[[float], float | None] = field(repr=False, compare=False)

    @property
    def has_trades(self) -> bool:
        return not math.isnan(self.close)

    @property
    def decision_ts(self) -> int:
        """When the decision is taken: the minute's end (ms)."""
        return self.ts_min + 60_000

    def crossed(self, level: float, distance: float) -> bool:
        """Did the bar hold a trade within ``distance`` of ``level``? (1e-9: prices are on a grid.)"""
        nearest = self.nearest_trade(level)
        return nearest is not None and nearest <= distance + 1e-9

    def snapshot(self) -> dict:
        """The figures a decision rested on, for the signal log."""
        return {
            "open": self.open, "high": self.high, "low": self.low, "close": self.close,
            "poc": self.poc, "vah": self.vah, "val": self.val, "va_valid": self.va_valid,
            "of_1m": self.of_1m, "of_norm_1m": self.of_norm_1m, "qimb": self.qimb,
            "ambiguous_frac": self.ambiguous_frac, "spread_avg": self.spread_avg,
        }  # fmt: skip


def trades_at(prices: list[float]) -> Callable[[float], float | None]:
    """A ``nearest_trade`` over explicit trade prices (tests and offline replays)."""

    def nearest(level: float) -> float | None:
        return min((abs(p - level) for p in prices), default=None)

    return nearest
