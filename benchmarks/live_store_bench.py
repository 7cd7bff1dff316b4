#!/usr/bin/env python
"""What the live node's tick path pays to persist a row, against writing it to SQLite itself.

Same run, same rows (a ``fills`` row: 16 columns), each in a fresh temporary ``execution.db``:

  1. ``ExecutionStore.insert``: the backtest store, one row per call, one transaction each
     (rollback journal, synchronous=FULL: SQLite's defaults; every commit waits for fsync, so this
     scenario writes at most ``--sync-rows`` rows);
  2. ``sqlite WAL NORMAL``: a direct ``INSERT`` + ``COMMIT`` per row on a WAL connection with
     ``synchronous=NORMAL`` (the live store's settings, written synchronously by the caller);
  3. ``LiveStore.record``: validate + enqueue; the writer thread commits in batches.

Printed per scenario: the caller's time per call (median, p99, max, in µs, each call timed on its
own), the ratio of the median to scenario 2's, and the throughput: rows per second until every row is
committed (for LiveStore, until ``flush()`` returns).

    .venv/bin/python benchmarks/live_store_bench.py [--rows 20000]
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from auction_trader.live.store import LIVE_COLUMNS, LIVE_SCHEMA, LiveStore  # noqa: E402
from auction_trader.store import ExecutionStore  # noqa: E402


def _row(i: int) -> dict:
    return {
        "ts_event": 1_767_225_600_000_000_000 + i * 1_000_000, "side": "BUY" if i % 2 else "SELL", "order_type": "MARKET",
        "price": 87_000.5 + i % 100, "qty": 0.001, "liquidity": "TAKER", "commission": 0.0478, "bid_at_fill": 87_000.4,
        "ask_at_fill": 87_000.5, "setup": "A", "purpose": "entry", "signal_ts_min": 1_767_225_600_000, "client_order_id": f"O-{i}",
        "trade_id": i // 4, "reduce_only": False, "mode": "paper",
    }


def _percentiles(ns: list[int]) -> tuple[float, float, float]:
    us = sorted(n / 1000 for n in ns)
    return statistics.median(us), us[min(len(us) - 1, int(len(us) * 0.99))], us[-1]


def bench_execution_store(rows: list[dict], tmp: Path) -> tuple[list[int], float]:
    """The backtest store has no fills table: the same 16 values go into a table of the same shape."""
    store = ExecutionStore(tmp / "a.db")
    store._db.execute(LIVE_SCHEMA["fills"])
    cols = LIVE_COLUMNS["fills"]
    sql = f"INSERT INTO fills ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
    per = []
    t0 = time.perf_counter()
    for r in rows:
        s = time.perf_counter_ns()
        with store._db:
            store._db.execute(sql, tuple(r[c] for c in cols))
        per.append(time.perf_counter_ns() - s)
    wall = time.perf_counter() - t0
    store.close()
    return per, wall


def bench_wal_direct(rows: list[dict], tmp: Path) -> tuple[list[int], float]:
    db = sqlite3.connect(str(tmp / "b.db"), isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(LIVE_SCHEMA["fills"])
    cols = LIVE_COLUMNS["fills"]
    sql = f"INSERT INTO fills ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
    per = []
    t0 = time.perf_counter()
    for r in rows:
        s = time.perf_counter_ns()
        db.execute("BEGIN")
        db.execute(sql, tuple(r[c] for c in cols))
        db.execute("COMMIT")
        per.append(time.perf_counter_ns() - s)
    wall = time.perf_counter() - t0
    db.close()
    return per, wall


def bench_live_store(rows: list[dict], tmp: Path) -> tuple[list[int], float]:
    store = LiveStore(tmp / "c")
    per = []
    t0 = time.perf_counter()
    for r in rows:
        s = time.perf_counter_ns()
        store.record("fills", r)
        per.append(time.perf_counter_ns() - s)
    if not store.flush(300):
        raise SystemExit("LiveStore did not commit within 300 s")
    wall = time.perf_counter() - t0
    assert len(store.rows("fills")) == len(rows) and store.write_errors == 0
    store.close()
    return per, wall


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=20_000, help="rows per scenario (default 20000)")
    ap.add_argument("--sync-rows", type=int, default=300, help="rows for the fsync-per-commit scenario (default 300)")
    args = ap.parse_args()
    if args.rows < 100:
        ap.error("--rows must be at least 100")
    rows = [_row(i) for i in range(args.rows)]
    results = {}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for name, fn in (("ExecutionStore.insert (sync, default journal)", bench_execution_store),
                         ("sqlite WAL NORMAL insert+commit (sync)", bench_wal_direct),
                         ("LiveStore.record (queued)", bench_live_store)):
            n = min(args.rows, args.sync_rows) if fn is bench_execution_store else args.rows
            print(f"running {name} on {n} rows ...", file=sys.stderr, flush=True)
            results[name] = fn(rows[:n], tmp)
    base = _percentiles(results["sqlite WAL NORMAL insert+commit (sync)"][0])[0]
    print(f"\n{'scenario':<48} {'rows':>6} {'median µs':>10} {'p99 µs':>10} {'max µs':>10} {'vs WAL sync':>12} {'rows/s':>10}")
    for name, (per, wall) in results.items():
        med, p99, mx = _percentiles(per)
        print(f"{name:<48} {len(per):>6} {med:>10.1f} {p99:>10.1f} {mx:>10.1f} {med / base:>11.3f}x {len(per) / wall:>10.0f}")
    print("\n(µs: the caller's time per call; rows/s: until every row is committed)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
