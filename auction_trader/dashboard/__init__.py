"""The web dashboard: ``python -m auction_trader.dashboard [--runs DIR] [--host 127.0.0.1] [--port 8050]``.

The trading view of a run (candles with the value area as lines and as the profile histogram at
the selected minute, the footprint, order flow, ambiguity and heat, position and P&L, signals,
fills and alerts) and the grid view (sort, filter, compare, heatmaps, neighbour spreads, single
reruns). ``source.py`` is the one interface the trading view reads; ``runs.py`` implements it for
finished backtest runs, and a live node's store will implement it next.
"""

from auction_trader.dashboard.app import create_app

__all__ = ["create_app"]
