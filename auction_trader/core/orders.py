"""Which orders may rest and which must complete at once, and what happens to one that does not.

Every order the strategy sends ends filled, cancelled, rejected or expired within a bound the
strategy enforces (:func:`overdue`), checked at every minute close:

=================  ===========================================================================
may rest           the limit entry, until ``limit_order_timeout_minutes`` (then it is cancelled
                   and the rest goes at market); the stop and the take-profits, while their
                   position is open (cancelled the moment it is flat)
must complete      market entries (including the rest of a timed-out limit) and market exits
                   (time stop, close back inside, kill switch, flip): filled, or rejected, by
                   the next minute close (:data:`COMPLETION_BOUND_MS`)
=================  ===========================================================================

A cancel or a modification of any order must be answered within the same bound. An order that is
neither is *stuck*: it is cancelled, the strategy stops waiting for it, and it is re-sent once for
the quantity still missing (:data:`MAX_RESENDS`); a second stuck attempt gives up - an entry is
abandoned (the trade keeps what filled, or is forgotten), an exit leaves the position to its stop
and to the next minute's decision - with an alert and a reason code (:func:`on_stuck`).
"""

from __future__ import annotations

#: A market order (or a cancel / modify request) still unanswered this long after it was sent is stuck.
COMPLETION_BOUND_MS = 60_000
#: How often a stuck market order is re-sent before the strategy gives up.
MAX_RESENDS = 1

RESEND, GIVE_UP = "resend", "give_up"


def must_complete(order_type: str) -> bool:
    """Market orders (``order_type`` as Nautilus names it) must complete at once; limits, stops and
    take-profits may rest."""
    return order_type == "MARKET"


def overdue(sent_ms: int, now_ms: int, last_tick_ms: int) -> bool:
    """Unanswered for :data:`COMPLETION_BOUND_MS` or more while the market was live: the venue
    answers on market data (an order reaches it with the next tick), so an order sent into a gap
    of the data is not stuck until a tick has come after it."""
    return now_ms - sent_ms >= COMPLETION_BOUND_MS and last_tick_ms > sent_ms


def on_stuck(resends: int) -> str:
    """What to do with a stuck market order that has been re-sent ``resends`` times already."""
    return RESEND if resends < MAX_RESENDS else GIVE_UP


def stuck_reason(purpose: str, action: str) -> str:
    """The reason code recorded with the alert: ``ORDER_STUCK:<purpose>:RESENT`` / ``:GIVEN_UP``."""
    return f"ORDER_STUCK:{purpose.upper()}:{'RESENT' if action == RESEND else 'GIVEN_UP'}"
