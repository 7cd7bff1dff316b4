"""``run_backtest.py``: one backtest of AuctionStrategy over a catalog (see ``DESCRIPTION``).

Exit codes: 0 done; 1 a problem with the inputs (configuration, catalog, time range), reported in
one message; 2 something not built yet (the strategy); 3 a grid finished with failed combinations;
130 a grid was interrupted. Grid configs go to :mod:`auction_trader.grid.cli` (which imports nothing from here: the import
goes one way).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from auction_trader.config import ConfigError, add_config_arguments, load_config
from auction_trader.data.timestamps import parse_time
from auction_trader.grid import cli as grid_cli
from auction_trader.grid.spec import is_grid_file

DESCRIPTION = """\
Runs AuctionStrategy over a catalog on Nautilus's own matching engine: L1 book from quotes, trades
filling resting limits at their price (maker fee or rebate), market, stop-market and take-profit
fills `slippage_ticks_entry/_exit` ticks beyond the quote (taker fee), funding settled at
00:00/08:00/16:00 UTC at `funding_rate_8h_bps`, Bybit margin (orders beyond `max_leverage` x
equity are denied). A position still open at the last tick is closed at market.

A single-run CONFIG runs one backtest and writes into --out (default runs/<run_id>/, the id a hash
of config, catalog and range): metrics.json, fills.parquet, trades.parquet, features_1m.parquet,
signals_1m.parquet, alerts.json, execution.db (positions, state snapshots, funding ledger) and
report.html (Nautilus tearsheet + price chart), then prints a summary table. Same inputs, same
bytes. Progress lines (simulated time, % done, ETA) go to stderr.

A grid CONFIG (a base config plus `grid:` lists and `zip:` groups of parameters; see
configs/grid.yaml) backtests every combination on --workers processes (or a Dask cluster), one
engine per worker reused between runs, and stores each result as it finishes in
--out/execution.db, table grid_search_results (default --out: runs/grid-<grid id>/). Failed
combinations are stored with their error; --resume skips what is stored. At the end it prints the
top N by --by with the spread of that metric over each one's neighbours in the grid (plateau or
spike), optionally a CSV (--export-csv) and heatmaps (--heatmap X,Y). Same grid, same data: the
same metrics whatever the number of workers."""

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="run_backtest.py", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", help="YAML config: a single run (e.g. configs/default.yaml) or a grid (e.g. configs/grid.yaml)")
    parser.add_argument("--catalog", help="Parquet catalog to replay (default: a grid file's catalog:, else catalogs/sample)")
    parser.add_argument("--start", help="first timestamp to replay, inclusive (ISO 8601, UTC; default: a grid file's start:, else the catalog's first tick)")
    parser.add_argument("--end", help="last timestamp to replay, inclusive (ISO 8601, UTC; default: a grid file's end:, else the catalog's last tick)")
    parser.add_argument("--out", help="run directory (default: runs/<run_id>/; a grid's: runs/grid-<grid id>/)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines (or grid progress bar) on stderr")
    parser.add_argument("--no-report", action="store_true", help="skip report.html (it embeds plotly, ~5 MB)")
    add_config_arguments(parser, positional=True)
    grid_cli.add_grid_arguments(parser)
    args = parser.parse_args(argv)

    def fail(message: str, code: int = 1) -> int:
        print(f"error: {message}", file=sys.stderr)
        return code

    if is_grid_file(args.config):
        return grid_cli.main(args)
    given = grid_cli.grid_flags_given(args)
    if given:
        return fail(f"{', '.join(given)}: grid options, and {args.config} is a single-run config (no grid: or zip: key)")
    try:
        config = load_config(args.config, args.overrides)
    except ConfigError as exc:
        return fail(str(exc))
    catalog = Path(args.catalog or grid_cli.DEFAULT_CATALOG)
    if not (catalog / "data").is_dir():
        return fail(f"{catalog}: not a catalog (no data/ directory). Build one with `python -m auction_trader.data synth` or `import`.")
    try:
        start, end = parse_time(args.start, "--start"), parse_time(args.end, "--end")
    except ValueError as exc:
        return fail(str(exc))
    if start is not None and end is not None and start > end:
        return fail(f"--start {args.start} is after --end {args.end}")

    from auction_trader.backtest import outputs  # noqa: PLC0415 (Nautilus import: after the cheap checks)
    from auction_trader.backtest.report import summary_table  # noqa: PLC0415
    from auction_trader.data.errors import DataError  # noqa: PLC0415

    try:
        factory = outputs.auction_strategy_factory()
    except outputs.StrategyUnavailable as exc:
        return fail(f"{exc}. The backtest infrastructure is ready; the strategy arrives with its own issue.", 2)
    try:
        result = outputs.run_single(
            config, catalog, start, end, args.out, factory, progress=not args.quiet, report=not args.no_report,
        )
    except DataError as exc:
        return fail(str(exc))
    print(summary_table(result.metrics))
    print(f"\nwrote {len(result.files)} files to {result.out_dir}/")
    return 0

