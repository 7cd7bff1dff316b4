"""Nautilus strategies: AuctionStrategy adapts events to the core and its decisions to orders."""

from auction_trader.strategies.auction_strategy import AuctionStrategy, AuctionStrategyConfig

__all__ = ["AuctionStrategy", "AuctionStrategyConfig"]
