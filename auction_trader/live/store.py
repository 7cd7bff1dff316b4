"""``DIR/execution.db`` of a live node: the backtest's store plus what a running node must keep.

The schema is the one ``/work/lead/LIVE_CONTRACT.md`` (and DESIGN.md "Live path") describes: the
backtest's ``positions``, ``state_snapshots`` and ``funding`` (:class:`~auction_trader.store.ExecutionStore`)
plus ``signals_1m``, ``features_1m``, ``fills``, ``orders``, ``alerts``, ``control``, ``checkpoint`` and
``node_status``.

Why a writer thread: the node writes from its event loop (a fill, a minute's signal row, the
checkpoint). A SQLite commit costs tens to hundreds of microseconds, more when the disk is busy; the
tick path must not wait for it. Callers only validate the row and put it on a queue; one thread owns
the only writing connection, drains the queue in batches (one transaction per batch) and keeps going
when a row is bad (logged, counted in :attr:`LiveStore.write_errors`). WAL with ``synchronous=NORMAL``:
a committed transaction survives ``kill -9`` of the process (only an OS crash or power loss can take the
last ones back), and readers (``run_live.py status``, the dashboard) read a consistent snapshot without
blocking the writer. ``benchmarks/live_store_bench.py`` measures what a caller pays.

Readers in other processes use :class:`StoreReader` (``LiveStore.reader(path)``), which opens the file
read-only. The control CLI's one write (a ``control`` row) goes through :func:`submit_control`, a
short-lived connection of its own; WAL lets it commit between the node writer's transactions.
"""

from __future__ import annotations

import json
import logging
import math
import queue
import re
import sqlite3
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from auction_trader.store import COLUMNS as BASE_COLUMNS
from auction_trader.store import ExecutionStore

log = logging.getLogger(__name__)

DB_NAME = "execution.db"

#: Column types of ``fills`` (the backtest's FILL_COLUMNS, in order, plus ``mode``). ``trade_id`` has no
#: declared type, so SQLite keeps whatever the caller gave (an int in the backtest).
_FILL_TYPES = {
    "ts_event": "INTEGER NOT NULL", "side": "TEXT", "order_type": "TEXT", "price": "DOUBLE", "qty": "DOUBLE",
    "liquidity": "TEXT", "commission": "DOUBLE", "bid_at_fill": "DOUBLE", "ask_at_fill": "DOUBLE", "setup": "TEXT",
    "purpose": "TEXT", "signal_ts_min": "INTEGER", "client_order_id": "TEXT", "trade_id": "", "reduce_only": "INTEGER",
}
#: ``auction_trader.backtest.outputs.FILL_COLUMNS`` (a test holds them equal); not imported, because that
#: module loads the whole backtest engine and readers such as ``run_live.py status`` must start fast.
FILL_COLUMNS = list(_FILL_TYPES)

LIVE_SCHEMA: dict[str, str] = {
    "fills": "CREATE TABLE IF NOT EXISTS fills (id INTEGER PRIMARY KEY AUTOINCREMENT, "
    + ", ".join(f"{c} {t}".rstrip() for c, t in _FILL_TYPES.items())
    + ", mode TEXT)",
    "orders": """
        CREATE TABLE IF NOT EXISTS orders (
            client_order_id TEXT PRIMARY KEY,
            trade_id,
            purpose         TEXT,
            side            TEXT,
            order_type      TEXT,
            qty             DOUBLE,
            price           DOUBLE,
            trigger_price   DOUBLE,
            status          TEXT,
            venue_order_id  TEXT,
            ts_ms_created   INTEGER NOT NULL,
            ts_ms_updated   INTEGER NOT NULL
        )""",
    "alerts": """
        CREATE TABLE IF NOT EXISTS alerts (
            id               INTEGER PRIMARY KEY AUTOINCREMENT,
            ts_ms            INTEGER NOT NULL,
            type             TEXT NOT NULL,
            mode             TEXT,
            message          TEXT NOT NULL,
            details          TEXT,
            delivered_ts_ms  INTEGER,
            attempts         INTEGER NOT NULL DEFAULT 0
        )""",
    "control": """
        CREATE TABLE IF NOT EXISTS control (
            id              INTEGER PRIMARY KEY AUTOINCREMENT,
            ts_ms           INTEGER NOT NULL,
            command         TEXT NOT NULL,
            args            TEXT,
            status          TEXT NOT NULL DEFAULT 'pending',
            answer          TEXT,
            answered_ts_ms  INTEGER
        )""",
    "checkpoint": """
        CREATE TABLE IF NOT EXISTS checkpoint (
            id     INTEGER PRIMARY KEY CHECK (id = 1),
            ts_ms  INTEGER NOT NULL,
            state  TEXT NOT NULL
        )""",
    "node_status": """
        CREATE TABLE IF NOT EXISTS node_status (
            id                 INTEGER PRIMARY KEY CHECK (id = 1),
            ts_ms              INTEGER NOT NULL,
            mode               TEXT,
            active             INTEGER,
            halted             INTEGER,
            halt_reason        TEXT,
            warmup_minutes     INTEGER,
            warmup_needed      INTEGER,
            position           TEXT,
            balance            DOUBLE,
            day_pnl            DOUBLE,
            kill_switch_limit  DOUBLE,
            pid                INTEGER
        )""",
    # One row per closed minute, keyed by ts_min. Their other columns are the backtest's (signal flags,
    # feature names) and come from the rows themselves: added the first time a name appears.
    "signals_1m": "CREATE TABLE IF NOT EXISTS signals_1m (ts_min INTEGER PRIMARY KEY)",
    "features_1m": "CREATE TABLE IF NOT EXISTS features_1m (ts_min INTEGER PRIMARY KEY)",
}

#: Writable columns of the live tables (``None``: columns follow the rows, see :data:`LIVE_SCHEMA`).
LIVE_COLUMNS: dict[str, list[str] | None] = {
    "fills": [*FILL_COLUMNS, "mode"],
    "orders": [
        "client_order_id", "trade_id", "purpose", "side", "order_type", "qty", "price", "trigger_price", "status",
        "venue_order_id", "ts_ms_created", "ts_ms_updated",
    ],
    "alerts": ["ts_ms", "type", "mode", "message", "details", "delivered_ts_ms", "attempts"],
    "control": ["ts_ms", "command", "args", "status", "answer", "answered_ts_ms"],
    "checkpoint": ["ts_ms", "state"],
    "node_status": [
        "ts_ms", "mode", "active", "halted", "halt_reason", "warmup_minutes", "warmup_needed", "position", "balance",
        "day_pnl", "kill_switch_limit", "pid",
    ],
    "signals_1m": None,
    "features_1m": None,
}
ALL_COLUMNS: dict[str, list[str] | None] = {**{t: list(c) for t, c in BASE_COLUMNS.items()}, **LIVE_COLUMNS}

#: Order statuses after which an order no longer rests on the venue.
TERMINAL_ORDER_STATUSES = frozenset({"FILLED", "CANCELED", "CANCELLED", "REJECTED", "EXPIRED", "DENIED"})
CONTROL_COMMANDS = ("status", "activate", "deactivate", "resolve")

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_JSON_COLUMNS = {"details", "args", "position", "position_state", "acceptance_state", "pending_orders", "account_state"}
_STOP = object()


def db_path(where: str | Path) -> Path:
    """The store file for a data directory (existing or not: a path without a suffix is one) or a
    file path given as such (``.../execution.db``)."""
    path = Path(where)
    return path / DB_NAME if path.is_dir() or not path.suffix else path


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def to_json(value: Any) -> str:
    """Stable JSON (sorted keys); NaN and infinities become null, since they are not JSON."""
    return json.dumps(_finite(value), sort_keys=True, separators=(",", ":"), allow_nan=False, default=str)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalars
        return _finite(value.item())
    return value


def _cell(column: str, value: Any) -> Any:
    if value is None or isinstance(value, (str, int, bytes)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (Mapping, list, tuple)):
        return to_json(value)
    if hasattr(value, "item"):  # numpy scalars
        return _cell(column, value.item())
    if column in _JSON_COLUMNS:
        return to_json(value)
    return str(value)


class LiveStore(ExecutionStore):
    """The node's store. Writes are queued (never blocking the caller on disk); reads are direct.

    Every write method returns at once; :meth:`flush` waits until everything queued so far is
    committed; :meth:`close` drains the queue and stops the writer. Use one instance per process.
    """

    def __init__(self, path: str | Path, *, batch_max: int = 2000) -> None:
        path = db_path(path)
        super().__init__(path)  # creates the backtest tables on a normal connection
        with self._db:
            self._db.execute("PRAGMA journal_mode=WAL")
            for ddl in LIVE_SCHEMA.values():
                self._db.execute(ddl)
            self._db.execute("CREATE INDEX IF NOT EXISTS alerts_undelivered ON alerts (delivered_ts_ms, id)")
            self._db.execute("CREATE INDEX IF NOT EXISTS control_status ON control (status, id)")
            self._db.execute("CREATE INDEX IF NOT EXISTS positions_open ON positions (ts_ms_open, side)")
        self._db.close()
        self._dynamic = {t: _table_columns(path, t) for t, c in LIVE_COLUMNS.items() if c is None}
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._batch_max = batch_max
        self.write_errors = 0
        self.rows_written = 0
        self._closed = False
        self._writer = threading.Thread(target=self._run_writer, name="live-store-writer", daemon=True)
        self._writer_ready = threading.Event()
        self._writer_failed: BaseException | None = None
        self._writer.start()
        self._writer_ready.wait(10)
        if self._writer_failed is not None:
            raise self._writer_failed
        # The base class's reading methods (rows, positions, ...) use self._db: a read-only connection.
        self._reader = StoreReader(path)
        self._db = self._reader._db

    @staticmethod
    def reader(path: str | Path) -> StoreReader:
        """A read-only view of a store (another process's, typically)."""
        return StoreReader(path)

    # -- queued writes (return at once) ------------------------------------------------------------

    def record(self, table: str, row: Mapping[str, Any]) -> None:
        """Queue one row for ``table``. ``positions`` rows are upserted (OPEN -> CLOSED, keyed by
        ``ts_ms_open`` and ``side``), ``orders`` rows upserted by ``client_order_id``,
        ``signals_1m``/``features_1m`` rows replace the same ``ts_min``; other tables append.
        An unknown table or column raises here, in the caller, where the mistake is."""
        if table == "positions":
            self.upsert_position(row)
        elif table == "orders":
            fields = dict(row)
            self.upsert_order(fields.pop("client_order_id"), fields.pop("ts_ms_updated", None) or now_ms(), **fields)
        elif table == "checkpoint":
            self.write_checkpoint(row["state"], row.get("ts_ms"))
        elif table == "node_status":
            self.write_node_status(**row)
        else:
            self._put(("insert", table, self._checked(table, row)))

    def record_columns(self, table: str, columns: Mapping[str, Any]) -> int:
        """Queue the rows of a column dict (e.g. ``AuctionFeatures.drain()``); returns the count."""
        names = list(columns)
        n = len(columns[names[0]]) if names else 0
        for i in range(n):
            self.record(table, {name: columns[name][i] for name in names})
        return n

    def insert(self, table: str, rows) -> int:  # type: ignore[override]
        """The base class's bulk insert, queued."""
        count = 0
        for row in rows:
            self.record(table, row)
            count += 1
        return count

    def upsert_order(self, client_order_id: str, ts_ms: int, **fields: Any) -> None:
        """Create or update one order (only the given fields change; ``ts_ms_created`` is the first
        ``ts_ms`` seen)."""
        row = self._checked("orders", {"client_order_id": str(client_order_id), **fields})
        row.pop("ts_ms_created", None)
        self._put(("order", row, int(ts_ms)))

    def upsert_position(self, row: Mapping[str, Any]) -> None:
        """Insert the position the first time (status OPEN), update the same row later (CLOSED)."""
        row = self._checked("positions", row)
        row.pop("id", None)
        if row.get("ts_ms_open") is None or row.get("side") is None:
            raise ValueError(f"positions row needs ts_ms_open and side to be upserted (got {row})")
        self._put(("position", row))

    def write_checkpoint(self, state: Mapping[str, Any], ts_ms: int | None = None) -> None:
        """Replace the checkpoint: ``{"strategy": AuctionStrategy.checkpoint(), "node":
        ControlState.state()}`` (mode, active, halted, halt_reason), plus whatever else the node must
        restore. The state is serialised here, in the caller, so that later changes to the caller's
        objects cannot leak into what is stored (a minute's checkpoint is one ``json.dumps``)."""
        self._put(("checkpoint", int(ts_ms if ts_ms is not None else now_ms()), to_json(state)))

    def write_node_status(self, **fields: Any) -> None:
        """Replace the node_status row (missing fields are NULL)."""
        fields.setdefault("ts_ms", now_ms())
        self._put(("status", self._checked("node_status", fields)))

    def answer_control(self, control_id: int, status: str, answer: str, ts_ms: int | None = None) -> None:
        if status not in ("accepted", "refused", "answered"):
            raise ValueError(f"control status must be accepted, refused or answered (got {status!r})")
        self._put(("exec", "UPDATE control SET status = ?, answer = ?, answered_ts_ms = ? WHERE id = ?",
                   (status, answer, int(ts_ms if ts_ms is not None else now_ms()), int(control_id))))

    def mark_alert(self, alert_id: int, *, attempts: int, delivered_ts_ms: int | None) -> None:
        self._put(("exec", "UPDATE alerts SET attempts = ?, delivered_ts_ms = ? WHERE id = ?",
                   (int(attempts), delivered_ts_ms, int(alert_id))))

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued before this call is committed; False on timeout."""
        if self._closed:
            return True
        done = threading.Event()
        self._put(("flush", done))
        return done.wait(timeout)

    @property
    def backlog(self) -> int:
        """Writes queued and not yet committed (approximate)."""
        return self._queue.qsize()

    def close(self, timeout: float = 30.0) -> None:
        """Drain the queue, stop the writer, close the connections. Idempotent."""
        if self._closed:
            return
        self._queue.put(_STOP)
        self._writer.join(timeout)
        if self._writer.is_alive():
            log.error("live store: writer did not finish within %.0f s; %d writes may be lost", timeout, self.backlog)
        self._closed = True
        self._reader.close()

    # -- reads (this process) ---------------------------------------------------------------------

    def checkpoint(self) -> dict[str, Any] | None:
        return self._reader.checkpoint()

    def node_status(self) -> dict[str, Any] | None:
        return self._reader.node_status()

    def rows(self, table: str) -> list[dict[str, Any]]:
        return self._reader.rows(table)

    # -- internals --------------------------------------------------------------------------------

    def _put(self, item: tuple) -> None:
        if self._closed:
            raise RuntimeError(f"{self.path}: the live store is closed")
        self._queue.put(item)

    def _checked(self, table: str, row: Mapping[str, Any]) -> dict[str, Any]:
        if table not in ALL_COLUMNS:
            raise ValueError(f"unknown table {table!r} (have {', '.join(ALL_COLUMNS)})")
        columns = ALL_COLUMNS[table]
        if columns is None:
            if "ts_min" not in row:
                raise ValueError(f"{table} row: ts_min missing")
            bad = [k for k in row if not _IDENT.match(k)]
            if bad:
                raise ValueError(f"{table} row: invalid column name(s) {bad}")
            return dict(row)
        unknown = set(row).difference(columns).difference(("id",))
        if unknown:
            raise ValueError(f"{table} row: unknown column(s) {', '.join(sorted(unknown))} (columns: {', '.join(columns)})")
        return dict(row)

    def _run_writer(self) -> None:
        try:
            db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=True, timeout=30)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
        except BaseException as exc:  # reported by __init__
            self._writer_failed = exc
            self._writer_ready.set()
            return
        self._writer_ready.set()
        stop = False
        while not stop:
            batch = [self._queue.get()]
            while len(batch) < self._batch_max:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            events = []
            db.execute("BEGIN")
            run: list[tuple] = []  # consecutive appends to one table with the same columns
            for item in batch:
                if run and not (item is not _STOP and item[0] == "insert" and item[1] == run[0][1] and item[2].keys() == run[0][2].keys()):
                    self._apply_run(db, run)
                    run = []
                if item is _STOP:
                    stop = True
                elif item[0] == "flush":
                    events.append(item[1])
                elif item[0] == "insert" and item[1] not in self._dynamic:
                    run.append(item)
                else:
                    self._apply_one(db, item)
            if run:
                self._apply_run(db, run)
            try:
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                self.write_errors += len(batch)
                log.error("live store: commit of %d writes failed: %s", len(batch), exc)
                db.execute("ROLLBACK") if db.in_transaction else None
            for e in events:
                e.set()
        db.close()

    def _apply_one(self, db: sqlite3.Connection, item: tuple) -> None:
        try:
            self._apply(db, item)
            self.rows_written += 1
        except Exception as exc:  # a bad row must not stop the others
            self.write_errors += 1
            log.error("live store: %s write failed and was dropped: %s", item[0], exc)

    def _apply_run(self, db: sqlite3.Connection, run: list[tuple]) -> None:
        """Appends of one shape in one ``executemany`` (less Python per row, so the writer holds the
        GIL for less time); if a row is bad, the run is undone and replayed row by row."""
        if len(run) == 1:
            self._apply_one(db, run[0])
            return
        table, cols = run[0][1], list(run[0][2])
        db.execute("SAVEPOINT run")
        try:
            db.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                           [tuple(_cell(c, row[c]) for c in cols) for _, _, row in run])
            db.execute("RELEASE run")
            self.rows_written += len(run)
        except Exception:
            db.execute("ROLLBACK TO run")
            db.execute("RELEASE run")
            for item in run:
                self._apply_one(db, item)

    def _apply(self, db: sqlite3.Connection, item: tuple) -> None:
        kind = item[0]
        if kind == "insert":
            _, table, row = item
            if table in self._dynamic:
                self._add_columns(db, table, row)
                verb = "INSERT OR REPLACE"
            else:
                verb = "INSERT"
            cols = list(row)
            db.execute(f"{verb} INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                       tuple(_cell(c, row[c]) for c in cols))
        elif kind == "order":
            _, row, ts = item
            cols = list(row)
            sets = ", ".join(f"{c} = excluded.{c}" for c in cols if c != "client_order_id")
            db.execute(
                f"INSERT INTO orders ({', '.join(cols)}, ts_ms_created, ts_ms_updated) "
                f"VALUES ({', '.join('?' * len(cols))}, ?, ?) "
                f"ON CONFLICT(client_order_id) DO UPDATE SET {sets + ', ' if sets else ''}ts_ms_updated = excluded.ts_ms_updated",
                (*(_cell(c, row[c]) for c in cols), ts, ts),
            )
        elif kind == "position":
            row = item[1]
            cols = [c for c in row if c not in ("ts_ms_open", "side")]
            values = tuple(_cell(c, row[c]) for c in cols)
            cur = db.execute(
                f"UPDATE positions SET {', '.join(f'{c} = ?' for c in cols)} WHERE ts_ms_open = ? AND side = ?",
                (*values, row["ts_ms_open"], row["side"]),
            ) if cols else db.execute("SELECT 1 FROM positions WHERE ts_ms_open = ? AND side = ?", (row["ts_ms_open"], row["side"]))
            if (cur.rowcount if cols else len(cur.fetchall())) == 0:
                names = list(row)
                db.execute(f"INSERT INTO positions ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
                           tuple(_cell(c, row[c]) for c in names))
        elif kind == "checkpoint":
            db.execute("INSERT OR REPLACE INTO checkpoint (id, ts_ms, state) VALUES (1, ?, ?)", (item[1], item[2]))
        elif kind == "status":
            row = item[1]
            cols = LIVE_COLUMNS["node_status"]
            db.execute(f"INSERT OR REPLACE INTO node_status (id, {', '.join(cols)}) VALUES (1, {', '.join('?' * len(cols))})",
                       tuple(_cell(c, row.get(c)) for c in cols))
        elif kind == "exec":
            db.execute(item[1], item[2])
        else:  # pragma: no cover - internal
            raise ValueError(f"unknown write {kind!r}")

    def _add_columns(self, db: sqlite3.Connection, table: str, row: Mapping[str, Any]) -> None:
        have = self._dynamic[table]
        for name in row:
            if name not in have:
                # No declared type: SQLite keeps each value as given (int, float, text).
                db.execute(f"ALTER TABLE {table} ADD COLUMN {name}")
                have.add(name)


def _table_columns(path: Path, table: str) -> set[str]:
    with sqlite3.connect(str(path)) as db:
        return {r[1] for r in db.execute(f"PRAGMA table_info({table})")}


class StoreReader:
    """A read-only connection to a live store; safe to use while a node writes (WAL).

    Thread-safe (one lock); opening a path where no store exists is an error, not a new file."""

    def __init__(self, path: str | Path) -> None:
        path = db_path(path)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no live store here (wrong --data-dir, or the node never ran)")
        self.path = path
        self._db = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, check_same_thread=False, timeout=10)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> StoreReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def query(self, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
        with self._lock:
            cur = self._db.execute(sql, params)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def rows(self, table: str, *, limit: int | None = None) -> list[dict[str, Any]]:
        """All rows of ``table`` in insertion order (the last ``limit`` when given)."""
        if table not in ALL_COLUMNS:
            raise ValueError(f"unknown table {table!r} (have {', '.join(ALL_COLUMNS)})")
        order = {"signals_1m": "ts_min", "features_1m": "ts_min", "orders": "ts_ms_created, client_order_id"}.get(table, "id")
        if limit is None:
            return self.query(f"SELECT * FROM {table} ORDER BY {order}")
        desc = ", ".join(f"{c.strip()} DESC" for c in order.split(","))
        return self.query(f"SELECT * FROM (SELECT * FROM {table} ORDER BY {desc} LIMIT ?) ORDER BY {order}", (int(limit),))

    def checkpoint(self) -> dict[str, Any] | None:
        """The stored decision state (with ``ts_ms`` of the write added as ``_ts_ms``), or None."""
        rows = self.query("SELECT ts_ms, state FROM checkpoint WHERE id = 1")
        if not rows:
            return None
        state = json.loads(rows[0]["state"])
        state["_ts_ms"] = rows[0]["ts_ms"]
        return state

    def node_status(self) -> dict[str, Any] | None:
        rows = self.query("SELECT * FROM node_status WHERE id = 1")
        if not rows:
            return None
        row = rows[0]
        row.pop("id")
        row["position"] = json.loads(row["position"]) if row["position"] else None
        for flag in ("active", "halted"):
            row[flag] = None if row[flag] is None else bool(row[flag])
        return row

    def undelivered_alerts(self, after_id: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        """The outbox: alerts not yet accepted by the webhook, oldest first."""
        return self.query("SELECT * FROM alerts WHERE delivered_ts_ms IS NULL AND id > ? ORDER BY id LIMIT ?", (int(after_id), int(limit)))

    def pending_control(self, after_id: int = 0) -> list[dict[str, Any]]:
        return self.query("SELECT * FROM control WHERE status = 'pending' AND id > ? ORDER BY id", (int(after_id),))

    def control(self, control_id: int) -> dict[str, Any] | None:
        rows = self.query("SELECT * FROM control WHERE id = ?", (int(control_id),))
        return rows[0] if rows else None

    def open_orders(self) -> list[dict[str, Any]]:
        """Orders our store believes rest on the venue (status not terminal)."""
        marks = ", ".join("?" * len(TERMINAL_ORDER_STATUSES))
        return self.query(f"SELECT * FROM orders WHERE status IS NULL OR UPPER(status) NOT IN ({marks}) ORDER BY ts_ms_created, client_order_id",
                          tuple(sorted(TERMINAL_ORDER_STATUSES)))

    def order(self, client_order_id: str) -> dict[str, Any] | None:
        rows = self.query("SELECT * FROM orders WHERE client_order_id = ?", (str(client_order_id),))
        return rows[0] if rows else None


def submit_control(path: str | Path, command: str, args: Mapping[str, Any] | None = None, ts_ms: int | None = None) -> int:
    """Insert a pending ``control`` row (from the CLI, another process) and return its id."""
    if command not in CONTROL_COMMANDS:
        raise ValueError(f"unknown command {command!r} (have {', '.join(CONTROL_COMMANDS)})")
    path = db_path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no live store here (wrong --data-dir, or the node never ran)")
    db = sqlite3.connect(str(path), timeout=10)
    try:
        with db:
            cur = db.execute("INSERT INTO control (ts_ms, command, args, status) VALUES (?, ?, ?, 'pending')",
                             (int(ts_ms if ts_ms is not None else now_ms()), command, to_json(dict(args or {}))))
        return int(cur.lastrowid)
    finally:
        db.close()
