"""Everything under ``--runs``: backtest run directories and grid output directories, any depth.

A run directory has ``metrics.json``; a grid directory has an ``execution.db`` with rows in
``grid_search_results`` (and no ``metrics.json``). Each is named by its path relative to the runs
folder (``sample``, ``sample-grid``, ``sample-grid/runs/2ca94ca508a7``), which is also its URL.
The folder is rescanned when asked for the list (the index page) or for a name it does not know;
the objects of known directories stay, with their caches.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

from auction_trader.dashboard.grids import GridDir
from auction_trader.dashboard.runs import BacktestRun
from auction_trader.dashboard.settings import DashboardSettings
from auction_trader.dashboard.ticks import CatalogTicks

RESCAN_SECONDS = 2.0
#: Runs read ahead in the background (newest first) when the server starts and when the index lists them.
WARM_RUNS = 8


def _is_grid(path: Path) -> bool:
    db = path / "execution.db"
    if not db.is_file() or (path / "metrics.json").exists():
        return False
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
            return con.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='grid_search_results'").fetchone() is not None and (
                con.execute("SELECT 1 FROM grid_search_results LIMIT 1").fetchone() is not None
            )
    except sqlite3.Error:
        return False


class Library:
    def __init__(self, root: Path | None, settings: DashboardSettings | None = None) -> None:
        self.root = Path(root).resolve() if root is not None else None
        self.settings = settings or DashboardSettings()
        self.runs: dict[str, BacktestRun] = {}
        self.grids: dict[str, GridDir] = {}
        self._scanned = 0.0
        self._lock = threading.Lock()
        self._warmed: dict[str, float] = {}  # run key -> metrics.json mtime when it was warmed
        self._warming = threading.Lock()
        self.stopping = threading.Event()
        self.live: dict[str, Any] = {}  # key -> a live source (LiveSource), served like a run

    def warm_in_background(self) -> threading.Thread:
        """Read the newest runs ahead, in a thread: the first open of a trading view then costs what
        a second one does (the files parsed, the ledger built, the catalog's row groups decoded)."""
        thread = threading.Thread(target=self.warm, name="dashboard-warm", daemon=True)
        thread.start()
        return thread

    def warm(self, limit: int = WARM_RUNS) -> None:
        if not self._warming.acquire(blocking=False):
            return  # one warmer at a time; the running one will see the same runs
        try:
            for source in self.live.values():
                if self.stopping.is_set():
                    return
                _quietly(source.warm)
            self.scan()

            def mtime(run: BacktestRun) -> float:
                try:
                    return (run.path / "metrics.json").stat().st_mtime
                except OSError:
                    return 0.0

            runs = sorted(self.runs.values(), key=mtime, reverse=True)[:limit]
            for run in runs:
                if self.stopping.is_set():
                    return
                stamp = mtime(run)
                if self._warmed.get(run.key) == stamp:
                    continue
                _quietly(run.warm)
                self._warmed[run.key] = stamp
        finally:
            self._warming.release()

    def _key(self, path: Path) -> str:
        rel = path.relative_to(self.root).as_posix()
        return self.root.name if rel == "." else rel

    def scan(self, force: bool = False) -> None:
        with self._lock:
            if not force and time.monotonic() - self._scanned < RESCAN_SECONDS:
                return
            runs, grids = {}, {}
            if self.root is not None and self.root.is_dir():
                for dirpath, dirnames, filenames in os.walk(self.root):
                    dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                    path = Path(dirpath)
                    if "metrics.json" in filenames:
                        key = self._key(path)
                        runs[key] = self.runs.get(key) or BacktestRun(path, key, self.settings, catalog_ticks)
                    elif "execution.db" in filenames and _is_grid(path):
                        key = self._key(path)
                        grids[key] = self.grids.get(key) or GridDir(path, key)
            self.runs, self.grids = runs, grids
            self._scanned = time.monotonic()

    def run(self, key: str) -> BacktestRun:
        if key in self.live:
            return self.live[key]
        if key not in self.runs:
            self.scan(force=True)
        if key not in self.runs:
            raise KeyError(f"no run {key!r} under {self.root}")
        return self.runs[key]

    def grid(self, key: str) -> GridDir:
        if key not in self.grids:
            self.scan(force=True)
        if key not in self.grids:
            raise KeyError(f"no grid {key!r} under {self.root}")
        return self.grids[key]

    def find_run(self, run_id: str) -> str | None:
        """The key of a run directory holding run ``run_id`` (a grid row's full single run)."""
        for key, run in self.runs.items():
            if run.run_id == run_id:
                return key
        return None

    def listing(self) -> dict[str, Any]:
        self.scan(force=True)
        runs = []
        for key, run in sorted(self.runs.items()):
            m = run.metrics
            info = m.get("run") or {}
            runs.append(
                {
                    "key": key, "run_id": info.get("run_id"), "instrument": info.get("instrument"), "first_tick": info.get("first_tick"),
                    "last_tick": info.get("last_tick"), "synthetic": info.get("synthetic_data"), "trades": m.get("trades"), "net_pnl": m.get("net_pnl"),
                    "return_pct": m.get("return_pct"), "max_drawdown": m.get("max_drawdown"), "catalog": info.get("catalog"),
                },
            )  # fmt: skip
        grids = []
        for key, grid in sorted(self.grids.items()):
            try:
                grids.append(grid.summary())
            except (sqlite3.Error, ValueError, KeyError) as exc:
                grids.append({"key": key, "name": Path(key).name, "error": str(exc)})
        live = []
        for key, source in self.live.items():
            st = source.status()
            live.append({"key": key, "data_dir": str(source.path), "mode": st["mode"], "active": st.get("active"), "halted": st["halted"], "warmup": st["warmup"], "head": source.head()})
        return {"root": str(self.root or ""), "runs": runs, "grids": grids, "live": live}


def _quietly(fn) -> None:
    """Warming is best effort: a broken run shows its error when it is opened, not here (the
    failure is still logged at debug level, for whoever is looking)."""
    try:
        fn()
    except Exception:  # noqa: BLE001
        logging.getLogger(__name__).debug("warming a run failed", exc_info=True)


@lru_cache(maxsize=16)
def catalog_ticks(catalog: str, instrument_id: str) -> CatalogTicks:
    """One reader per catalog and instrument for the whole process (their row-group caches are shared)."""
    path = Path(catalog)
    if not path.is_dir():
        raise FileNotFoundError(f"the run's catalog {catalog} does not exist on this machine (the profile and the footprint read its ticks)")
    return CatalogTicks(path, instrument_id)
