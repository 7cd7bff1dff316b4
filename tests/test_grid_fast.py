"""The grid's fast path (auction_trader/grid/fast.py) against the full replay (``--exact-replay``):
byte-identical stored metrics, fills, signals, positions, snapshots, alerts, features, funding
and minute marks, combination by combination, through the grid worker itself (``run_task``, whose
``metrics_json`` is the stored row).

Three synthetic seeds (2 h, 30-minute windows; seed 2 with silences, one across a minute boundary,
and stretches of trades without quotes) and configurations chosen so that, between them, the runs
flip, hit the time stop, trip the kill switch with a position open, close back inside, rest limit
take-profits, enter with limit and market orders, place orders without latency
(``fill_on_next_quote: false``, another venue shape: a new engine) and end with a position open;
``test_the_runs_take_every_path`` checks that they do, so the comparison is not vacuous. Nearly all of the time is the seven full
replays: 2.5-3.5 minutes measured at load average 10 on this 2-core machine (the whole suite
alongside it), far less when it is idle.
"""

from __future__ import annotations

import collections
import json
from pathlib import Path

import numpy as np
import pytest

from auction_trader.config import AuctionConfig
from auction_trader.data.synth import generate, write_synthetic
from auction_trader.grid import worker
from auction_trader.grid.fast import TickTape, skip_feed
from auction_trader.grid.worker import DataSpec, Task, run_task

T0 = int(np.datetime64("2024-01-01T06:30", "ns").astype(np.int64))  # 06:30-08:30: crosses the 08:00 funding
SHORT = ("rolling_window_minutes=30", "warmup_minutes=30", "spread_lookback_minutes=30", "min_va_bins=10")
CONFIGS = {
    # stops far away: positions live long enough for flips, the time stop and the kill switch
    "hold": ("stop_buffer_ticks=150", "cooldown_minutes=1", "max_daily_loss=0.03", "max_hold_minutes=10", "accept_outside_k=2",
             "enable_retest_mode=false", "limit_order_timeout_minutes=3", "use_limit_for_entry=false"),
    "wide": ("stop_buffer_ticks=150", "cooldown_minutes=0", "max_hold_minutes=15", "va_fraction=0.5", "limit_order_timeout_minutes=3",
             "use_limit_for_entry=false"),
    "far": ("stop_buffer_ticks=200", "cooldown_minutes=0", "max_daily_loss=0.5"),
    # resting limit take-profits, 2-tick slippage, a 2-minute time stop
    "tp-limits": ("use_market_for_exit=false", "slippage_ticks_entry=2", "slippage_ticks_exit=2", "max_hold_minutes=2", "cooldown_minutes=0"),
    "defaults": (),
    "no-latency": ("fill_on_next_quote=false", "risk_pct=0.05", "cooldown_minutes=0", "accept_outside_k=2", "enable_retest_mode=false"),
}  # fmt: skip
# "gaps": seed 2 with silences (one across a minute boundary) and stretches of trades without quotes
CASES = [(1, "defaults"), (1, "far"), (1, "wide"), (1, "tp-limits"), (1, "no-latency"), (3, "hold"), ("gaps", "far")]
MINUTE = 60_000_000_000
SILENT = [(50, 53.5), (70.998, 72.0005), (95.5, 97.25)]  # minutes after T0: no ticks at all
NO_QUOTES = [(80, 83), (100.25, 100.75)]  # trades, no quotes


def _outside(ts: np.ndarray, windows: list) -> np.ndarray:
    keep = np.ones(len(ts), bool)
    for a, b in windows:
        keep &= ~((ts >= T0 + int(a * MINUTE)) & (ts < T0 + int(b * MINUTE)))
    return np.flatnonzero(keep)


@pytest.fixture(scope="module")
def catalogs(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("grid-fast")
    out = {}
    for seed in (1, 3):
        out[seed] = root / f"seed{seed}"
        write_synthetic(out[seed], generate(2.0, seed, T0), AuctionConfig())
    market = generate(2.0, 2, T0)
    market.trades = market.trades.take(_outside(market.trades.ts_event, SILENT))
    market.quotes = market.quotes.take(_outside(market.quotes.ts_event, SILENT + NO_QUOTES))
    out["gaps"] = root / "gaps"
    write_synthetic(out["gaps"], market, AuctionConfig())
    return out


def _config(name: str) -> AuctionConfig:
    return AuctionConfig().with_overrides([*SHORT, *CONFIGS[name]])


def _run(catalog: Path, name: str, exact: bool) -> dict:
    """One combination through the grid worker, and everything the run produced."""
    config = _config(name)
    outcome = run_task(Task(0, f"{name}-{exact}", config, DataSpec.of(catalog, config.instrument_id, None, None), exact=exact))
    assert outcome.ok, outcome.metrics_json
    slot = worker._SLOT
    assert slot.fed is (not exact)
    ctx, strategy = slot.ctx, slot.ctx.strategy
    return {
        "metrics_json": outcome.metrics_json,
        "fills": [(r.fill.ts_event, r.fill.client_order_id.value, r.fill.venue_order_id.value, r.fill.trade_id.value, str(r.fill.last_px),
                   str(r.fill.last_qty), str(r.fill.commission), r.fill.liquidity_side.name, r.bid, r.ask, r.quote_ts) for r in ctx.venue.fills],
        "signals": json.dumps(strategy.signal_records(), sort_keys=True, default=str),
        "positions": json.dumps(strategy.position_records(), sort_keys=True, default=str),
        "snapshots": json.dumps(strategy.state_snapshots(), sort_keys=True),
        "alerts": json.dumps(strategy.alerts(), sort_keys=True),
        "features": {k: np.asarray(v).tobytes() for k, v in strategy.features_columns().items()},
        "funding": [e.as_row() for e in ctx.ledger.events],
        "minute_quotes": list(ctx.venue.minute_quotes),
        "denied": list(ctx.guard.denied),
        "restated": ctx.venue.restated,
    }  # fmt: skip


@pytest.fixture(scope="module")
def runs(catalogs) -> dict[tuple[int, str], tuple[dict, dict]]:
    """(seed, config) -> (full replay, fast path). Full replays first, so each process engine is
    reused across combinations of one kind as in a grid."""
    exact = {(seed, name): _run(catalogs[seed], name, exact=True) for seed, name in CASES}
    fast = {(seed, name): _run(catalogs[seed], name, exact=False) for seed, name in CASES}
    worker.release()
    return {case: (exact[case], fast[case]) for case in CASES}


@pytest.mark.parametrize(("seed", "name"), CASES, ids=[f"seed{s}-{n}" for s, n in CASES])
def test_fast_path_is_byte_identical_to_the_full_replay(runs, seed, name):
    exact, fast = runs[(seed, name)]
    for key in exact:
        assert fast[key] == exact[key], f"seed {seed}, {name}: {key} differs between the fast path and the full replay"
    doc = json.loads(exact["metrics_json"])
    assert doc["ticks"] > 100_000  # the metrics of a real run, not of an empty one
    assert exact["fills"], f"seed {seed}, {name}: no fills - nothing was compared"


def test_the_runs_take_every_path(runs):
    """Flips, time stops, the kill switch with a position open, exits back inside, cooldowns, stops,
    take-profits (market and resting limits): the comparison covers them. (Funding is compared too,
    but these runs happen to be flat at 08:00.)"""
    n = collections.Counter()
    for exact, _ in runs.values():
        for r in json.loads(exact["signals"]):
            n[r["reason_code"].split(":")[0]] += 1
        for p in json.loads(exact["positions"]):
            n[f"exit {p['exit_reason']}"] += 1
        n["resting limit fills"] += sum(f[7] == "MAKER" for f in exact["fills"])
    for path in ("FLIP", "EXIT_TIME_STOP", "EXIT_KILL_SWITCH", "EXIT_CLOSE_BACK_INSIDE", "KILL_SWITCH", "COOLDOWN", "IN_POSITION", "NO_TRADES",
                 "exit end_of_run", "exit flip", "exit time", "exit kill", "exit inside", "exit stop", "exit tp2", "resting limit fills"):
        assert n[path] >= 1, f"no run took the path {path!r}: {dict(n)}"


@pytest.mark.parametrize("catalog", [1, "gaps"])
def test_the_fast_path_skips_most_ticks(catalogs, catalog):
    """While idle, a chunk holds a handful of ticks per minute; while not, every tick."""
    from auction_trader.backtest.engine import load_data

    ticks = load_data(catalogs[catalog], AuctionConfig().instrument_id)[0]
    tape = TickTape.of(ticks)
    idle = list(skip_feed(tape, lambda: True))
    busy = list(skip_feed(tape, lambda: False))
    assert [t for chunk in busy for t in chunk] == ticks  # never idle: the full replay, in order
    kept = [t for chunk in idle for t in chunk]
    assert all(a.ts_init <= b.ts_init for a, b in zip(kept, kept[1:], strict=False)) and all(chunk for chunk in idle)
    assert kept[-1] is ticks[-1]
    assert len(kept) < len(ticks) / 25  # 120 minutes, a few ticks each (all trades of a minute without quotes), of ~150k
    # each chunk ends with the first tick after a minute boundary and the tick after it
    minute = 60_000_000_000
    positions = {id(t): i for i, t in enumerate(ticks)}
    for chunk in idle[:-1]:
        if len(chunk) == 1:  # a timer due before the next tick: one tick at a time
            continue
        b, c = positions[id(chunk[-2])], positions[id(chunk[-1])]
        assert c == b + 1
        assert (ticks[b].ts_init - 1) // minute * minute >= ticks[b - 1].ts_init  # a boundary in [tick before b, b)


def test_exact_replay_flag_reaches_the_grid(monkeypatch, tmp_path, catalogs):
    """``--exact-replay`` is a grid option; run_grid passes it to every task."""
    import auction_trader.grid.runner as runner
    from auction_trader.backtest.cli import main as backtest_main

    seen = []
    monkeypatch.setattr(runner, "execute", lambda tasks, **kw: seen.extend(tasks) or iter(()))
    grid = tmp_path / "grid.yaml"
    grid.write_text("set:\n  warmup_minutes: 30\ngrid:\n  risk_pct: [0.01, 0.02]\n")
    for flag, exact in (([], False), (["--exact-replay"], True)):
        seen.clear()
        backtest_main([str(grid), "--catalog", str(catalogs[1]), "--out", str(tmp_path / f"out-{exact}"), "--workers", "1", *flag])
        assert len(seen) == 2 and all(t.exact is exact for t in seen)
    assert backtest_main([str(Path(__file__).resolve().parents[1] / "configs" / "default.yaml"), "--catalog", str(catalogs[1]), "--exact-replay"]) == 1
