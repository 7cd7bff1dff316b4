"""Shadow mode's comparison: what paper did this minute against the same decision on the real account.

Paper executes; the real account is only read (wallet and position, by REST). Each minute the node
compares (specv2 §10, shadow): the position each side holds (side, quantity) and, when the minute's
decision was an entry, the quantity that entry gets when sized on the real account's available
margin by the same rule (:func:`auction_trader.core.sizing.position_size`) against the quantity
paper sized. Any difference is returned; the node turns it into a ``shadow_divergence`` alert.
"""

from __future__ import annotations

import json

from auction_trader.adapters.bybit.rest import AccountView
from auction_trader.config import AuctionConfig
from auction_trader.core.sizing import position_size

ENTRIES = {"ENTER_LONG": "LONG", "ENTER_SHORT": "SHORT"}


def compare(signal: dict | None, paper: dict, real: AccountView, config: AuctionConfig, step: float) -> dict | None:
    """The differences between paper and the real account, or None when they agree.

    ``signal``: the minute's ``signals_1m`` row (paper's decision, with the quantity it was sized
    to); ``paper``: paper's position (``side``, ``qty``); ``real``: the real account.
    """
    diff: dict = {}
    if paper["side"] != real.position_side or abs(paper["qty"] - real.position_qty) >= step / 2:
        diff["position"] = {"paper": {"side": paper["side"], "qty": paper["qty"]}, "real": {"side": real.position_side, "qty": real.position_qty}}
    if signal is not None and signal.get("chosen_action") in ENTRIES:
        snap = json.loads(signal.get("feature_snapshot") or "{}")
        paper_qty = snap.get("qty")
        entry, stop = snap.get("entry"), snap.get("stop")
        if paper_qty is not None and entry is not None and stop is not None:
            sizing = config.sizing
            size = position_size(real.available, sizing.risk_pct, float(entry), float(stop), step, sizing.max_leverage)
            real_action = signal["chosen_action"] if size.steps >= 1 else "HOLD"
            if real_action != signal["chosen_action"] or abs(size.qty - float(paper_qty)) >= step / 2:
                diff["decision"] = {
                    "ts_min": signal.get("ts_min"),
                    "side": ENTRIES[signal["chosen_action"]],
                    "paper": {"action": signal["chosen_action"], "qty": float(paper_qty)},
                    "real": {"action": real_action, "qty": size.qty, "available": real.available},
                }
    return diff or None
