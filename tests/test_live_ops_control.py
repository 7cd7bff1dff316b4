"""Activation rules, halt persistence, and the control CLI against a fake node loop in a thread."""

from __future__ import annotations

import json
import os
import threading

import pytest

from auction_trader.live.control import (
    ACCEPTED,
    ANSWERED,
    NO_ANSWER,
    REFUSED,
    ControlPoller,
    ControlState,
    Controller,
    cli,
    permissions,
    send_command,
    start_mode_refusal,
)
from auction_trader.live.store import LiveStore, submit_control


class Alerts:
    def __init__(self):
        self.sent: list[tuple[str, str, dict]] = []

    def emit(self, kind, message, details=None, ts_ms=None):
        self.sent.append((kind, message, dict(details or {})))


def _controller(**state) -> tuple[Controller, Alerts, list]:
    alerts, changes = Alerts(), []
    s = ControlState(**{"mode": "paper", "warmup_needed": 240, **state})
    return Controller(s, alerts, on_change=lambda st: changes.append(st.state()), clock=lambda: 1_000), alerts, changes


# -- the rules ----------------------------------------------------------------------------------------


def test_activation_refused_before_warmup():
    c, alerts, changes = _controller(warmup_minutes=239)
    a = c.handle("activate")
    assert a.status == REFUSED and a.text == "warm-up incomplete: 239 of 240 minutes"
    assert not c.state.active and not c.may_enter() and changes == []
    assert alerts.sent[-1][0] == "activation" and "refused" in alerts.sent[-1][1]
    c.set_warmup(240)
    a = c.handle("activate")
    assert (a.status, a.text) == (ACCEPTED, "active: paper trading enabled")
    assert c.state.active and c.may_enter() and changes == [{"mode": "paper", "active": True, "halted": False, "halt_reason": None}]


def test_activation_accepted_after_warmup_then_idempotent_and_deactivate():
    c, alerts, changes = _controller(warmup_minutes=240)
    assert c.handle("activate").text == "active: paper trading enabled"
    assert c.handle("activate").text == "already active (paper)"
    assert changes == [{"mode": "paper", "active": True, "halted": False, "halt_reason": None}] * 2
    d = c.handle("deactivate")
    assert d.status == ACCEPTED and not c.state.active and not c.may_enter()
    assert [k for k, _, _ in alerts.sent] == ["activation"] * 3


def test_activation_refused_while_halted_and_resolve_clears():
    c, alerts, changes = _controller(warmup_minutes=300, active=True)
    assert c.halt("position mismatch: venue LONG 0.002, plan LONG 0.001", {"venue_qty": 0.002})
    assert not c.halt("another reason")  # the first reason stays
    assert c.state.halt_reason.startswith("position mismatch") and not c.may_enter()
    assert alerts.sent[0][0] == "halt" and alerts.sent[0][2]["venue_qty"] == 0.002 and len(alerts.sent) == 1
    a = c.handle("activate")
    assert a.status == REFUSED and a.text.startswith("halted (position mismatch") and "resolve" in a.text
    r = c.handle("resolve")
    assert r.status == ACCEPTED and "trading resumes (active)" in r.text
    assert not c.state.halted and c.may_enter()
    assert alerts.sent[-1][0] == "resolve"
    again = c.handle("resolve")
    assert again.status == REFUSED and again.text == "not halted; nothing to resolve"
    assert changes[-1] == {"mode": "paper", "active": True, "halted": False, "halt_reason": None}


def test_mode_change_requires_flat_and_a_node_that_can_switch():
    switched = []
    c, _, _ = _controller(warmup_minutes=240, flat=False)
    assert c.handle("activate", {"mode": "live"}).text == "a mode change (paper -> live) requires flat; a position is open"
    c.set_flat(True)
    assert c.handle("activate", {"mode": "live"}).text == "this node cannot change mode while running; restart it in --live"
    c.switch_mode = lambda old, new: switched.append((old, new))
    a = c.handle("activate", {"mode": "shadow"})
    assert (a.status, c.state.mode, c.state.active, switched) == (ACCEPTED, "shadow", True, [("paper", "shadow")])
    c.switch_mode = lambda old, new: (_ for _ in ()).throw(RuntimeError("no API keys in the environment"))
    c.handle("deactivate")
    assert c.handle("activate", {"mode": "live"}).text == "mode change shadow -> live failed: no API keys in the environment"
    assert c.state.mode == "shadow" and not c.state.active
    assert c.handle("activate", {"mode": "warp"}).text.startswith("unknown mode 'warp'")


def test_dry_run_never_trades():
    c, _, _ = _controller(mode="dry_run", warmup_minutes=240)
    a = c.handle("activate")
    assert a.status == REFUSED and "dry-run" in a.text and not c.may_enter()


def test_status_is_an_answer_without_an_alert():
    c, alerts, _ = _controller(warmup_minutes=12)
    c.describe = lambda: {"position": {"side": "LONG", "qty": 0.001}, "balance": 1000.5}
    a = c.handle("status")
    assert a.status == ANSWERED and alerts.sent == []
    lines = dict(line.split(None, 1) if " " in line else (line, "") for line in a.text.replace("entries allowed", "entries_allowed").replace("warm-up", "warmup").splitlines())
    assert lines["mode"].strip() == "paper" and lines["warmup"].strip() == "12/240 min" and lines["balance"].strip() == "1,000.5"
    assert json.loads(lines["position"]) == {"qty": 0.001, "side": "LONG"}


def test_restart_keeps_the_halt_and_the_activation_of_the_same_mode():
    saved = {"mode": "live", "active": True, "halted": True, "halt_reason": "position mismatch"}
    s = ControlState.initial("live", require_manual_activation=True, warmup_needed=240, saved=saved)
    assert (s.active, s.halted, s.halt_reason, s.may_enter()) == (True, True, "position mismatch", False)
    s = ControlState.initial("paper", require_manual_activation=True, warmup_needed=240, saved=saved)
    assert (s.active, s.halted) == (False, True)  # other mode: observation; the halt stays
    assert ControlState.initial("paper", require_manual_activation=False, warmup_needed=0).may_enter()
    assert not ControlState.initial("live", require_manual_activation=False, warmup_needed=0).active
    assert not ControlState.initial("paper", require_manual_activation=True, warmup_needed=0).active
    with pytest.raises(ValueError, match="mode must be one of"):
        ControlState(mode="real")


def test_start_in_another_mode_requires_flat():
    saved = {"mode": "paper", "active": True}
    assert start_mode_refusal(saved, "live", flat=True) is None
    assert start_mode_refusal(saved, "paper", flat=False) is None
    assert start_mode_refusal(None, "live", flat=False) is None
    why = start_mode_refusal(saved, "live", flat=False)
    assert "mode change requires flat" in why and "--paper" in why


# -- the poller and the CLI against a fake node --------------------------------------------------------


class FakeNode:
    """A node loop in a thread: store, controller, poller; halt and checkpoint like the real one."""

    def __init__(self, data_dir, warmup_minutes=240, flat=True, saved=None):
        self.store = LiveStore(data_dir)
        saved = saved if saved is not None else (self.store.checkpoint() or {}).get("node")
        state = ControlState.initial("paper", require_manual_activation=True, warmup_needed=240, saved=saved)
        state.warmup_minutes, state.flat = warmup_minutes, flat
        self.controller = Controller(state, Alerts(), on_change=self.checkpoint)
        self.poller = ControlPoller(self.store, self.controller.handle, interval=0.02)

    def checkpoint(self, state):
        self.store.write_checkpoint({"node": state.state(), "strategy": {}})
        self.store.write_node_status(mode=state.mode, active=state.active, halted=state.halted, halt_reason=state.halt_reason,
                                     warmup_minutes=state.warmup_minutes, warmup_needed=state.warmup_needed, pid=os.getpid())

    def __enter__(self):
        self.checkpoint(self.controller.state)
        self.poller.start()
        return self

    def __exit__(self, *exc):
        self.poller.stop()
        self.store.close()


def test_cli_status_activate_resolve_against_a_running_node(tmp_path, capsys):
    with FakeNode(tmp_path, warmup_minutes=100) as node:
        d = ["--data-dir", str(tmp_path), "--timeout", "10"]
        assert cli(["status", *d]) == 0
        out = capsys.readouterr().out
        assert "100/240 min" in out and "no (observation)" in out
        assert cli(["activate", *d]) == 1
        assert "activate refused: warm-up incomplete: 100 of 240 minutes" in capsys.readouterr().err
        node.controller.set_warmup(240)
        node.controller.halt("position mismatch")
        assert cli(["activate", *d]) == 1
        assert "halted (position mismatch)" in capsys.readouterr().err
        assert cli(["resolve", *d]) == 0
        assert "resolve accepted: halt cleared (was: position mismatch)" in capsys.readouterr().out
        assert cli(["activate", *d]) == 0
        assert capsys.readouterr().out.strip() == "activate accepted: active: paper trading enabled"
        assert cli(["status", *d]) == 0
        assert "entries allowed  yes" in capsys.readouterr().out
        node.store.flush()
        rows = node.store.rows("control")
        assert [(r["command"], r["status"]) for r in rows] == [("status", ANSWERED), ("activate", REFUSED), ("activate", REFUSED),
                                                                ("resolve", ACCEPTED), ("activate", ACCEPTED), ("status", ANSWERED)]
        assert node.store.node_status()["active"] is True
        assert [k for k, _, _ in node.controller.alerts.sent] == ["activation", "halt", "activation", "resolve", "activation"]


def test_halt_survives_a_restart_until_resolve(tmp_path, capsys):
    d = ["--data-dir", str(tmp_path), "--timeout", "10"]
    with FakeNode(tmp_path) as node:
        node.controller.halt("fill of a foreign order")
    with FakeNode(tmp_path) as node:  # the restarted node loads the checkpoint
        assert node.controller.state.halted and node.controller.state.halt_reason == "fill of a foreign order"
        assert cli(["activate", *d]) == 1
        assert cli(["resolve", *d]) == 0
    with FakeNode(tmp_path) as node:
        assert not node.controller.state.halted
    capsys.readouterr()


def test_cli_without_a_node_says_so_and_withdraws(tmp_path, capsys):
    with FakeNode(tmp_path) as node:
        node.controller.halt("position mismatch")
    # the node is gone: its last status row remains
    assert cli(["status", "--data-dir", str(tmp_path), "--timeout", "0.3"]) == 2
    captured = capsys.readouterr()
    assert "no node answered within 0.3 s" in captured.err and "not running or not answering" in captured.err
    assert "last status" in captured.out and "halt_reason" in captured.out and "position mismatch" in captured.out
    assert cli(["activate", "--data-dir", str(tmp_path), "--timeout", "0.3"]) == 2
    capsys.readouterr()
    # a node started later does not act on the withdrawn commands
    with FakeNode(tmp_path, warmup_minutes=240) as node:
        node.controller.handle("resolve")
        assert node.poller.poll_once() == 0
        assert not node.controller.state.active
        node.store.flush()
        assert {r["status"] for r in node.store.rows("control")} == {REFUSED}


def test_cli_errors(tmp_path, capsys):
    assert cli(["status", "--data-dir", str(tmp_path / "none")]) == 2
    assert "no live store" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        cli(["explode", "--data-dir", str(tmp_path)])
    assert e.value.code == 2


def test_poller_refuses_stale_commands_and_survives_a_failing_handler(tmp_path):
    store = LiveStore(tmp_path)
    try:
        old = submit_control(tmp_path, "activate", ts_ms=1_000)
        calls = []

        def handler(command, args):
            calls.append(command)
            if command == "deactivate":
                raise RuntimeError("boom")
            return Controller(ControlState(mode="paper")).handle(command, args)

        poller = ControlPoller(store, handler, max_age_s=30, clock=lambda: 100_000)
        fresh = submit_control(tmp_path, "deactivate", ts_ms=99_000)
        status = submit_control(tmp_path, "status", ts_ms=99_500)
        assert poller.poll_once() == 3
        assert poller.poll_once() == 0
        store.flush()
        assert calls == ["deactivate", "status"]
        r = {row["id"]: row for row in store.rows("control")}
        assert r[old]["status"] == REFUSED and r[old]["answer"].startswith("expired: sent 99 s ago")
        assert r[fresh]["answer"] == "the node failed to handle it: RuntimeError: boom"
        assert r[status]["status"] == ANSWERED and r[status]["answered_ts_ms"] == 100_000
        poller.stop()
    finally:
        store.close()


def test_concurrent_halt_and_commands_are_consistent():
    c, alerts, _ = _controller(warmup_minutes=240)
    barrier = threading.Barrier(2)

    def halter():
        barrier.wait()
        for _ in range(200):
            c.halt("mismatch")

    t = threading.Thread(target=halter)
    t.start()
    barrier.wait()
    for _ in range(200):
        c.handle("activate")
    t.join(10)
    assert c.state.halted and sum(k == "halt" for k, _, _ in alerts.sent) == 1
    assert not c.may_enter()


def test_dry_run_spelling_and_saved_mode():
    s = ControlState.initial("dry-run", require_manual_activation=False, warmup_needed=0,
                             saved={"mode": "dry_run", "active": True})
    assert s.mode == "dry_run" and s.active and not s.may_enter()
    assert start_mode_refusal({"mode": "dry-run"}, "dry_run", flat=False) is None


def test_permissions_from_a_status_row():
    row = {"mode": "live", "active": False, "halted": False, "halt_reason": None, "warmup_minutes": 100, "warmup_needed": 240,
           "position": {"side": "FLAT", "qty": 0.0}}
    p = permissions(row)
    assert p["activate"] == {"allowed": False, "reason": "warm-up incomplete: 100 of 240 minutes"}
    assert p["deactivate"]["allowed"] and p["resolve"] == {"allowed": False, "reason": "not halted; nothing to resolve"}
    p = permissions(row | {"warmup_minutes": 240, "halted": True, "halt_reason": "position mismatch"})
    assert p["activate"]["reason"] == "halted (position mismatch); run `resolve` first" and p["resolve"]["allowed"]
    assert permissions(row | {"warmup_minutes": 240})["activate"] == {"allowed": True, "reason": None}
    assert permissions(None)["activate"] == {"allowed": False, "reason": "no node status yet"}


def test_send_command_api(tmp_path):
    with FakeNode(tmp_path, warmup_minutes=240):
        r = send_command(tmp_path, "activate", timeout=10)
        assert (r.command, r.status, r.answer) == ("activate", ACCEPTED, "active: paper trading enabled")
    r = send_command(tmp_path, "deactivate", timeout=0.2)
    assert (r.status, r.answer) == (NO_ANSWER, None)
    with pytest.raises(ValueError, match="timeout must be positive"):
        send_command(tmp_path, "status", timeout=0)


def test_poller_refuses_a_command_read_after_its_senders_deadline(tmp_path):
    from auction_trader.live.control import DEADLINE_KEY

    store = LiveStore(tmp_path)
    try:
        late = submit_control(tmp_path, "activate", {DEADLINE_KEY: 50_000}, ts_ms=40_000)
        awaited = submit_control(tmp_path, "status", {DEADLINE_KEY: 70_000}, ts_ms=55_000)
        seen = []
        poller = ControlPoller(store, lambda c, a: (seen.append((c, a)), Controller(ControlState(mode="paper")).handle(c, a))[1],
                               clock=lambda: 60_000)
        assert poller.poll_once() == 2
        store.flush()
        r = {row["id"]: row for row in store.rows("control")}
        assert r[late]["status"] == REFUSED and r[late]["answer"] == "expired: sent 20 s ago and no longer awaited; not acted on"
        assert r[awaited]["status"] == ANSWERED
        assert seen == [("status", {})]  # the deadline is not an argument of the command
        poller.stop()
    finally:
        store.close()
