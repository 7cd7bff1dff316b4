"""Funding settlement for the backtest: fixed rate, every 8 hours, on the position held at the time.

Nautilus 1.231's v1 engine settles no funding (DESIGN.md), so the venue module calls
:meth:`FundingLedger.settle_through` as simulated time passes and applies each charge with
``SimulatedExchange.adjust_account``, which changes the account balance (what the strategy's daily
kill switch reads) but not the positions' realized P&L.

The rule, exactly:

* Settlement instants are 00:00, 08:00 and 16:00 UTC (multiples of 8 h since the epoch).
* The position charged at instant ``B`` is the one held *just before* ``B``: every fill with
  ``ts_event < B`` counts, a fill at or after ``B`` does not (so closing exactly at 08:00:00.000
  still pays; opening then does not).
* The mark is the mid of the latest quote stamped before ``B``.
* ``amount = signed_qty × mark × funding_rate_8h_bps / 10 000``, rounded half-even to the
  settlement currency's precision (USDT: 8 decimals) *before* it is applied, so the ledger and the
  balance agree to the last unit. Positive = paid: longs pay a positive rate, shorts receive it; a
  negative rate reverses both. No position, no entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from auction_trader.core.position import NetPosition

FUNDING_INTERVAL_NS = 8 * 3600 * 1_000_000_000


def next_funding_after(ts_ns: int) -> int:
    """The first settlement instant strictly after ``ts_ns``."""
    return (int(ts_ns) // FUNDING_INTERVAL_NS + 1) * FUNDING_INTERVAL_NS


def funding_instants(start_ns: int, end_ns: int) -> list[int]:
    """Settlement instants ``B`` with ``start_ns < B <= end_ns``."""
    out = []
    b = next_funding_after(start_ns)
    while b <= end_ns:
        out.append(b)
        b += FUNDING_INTERVAL_NS
    return out


@dataclass(frozen=True)
class FundingEvent:
    """One settlement. ``amount`` > 0 is paid by the account, < 0 received."""

    ts: int  # the settlement instant (ns)
    side: str  # LONG / SHORT
    qty: Decimal  # absolute position size
    mark_price: Decimal  # mid of the latest quote before ts
    rate_bps: float  # the 8-hour rate applied
    amount: Decimal  # signed_qty x mark x rate, rounded to the currency's precision

    def as_row(self) -> dict:
        return {
            "ts": self.ts,
            "side": self.side,
            "qty": float(self.qty),
            "mark_price": float(self.mark_price),
            "rate_bps": self.rate_bps,
            "amount": float(self.amount),
        }


class FundingLedger:
    """Position bookkeeping from fills and the settlements they owe, independent of Nautilus's cache.

    ``on_fill(ts, signed_qty)`` for every fill; ``settle_through(now, mark)`` whenever time reaches
    ``now``, with the mid of the latest quote stamped before ``now`` (the caller checks before it
    records a quote of ``now``): returns the new events, each to be applied to the account.
    """

    def __init__(self, rate_bps: float, currency_precision: int = 8) -> None:
        self.rate_bps = float(rate_bps)
        self._rate = Decimal(repr(float(rate_bps))) / Decimal(10_000)
        self._unit = Decimal(1).scaleb(-currency_precision)
        self.events: list[FundingEvent] = []
        self._next: int | None = None
        self.book = NetPosition()  # the position, after every fill seen (core/position.py)
        self._recent: list[tuple[int, Decimal]] = []  # fills at or after the next instant

    @property
    def position(self) -> Decimal:
        return self.book.qty

    @property
    def total_paid(self) -> Decimal:
        return sum((e.amount for e in self.events), Decimal(0))

    def start(self, ts_ns: int) -> None:
        """Time starts at ``ts_ns`` (the first event seen): the first instant is after it."""
        if self._next is None:
            self._next = next_funding_after(ts_ns)

    @property
    def next_instant(self) -> int | None:
        return self._next

    def due(self, now_ns: int) -> bool:
        return self._next is not None and now_ns >= self._next

    def on_fill(self, ts_ns: int, signed_qty: Decimal) -> None:
        self.book.apply(1 if signed_qty > 0 else -1, abs(signed_qty))
        if self._next is not None and ts_ns >= self._next:
            self._recent.append((ts_ns, signed_qty))

    def settle_through(self, now_ns: int, mark: Decimal | None) -> list[FundingEvent]:
        """Settle every instant ``B <= now_ns`` not settled yet; the new events, oldest first."""
        new: list[FundingEvent] = []
        while self._next is not None and now_ns >= self._next:
            b = self._next
            qty = self.book.qty - sum((q for ts, q in self._recent if ts >= b), Decimal(0))
            if qty != 0 and mark is not None:
                amount = (qty * mark * self._rate).quantize(self._unit, rounding=ROUND_HALF_EVEN)
                event = FundingEvent(b, "LONG" if qty > 0 else "SHORT", abs(qty), mark, self.rate_bps, amount)
                self.events.append(event)
                new.append(event)
            self._next = b + FUNDING_INTERVAL_NS
            self._recent = [(ts, q) for ts, q in self._recent if ts >= self._next]
        return new
