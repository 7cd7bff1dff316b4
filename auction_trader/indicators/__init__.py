"""Nautilus indicators wrapping the Rust feature engine."""

from auction_trader.indicators.auction_features import AuctionFeatures

__all__ = ["AuctionFeatures"]
