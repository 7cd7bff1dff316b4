"""The backtest's outputs on the sample market, pinned byte for byte (issue 11).

The trade lifecycle moved out of the Nautilus strategy into ``auction_trader/core/`` (``trade.py``,
``lifecycle.py``); the move had to leave every output unchanged. These digests were taken from the
code *before* the move (commit "Pin the backtest outputs ..." on branch s-lifecycle) and the code
after it must reproduce them: fills, trades, signals, features, metrics (less the catalog's
temporary path), alerts, and every row of ``execution.db`` (positions, state snapshots, funding).

The runs are the shipped sample market (``bash setup.sh demo``'s ``catalogs/sample``: 10 hours,
seed 42, generated here into a temporary folder) at the defaults, and short configurations chosen
so that between them they take every path of the lifecycle:
``test_the_runs_take_every_lifecycle_path`` checks that they do (limit and market entries, a limit
timing out into a market remainder, TP1 then the stop at the entry price, TP2, stops, time stops, a
flip, a breakout closing back inside, the kill switch with a position open).

A change that is *meant* to change outputs updates the digests: ``python -m tests.test_lifecycle_identity``
prints them for every run.
"""

from __future__ import annotations

import collections
import functools
import hashlib
import json
import sqlite3
import sys
import tempfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from auction_trader.config import AuctionConfig

START = "2024-01-01T00:00:00Z"
MINUTE_NS = 60_000_000_000
T0 = 1_704_067_200_000_000_000  # 2024-01-01 00:00 UTC, the sample's first instant
SHORT = ("rolling_window_minutes=60", "warmup_minutes=60", "spread_lookback_minutes=30")

#: name -> (overrides, start ns, end ns): the sample at the defaults, then short runs.
# "hold" (market entries, stops 150 ticks beyond the extreme, 3 % daily loss): a stop, TP1 then the
# stop at the entry price, the kill switch closing a position. "wide" (limit entries working 3
# minutes, a narrower value area, 15-minute hold): TP1, TP2, stops, time stops, a limit's rest at
# market, a flip (tests/test_positions_vs_oracle.py has these configurations on other markets).
HOLD = ("stop_buffer_ticks=150", "cooldown_minutes=1", "max_daily_loss=0.03", "max_hold_minutes=10",
        "accept_outside_k=2", "enable_retest_mode=false", "limit_order_timeout_minutes=3", "use_limit_for_entry=false")
WIDE = ("stop_buffer_ticks=150", "cooldown_minutes=0", "max_hold_minutes=15", "va_fraction=0.5", "limit_order_timeout_minutes=3")
RUNS = {
    "defaults": ((), None, None),
    "hold": ((*SHORT, *HOLD), T0, T0 + 100 * MINUTE_NS),
    "wide": ((*SHORT, *WIDE), T0, T0 + 375 * MINUTE_NS),
}  # fmt: skip

FILES = ("fills.parquet", "trades.parquet", "signals_1m.parquet", "features_1m.parquet", "alerts.json", "metrics.json")

# metrics.json re-pinned when the live node's config keys (monitoring.data_stale_seconds,
# minute_grace_ms) joined the config it dumps (and the run_id hashed from it); every other output
# kept its digest, and the metrics themselves are unchanged (checked by diffing the two files).
PINNED: dict[str, dict[str, str]] = {
    "defaults": {
        "fills.parquet": "311513f0d2154be5ec579266a328b625293a8c7e506f9c2c2cc9f0fcf3a11311",
        "trades.parquet": "35156dd5d0a8b9a872ef1f566d8546deae68084c844a74a4fb45c2d99833b4bb",
        "signals_1m.parquet": "67888cd437902806dfcdd562be62cff205a16ceb3af88411dd23f1fb16d46b73",
        "features_1m.parquet": "572b497890c6ac165a46b10b5583a9d0a0f6e950e98766ccd98de1986022e795",
        "alerts.json": "86755d1c213ff5dfd74c809cf752fcd386a381584915a7bd7347d90fd0f05491",
        "metrics.json": "2beb1c1e6ab4f9440103198ec84b85412488f6862d8250ba7e5c06867faf93a2",
        "execution.db:funding": "4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945",
        "execution.db:grid_search_results": "4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945",
        "execution.db:positions": "ab3ddebfda377afdb317f34612e8c64bd999ea43832adde8443719b3d644ee5c",
        "execution.db:sqlite_sequence": "41fc7493fdcb4d93fbb5272ea9de8e59e648a5d9e2fd72ae344ef8ee8c82f10f",
        "execution.db:state_snapshots": "9bc6ba93c2d994bd1f3a352945baeff259dd56bd562970e10b9ea643fc5747bb",
    },
    "hold": {
        "fills.parquet": "343006ed67d10084a7446e98b1519f42673748b21c1a344d3a6694c9b61333a4",
        "trades.parquet": "43ba0788a7e44ba88b4111e13db993e50dfb56551a1a79032183a8df800fb402",
        "signals_1m.parquet": "11fe5fc807e2cce4d655c8746b6ea0c2a108575c3bacda73c1a97d5e6bcccbfa",
        "features_1m.parquet": "6cc8b7d41654253705e09883d1130b4be5226182354094642b81249c7c872609",
        "alerts.json": "f19e372a9affa0d8726cfeface48c4406f2f2a9e71f7ece8f25a02bb9a3c85e7",
        "metrics.json": "dc1f2ae82ddb76825549960403912d8436544f724432d4d65ffa3242d2a24d67",
        "execution.db:funding": "4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945",
        "execution.db:grid_search_results": "4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945",
        "execution.db:positions": "3de1a889dd550cb0b9c32bdc125ce57c9f5a2ba923c96bd98e36613684fcc0c5",
        "execution.db:sqlite_sequence": "a8342d9eb723545eb70006da3eb33081fd7089bfbffb52ea2633b4aaa5849432",
        "execution.db:state_snapshots": "dce108bf754552d06c8bb0e46b6116078ef286efb255f5cf2d8a4b900849ffd3",
    },
    "wide": {
        "fills.parquet": "21a95305756d3ab60a34ecb667a25c66d59a7384b278d0777a27b547d4800ff4",
        "trades.parquet": "d46238782a1e641e369f7f1207dc692d6c6402e82c94f88d4633b3c39aadb8f7",
        "signals_1m.parquet": "cb7aa37e4c64761c73404812da6329a68068c78d66a2cee3013705c8dbfb32a9",
        "features_1m.parquet": "36abe3412eb05cd2f4ee697c3e8feb2ed1b636bd452395c227efbb8cc7a690e6",
        "alerts.json": "dd8d40fa8710e5794eed78d64d2075d8c245af17cd4d7ece75f0223e1f77c14c",
        "metrics.json": "6f2fcfc8d6a4d64125e3a0c83122b5b2fb6c11d863049a307079733847609548",
        "execution.db:funding": "4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945",
        "execution.db:grid_search_results": "4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945",
        "execution.db:positions": "5d3248187ac3786546c273147197cc72842036e119ded43612e5ea43bfe8ce41",
        "execution.db:sqlite_sequence": "ae4f3741a75cf7341117b483c56bf5c55b36dc12f7c21837d2965099ad4a215c",
        "execution.db:state_snapshots": "da89af69c3e26c2dd15990a5da009488a0481a1a73fe62dff2da66d5ef7d1981",
    },
}


@functools.cache
def sample_catalog() -> Path:
    from auction_trader.data.synth import generate, parse_start, write_synthetic

    root = Path(_tmp_root()) / "sample"
    write_synthetic(root, generate(10.0, 42, parse_start(START)))
    return root


@functools.cache
def _tmp_root() -> str:
    import atexit
    import shutil

    root = tempfile.mkdtemp(prefix="lifecycle-identity-")
    atexit.register(shutil.rmtree, root, True)
    return root


@functools.cache
def run(name: str) -> Path:
    """The run directory of ``name`` (run once per session)."""
    from auction_trader.backtest.outputs import run_single

    overrides, start, end = RUNS[name]
    out = Path(_tmp_root()) / f"run-{name}"
    run_single(AuctionConfig().with_overrides(list(overrides)), sample_catalog(), start, end, out, report=False)
    return out


def digests(out: Path) -> dict[str, str]:
    """sha256 of each output file; metrics.json without the catalog's (temporary) path;
    execution.db as its rows, table by table (the SQLite file's bytes hold page layout)."""
    got = {}
    for name in FILES:
        path = out / name
        if not path.exists():
            continue
        data = path.read_bytes()
        if name == "metrics.json":
            doc = json.loads(data)
            doc["run"].pop("catalog")
            data = json.dumps(doc, sort_keys=True).encode()
        got[name] = hashlib.sha256(data).hexdigest()
    db = sqlite3.connect(out / "execution.db")
    try:
        for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"):
            rows = db.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall()  # noqa: S608 (names from the schema)
            got[f"execution.db:{table}"] = hashlib.sha256(json.dumps(rows).encode()).hexdigest()
    finally:
        db.close()
    return got


@pytest.mark.parametrize("name", list(RUNS))
def test_outputs_are_byte_identical_to_the_pinned_run(name):
    assert digests(run(name)) == PINNED[name]


def paths_taken(out: Path, limit_entries: bool) -> set[str]:
    """Which lifecycle paths a run took, read from its fills and signals."""
    fills = pq.read_table(out / "fills.parquet").to_pylist()
    signals = pq.read_table(out / "signals_1m.parquet").to_pylist()
    taken = set()
    by_trade = collections.defaultdict(list)
    for f in fills:
        by_trade[f["signal_ts_min"]].append(f)
        if f["purpose"] == "entry":
            taken.add(f"entry_{f['order_type'].lower()}")
        elif f["purpose"] in ("stop", "tp1", "tp2", "time", "inside", "flip", "kill"):
            taken.add(f["purpose"])
    planned_stop = {s["ts_min"]: json.loads(s["feature_snapshot"]).get("stop") for s in signals}
    for signal_ts, trade in by_trade.items():
        kinds = [f["order_type"] for f in trade if f["purpose"] == "entry"]
        if limit_entries and "MARKET" in kinds:  # the entry was a limit: this is its rest after the timeout
            taken.add("limit_timeout_remainder")
        entries = [f for f in trade if f["purpose"] == "entry"]
        stops = [f for f in trade if f["purpose"] == "stop"]
        plan = planned_stop.get(signal_ts)
        if entries and stops and plan is not None and any(f["purpose"] == "tp1" for f in trade):
            # after TP1 the stop sits at the entry price: it fills nearer the entry than the plan's stop
            entry = sum(f["price"] * f["qty"] for f in entries) / sum(f["qty"] for f in entries)
            if all(abs(f["price"] - entry) < abs(f["price"] - plan) for f in stops):
                taken.add("stop_at_entry_after_tp1")
    for s in signals:
        if s["reason_code"].startswith("FLIP:"):
            taken.add("flip_signal")
    return taken


def test_the_runs_take_every_lifecycle_path():
    taken = set().union(*(paths_taken(run(name), AuctionConfig().with_overrides(list(RUNS[name][0])).execution.use_limit_for_entry) for name in RUNS))
    wanted = {"entry_limit", "entry_market", "limit_timeout_remainder", "stop", "tp1", "tp2", "time", "flip", "kill", "stop_at_entry_after_tp1"}
    assert wanted <= taken, f"no run takes {sorted(wanted - taken)}"


if __name__ == "__main__":  # print the digests of every run (to pin a change meant to change outputs)
    names = sys.argv[1:] or list(RUNS)
    print(json.dumps({name: digests(run(name)) for name in names}, indent=4))


def test_the_core_imports_no_nautilus():
    """``auction_trader/core/`` stays framework-free: importing every module of it (in a fresh
    interpreter) loads no ``nautilus_trader`` module."""
    import subprocess

    import auction_trader.core

    modules = sorted(p.stem for p in Path(auction_trader.core.__file__).parent.glob("*.py") if p.stem != "__init__")
    assert {"trade", "lifecycle", "signals", "orders"} <= set(modules)
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module('auction_trader.core.' + m)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'nautilus_trader'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]", out.stdout
