"""run_live.py's refusals and help, the key lookup, warm-up coverage and the recording's retention:
the parts of the live node that need no sockets."""

from __future__ import annotations

import subprocess
import sys

from nautilus_trader.model.data import QuoteTick

from auction_trader.data.catalog import data_dir, file_intervals
from auction_trader.live.node import api_keys
from auction_trader.live.recorder import TickRecorder
from auction_trader.live.warmup import Coverage
from tests.live_harness import REPO

MIN = 60_000_000_000
ENV_CLEAN = {k: "" for k in ("BYBIT_API_KEY", "BYBIT_API_SECRET", "BYBIT_API_KEY_DEMO", "BYBIT_API_SECRET_DEMO", "BYBIT_API_KEY_TESTNET", "BYBIT_API_SECRET_TESTNET")}


def _run(*args: str, env: dict | None = None, stdin: str | None = None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, "run_live.py", *args], cwd=REPO, env={**os.environ, **ENV_CLEAN, **(env or {})}, capture_output=True, text=True, input=stdin, timeout=60)


def test_help_explains_modes_keys_and_warm_up():
    out = _run("--paper", "--help").stdout
    for text in ("--dry-run", "--paper", "--shadow", "--live", "BYBIT_API_KEY", "_DEMO", "--public-ws-url", "--warmup-catalog", "warmup_minutes", "activate", "--data-dir"):
        assert text in out, text


def test_live_refuses_without_keys_and_without_confirmation(tmp_path):
    no_keys = _run("--live", "--data-dir", str(tmp_path))
    assert no_keys.returncode == 1 and "BYBIT_API_KEY" in no_keys.stderr
    keys = {"BYBIT_API_KEY": "k" * 12, "BYBIT_API_SECRET": "s" * 24}
    unconfirmed = _run("--live", "--data-dir", str(tmp_path), env=keys, stdin="")
    assert unconfirmed.returncode == 1 and "--yes-i-mean-live" in unconfirmed.stderr
    assert "s" * 24 not in unconfirmed.stderr + unconfirmed.stdout
    shadow = _run("--shadow", "--environment", "demo", "--data-dir", str(tmp_path))
    assert shadow.returncode == 1 and "BYBIT_API_KEY_DEMO" in shadow.stderr


def test_api_keys_prefer_the_environment_variant():
    env = {"BYBIT_API_KEY": "main-k", "BYBIT_API_SECRET": "main-s", "BYBIT_API_KEY_DEMO": "demo-k", "BYBIT_API_SECRET_DEMO": "demo-s"}
    assert api_keys("demo", env) == ("demo-k", "demo-s")
    assert api_keys("testnet", env) == ("main-k", "main-s")
    assert api_keys("mainnet", {"BYBIT_API_KEY": "k"}) is None


def test_coverage_counts_complete_minutes_and_lists_gaps():
    c = Coverage(needed=4)
    base = 1000 * MIN
    for m in (0, 1, 3, 4):
        c.add(base + m * MIN + 5)
    now = base + 5 * MIN + 10  # minutes 1..4 are the last four complete ones
    assert c.covered(now) == 3 and not c.complete(now)
    assert c.gaps(base, now) == [(base + 2 * MIN, base + 3 * MIN)]
    c.add(base + 5 * MIN)
    assert c.covered(now + MIN) == 3 and not c.complete(now + MIN)  # minutes 2..5: 2 is missing
    c.add(base + 6 * MIN)
    assert c.covered(now + 2 * MIN) == 4 and c.complete(now + 2 * MIN)  # minutes 3..6: the gap rolled out


def test_recorder_writes_a_catalog_and_purges_past_the_retention(tmp_path):
    iid = "BTCUSDT-LINEAR.BYBIT"
    rec = TickRecorder(tmp_path / "catalog", iid, retention_hours=3.0)
    from nautilus_trader.model.identifiers import InstrumentId
    from nautilus_trader.model.objects import Price, Quantity

    def quote(ts):
        return QuoteTick(InstrumentId.from_str(iid), Price(100.0, 1), Price(100.1, 1), Quantity(1.0, 3), Quantity(1.0, 3), ts, ts)

    import time

    hour = 3600 * 10**9
    now = time.time_ns()
    old, new = now - 2 * hour, now - hour // 6
    for ts in (old, old + 1):
        rec.add(quote(ts))
    assert rec.sync()
    for ts in (new, new + 1):
        rec.add(quote(ts))
    assert rec.sync()
    files = file_intervals(data_dir(tmp_path / "catalog", QuoteTick, iid))
    assert [(a, b) for a, b, _ in files] == [(old, old + 1), (new, new + 1)]
    assert rec.purge(now + 3 * hour // 2) == 1  # 1.5 h later the 3.5 h old file goes, the newer one stays
    assert [(a, b) for a, b, _ in file_intervals(data_dir(tmp_path / "catalog", QuoteTick, iid))] == [(new, new + 1)]
    rec.close()


def test_shadow_compare_sizes_the_decision_on_the_real_account():
    import json as _json

    from auction_trader.adapters.bybit.rest import AccountView
    from auction_trader.config import AuctionConfig
    from auction_trader.live.shadow import compare

    config = AuctionConfig()  # risk 2 %, 10x
    signal = {"ts_min": 1, "chosen_action": "ENTER_LONG", "feature_snapshot": _json.dumps({"entry": 50_000.0, "stop": 49_500.0, "qty": 0.4})}
    flat = {"side": "FLAT", "qty": 0.0}
    # 10,000 x 2 % / 500 = 0.4 BTC (specv2 §20.1): the same account agrees
    assert compare(signal, flat, AccountView(10_000.0, 10_000.0, "FLAT", 0.0, None), config, 0.001) is None
    # twice the margin: 0.8 BTC where paper sized 0.4
    diff = compare(signal, flat, AccountView(20_000.0, 20_000.0, "FLAT", 0.0, None), config, 0.001)
    assert diff == {"decision": {"ts_min": 1, "side": "LONG", "paper": {"action": "ENTER_LONG", "qty": 0.4}, "real": {"action": "ENTER_LONG", "qty": 0.8, "available": 20_000.0}}}
    # no margin at all: the real account could not enter
    assert compare(signal, flat, AccountView(0.0, 0.0, "FLAT", 0.0, None), config, 0.001)["decision"]["real"]["action"] == "HOLD"
    # a position paper does not hold
    held = compare(None, flat, AccountView(10_000.0, 9_000.0, "SHORT", 0.1, 50_000.0), config, 0.001)
    assert held == {"position": {"paper": {"side": "FLAT", "qty": 0.0}, "real": {"side": "SHORT", "qty": 0.1}}}
