#!/usr/bin/env python
"""Backtest AuctionStrategy on a Nautilus Parquet catalog: ``python run_backtest.py --help``."""

import sys

from auction_trader.backtest.cli import main

if __name__ == "__main__":
    sys.exit(main())
