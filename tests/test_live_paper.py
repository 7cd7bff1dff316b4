"""``run_live.py --paper`` and ``--dry-run`` end to end against the Bybit v5 stand-in on 127.0.0.1.

Paper: the node warms up from a pre-seeded recording, a scripted signal source (the real
AuctionStrategy and SignalEngine, one entry forced at a chosen minute) trades on the paper venue,
every fill lands in the store, and the recording replayed through the backtest (``run_single``,
what run_backtest.py runs) gives the same fills - so the same P&L - up to the last tick paper saw.

Dry-run: zero orders reach the stand-in, and the signal log equals ``replay_signals`` over the
recorded ticks.
"""

from __future__ import annotations

import json
import re
import time

import pyarrow.parquet as pq
import pytest

from auction_trader.backtest.outputs import FILL_COLUMNS, run_single
from auction_trader.config import AuctionConfig
from auction_trader.features import load_ticks
from auction_trader.instrument import BTCUSDT
from auction_trader.replay import replay_signals
from tests.live_harness import NodeProcess, endpoint_args, minute_ms_after, preseed, rows
from tests.live_script import SCRIPT_ENV, ScriptedAuction

standin_mod = pytest.importorskip("tests.bybit_standin", reason="the Bybit stand-in (tests/bybit_standin) is not in this tree")

SETTINGS = [
    "warmup_minutes=3", "rolling_window_minutes=4", "spread_lookback_minutes=4", "min_va_bins=1",
    "require_manual_activation=false", "use_limit_for_entry=false", "minute_grace_ms=2000", "cooldown_minutes=0",
]  # fmt: skip


def _config() -> AuctionConfig:
    return AuctionConfig().with_overrides(SETTINGS)


def _sets() -> list[str]:
    return [a for s in SETTINGS for a in ("--set", s)]


@pytest.fixture
def standin():
    s = standin_mod.StandIn(seed=7, port=0).start()
    try:
        yield s
    finally:
        s.stop()


def test_paper_warms_up_from_the_recording_trades_and_matches_the_backtest(standin, tmp_path):
    data = tmp_path / "live"
    preseed(data, 4)
    script = {"enter_ts_min": minute_ms_after(6), "direction": 1, "stop_ticks": 40, "tp1_ticks": 2, "tp2_ticks": 5}
    node = NodeProcess(["--paper", "--data-dir", str(data), *endpoint_args(standin), *_sets()], env={SCRIPT_ENV: json.dumps(script)}, scripted=True)
    try:
        warm = node.wait_for(r"warm-up: (\d+) ticks .*; (\d+)/3 minutes covered", 30)
        assert warm, node.output[-3000:]
        assert int(warm.group(1)) > 100 and int(warm.group(2)) >= 3, "the pre-seeded recording covers the warm-up"
        entered = node.wait_for(r"\| ENTER_LONG SCRIPTED \|", 75)
        assert entered, node.output[-3000:]
        time.sleep(8)  # the entry fills on the next tick; TP1 two ticks away usually fills too
    finally:
        rc = node.stop()
    out = node.output
    assert rc == 0, out[-3000:]
    stopped = re.search(r"stopped: (\d+) ticks recorded, (\d+) late", out)
    assert stopped and int(stopped.group(1)) > 50, out[-2000:]
    assert int(stopped.group(2)) == 0, "parity below needs every recorded tick to have reached paper"
    assert standin.orders_received() == 0, "paper sends nothing to the venue"

    fills = rows(data, "fills")
    assert fills and all(f["mode"] == "paper" for f in fills)
    assert fills[0]["purpose"] == "entry" and fills[0]["side"] == "BUY" and fills[0]["order_type"] == "MARKET"
    signals = rows(data, "signals_1m")
    assert any(s["chosen_action"] == "ENTER_LONG" and s["ts_min"] == script["enter_ts_min"] for s in signals)

    # The recording through the backtest: the same fills, value for value, while paper was running.
    config = _config()
    result = run_single(config, data / "catalog", None, None, tmp_path / "bt", lambda c: ScriptedAuction(c, script), report=False, flatten_at_end=False)
    bt = pq.read_table(result.out_dir / "fills.parquet").to_pylist()
    last_fed = int(re.search(r"paper: \d+ ticks fed, last at (\d+)", out).group(1))
    bt = [f for f in bt if f["ts_event"] <= last_fed]
    paper = [{k: f[k] for k in FILL_COLUMNS} for f in fills]
    assert paper == [{k: f[k] for k in FILL_COLUMNS} for f in bt]
    assert sum(f["commission"] for f in paper) == pytest.approx(sum(f["commission"] for f in bt))


def test_dry_run_sends_no_order_and_decides_as_replay_signals(standin, tmp_path):
    data = tmp_path / "live"
    _, seeded_to = preseed(data, 4)
    node = NodeProcess(["--dry-run", "--data-dir", str(data), *endpoint_args(standin), *_sets()])
    try:
        assert node.wait_for(r"warm-up: \d+ ticks", 30), node.output[-3000:]
        # the first minute close after the start decides a minute that was (at least partly) live
        assert node.wait_for(r"^\d{4}-\d\d-\d\d \d\d:\d\d dry-run", 75), node.output[-3000:]
    finally:
        rc = node.stop()
    out = node.output
    assert rc == 0, out[-3000:]
    assert re.search(r"stopped: \d+ ticks recorded, 0 late", out), out[-2000:]
    assert standin.orders_received() == 0
    assert rows(data, "fills") == []
    stored = rows(data, "signals_1m")
    assert len(stored) >= 5, "warm-up minutes and live minutes are decided"
    assert max(s["ts_min"] for s in stored) * 1_000_000 >= seeded_to // 60_000_000_000 * 60_000_000_000, "a live minute was decided"
    replayed = replay_signals(load_ticks(data / "catalog", BTCUSDT.instrument_id), _config())
    by_min = {r["ts_min"]: r for r in replayed}
    columns = [c for c in replayed[0] if c in stored[0]]
    assert columns and "chosen_action" in columns and "feature_snapshot" in columns
    for s in stored:
        r = by_min[s["ts_min"]]
        assert {c: s[c] for c in columns} == {c: r[c] for c in columns}, s["ts_min"]
