"""AuctionStrategy's decisions in a backtest against the independent oracle, every path.

``tests/signals_oracle.py`` reads ``docs/signals.md``; given the venue's answers (fills, funding,
rejected orders) it rebuilds the position, balance, kill switch, cooldown and time stop and decides
every minute. Here the real strategy runs on Nautilus's matching engine at the default sizes (2 %
risk, capped at 10x), with limit and with market entries, on several synthetic seeds and on the real
feeds, and its ``signals_1m`` must equal the oracle's on every decided minute: flags, action, reason,
the acceptance state, the position state, each entry's levels, quantity and the margin it was sized
on. Every protective fill is checked against the level the docs put it at (``check_exits``).

What the comparison is made to cover (``test_the_runs_exercise_every_in_position_path``): flips both
ways, TP1 then the stop at the entry price, TP2, stops, time stops and the trailing extension, a
breakout closing back inside, the kill switch with a position open, cooldowns after exits, entries
still working - and, where a test market is built for it, flips at the leverage cap.
"""

from __future__ import annotations

import collections
import functools
import json
import sqlite3
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from auction_trader.config import AuctionConfig
from tests.signals_oracle import Execution, check_exits, oracle_signals, trades_by_time
from tests.test_signals_vs_oracle import REAL, _real_catalog, _synthetic_catalog, _ticks, _tmp_root, differences, describe

BASE = ("rolling_window_minutes=60", "warmup_minutes=60", "spread_lookback_minutes=30")
# At the default sizes (2 % risk, capped at 10x) always. "defaults": the defaults otherwise (k = 3,
# retest mode). "hold": stops far away (150 ticks beyond the extreme) so positions live long
# enough to meet opposite signals (flips) and the time stop (10 minutes, trailing while a market
# exit would be ahead), acceptance at 2 closes without retests, a 3 % daily loss limit (the kill
# switch with a position open), limits working 3 minutes. "hold-wide": the same with a narrower
# value area and a 15-minute hold. "far": stops 200 ticks away, retest mode on (breakouts closing
# back inside). Each on the seeds where its paths occur; limit and market entries.
POSITION_CONFIGS = {
    "defaults": (),
    "hold": ("stop_buffer_ticks=150", "cooldown_minutes=1", "max_daily_loss=0.03", "max_hold_minutes=10",
             "accept_outside_k=2", "enable_retest_mode=false", "limit_order_timeout_minutes=3"),
    "hold-wide": ("stop_buffer_ticks=150", "cooldown_minutes=0", "max_hold_minutes=15", "va_fraction=0.5",
                  "limit_order_timeout_minutes=3"),
    "far": ("stop_buffer_ticks=200", "cooldown_minutes=0", "max_daily_loss=0.5"),
}  # fmt: skip
ENTRIES = ("limit", "market")
CASES = [(1, "defaults", "limit"), (3, "hold", "market"), (2, "hold-wide", "market"), (3, "far", "limit")]


@functools.cache
def _backtest(catalog: str, overrides: tuple, start_ns: int | None = None, end_ns: int | None = None) -> dict:
    """The strategy's run and the oracle's reading of it."""
    from auction_trader.backtest.outputs import run_single

    config = AuctionConfig().with_overrides(list(overrides))
    out = Path(_tmp_root()) / f"pos-{abs(hash((catalog, overrides, start_ns)))}"
    run_single(config, Path(catalog), start_ns, end_ns, out, report=False)
    signals = pq.read_table(out / "signals_1m.parquet").to_pylist()
    rows = pq.read_table(out / "features_1m.parquet").to_pylist()
    fills = pq.read_table(out / "fills.parquet").to_pylist()
    alerts = json.loads((out / "alerts.json").read_text())
    rejected = [(a["ts_ms"], json.loads(a["detail"])["client_order_id"]) for a in alerts if a["alert"] == "order rejected"]
    db = sqlite3.connect(out / "execution.db")
    funding = db.execute("SELECT ts_ms, amount FROM funding ORDER BY id").fetchall()
    db.close()
    ticks, by_minute = _ticks(catalog)
    boundary = {int(t) for t in np.r_[ticks.trade_ts, ticks.quote_ts] if t % 60_000_000_000 == 0}
    execution = Execution(fills, funding, rejected, boundary)
    tick = ticks.spec.tick_size
    oracle = oracle_signals(rows, by_minute, config, tick, execution)
    return {
        "config": config, "tick": tick, "engine": signals, "rows": rows, "trades": by_minute, "oracle": oracle,
        "fills": fills, "alerts": alerts,
        "exits": check_exits(execution, oracle, config, tick, _trades_by_time(catalog)),
    }  # fmt: skip


@functools.cache
def _trades_by_time(catalog: str) -> dict:
    ticks, _ = _ticks(catalog)
    return trades_by_time(ticks.trade_ts, ticks.trade_price)


def synthetic_backtest(seed: int, name: str, entry: str) -> dict:
    overrides = (*BASE, *POSITION_CONFIGS[name], f"use_limit_for_entry={entry == 'limit'}".lower())
    return _backtest(str(_synthetic_catalog(seed)), overrides)


def disagreements(run: dict, label: str) -> str:
    engine, oracle, rows = run["engine"], run["oracle"], run["rows"]
    assert [r["ts_min"] for r in engine] == [r["ts_min"] for r in oracle[: len(engine)]], f"{label}: minutes differ"
    assert len(engine) >= len(rows) - 1, f"{label}: {len(engine)} decisions for {len(rows)} minutes"
    bad = [(i, d) for i, (e, o) in enumerate(zip(engine, oracle)) if (d := differences(e, o, rows[i], run_has_sizes=True))]
    report = describe(label, bad, run) if bad else ""
    if run["exits"]:
        report += f"\n{label}: protective fills against the docs:\n  " + "\n  ".join(run["exits"])
    return report


@pytest.mark.parametrize(("seed", "name", "entry"), CASES, ids=[f"seed{s}-{n}-{e}" for s, n, e in CASES])
def test_backtest_vs_oracle(seed, name, entry):
    run = synthetic_backtest(seed, name, entry)
    report = disagreements(run, f"backtest seed {seed}, {name}, {entry} entries")
    assert not report, report


# The real feeds are two windows 20 days apart (2024-07-18 23:57 - 07-19 00:05 and 08-08 23:54 -
# 08-09 00:00): each is replayed on its own, as a trader would not hold a position through a hole
# of 20 days in the data.
REAL_WINDOWS = ((1_721_347_020_000_000_000, 1_721_347_560_000_000_000), (1_723_161_240_000_000_000, 1_723_161_660_000_000_000))


@pytest.mark.parametrize("entry", ENTRIES)
def test_real_feeds_backtest_vs_oracle(real_catalog, entry):
    entered = 0
    for start, end in REAL_WINDOWS:
        overrides = (*REAL, "accept_outside_k=1", f"use_limit_for_entry={entry == 'limit'}".lower())
        run = _backtest(real_catalog, overrides, start, end)
        report = disagreements(run, f"real feeds {start}..{end}, {entry} entries")
        assert not report, report
        entered += sum(r["chosen_action"].startswith("ENTER") for r in run["engine"])
    assert entered >= 2, "the real feeds trade"


@pytest.fixture
def real_catalog(binance_feeds) -> str:
    assert len(binance_feeds) == 3
    return _real_catalog(tuple(binance_feeds))


def _tally(run: dict) -> collections.Counter:
    n = collections.Counter()
    for e, o in zip(run["engine"], run["oracle"]):
        reason = e["reason_code"]
        head = reason.split(":")[0]
        n[head] += 1
        if head == "FLIP":
            n[f"flip to {e['chosen_action']}"] += 1
        n["trailing past max_hold"] += o["_trailing"]
        n["kill switch with a position"] += reason == "EXIT_KILL_SWITCH"
    fills = run["fills"]
    by_trade = collections.defaultdict(list)
    for f in fills:
        by_trade[f["signal_ts_min"]].append(f["purpose"])
    for purposes in by_trade.values():
        n["tp1 then stop at the entry"] += "tp1" in purposes and "stop" in purposes and purposes.index("stop") > purposes.index("tp1")
        for p in set(purposes) - {"entry"}:
            n[f"exit {p}"] += 1
    for setup in {f["setup"] for f in fills if f["purpose"] == "entry"}:
        n[f"{setup} trades"] += 1
    n["market entries"] += sum(f["purpose"] == "entry" and f["order_type"] == "MARKET" for f in fills)
    n["limit entries"] += sum(f["purpose"] == "entry" and f["order_type"] == "LIMIT" for f in fills)
    return n


def test_the_runs_exercise_every_in_position_path():
    """So that the comparison above is not vacuous."""
    n = collections.Counter()
    for seed, name, entry in CASES:
        n += _tally(synthetic_backtest(seed, name, entry))
    print(dict(sorted(n.items())))
    for path in ("flip to ENTER_LONG", "flip to ENTER_SHORT", "EXIT_TIME_STOP", "EXIT_CLOSE_BACK_INSIDE", "kill switch with a position",
                 "COOLDOWN", "IN_POSITION", "trailing past max_hold", "tp1 then stop at the entry", "exit tp2",
                 "exit stop", "exit time", "exit inside", "exit kill", "exit flip", "market entries", "limit entries",
                 "breakin trades", "failbreak trades", "breakout trades"):  # fmt: skip
        assert n[path] >= 1, (path, dict(n))
