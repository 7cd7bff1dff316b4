"""Grid search: every combination of swept parameters backtested, in parallel, resumable.

* :mod:`.spec` - the grid file (base config, ``set:``, ``grid:``, ``zip:``, data range), expanded
  and validated before anything runs;
* :mod:`.worker` - one combination in a worker: ticks loaded once per process, one engine reused
  across runs (``reset()``, new strategy, reseeded), failures captured;
* :mod:`.fast` - the default path of an AuctionStrategy combination: Nautilus fed only the ticks
  that matter while the strategy is flat, features caught up from shared tick columns;
  byte-identical to the full replay (``--exact-replay``);
* :mod:`.executors` - in-process, a local process pool, or a Dask cluster;
* :mod:`.runner` - identities, resume, results into ``execution.db`` as they finish;
* :mod:`.analysis` - the top N with their neighbours' spread, CSV export, heatmaps;
* :mod:`.cli` - ``run_backtest.py GRID.yaml``.
"""

from auction_trader.grid.spec import Axis, Combination, GridSpec, is_grid_file, load_grid

__all__ = ["Axis", "Combination", "GridSpec", "is_grid_file", "load_grid"]
