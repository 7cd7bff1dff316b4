"""The recording: every tick the node receives, in ``DIR/catalog`` (a Nautilus ``ParquetDataCatalog``).

Bybit serves no historical quotes, so the 240-minute warm-up can only come from what the node saw
itself (DESIGN.md "Live path"). Ticks are buffered in memory and written once a minute by a
background thread (one Parquet file per type and flush, named by its time range as Nautilus
names them), never on the tick path. Files whose last tick is older than ``retention_hours`` are
deleted once a day. Ticks are stored with ``ts_init = ts_event`` (exchange time), the way every
other catalog here is stamped, so a backtest over the recording replays what the node replayed.

Gaps (a stale feed, a restart) are kept next to the catalog in ``gaps.jsonl`` — one JSON object
per gap with its start and end (ns) and why — so a warm-up or a backtest can say what is missing.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from pathlib import Path

from nautilus_trader.model.data import QuoteTick, TradeTick
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from auction_trader.data.catalog import data_dir, file_intervals

log = logging.getLogger(__name__)
HOUR_NS = 3_600_000_000_000
GAPS_FILE = "gaps.jsonl"


class TickRecorder:
    """Buffered, threaded appends to the recording; :meth:`flush` queues what is buffered."""

    def __init__(self, root: str | Path, instrument_id: str, retention_hours: float = 48.0) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.instrument_id = instrument_id
        self.retention_ns = int(retention_hours * HOUR_NS)
        self.catalog = ParquetDataCatalog(str(self.root))
        self._trades: list = []
        self._quotes: list = []
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self.written = 0
        self.errors = 0
        self.purged_files = 0
        self._last_purge_day: int | None = None
        self._thread = threading.Thread(target=self._run, name="tick-recorder", daemon=True)
        self._thread.start()

    def add(self, tick) -> None:
        with self._lock:
            (self._trades if type(tick) is TradeTick else self._quotes).append(tick)

    def flush(self, now_ns: int | None = None) -> None:
        """Queue the buffered ticks for writing (and, once a day, the retention purge)."""
        with self._lock:
            trades, quotes, self._trades, self._quotes = self._trades, self._quotes, [], []
        for batch in (trades, quotes):
            if batch:
                self._queue.put(("write", batch))
        now_ns = time.time_ns() if now_ns is None else now_ns
        day = now_ns // (24 * HOUR_NS)
        if day != self._last_purge_day:
            self._last_purge_day = day
            self._queue.put(("purge", now_ns))

    def mark_gap(self, start_ns: int, end_ns: int, reason: str) -> None:
        self._queue.put(("gap", {"start_ns": int(start_ns), "end_ns": int(end_ns), "reason": reason}))

    def close(self, timeout: float = 30.0) -> None:
        self.flush()
        self._queue.put(("stop", None))
        self._thread.join(timeout)

    def sync(self, timeout: float = 30.0) -> bool:
        """Wait until everything queued so far is on disk (tests, shutdown)."""
        done = threading.Event()
        self.flush()
        self._queue.put(("sync", done))
        return done.wait(timeout)

    # -- the writer thread --------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            kind, arg = self._queue.get()
            try:
                if kind == "stop":
                    return
                if kind == "sync":
                    arg.set()
                elif kind == "write":
                    arg.sort(key=lambda t: t.ts_init)  # stable: arrival order at equal times
                    self.catalog.write_data(arg)
                    self.written += len(arg)
                elif kind == "purge":
                    self.purge(arg)
                elif kind == "gap":
                    with (self.root / GAPS_FILE).open("a") as fh:
                        fh.write(json.dumps(arg, sort_keys=True) + "\n")
            except Exception as exc:  # a failed write must not stop the node; it is counted and logged
                self.errors += 1
                log.error("recording: %s failed: %s", kind, exc)

    def purge(self, now_ns: int) -> int:
        """Delete recording files wholly older than the retention; returns how many."""
        cutoff = now_ns - self.retention_ns
        removed = 0
        for cls in (TradeTick, QuoteTick):
            for _start, end, path in file_intervals(data_dir(self.root, cls, self.instrument_id)):
                if end < cutoff:
                    path.unlink(missing_ok=True)
                    removed += 1
        self.purged_files += removed
        return removed


def read_gaps(root: str | Path) -> list[dict]:
    path = Path(root) / GAPS_FILE
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
