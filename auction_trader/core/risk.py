"""Guards on new entries: the global cooldown (specv2 §9.3) and the daily loss kill switch (§9.4)."""

from __future__ import annotations

from dataclasses import dataclass

DAY_MS = 86_400_000


@dataclass
class Cooldown:
    """No entry, either side, for ``minutes`` after a position closes."""

    minutes: int
    until_ms: int | None = None

    def position_closed(self, ts_ms: int) -> None:
        self.until_ms = ts_ms + self.minutes * 60_000

    def allows(self, decision_ts: int) -> bool:
        return self.until_ms is None or decision_ts >= self.until_ms

    def state(self) -> dict:
        return {"until_ms": self.until_ms}

    @classmethod
    def from_state(cls, minutes: int, state: dict) -> Cooldown:
        return cls(minutes, state["until_ms"])


@dataclass
class DailyLossGuard:
    """Kill switch: the UTC day's net P&L - the change of the account balance since 00:00, so it
    holds realized P&L, fees and funding - below ``-max_daily_loss`` x the day's starting equity
    stops new entries until the next UTC midnight."""

    max_daily_loss: float
    day: int | None = None
    day_start_balance: float = 0.0
    day_start_equity: float = 0.0
    active: bool = False
    tripped_at: int | None = None

    def on_minute(self, decision_ts: int, balance: float, equity: float) -> bool:
        """Update at a minute close (``decision_ts``, ms); returns whether the switch is active.

        The day's start is the first decision of the UTC day - with continuous data the one at
        00:00:00 itself, so "no entries until 00:00" frees that very decision."""
        day = decision_ts // DAY_MS
        if day != self.day:
            self.day, self.day_start_balance, self.day_start_equity = day, balance, equity
            self.active, self.tripped_at = False, None
        if not self.active and balance - self.day_start_balance < -self.max_daily_loss * self.day_start_equity:
            self.active, self.tripped_at = True, decision_ts
        return self.active

    def state(self) -> dict:
        """The day, its baseline (balance and equity at its first decision) and whether and when
        the switch tripped: a restart the same day keeps a tripped switch tripped until 00:00."""
        return {"day": self.day, "day_start_balance": self.day_start_balance, "day_start_equity": self.day_start_equity, "active": self.active, "tripped_at": self.tripped_at}

    @classmethod
    def from_state(cls, max_daily_loss: float, state: dict) -> DailyLossGuard:
        return cls(max_daily_loss, **state)

    @property
    def day_pnl_floor(self) -> float:
        return -self.max_daily_loss * self.day_start_equity
