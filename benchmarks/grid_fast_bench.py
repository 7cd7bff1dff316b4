"""The grid's fast path against the full replay, measured in one run on the same grid and catalog.

    .venv/bin/python benchmarks/grid_fast_bench.py [--grid configs/grid.yaml] [--catalog catalogs/sample]

Runs the grid twice with one worker - ``--exact-replay`` (every tick through Nautilus for every
combination) and the default fast path (auction_trader/grid/fast.py) - each into its own temporary
store, and prints the time per combination of each (measured inside the worker: strategy, engine
set-up, run and metrics; the fast path's one-time tick tape is in its first combination), the
speed-up as a ratio (target >= 5x), and whether every combination stored byte-identical
``metrics_json``. Exit status 1 if any combination differs or failed.

Without --catalog it uses the grid file's catalog; catalogs/sample is built first if missing (the
demo's 10-hour synthetic market, seed 42).
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--grid", default=str(ROOT / "configs" / "grid.yaml"), help="grid file (default: configs/grid.yaml, 24 combinations)")
    parser.add_argument("--catalog", help="catalog (default: the grid file's; catalogs/sample is built if missing)")
    args = parser.parse_args()

    from auction_trader.backtest.engine import load_data  # noqa: PLC0415
    from auction_trader.grid.runner import run_grid  # noqa: PLC0415
    from auction_trader.grid.spec import load_grid  # noqa: PLC0415

    spec = load_grid(Path(args.grid))
    catalog = Path(args.catalog) if args.catalog else spec.catalog
    if catalog is None:
        print("error: the grid file names no catalog; give --catalog", file=sys.stderr)
        return 1
    if not (catalog / "data").is_dir():
        if catalog.resolve() != (ROOT / "catalogs" / "sample").resolve():
            print(f"error: {catalog}: not a catalog", file=sys.stderr)
            return 1
        _build_sample()
    n = len(spec.combinations)
    from auction_trader.backtest.cli import parse_time  # noqa: PLC0415

    start, end = parse_time(spec.start, "start"), parse_time(spec.end, "end")
    data = load_data(catalog, spec.base.instrument_id, start, end)
    ticks = len(data[0])
    del data

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, exact in (("full replay (--exact-replay)", True), ("fast path (default)", False)):
            print(f"  {label}: {n} combinations ...", file=sys.stderr, flush=True)
            began = time.perf_counter()
            result = run_grid(spec, catalog, start, end, out_dir=Path(tmp) / ("exact" if exact else "fast"), workers=1, quiet=True, exact_replay=exact)
            wall = time.perf_counter() - began
            if result.failed:
                print(f"error: {result.failed} combinations failed ({label})", file=sys.stderr)
                return 1
            results[exact] = (wall, result, _stored(result.db))
            print(f"  {label}: {wall:.1f} s", file=sys.stderr, flush=True)

    exact_wall, exact_result, exact_rows = results[True]
    fast_wall, fast_result, fast_rows = results[False]
    differing = sorted(rid for rid in exact_rows if exact_rows[rid] != fast_rows.get(rid))
    per_exact = [o.seconds for o in exact_result.outcomes]
    per_fast = [o.seconds for o in fast_result.outcomes]
    ratio = statistics.mean(per_exact) / statistics.mean(per_fast)

    print(f"grid fast-path benchmark: {Path(args.grid).name}, {n} combinations on {catalog} ({ticks:,} ticks), 1 worker")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; load average {os.getloadavg()[0]:.1f}")
    print(f"{'':44}{'full replay':>14}{'fast path':>14}")
    print(f"{'wall time':44}{exact_wall:>13.1f}s{fast_wall:>13.1f}s")
    print(f"{'time per combination, mean':44}{statistics.mean(per_exact):>13.2f}s{statistics.mean(per_fast):>13.2f}s")
    print(f"{'time per combination, median':44}{statistics.median(per_exact):>13.2f}s{statistics.median(per_fast):>13.2f}s")
    print(f"{'time per combination, max':44}{max(per_exact):>13.2f}s{max(per_fast):>13.2f}s")
    print(f"{'speed-up per combination (mean full / fast)':44}{'':>14}{ratio:>13.1f}x   target >= 5")
    print(f"{'speed-up, whole grid (wall)':44}{'':>14}{exact_wall / fast_wall:>13.1f}x")
    same = not differing and set(exact_rows) == set(fast_rows)
    print(f"{'stored metrics_json byte-identical':44}{'':>14}{(f'all {n}' if same else f'NO: {len(differing)} differ'):>14}")
    for rid in differing[:5]:
        print(f"  differs: {rid}")
    return 0 if same else 1


def _stored(db: Path) -> dict[str, str]:
    with sqlite3.connect(db) as con:
        return dict(con.execute("SELECT run_id, metrics_json FROM grid_search_results"))


def _build_sample() -> None:
    from auction_trader.config import AuctionConfig  # noqa: PLC0415
    from auction_trader.data.synth import synth_command  # noqa: PLC0415
    from auction_trader.demo import SAMPLE_CATALOG, SAMPLE_HOURS, SAMPLE_SEED, SAMPLE_START  # noqa: PLC0415

    print(f"  building {SAMPLE_CATALOG} (the demo's synthetic market) ...", file=sys.stderr, flush=True)
    if synth_command(SAMPLE_CATALOG, hours=SAMPLE_HOURS, seed=SAMPLE_SEED, start=SAMPLE_START, overwrite=True, config=AuctionConfig()):
        raise SystemExit("error: could not build catalogs/sample")


if __name__ == "__main__":
    sys.exit(main())
