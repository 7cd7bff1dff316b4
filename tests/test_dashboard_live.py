"""The dashboard over a live node's data dir (``LiveSource``, ``--data-dir``), against a fake node
that replays the fixture's backtest run minute by minute into a store and a growing recording
(tests/live_fixture.py). Every figure is held to the run's own: the same minutes, account, profile,
footprint and markers must come out of the live store as out of the run directory.
"""

from __future__ import annotations

import sqlite3
import time
import urllib.request
import warnings

import pytest

from auction_trader.config import AuctionConfig
from auction_trader.dashboard.app import create_app, serve_in_thread
from auction_trader.dashboard.live import LiveSource
from auction_trader.dashboard.source import ControlRefused
from tests.dashboard_fixture import SHORT, dash  # noqa: F401 (fixture)
from tests.live_fixture import FakeNode

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette's notice about httpx
    from fastapi.testclient import TestClient

FIRST = 20  # minutes closed before the test starts; warm-up needs 30
WARMUP = 30


@pytest.fixture
def node(dash, tmp_path):  # noqa: F811
    import json  # noqa: PLC0415

    starting = json.loads((dash.run / "metrics.json").read_text())["starting_balance"]
    n = FakeNode(dash.run, dash.catalog, tmp_path / "live", FIRST, WARMUP, starting)
    yield n
    n.stop()


@pytest.fixture
def config():
    return AuctionConfig().with_overrides([f"{k}={v}" for k, v in SHORT.items()])


@pytest.fixture(scope="module")
def backtest(dash):  # noqa: F811
    with TestClient(create_app(dash.root)) as c:
        yield c


def _close(node: FakeNode, upto: int) -> None:
    while node.n < upto:
        node.close_minute()


def test_minutes_and_account_equal_the_run(node, config, backtest):
    run = backtest.get("/api/minutes/run-a").json()
    k = next(i for i, p in enumerate(run["position"]) if p != 0) + 3  # into the first trade
    _close(node, k + 1)
    node.set_balance(run["balance"][k])  # what the venue reports now
    src = LiveSource(node.data_dir, config)
    live = src.minutes(None, None)
    assert live["ts_min"] == run["ts_min"][: k + 1]
    for col in ("close", "poc", "val", "vah", "of_1m", "qimb_close", "ambiguous_trade_frac_1m"):
        assert live[col] == pytest.approx(run[col][: k + 1], nan_ok=True), col
    for col in ("balance", "equity", "position", "heat", "day_pnl"):
        assert live[col] == pytest.approx(run[col][: k + 1], abs=1e-6), col
    assert any(p != 0 for p in live["position"])
    st = src.state(run["ts_min"][k])
    ref = backtest.get(f"/api/state/run-a?ts={run['ts_min'][k]}").json()
    assert st["position"] == ref["position"] and st["heat"] == pytest.approx(ref["heat"])
    assert st["node"]["mode"] == "paper"  # the node's own status at the head
    src.close()


def test_reads_are_incremental_and_skipped_when_nothing_changed(node, config):
    src = LiveSource(node.data_dir, config)
    asked: list[tuple[str, tuple]] = []
    query = src._reader.query
    src._reader.query = lambda sql, params=(): (asked.append((sql, params)), query(sql, params))[1]
    assert src.head() == node.head
    first = [a for a in asked if "features_1m" in a[0]]
    assert len(first) == 1 and first[0][1][0] < 0  # everything, once
    asked.clear()
    for _ in range(5):
        assert src.head() == node.head
    assert asked == []  # no commit since: not even a query
    before = node.head
    node.close_minute()
    node.close_minute()
    assert src.head() == before + 2 * 60_000
    feats = [a for a in asked if "features_1m" in a[0]]
    assert feats == [("SELECT * FROM features_1m WHERE ts_min > ? ORDER BY ts_min", (before,))]  # only the new rows
    assert len(src.features()["ts_min"]) == FIRST + 2
    src.close()


def test_profile_and_footprint_read_the_growing_recording_as_a_run_reads_its_catalog(node, config, backtest):
    src = LiveSource(node.data_dir, config)
    ts = node.head
    assert src.profile(ts) == backtest.get(f"/api/profile/run-a?ts={ts}").json()
    files_before = len(list((node.catalog / "data" / "trade_tick").rglob("*.parquet")))
    _close(node, FIRST + 12)
    assert len(list((node.catalog / "data" / "trade_tick").rglob("*.parquet"))) == files_before + 12
    time.sleep(1.05)  # the recording's file list is listed again at most once a second
    ts = node.head
    assert src.profile(ts) == backtest.get(f"/api/profile/run-a?ts={ts}").json()
    start = ts - 9 * 60_000
    fp = src.footprint(start, ts, "inferred", None, 24)
    assert fp == backtest.get(f"/api/footprint/run-a?start={start}&end={ts}&side=inferred&rows=24").json()
    assert fp["delta"] == pytest.approx(src.minutes(start, ts)["of_1m"], abs=1e-9)
    src.close()


def test_markers_and_alerts_carry_the_runs_reasons(node, config, backtest):
    _close(node, len(node.features))
    src = LiveSource(node.data_dir, config)
    live, run = src.markers(None, None), backtest.get("/api/markers/run-a").json()
    assert [(f["ts_ms"], f["purpose"], f["reason"]) for f in live["fills"]] == [(f["ts_ms"], f["purpose"], f["reason"]) for f in run["fills"]]
    assert live["signals"] == run["signals"]
    assert [(t["side"], t["net_pnl"], t["exit_reason"]) for t in live["trades"]] == [(t["side"], pytest.approx(t["net_pnl"]), t["exit_reason"]) for t in run["trades"]]
    alerts = src.alerts(None)
    assert [a["alert"] for a in alerts] == [a["alert"] for a in backtest.get("/api/alerts/run-a").json()]
    assert all(a["detail"]["message"] == a["alert"] for a in alerts)
    src.close()


def test_control_refused_before_warm_up_then_accepted_with_the_nodes_answers(node, config):
    src = LiveSource(node.data_dir, config)
    st = src.status()
    assert st["mode"] == "paper" and st["warmup"] == {"done": FIRST, "needed": WARMUP} and st["active"] is False
    refusal = f"warm-up incomplete: {FIRST} of {WARMUP} minutes"
    assert st["controls"]["activate"] == {"allowed": False, "reason": refusal}  # the hint, by the node's rules
    with TestClient(create_app(None, live=src)) as c:
        r = c.post("/api/control/live?command=activate")
        assert r.status_code == 409 and r.json()["reason"] == refusal  # the node's answer
        _close(node, WARMUP)
        assert src.status()["controls"]["activate"]["allowed"] is True
        r = c.post("/api/control/live?command=activate")
        assert r.status_code == 200 and r.json()["status"] == "accepted" and r.json()["answer"] == "active: paper trading enabled"
        assert src.status()["active"] is True
        assert c.post("/api/control/live?command=resolve").json()["reason"] == "not halted; nothing to resolve"
        node.halt("position mismatch")
        assert src.status()["controls"]["resolve"]["allowed"] is True
        r = c.post("/api/control/live?command=resolve")
        assert r.status_code == 200 and r.json()["answer"].startswith("halt cleared (was: position mismatch)")
        assert c.post("/api/control/live?command=explode").status_code == 400
    rows = sqlite3.connect(node.db_path).execute("SELECT command, status FROM control ORDER BY id").fetchall()
    assert rows == [("activate", "refused"), ("activate", "accepted"), ("resolve", "refused"), ("resolve", "accepted")]
    src.close()


def test_control_without_an_answer_is_withdrawn_and_a_stale_node_is_refused_without_a_row(node, config):
    src = LiveSource(node.data_dir, config)
    node.answer_controls = False
    began = time.monotonic()
    with pytest.raises(ControlRefused, match=r"no answer from the node within 0.3 s: is it running\? \(the command was withdrawn\)"):
        src.control("deactivate", wait_s=0.3)
    assert time.monotonic() - began < 5
    db = sqlite3.connect(node.db_path)
    assert db.execute("SELECT command, status FROM control").fetchall() == [("deactivate", "refused")]  # withdrawn: no node acts on it later
    with node.lock:
        node.db.execute("UPDATE node_status SET ts_ms = ts_ms - 600000")
    with pytest.raises(ControlRefused, match="s old: is it running"):
        src.control("activate")
    assert db.execute("SELECT COUNT(*) FROM control").fetchone()[0] == 1  # nothing written for a node that is gone
    src.close()


def test_websocket_pushes_new_minutes_and_status_changes(node, config):
    src = LiveSource(node.data_dir, config)
    with TestClient(create_app(None, live=src)) as c:
        assert c.get("/api/library").json()["live"][0]["warmup"] == {"done": FIRST, "needed": WARMUP}
        with c.websocket_connect("/ws/run/live") as ws:
            hello = ws.receive_json()
            assert hello["head"] == node.head and hello["status"]["controls"]["activate"]["allowed"] is False
            node.close_minute()
            node.close_minute()
            msg = ws.receive_json()
            while msg["type"] != "minutes":  # a status push may come first
                msg = ws.receive_json()
            got = msg["minutes"]["ts_min"]
            while got[-1] < node.head:
                got += ws.receive_json()["minutes"]["ts_min"]
            assert got == [node.head - 60_000, node.head]
            node.halt("daily loss limit")
            msg = ws.receive_json()
            assert msg["type"] == "status" and msg["status"]["halted"] is True and msg["status"]["halt_reason"] == "daily loss limit"
            assert msg["status"]["controls"]["resolve"]["allowed"] is True
    src.close()


def test_serve_in_thread_for_run_live(node, config):
    handle = serve_in_thread(node.data_dir, "127.0.0.1", 0, config=config)
    try:
        assert handle.url == f"http://127.0.0.1:{handle.port}/run/live"
        import json  # noqa: PLC0415

        with urllib.request.urlopen(f"http://127.0.0.1:{handle.port}/api/run/live", timeout=10) as r:
            info = json.loads(r.read())
        assert info["kind"] == "live" and info["last_minute"] == node.head and info["status"]["mode"] == "paper"
        with urllib.request.urlopen(handle.url, timeout=10) as r:
            assert r.status == 200
    finally:
        handle.stop()
    assert not handle.thread.is_alive()
    with pytest.raises(ValueError, match="token"):
        serve_in_thread(node.data_dir, "0.0.0.0", 0, config=config)


def test_a_store_that_does_not_exist_yet(tmp_path, config):
    src = LiveSource(tmp_path, config)
    assert src.head() is None and src.status()["mode"] is None
    assert "is the node running" in src.status()["controls"]["activate"]["reason"]
    with TestClient(create_app(None, live=src)) as c:
        assert c.get("/api/run/live").json()["minutes"] == 0
        empty = c.get("/api/minutes/live").json()
        assert empty["ts_min"] == [] and empty["equity"] == []  # the page opens empty and waits
        assert c.get("/api/markers/live").json() == {"signals": [], "fills": [], "trades": []}
        assert c.post("/api/control/live?command=activate").status_code == 409


def test_cli_refuses_a_missing_data_dir_or_a_bad_config(tmp_path, capsys):
    from auction_trader.dashboard.__main__ import main  # noqa: PLC0415

    assert main(["--data-dir", str(tmp_path / "nope")]) == 1
    assert "--data-dir" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("value_area:\n  rolling_window_minutes: -3\n")
    assert main(["--data-dir", str(tmp_path), "--config", str(bad)]) == 1
    assert "rolling_window_minutes" in capsys.readouterr().err
