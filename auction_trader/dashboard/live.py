"""A running node's data dir as a trading-view source: ``DIR/execution.db`` and ``DIR/catalog``.

:class:`LiveSource` is the same :class:`~auction_trader.dashboard.runs.BacktestRun` view (minutes,
ledger, profile, footprint, markers, state) over what a live node writes (``LIVE_CONTRACT.md``):

* ``features_1m`` / ``signals_1m`` (one row per closed minute, keyed by ``ts_min``), ``fills``,
  ``funding`` and ``alerts`` (keyed by ``id``) are read **incrementally**: each read asks only for the
  rows past the last key it has, and nothing at all when SQLite's ``PRAGMA data_version`` says no
  other connection has committed since. ``positions`` rows are upserted by the node (OPEN, then
  CLOSED), so the rows from the oldest not-yet-closed one on are read again.
* The connection is **read-only** (``mode=ro``); the store is in WAL mode, so reading never blocks
  the node's writer and the writer never blocks a read.
* The profile and the footprint read the node's recording (``DIR/catalog``) exactly as a run reads
  its catalog; the catalog's file list is refreshed before reading, since the recorder adds files.
* Account figures per minute are rebuilt from the fills and the funding ledger as for a run; the
  starting balance is the one that makes the last minute's balance the node's reported balance
  (``node_status.balance``), or the configuration's when the node reports none.
* ``status()`` is ``node_status``: mode, active, warm-up, halted and why; ``control(command)``
  writes the same ``control`` row as ``run_live.py activate ...`` and waits (bounded) for the
  node's answer, which it returns, or raises :class:`ControlRefused` with.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from auction_trader.dashboard.runs import LEDGER_COLUMNS, VIEW_COLUMNS, BacktestRun, Ledger, build_ledger
from auction_trader.dashboard.settings import DashboardSettings
from auction_trader.dashboard.source import ControlRefused
from auction_trader.dashboard.ticks import CatalogTicks
from auction_trader.live.control import NO_ANSWER, REFUSED, permissions, send_command
from auction_trader.live.store import DB_NAME, StoreReader

CONTROL_COMMANDS = ("activate", "deactivate", "resolve")
#: How long ``control`` waits for the node's answer (the CLI's default too).
CONTROL_WAIT_S = 10.0
#: node_status is rewritten every minute: older than this, no node is answering.
STALE_STATUS_S = 150.0
#: The recording's file list is listed again at most this often.
CATALOG_REFRESH_S = 1.0


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class _Reader:
    """The live store's read-only :class:`~auction_trader.live.store.StoreReader`, shared by the
    source's tables, opened on first use: a dashboard may start before the node created its store."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.store: StoreReader | None = None
        self._lock = threading.Lock()

    def _open(self) -> StoreReader | None:
        with self._lock:
            if self.store is None and self.path.exists():
                self.store = StoreReader(self.path)
            return self.store

    def query(self, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
        """Rows as dicts; [] while the store or the table does not exist yet."""
        store = self._open()
        if store is None:
            return []
        try:
            return store.query(sql, params)
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return []
            raise

    def version(self) -> int | None:
        """Changes whenever another connection commits (SQLite's ``PRAGMA data_version``)."""
        store = self._open()
        return None if store is None else int(store.query("PRAGMA data_version")[0]["data_version"])

    def node_status(self) -> dict[str, Any] | None:
        store = self._open()
        if store is None:
            return None
        try:
            return store.node_status()
        except sqlite3.OperationalError:
            return None

    def close(self) -> None:
        with self._lock:
            if self.store is not None:
                self.store.close()
                self.store = None


def _array(values: list) -> np.ndarray:
    """A store column as the numpy array a run's Parquet column would give: int64, float64 (NULL
    as NaN) or object (text, JSON)."""
    if values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return np.asarray(values, dtype=np.int64)
    if all(v is None or isinstance(v, (int, float)) for v in values):
        return np.asarray([np.nan if v is None else v for v in values], dtype=np.float64)
    return np.asarray(values, dtype=object)


def _concat(old: np.ndarray | None, new: np.ndarray, n_old: int) -> np.ndarray:
    if old is None:  # a column that appeared later: NULL in the earlier rows
        old = np.full(n_old, np.nan) if new.dtype.kind in "if" else np.full(n_old, None, dtype=object)
    if not len(old):
        return new
    return np.concatenate([old, new])


class _Columns:
    """A table keyed by an increasing column, as column arrays, read incrementally."""

    def __init__(self, reader: _Reader, table: str, key: str) -> None:
        self.reader, self.table, self.key = reader, table, key
        self._last: int | None = None
        self._version: int | None = None
        self._value: dict[str, np.ndarray] | None = None
        self._lock = threading.Lock()

    def get(self) -> dict[str, np.ndarray] | None:
        with self._lock:
            version = self.reader.version()
            if version is not None and version == self._version:
                return self._value
            rows = self.reader.query(f"SELECT * FROM {self.table} WHERE {self.key} > ? ORDER BY {self.key}", (-(2**63) if self._last is None else self._last,))
            self._version = version
            if rows:
                n_old = 0 if self._value is None else len(next(iter(self._value.values())))
                names = list(dict.fromkeys(k for r in rows for k in r))
                old = self._value or {}
                value = {name: _concat(old.get(name), _array([r.get(name) for r in rows]), n_old) for name in names}
                for name in old.keys() - value.keys():  # a column these rows lack
                    value[name] = _concat(old[name], _array([None] * len(rows)), n_old)
                self._value = value  # a new dict: caches keyed on it (the ledger) see the change
                self._last = int(rows[-1][self.key])
            return self._value


class _Rows:
    """A table as a list of row dicts, read incrementally by ``id``; with ``reopen``, rows from the
    oldest one for which ``reopen(row)`` holds are read again (upserted rows)."""

    def __init__(self, reader: _Reader, table: str, reopen=None) -> None:
        self.reader, self.table, self.reopen = reader, table, reopen
        self._rows: list[dict] = []
        self._version: int | None = None
        self._lock = threading.Lock()

    def get(self) -> list[dict]:
        with self._lock:
            version = self.reader.version()
            if version is not None and version == self._version:
                return self._rows
            start = (self._rows[-1]["id"] + 1) if self._rows else 0
            if self.reopen:
                open_ids = [r["id"] for r in self._rows if self.reopen(r)]
                if open_ids:
                    start = min(open_ids)
            rows = self.reader.query(f"SELECT * FROM {self.table} WHERE id >= ? ORDER BY id", (start,))
            self._version = version
            if rows or start <= (self._rows[-1]["id"] if self._rows else -1):
                self._rows = [r for r in self._rows if r["id"] < start] + rows
            return self._rows


def _trades_from_positions(positions: list[dict]) -> dict[str, np.ndarray]:
    """The round trips table (``trades.parquet``'s columns the view shows) from closed positions."""
    closed = [p for p in positions if p.get("ts_ms_close") is not None]
    cols: dict[str, list] = {c: [] for c in ("trade", "side", "ts_open", "ts_close", "qty", "entry_price", "exit_price", "net_pnl", "fees", "funding", "setup", "exit_reason")}
    for k, p in enumerate(closed, start=1):
        for c, v in (
            ("trade", k), ("side", p["side"]), ("ts_open", int(p["ts_ms_open"]) * 1_000_000), ("ts_close", int(p["ts_ms_close"]) * 1_000_000),
            ("qty", p["qty_contracts"]), ("entry_price", p["entry_price"]), ("exit_price", p["exit_price"]),
            ("net_pnl", (p["realized_pnl"] or 0.0) - (p["fees_paid"] or 0.0) - (p["funding_paid"] or 0.0)),  # realized_pnl is gross
            ("fees", p["fees_paid"]), ("funding", p["funding_paid"]), ("setup", p["strategy_tag"]), ("exit_reason", p["exit_reason"]),
        ):  # fmt: skip
            cols[c].append(v)
    return {c: np.asarray(v, dtype=object) for c, v in cols.items()}


class _Trades:
    """The round trips, rebuilt when the positions rows change."""

    def __init__(self, positions: _Rows) -> None:
        self.positions = positions
        self._key: int | None = None
        self._value: dict[str, np.ndarray] = {}

    def get(self) -> dict[str, np.ndarray]:
        rows = self.positions.get()
        if self._key != id(rows):
            self._value, self._key = _trades_from_positions(rows), id(rows)
        return self._value


class LiveSource(BacktestRun):
    """A live node's data dir as a :class:`~auction_trader.dashboard.source.TradingSource`."""

    kind = "live"

    def __init__(self, data_dir: str | Path, config: Any = None, settings: DashboardSettings | None = None, key: str = "live") -> None:
        from auction_trader.config import AuctionConfig  # noqa: PLC0415

        self.path = Path(data_dir)
        self.key = key
        self.settings = settings or DashboardSettings()
        self.auction_config = config if config is not None else AuctionConfig()
        self._flat = self.auction_config.flat()
        self.db_path = self.path / DB_NAME
        self.catalog_path = self.path / "catalog"
        self._reader = _Reader(self.db_path)
        self._features = _Columns(self._reader, "features_1m", "ts_min")
        self._signals = _Columns(self._reader, "signals_1m", "ts_min")
        self._fills = _Columns(self._reader, "fills", "id")
        self._alert_rows = _Rows(self._reader, "alerts")
        self._funding = _Rows(self._reader, "funding")
        self._positions = _Rows(self._reader, "positions", reopen=lambda r: r.get("ts_ms_close") is None)
        self._trades = _Trades(self._positions)
        self._ticks: CatalogTicks | None = None
        self._ticks_checked = 0.0
        self._ticks_lock = threading.Lock()
        self._ledger_key: tuple | None = None
        self._ledger: Ledger | None = None
        self._lock = threading.Lock()

    # -- identity ------------------------------------------------------------------------------

    @property
    def config(self) -> dict:
        return self._flat

    @property
    def metrics(self) -> dict:
        return {"run": {"instrument": self.auction_config.instrument_id, "catalog": str(self.catalog_path), "run_id": None}, "config": self.config}

    @property
    def run_id(self) -> str | None:
        return None

    def node(self) -> dict[str, Any] | None:
        """The node_status row (position as a dict, flags as bools), None before the node wrote one."""
        return self._reader.node_status()

    def ticks(self) -> CatalogTicks:
        with self._ticks_lock:
            now = time.monotonic()
            if self._ticks is None:
                if not self.catalog_path.is_dir():
                    raise FileNotFoundError(f"{self.catalog_path}: the node has recorded no ticks yet")
                self._ticks = CatalogTicks(self.catalog_path, self.auction_config.instrument_id)
                self._ticks_checked = now
            elif now - self._ticks_checked >= CATALOG_REFRESH_S:
                self._ticks.refresh()
                self._ticks_checked = now
            return self._ticks

    def _range_ns(self) -> tuple[int, int]:
        # The engine saw the recording from its first tick; the profile window never reaches back further.
        try:
            first = self.ticks().first_ts()
        except FileNotFoundError:
            first = None
        return (first or 0), 2**62

    def features(self) -> dict[str, np.ndarray]:
        f = self._features.get()
        if f is None:
            raise FileNotFoundError(f"{self.db_path}: no closed minute in features_1m yet")
        return f

    def minutes(self, start: int | None, end: int | None) -> dict[str, list]:
        if self._features.get() is None:  # before the first closed minute: the page opens empty and waits
            return {c: [] for c in (*VIEW_COLUMNS, *LEDGER_COLUMNS)}
        return super().minutes(start, end)

    def info(self) -> dict[str, Any]:
        f = self._features.get() or {}
        ts = f.get("ts_min", np.zeros(0, np.int64))
        catalog_ok, catalog_error = True, None
        try:
            self.ticks()
        except (FileNotFoundError, OSError) as exc:
            catalog_ok, catalog_error = False, str(exc)
        st = self.status()
        node = self.node() or {}
        warm = st["warmup"] or {}
        summary = [
            ["mode", st["mode"] or "-"],
            ["trading", "active" if node.get("active") else "inactive"],
            ["halted", f"yes: {node.get('halt_reason') or '?'}" if node.get("halted") else "no"],
            ["warm-up", f"{warm.get('done', '-')} / {warm.get('needed', '-')} min"],
            ["balance", "-" if node.get("balance") is None else f"{node['balance']:,.2f}"],
            ["today's P&L", "-" if node.get("day_pnl") is None else f"{node['day_pnl']:,.2f}"],
            ["node pid", str(node.get("pid") or "-")],
            ["status written", "-" if node.get("ts_ms") is None else time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(node["ts_ms"] / 1000))],
            ["store", str(self.db_path)],
        ]
        return {
            "kind": self.kind,
            "key": self.key,
            "name": self.path.name,
            "run": self.metrics["run"],
            "first_minute": int(ts[0]) if len(ts) else None,
            "last_minute": int(ts[-1]) if len(ts) else None,
            "minutes": len(ts),
            "initial_minute": int(ts[-1]) if len(ts) else None,
            "config": self.config,
            "thresholds": self.settings.thresholds(self.config),
            "summary": summary,
            "metrics": {},
            "catalog_available": catalog_ok,
            "catalog_error": catalog_error,
            "files": [DB_NAME, "catalog"],
        }

    def warm(self) -> None:
        if self._features.get() is None:
            return
        super().warm()

    # -- node state and control ----------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        node = self.node()
        if node is None:
            reason = f"no node status in {self.db_path} yet: is the node running?"
            return {"mode": None, "active": None, "halted": False, "halt_reason": None, "warmup": None, "updated_ms": None,
                    "controls": {c: {"allowed": False, "reason": reason} for c in CONTROL_COMMANDS}}  # fmt: skip
        done, needed = node.get("warmup_minutes"), node.get("warmup_needed")
        age_s = (_now_ms() - int(node["ts_ms"])) / 1000 if node.get("ts_ms") is not None else None
        halted, active = bool(node.get("halted")), bool(node.get("active"))
        # The node's own rules on its last status row (live.control.permissions); the node's answer
        # to the command stays the authority.
        controls = permissions(node)
        if age_s is None or age_s > STALE_STATUS_S:
            stale = {"allowed": False, "reason": f"the node's last status is {age_s or 0:.0f} s old: is it running?"}
            controls = {c: dict(stale) for c in CONTROL_COMMANDS}
        return {
            "mode": node.get("mode"), "active": active, "halted": halted, "halt_reason": node.get("halt_reason"),
            "warmup": None if needed is None else {"done": done, "needed": needed}, "updated_ms": node.get("ts_ms"),
            "position": node.get("position"), "balance": node.get("balance"), "day_pnl": node.get("day_pnl"),
            "kill_switch_limit": node.get("kill_switch_limit"), "controls": controls,
        }  # fmt: skip

    def control(self, command: str, wait_s: float = CONTROL_WAIT_S) -> dict[str, Any]:
        """Write a ``control`` row and wait for the node's answer, as ``run_live.py activate`` does
        (:func:`auction_trader.live.control.send_command`). The node decides (the hints in
        :meth:`status` may be a poll behind); a row no node answers in ``wait_s`` is withdrawn, so
        that a node started later does not act on it."""
        if command not in CONTROL_COMMANDS:
            raise ValueError(f"command {command!r}: {', '.join(CONTROL_COMMANDS)}")
        st = self.status()
        if st["updated_ms"] is None or (_now_ms() - int(st["updated_ms"])) / 1000 > STALE_STATUS_S:
            raise ControlRefused(st["controls"][command]["reason"])  # nobody would answer: write nothing
        reply = send_command(self.path, command, {}, wait_s)
        if reply.status == NO_ANSWER:
            raise ControlRefused(f"no answer from the node within {wait_s:g} s: is it running? (the command was withdrawn)")
        if reply.status == REFUSED:
            raise ControlRefused(reply.answer or "refused by the node")
        return {"id": reply.id, "command": command, "status": reply.status, "answer": reply.answer}

    # -- feeds ---------------------------------------------------------------------------------

    def version(self) -> int | None:
        """Changes when the node commits anything: the push loop skips its reads otherwise."""
        return self._reader.version()

    def alerts(self, since: int | None) -> list[dict[str, Any]]:
        out = []
        for a in self._alert_rows.get():
            if since is not None and int(a.get("ts_ms") or 0) < since:
                continue
            try:
                details = json.loads(a["details"]) if a.get("details") else {}
            except ValueError:
                details = {"details": a["details"]}
            detail = {"message": a.get("message"), **(details if isinstance(details, dict) else {"details": details})}
            out.append({"id": a["id"], "ts_ms": a.get("ts_ms"), "alert": a.get("type"), "mode": a.get("mode"), "detail": detail, "delivered": a.get("delivered_ts_ms") is not None})
        return out

    def state(self, ts_min: int) -> dict[str, Any]:
        out = super().state(ts_min)
        if ts_min == self.head():  # the node's own view of the position now, beside the rebuilt one
            out["node"] = self.status()
        return out

    # -- the account ---------------------------------------------------------------------------

    def ledger(self) -> Ledger:
        f = self.features()
        fills = self._fills.get() or {}
        positions = self._positions.get()
        funding = self._funding.get()
        node = self.node() or {}
        balance = node.get("balance")
        key = (id(f), id(fills), id(positions), id(funding), balance)
        with self._lock:
            if self._ledger is None or self._ledger_key != key:
                cfg = self.config
                if balance is None:
                    starting = float(cfg.get("starting_balance", 0.0))
                else:  # the balance before the fills and funding the store holds
                    base = build_ledger(f, fills, positions, funding, cfg, 0.0)
                    starting = float(balance) - float(base.balance[-1])
                self._ledger = build_ledger(f, fills, positions, funding, cfg, starting)
                self._ledger_key = key
            return self._ledger

    def close(self) -> None:
        self._reader.close()
