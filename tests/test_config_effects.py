"""Every configuration key does something, shown here: two values of it, everything else equal, on
a market built to show it, give different outputs (DESIGN.md "Sizing and exits": every config key
has an effect a test shows, or it is removed with a clear error).

Tiers, cheapest first:

* ``features``: the per-minute feature table of a small synthetic market differs;
* ``signals``: the dry-run signal log (``replay_signals``) of that market differs;
* ``engine``: the signal engine's decisions with a position open (cooldown, flips, time stop) on
  hand-made minutes differ;
* ``backtest``: a grid over the key (``run_grid``, one scripted trade on a hand-made market through
  Nautilus's matching engine) stores different metrics; the two monitoring keys change the run's
  files (snapshots, features log) rather than its metrics;
* ``fixed``: a key the design fixes to one value (the instrument, its venue, the bar, cross margin):
  any other value is an error naming the key;
* ``grid``: ``backtest_workers`` sets how many processes a grid uses (results are identical by
  design: tests/test_grid.py);
* ``live``: ``require_manual_activation`` is the live node's (README "Configuration").
"""

from __future__ import annotations

import functools
import json
import sqlite3
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from auction_trader.config import LEAF_TO_GROUP, AuctionConfig, ConfigError, load_config
from tests.test_strategy import MIN, SEC, T0, Scripted, at, book, enter, market

NAN = float("nan")

FEATURES = {
    "rolling_window_minutes": (30, 10),
    "va_fraction": (0.7, 0.5),
    "base_bin_ticks": (1, 5),
    "alpha_bin": (0.25, 5.0),
    "bin_width_max_ticks": (200, 3),
    "rebucket_interval_minutes": (15, 7),
    "rebucket_change_pct": (0.25, 0.01),
    "min_va_bins": (10, 40),
    "max_quote_staleness_ms": (250, 10),
    "use_tick_rule_fallback": (True, False),
    "order_flow_source": ("inferred", "exchange"),
    "lookback_bvc": (60, 5),
    "qimb_ema_span_seconds": (60.0, 5.0),
    "spread_lookback_minutes": (10, 2),
}
# (value, other value, overrides that let the key decide: e.g. with the qimb test off, the order
# flow thresholds alone confirm initiative; with its normalised threshold out of reach, the
# absolute one decides)
OF_ONLY = ("use_qimb=false",)
SIGNALS = {
    "ambiguous_trade_frac_max": (0.35, 0.0, ()),
    "use_bvc": (False, True, ()),
    "use_qimb": (True, False, ()),
    "qimb_source": ("close", "ema", ()),
    "qimb_entry_min": (0.10, 0.6, ()),
    "qimb_breakout_min": (0.10, 0.9, ("accept_outside_k=1", "of_breakout_min=1000000", "of_breakout_min_norm=1")),
    "qimb_fail_min": (-0.10, -0.99, ("accept_outside_k=1", "of_fail_min=-1000000", "of_fail_min_norm=-1")),
    "of_entry_min": (0.0, 30.0, (*OF_ONLY, "of_entry_min_norm=1")),
    "of_entry_min_norm": (0.1, 0.6, (*OF_ONLY, "of_entry_min=1000000")),
    "of_breakout_min": (0.0, 30.0, (*OF_ONLY, "accept_outside_k=1", "of_breakout_min_norm=1")),
    "of_breakout_min_norm": (0.1, 0.6, (*OF_ONLY, "accept_outside_k=1", "of_breakout_min=1000000")),
    "of_fail_min": (0.0, 30.0, (*OF_ONLY, "accept_outside_k=1", "of_fail_min_norm=-1")),
    "of_fail_min_norm": (-0.1, 0.5, (*OF_ONLY, "accept_outside_k=1", "of_fail_min=-1000000")),
    "accept_outside_k": (3, 1, ()),
    "accept_inside_k": (1, 2, ()),
    "crossing_spread_mult": (1.0, 8.0, ()),
    "pullback_spread_mult": (1.0, 300.0, ("accept_outside_k=1",)),
    "stop_buffer_ticks": (2, 30, ()),
    "breakout_tp1_va_mult": (0.5, 0.8, ("accept_outside_k=1", "enable_retest_mode=false")),
    "breakout_tp2_va_mult": (1.0, 2.0, ("accept_outside_k=1", "enable_retest_mode=false")),
    "enable_retest_mode": (True, False, ("accept_outside_k=1",)),
    "warmup_minutes": (30, 60, ()),
}
ENGINE = {
    "cooldown_minutes": (3, 0),
    "enable_flip_on_signal": (True, False),
    "max_hold_minutes": (60, 2),
    "extend_if_profitable": (True, False),
}
BACKTEST = {
    "risk_pct": (0.001, 0.0005, ()),
    "max_leverage": (10.0, 1.0, ("risk_pct=0.002",)),
    "tp1_pct": (0.3, 0.6, ()),  # zipped with tp2_pct (the two must add up to 1)
    "tp2_pct": (0.7, 0.4, ()),
    "move_stop_to_breakeven_after_tp1": (True, False, ()),
    "max_daily_loss": (0.05, 0.0001, ()),
    "fill_on_next_quote": (True, False, ()),
    "slippage_ticks_entry": (1, 3, ()),
    "slippage_ticks_exit": (1, 3, ()),
    "taker_fee_bps": (5.0, 7.5, ()),
    "maker_fee_bps": (-1.0, 2.0, ("use_market_for_exit=false",)),
    "limit_order_timeout_minutes": (1, 3, ("use_limit_for_entry=true",)),
    "use_limit_for_entry": (False, True, ()),
    "use_market_for_exit": (True, False, ()),
    "funding_rate_8h_bps": (1.0, 5.0, ()),
    "starting_balance": (10_000.0, 20_000.0, ()),
}
OUTPUT_FILES = {
    "state_snapshot_interval_minutes": (5, 1),
    "log_features_every_minute": (True, False),
}
FIXED = {"instrument": "ETHUSDT", "exchange": "binance", "timeframe": "5m", "margin_mode": "isolated"}
GRID = {"backtest_workers": ("auto", 3)}
# the live node's: tests/test_live_shadow.py (data_stale_seconds), tests/test_live_paper_venue.py (the grace)
LIVE = {"require_manual_activation", "data_stale_seconds", "minute_grace_ms"}


def test_every_key_is_accounted_for():
    tiers = [FEATURES, SIGNALS, ENGINE, BACKTEST, OUTPUT_FILES, FIXED, GRID, LIVE]
    named = [k for t in tiers for k in t]
    assert len(named) == len(set(named)), "a key in two tiers"
    assert set(named) == set(LEAF_TO_GROUP), (set(LEAF_TO_GROUP) - set(named), set(named) - set(LEAF_TO_GROUP))


# -- features and signals on a small synthetic market --------------------------------------------------

MARKET_BASE = ["rolling_window_minutes=30", "warmup_minutes=30", "min_va_bins=10", "spread_lookback_minutes=10"]


@functools.cache
def _ticks():
    import tempfile

    from auction_trader.data.synth import generate, write_synthetic
    from auction_trader.features import load_ticks

    root = Path(tempfile.mkdtemp(prefix="config-effects-")) / "cat"
    write_synthetic(root, generate(3.0, 9, T0), AuctionConfig())
    return load_ticks(root, "BTCUSDT-LINEAR.BYBIT")


def _config(key: str, value, base=MARKET_BASE) -> AuctionConfig:
    return AuctionConfig().with_overrides([*base, f"{key}={json.dumps(value)}"])


@pytest.mark.parametrize("key", FEATURES)
def test_feature_keys_change_the_features(key):
    from auction_trader.features import compute

    base = [*MARKET_BASE, "use_bvc=true"]  # the BVC column exists only with it
    a, b = (compute(_ticks(), _config(key, v, base)) for v in FEATURES[key])
    changed = [c for c in a.column_names if not np.array_equal(np.asarray(a[c]), np.asarray(b[c]), equal_nan=True)]
    assert changed, f"{key} {FEATURES[key]}: no column changed"


@functools.cache
def _minutes():
    """The market's feature rows (BVC column included) and each minute's trade prices: what the
    signal engine reads; none of the signal keys changes them."""
    from types import SimpleNamespace

    from auction_trader.features import compute

    ticks = _ticks()
    rows = compute(ticks, AuctionConfig().with_overrides([*MARKET_BASE, "use_bvc=true"])).to_pylist()
    prices: dict[int, list] = {}
    for ts, p in zip(ticks.trade_ts.tolist(), ticks.trade_price.tolist()):
        prices.setdefault(ts // 60_000_000_000, []).append(p)
    return [SimpleNamespace(**r) for r in rows], prices


def _decisions(config: AuctionConfig) -> list[dict]:
    """The signal log of the market's minutes (the dry-run path: no positions)."""
    from auction_trader.core.minute import minute_from_row, trades_at
    from auction_trader.core.signals import SignalEngine

    rows, prices = _minutes()
    engine = SignalEngine(config, 0.1)
    return [engine.on_minute(minute_from_row(r, config, trades_at(prices.get(r.ts_min // 60_000, []))))[1] for r in rows]


@pytest.mark.parametrize("key", SIGNALS)
def test_signal_keys_change_the_signal_log(key):
    *values, extras = SIGNALS[key]
    a, b = (_decisions(_config(key, v, [*MARKET_BASE, *extras])) for v in values)
    assert a != b, f"{key} {values} with {extras}: the same decisions"


# -- the signal engine with a position ---------------------------------------------------------------------


def _engine_run(key: str, value) -> list[tuple]:
    """A long break-in at minute 0, filled at once; then quiet minutes - except, for
    ``enable_flip_on_signal``, a short break-in at minute 2, and for ``cooldown_minutes`` an exit
    reported at minute 2 and the long break-in again at minute 3. The open position is ahead of
    its fees from minute 3 on (the time stop's extension)."""
    from auction_trader.core.minute import Minute, trades_at
    from auction_trader.core.signals import Context, SignalEngine

    config = AuctionConfig().with_overrides(["warmup_minutes=0", "cooldown_minutes=3", "max_hold_minutes=2", f"{key}={json.dumps(value)}"])
    engine = SignalEngine(config, 0.1)

    def bar(t, o, h, lo, c, of, trades):
        return Minute(t * 60_000, o, h, lo, c, 100.0, 102.0, 98.0, True, of, of / 5, 0.0, 0.0, 0.1, trades_at(trades), c - 0.05, c + 0.05)

    long_poke = (98.5, 98.6, 97.8, 98.4, 1.0, [98.5, 98.0, 97.8, 98.4])
    short_poke = (101.5, 102.4, 101.4, 101.6, -1.0, [101.5, 102.0, 102.4, 101.6])
    quiet = (100.0, 100.1, 99.9, 100.0, 0.0, [100.0])
    shapes = {0: long_poke}
    if key == "enable_flip_on_signal":
        shapes[2] = short_poke
    if key == "cooldown_minutes":
        shapes[3] = long_poke
    out = []
    for t in range(8):
        if key == "cooldown_minutes" and t == 2 and engine.position is not None:
            engine.position_closed(2 * 60_000 + 30_000)  # stopped out at 00:02:30
        ahead = 5.0 if key == "extend_if_profitable" and t >= 3 else -5.0
        d, _ = engine.on_minute(bar(t, *shapes.get(t, quiet)), Context(net_unrealized=ahead))
        out.append((t, d.action, d.reason))
        if d.action.startswith("ENTER"):
            engine.position_opened(d.candidate, d.candidate.entry, (t + 1) * 60_000 + 1)
        elif d.action == "EXIT":
            engine.position_closed((t + 1) * 60_000 + 1)
    return out


@pytest.mark.parametrize("key", ENGINE)
def test_position_keys_change_the_decisions(key):
    a, b = (_engine_run(key, v) for v in ENGINE[key])
    assert a != b, f"{key}: {a}"


# -- a grid over the execution keys on a hand-made market ---------------------------------------------------

BT_BASE = ["warmup_minutes=0", "rolling_window_minutes=5", "min_va_bins=1", "spread_lookback_minutes=5", "cooldown_minutes=0",
           "max_hold_minutes=6", "risk_pct=0.001", "use_limit_for_entry=false"]  # fmt: skip
BT_START = T0 + 7 * 3_600 * SEC + 55 * MIN  # 07:55 UTC: the position is held through the 08:00 funding


@functools.cache
def _bt_catalog(root: str) -> Path:
    # bid 50,000.0 until 07:57:30, 50,012.0 until 08:00:30 (TP1 at 50,010 is touched and trades
    # there; the rest is held through the 08:00 funding), back to 50,000.0 until 08:03 (the stop at
    # the entry price after TP1), then 50,003.0 (the time stop).
    quotes, trades = book([(0, 150, 50_000.0), (150, 330, 50_012.0), (330, 480, 50_000.0), (480, 900, 50_003.0)], step=5, base=BT_START)
    # One quote between two of the book's, right after the entry's decision (07:57:00): the first
    # tick an order decided then meets (fill_on_next_quote), 5 USDT up.
    quotes.append((BT_START + 121 * SEC, 50_005.0, 1.0, 50_005.1, 1.0))
    return market(Path(root) / "cat", quotes, trades)


def _bt_script():
    start = BT_START // 1_000_000 + 60_000  # decided at the 07:57 close
    # A long referenced at 49,995.0 (a limit there never fills: after the timeout the rest goes at
    # market), stop 49,950.1, TP1 50,010.0, TP2 50,030.0
    return {start: enter(1, 49_995.0, 49_950.1, 50_010.0, 50_030.0)}


def _grid(tmp_path: Path, keys: dict, extras=()) -> list[dict]:
    from auction_trader.grid.runner import run_grid
    from auction_trader.grid.spec import load_grid

    base = tmp_path / "base.yaml"
    base.write_text(yaml.safe_dump({}))
    fixed = dict(o.split("=", 1) for o in (*BT_BASE, *extras))
    doc = {"base": "base.yaml", "set": {k: v for k, v in fixed.items() if k not in keys}, "zip": [{k: list(v) for k, v in keys.items()}]}
    doc["set"] = {k: yaml.safe_load(v) for k, v in doc["set"].items()}
    grid = tmp_path / "grid.yaml"
    grid.write_text(yaml.safe_dump(doc))
    spec = load_grid(grid)
    result = run_grid(spec, _bt_catalog(str(tmp_path)), out_dir=tmp_path / "out", workers=1, quiet=True,
                      strategy_factory=lambda c: Scripted(c, _bt_script()))  # fmt: skip
    assert result.failed == 0, [o.metrics_json for o in result.outcomes]
    rows = sqlite3.connect(tmp_path / "out" / "execution.db").execute("SELECT params_json, metrics_json FROM grid_search_results ORDER BY id").fetchall()
    by_value = {}
    for params, metrics in rows:
        p = json.loads(params)
        by_value[tuple(p[k] for k in keys)] = json.loads(metrics)
    return [by_value[tuple(yaml.safe_load(json.dumps(v[i])) for v in keys.values())] for i in range(2)]


@pytest.mark.parametrize("key", [k for k in BACKTEST if k != "tp2_pct"])
def test_a_grid_over_each_execution_key_changes_the_results(tmp_path, key):
    *values, extras = BACKTEST[key]
    keys = {key: values}
    if key == "tp1_pct":
        keys["tp2_pct"] = BACKTEST["tp2_pct"][:2]
    a, b = _grid(tmp_path, keys, extras)
    assert a["trades"] >= 1
    changed = sorted(k for k in a if a[k] != b.get(k) and k not in ("run",))
    assert changed, f"{keys}: identical metrics {a}"


@pytest.mark.parametrize("key", OUTPUT_FILES)
def test_the_monitoring_keys_change_what_a_run_writes(tmp_path, key):
    from auction_trader.backtest.outputs import run_single

    out = []
    for v in OUTPUT_FILES[key]:
        config = AuctionConfig().with_overrides([*BT_BASE, f"{key}={json.dumps(v)}"])
        run = run_single(config, _bt_catalog(str(tmp_path)), None, None, tmp_path / str(v), lambda c: Scripted(c, _bt_script()), report=False)
        files = sorted(p.name for p in run.out_dir.iterdir())
        snapshots = sqlite3.connect(run.out_dir / "execution.db").execute("SELECT count(*) FROM state_snapshots WHERE snapshot_type = 'PERIODIC'").fetchone()[0]
        out.append((files, snapshots))
    if key == "log_features_every_minute":
        assert "features_1m.parquet" in out[0][0] and "features_1m.parquet" not in out[1][0]
    else:
        assert out[1][1] > 3 * out[0][1] > 0, out


# -- fixed, grid, live ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", FIXED)
def test_fixed_keys_accept_their_one_value_and_name_any_other(key):
    with pytest.raises(ConfigError, match=key):
        load_config(None, [f"{key}={FIXED[key]}"])
    assert AuctionConfig().flat()[key] == load_config(None, [f"{key}={AuctionConfig().flat()[key]}"]).flat()[key]


def test_backtest_workers_sets_the_grids_processes():
    import os

    auto, three = (load_config(None, [f"backtest_workers={v}"]).backtest.workers for v in GRID["backtest_workers"])
    assert auto == max(1, (os.cpu_count() or 2) // 2) and three == 3


def test_require_manual_activation_is_the_live_nodes_and_said_so():
    """The backtest has nothing to activate; the key is validated here, and the README and the
    default configuration say that the live node acts on it."""
    from auction_trader.config import REPO_ROOT

    with pytest.raises(ConfigError, match="require_manual_activation"):
        load_config(None, ["require_manual_activation=maybe"])
    readme = (REPO_ROOT / "README.md").read_text()
    assert "require_manual_activation" in readme and "live node" in readme[readme.index("require_manual_activation") - 300 :][:800]
