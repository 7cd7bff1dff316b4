"""Progress lines on stderr while a backtest runs: ticks, simulated time, % done, elapsed, ETA.

Driven by the venue module's per-tick hook (no timer is added to the engine, so printing or not
cannot change the event sequence). Wall-clock numbers go to stderr only, never into output files.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

import numpy as np

MINUTE_NS = 60 * 1_000_000_000


def _clock(seconds: float) -> str:
    seconds = int(max(0.0, seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class Progress:
    """Prints one line every ``every_minutes`` of simulated time (``enabled=False``: silent)."""

    def __init__(self, total_ticks: int, every_minutes: int = 60, enabled: bool = True, stream: TextIO | None = None) -> None:
        self.total = max(1, int(total_ticks))
        self.every_ns = max(1, int(every_minutes)) * MINUTE_NS
        self.enabled = enabled
        self.stream = stream
        self.next_ns: int | None = None
        self._t0: float | None = None
        self.lines = 0

    def start(self, ts_ns: int) -> None:
        self._t0 = time.monotonic()
        self.next_ns = (ts_ns // self.every_ns + 1) * self.every_ns

    def report(self, ts_ns: int, ticks: int, final: bool = False) -> None:
        """Called when simulated time reaches ``next_ns`` (and once at the end)."""
        if self.next_ns is not None:
            while self.next_ns <= ts_ns:
                self.next_ns += self.every_ns
        if not self.enabled or self._t0 is None:
            return
        elapsed = time.monotonic() - self._t0
        frac = min(1.0, ticks / self.total)
        eta = elapsed * (1.0 - frac) / frac if frac > 0 else float("nan")
        rate = ticks / elapsed if elapsed > 0 else 0.0
        when = str(np.datetime64(int(ts_ns), "ns").astype("datetime64[s]")).replace("T", " ")
        label = "done" if final else f"ETA {_clock(eta)}"
        print(
            f"[backtest] {when} UTC  ticks {ticks:,}/{self.total:,} ({frac:.1%})  elapsed {_clock(elapsed)}  {label}  {rate:,.0f} ticks/s",
            file=self.stream or sys.stderr,
            flush=True,
        )
        self.lines += 1
