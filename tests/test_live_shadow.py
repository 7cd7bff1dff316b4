"""``--shadow`` and feed health against the Bybit v5 stand-in on 127.0.0.1.

Shadow: paper executes, the real account is only read; a real position that paper does not hold is a
``shadow_divergence`` alert, and nothing is sent to the venue. The same run carries a sentinel
secret: it must appear in no output line, no file of the data directory and no stored row.

Feed health: a frozen feed raises ``data_feed_stale`` after ``data_stale_seconds`` and the gap is
marked in the recording when ticks come back.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from auction_trader.live.recorder import read_gaps
from tests.live_harness import NodeProcess, endpoint_args, preseed, rows

standin_mod = pytest.importorskip("tests.bybit_standin", reason="the Bybit stand-in (tests/bybit_standin) is not in this tree")

SENTINEL_KEY = "SENTINELKEY7f3a9c2e51"
SENTINEL_SECRET = "SENTINELSECRET0d9b8e7a6c5f4e3d2c1b"


@pytest.fixture
def standin():
    s = standin_mod.StandIn(seed=7, port=0, api_key=SENTINEL_KEY, api_secret=SENTINEL_SECRET).start()
    try:
        yield s
    finally:
        s.stop()


def _sets(*extra: str) -> list[str]:
    base = ["warmup_minutes=2", "rolling_window_minutes=3", "spread_lookback_minutes=3", "min_va_bins=1", "minute_grace_ms=1000", *extra]
    return [a for s in base for a in ("--set", s)]


def test_shadow_reports_a_divergence_sends_nothing_and_leaks_no_secret(standin, tmp_path):
    standin.set_position("0.250", "59000")  # the real account holds what paper does not
    data = tmp_path / "live"
    preseed(data, 3)
    env = {"BYBIT_API_KEY": SENTINEL_KEY, "BYBIT_API_SECRET": SENTINEL_SECRET}
    node = NodeProcess(["--shadow", "--data-dir", str(data), *endpoint_args(standin), *_sets("require_manual_activation=false"), "--log-level", "INFO"], env=env)
    try:
        assert node.wait_for(r"SHADOW DIVERGENCE", 80), node.output[-3000:]
    finally:
        rc = node.stop()
    assert rc == 0, node.output[-3000:]
    assert standin.orders_received() == 0, "shadow never sends an order"
    alerts = [a for a in rows(data, "alerts") if a["type"] == "shadow_divergence"]
    assert alerts and alerts[0]["mode"] == "shadow"
    details = json.loads(alerts[0]["details"])
    assert details["position"]["real"] == {"side": "LONG", "qty": 0.25}
    assert details["position"]["paper"]["side"] == "FLAT"
    # the sentinel secret (and the key) nowhere: output, files, rows
    assert SENTINEL_SECRET not in node.output and SENTINEL_KEY not in node.output
    for path in Path(data).rglob("*"):
        if path.is_file():
            blob = path.read_bytes()
            assert SENTINEL_SECRET.encode() not in blob and SENTINEL_KEY.encode() not in blob, path
    for table in ("alerts", "signals_1m", "node_status", "checkpoint", "orders", "fills"):
        for row in rows(data, table):
            assert SENTINEL_SECRET not in json.dumps(row, default=str), table


def test_a_frozen_feed_raises_the_stale_alert_and_marks_the_gap(standin, tmp_path):
    data = tmp_path / "live"
    node = NodeProcess(["--dry-run", "--data-dir", str(data), *endpoint_args(standin), *_sets("data_stale_seconds=2")])
    try:
        assert node.wait_for(r"warm-up: ", 30), node.output[-3000:]
        time.sleep(3)  # ticks flowing
        standin.freeze(True)
        stale = node.wait_for(r"DATA FEED STALE", 20)
        standin.freeze(False)
        assert stale, node.output[-3000:]
        assert node.wait_for(r"data feed back after a gap", 20), node.output[-3000:]
    finally:
        rc = node.stop(sig=signal.SIGTERM)  # SIGTERM stops it as cleanly as SIGINT
    assert rc == 0, node.output[-3000:]
    alerts = [a for a in rows(data, "alerts") if a["type"] == "data_feed_stale"]
    assert len(alerts) == 1 and alerts[0]["mode"] == "dry-run"
    gaps = read_gaps(data / "catalog")
    assert len(gaps) == 1 and gaps[0]["reason"] == "data_feed_stale"
    assert gaps[0]["end_ns"] - gaps[0]["start_ns"] >= 2_000_000_000
