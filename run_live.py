#!/usr/bin/env python
"""Run the auction strategy live against Bybit v5 (dry-run, paper, shadow or live).

Not built yet: this entry point validates its arguments and configuration today.
"""

from __future__ import annotations

import argparse
import sys

from auction_trader.config import ConfigError, Secrets, add_config_arguments, config_from_args

DESCRIPTION = """\
Starts a Nautilus TradingNode with Bybit v5 market data for BTCUSDT and the same AuctionStrategy
and configuration as the backtest. Modes:
  --dry-run  process data, compute features and signals, place no orders
  --paper    simulated execution on Nautilus's sandbox with the backtest's fill model
  --shadow   live signals, paper execution, alerts when the two diverge
  --live     real orders on Bybit; needs BYBIT_API_KEY / BYBIT_API_SECRET in the environment and
             starts in observation mode until an operator activates trading after the 240-minute
             warm-up
Secrets come only from the environment and are never logged.

STATUS: not built yet - this command only validates the configuration. The live node, the Bybit
adapter and its offline stand-in are later pieces of work."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="run_live.py", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--dry-run", action="store_true", help="signals only, no orders")
    mode.add_argument("--paper", action="store_true", help="Bybit data, simulated execution")
    mode.add_argument("--shadow", action="store_true", help="live signals, paper execution, divergence alerts")
    mode.add_argument("--live", action="store_true", help="real orders (explicit flag + manual activation)")
    add_config_arguments(parser)
    args = parser.parse_args(argv)
    try:
        config_from_args(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    secrets = Secrets.from_env()
    if args.live and (secrets.bybit_api_key is None or secrets.bybit_api_secret is None):
        print("error: --live needs BYBIT_API_KEY and BYBIT_API_SECRET in the environment", file=sys.stderr)
        return 1
    print("run_live.py: the live node is not built yet. The configuration is valid; nothing was started.", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
