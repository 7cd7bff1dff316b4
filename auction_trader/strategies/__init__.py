"""Nautilus strategies: AuctionStrategy adapts events to the core and its decisions to orders."""
