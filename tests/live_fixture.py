"""A fake live node for the dashboard's live tests: it replays the dashboard fixture's backtest run
(``run-a``) minute by minute into a live data dir, the way a node writes one.

``DIR/execution.db`` is created by the node's own :class:`~auction_trader.live.store.LiveStore` and
gets, per closed minute, the run's ``features_1m`` / ``signals_1m`` row, the fills and positions of
that minute, its alerts and a fresh ``node_status``, in one transaction (so a test knows the moment
the minute is in the store); ``DIR/catalog`` grows by one trade file and one quote file per minute
(the recording), so a reader has to pick up new files. A thread answers ``control`` rows with the
node's own rules (:class:`~auction_trader.live.control.Controller`): activation refused before
warm-up, resolve only when halted, ...

Because the rows are the run's own, every figure the live view shows can be held to the run's.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq

from auction_trader.data.catalog import interval_filename

MIN_MS = 60_000
MS_NS = 1_000_000
INSTRUMENT = "BTCUSDT-LINEAR.BYBIT"

def _sql_value(v):
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, (dict, list)):
        return json.dumps(v, sort_keys=True)
    if isinstance(v, float) and v != v:
        return None
    return v


class FakeNode:
    """Replays ``run`` (a run directory of the dashboard fixture) into ``data_dir``."""

    def __init__(self, run: Path, catalog: Path, data_dir: Path, first_minutes: int, warmup_needed: int, starting_balance: float) -> None:
        from auction_trader.live.control import ControlState, Controller  # noqa: PLC0415
        from auction_trader.live.store import LiveStore  # noqa: PLC0415

        self.data_dir = Path(data_dir)
        self.db_path = self.data_dir / "execution.db"
        self.features = pq.read_table(run / "features_1m.parquet").to_pylist()
        self.signals = {r["ts_min"]: r for r in pq.read_table(run / "signals_1m.parquet").to_pylist()}
        self.fills = pq.read_table(run / "fills.parquet").to_pylist()
        self.alerts_rows = json.loads((run / "alerts.json").read_text())
        with sqlite3.connect(run / "execution.db") as db:
            db.row_factory = sqlite3.Row
            self.positions = [dict(r) for r in db.execute("SELECT * FROM positions ORDER BY id")]
            self.funding = [dict(r) for r in db.execute("SELECT * FROM funding ORDER BY id")]
        self.trades_src = pq.read_table(next((catalog / "data" / "trade_tick" / INSTRUMENT).glob("*.parquet")))
        self.quotes_src = pq.read_table(next((catalog / "data" / "quote_tick" / INSTRUMENT).glob("*.parquet")))
        self.catalog = self.data_dir / "catalog"
        shutil.copytree(catalog / "data" / "crypto_perpetual", self.catalog / "data" / "crypto_perpetual")
        LiveStore(self.db_path).close()  # the node's schema, WAL
        self.db = sqlite3.connect(self.db_path, check_same_thread=False, timeout=10, isolation_level=None)
        self.lock = threading.Lock()
        self.n = 0  # minutes closed
        self.controller = Controller(ControlState(mode="paper", warmup_needed=warmup_needed))
        self.starting_balance = starting_balance
        self.answer_controls = True
        self.commands: list[tuple[str, str]] = []
        self._stop = threading.Event()
        self._fill_i = self._alert_i = 0
        self.balance = starting_balance
        if first_minutes:
            self._write_ticks(None, self.features[first_minutes - 1]["ts_min"] + MIN_MS)
        for _ in range(first_minutes):
            self._close(write_ticks=False)
        self._thread = threading.Thread(target=self._answer_loop, name="fake-node", daemon=True)
        self._thread.start()

    # -- the recording ---------------------------------------------------------------------------

    def _write_ticks(self, lo_ms: int | None, hi_ms: int) -> None:
        """The trades and quotes of [lo, hi) as one new file per kind, named as Nautilus names them."""
        for kind, table in (("trade_tick", self.trades_src), ("quote_tick", self.quotes_src)):
            ts = table.column("ts_event").to_numpy()
            a = 0 if lo_ms is None else int((ts < lo_ms * MS_NS).sum())
            b = int((ts < hi_ms * MS_NS).sum())
            if b <= a:
                continue
            part = table.slice(a, b - a)
            folder = self.catalog / "data" / kind / INSTRUMENT
            folder.mkdir(parents=True, exist_ok=True)
            tmp = folder / f".{kind}.tmp"
            pq.write_table(part, tmp, row_group_size=5000)
            tmp.rename(folder / interval_filename(int(ts[a]), int(ts[b - 1])))

    # -- minutes -----------------------------------------------------------------------------------

    @property
    def head(self) -> int | None:
        return self.features[self.n - 1]["ts_min"] if self.n else None

    def close_minute(self) -> int:
        """Close the next minute: its ticks, then its rows in one transaction. Returns the wall
        clock (ms) of the commit: the moment the minute is in the store."""
        return self._close(write_ticks=True)

    def _close(self, write_ticks: bool) -> int:
        row = self.features[self.n]
        ts = row["ts_min"]
        close_ns = (ts + MIN_MS) * MS_NS
        if write_ticks:
            self._write_ticks(None if self.n == 0 else ts, ts + MIN_MS)  # the first file holds everything before
        with self.lock:
            self.db.execute("BEGIN")
            self._insert_dynamic("features_1m", row)
            if ts in self.signals:
                self._insert_dynamic("signals_1m", self.signals[ts])
            while self._fill_i < len(self.fills) and self.fills[self._fill_i]["ts_event"] < close_ns:
                f = self.fills[self._fill_i]
                cols = list(f) + ["mode"]
                self.db.execute(f"INSERT INTO fills ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})", [*(_sql_value(f[c]) for c in f), "paper"])
                self._fill_i += 1
            for p in self.positions:
                opened = p["ts_ms_open"] * MS_NS < close_ns
                closed = p["ts_ms_close"] is not None and p["ts_ms_close"] * MS_NS < close_ns
                if not opened:
                    continue
                have = self.db.execute("SELECT id, status FROM positions WHERE ts_ms_open = ? AND side = ?", (p["ts_ms_open"], p["side"])).fetchone()
                values = dict(p)
                values.pop("id")
                if not closed:
                    values.update(ts_ms_close=None, exit_price=None, status="OPEN", realized_pnl=None, exit_reason=None)
                if have is None:
                    self.db.execute(f"INSERT INTO positions ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})", list(values.values()))
                elif closed and have[1] == "OPEN":
                    self.db.execute(f"UPDATE positions SET {', '.join(f'{c} = ?' for c in values)} WHERE id = ?", [*values.values(), have[0]])
            for fu in self.funding:
                if fu["ts_ms"] * MS_NS < close_ns and not self.db.execute("SELECT 1 FROM funding WHERE ts_ms = ?", (fu["ts_ms"],)).fetchone():
                    self.db.execute("INSERT INTO funding (ts_ms, side, qty, mark_price, rate_bps, amount) VALUES (?, ?, ?, ?, ?, ?)",
                                    (fu["ts_ms"], fu["side"], fu["qty"], fu["mark_price"], fu["rate_bps"], fu["amount"]))  # fmt: skip
            while self._alert_i < len(self.alerts_rows) and self.alerts_rows[self._alert_i]["ts_ms"] < ts + MIN_MS:
                a = self.alerts_rows[self._alert_i]
                self.db.execute("INSERT INTO alerts (ts_ms, type, mode, message, details) VALUES (?, ?, 'paper', ?, ?)", (a["ts_ms"], a["alert"], a["alert"], a["detail"]))
                self._alert_i += 1
            self.n += 1
            self.controller.set_warmup(self.n)
            self._status()
            self.db.execute("COMMIT")
            return time.time_ns() // 1_000_000

    def _insert_dynamic(self, table: str, row: dict) -> None:
        have = {r[1] for r in self.db.execute(f"PRAGMA table_info({table})")}
        for name in row:
            if name not in have:
                self.db.execute(f"ALTER TABLE {table} ADD COLUMN {name}")
        cols = list(row)
        self.db.execute(f"INSERT OR REPLACE INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})", [_sql_value(row[c]) for c in cols])

    def set_balance(self, balance: float) -> None:
        self.balance = balance
        with self.lock:
            self._status()

    def halt(self, reason: str) -> None:
        with self.lock:
            self.controller.halt(reason)
            self._status()

    def _status(self) -> None:
        s = self.controller.state
        self.db.execute(
            "INSERT OR REPLACE INTO node_status (id, ts_ms, mode, active, halted, halt_reason, warmup_minutes, warmup_needed, position, balance, day_pnl, kill_switch_limit, pid) "
            "VALUES (1, ?, 'paper', ?, ?, ?, ?, ?, ?, ?, NULL, 0.5, 4242)",
            (time.time_ns() // 1_000_000, int(s.active), int(s.halted), s.halt_reason, s.warmup_minutes, s.warmup_needed, json.dumps({"side": "FLAT"}), self.balance),
        )  # fmt: skip

    # -- control -----------------------------------------------------------------------------------

    def _answer_loop(self) -> None:
        while not self._stop.wait(0.02):
            if not self.answer_controls:
                continue
            with self.lock:
                pending = self.db.execute("SELECT id, command FROM control WHERE status = 'pending' ORDER BY id").fetchall()
                for cid, command in pending:
                    answer = self.controller.handle(command)
                    self.commands.append((command, answer.status))
                    self.db.execute("UPDATE control SET status = ?, answer = ?, answered_ts_ms = ? WHERE id = ?", (answer.status, answer.text, time.time_ns() // 1_000_000, cid))
                    self._status()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.db.close()
