"""The control path end to end: ``run_live.py --paper`` against the Bybit stand-in on 127.0.0.1,
operated with ``run_live.py activate|deactivate|resolve|status``, killed with SIGKILL and restarted:
a halt from the last run holds until resolve, activation survives the kill, every answer is an alert."""

from __future__ import annotations

import time

import pytest

from auction_trader.live.control import cli
from auction_trader.live.store import LiveStore, StoreReader
from tests.live_harness import NodeProcess, endpoint_args, preseed, rows

standin_mod = pytest.importorskip("tests.bybit_standin", reason="the Bybit stand-in (tests/bybit_standin) is not in this tree")

SETTINGS = ["warmup_minutes=3", "rolling_window_minutes=4", "spread_lookback_minutes=4", "min_va_bins=1", "minute_grace_ms=2000"]
REASON = "position mismatch: venue LONG 0.002, plan LONG 0.001"


@pytest.fixture
def standin():
    s = standin_mod.StandIn(seed=7, port=0).start()
    try:
        yield s
    finally:
        s.stop()


def _checkpoint_node(data, timeout: float = 10.0) -> dict | None:
    deadline = time.monotonic() + timeout
    state = None
    while time.monotonic() < deadline:
        with StoreReader(data) as r:
            state = (r.checkpoint() or {}).get("node")
        if state and not state["halted"] and state["active"]:
            return state
        time.sleep(0.1)
    return state


def test_halt_survives_restart_until_resolve_and_activation_survives_kill_9(standin, tmp_path, capsys):
    data = tmp_path / "live"
    preseed(data, 4)
    with LiveStore(data) as store:  # the last run halted on a mismatch while active
        store.write_checkpoint({"node": {"mode": "paper", "active": True, "halted": True, "halt_reason": REASON}})
    args = ["--paper", "--data-dir", str(data), *endpoint_args(standin), *[a for s in SETTINGS for a in ("--set", s)]]
    d = ["--data-dir", str(data), "--timeout", "20"]

    node = NodeProcess(args)
    try:
        assert node.wait_for(r"HALTED \(from the last run\): position mismatch: venue LONG 0\.002", 30), node.output[-3000:]
        assert node.wait_for(r"warm-up: \d+ ticks .*; [3-9]/3 minutes covered", 30), node.output[-3000:]
        capsys.readouterr()
        assert cli(["activate", *d]) == 1
        assert f"activate refused: halted ({REASON}); run `resolve` first" in capsys.readouterr().err
        assert cli(["resolve", *d]) == 0
        assert f"resolve accepted: halt cleared (was: {REASON}); trading resumes (active)" in capsys.readouterr().out
        assert cli(["deactivate", *d]) == 0
        assert cli(["activate", *d]) == 0
        assert "activate accepted: active: paper trading enabled" in capsys.readouterr().out
        assert _checkpoint_node(data) == {"mode": "paper", "active": True, "halted": False, "halt_reason": None}
    finally:
        node.proc.kill()  # kill -9: no shutdown code runs
        node.proc.wait(10)
        node._reader.join(5)

    restarted = NodeProcess(args)
    try:
        assert restarted.wait_for(r"active \(from the last run\)", 30), restarted.output[-3000:]
        assert cli(["status", *d]) == 0
        status = capsys.readouterr().out
        assert "active           yes" in status and "halted           no" in status and "entries allowed  yes" in status, status
        assert cli(["resolve", *d]) == 1
        assert "resolve refused: not halted; nothing to resolve" in capsys.readouterr().err
    finally:
        rc = restarted.stop()
    assert rc == 0, restarted.output[-3000:]
    answered = [(r["command"], r["status"]) for r in rows(data, "control")]
    assert answered == [("activate", "refused"), ("resolve", "accepted"), ("deactivate", "accepted"), ("activate", "accepted"),
                        ("status", "answered"), ("resolve", "refused")]
    kinds = [a["type"] for a in rows(data, "alerts")]
    assert kinds == ["activation", "resolve", "activation", "activation", "resolve"]
