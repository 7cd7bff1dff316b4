"""The control path end to end: ``run_live.py --paper`` against the Bybit stand-in on 127.0.0.1,
operated with ``run_live.py activate|deactivate|resolve|status``, killed with SIGKILL and restarted:
a halt from the last run holds until resolve, activation survives the kill, every answer is an alert."""

from __future__ import annotations

import time

import pytest

from auction_trader.live.control import cli
from auction_trader.live.store import LiveStore, StoreReader
from tests.live_harness import NodeProcess, endpoint_args, preseed, rows, set_args, standin  # noqa: F401 (fixture)

standin_mod = pytest.importorskip("tests.bybit_standin", reason="the Bybit stand-in (tests/bybit_standin) is not in this tree")

SETTINGS = ["warmup_minutes=3", "rolling_window_minutes=4", "spread_lookback_minutes=4", "min_va_bins=1", "minute_grace_ms=2000"]
REASON = "position mismatch: venue LONG 0.002, plan LONG 0.001"


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


def test_halt_survives_restart_until_resolve_and_activation_survives_kill_9(standin, tmp_path, capsys):  # noqa: F811
    data = tmp_path / "live"
    preseed(data, 4)
    with LiveStore(data) as store:  # the last run halted on a mismatch while active
        store.write_checkpoint({"node": {"mode": "paper", "active": True, "halted": True, "halt_reason": REASON}})
    args = ["--paper", "--data-dir", str(data), *endpoint_args(standin), *set_args(SETTINGS)]
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


def ops_node(args: list[str], env: dict) -> NodeProcess:
    """run_live.py through tests/live_ops_driver.py (reconciliation every ``AUCTION_TEST_RECONCILE_S``)."""
    return NodeProcess(args, env=env, module="tests.live_ops_driver")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(fn, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.2)
    return fn()


def test_live_position_changed_behind_the_nodes_back_halts_once_and_stays_halted(tmp_path, capsys):
    s = standin_mod.StandIn(seed=7, port=0).start()
    data = tmp_path / "live"
    args = ["--live", "--yes-i-mean-live", "--environment", "demo", "--data-dir", str(data), *endpoint_args(s),
            *set_args(SETTINGS)]
    # The webhook (a secret: its path is the token) points where nothing listens: alerts are retried.
    hook = f"http://127.0.0.1:{_free_port()}/hook/SENTINEL-hook-token-4d1c"
    env = {"BYBIT_API_KEY_DEMO": s.api_key, "BYBIT_API_SECRET_DEMO": s.api_secret, "AUCTION_TEST_RECONCILE_S": "1", "ALERT_WEBHOOK_URL": hook}
    d = ["--data-dir", str(data), "--timeout", "20"]
    node = restarted = None
    try:
        node = ops_node(args, env)
        assert node.wait_for(r"reconciliation at start: MATCH: venue matches the plan \(flat, 0 order\(s\)\)", 60), node.output[-3000:]
        s.set_position("0.002", "50000")  # a manual trade on the venue
        assert node.wait_for(r"control: mode live, observation, HALTED \(position mismatch: venue LONG 0\.002, plan flat\)", 30), node.output[-3000:]
        time.sleep(3)  # more checks would come every second: none while halted
        alerts = _wait(lambda: [a for a in rows(data, "alerts") if a["type"] in ("position_mismatch", "halt")], 5)
        assert [a["type"] for a in alerts] == ["position_mismatch", "halt"], alerts
        capsys.readouterr()
        assert cli(["status", *d]) == 0
        assert "halted           YES: position mismatch: venue LONG 0.002, plan flat" in capsys.readouterr().out
        node.proc.kill()
        node.proc.wait(10)

        restarted = ops_node(args, env)
        assert restarted.wait_for(r"HALTED \(from the last run\): position mismatch: venue LONG 0\.002, plan flat", 60), restarted.output[-3000:]
        s.set_position("0")  # the operator closes the manual position, then resolves
        assert cli(["resolve", *d]) == 0
        assert "resolve accepted: halt cleared (was: position mismatch: venue LONG 0.002, plan flat)" in capsys.readouterr().out
        time.sleep(3)  # checks resume: venue and plan agree now
        assert "HALTED (position" not in "\n".join(restarted.lines[-5:])
        assert s.orders_received() == 0  # the node never traded against the manual position
    finally:
        rc = restarted.stop() if restarted is not None else None
        if node is not None and node.proc.poll() is None:
            node.proc.kill()
        s.stop()
    assert rc == 0, restarted.output[-3000:]
    kinds = [a["type"] for a in rows(data, "alerts") if a["type"] in ("position_mismatch", "halt", "resolve")]
    assert kinds == ["position_mismatch", "halt", "resolve"]
    # the webhook never answered: all kept in the outbox, the first retried (the others wait behind it, in order)
    outbox = rows(data, "alerts")
    assert [a["delivered_ts_ms"] for a in outbox] == [None] * 3 and outbox[0]["attempts"] >= 2 and outbox[1]["attempts"] == 0
    # no secret anywhere: node output, store (with its WAL), recording
    for secret in (s.api_secret, "SENTINEL-hook-token-4d1c"):
        assert secret not in node.output and secret not in restarted.output
        for f in data.rglob("*"):
            if f.is_file():
                assert secret.encode() not in f.read_bytes(), f


def test_live_manual_fill_halts_at_once(tmp_path):
    """A market order placed on the venue by hand fills: the node halts on that fill alone (the
    periodic check is set far away here, so only the fill can be what halted it)."""
    s = standin_mod.StandIn(seed=7, port=0).start()
    data = tmp_path / "live"
    args = ["--live", "--yes-i-mean-live", "--environment", "demo", "--data-dir", str(data), *endpoint_args(s),
            *set_args(SETTINGS)]
    env = {"BYBIT_API_KEY_DEMO": s.api_key, "BYBIT_API_SECRET_DEMO": s.api_secret, "AUCTION_TEST_RECONCILE_S": "600"}
    node = None
    try:
        node = ops_node(args, env)
        assert node.wait_for(r"reconciliation at start: MATCH", 60), node.output[-3000:]
        s.seed_order(side="Buy", orderType="Market", qty="0.001", orderLinkId="by-hand-1")
        assert node.wait_for(r"HALTED \(fill of an order the plan does not own: by-hand-1 \(manual trade\?\)\)", 30), node.output[-3000:]
        assert s.orders_received() == 0
    finally:
        rc = node.stop() if node is not None else None
        s.stop()
    assert rc == 0, node.output[-3000:]
    assert [a["type"] for a in rows(data, "alerts") if a["type"] in ("position_mismatch", "halt")] == ["position_mismatch", "halt"]
    assert rows(data, "orders") == [], "an order placed by hand is not ours to store"
