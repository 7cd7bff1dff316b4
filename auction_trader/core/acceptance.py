"""Acceptance: k consecutive closes outside value (specv2 §6.2, DESIGN.md "Acceptance").

The first close beyond the value-area edge, on a bar that actually traded near that edge (a
crossing, not a gap), starts a sequence and locks the edge. Each further close beyond the locked
level counts; any close back inside resets to 0 - closes only, wicks are ignored. At k the
breakout fires, once per sequence. Sequences are tracked whatever the position.

The sequence that a close back inside ends is kept for that bar as :attr:`Sequence.ended`: how far
it got decides between a break-in (a poke: fewer than k closes) and a failed breakout (a failed
acceptance: k or more), DESIGN.md "Break-in vs failed breakout".
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Ended:
    """A sequence that ended on the current bar: its count, locked level and its extreme - the
    highest high (up) / lowest low (down) since it started, the ending bar included."""

    count: int
    locked: float
    extreme: float


@dataclass
class Sequence:
    """One direction's acceptance count. ``direction`` +1 counts closes above VAH, -1 below VAL."""

    direction: int
    k: int
    active: bool = False
    locked: float = math.nan
    count: int = 0
    fired: bool = False
    started_ts: int | None = None
    extreme: float = math.nan  # highest high (up) / lowest low (down) since the sequence started
    ended: Ended | None = None  # the sequence this bar's close ended (this bar only)

    def update(self, ts_min: int, close: float, high: float, low: float, edge: float, crossed: bool) -> bool:
        """Feeds one closed bar; True when the breakout fires on it.

        ``edge`` is this bar's VAH (up) or VAL (down), ``crossed`` whether the bar traded near it.
        """
        d = self.direction
        self.ended = None
        if self.active:
            if d * (close - self.locked) > 0:
                self.count += 1
                self.extreme = max(self.extreme, high) if d > 0 else min(self.extreme, low)
            else:
                extreme = max(self.extreme, high) if d > 0 else min(self.extreme, low)
                self.ended = Ended(self.count, self.locked, extreme)
                self.reset()
        if not self.active and not math.isnan(edge) and d * (close - edge) > 0 and crossed:
            self.active, self.locked, self.count, self.fired = True, edge, 1, False
            self.started_ts, self.extreme = ts_min, (high if d > 0 else low)
        if self.active and self.count >= self.k and not self.fired:
            self.fired = True
            return True
        return False

    def reset(self) -> None:
        self.active, self.locked, self.count, self.fired = False, math.nan, 0, False
        self.started_ts, self.extreme = None, math.nan

    def state(self) -> dict:
        """The count as the signal log shows it (without this bar's ended sequence)."""
        return {k: v for k, v in asdict(self).items() if k not in ("direction", "k", "ended")}

    def to_state(self) -> dict:
        """Everything :meth:`from_state` needs. ``ended`` is left out: it describes the current
        bar only and every bar (with or without trades) clears it before anything reads it.
        NaN levels (no sequence) are None: strict JSON has no NaN."""
        return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in self.state().items()}

    @classmethod
    def from_state(cls, direction: int, k: int, state: dict) -> Sequence:
        s = dict(state)
        for name in ("locked", "extreme"):
            if s[name] is None:
                s[name] = math.nan
        return cls(direction, k, **s)
