"""Exit rules that are decided at a minute close (specv2 §9.1-9.2): the time stop with its
profitable extension, and the breakout's close back inside value; and what a market exit at that
close would realise, which is what "profitable net of fees" is judged on."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class TimeStop:
    """Counts from the first minute close after the fill (specv2 §9.2 "bar close after confirmed
    fill"). After ``max_hold_minutes`` the position exits at a close, unless it is profitable net
    of the round-trip fees and ``extend_if_profitable`` - then it is kept, re-checked every close
    ("trail while profitable"), and exits at the first close where it no longer is."""

    max_hold_minutes: int
    extend_if_profitable: bool
    started_at: int | None = None  # decision time (ms) of the first close after the fill

    def on_close(self, decision_ts: int, net_unrealized: float) -> bool:
        """A minute closed at ``decision_ts`` (ms); True when the time stop is due now."""
        if self.started_at is None:
            self.started_at = decision_ts
            return False
        held = (decision_ts - self.started_at) // 60_000
        if held < self.max_hold_minutes:
            return False
        return not (self.extend_if_profitable and net_unrealized > 0)

    def state(self) -> dict:
        return {"max_hold_minutes": self.max_hold_minutes, "extend_if_profitable": self.extend_if_profitable, "started_at": self.started_at}

    @classmethod
    def from_state(cls, state: dict) -> TimeStop:
        return cls(**state)


def market_exit_price(direction: int, bid: float, ask: float, slippage_ticks: int, tick: float) -> float:
    """The price a market exit decided now would get: a long sells at the bid, a short buys at the
    ask, ``slippage_ticks`` beyond it (the backtest's fill model; NaN without a quote)."""
    if direction > 0:
        return bid - slippage_ticks * tick
    return ask + slippage_ticks * tick


def net_exit_pnl(direction: int, qty: float, entry: float, exit_price: float, entry_fees: float, taker_rate: float) -> float:
    """P&L of closing ``qty`` (entered at ``entry``, which cost ``entry_fees``) at ``exit_price``,
    net of those entry fees and the exit's taker fee: positive means a market exit now would
    leave the trade ahead after every fee. 0 when there is no price to judge on."""
    if math.isnan(exit_price):
        return 0.0
    return direction * (exit_price - entry) * qty - entry_fees - qty * exit_price * taker_rate


def closed_back_inside(direction: int, close: float, level: float) -> bool:
    """A breakout long is wrong once a minute closes at or below the locked VAH (short mirrors)."""
    return direction * (close - level) <= 0
