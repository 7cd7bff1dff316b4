"""The minute sequencer: live ticks in exchange time, released once they can no longer be overtaken.

Live ticks arrive 10-200 ms after their exchange timestamp and not always in order (two sockets).
The sequencer keeps them until the wall clock is ``grace`` past their exchange time, then releases
them sorted by exchange time (trades before quotes at equal times, as the backtest replays a
catalog). The release *watermark* only moves forward; a minute ``[m, m + 1 min)`` is complete, and
closed downstream, once the watermark passes ``m + 1 min`` - i.e. at the boundary plus the grace.

A tick whose exchange time is at or before the watermark when it arrives is *late*: it cannot be
given to a strategy that has moved past it without rewriting history, and it is never restamped.
It is counted (``late``, ``late_max_ms``), still recorded with its own timestamp, and not released.
Plain Python, no Nautilus: items are anything with ``ts_event``; the caller says which are trades.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MINUTE_NS = 60_000_000_000


@dataclass
class MinuteSequencer:
    grace_ns: int
    watermark: int = 0  # every released tick has ts <= watermark; later ticks are > watermark
    late: int = 0
    late_max_ms: float = 0.0
    received: int = 0
    _pending: list = field(default_factory=list)  # (ts, kind 0 trade / 1 quote, seq, tick)
    _seq: int = 0

    def push(self, ts: int, is_trade: bool, tick) -> bool:
        """Take one tick; False (and counted) when it is late."""
        self.received += 1
        if ts <= self.watermark:
            self.late += 1
            self.late_max_ms = max(self.late_max_ms, (self.watermark - ts) / 1e6)
            return False
        self._seq += 1
        self._pending.append((ts, 0 if is_trade else 1, self._seq, tick))
        return True

    def release(self, now_ns: int, limit: int | None = None) -> list:
        """The ticks older than ``now_ns - grace`` (and not after ``limit``), in replay order;
        moves the watermark there."""
        cut = now_ns - self.grace_ns
        if limit is not None:
            cut = min(cut, limit)
        if cut <= self.watermark:
            return []
        ready = [p for p in self._pending if p[0] <= cut]
        if ready:
            self._pending = [p for p in self._pending if p[0] > cut]
            ready.sort()
        self.watermark = cut
        return [p[3] for p in ready]

    @property
    def pending(self) -> int:
        return len(self._pending)

    def closed_minute(self) -> int:
        """Start (ns) of the latest minute wholly behind the watermark."""
        return (self.watermark + 1) // MINUTE_NS * MINUTE_NS - MINUTE_NS
