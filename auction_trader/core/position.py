"""The net position, derived from fills in one place (netting: one position per instrument).

A fill either adds to the position (opening) or reduces it (closing); a fill larger than the
position it reduces closes it and opens the other side with the rest (a flip in one fill). That
split is :meth:`NetPosition.apply`, and everything that needs the position uses it: the funding
ledger (what a funding instant charges; the backtest's order gate reads the position from it) and
the run's round trips (:func:`auction_trader.backtest.metrics.round_trips`: flat -> position ->
flat). The strategy's own :class:`~auction_trader.core.trade.Trade` books the same fills per trade
(which order, which purpose); the venue's position is this one. Quantities are ``Decimal`` (fills
are exact decimal quantities), so sums are exact and a flat position is exactly 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class Part:
    """One part of a fill: ``qty`` opening (adding to) or closing (reducing) the position."""

    qty: Decimal
    opening: bool
    starts: bool  # the position was flat before this part: a new round trip starts
    ends: bool  # the position is flat after this part: the round trip ends


class NetPosition:
    """Signed net quantity (+ long, - short) after every fill applied."""

    def __init__(self, qty: Decimal = Decimal(0)) -> None:
        self.qty = Decimal(qty)

    def apply(self, side: int, qty: Decimal) -> list[Part]:
        """A fill of ``qty`` (> 0) on ``side`` (+1 buy, -1 sell): its parts, in order - the closing
        part first (up to the open quantity), then the opening rest - applied to the position."""
        parts = []
        remaining = qty
        while remaining > 0:
            starts = self.qty == 0
            opening = starts or (self.qty > 0) == (side > 0)
            part = remaining if opening else min(remaining, abs(self.qty))
            self.qty += side * part
            remaining -= part
            parts.append(Part(part, opening, starts, self.qty == 0))
        return parts

    @property
    def side(self) -> int:
        return (self.qty > 0) - (self.qty < 0)

    def state(self) -> dict:
        return {"qty": str(self.qty)}

    @classmethod
    def from_state(cls, state: dict) -> NetPosition:
        return cls(Decimal(state["qty"]))
