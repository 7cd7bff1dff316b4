"""Initiative: did aggressive flow push the way the setup needs? (specv2 §5.7-5.8, §6.4-6.6)

Order flow passes with either its absolute or its normalised measure; quote imbalance is the
second witness. Normally one witness is enough; when too much volume traded inside the spread
(``ambiguous_trade_frac_1m`` above its maximum) the inferred flow is unreliable and both must
agree. ``use_qimb: false`` leaves order flow alone.

Break-in and breakout thresholds are stated for the long side (``OF > of_entry_min``); the short
side mirrors them (``OF < -of_entry_min``). Failed-breakout thresholds are stated for the short
side, the way the spec writes them (``OF <= of_fail_min``, ``qimb <= qimb_fail_min``); the long
side mirrors those.
"""

from __future__ import annotations

from auction_trader.config import AuctionConfig
from auction_trader.core.minute import Minute

LONG, SHORT = 1, -1


def _confirmed(of_ok: bool, qimb_ok: bool, m: Minute, config: AuctionConfig) -> bool:
    if not config.quote_imbalance.use_qimb:
        return of_ok
    if m.ambiguous_frac > config.initiative.ambiguous_trade_frac_max:
        return of_ok and qimb_ok
    return of_ok or qimb_ok


def entry_initiative(direction: int, m: Minute, config: AuctionConfig, kind: str) -> bool:
    """Break-in (``kind="entry"``) or breakout (``kind="breakout"``) initiative in ``direction``."""
    of = config.order_flow
    qi = config.quote_imbalance
    of_min, of_norm_min, qimb_min = (
        (of.of_entry_min, of.of_entry_min_norm, qi.qimb_entry_min)
        if kind == "entry"
        else (of.of_breakout_min, of.of_breakout_min_norm, qi.qimb_breakout_min)
    )
    d = direction
    of_ok = d * m.of_1m > of_min or d * m.of_norm_1m > of_norm_min
    qimb_ok = d * m.qimb > qimb_min
    return _confirmed(of_ok, qimb_ok, m, config)


def fail_initiative(direction: int, m: Minute, config: AuctionConfig) -> bool:
    """Failed-breakout initiative for a trade in ``direction`` (SHORT after a failed up-break)."""
    of = config.order_flow
    qi = config.quote_imbalance
    # Written for the short side: OF <= of_fail_min. For a long: -OF <= of_fail_min.
    s = -direction
    of_ok = s * m.of_1m <= of.of_fail_min or s * m.of_norm_1m <= of.of_fail_min_norm
    qimb_ok = s * m.qimb <= qi.qimb_fail_min
    return _confirmed(of_ok, qimb_ok, m, config)
