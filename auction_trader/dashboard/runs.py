"""Finished backtest runs: finding them under ``--runs`` and serving one to the trading view.

A run directory is what ``run_backtest.py`` writes (``metrics.json``, ``features_1m`` /
``signals_1m`` / ``fills`` / ``trades`` Parquet, ``execution.db``, ``alerts.json``). Each file is
read once and kept until it changes on disk (size and modification time are checked per request,
nothing more), so a request costs a lookup, not a reload.

Per-minute account figures are rebuilt from the fills and the funding ledger the way the backtest
books them: average-cost position, wallet balance = starting balance + realised P&L - commissions
- funding, equity = balance + the open position at the minute's ``mid_close``; the daily kill
switch is :class:`~auction_trader.core.risk.DailyLossGuard` replayed over those minutes, heat is
:func:`~auction_trader.core.sizing.heat` of the open quantity at its current stop (the entry price
once TP1 has filled, when the run moves it there) over the balance it was sized on. The tests hold
the last balance to ``metrics.json``'s ``ending_balance``.
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from auction_trader.core.risk import DailyLossGuard
from auction_trader.core.sizing import heat
from auction_trader.dashboard.settings import DashboardSettings, level
from auction_trader.dashboard.source import ControlRefused
from auction_trader.dashboard.ticks import MS_NS, CatalogTicks, footprint, profile_at, signed_trades

MINUTE_MS = 60_000

#: Columns of features_1m the trading view draws (others stay on disk).
VIEW_COLUMNS = [
    "ts_min", "open", "high", "low", "close", "volume", "mid_close", "poc", "val", "vah", "poc_bin", "val_bin", "vah_bin",
    "va_valid", "va_coverage", "bin_width_applied", "of_1m", "of_norm_1m", "qimb_close", "qimb_ema_60s",
    "ambiguous_trade_frac_1m", "spread_avg_60m", "total_volume_4h",
]  # fmt: skip

PURPOSE_LABEL = {
    "entry": "entry", "tp1": "TP1", "tp2": "TP2", "stop": "stop", "time": "time stop", "flip": "flip",
    "inside": "close back inside", "kill": "kill switch", "exit": "exit", None: "end of run",
}  # fmt: skip


class _Cached:
    """A file's parsed content, re-parsed only when the file changes."""

    def __init__(self, path: Path, parse: Callable[[Path], Any]) -> None:
        self.path, self.parse = path, parse
        self._sig: tuple | None = None
        self._value: Any = None
        self._lock = threading.Lock()

    def get(self) -> Any:
        try:
            st = self.path.stat()
            sig = (st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            sig = None
        with self._lock:
            if sig != self._sig:
                self._value = self.parse(self.path) if sig is not None else None
                self._sig = sig
            return self._value


def _columns(path: Path) -> dict[str, np.ndarray]:
    t = pq.read_table(path)
    return {name: t.column(name).to_numpy(zero_copy_only=False) for name in t.column_names}


def _sqlite_rows(table: str) -> Callable[[Path], list[dict]]:
    def read(path: Path) -> list[dict]:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            have = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if table not in have:
                return []
            cur = db.execute(f"SELECT * FROM {table} ORDER BY id")
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    return read


#: The account's columns of :meth:`BacktestRun.minutes`, beside the features' ``VIEW_COLUMNS``
#: (the :class:`Ledger`'s arrays of the same names).
LEDGER_COLUMNS = ("equity", "balance", "heat", "position", "day_pnl", "day_floor", "kill")


def plain(values: np.ndarray | list) -> list:
    """A column as JSON-ready values: NaN and inf as None, numpy scalars as Python ones."""
    arr = np.asarray(values)
    if arr.dtype.kind == "f":
        out = arr.astype(object)
        out[~np.isfinite(arr)] = None
        return [None if v is None else float(v) for v in out]
    if arr.dtype.kind in "iub":
        return arr.tolist()
    return [None if (isinstance(v, float) and not math.isfinite(v)) else v for v in arr.tolist()]


def iso_to_ns(text: str | None) -> int | None:
    if not text:
        return None
    return int(np.datetime64(text.rstrip("Z"), "ns").astype(np.int64))


@dataclass
class Ledger:
    """Per-minute account figures at each minute's close (arrays aligned with features' ts_min)."""

    position: np.ndarray  # signed qty
    avg_entry: np.ndarray
    balance: np.ndarray
    equity: np.ndarray
    realized: np.ndarray  # cumulative realised P&L net of commissions and funding
    heat: np.ndarray
    stop: np.ndarray  # current stop of the open trade (NaN when flat)
    trade: np.ndarray  # index into positions of the open trade, -1 when flat
    day_pnl: np.ndarray  # balance - the UTC day's starting balance
    day_floor: np.ndarray  # -max_daily_loss x the day's starting equity
    kill: np.ndarray  # bool


class BacktestRun:
    """One run directory as a :class:`~auction_trader.dashboard.source.TradingSource`."""

    kind = "backtest"

    def __init__(self, path: Path, key: str, settings: DashboardSettings, catalogs: Callable[[str, str], CatalogTicks]) -> None:
        self.path, self.key, self.settings = Path(path), key, settings
        self._catalogs = catalogs
        self._metrics = _Cached(self.path / "metrics.json", lambda p: json.loads(p.read_text()))
        self._features = _Cached(self.path / "features_1m.parquet", _columns)
        self._signals = _Cached(self.path / "signals_1m.parquet", _columns)
        self._fills = _Cached(self.path / "fills.parquet", _columns)
        self._trades = _Cached(self.path / "trades.parquet", _columns)
        self._alerts = _Cached(self.path / "alerts.json", lambda p: json.loads(p.read_text()))
        self._positions = _Cached(self.path / "execution.db", _sqlite_rows("positions"))
        self._funding = _Cached(self.path / "execution.db", _sqlite_rows("funding"))
        self._ledger_key: tuple | None = None
        self._ledger: Ledger | None = None
        self._lock = threading.Lock()

    # -- identity ------------------------------------------------------------------------------

    @property
    def metrics(self) -> dict:
        return self._metrics.get() or {}

    @property
    def config(self) -> dict:
        return self.metrics.get("config") or {}

    @property
    def run_id(self) -> str | None:
        return (self.metrics.get("run") or {}).get("run_id")

    def _range_ns(self) -> tuple[int, int]:
        run = self.metrics.get("run") or {}
        lo = iso_to_ns(run.get("start")) or iso_to_ns(run.get("first_tick")) or 0
        hi = iso_to_ns(run.get("end")) or iso_to_ns(run.get("last_tick")) or 2**62
        return lo, hi

    def ticks(self) -> CatalogTicks:
        run = self.metrics.get("run") or {}
        catalog = run.get("catalog")
        if not catalog:
            raise FileNotFoundError(f"{self.path / 'metrics.json'}: no run.catalog recorded")
        return self._catalogs(catalog, run.get("instrument") or "BTCUSDT-LINEAR.BYBIT")

    def features(self) -> dict[str, np.ndarray]:
        f = self._features.get()
        if f is None:
            raise FileNotFoundError(f"{self.path / 'features_1m.parquet'}: missing (the run's strategy wrote no features)")
        return f

    def info(self) -> dict[str, Any]:
        from auction_trader.backtest.report import SUMMARY_ROWS, _fmt  # noqa: PLC0415

        m = self.metrics
        run = m.get("run") or {}
        f = self._features.get() or {}
        ts = f.get("ts_min", np.zeros(0, np.int64))
        catalog_ok, catalog_error = True, None
        try:
            self.ticks()
        except (FileNotFoundError, OSError) as exc:
            catalog_ok, catalog_error = False, str(exc)
        return {
            "kind": self.kind,
            "key": self.key,
            "name": self.path.name,
            "run": run,
            "first_minute": int(ts[0]) if len(ts) else None,
            "last_minute": int(ts[-1]) if len(ts) else None,
            "minutes": len(ts),
            "initial_minute": self.initial_minute(),
            "config": self.config,
            "thresholds": self.settings.thresholds(self.config),
            "summary": [[label, _fmt(m, k, fmt)] for k, label, fmt in SUMMARY_ROWS],
            "metrics": {k: v for k, v in m.items() if k not in ("config", "funding", "run")},
            "catalog_available": catalog_ok,
            "catalog_error": catalog_error,
            "files": sorted(p.name for p in self.path.iterdir() if p.is_file() and not p.name.startswith(".")),
        }

    def initial_minute(self) -> int | None:
        """The minute the view opens at: 20 minutes after the first fill (the first trade in view,
        with some context), else the last minute."""
        ts = (self._features.get() or {}).get("ts_min")
        if ts is None or not len(ts):
            return None
        fills = (self._fills.get() or {}).get("ts_event")
        if fills is None or not len(fills):
            return int(ts[-1])
        i = max(0, int(np.searchsorted(ts, int(fills[0]) // MS_NS, "right")) - 1)
        return int(ts[min(len(ts) - 1, i + 20)])

    def warm(self) -> None:
        """Read and compute what the view's first requests need (files, ledger, markers, the
        opening minute's profile and footprint), so that the first page open finds them ready."""
        if self._features.get() is None:
            return
        self.minutes(None, None)
        self.markers(None, None)
        ts = self.initial_minute()
        try:
            self.ticks()
        except (FileNotFoundError, OSError):
            return
        if ts is not None:
            self.state(ts)
            self.profile(ts)
            self.footprint(max(int(self.features()["ts_min"][0]), ts - 14 * MINUTE_MS), ts, "inferred", None, 24)

    def status(self) -> dict[str, Any]:
        reason = "a finished backtest run: nothing to activate, deactivate or resolve"
        return {"mode": "backtest", "warmup": None, "halted": False, "controls": {c: {"allowed": False, "reason": reason} for c in ("activate", "deactivate", "resolve")}}

    def control(self, command: str) -> dict[str, Any]:
        raise ControlRefused(self.status()["controls"].get(command, {}).get("reason") or f"unknown command {command!r}")

    def head(self) -> int | None:
        ts = (self._features.get() or {}).get("ts_min")
        return int(ts[-1]) if ts is not None and len(ts) else None

    # -- per minute ----------------------------------------------------------------------------

    def _index(self, ts_min: int) -> int:
        ts = self.features()["ts_min"]
        i = int(np.searchsorted(ts, ts_min, "left"))
        if i >= len(ts) or ts[i] != ts_min:
            raise KeyError(f"no minute {ts_min} in {self.key} (its minutes: {int(ts[0]) if len(ts) else '-'} .. {int(ts[-1]) if len(ts) else '-'})")
        return i

    def minutes(self, start: int | None, end: int | None) -> dict[str, list]:
        f = self.features()
        ts = f["ts_min"]
        a = 0 if start is None else int(np.searchsorted(ts, start, "left"))
        b = len(ts) if end is None else int(np.searchsorted(ts, end, "right"))
        out = {c: plain(f[c][a:b]) for c in VIEW_COLUMNS if c in f}
        led = self.ledger()
        for name in LEDGER_COLUMNS:
            out[name] = plain(getattr(led, name)[a:b])
        return out

    # -- the account, minute by minute ---------------------------------------------------------

    def ledger(self) -> Ledger:
        f = self.features()
        fills = self._fills.get() or {}
        positions = self._positions.get() or []
        funding = self._funding.get() or []
        key = (id(f), id(fills), id(positions), id(funding))
        with self._lock:
            if self._ledger is None or self._ledger_key != key:
                starting = float(self.metrics.get("starting_balance", self.config.get("starting_balance", 0.0)))
                self._ledger = build_ledger(f, fills, positions, funding, self.config, starting)
                self._ledger_key = key
            return self._ledger

    def state(self, ts_min: int) -> dict[str, Any]:
        i = self._index(ts_min)
        led = self.ledger()
        f = self.features()
        th = self.settings.thresholds(self.config)
        amb = _num(f["ambiguous_trade_frac_1m"][i])
        pos = float(led.position[i])
        out: dict[str, Any] = {
            "ts_min": ts_min,
            "mid": _num(f["mid_close"][i]),
            "balance": float(led.balance[i]),
            "equity": float(led.equity[i]),
            "realized": float(led.realized[i]),
            "unrealized": float(led.equity[i] - led.balance[i]),
            "day_pnl": float(led.day_pnl[i]),
            "day_floor": float(led.day_floor[i]),
            "kill_switch": bool(led.kill[i]),
            "heat": float(led.heat[i]),
            "heat_level": level(float(led.heat[i]), th["heat"]["amber"], th["heat"]["red"]),
            "ambiguous": amb,
            "ambiguous_level": level(amb, th["ambiguous"]["amber"], th["ambiguous"]["red"]),
            "va_valid": bool(f["va_valid"][i]) if "va_valid" in f else None,
            "position": None,
        }
        r = int(led.trade[i])
        if pos != 0 and r >= 0:
            row = (self._positions.get() or [])[r]
            out["position"] = {
                "side": "LONG" if pos > 0 else "SHORT",
                "qty": abs(pos),
                "entry": float(led.avg_entry[i]),
                "stop": float(led.stop[i]),
                "stop_planned": float(row["stop_price"]),
                "tp1": row.get("tp1_price"),
                "tp2": row.get("tp2_price"),
                "setup": row.get("strategy_tag"),
                "opened_ms": row.get("ts_ms_open"),
                "leverage": row.get("leverage_used"),
            }
        return out

    # -- ticks ---------------------------------------------------------------------------------

    def profile(self, ts_min: int) -> dict[str, Any]:
        i = self._index(ts_min)
        f = self.features()
        ticks = self.ticks()
        tick = ticks.tick_size
        width = round(float(f["bin_width_applied"][i]) / tick)
        lo, hi = self._range_ns()
        p = profile_at(ticks, ts_min, int(self.config.get("rolling_window_minutes", 240)), width, float(self.config.get("va_fraction", 0.7)), lo, hi)
        row = {c: _num(f[c][i]) for c in ("poc", "val", "vah", "poc_bin", "val_bin", "vah_bin") if c in f}

        def px(k: int | None) -> float | None:
            return None if k is None else round(k * tick, 10)

        return {
            "ts_min": ts_min,
            "window_start": p.window_start_ms,
            "tick_size": tick,
            "width": round(width * tick, 10),
            "bins": [px(p.lo_key + k * width) for k in range(len(p.lots))],
            "volume": plain(p.lots * ticks.size_step),
            "poc_bin": px(p.poc_key),
            "val_bin": px(p.val_key),
            "vah_bin": px(p.vah_key),
            # The levels as prices: the value area is the range [VAL bin's lower edge, VAH bin's upper edge].
            "va_low": px(p.val_key),
            "va_high": px(None if p.vah_key is None else p.vah_key + width),
            "poc_mid": None if p.poc_key is None else round((p.poc_key + width / 2) * tick, 10),
            "va_volume": p.va_lots * ticks.size_step,
            "total_volume": p.total_lots * ticks.size_step,
            "trades": p.trades,
            "features": row,
        }

    def footprint(self, start: int, end: int, side: str, bin_ticks: int | None, rows: int | None = None) -> dict[str, Any]:
        """``bin_ticks`` sets the price bin; else the value area's bin width at ``end``, times the
        smallest whole factor that fits the traded range into ``rows`` rows (when given)."""
        if side not in ("inferred", "exchange"):
            raise ValueError(f"side {side!r}: inferred or exchange")
        if end < start:
            raise ValueError(f"end {end} before start {start}")
        if (end - start) // MINUTE_MS + 1 > MAX_FOOTPRINT_MINUTES:
            raise ValueError(f"at most {MAX_FOOTPRINT_MINUTES} minutes per footprint")
        f = self.features()
        i = self._index(end)
        ticks = self.ticks()
        width = int(bin_ticks) if bin_ticks else round(float(f["bin_width_applied"][i]) / ticks.tick_size)
        if width < 1:
            raise ValueError("bin_ticks must be >= 1")
        lo, hi = self._range_ns()
        signed = signed_trades(ticks, max(lo, start * MS_NS), min(hi, (end + MINUTE_MS) * MS_NS - 1), bool(self.config.get("use_tick_rule_fallback", True)), lo)
        if rows and not bin_ticks and len(signed.trades):
            span = int(signed.trades.ticks.max() // width - signed.trades.ticks.min() // width) + 1
            width *= max(1, math.ceil(span / rows))
        fp = footprint(signed, start, end, width, side)
        step = ticks.size_step
        a = int(np.searchsorted(f["ts_min"], start, "left"))
        b = int(np.searchsorted(f["ts_min"], end, "right"))
        return {
            "minutes": fp.minutes,
            "side": fp.side,
            "exchange_side_available": fp.exchange_side_available,
            "width": round(width * ticks.tick_size, 10),
            "bins": [round(k * ticks.tick_size, 10) for k in fp.keys],
            "buy": (fp.buy * step).round(9).tolist(),
            "sell": (fp.sell * step).round(9).tolist(),
            "unsigned": (fp.unsigned * step).round(9).tolist(),
            "delta": plain(((fp.buy - fp.sell).sum(axis=0) * step).round(9)),
            "of_1m": plain(f["of_1m"][a:b]) if fp.side == "inferred" else None,
        }

    # -- markers and the feed ------------------------------------------------------------------

    def markers(self, start: int | None, end: int | None) -> dict[str, list]:
        sig = self._signals.get() or {}
        fills = self._fills.get() or {}
        lo = -(2**62) if start is None else start
        hi = 2**62 if end is None else end + MINUTE_MS - 1
        reasons: dict[int, str] = {}
        signals = []
        if sig:
            flags = [c for c in sig if c.startswith("signal_")]
            for k, ts in enumerate(sig["ts_min"]):
                ts = int(ts)
                reasons[ts] = str(sig["reason_code"][k])
                action = str(sig["chosen_action"][k])
                fired = [c[len("signal_") :] for c in flags if sig[c][k]]
                if (action != "HOLD" or fired) and lo <= ts <= hi:
                    snap = _json(sig.get("feature_snapshot", [None] * (k + 1))[k])
                    signals.append(
                        {"ts_min": ts, "action": action, "reason": reasons[ts], "fired": fired, "close": snap.get("close"), "entry": snap.get("entry"), "stop": snap.get("stop"), "tp1": snap.get("tp1"), "tp2": snap.get("tp2")},
                    )
        out_fills = []
        for k in range(len(fills.get("ts_event", []))):
            ts_ms = int(fills["ts_event"][k]) // MS_NS
            if not lo <= ts_ms <= hi:
                continue
            purpose = fills["purpose"][k]
            signal_ts = fills["signal_ts_min"][k]
            signal_ts = None if signal_ts is None or (isinstance(signal_ts, float) and math.isnan(signal_ts)) else int(signal_ts)
            if purpose == "entry":
                reason = reasons.get(signal_ts, "entry")
            elif purpose in ("time", "inside", "kill", "flip"):
                decided = ts_ms // MINUTE_MS * MINUTE_MS - MINUTE_MS  # the minute whose close decided it
                reason = reasons.get(decided, PURPOSE_LABEL[purpose])
            else:
                reason = PURPOSE_LABEL.get(purpose, str(purpose))
            out_fills.append(
                {
                    "ts_ms": ts_ms, "side": fills["side"][k], "price": float(fills["price"][k]), "qty": float(fills["qty"][k]),
                    "purpose": purpose, "label": PURPOSE_LABEL.get(purpose, str(purpose)), "reason": reason, "setup": fills["setup"][k],
                    "liquidity": fills["liquidity"][k], "order_type": fills["order_type"][k], "commission": float(fills["commission"][k]),
                    "bid": _num(fills["bid_at_fill"][k]), "ask": _num(fills["ask_at_fill"][k]), "signal_ts_min": signal_ts,
                },
            )  # fmt: skip
        trades = self._trades.get() or {}
        out_trades = [{c: _plainval(trades[c][k]) for c in trades} for k in range(len(trades.get("trade", [])))]
        return {"signals": signals, "fills": out_fills, "trades": out_trades}

    def alerts(self, since: int | None) -> list[dict[str, Any]]:
        rows = self._alerts.get() or []
        out = []
        for a in rows:
            if since is not None and int(a.get("ts_ms", 0)) < since:
                continue
            out.append({"ts_ms": a.get("ts_ms"), "alert": a.get("alert"), "detail": _json(a.get("detail"))})
        return out


MAX_FOOTPRINT_MINUTES = 240


def build_ledger(f: dict, fills: dict, positions: list[dict], funding: list[dict], cfg: dict, starting: float) -> Ledger:
    """The account at each minute's close from the fills, the positions rows and the funding ledger
    (see the module docstring); ``f`` holds ``ts_min`` and ``mid_close``, ``fills`` the fill columns."""
    ts = f["ts_min"].astype(np.int64)
    n = len(ts)
    close_ns = (ts + MINUTE_MS) * MS_NS
    breakeven = bool(cfg.get("move_stop_to_breakeven_after_tp1", True))
    mid = f["mid_close"].astype(np.float64)
    mid = _carry(mid)

    f_ts = fills.get("ts_event", np.zeros(0, np.int64)).astype(np.int64)
    f_side = np.where(fills.get("side", np.zeros(0, object)) == "BUY", 1.0, -1.0)
    f_qty = fills.get("qty", np.zeros(0)).astype(np.float64)
    f_px = fills.get("price", np.zeros(0)).astype(np.float64)
    f_fee = fills.get("commission", np.zeros(0)).astype(np.float64)
    f_purpose = fills.get("purpose", np.zeros(0, object))
    f_signal = fills.get("signal_ts_min", np.zeros(0, object))

    # Position, average entry and cash after each fill (average cost, as the venue books it).
    pos_after, avg_after, cash_after = [], [], []
    pos = avg = cash = 0.0
    tp1_at: dict = {}  # the trade's signal minute -> its first TP1 fill (ns)
    for k in range(len(f_ts)):
        q = f_side[k] * f_qty[k]
        p = f_px[k]
        realized = 0.0
        if pos == 0 or (pos > 0) == (q > 0):
            new = pos + q
            avg = (avg * abs(pos) + p * abs(q)) / abs(new)
            pos = new
        else:
            closed = min(abs(q), abs(pos))
            realized = (p - avg) * closed * (1 if pos > 0 else -1)
            new = pos + q
            if abs(q) > abs(pos) + 1e-12:
                avg = p
            elif abs(new) < 1e-12:
                avg = 0.0
            pos = 0.0 if abs(new) < 1e-12 else new
        cash += realized - f_fee[k]
        if f_purpose[k] == "tp1":
            tp1_at.setdefault(f_signal[k], int(f_ts[k]))
        pos_after.append(pos)
        avg_after.append(avg)
        cash_after.append(cash)
    i = np.searchsorted(f_ts, close_ns, "left") - 1  # the last fill strictly before the close
    has = i >= 0
    ii = np.maximum(i, 0)
    pos_at = np.where(has, np.array(pos_after + [0.0])[ii], 0.0)
    avg_at = np.where(has, np.array(avg_after + [0.0])[ii], 0.0)
    cash_at = np.where(has, np.array(cash_after + [0.0])[ii], 0.0)

    fund_ts = np.array([int(r["ts_ms"]) * MS_NS for r in funding], dtype=np.int64)
    fund_cum = np.cumsum([float(r["amount"]) for r in funding]) if funding else np.zeros(0)
    j = np.searchsorted(fund_ts, close_ns, "left") - 1
    paid = np.where(j >= 0, np.concatenate([fund_cum, [0.0]])[np.maximum(j, 0)], 0.0) if len(fund_ts) else np.zeros(n)

    balance = starting + cash_at - paid
    equity = balance + pos_at * (mid - avg_at)
    equity = np.where(np.isfinite(equity), equity, balance)

    # The open trade at each close: the positions row it belongs to, its stop and the heat.
    trade = np.full(n, -1, np.int64)
    stop = np.full(n, np.nan)
    heat_at = np.zeros(n)
    for r, row in enumerate(positions):
        lo = int(row["ts_ms_open"]) * MS_NS
        hi = int(row["ts_ms_close"]) * MS_NS if row.get("ts_ms_close") is not None else 2**62
        sel = (close_ns > lo) & (close_ns <= hi) & (pos_at != 0)
        trade[sel] = r
        tp1_ns = tp1_at.get(row.get("signal_ts_min"))
        for k in np.flatnonzero(sel):
            tp1 = tp1_ns is not None and tp1_ns < close_ns[k]
            s = avg_at[k] if (tp1 and breakeven) else float(row["stop_price"])
            stop[k] = s
            heat_at[k] = heat([(abs(pos_at[k]), avg_at[k], s)], balance[k])

    guard = DailyLossGuard(float(cfg.get("max_daily_loss", 0.05)))
    day_pnl, day_floor, kill = np.zeros(n), np.zeros(n), np.zeros(n, bool)
    for k in range(n):
        kill[k] = guard.on_minute(int(ts[k]) + MINUTE_MS, float(balance[k]), float(equity[k]))
        day_pnl[k] = balance[k] - guard.day_start_balance
        day_floor[k] = guard.day_pnl_floor
    return Ledger(pos_at, np.where(pos_at != 0, avg_at, np.nan), balance, equity, cash_at - paid, heat_at, stop, trade, day_pnl, day_floor, kill)


def _carry(a: np.ndarray) -> np.ndarray:
    """NaN replaced by the last finite value before it."""
    ok = np.isfinite(a)
    if ok.all() or not ok.any():
        return a
    idx = np.where(ok, np.arange(len(a)), -1)
    idx = np.maximum.accumulate(idx)
    return np.where(idx >= 0, a[np.maximum(idx, 0)], np.nan)


def _num(v) -> float | None:
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def _plainval(v):
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _json(text) -> dict:
    if not text:
        return {}
    if isinstance(text, dict):
        return text
    try:
        out = json.loads(text)
    except (TypeError, ValueError):
        return {"text": str(text)}
    return out if isinstance(out, dict) else {"value": out}
