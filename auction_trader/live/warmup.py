"""Warm-up from the recording (specv2 §16.1): the last ``warmup_minutes`` of ticks, and what they cover.

The node replays these ticks into the strategy with entries gated off before it trades; a minute is
*covered* when it holds at least one tick. Trading needs every one of the last ``warmup_minutes``
minutes covered, so a first start observes for the whole window, and a restart after a short
outage resumes once the gap has rolled out of the window.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from auction_trader.backtest.engine import load_data
from auction_trader.data.catalog import has_data

MINUTE_NS = 60_000_000_000


@dataclass
class Coverage:
    """The minutes (start ns) holding ticks; answers "how much of the last N minutes is covered"."""

    needed: int
    minutes: set[int] = field(default_factory=set)

    def add(self, ts_ns: int) -> None:
        self.minutes.add(ts_ns // MINUTE_NS * MINUTE_NS)

    def covered(self, now_ns: int) -> int:
        """Covered minutes among the ``needed`` complete minutes before ``now_ns``'s minute."""
        end = now_ns // MINUTE_NS * MINUTE_NS
        return sum(1 for k in range(1, self.needed + 1) if end - k * MINUTE_NS in self.minutes)

    def complete(self, now_ns: int) -> bool:
        return self.covered(now_ns) >= self.needed

    def gaps(self, start_ns: int, end_ns: int) -> list[tuple[int, int]]:
        """Runs of uncovered complete minutes in ``[start_ns, end_ns)`` as (start, end) ns."""
        out: list[tuple[int, int]] = []
        m = start_ns // MINUTE_NS * MINUTE_NS
        while m + MINUTE_NS <= end_ns:
            if m not in self.minutes:
                if out and out[-1][1] == m:
                    out[-1] = (out[-1][0], m + MINUTE_NS)
                else:
                    out.append((m, m + MINUTE_NS))
            m += MINUTE_NS
        return out

    def prune(self, now_ns: int) -> None:
        horizon = now_ns - (self.needed + 2) * MINUTE_NS
        self.minutes = {m for m in self.minutes if m >= horizon}


@dataclass
class Warmup:
    ticks: list
    trades: int
    quotes: int
    start_ns: int
    end_ns: int
    sources: list[str]


def load_warmup(catalogs: list[Path], instrument_id: str, minutes: int, now_ns: int) -> Warmup:
    """Ticks of the last ``minutes`` (plus the current partial minute) from the catalogs, in replay
    order. With several catalogs, each later one supplies only ticks after the previous ones' last
    tick (an imported history, then the node's own recording)."""
    start = (now_ns // MINUTE_NS - minutes) * MINUTE_NS
    ticks: list = []
    trades = quotes = 0
    sources = []
    for cat in catalogs:
        if not has_data(cat):
            continue
        lo = start if not ticks else ticks[-1].ts_init + 1
        data, n_t, n_q = load_data(cat, instrument_id, lo, now_ns)
        if data:
            ticks.extend(data)
            trades += n_t
            quotes += n_q
            sources.append(str(cat))
    return Warmup(ticks, trades, quotes, start, now_ns, sources)
