"""Run a grid: name every combination, skip what is stored (``resume``), run the rest on an
executor, store each result as it arrives, and return every combination's row.

Identity: a combination's ``run_id`` is :func:`~auction_trader.backtest.outputs.run_id_for` of its
full configuration, the catalog's fingerprint, the range and the strategy, the same id a single
``run_backtest.py`` run of that configuration gets. The grid's id hashes its axes and its
combinations' run ids, so it changes with the parameters, the data or the range, and names the
default output directory ``runs/grid-<grid id>/``.

Storage: ``<out>/grid.json`` names the grid (its id, file, catalog, range and axes in the file's
order: what a reader needs to rank neighbours and to rerun one combination alone), and
``<out>/execution.db``, table ``grid_search_results`` (specv2 §3.3 plus ``grid_id``,
``status``, ``seconds``), one row per combination (a re-run replaces its row), written by this
process as each outcome arrives; ``created_at`` is the wall clock in ms, ``metrics_json`` is
deterministic. ``resume`` skips every combination stored with status ``ok`` (whatever grid stored
it: the run id says everything); failed ones run again.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from auction_trader.backtest.engine import venue_shape
from auction_trader.backtest.outputs import auction_strategy_factory, catalog_fingerprint, run_id_for, strategy_name_of
from auction_trader.config import AuctionConfig
from auction_trader.grid.analysis import Row, flatten
from auction_trader.grid.executors import execute
from auction_trader.grid.spec import Combination, GridSpec
from auction_trader.grid.worker import DataSpec, Outcome, Task, fingerprint_hash
from auction_trader.store import ExecutionStore

DB_NAME = "execution.db"
MANIFEST_NAME = "grid.json"


@dataclass
class GridResult:
    grid_id: str
    out_dir: Path
    rows: list[Row]  # every combination, in grid order
    ran: int  # combinations run now
    failed: int  # of those, failed
    skipped: int  # stored already (resume)
    seconds: float
    outcomes: list[Outcome] = field(default_factory=list)  # this run's, in finishing order

    @property
    def db(self) -> Path:
        return self.out_dir / DB_NAME


def plan(spec: GridSpec, catalog: Path, start: int | None, end: int | None, strategy_factory: Callable | None = None) -> tuple[str, list[str], DataSpec]:
    """``(grid_id, run ids in grid order, data)``: what identifies the grid and its combinations."""
    fingerprint = catalog_fingerprint(catalog)
    data = DataSpec(str(Path(catalog).resolve()), spec.base.instrument_id, start, end, fingerprint_hash(fingerprint))
    name = _strategy_name(spec, strategy_factory)
    run_ids = [run_id_for(c.config, catalog, start, end, name, fingerprint) for c in spec.combinations]
    blob = json.dumps({"axes": [a.keys for a in spec.axes], "runs": run_ids})
    return hashlib.sha256(blob.encode()).hexdigest()[:12], run_ids, data


def run_grid(
    spec: GridSpec,
    catalog: str | Path,
    start: int | None = None,
    end: int | None = None,
    out_dir: str | Path | None = None,
    *,
    workers: int = 1,
    executor: str = "local",
    scheduler: str | None = None,
    resume: bool = False,
    quiet: bool = False,
    strategy_factory: Callable[[AuctionConfig], object] | None = None,
    exact_replay: bool = False,
) -> GridResult:
    """Run ``spec``'s combinations on ``catalog`` in ``[start, end]`` (ns, inclusive).

    ``exact_replay``: every combination replays every tick through Nautilus, instead of the fast
    path (:mod:`auction_trader.grid.fast`, byte-identical outputs); same run ids either way."""
    began = time.perf_counter()
    catalog = Path(catalog)
    grid_id, run_ids, data = plan(spec, catalog, start, end, strategy_factory)
    out = Path(out_dir) if out_dir is not None else Path("runs") / f"grid-{grid_id}"
    outcomes: list[Outcome] = []
    _write_manifest(out, spec, catalog, start, end, grid_id)
    with ExecutionStore(out / DB_NAME) as store:
        done = {r["run_id"] for r in store.grid_results() if r["status"] == "ok"} if resume else set()
        tasks = [
            Task(c.index, rid, c.config, data, strategy_factory, exact=exact_replay)
            for c, rid in zip(spec.combinations, run_ids, strict=True)
            if rid not in done
        ]
        # Combinations sharing a venue shape run back to back, so workers rebuild engines rarely.
        tasks.sort(key=lambda t: (repr(venue_shape(t.config)), t.index))
        failed = 0
        with _progress(len(tasks), quiet) as bar:
            for outcome in execute(tasks, workers=workers, executor=executor, scheduler=scheduler):
                combo = spec.combinations[outcome.index]
                store.add_grid_result(
                    outcome.run_id,
                    combo.config.flat(),
                    outcome.metrics_json,
                    int(time.time() * 1000),
                    grid_id=grid_id,
                    status="ok" if outcome.ok else "failed",
                    seconds=None if outcome.seconds != outcome.seconds else round(outcome.seconds, 3),
                )
                outcomes.append(outcome)
                failed += not outcome.ok
                bar.update(1)
                bar.set_postfix_str(f"failed {failed}" if failed else "", refresh=False)
        stored = {r["run_id"]: r for r in store.grid_results()}
    rows = [_row(c, rid, stored.get(rid)) for c, rid in zip(spec.combinations, run_ids, strict=True)]
    return GridResult(grid_id, out, rows, len(tasks), failed, len(spec.combinations) - len(tasks), time.perf_counter() - began, outcomes)


def _write_manifest(out: Path, spec: GridSpec, catalog: Path, start: int | None, end: int | None, grid_id: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    doc = {
        "grid_id": grid_id,
        "grid_file": str(spec.path.resolve()),
        "catalog": str(catalog.resolve()),
        "start": start,
        "end": end,
        "axes": [{"keys": list(a.keys), "values": [list(step) for step in a.values]} for a in spec.axes],
    }
    (out / MANIFEST_NAME).write_text(json.dumps(doc, indent=2, default=str) + "\n")


def _strategy_name(spec: GridSpec, factory: Callable | None) -> str:
    """The strategy's class name, as run ids of single runs use it."""
    make = factory or auction_strategy_factory()
    try:
        return strategy_name_of(make(spec.combinations[0].config))
    except Exception:  # noqa: BLE001 - the failure belongs to that combination's run
        return f"{getattr(make, '__module__', '')}.{getattr(make, '__qualname__', type(make).__name__)}"


def _row(combo: Combination, run_id: str, stored: dict | None) -> Row:
    if stored is None:
        return Row(combo.coords, combo.params, run_id, "missing", {})
    doc = json.loads(stored["metrics_json"])
    status = stored["status"] or ("failed" if doc.get("status") == "failed" else "ok")
    return Row(combo.coords, combo.params, run_id, status, flatten(doc) if status == "ok" else doc)


class _progress:
    """A tqdm bar on stderr: completed / failed / ETA (silent with ``quiet``)."""

    def __init__(self, total: int, quiet: bool) -> None:
        from tqdm import tqdm  # noqa: PLC0415

        self.bar = tqdm(total=total, desc="grid", unit="run", file=sys.stderr, disable=quiet or total == 0, dynamic_ncols=True)

    def __enter__(self):
        return self.bar

    def __exit__(self, *exc) -> None:
        self.bar.close()
