"""Grid search speed, measured in one run: the same grid with 1 worker and with 2.

    .venv/bin/python benchmarks/grid_bench.py [--catalog catalogs/sample] [--hours 4]

Prints, per worker count: wall time, time per combination, the scaling ratio (target >= 1.7 on 2
cores), and the per-combination overhead beyond the engine's own ``BacktestEngine.run()``,
measured inside the worker (target <= 10 %): strategy construction, engine reset / rearm, metrics,
plus on each worker's first combination the data load and the engine build. The whole-grid
overhead adds process start-up and storage. Also: what a fresh engine per combination would cost
instead of reusing one, and whether both runs stored identical metrics.

Without --catalog it builds a synthetic catalog of --hours in a temporary folder and uses 60-minute
windows, so the grid is quick; catalogs/sample uses the configuration's own windows.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

GRID = """\
set: {set}
grid:
  alpha_bin: [0.2, 0.25, 0.3]
  accept_outside_k: [2, 3]
zip:
  - slippage_ticks_entry: [0, 1]
    slippage_ticks_exit: [0, 1]
"""
SHORT = "{rolling_window_minutes: 60, warmup_minutes: 60, spread_lookback_minutes: 30}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--catalog", help="catalog to use (default: a synthetic one in a temporary folder)")
    parser.add_argument("--hours", type=float, default=4.0, help="hours of synthetic market (default 4)")
    args = parser.parse_args()

    import numpy as np  # noqa: PLC0415

    from auction_trader.backtest.engine import build_engine, load_data, rearm_engine  # noqa: PLC0415
    from auction_trader.backtest.outputs import auction_strategy_factory  # noqa: PLC0415
    from auction_trader.config import AuctionConfig  # noqa: PLC0415
    from auction_trader.data.synth import generate, write_synthetic  # noqa: PLC0415
    from auction_trader.grid.runner import run_grid  # noqa: PLC0415
    from auction_trader.grid.spec import load_grid  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.catalog:
            catalog, fixed = Path(args.catalog), "{}"
        else:
            catalog, fixed = tmp / "cat", SHORT
            start = int(np.datetime64("2024-01-01T04:00", "ns").astype(np.int64))
            write_synthetic(catalog, generate(args.hours, 5, start), AuctionConfig())
        grid_path = tmp / "grid.yaml"
        grid_path.write_text(GRID.format(set=fixed))
        spec = load_grid(grid_path)
        n = len(spec.combinations)

        runs = {}
        for workers in (1, 2):
            began = time.perf_counter()
            result = run_grid(spec, catalog, out_dir=tmp / f"w{workers}", workers=workers, quiet=True)
            wall = time.perf_counter() - began
            assert result.failed == 0, [o.metrics_json for o in result.outcomes if not o.ok]
            runs[workers] = (wall, result)
            print(f"  {workers} worker(s): {wall:.1f} s", file=sys.stderr)

        # What reuse saves: a fresh engine per combination against rearming the one there is.
        config = spec.combinations[0].config
        data = load_data(catalog, config.instrument_id)
        make = auction_strategy_factory()
        t = time.perf_counter()
        engine, ctx = build_engine(config, catalog, None, None, make(config), data=data)
        build = time.perf_counter() - t
        t = time.perf_counter()
        ctx = rearm_engine(engine, ctx, config, make(config))
        rearm = time.perf_counter() - t
        engine.dispose()
        ticks = len(data[0])
        identical = _stored(runs[1][1].db) == _stored(runs[2][1].db)

    def per_worker(workers: int) -> tuple[str, ...]:
        wall, result = runs[workers]
        seconds = sum(o.seconds for o in result.outcomes)
        engine = sum(o.engine_seconds for o in result.outcomes)
        return (
            f"{wall:.1f} s",
            f"{wall / n:.2f} s",
            f"{engine / n:.2f} s",
            f"{(seconds - engine) / engine:.1%}",
            f"{wall * workers / engine - 1:.1%}",
        )

    one, two = per_worker(1), per_worker(2)
    ratio = runs[1][0] / runs[2][0]
    labels = (
        "wall time",
        "time per combination (wall / n)",
        "engine.run() per combination",
        "overhead beyond engine.run(), in the worker",
        "whole-grid overhead (wall x workers / engine - 1)",
    )
    print(f"grid benchmark: {n} combinations on {catalog if args.catalog else f'{args.hours:g} h synthetic'} ({ticks:,} ticks), {os.cpu_count()} cores")
    print(f"{'':52}{'1 worker':>12}{'2 workers':>12}")
    for label, a, b in zip(labels, one, two, strict=True):
        print(f"{label:52}{a:>12}{b:>12}")
    print(f"{'scaling ratio (1-worker wall / 2-worker wall)':52}{'':>12}{ratio:>11.2f}x   target >= 1.7")
    print(f"{'engine set-up: fresh build_engine / rearm_engine':52}{build:>11.3f}s{rearm:>11.3f}s")
    print(f"{'metrics identical with 1 and 2 workers':52}{'':>12}{'yes' if identical else 'NO':>12}")
    return 0 if identical else 1


def _stored(db: Path) -> dict:
    with sqlite3.connect(db) as con:
        return dict(con.execute("SELECT run_id, metrics_json FROM grid_search_results"))


if __name__ == "__main__":
    sys.exit(main())
