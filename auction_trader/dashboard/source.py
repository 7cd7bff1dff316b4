"""What the trading view reads: one narrow interface, served by a finished backtest run and by a
running node.

The page never knows where its data comes from. A finished run directory
(:class:`~auction_trader.dashboard.runs.BacktestRun`) and a live node's data dir
(:class:`~auction_trader.dashboard.live.LiveSource`: its store ``execution.db`` and its recording
``catalog/``) implement it; the same page shows either, a live one with minutes pushed over the
WebSocket as they close. Everything is keyed by the minute's ``ts_min`` (ms, UTC), as in
``features_1m``.

* ``head()`` grows as minutes close; ``minutes(since, ...)`` returns the new ones. The WebSocket
  loop polls ``head()`` (a live source's ``version()`` first, which says whether the node committed
  anything since) and pushes ``minutes(previous_head + 1 minute, head)``, and the status when it
  changes without a new minute (a halt, an activation).
* ``status()`` carries the node's mode, warm-up progress, halted state and which control commands
  it would accept now (each with the reason when not).
* ``control(command)`` writes the same control row as ``run_live.py activate ...`` and returns the
  node's answer; a backtest refuses every command with the reason.
* ``profile`` / ``footprint`` read the node's recorded catalog exactly as a run reads its catalog.
"""

from __future__ import annotations

from typing import Any, Protocol


class ControlRefused(Exception):
    """A control command that the source does not accept now; the message says why."""


class TradingSource(Protocol):
    kind: str  # "backtest" | "live"
    key: str  # the URL name

    def info(self) -> dict[str, Any]:
        """Identity, instrument, range, configuration the view needs, colour thresholds."""

    def status(self) -> dict[str, Any]:
        """Mode, warm-up, halted, the control commands with whether each is allowed and why not."""

    def head(self) -> int | None:
        """The latest closed minute (ts_min, ms), None before the first."""

    def minutes(self, start: int | None, end: int | None) -> dict[str, list]:
        """Per-minute columns (bars, levels, order flow, quality, equity, heat, ...) in [start, end]."""

    def profile(self, ts_min: int) -> dict[str, Any]:
        """The rolling volume profile and value area as the engine held them at that minute."""

    def footprint(self, start: int, end: int, side: str, bin_ticks: int | None) -> dict[str, Any]:
        """Buy / sell volume per minute and price bin; ``side`` inferred or exchange."""

    def markers(self, start: int | None, end: int | None) -> dict[str, list]:
        """Signals and fills with their reason codes."""

    def state(self, ts_min: int) -> dict[str, Any]:
        """Position, entry, stop, targets, P&L, today's P&L against the kill switch, heat."""

    def alerts(self, since: int | None) -> list[dict[str, Any]]:
        """The alert feed, oldest first."""

    def control(self, command: str) -> dict[str, Any]:
        """Apply ``activate`` / ``deactivate`` / ``resolve``; raises :class:`ControlRefused`."""
