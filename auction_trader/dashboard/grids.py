"""Grid output directories: the combinations, their neighbour spreads, heatmaps, and single reruns.

A grid directory holds ``execution.db`` (table ``grid_search_results``: the full configuration
and the metrics of every combination) and ``grid.json`` (the axes in the grid file's order, the
catalog and the range). The ranking, the neighbours and the heatmap are
:mod:`auction_trader.grid.analysis`'s, the functions the CLI prints with, so the page shows the
CLI's numbers. A directory written before ``grid.json`` existed still opens: the axes are then the
parameters that vary between rows (parameters that step together - a bijection between their
values - are one ``zip`` axis), each in ascending order, which is the CLI's order whenever the grid
file lists its values ascending; such a grid cannot rerun a combination (the catalog and range are
unknown) and says so.

Rerunning one combination alone (its full outputs, the same run id) starts ``run_backtest.py`` in
a child process, one at a time, into ``<grid>/runs/<run_id>/``.
"""

from __future__ import annotations

import json
import shlex
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import Any

import yaml

from auction_trader.config import LEAF_TO_GROUP, REPO_ROOT
from auction_trader.grid.analysis import LOWER_IS_BETTER, Row, flatten, heatmap_matrix, metric_names, numeric, rank

MANIFEST = "grid.json"


@dataclass(frozen=True)
class GridAxis:
    keys: tuple[str, ...]
    values: tuple[tuple, ...]

    @property
    def name(self) -> str:
        return "+".join(self.keys)

    def label(self, i: int) -> str:
        return ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in self.values[i])


@dataclass
class GridData:
    axes: list[GridAxis]
    rows: list[Row]  # combinations on the axes, in grid order (missing ones as status "missing")
    strays: list[Row]  # stored rows that do not sit on the axes (another grid wrote into the directory)
    fixed: dict[str, Any]  # parameters every combination shares
    manifest: dict | None
    configs: dict[str, dict] = field(default_factory=dict)  # run_id -> full flat configuration


def _key(v: Any) -> tuple:
    return (0, v, "") if isinstance(v, (int, float)) and not isinstance(v, bool) else (1, 0, str(v))


def infer_axes(params: list[dict[str, Any]]) -> list[GridAxis]:
    """The swept parameters of a result set without its grid file (ascending values; bijective
    parameters form one axis)."""
    if not params:
        return []
    names = [k for k in params[0] if len({json.dumps(p.get(k), sort_keys=True) for p in params}) > 1]
    groups: list[list[str]] = []
    for name in names:
        for g in groups:
            pairs = {(json.dumps(p.get(g[0])), json.dumps(p.get(name))) for p in params}
            if len(pairs) == len({a for a, _ in pairs}) == len({b for _, b in pairs}):
                g.append(name)
                break
        else:
            groups.append([name])
    axes = []
    for g in groups:
        steps = sorted({tuple(p.get(k) for k in g) for p in params}, key=lambda t: tuple(_key(v) for v in t))
        axes.append(GridAxis(tuple(g), tuple(steps)))
    return axes


class GridDir:
    """One grid output directory, read when its files change."""

    def __init__(self, path: Path, key: str) -> None:
        self.path, self.key = Path(path), key
        self._sig: tuple | None = None
        self._data: GridData | None = None
        self._lock = threading.Lock()

    def _signature(self) -> tuple:
        out = []
        for name in ("execution.db", "execution.db-wal", MANIFEST):
            try:
                st = (self.path / name).stat()
                out.append((st.st_mtime_ns, st.st_size))
            except FileNotFoundError:
                out.append(None)
        return tuple(out)

    def data(self) -> GridData:
        sig = self._signature()
        with self._lock:
            if self._data is None or sig != self._sig:
                self._data = self._load()
                self._sig = sig
            return self._data

    def _load(self) -> GridData:
        with sqlite3.connect(f"file:{self.path / 'execution.db'}?mode=ro", uri=True) as db:
            stored = [
                {"run_id": r[0], "params": json.loads(r[1]), "metrics": json.loads(r[2]), "status": r[3], "seconds": r[4], "created_at": r[5]}
                for r in db.execute("SELECT run_id, params_json, metrics_json, status, seconds, created_at FROM grid_search_results ORDER BY id")
            ]
        manifest = None
        if (self.path / MANIFEST).exists():
            manifest = json.loads((self.path / MANIFEST).read_text())
            axes = [GridAxis(tuple(a["keys"]), tuple(tuple(v) for v in a["values"])) for a in manifest["axes"]]
        else:
            axes = infer_axes([s["params"] for s in stored])
        index = [{json.dumps(list(v)): i for i, v in enumerate(a.values)} for a in axes]
        by_coords: dict[tuple, dict] = {}
        strays = []
        for s in stored:
            coords = []
            for a, idx in zip(axes, index, strict=True):
                c = idx.get(json.dumps([s["params"].get(k) for k in a.keys]))
                coords.append(c)
            swept = {k: s["params"].get(k) for a in axes for k in a.keys}
            status = s["status"] or ("failed" if s["metrics"].get("status") == "failed" else "ok")
            metrics = flatten(s["metrics"]) if status == "ok" else s["metrics"]
            metrics["seconds"] = s["seconds"]
            if None in coords:
                strays.append(Row((), swept, s["run_id"], status, metrics))
            else:
                by_coords[tuple(coords)] = {"row": Row(tuple(coords), swept, s["run_id"], status, metrics)}
        rows = []
        for coords in product(*(range(len(a.values)) for a in axes)):
            if coords in by_coords:
                rows.append(by_coords[coords]["row"])
            else:
                params = {k: v for a, c in zip(axes, coords, strict=True) for k, v in zip(a.keys, a.values[c], strict=True)}
                rows.append(Row(coords, params, "", "missing", {}))
        swept_keys = {k for a in axes for k in a.keys}
        fixed = {}
        if stored:
            first = stored[0]["params"]
            fixed = {k: v for k, v in first.items() if k not in swept_keys and all(s["params"].get(k) == v for s in stored)}
        return GridData(axes, rows, strays, fixed, manifest, {s["run_id"]: s["params"] for s in stored})

    # -- what the page asks ----------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        d = self.data()
        counts: dict[str, int] = {}
        for r in d.rows + d.strays:
            counts[r.status] = counts.get(r.status, 0) + 1
        return {"key": self.key, "name": self.path.name, "axes": [a.name for a in d.axes], "combinations": len(d.rows), "counts": counts, "grid_id": (d.manifest or {}).get("grid_id")}

    def table(self, metric: str, find_run: Callable[[str], str | None]) -> dict[str, Any]:
        d = self.data()
        names = metric_names(d.rows + d.strays)
        if names and metric not in names:
            raise KeyError(f"no numeric metric {metric!r} in {self.key} (have: {', '.join(names)})")
        sizes = [len(a.values) for a in d.axes]
        ranked = {r.row.coords: (i + 1, r) for i, r in enumerate(rank(d.rows, sizes, metric, len(d.rows)))} if names else {}
        out = []
        for r in d.rows + d.strays:
            pos, rk = ranked.get(r.coords, (None, None)) if r.coords else (None, None)
            metrics = {k: v for k, v in r.metrics.items() if numeric(v) is not None} if r.status == "ok" else {}
            out.append(
                {
                    "run_id": r.run_id, "status": r.status, "coords": list(r.coords), "params": r.params, "metrics": metrics,
                    "error": r.metrics.get("error") if r.status == "failed" else None, "rank": pos,
                    "nbr": None if rk is None else {"count": rk.neighbours, "min": rk.lo, "median": rk.median, "max": rk.hi},
                    "run": find_run(r.run_id) if r.run_id else None,
                },
            )  # fmt: skip
        return {
            "key": self.key, "metric": metric, "lower_is_better": metric in LOWER_IS_BETTER, "metrics": names,
            "params": [k for a in d.axes for k in a.keys], "axes": [{"name": a.name, "keys": list(a.keys), "values": [a.label(i) for i in range(len(a.values))]} for a in d.axes],
            "fixed": d.fixed, "rows": out, "can_rerun": self.rerun_blocker() is None, "rerun_blocker": self.rerun_blocker(),
            "axes_from": "grid.json" if d.manifest else "inferred from the stored rows (ascending values)",
        }  # fmt: skip

    def heatmap(self, x: str, y: str, metric: str) -> dict[str, Any]:
        d = self.data()
        names = {a.name: i for i, a in enumerate(d.axes)} | {k: i for i, a in enumerate(d.axes) for k in a.keys}
        for name in (x, y):
            if name not in names:
                raise KeyError(f"{name!r} is not a swept parameter of {self.key} (axes: {', '.join(a.name for a in d.axes)})")
        xa, ya = names[x], names[y]
        if xa == ya:
            raise ValueError(f"{x} and {y} are on the same axis")
        if metric not in metric_names(d.rows):
            raise KeyError(f"no numeric metric {metric!r} in {self.key}")
        sizes = [len(a.values) for a in d.axes]
        z = heatmap_matrix(d.rows, xa, ya, sizes, metric)
        others = [a.name for i, a in enumerate(d.axes) if i not in (xa, ya)]
        return {
            "x": d.axes[xa].name, "y": d.axes[ya].name, "metric": metric, "z": z,
            "x_labels": [d.axes[xa].label(i) for i in range(sizes[xa])], "y_labels": [d.axes[ya].label(i) for i in range(sizes[ya])],
            "aggregated": f"mean over {', '.join(others)}" if others else "one combination per cell", "lower_is_better": metric in LOWER_IS_BETTER,
        }  # fmt: skip

    def row(self, run_id: str) -> Row:
        d = self.data()
        for r in d.rows + d.strays:
            if r.run_id == run_id:
                return r
        raise KeyError(f"no combination {run_id!r} in {self.key}")

    # -- rerunning one combination ------------------------------------------------------------------

    def rerun_blocker(self) -> str | None:
        m = self.data().manifest
        if m is None:
            return f"{self.path / MANIFEST} is missing (the grid predates it): its catalog and range are unknown. Run the grid again with --resume (instant: every combination is stored) to write it."
        if not Path(m["catalog"]).is_dir():
            return f"the grid's catalog {m['catalog']} does not exist on this machine"
        return None

    def rerun_command(self, run_id: str, config_path: Path) -> list[str]:
        from auction_trader.data.parse import iso  # noqa: PLC0415

        m = self.data().manifest or {}
        argv = [sys.executable, str(REPO_ROOT / "run_backtest.py"), str(config_path), "--catalog", m["catalog"], "--out", str(self.path / "runs" / run_id), "--quiet"]
        if m.get("start") is not None:
            argv += ["--start", iso(int(m["start"]))]
        if m.get("end") is not None:
            argv += ["--end", iso(int(m["end"]))]
        return argv

    def nested_config(self, run_id: str) -> dict[str, dict[str, Any]]:
        flat = self.data().configs.get(run_id)
        if flat is None:
            raise KeyError(f"no combination {run_id!r} in {self.key}")
        nested: dict[str, dict[str, Any]] = {}
        for leaf, value in flat.items():
            if leaf not in LEAF_TO_GROUP:
                raise KeyError(f"{self.key}: combination {run_id} has parameter {leaf!r}, unknown to this version of the configuration")
            nested.setdefault(LEAF_TO_GROUP[leaf], {})[leaf] = value
        return nested


@dataclass
class Job:
    id: int
    grid: str
    run_id: str
    command: str
    state: str = "queued"  # queued | running | done | failed
    started: float | None = None
    finished: float | None = None
    returncode: int | None = None
    output: str = ""
    run: str | None = None  # the run's key once done

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id, "grid": self.grid, "run_id": self.run_id, "state": self.state, "command": self.command, "returncode": self.returncode,
            "seconds": None if self.started is None else round((self.finished or time.time()) - self.started, 1), "output": self.output[-4000:], "run": self.run,
        }  # fmt: skip


class Jobs:
    """Single reruns of grid combinations, one child process at a time (the machine's cores are
    the engines'), in order of request; a request for a run already queued returns that job."""

    def __init__(self, on_done: Callable[[Job], None]) -> None:
        self._jobs: dict[int, Job] = {}
        self._queue: list[tuple[Job, list[str], Path]] = []
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._on_done = on_done
        self._stopping = False
        self._proc: subprocess.Popen | None = None
        self._thread = threading.Thread(target=self._loop, name="dashboard-jobs", daemon=True)
        self._thread.start()

    def submit(self, grid: GridDir, run_id: str) -> Job:
        blocker = grid.rerun_blocker()
        if blocker:
            raise PermissionError(blocker)
        with self._lock:
            for job in self._jobs.values():
                if job.grid == grid.key and job.run_id == run_id and job.state in ("queued", "running"):
                    return job
        nested = grid.nested_config(run_id)
        tmp = Path(tempfile.mkstemp(prefix=f"rerun-{run_id}-", suffix=".yaml")[1])
        tmp.write_text(yaml.safe_dump(nested, sort_keys=False))
        argv = grid.rerun_command(run_id, tmp)
        with self._lock:
            job = Job(len(self._jobs) + 1, grid.key, run_id, shlex.join(argv[1:]))
            self._jobs[job.id] = job
            self._queue.append((job, argv, tmp))
            self._wake.notify()
        return job

    def get(self, job_id: int) -> Job:
        with self._lock:
            if job_id not in self._jobs:
                raise KeyError(f"no job {job_id}")
            return self._jobs[job_id]

    def all(self) -> list[Job]:
        with self._lock:
            return list(self._jobs.values())

    def _loop(self) -> None:
        while True:
            with self._lock:
                while not self._queue and not self._stopping:
                    self._wake.wait()
                if self._stopping:
                    return
                job, argv, tmp = self._queue.pop(0)
                job.state, job.started = "running", time.time()
            try:
                self._proc = subprocess.Popen(argv, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                out, _ = self._proc.communicate()
                code = self._proc.returncode
            except OSError as exc:
                out, code = str(exc), -1
            finally:
                self._proc = None
                tmp.unlink(missing_ok=True)
            with self._lock:
                job.output, job.returncode, job.finished = out or "", code, time.time()
                job.state = "done" if code == 0 else "failed"
            self._on_done(job)

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            self._wake.notify()
            proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        self._thread.join(timeout=15)
