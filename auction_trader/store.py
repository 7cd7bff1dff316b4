"""``execution.db``: the SQLite store of positions, state snapshots, funding and grid results.

The schemas of ``positions``, ``state_snapshots`` and ``grid_search_results`` are specv2 §3.3's,
column for column (``positions`` adds ``exit_reason`` - stop, tp1, tp2, time, inside, kill, flip,
end_of_run - and the entry's ``signal_ts_min``; ``grid_search_results`` adds ``grid_id``, the grid
that stored the row, ``status``, ``ok`` or ``failed``, and ``seconds``, the combination's wall time
in its worker); ``funding`` is the funding ledger (DESIGN.md: P&L reports and the kill switch
include funding). The same class serves a backtest's run directory, a grid's output directory and,
later, the live node.

Rows are dicts keyed by column name. A key that is not a column is an error (it would otherwise be
lost silently); a missing nullable column is NULL; values that are dicts or lists (the JSON columns)
are stored as JSON with sorted keys, so the same rows give the same file.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

SCHEMA: dict[str, str] = {
    "positions": """
        CREATE TABLE IF NOT EXISTS positions (
            id                  INTEGER PRIMARY KEY AUTOINCREMENT,
            ts_ms_open          INTEGER NOT NULL,
            ts_ms_close         INTEGER,
            side                TEXT NOT NULL,
            entry_price         DOUBLE NOT NULL,
            exit_price          DOUBLE,
            qty_contracts       DOUBLE NOT NULL,
            qty_at_tp1          DOUBLE,
            stop_price          DOUBLE NOT NULL,
            tp1_price           DOUBLE,
            tp2_price           DOUBLE,
            strategy_tag        TEXT,
            status              TEXT,
            realized_pnl        DOUBLE,
            fees_paid           DOUBLE,
            funding_paid        DOUBLE,
            leverage_used       DOUBLE,
            risk_pct_used       DOUBLE,
            exit_reason         TEXT,
            signal_ts_min       INTEGER
        )""",
    "state_snapshots": """
        CREATE TABLE IF NOT EXISTS state_snapshots (
            id               INTEGER PRIMARY KEY AUTOINCREMENT,
            ts_ms            INTEGER NOT NULL,
            snapshot_type    TEXT,
            position_state   TEXT,
            acceptance_state TEXT,
            pending_orders   TEXT,
            account_state    TEXT
        )""",
    "grid_search_results": """
        CREATE TABLE IF NOT EXISTS grid_search_results (
            id              INTEGER PRIMARY KEY AUTOINCREMENT,
            run_id          TEXT NOT NULL,
            params_json     TEXT NOT NULL,
            metrics_json    TEXT NOT NULL,
            created_at      INTEGER NOT NULL,
            grid_id         TEXT,
            status          TEXT,
            seconds         DOUBLE
        )""",
    "funding": """
        CREATE TABLE IF NOT EXISTS funding (
            id          INTEGER PRIMARY KEY AUTOINCREMENT,
            ts_ms       INTEGER NOT NULL,
            side        TEXT NOT NULL,
            qty         DOUBLE NOT NULL,
            mark_price  DOUBLE NOT NULL,
            rate_bps    DOUBLE NOT NULL,
            amount      DOUBLE NOT NULL
        )""",
}

#: Insertable columns of each table (everything but the autoincrement id), in schema order.
COLUMNS: dict[str, list[str]] = {
    "positions": [
        "ts_ms_open", "ts_ms_close", "side", "entry_price", "exit_price", "qty_contracts", "qty_at_tp1",
        "stop_price", "tp1_price", "tp2_price", "strategy_tag", "status", "realized_pnl", "fees_paid",
        "funding_paid", "leverage_used", "risk_pct_used", "exit_reason", "signal_ts_min",
    ],
    "state_snapshots": ["ts_ms", "snapshot_type", "position_state", "acceptance_state", "pending_orders", "account_state"],
    "grid_search_results": ["run_id", "params_json", "metrics_json", "created_at", "grid_id", "status", "seconds"],
    "funding": ["ts_ms", "side", "qty", "mark_price", "rate_bps", "amount"],
}

_JSON_COLUMNS = {"position_state", "acceptance_state", "pending_orders", "account_state", "params_json", "metrics_json"}


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False, default=str)


class ExecutionStore:
    """One ``execution.db``. Use as a context manager, or call :meth:`close`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(self.path))
        with self._db:
            for ddl in SCHEMA.values():
                self._db.execute(ddl)
            self._add_missing_columns()
            self._db.execute("CREATE INDEX IF NOT EXISTS grid_search_results_run_id ON grid_search_results (run_id)")

    def _add_missing_columns(self) -> None:
        """Files written before a table gained columns get them (NULL in the old rows)."""
        for table, columns in COLUMNS.items():
            have = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
            ddl = SCHEMA[table]
            for column in columns:
                if column not in have:
                    kind = ddl.split(f" {column} ", 1)[1].split()[0].rstrip(",")
                    self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")

    def __enter__(self) -> ExecutionStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    # -- writing ----------------------------------------------------------------------------------

    def insert(self, table: str, rows: Iterable[Mapping[str, Any]]) -> int:
        """Insert rows (dicts keyed by column) into ``table`` in one transaction; returns the count."""
        if table not in COLUMNS:
            raise ValueError(f"unknown table {table!r} (have {', '.join(COLUMNS)})")
        columns = COLUMNS[table]
        allowed = set(columns)
        values = []
        for n, row in enumerate(rows):
            unknown = sorted(set(row) - allowed - {"id"})
            if unknown:
                raise ValueError(f"{table} row {n}: unknown column(s) {', '.join(unknown)} (columns: {', '.join(columns)})")
            values.append(tuple(self._cell(c, row.get(c)) for c in columns))
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        try:
            with self._db:
                self._db.executemany(sql, values)
        except sqlite3.IntegrityError as exc:
            raise ValueError(f"{table}: {exc}") from None
        return len(values)

    def insert_positions(self, rows: Iterable[Mapping[str, Any]]) -> int:
        return self.insert("positions", rows)

    def insert_state_snapshots(self, rows: Iterable[Mapping[str, Any]]) -> int:
        return self.insert("state_snapshots", rows)

    def insert_funding(self, events: Iterable[Any]) -> int:
        """Funding events (``FundingEvent`` objects or dicts with ts (ns) or ts_ms)."""
        rows = []
        for e in events:
            d = e.as_row() if hasattr(e, "as_row") else dict(e)
            if "ts" in d:
                d["ts_ms"] = int(d.pop("ts")) // 1_000_000
            rows.append(d)
        return self.insert("funding", rows)

    def add_grid_result(
        self,
        run_id: str,
        params: Mapping[str, Any],
        metrics: Mapping[str, Any] | str,
        created_at: int,
        *,
        grid_id: str | None = None,
        status: str = "ok",
        seconds: float | None = None,
    ) -> int:
        """One grid combination's parameters and metrics (a JSON string is stored as given);
        ``created_at`` in ms (the caller's clock). Replaces an earlier row of the same ``run_id``:
        one row per combination, whatever was retried."""
        row = {"run_id": run_id, "params_json": params, "metrics_json": metrics, "created_at": int(created_at), "grid_id": grid_id, "status": status, "seconds": seconds}
        columns = COLUMNS["grid_search_results"]
        with self._db:
            self._db.execute("DELETE FROM grid_search_results WHERE run_id = ?", (run_id,))
            cur = self._db.execute(
                f"INSERT INTO grid_search_results ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                tuple(self._cell(c, row[c]) for c in columns),
            )
        return int(cur.lastrowid)

    @staticmethod
    def _cell(column: str, value: Any) -> Any:
        if column in _JSON_COLUMNS and value is not None and not isinstance(value, str):
            return _json(value)
        if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalars
            return value.item()
        return value

    # -- reading ----------------------------------------------------------------------------------

    def rows(self, table: str) -> list[dict[str, Any]]:
        if table not in COLUMNS:
            raise ValueError(f"unknown table {table!r}")
        cur = self._db.execute(f"SELECT * FROM {table} ORDER BY id")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def positions(self) -> list[dict[str, Any]]:
        return self.rows("positions")

    def state_snapshots(self) -> list[dict[str, Any]]:
        return self.rows("state_snapshots")

    def funding(self) -> list[dict[str, Any]]:
        return self.rows("funding")

    def grid_results(self) -> list[dict[str, Any]]:
        return self.rows("grid_search_results")
