#!/usr/bin/env python
"""Backtest the auction strategy on a Nautilus Parquet catalog.

Not built yet: this entry point validates its arguments and configuration today; the backtest
itself (AuctionStrategy on Nautilus's matching engine, bid/ask fills, fees, funding, slippage) and
grid search arrive with the next issues.
"""

from __future__ import annotations

import argparse
import sys

from auction_trader.config import ConfigError, add_config_arguments, load_config

DESCRIPTION = """\
Runs AuctionStrategy over a catalog on Nautilus's own matching engine: L1 book from quotes, trades
filling resting limits, maker/taker fees and slippage from the config, funding settled at
00:00/08:00/16:00 UTC. A single-run CONFIG runs one backtest and writes metrics.json, fills,
features, signals, execution.db and report.html into --out. A grid CONFIG (a base config plus a
`grid:` of parameter lists) runs every combination in parallel workers and stores each result in
execution.db (grid_search_results).

STATUS: not built yet - this command only validates CONFIG and --set overrides. The backtest and
the grid search are the next pieces of work."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="run_backtest.py", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", help="YAML config: a single run (e.g. configs/default.yaml) or a grid (configs/grid.yaml)")
    parser.add_argument("--catalog", default="catalogs/sample", help="Parquet catalog to replay (default: catalogs/sample)")
    parser.add_argument("--start", help="first timestamp to replay (ISO 8601, UTC)")
    parser.add_argument("--end", help="last timestamp to replay (ISO 8601, UTC)")
    parser.add_argument("--out", help="run directory (default: runs/<run_id>/)")
    add_config_arguments(parser, positional=True)
    args = parser.parse_args(argv)
    try:
        load_config(args.config, args.overrides)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(
        "run_backtest.py: the backtest is not built yet. The configuration is valid; nothing was run.",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
