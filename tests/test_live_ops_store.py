"""The live store: schema, queued writes, upserts, read-only readers, the control row from another
connection."""

from __future__ import annotations

import json
import sqlite3
import threading

import pytest

from auction_trader.live.store import (
    FILL_COLUMNS,
    LIVE_COLUMNS,
    LiveStore,
    StoreReader,
    submit_control,
)


@pytest.fixture
def store(tmp_path):
    s = LiveStore(tmp_path)
    yield s
    s.close()


def test_fill_columns_are_the_backtests():
    from auction_trader.backtest.outputs import FILL_COLUMNS as BACKTEST

    assert FILL_COLUMNS == BACKTEST
    assert LIVE_COLUMNS["fills"] == [*BACKTEST, "mode"]


def test_schema_wal_and_tables(tmp_path, store):
    db = sqlite3.connect(tmp_path / "execution.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"positions", "state_snapshots", "funding", "signals_1m", "features_1m", "fills", "orders", "alerts", "control",
            "checkpoint", "node_status"} <= tables
    orders = [r[1] for r in db.execute("PRAGMA table_info(orders)")]
    assert orders == LIVE_COLUMNS["orders"]
    db.close()


def test_writes_land_after_flush_and_reopen(tmp_path):
    s = LiveStore(tmp_path)
    fill = {c: None for c in FILL_COLUMNS} | {"ts_event": 1_700_000_000_000_000_000, "side": "BUY", "price": 100.5, "qty": 0.001,
                                              "client_order_id": "O-1", "trade_id": 3, "reduce_only": False, "mode": "paper"}
    s.record("fills", fill)
    s.record("funding", {"ts_ms": 5, "side": "LONG", "qty": 0.001, "mark_price": 100.0, "rate_bps": 1.0, "amount": -0.00001})
    s.write_checkpoint({"strategy": {"x": [1, 2.5]}, "halted": True, "halt_reason": "mismatch"}, ts_ms=123)
    assert s.flush()
    s.close()
    # a new process's view: everything committed
    s2 = LiveStore(tmp_path)
    [f] = s2.rows("fills")
    assert (f["price"], f["qty"], f["trade_id"], f["reduce_only"], f["mode"]) == (100.5, 0.001, 3, 0, "paper")
    assert s2.funding()[0]["amount"] == -0.00001
    assert s2.checkpoint() == {"strategy": {"x": [1, 2.5]}, "halted": True, "halt_reason": "mismatch", "_ts_ms": 123}
    s2.close()


def test_checkpoint_is_serialised_at_call_time(store):
    state = {"stop": 99.0}
    store.write_checkpoint(state, ts_ms=1)
    state["stop"] = 50.0  # the caller goes on mutating its objects
    store.flush()
    assert store.checkpoint()["stop"] == 99.0
    store.write_checkpoint(state, ts_ms=2)
    store.flush()
    assert store.checkpoint() == {"stop": 50.0, "_ts_ms": 2}
    assert len(store.rows("checkpoint")) == 1


def test_position_upsert_open_then_closed(store):
    open_row = {"id": 1, "ts_ms_open": 1000, "side": "SHORT", "entry_price": 50_000.0, "qty_contracts": 0.001, "stop_price": 50_100.0,
                "tp1_price": 49_900.0, "status": "OPEN", "ts_ms_close": None}
    store.record("positions", open_row)
    store.record("positions", open_row | {"status": "CLOSED", "ts_ms_close": 5000, "exit_price": 49_900.0, "realized_pnl": 0.1, "exit_reason": "tp1"})
    store.record("positions", open_row | {"ts_ms_open": 9000, "side": "LONG"})
    store.flush()
    rows = store.positions()
    assert [(r["ts_ms_open"], r["side"], r["status"]) for r in rows] == [(1000, "SHORT", "CLOSED"), (9000, "LONG", "OPEN")]
    assert rows[0]["exit_price"] == 49_900.0 and rows[0]["exit_reason"] == "tp1" and rows[0]["ts_ms_close"] == 5000


def test_order_upsert_keeps_created_and_untouched_fields(store):
    store.upsert_order("AT-1", 10, trade_id=1, purpose="stop", side="SELL", order_type="STOP_MARKET", qty=0.002, trigger_price=99.5,
                       status="SUBMITTED")
    store.upsert_order("AT-1", 20, status="ACCEPTED", venue_order_id="v-9")
    store.record("orders", {"client_order_id": "AT-2", "purpose": "tp1", "status": "ACCEPTED", "ts_ms_updated": 30})
    store.upsert_order("AT-2", 40, status="FILLED")
    store.flush()
    r = store.rows("orders")
    assert [(o["client_order_id"], o["status"], o["ts_ms_created"], o["ts_ms_updated"]) for o in r] == [
        ("AT-1", "ACCEPTED", 10, 20), ("AT-2", "FILLED", 30, 40)]
    assert (r[0]["purpose"], r[0]["trigger_price"], r[0]["venue_order_id"]) == ("stop", 99.5, "v-9")
    assert [o["client_order_id"] for o in store._reader.open_orders()] == ["AT-1"]


def test_minute_tables_take_their_columns_from_rows(store):
    import numpy as np

    store.record("signals_1m", {"ts_min": 60_000, "signal_A_long": 1, "chosen_action": "ENTER_LONG", "feature_snapshot": {"poc": 1.5}})
    store.record("signals_1m", {"ts_min": 120_000, "signal_A_long": 0, "chosen_action": "NONE", "reason_code": "x"})
    store.record("signals_1m", {"ts_min": 60_000, "signal_A_long": 1, "chosen_action": "ENTER_LONG", "reason_code": "replayed"})
    n = store.record_columns("features_1m", {"ts_min": np.array([60_000, 120_000]), "poc": np.array([100.0, np.nan]), "bins": np.array([21, 22])})
    assert n == 2
    store.flush()
    sig = store.rows("signals_1m")
    assert [(s["ts_min"], s["chosen_action"], s["reason_code"]) for s in sig] == [(60_000, "ENTER_LONG", "replayed"), (120_000, "NONE", "x")]
    feats = store.rows("features_1m")
    assert feats == [{"ts_min": 60_000, "poc": 100.0, "bins": 21}, {"ts_min": 120_000, "poc": None, "bins": 22}]
    assert store._reader.rows("signals_1m", limit=1)[0]["ts_min"] == 120_000


def test_bad_rows_fail_in_the_caller(store):
    with pytest.raises(ValueError, match="unknown table 'nope'"):
        store.record("nope", {})
    with pytest.raises(ValueError, match="unknown column.*colour"):
        store.record("fills", {"ts_event": 1, "colour": "red"})
    with pytest.raises(ValueError, match="invalid column name"):
        store.record("signals_1m", {"ts_min": 1, "x; DROP TABLE fills": 1})
    with pytest.raises(ValueError, match="ts_min missing"):
        store.record("features_1m", {"poc": 1.0})


def test_a_failing_write_does_not_stop_the_writer(store, caplog):
    store.record("fills", {"side": "BUY"})  # ts_event NOT NULL: fails in the writer
    store.record("fills", {"ts_event": 2, "side": "SELL"})
    store.flush()
    assert store.write_errors == 1
    assert [f["side"] for f in store.rows("fills")] == ["SELL"]
    assert "write failed" in caplog.text


def test_reader_is_read_only_and_sees_commits(tmp_path, store):
    store.write_node_status(ts_ms=7, mode="paper", active=False, halted=True, halt_reason="position mismatch", warmup_minutes=240,
                            warmup_needed=240, position={"side": "LONG", "qty": 0.001}, balance=1000.0, pid=42)
    store.flush()
    with LiveStore.reader(tmp_path) as r:
        st = r.node_status()
        assert st["halted"] is True and st["active"] is False and st["position"] == {"side": "LONG", "qty": 0.001} and st["pid"] == 42
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            r._db.execute("DELETE FROM node_status")


def test_reader_of_missing_store_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="no live store here"):
        StoreReader(tmp_path / "nothing")
    assert not (tmp_path / "nothing").exists()


def test_reader_works_after_the_node_closed(tmp_path):
    s = LiveStore(tmp_path)
    s.write_node_status(ts_ms=1, mode="live")
    s.close()
    with StoreReader(tmp_path) as r:
        assert r.node_status()["mode"] == "live"


def test_control_row_from_another_connection_and_answer(tmp_path, store):
    cid = submit_control(tmp_path, "activate", {"by": "cli"}, ts_ms=5)
    [row] = store._reader.pending_control()
    assert (row["id"], row["command"], json.loads(row["args"]), row["status"]) == (cid, "activate", {"by": "cli"}, "pending")
    store.answer_control(cid, "refused", "warm-up incomplete", ts_ms=6)
    store.flush()
    assert store._reader.control(cid)["answer"] == "warm-up incomplete"
    assert store._reader.pending_control() == []
    with pytest.raises(ValueError, match="unknown command"):
        submit_control(tmp_path, "explode")


def test_concurrent_callers_all_land(store):
    def worker(k):
        for i in range(500):
            store.record("funding", {"ts_ms": k * 1000 + i, "side": "LONG", "qty": 1.0, "mark_price": 1.0, "rate_bps": 0.0, "amount": 0.0})

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    store.flush()
    assert len(store.funding()) == 2000
    assert store.write_errors == 0


def test_closed_store_refuses_writes(tmp_path):
    s = LiveStore(tmp_path)
    s.close()
    s.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        s.record("fills", {"ts_event": 1})


def test_a_bad_row_inside_a_batch_drops_only_itself(tmp_path):
    s = LiveStore(tmp_path)
    blocker = sqlite3.connect(tmp_path / "execution.db", isolation_level=None)
    try:
        # Another connection holds the write lock: the writer blocks on its first write while the
        # three rows queue up behind it, so they reach it as one batch of one shape.
        blocker.execute("BEGIN IMMEDIATE")
        s.record("funding", {"ts_ms": 0, "side": "LONG", "qty": 1.0, "mark_price": 1.0, "rate_bps": 0.0, "amount": 0.0})
        for ts in (1, None, 3):
            s.record("fills", {"ts_event": ts, "side": "BUY"})
        blocker.execute("COMMIT")
        assert s.flush()
        assert [f["ts_event"] for f in s.rows("fills")] == [1, 3]
        assert (s.write_errors, s.rows_written) == (1, 3)
    finally:
        blocker.close()
        s.close()


def test_a_new_data_dir_gets_its_execution_db(tmp_path):
    s = LiveStore(tmp_path / "fresh" / "live")
    s.close()
    assert (tmp_path / "fresh" / "live" / "execution.db").is_file()
    s = LiveStore(tmp_path / "other.db")
    s.close()
    assert (tmp_path / "other.db").is_file()
