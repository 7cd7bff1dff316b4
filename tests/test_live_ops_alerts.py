"""Alert delivery against a local webhook receiver on 127.0.0.1 (free port): every type arrives,
failures are retried in order, nothing is lost while the receiver is down or across a kill -9."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from auction_trader.live.alerts import ALERT_NAMES, ALERT_TYPES, AlertSink, alert_type, mask_secrets, wait_delivered
from auction_trader.live.store import LiveStore, StoreReader

REPO = Path(__file__).resolve().parent.parent


class Receiver:
    """A webhook that records every POST body it accepted; ``script`` lists the status codes of the
    first answers (then 200)."""

    def __init__(self, port: int = 0, script: list[int] | None = None) -> None:
        self.accepted: list[dict] = []
        self.answers: list[int] = []
        self.script = list(script or [])
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                code = outer.script.pop(0) if outer.script else 200
                outer.answers.append(code)
                if code == 200:
                    outer.accepted.append(body)
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def wait_for(self, n: int, timeout: float = 15.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while len(self.accepted) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.accepted

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def receivers():
    started: list[Receiver] = []

    def start(**kw) -> Receiver:
        r = Receiver(**kw)
        started.append(r)
        return r

    yield start
    for r in started:
        r.stop()


def _down_port() -> int:
    """A port on which nothing listens (a receiver can be started on it later)."""
    r = Receiver()
    port = r.port
    r.stop()
    return port


def test_every_alert_type_arrives_with_the_contract_fields(tmp_path, receivers):
    rx = receivers()
    store = LiveStore(tmp_path)
    sink = AlertSink(store, "paper", rx.url, backoff_initial=0.05)
    try:
        for i, kind in enumerate(ALERT_TYPES):
            sink.emit(kind, f"{kind} happened", {"n": i, "price": 100.5}, ts_ms=1_767_225_600_000 + i)
        got = rx.wait_for(len(ALERT_TYPES))
        assert [g["type"] for g in got] == list(ALERT_TYPES)
        first = got[0]
        assert set(first) == {"id", "type", "ts", "mode", "message", "details"}
        assert first["ts"] == "2026-01-01T00:00:00.000Z"
        assert datetime.fromisoformat(got[5]["ts"]).timestamp() == 1_767_225_600.005
        assert (first["mode"], first["message"], first["details"]) == ("paper", "kill_switch happened", {"n": 0, "price": 100.5})
        assert wait_delivered(store, 5)
        rows = store.rows("alerts")
        assert all(r["delivered_ts_ms"] is not None and r["attempts"] == 1 for r in rows)
        assert [r["id"] for r in rows] == [g["id"] for g in got]
    finally:
        sink.close()
        store.close()


def test_spec_and_strategy_names_map_to_types():
    assert alert_type("Kill switch activated") == "kill_switch"
    assert alert_type("VA invalid") == "va_invalid"
    assert alert_type("high ambiguous fraction") == "high_ambiguity"
    assert alert_type("entry remainder trimmed to the leverage cap") == "leverage_cap"
    assert set(ALERT_NAMES.values()) <= set(ALERT_TYPES)
    # specv2 §15.2's seven plus halt / resolve / activation
    assert {"data_feed_stale", "kill_switch", "va_invalid", "high_ambiguity", "position_mismatch", "shadow_divergence", "leverage_cap",
            "halt", "resolve", "activation"} <= set(ALERT_TYPES)
    with pytest.raises(ValueError, match="unknown alert type 'kill swich'"):
        alert_type("kill swich")


def test_strategy_rows_are_emitted(tmp_path):
    store = LiveStore(tmp_path)
    sink = AlertSink(store, "dry_run", None)  # no webhook: stored and logged only
    sink.emit_strategy({"ts_ms": 60_000, "alert": "VA invalid", "detail": json.dumps({"va_bin_count": 12})})
    store.flush()
    [row] = store.rows("alerts")
    assert (row["type"], row["message"], json.loads(row["details"]), row["delivered_ts_ms"]) == ("va_invalid", "VA invalid", {"va_bin_count": 12}, None)
    sink.close()
    store.close()


def test_500_twice_then_200_each_alert_once_in_order(tmp_path, receivers):
    rx = receivers(script=[500, 500])
    store = LiveStore(tmp_path)
    sink = AlertSink(store, "live", rx.url, backoff_initial=0.05, backoff_max=0.2)
    try:
        for i in range(4):
            sink.emit("halt", f"alert {i}", {"i": i})
        got = rx.wait_for(4)
        time.sleep(0.3)  # a duplicate would show up by now
        assert [g["message"] for g in rx.accepted] == ["alert 0", "alert 1", "alert 2", "alert 3"]
        assert rx.answers == [500, 500, 200, 200, 200, 200]
        assert wait_delivered(store, 5)
        assert [r["attempts"] for r in store.rows("alerts")] == [3, 1, 1, 1]
        assert sink.failed_attempts == 2 and sink.delivered == 4
        assert len(got) == 4
    finally:
        sink.close()
        store.close()


def test_receiver_down_for_a_while_nothing_lost_order_kept(tmp_path, receivers):
    port = _down_port()
    store = LiveStore(tmp_path)
    sink = AlertSink(store, "live", f"http://127.0.0.1:{port}/hook", backoff_initial=0.05, backoff_max=0.3)
    try:
        t0 = time.monotonic()
        for i in range(5):
            sink.emit("data_feed_stale", f"gap {i}", {"seconds": 10 + i})
            time.sleep(0.1)
        while time.monotonic() - t0 < 2.0:  # the receiver stays down ~2 s
            time.sleep(0.05)
        assert sink.delivered == 0 and sink.failed_attempts >= 3
        rx = receivers(port=port)
        got = rx.wait_for(5)
        assert [g["message"] for g in got] == [f"gap {i}" for i in range(5)]
        time.sleep(0.3)
        assert len(rx.accepted) == 5
        assert wait_delivered(store, 5)
    finally:
        sink.close()
        store.close()


_CHILD = """
import sys, time
from auction_trader.live.store import LiveStore
from auction_trader.live.alerts import AlertSink
store = LiveStore(sys.argv[1])
sink = AlertSink(store, "paper", sys.argv[2], backoff_initial=0.05, backoff_max=0.2)
for i in range(3):
    sink.emit("position_mismatch", f"before restart {i}", {"i": i})
store.flush()
print("ready", flush=True)
time.sleep(60)
"""


def test_undelivered_alerts_survive_kill_9_and_go_first(tmp_path, receivers):
    port = _down_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(tmp_path), f"http://127.0.0.1:{port}/hook"], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        assert child.stdout.readline().strip() == "ready"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    with StoreReader(tmp_path) as r:
        assert [a["message"] for a in r.undelivered_alerts()] == [f"before restart {i}" for i in range(3)]
    rx = receivers(port=port)
    store = LiveStore(tmp_path)
    sink = AlertSink(store, "paper", rx.url, backoff_initial=0.05)
    try:
        sink.emit("resolve", "after restart", {})
        got = rx.wait_for(4)
        assert [g["message"] for g in got] == ["before restart 0", "before restart 1", "before restart 2", "after restart"]
        assert wait_delivered(store, 5)
    finally:
        sink.close()
        store.close()


def test_secrets_are_masked_and_the_url_never_logged(tmp_path, receivers, monkeypatch, caplog):
    sentinel = "SENTINEL-9f3c2a"
    port = _down_port()
    url = f"http://127.0.0.1:{port}/hook/{sentinel}"
    monkeypatch.setenv("BYBIT_API_SECRET", sentinel + "-api")
    monkeypatch.setenv("ALERT_WEBHOOK_URL", url)
    caplog.set_level(logging.DEBUG)
    store = LiveStore(tmp_path)
    sink = AlertSink(store, "live", backoff_initial=0.05, backoff_max=0.1)  # URL from the environment
    try:
        assert sink.webhook_configured
        sink.emit("halt", f"key {sentinel}-api leaked?", {"secret": sentinel + "-api"})
        time.sleep(0.4)  # a few failed attempts get logged
        rx = receivers(port=port)
        [got] = rx.wait_for(1)
        assert sentinel not in json.dumps(got)
        assert got["message"] == "key *** leaked?" and got["details"] == {"secret": "***"}
        store.flush()
        assert sentinel not in caplog.text and "not delivered" in caplog.text
    finally:
        sink.close()
        store.close()
    assert sentinel.encode() not in (tmp_path / "execution.db").read_bytes()
    assert mask_secrets("a SENTINEL-9f3c2a-api b") == "a *** b"


def test_emit_does_not_wait_for_a_hanging_webhook(tmp_path):
    """A receiver that accepts connections and never answers: emit still returns at once."""
    import socket

    hang = socket.socket()
    hang.bind(("127.0.0.1", 0))
    hang.listen(16)
    store = LiveStore(tmp_path)
    sink = AlertSink(store, "live", f"http://127.0.0.1:{hang.getsockname()[1]}/", timeout=30, backoff_initial=0.05)
    try:
        sink.emit("halt", "first", {})
        time.sleep(0.2)  # delivery is now stuck inside the POST (for up to 30 s)
        for i in range(100):
            sink.emit("halt", f"more {i}", {})
        store.flush()
        # Had emit waited for the webhook, the stuck POST would have timed out and failed by now.
        assert (sink.delivered, sink.failed_attempts) == (0, 0)
        assert len(store.rows("alerts")) == 101
    finally:
        hang.close()  # the stuck POST ends with a reset
        sink.close(timeout=5)
        store.close()
