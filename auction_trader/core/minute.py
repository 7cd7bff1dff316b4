"""What the signal engine sees of one completed minute: the bar, the value area, the initiative
figures, the close quote, and a way to ask whether the bar traded near a price."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from auction_trader.config import AuctionConfig


@dataclass(frozen=True)
class Minute:
    """A closed minute. Prices NaN when undefined (no trades, no value area).

    ``nearest_trade`` answers the boundary-crossing question of specv2 §6.3: the distance from a
    level to the closest trade price of this minute (None without trades). ``bid`` / ``ask`` are
    the close snapshot's quote: what a market exit decided at this close would meet.
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
    bid: float = math.nan
    ask: float = math.nan

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
            "bid": self.bid, "ask": self.ask,
        }  # fmt: skip


def minute_from_row(row, config: AuctionConfig, nearest_trade: Callable[[float], float | None]) -> Minute:
    """The minute the signal engine decides on, from a feature row (attributes as in
    ``docs/features.md``), read the way the configuration says:

    * ``qimb`` is ``qimb_close``, or ``qimb_ema_60s`` with ``qimb_source: ema``;
    * with ``use_bvc`` the BVC proxy stands in for the order flow in the initiative test (specv2
      §5.9): ``OF_1m = bvc_net``, ``OF_norm_1m = bvc_net / volume``, and the ambiguous fraction -
      a measure of how unreliable trade classification was - no longer applies (0);
    * otherwise ``of_1m`` / ``of_norm_1m`` / the ambiguous fraction as the feature engine built
      them from ``order_flow_source``.
    """
    qimb = row.qimb_ema_60s if config.quote_imbalance.qimb_source == "ema" else row.qimb_close
    if config.initiative.use_bvc:
        of = row.bvc_net
        of_norm = of / row.volume if row.volume > 0 else math.nan
        ambiguous = 0.0
    else:
        of, of_norm, ambiguous = row.of_1m, row.of_norm_1m, row.ambiguous_trade_frac_1m
    return Minute(
        row.ts_min, row.open, row.high, row.low, row.close, row.poc, row.vah, row.val, bool(row.va_valid),
        of, of_norm, qimb, ambiguous, row.spread_avg_60m, nearest_trade, row.bid_px_close, row.ask_px_close,
    )  # fmt: skip


def trades_at(prices: list[float]) -> Callable[[float], float | None]:
    """A ``nearest_trade`` over explicit trade prices (tests and offline replays)."""

    def nearest(level: float) -> float | None:
        return min((abs(p - level) for p in prices), default=None)

    return nearest
